"""Coupling bijectors: additive (volume preserving) and affine, on chosen channel sets.

Direction: forward = analysis (image side -> latent side). Both work on float32 `[B, H, W, C]`
tensors of any `H` and `W`. A coupling leaves the conditioning channels unchanged and updates the
other channels with a function of the conditioning channels only, so the inverse mirrors the
forward line for line:

    AdditiveCoupling:  y_u = x_u + t(x_c)               x_u = y_u - t(y_c)
    AffineCoupling:    y_u = x_u * exp(s(x_c)) + t(x_c)  x_u = (y_u - t(y_c)) * exp(-s(y_c))

Every network's last layer is zero-initialised, so each coupling starts as the identity (or as its
fixed linear part, for the wavelet lifting steps of `lifting.py`).
"""

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors


class _ChannelCoupling(tfb.Bijector):
  """Base class: splits channels into conditioning and updated sets and merges them back."""

  def __init__(self, condition_channels: Sequence[int], update_channels: Sequence[int],
               name: str, is_constant_jacobian: bool):
    super().__init__(forward_min_event_ndims=3, is_constant_jacobian=is_constant_jacobian,
                     validate_args=False, name=name)
    self._cond = list(condition_channels)
    self._upd = list(update_channels)
    order = self._cond + self._upd
    if sorted(order) != list(range(len(order))):
      raise ValueError("condition and update channels must partition range(C).")
    self._merge_order = list(np.argsort(order))

  def _split(self, x):
    return tf.gather(x, self._cond, axis=-1), tf.gather(x, self._upd, axis=-1)

  def _merge(self, cond, upd):
    return tf.gather(tf.concat([cond, upd], axis=-1), self._merge_order, axis=-1)


class AdditiveCoupling(_ChannelCoupling):
  """`y_u = x_u + shift_fn(x_c)`; volume preserving (log-det 0)."""

  def __init__(self, condition_channels, update_channels,
               shift_fn: Callable[[tf.Tensor], tf.Tensor], name="additive_coupling"):
    super().__init__(condition_channels, update_channels, name, is_constant_jacobian=True)
    self._shift_fn = shift_fn

  def _forward(self, x):
    cond, upd = self._split(x)
    return self._merge(cond, upd + self._shift_fn(cond))

  def _inverse(self, y):
    cond, upd = self._split(y)
    return self._merge(cond, upd - self._shift_fn(cond))

  def _forward_log_det_jacobian(self, x):
    return tf.zeros([], dtype=x.dtype)

  def _inverse_log_det_jacobian(self, y):
    return tf.zeros([], dtype=y.dtype)


class AffineCoupling(_ChannelCoupling):
  """`y_u = x_u * exp(s) + t` with `(s, t) = fn(x_c)`; `s` is bounded by a scaled tanh."""

  def __init__(self, condition_channels, update_channels,
               log_scale_and_shift_fn: Callable[[tf.Tensor], tf.Tensor],
               name="affine_coupling"):
    super().__init__(condition_channels, update_channels, name, is_constant_jacobian=False)
    self._fn = log_scale_and_shift_fn

  def _log_scale_and_shift(self, cond):
    raw = self._fn(cond)
    raw_log_scale, shift = tf.split(raw, 2, axis=-1)
    return 2.0 * tf.math.tanh(0.5 * raw_log_scale), shift

  def _forward(self, x):
    cond, upd = self._split(x)
    log_scale, shift = self._log_scale_and_shift(cond)
    return self._merge(cond, upd * tf.math.exp(log_scale) + shift)

  def _inverse(self, y):
    cond, upd = self._split(y)
    log_scale, shift = self._log_scale_and_shift(cond)
    return self._merge(cond, (upd - shift) * tf.math.exp(-log_scale))

  def _forward_log_det_jacobian(self, x):
    cond, _ = self._split(x)
    log_scale, _ = self._log_scale_and_shift(cond)
    return tf.reduce_sum(log_scale, axis=[-3, -2, -1])

  def _inverse_log_det_jacobian(self, y):
    cond, _ = self._split(y)
    log_scale, _ = self._log_scale_and_shift(cond)
    return -tf.reduce_sum(log_scale, axis=[-3, -2, -1])


class CouplingNetwork(tf.keras.layers.Layer):
  """Three 3x3 convolutions `in -> width -> width -> out_channels`, ReLU between them.

  The last convolution is zero-initialised, so the network outputs zeros until trained.
  Shapes: float32 `[B, H, W, C_in] -> [B, H, W, out_channels]`.
  """

  def __init__(self, width: int, out_channels: int, name: str = "coupling_net"):
    super().__init__(name=name)
    self.hidden1 = tf.keras.layers.Conv2D(width, 3, padding="same", activation="relu")
    self.hidden2 = tf.keras.layers.Conv2D(width, 1, padding="same", activation="relu")
    self.output_conv = tf.keras.layers.Conv2D(
        out_channels, 3, padding="same", kernel_initializer="zeros", bias_initializer="zeros")

  def call(self, x):
    return self.output_conv(self.hidden2(self.hidden1(x)))


class AffineCouplingStep(tf.keras.layers.Layer):
  """Glow affine coupling: the second half of the channels is updated from the first half."""

  def __init__(self, channels: int, width: int, name: str = "affine_coupling"):
    super().__init__(name=name)
    half = channels // 2
    self._cond = list(range(half))
    self._upd = list(range(half, channels))
    self.network = CouplingNetwork(width, 2 * len(self._upd), name="net")

  def bijector(self) -> tfb.Bijector:
    return AffineCoupling(self._cond, self._upd, self.network, name=self.name)
