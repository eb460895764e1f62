"""Image quality metrics on uint8 RGB images (numpy in, Python floats out)."""

import math

import numpy as np
import tensorflow as tf


def mse(reference: np.ndarray, distorted: np.ndarray) -> float:
  """Mean squared error over all pixels and channels, 8-bit units."""
  reference = np.asarray(reference, np.float64)
  distorted = np.asarray(distorted, np.float64)
  if reference.shape != distorted.shape:
    raise ValueError(f"shape mismatch: {reference.shape} vs {distorted.shape}.")
  return float(np.mean(np.square(reference - distorted)))


def psnr(reference: np.ndarray, distorted: np.ndarray) -> float:
  """RGB PSNR in dB (inf for identical images)."""
  error = mse(reference, distorted)
  return math.inf if error == 0 else 10.0 * math.log10(255.0 ** 2 / error)


def ms_ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
  """Multi-scale SSIM (tf.image.ssim_multiscale) on RGB; nan if the image is too small (<161 px)."""
  if min(reference.shape[:2]) < 161:
    return math.nan
  value = tf.image.ssim_multiscale(tf.constant(reference[None], tf.uint8),
                                   tf.constant(distorted[None], tf.uint8), max_val=255)
  return float(value[0])


def bits_per_pixel(num_bytes: int, height: int, width: int) -> float:
  return 8.0 * num_bytes / (height * width)
