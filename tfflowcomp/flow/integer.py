"""Integer-to-integer pieces of the flow (`ModelConfig.integer_flow`): exact on 8-bit images.

An additive coupling `y_u = x_u + t(x_c)` stays an exact bijection of the integers if its shift
is rounded, `y_u = x_u + round(t(x_c))` (Integer Discrete Flows, Hoogeboom et al. 2019): the
inverse recomputes the same rounded shift from the unchanged `x_c` and subtracts it. A flow made
only of such couplings, squeezes and channel splits maps an 8-bit image to an integer latent and
back with no rounding error at all, so a decoded image re-analyses to exactly the latent it was
decoded from, and re-encoding it gives the same symbols by construction (see
`model.FlowCompressionModel.symbols_per_latent_unit` for the step that keeps this true).

Units: these bijectors work on integer-valued float32 tensors in 8-bit levels (`pixel - 128`
on the image side). Shift networks were designed for `pixel / 255` units, so an integer coupling
evaluates `LEVELS * shift_fn(x_c / LEVELS)` and rounds that.

Rounding has no gradient; training passes gradients straight through it (`round_straight_through`).
The rounding is deterministic on one platform; a shift network evaluated with other kernels (a GPU
with TF32, say) could round a value that sits within ~1e-6 of k + 1/2 the other way and decode a
pixel one level off: exact re-encoding is a property of one platform's encoder and decoder.
"""

from typing import List

import tensorflow as tf
import tensorflow_probability as tfp

from tfflowcomp.flow import coupling

tfb = tfp.bijectors

# Model units (`pixel / 255 - 0.5`) -> 8-bit levels.
LEVELS = 255.0
# 8-bit levels are centred on this value on the image side.
PIXEL_OFFSET = 128.0


def round_straight_through(x):
  """`round(x)` forward, identity gradient backward. float32, any shape."""
  return x + tf.stop_gradient(tf.round(x) - x)


def floor_half_straight_through(x):
  """`floor(x / 2)` forward, gradient of `x / 2` backward (the YCoCg-R lifting shift)."""
  half = 0.5 * x
  return half + tf.stop_gradient(tf.floor(half) - half)


def to_levels(x):
  """Model units `pixel / 255 - 0.5` -> integer levels `pixel - 128` (exact for 8-bit pixels)."""
  return tf.round(x * LEVELS + (0.5 * LEVELS - PIXEL_OFFSET))


def from_levels(v):
  """Integer levels `pixel - 128` -> model units `pixel / 255 - 0.5`."""
  return (v + (PIXEL_OFFSET - 0.5 * LEVELS)) / LEVELS


class IntegerAdditiveCoupling(coupling.AdditiveCoupling):
  """`y_u = x_u + round(LEVELS * shift_fn(x_c / LEVELS))` on integer-valued levels."""

  def __init__(self, condition_channels, update_channels, shift_fn,
               name="integer_additive_coupling"):
    super().__init__(condition_channels, update_channels,
                     lambda cond: round_straight_through(LEVELS * shift_fn(cond / LEVELS)),
                     name=name)


def ycocg_r_bijectors() -> List[tfb.Bijector]:
  """The reversible YCoCg-R colour transform as four integer lifting steps, in analysis order.

  `[B, H, W, 3]` integer levels (R, G, B) -> (Co, Cg, Y) in the same channel slots:
  Co = R - B; t = B + floor(Co / 2); Cg = G - t; Y = t + floor(Cg / 2) (as in JPEG XR / H.264
  FRExt). A fixed transform: the learned lifting steps that follow can mix colours.
  """
  red, green, blue = [0], [1], [2]
  return [
      coupling.AdditiveCoupling(blue, red + green, lambda b: tf.concat([-b, tf.zeros_like(b)], -1),
                                name="ycocg_co"),
      coupling.AdditiveCoupling(red + green, blue,
                                lambda rg: floor_half_straight_through(rg[..., :1]),
                                name="ycocg_t"),
      coupling.AdditiveCoupling(blue, red + green, lambda t: tf.concat([tf.zeros_like(t), -t], -1),
                                name="ycocg_cg"),
      coupling.AdditiveCoupling(red + green, blue,
                                lambda rg: floor_half_straight_through(rg[..., 1:]),
                                name="ycocg_y"),
  ]


class IntegerColour(tf.keras.layers.Layer):
  """Keras layer with no weights whose `bijector()` is the YCoCg-R transform (see above)."""

  def bijector(self) -> tfb.Bijector:
    return tfb.Chain(list(reversed(ycocg_r_bijectors())), name=self.name)
