"""Golden files pinned to the tiny checked-in model.

Regenerate (only when the format or the model intentionally changes):
    GENERATE_GOLDEN=1 python -m pytest tests/test_golden.py
A missing golden file is an error, never a silent regeneration.
"""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

import tiny
from tfflowcomp import export

GENERATE = os.environ.get("GENERATE_GOLDEN") == "1"


@pytest.mark.skipif(not GENERATE, reason="set GENERATE_GOLDEN=1 to regenerate golden files")
def test_regenerate_golden_files():
  codec = tiny.tiny_codec()
  shutil.rmtree(tiny.TINY_MODEL_DIR, ignore_errors=True)
  os.makedirs(tiny.TINY_MODEL_DIR)
  export.export_saved_model(codec, os.path.join(tiny.TINY_MODEL_DIR, "1"))
  export.write_model_info(tiny.TINY_MODEL_DIR, codec,
                          dict(description="tiny untrained test model (tests/tiny.py)"))
  image = tiny.smooth_image(23, 37, seed=7)
  Image.fromarray(image).save(tiny.GOLDEN_IMAGE)
  loaded = export.load(tiny.TINY_MODEL_DIR)
  data = loaded.compress(image, tiny.GOLDEN_QUALITY)
  with open(tiny.GOLDEN_BITSTREAM, "wb") as f:
    f.write(data)
  Image.fromarray(loaded.decompress(data)).save(tiny.GOLDEN_DECODED)


def _golden_inputs():
  for path in (tiny.GOLDEN_IMAGE, tiny.GOLDEN_BITSTREAM, tiny.GOLDEN_DECODED,
               os.path.join(tiny.TINY_MODEL_DIR, "1", "saved_model.pb")):
    assert os.path.exists(path), f"missing golden file {path} (see module docstring)"
  image = np.array(Image.open(tiny.GOLDEN_IMAGE))
  with open(tiny.GOLDEN_BITSTREAM, "rb") as f:
    data = f.read()
  return image, data, np.array(Image.open(tiny.GOLDEN_DECODED))


def test_compress_reproduces_the_golden_bitstream(saved_codec):
  image, data, _ = _golden_inputs()
  assert saved_codec.compress(image, tiny.GOLDEN_QUALITY) == data


def test_decompress_reproduces_the_golden_image(saved_codec):
  _, data, decoded = _golden_inputs()
  np.testing.assert_array_equal(saved_codec.decompress(data), decoded)
