"""Squeeze: a space-to-depth bijector.

Direction: forward = analysis (image side -> latent side), `[B, H, W, C] -> [B, H/2, W/2, 4C]`.
The output channels are ordered by polyphase component, row-major over the 2x2 block:
`[x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]]`, each with `C` channels.
A permutation of elements, so its log-det-Jacobian is 0.
"""

import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors


class Squeeze(tfb.Bijector):
  """Space-to-depth by a factor of 2 (forward) and depth-to-space (inverse).

  Works on any even `H` and `W`; event shape is `[H, W, C]`.
  """

  def __init__(self, name="squeeze"):
    super().__init__(forward_min_event_ndims=3, is_constant_jacobian=True,
                     validate_args=False, name=name)

  def _forward(self, x):
    return tf.nn.space_to_depth(x, 2)

  def _inverse(self, y):
    return tf.nn.depth_to_space(y, 2)

  def _forward_log_det_jacobian(self, x):
    return tf.zeros([], dtype=x.dtype)

  def _inverse_log_det_jacobian(self, y):
    return tf.zeros([], dtype=y.dtype)

  def _forward_event_shape_tensor(self, shape):
    return tf.stack([shape[-3] // 2, shape[-2] // 2, shape[-1] * 4])

  def _inverse_event_shape_tensor(self, shape):
    return tf.stack([shape[-3] * 2, shape[-2] * 2, shape[-1] // 4])
