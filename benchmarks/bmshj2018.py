"""The Ballé et al. 2018 scale-hyperprior architecture (192 filters), for side-by-side timing.

Written for this benchmark from the paper's architecture ("Variational image compression with a
scale hyperprior", ICLR 2018), with tensorflow-compression layers and entropy models: analysis
4 x (5x5 conv, stride 2) with GDN, synthesis mirrored with IGDN, hyper-analysis 3x3/5x5/5x5 on
|y|, hyper-synthesis mirrored, a factorized prior for z and a Gaussian scale model for y. Weights
are untrained (timing only): speed does not depend on the weight values.
"""

import tensorflow as tf
import tensorflow_compression as tfc


def _conv(filters, kernel, stride, activation=None, transpose=False):
  return tfc.SignalConv2D(filters, (kernel, kernel), corr=not transpose, strides_down=1 if
                          transpose else stride, strides_up=stride if transpose else 1,
                          padding="same_zeros", use_bias=True, activation=activation)


class Bmshj2018(tf.Module):
  """compress: uint8 [H, W, 3] -> (strings, shapes); decompress: the inverse."""

  def __init__(self, filters=192, num_scales=64):
    super().__init__()
    self.analysis = tf.keras.Sequential([
        _conv(filters, 5, 2, tfc.GDN()), _conv(filters, 5, 2, tfc.GDN()),
        _conv(filters, 5, 2, tfc.GDN()), _conv(filters, 5, 2)])
    self.synthesis = tf.keras.Sequential([
        _conv(filters, 5, 2, tfc.GDN(inverse=True), True),
        _conv(filters, 5, 2, tfc.GDN(inverse=True), True),
        _conv(filters, 5, 2, tfc.GDN(inverse=True), True), _conv(3, 5, 2, None, True)])
    self.hyper_analysis = tf.keras.Sequential([
        _conv(filters, 3, 1, tf.nn.relu), _conv(filters, 5, 2, tf.nn.relu),
        _conv(filters, 5, 2)])
    self.hyper_synthesis = tf.keras.Sequential([
        _conv(filters, 5, 2, tf.nn.relu, True), _conv(filters, 5, 2, tf.nn.relu, True),
        _conv(filters, 3, 1, None, True)])
    offset, factor = tf.math.log(0.11), (tf.math.log(256.) - tf.math.log(0.11)) / (num_scales - 1)
    self.scale_to_index = lambda s: (tf.math.log(tf.maximum(s, 0.11)) - offset) / factor
    self.latent_model = tfc.LocationScaleIndexedEntropyModel(
        tfc.NoisyNormal, num_scales, lambda i: tf.exp(offset + factor * i), coding_rank=3,
        compression=True)
    prior = tfc.NoisyDeepFactorized(batch_shape=[filters])
    self.side_model = tfc.ContinuousBatchedEntropyModel(prior, coding_rank=3, compression=True,
                                                        stateless=False)
    self.num_scales = num_scales

  @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
  def compress(self, image):
    x = tf.cast(image, tf.float32)[None] / 255.0
    y = self.analysis(x)
    z = self.hyper_analysis(tf.abs(y))
    side = self.side_model.compress(z)
    z_hat = self.side_model.decompress(side, tf.shape(z)[1:-1])
    scale = self.hyper_synthesis(z_hat)[:, :tf.shape(y)[1], :tf.shape(y)[2]]
    indexes = tf.round(tf.clip_by_value(self.scale_to_index(scale), 0, self.num_scales - 1))
    latent = self.latent_model.compress(y, indexes)
    return latent, side, tf.shape(x)[1:3], tf.shape(y)[1:3], tf.shape(z)[1:3]

  @tf.function(input_signature=[tf.TensorSpec([1], tf.string), tf.TensorSpec([1], tf.string),
                                tf.TensorSpec([2], tf.int32), tf.TensorSpec([2], tf.int32),
                                tf.TensorSpec([2], tf.int32)])
  def decompress(self, latent, side, x_shape, y_shape, z_shape):
    z_hat = self.side_model.decompress(side, z_shape)
    scale = self.hyper_synthesis(z_hat)[:, :y_shape[0], :y_shape[1]]
    indexes = tf.round(tf.clip_by_value(self.scale_to_index(scale), 0, self.num_scales - 1))
    y_hat = self.latent_model.decompress(latent, indexes)
    x_hat = self.synthesis(y_hat)[0, :x_shape[0], :x_shape[1]]
    return tf.cast(tf.clip_by_value(tf.round(x_hat * 255.0), 0, 255), tf.uint8)

  def train_step_fn(self, optimizer):
    variables = None

    @tf.function
    def step(batch):
      nonlocal variables
      x = tf.cast(batch, tf.float32) / 255.0
      with tf.GradientTape() as tape:
        y = self.analysis(x)
        z = self.hyper_analysis(tf.abs(y))
        side = tfc.ContinuousBatchedEntropyModel(self.side_model.prior, coding_rank=3,
                                                 compression=False)
        z_tilde, z_bits = side(z, training=True)
        scale = self.hyper_synthesis(z_tilde)
        y_tilde, y_bits = self.latent_model(y, self.scale_to_index(scale), training=True)
        x_hat = self.synthesis(y_tilde)
        pixels = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        loss = (tf.reduce_sum(y_bits) + tf.reduce_sum(z_bits)) / pixels + 0.01 * tf.reduce_mean(
            tf.square(x - x_hat)) * 255.0 ** 2
      if variables is None:
        variables = self.trainable_variables
      optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
      return loss

    return step
