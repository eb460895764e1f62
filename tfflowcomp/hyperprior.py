"""Hyperprior networks: side information `z` that predicts the latent's location and scale.

Direction: `HyperAnalysis` = latent -> side information (encoder only);
`HyperSynthesis` = side information -> per-element location and log-scale of the latent (both
encoder and decoder; it decides the probability tables, so it must compute the same numbers on
both sides).
"""

import tensorflow as tf


class HyperAnalysis(tf.keras.layers.Layer):
  """float32 `[B, h, w, C]` latent -> `[B, ceil(h/4), ceil(w/4), hyper_channels]`.

  The output is in hyper-analysis units; the coded side symbols are it times
  `model.FlowCompressionModel.side_symbols_per_unit(quality)`, rounded.
  """

  def __init__(self, width: int, channels: int, name: str = "hyper_analysis"):
    super().__init__(name=name)
    self.layers_ = [
        tf.keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        tf.keras.layers.Conv2D(width, 5, strides=2, padding="same", activation="relu"),
        tf.keras.layers.Conv2D(channels, 5, strides=2, padding="same"),
    ]

  def call(self, latent):
    out = latent
    for layer in self.layers_:
      out = layer(out)
    return out


class HyperSynthesis(tf.keras.layers.Layer):
  """Side information `[B, hz, wz, Cz]` -> (loc, log_scale), each `[B, h, w, C]` float32.

  The input is in hyper-analysis units (rounded side symbols divided by
  `side_symbols_per_unit`). `loc` and `log_scale` are in latent units; `h, w` is the latent's
  spatial shape (the output of the transposed convolutions is cropped to it).
  """

  def __init__(self, width: int, latent_channels: int, name: str = "hyper_synthesis"):
    super().__init__(name=name)
    self.layers_ = [
        tf.keras.layers.Conv2DTranspose(width, 5, strides=2, padding="same", activation="relu"),
        tf.keras.layers.Conv2DTranspose(width, 5, strides=2, padding="same", activation="relu"),
        tf.keras.layers.Conv2D(2 * latent_channels, 3, padding="same"),
    ]

  def call(self, z, latent_shape):
    out = z
    for layer in self.layers_:
      out = layer(out)
    return _crop_and_split(out, latent_shape)

  def call_float64(self, z, latent_shape):
    """The same function evaluated in float64, for coding: (loc, log_scale), float64.

    The coding tables are chosen by rounding these outputs, so encoder and decoder must agree
    on which side of every rounding boundary each value falls. In float64 two platforms (or
    kernels) differ by ~1e-15 relative instead of ~1e-7, and the encoder's guard
    (`FlowCodec._guarded_side_information`) keeps every value far from a boundary.
    """
    out = tf.cast(z, tf.float64)
    for layer in self.layers_:
      kernel = tf.cast(layer.kernel, tf.float64)
      if isinstance(layer, tf.keras.layers.Conv2DTranspose):
        shape = tf.shape(out)
        out = tf.nn.conv2d_transpose(
            out, kernel, tf.stack([shape[0], 2 * shape[1], 2 * shape[2], kernel.shape[2]]),
            strides=2, padding="SAME")
      else:
        out = tf.nn.conv2d(out, kernel, strides=1, padding="SAME")
      out = tf.nn.bias_add(out, tf.cast(layer.bias, tf.float64))
      if layer.activation is tf.keras.activations.relu:
        out = tf.nn.relu(out)
    return _crop_and_split(out, latent_shape)


def _crop_and_split(out, latent_shape):
  """Crops the synthesis output to the latent's spatial shape -> (loc, log_scale)."""
  out = out[:, :latent_shape[0], :latent_shape[1], :]
  loc, log_scale = tf.split(out, 2, axis=-1)
  return loc, log_scale
