"""Invertible 1x1 convolution with an LU parametrisation (Glow), from `tfb.ScaleMatvecLU`.

Direction: forward = analysis (image side -> latent side): `y[b, h, w] = W @ x[b, h, w]` with
`W = P L U` for every pixel of a `[B, H, W, C]` float32 tensor. Log-det-Jacobian per example:
`H * W * log|det W|`.

The matrix is initialised to a given orthonormal matrix (identity by default), so the step starts
as an energy-preserving rotation.
"""

import numpy as np
import scipy.linalg
import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors

# An orthonormal colour transform (luma, red-blue and green-magenta opponents). Rows are unit
# vectors, mutually orthogonal.
OPPONENT_COLOUR_MATRIX = np.array(
    [[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 2.0, -1.0]]) / np.sqrt([[3.0], [2.0], [6.0]])


class InvertibleConv1x1(tf.keras.layers.Layer):
  """Keras layer holding the LU factors; `bijector()` returns the TFP `ScaleMatvecLU`."""

  def __init__(self, channels: int, initial_matrix=None, name: str = "conv1x1"):
    super().__init__(name=name)
    if initial_matrix is None:
      initial_matrix = np.eye(channels)
    initial_matrix = np.asarray(initial_matrix, dtype=np.float64)
    if initial_matrix.shape != (channels, channels):
      raise ValueError(f"initial_matrix must be {channels}x{channels}.")
    permutation, lower, upper = scipy.linalg.lu(initial_matrix)
    # scipy: A = P @ L @ U. TFP: A = gather(L @ U, permutation) along rows, i.e. rows of L @ U
    # reordered so that row i of A is row permutation[i] of L @ U.
    perm_index = np.argmax(permutation, axis=1)
    lower_upper = np.tril(lower, -1) + upper
    self.lower_upper = self.add_weight(
        name="lower_upper", shape=[channels, channels], trainable=True,
        initializer=tf.constant_initializer(lower_upper.astype(np.float32)))
    self.permutation = self.add_weight(
        name="permutation", shape=[channels], dtype=tf.int32, trainable=False,
        initializer=tf.constant_initializer(perm_index.astype(np.int32)))

  def bijector(self) -> tfb.Bijector:
    return tfb.ScaleMatvecLU(self.lower_upper, self.permutation, name=self.name)
