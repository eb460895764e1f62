"""Entry point that lets Bazel's py_test run one pytest file: `pytest_main.py path/to/test.py`."""

import os
import sys

import pytest

if __name__ == "__main__":
  # Bazel sandboxes are read-only except $TEST_TMPDIR.
  tmp = os.environ.get("TEST_TMPDIR")
  extra = ["-p", "no:cacheprovider", f"--basetemp={tmp}/pytest"] if tmp else []
  sys.exit(pytest.main(["-q"] + extra + sys.argv[1:]))
