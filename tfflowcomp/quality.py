"""The quality knob: one float in [0, 1] that sets the quantization step of the latent.

`quality` 0.0 gives the smallest files, 1.0 the finest (near-lossless) reconstruction. The step
falls geometrically from `ModelConfig.max_step` to `ModelConfig.min_step` (8-bit pixel units), so
rate and PSNR both rise monotonically with quality.

The bitstream stores quality as a 16-bit code `round(quality * 65535)`; the encoder quantizes the
requested quality to that code before using it, so encoder and decoder see the same value.
"""

import math

import tensorflow as tf

QUALITY_CODE_MAX = 65535


def check_quality(quality: float) -> float:
  """Validates a user-supplied quality and returns it as a Python float."""
  try:
    value = float(quality)
  except (TypeError, ValueError):
    raise ValueError(f"quality must be a number in [0, 1], got {quality!r}.") from None
  if not 0.0 <= value <= 1.0:  # Also rejects NaN.
    raise ValueError(f"quality must be in [0, 1], got {quality!r}.")
  return value


def quality_to_code(quality: float) -> int:
  """Quality in [0, 1] -> the 16-bit code stored in the bitstream."""
  return int(round(check_quality(quality) * QUALITY_CODE_MAX))


def code_to_quality(code: int) -> float:
  return code / QUALITY_CODE_MAX


def quantize_quality(quality):
  """TF version of `code_to_quality(quality_to_code(q))`: float32 scalar -> float32 scalar."""
  return tf.round(quality * QUALITY_CODE_MAX) / QUALITY_CODE_MAX


def step_size(quality, max_step: float, min_step: float, dtype=tf.float32):
  """Quantization step in 8-bit pixel units; a `dtype` tensor shaped like `quality`."""
  quality = tf.cast(quality, dtype)
  return max_step * tf.exp(quality * math.log(min_step / max_step))


def rd_lambda(step):
  """Lagrange multiplier tied to the step: loss = bpp + lambda * MSE (8-bit pixel units).

  For a uniform quantizer at high rate, per latent element the rate is `h - log2(step)` bits and
  the distortion `step**2 / 12`; with 3 elements per pixel, `d(bpp + lambda * MSE) / d step = 0`
  gives `lambda = 18 / (ln 2 * step**2)`. Training with this lambda makes `step` the optimal step
  for the quality it belongs to, so the learned per-channel gains start (and mostly stay) near 1.
  """
  return 18.0 / (math.log(2.0) * tf.square(step))
