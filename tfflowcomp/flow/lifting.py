"""Learned lifting steps initialised to the CDF 5/3 (LeGall) wavelet.

A 2D 5/3 wavelet step is four additive couplings on the four polyphase components that
`Squeeze` produces, `P00, P01, P10, P11` (3 colour channels each):

    predict_h: P01 += -(P00[i, j] + P00[i, j+1]) / 2,   P11 from P10 alike   (horizontal highpass)
    update_h:  P00 += (P01[i, j-1] + P01[i, j]) / 4,     P10 from P11 alike   (horizontal lowpass)
    predict_v: P10 += -(P00[i, j] + P00[i+1, j]) / 2,   P11 from P01 alike   (vertical highpass)
    update_v:  P00 += (P10[i-1, j] + P10[i, j]) / 4,     P01 from P11 alike   (vertical lowpass)

after which P00 = LL, P01 = HL, P10 = LH and P11 = HH. Each shift function here is that fixed
linear filter (a trainable 3x3 convolution initialised to it) plus a zero-initialised nonlinear
network, so the flow starts exactly as the 5/3 wavelet and training only has to improve on it.

Direction: forward = analysis (image side -> latent side), float32 `[B, H, W, 12]` in and out.
All four steps are additive couplings: volume preserving, log-det 0, exactly invertible up to
float rounding (exactly, on integers, in their integer-valued form: `integer.py`).
"""

from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfflowcomp.flow import coupling
from tfflowcomp.flow import integer

tfb = tfp.bijectors

# Channel blocks of the squeezed tensor (3 colour channels each).
P00, P01, P10, P11 = 0, 1, 2, 3

# name -> (conditioning blocks, updated blocks (paired in order), taps {(ky, kx): weight}).
# Taps index a 3x3 correlation kernel: (1, 1) is the same position, (1, 2) the next column.
LIFTING_STEPS: List[Tuple[str, Tuple[int, int], Tuple[int, int], Dict[Tuple[int, int], float]]] = [
    ("predict_h", (P00, P10), (P01, P11), {(1, 1): -0.5, (1, 2): -0.5}),
    ("update_h", (P01, P11), (P00, P10), {(1, 0): 0.25, (1, 1): 0.25}),
    ("predict_v", (P00, P01), (P10, P11), {(1, 1): -0.5, (2, 1): -0.5}),
    ("update_v", (P10, P11), (P00, P01), {(0, 1): 0.25, (1, 1): 0.25}),
]


def _block_channels(blocks, colours=3):
  return [b * colours + c for b in blocks for c in range(colours)]


def lifting_kernel(taps: Dict[Tuple[int, int], float], num_pairs: int = 2,
                   colours: int = 3) -> np.ndarray:
  """The 3x3 conv kernel `[3, 3, pairs*colours, pairs*colours]` of one 5/3 lifting filter.

  Conditioning block k feeds updated block k, colour c feeds colour c only.
  """
  channels = num_pairs * colours
  kernel = np.zeros([3, 3, channels, channels], np.float32)
  for (ky, kx), weight in taps.items():
    for i in range(channels):
      kernel[ky, kx, i, i] = weight
  return kernel


class LiftingShift(tf.keras.layers.Layer):
  """Shift function of one lifting step: a linear 3x3 filter plus a nonlinear residual network.

  Shapes: float32 `[B, H, W, 6] -> [B, H, W, 6]`.
  """

  def __init__(self, kernel: np.ndarray, width: int, name: str):
    super().__init__(name=name)
    channels = kernel.shape[-1]
    self.linear = tf.keras.layers.Conv2D(
        channels, 3, padding="same", use_bias=False,
        kernel_initializer=tf.constant_initializer(kernel))
    self.residual = coupling.CouplingNetwork(width, channels, name="residual")

  def call(self, x):
    return self.linear(x) + self.residual(x)


class LiftingStep(tf.keras.layers.Layer):
  """One 5/3 lifting step as a learnable additive coupling on a squeezed `[B, H, W, 12]`."""

  def __init__(self, step_name: str, cond_blocks, upd_blocks, taps, width: int,
               integer_valued: bool = False):
    super().__init__(name=step_name)
    self._cond = _block_channels(cond_blocks)
    self._upd = _block_channels(upd_blocks)
    self._integer_valued = integer_valued
    self.shift = LiftingShift(lifting_kernel(taps), width, name="shift")

  def bijector(self) -> tfb.Bijector:
    """Additive coupling; with `integer_valued`, on integer levels with a rounded shift."""
    if self._integer_valued:
      return integer.IntegerAdditiveCoupling(self._cond, self._upd, self.shift, name=self.name)
    return coupling.AdditiveCoupling(self._cond, self._upd, self.shift, name=self.name)


def wavelet_lifting_steps(width: int, integer_valued: bool = False) -> List[LiftingStep]:
  """The four lifting steps of one 2D 5/3 wavelet level, in analysis order."""
  return [LiftingStep(name, cond, upd, taps, width, integer_valued)
          for name, cond, upd, taps in LIFTING_STEPS]
