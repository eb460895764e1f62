"""A tiny, deterministic tfflowcomp model for tests, and the checked-in golden files.

`tests/testdata/tiny_model/` (a SavedModel in serving layout) and the golden bitstream
`tests/testdata/golden_q0.5.tfc` are regenerated only by

    GENERATE_GOLDEN=1 python -m pytest tests/test_golden.py

and otherwise never change: a test fails if the current code no longer produces those bytes.
"""

import json
import os

import numpy as np
import tensorflow as tf

from tfflowcomp.codec import FlowCodec
from tfflowcomp.config import ModelConfig
from tfflowcomp.model import FlowCompressionModel

TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata")
TINY_MODEL_DIR = os.path.join(TESTDATA, "tiny_model")
GOLDEN_IMAGE = os.path.join(TESTDATA, "golden_image.png")
GOLDEN_BITSTREAM = os.path.join(TESTDATA, "golden_q0.5.tfc")
GOLDEN_DECODED = os.path.join(TESTDATA, "golden_q0.5_decoded.png")
GOLDEN_QUALITY = 0.5

TINY_CONFIG = ModelConfig(num_levels=2, glow_steps_per_level=1, coupling_width=4,
                          hyper_width=8, hyper_channels=4)
# Integer-to-integer flow; min_step 0.25 puts every channel at the lossless cap at quality 1.
TINY_INTEGER_CONFIG = ModelConfig(num_levels=2, glow_steps_per_level=0, coupling_width=4,
                                  hyper_width=8, hyper_channels=4, min_step=0.25,
                                  integer_flow=True)


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
  """A natural-ish uint8 test image: smooth colour gradients, an edge and mild noise."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
  base = np.stack([
      128 + 80 * np.sin(xx / 13.0 + yy / 29.0),
      128 + 60 * np.cos(yy / 11.0),
      100 + 0.3 * xx % 120,
  ], axis=-1)
  base[yy > height / 2] += 40
  base += rng.normal(0, 4, base.shape)
  return np.clip(np.round(base), 0, 255).astype(np.uint8)


def tiny_model(seed: int = 0, perturb: float = 0.0,
               config: ModelConfig = TINY_CONFIG) -> FlowCompressionModel:
  """Deterministic tiny model, initialised on synthetic images.

  `perturb` adds seeded noise of that scale to every trainable variable, so that no flow step
  is the identity (for bijectivity tests).
  """
  tf.keras.utils.set_random_seed(seed)
  model = FlowCompressionModel(config)
  batch = np.stack([smooth_image(32, 32, seed=s) for s in range(4)])
  model.initialize(batch)
  if perturb:
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
      variable.assign_add(rng.normal(0, perturb, variable.shape).astype(np.float32))
  return model


def tiny_encoder_settings() -> dict:
  """The encoder settings the checked-in tiny SavedModel was exported with (FlowCodec kwargs)."""
  with open(os.path.join(TINY_MODEL_DIR, "model_info.json")) as f:
    return json.load(f)["encoder"]


def tiny_codec(seed: int = 0) -> FlowCodec:
  return FlowCodec.from_model(tiny_model(seed))
