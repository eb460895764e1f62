"""Shared fixtures. Tests run on CPU, need no network and no ../shared data."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import pytest  # pylint: disable=g-import-not-at-top

import tiny  # pylint: disable=g-import-not-at-top


@pytest.fixture(scope="session")
def codec():
  """A live tiny FlowCodec (tables built)."""
  return tiny.tiny_codec()


@pytest.fixture(scope="session")
def saved_codec():
  """The checked-in tiny SavedModel, loaded."""
  from tfflowcomp import export
  return export.load(tiny.TINY_MODEL_DIR)
