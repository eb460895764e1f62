"""ActNorm: per-channel affine normalisation with data-dependent initialisation (Glow).

Direction: forward = analysis (image side -> latent side): `y = (x + bias) * exp(log_scale)`,
per channel, on `[B, H, W, C]` float32 tensors. Log-det-Jacobian per example:
`H * W * sum(log_scale)`.

The data-dependent initialisation is an explicit step, `initialize(x)`, that the trainer calls once
on a batch before the first optimizer step. It never runs inside `call`, so compressing or
decompressing never depends on the data seen.
"""

import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors


class ActNorm(tf.keras.layers.Layer):
  """Keras layer that owns the ActNorm variables and builds the TFP bijector."""

  def __init__(self, channels: int, name: str = "actnorm"):
    super().__init__(name=name)
    self.channels = channels
    self.bias = self.add_weight(
        name="bias", shape=[channels], initializer="zeros", trainable=True)
    self.log_scale = self.add_weight(
        name="log_scale", shape=[channels], initializer="zeros", trainable=True)

  def bijector(self) -> tfb.Bijector:
    """A fresh bijector (no cache carried across calls) reading the current variables."""
    return tfb.Chain([tfb.Scale(log_scale=self.log_scale), tfb.Shift(self.bias)],
                     name=self.name)

  def initialize(self, x: tf.Tensor) -> None:
    """Sets bias and scale so that this layer's output has zero mean and unit variance.

    Args:
      x: float32 `[B, H, W, C]`, the input this layer sees on a training batch.
    """
    mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
    self.bias.assign(-mean)
    self.log_scale.assign(-0.5 * tf.math.log(variance + 1e-6))
