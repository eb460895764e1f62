"""The multi-scale bijective flow: image <-> latent of the same size.

Direction: `analysis` = image -> latent (the TFP bijectors' forward), `synthesis` = latent ->
image (their inverse).

Layout, for `L = config.num_levels`:

    image [B, H, W, 3]  (float32, pixel / 255 - 0.5; H and W multiples of 2**L)
      -> colour: invertible 1x1 conv, initialised to an orthonormal opponent-colour transform
      -> level 1: squeeze -> 4 lifting steps (5/3 wavelet at init) -> K Glow steps
           P00 (3 channels, the lowpass) goes on to level 2, the 9 others are factored out
      -> ... level L: the lowpass stays too.
    latent [B, H / 2**L, W / 2**L, 3 * 4**L]: channels are
      [lowpass_L (3), details_L (9), s2d(details_{L-1}) (36), ..., s2d(details_1) (9*4**(L-1))]
      where s2d is space-to-depth down to the coarsest resolution.

Nothing is dropped: the latent has exactly as many numbers as the image, and every one of them is
quantized and coded.

With `ModelConfig.integer_flow` the colour step is the fixed YCoCg-R transform and every lifting
step rounds its shift (`integer.py`), with no Glow steps: the flow then maps 8-bit images to
integer latents (returned divided by 255, in the same units as above) and back with no error.
"""

from typing import List, Tuple

import tensorflow as tf
import tensorflow_probability as tfp

from tfflowcomp.config import ModelConfig
from tfflowcomp.flow import actnorm
from tfflowcomp.flow import coupling
from tfflowcomp.flow import integer
from tfflowcomp.flow import invertible_conv
from tfflowcomp.flow import lifting
from tfflowcomp.flow.squeeze import Squeeze

tfb = tfp.bijectors

_EVENT_NDIMS = 3


class FlowLevel(tf.keras.layers.Layer):
  """One level: squeeze `[B, H, W, 3] -> [B, H/2, W/2, 12]`, then lifting and Glow steps.

  Direction: forward = analysis. Steps are kept in analysis order in `self.steps`.
  """

  def __init__(self, glow_steps: int, width: int, name: str, integer_valued: bool = False):
    super().__init__(name=name)
    steps = list(lifting.wavelet_lifting_steps(width, integer_valued))
    for k in range(glow_steps):
      steps.append(actnorm.ActNorm(12, name=f"glow{k}_actnorm"))
      steps.append(invertible_conv.InvertibleConv1x1(12, name=f"glow{k}_conv1x1"))
      steps.append(coupling.AffineCouplingStep(12, width, name=f"glow{k}_coupling"))
    self.steps = steps

  def bijectors_in_analysis_order(self) -> List[tfb.Bijector]:
    return [Squeeze()] + [step.bijector() for step in self.steps]

  def bijector(self) -> tfb.Bijector:
    """A fresh `tfb.Chain` (TFP applies the last list entry first, hence the reversal)."""
    return tfb.Chain(list(reversed(self.bijectors_in_analysis_order())), name=self.name)


class MultiscaleFlow(tf.keras.layers.Layer):
  """Bijective multi-scale flow between images and latents (see module docstring)."""

  def __init__(self, config: ModelConfig, name: str = "flow"):
    super().__init__(name=name)
    self.config = config
    self.integer_valued = config.integer_flow
    if self.integer_valued:
      self.colour = integer.IntegerColour(name="colour")
    else:
      self.colour = invertible_conv.InvertibleConv1x1(
          3, invertible_conv.OPPONENT_COLOUR_MATRIX, name="colour")
    self.levels = [
        FlowLevel(config.glow_steps_per_level, config.coupling_width, name=f"level{l + 1}",
                  integer_valued=self.integer_valued)
        for l in range(config.num_levels)
    ]

  def _flow_units(self, x):
    """Model units -> what the bijectors work on: the same, or 8-bit levels (integer flow)."""
    return integer.to_levels(x) if self.integer_valued else x

  def _level_outputs(self, x) -> Tuple[tf.Tensor, List[tf.Tensor]]:
    u = self.colour.bijector().forward(x)
    details = []
    for level in self.levels:
      u = level.bijector().forward(u)
      u, detail = u[..., :3], u[..., 3:]
      details.append(detail)
    return u, details

  def analysis(self, x: tf.Tensor) -> tf.Tensor:
    """Image -> latent.

    Args:
      x: float32 `[B, H, W, 3]`, `pixel / 255 - 0.5`; `H`, `W` multiples of `2**num_levels`.
    Returns:
      float32 `[B, H / 2**L, W / 2**L, 3 * 4**L]`; for an integer flow, integers / 255 (the
      input is rounded to 8-bit levels first).
    """
    lowpass, details = self._level_outputs(self._flow_units(x))
    num_levels = len(self.levels)
    parts = [lowpass]
    for index in reversed(range(num_levels)):
      block = 2 ** (num_levels - 1 - index)
      detail = details[index]
      parts.append(detail if block == 1 else tf.nn.space_to_depth(detail, block))
    latent = tf.concat(parts, axis=-1)
    return latent / integer.LEVELS if self.integer_valued else latent

  def synthesis(self, latent: tf.Tensor) -> tf.Tensor:
    """Latent -> image; the exact inverse of `analysis` (up to float rounding).

    Args:
      latent: float32 `[B, h, w, 3 * 4**L]`.
    Returns:
      float32 `[B, h * 2**L, w * 2**L, 3]` in `pixel / 255 - 0.5` units (not clipped). An integer
      flow first rounds `latent * 255` to integers (straight-through) and returns exact 8-bit
      values (before clipping), so `analysis(synthesis(latent))` is that rounded latent exactly.
    """
    if self.integer_valued:
      latent = integer.round_straight_through(latent * integer.LEVELS)
    num_levels = len(self.levels)
    u = latent[..., :3]
    offset = 3
    details = [None] * num_levels
    for index in reversed(range(num_levels)):
      block = 2 ** (num_levels - 1 - index)
      size = 9 * block * block
      detail = latent[..., offset:offset + size]
      offset += size
      details[index] = detail if block == 1 else tf.nn.depth_to_space(detail, block)
    for index in reversed(range(num_levels)):
      u = self.levels[index].bijector().inverse(tf.concat([u, details[index]], axis=-1))
    x = self.colour.bijector().inverse(u)
    return integer.from_levels(x) if self.integer_valued else x

  def analysis_log_det_jacobian(self, x: tf.Tensor) -> tf.Tensor:
    """log|det d analysis(x) / dx| per example, float32 `[B]` (for tests and diagnostics)."""
    u = self._flow_units(x)
    total = self.colour.bijector().forward_log_det_jacobian(u, event_ndims=_EVENT_NDIMS)
    u = self.colour.bijector().forward(u)
    for level in self.levels:
      bij = level.bijector()
      total += bij.forward_log_det_jacobian(u, event_ndims=_EVENT_NDIMS)
      u = bij.forward(u)[..., :3]
    return total

  def initialize(self, x: tf.Tensor) -> None:
    """Data-dependent initialisation of every ActNorm, in analysis order (training only).

    Args:
      x: float32 `[B, H, W, 3]`, a training batch in `pixel / 255 - 0.5` units.
    """
    u = self.colour.bijector().forward(self._flow_units(x))
    for level in self.levels:
      u = Squeeze().forward(u)
      for step in level.steps:
        if isinstance(step, actnorm.ActNorm):
          step.initialize(u)
        u = step.bijector().forward(u)
      u = u[..., :3]
