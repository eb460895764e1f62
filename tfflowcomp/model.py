"""The Keras training model: flow + per-channel gains + hyperprior + entropy models.

`FlowCompressionModel` owns every trainable variable. Its `train_step` draws one quality per batch
and minimises `bpp + lambda(quality) * MSE` (see `quality.rd_lambda`), or its logarithm
(`training_objective`), so one model learns every rate. It does not code bitstreams:
`codec.FlowCodec` does, after its tables have been built from a trained model
(`FlowCodec.from_model`).

Data flow of one example (analysis = image -> latent):

    x uint8 [H, W, 3] -> x / 255 - 0.5 -> flow.analysis -> y [H/2^L, W/2^L, 3*4^L]
    symbols = y * gain(q) / step(q)   (rounded for coding, noisy for the rate in training)
    z = hyper_analysis(y) * side_gain(q) -> round -> / side_gain(q) -> hyper_synthesis
      -> (loc, log_scale) of y          (side_gain = 1 unless `ModelConfig.side_gains`)
    reconstruction = flow.synthesis(round(symbols) * step(q) / gain(q))
"""

import math
from typing import Dict

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc

from tfflowcomp import entropy
from tfflowcomp import hyperprior
from tfflowcomp import quality as quality_lib
from tfflowcomp.config import LOSS_SCALES
from tfflowcomp.config import ModelConfig
from tfflowcomp.config import check_choice
from tfflowcomp.flow import MultiscaleFlow
from tfflowcomp.flow import integer


def to_model_units(image):
  """uint8 or float `[..., 3]` in [0, 255] -> float32 `pixel / 255 - 0.5`."""
  return tf.cast(image, tf.float32) / 255.0 - 0.5


def to_pixels(x):
  """float32 `pixel / 255 - 0.5` -> float32 pixels in [0, 255] (not rounded)."""
  return (x + 0.5) * 255.0


# `loss_scale="log"` minimises LOG_LOSS_GRADIENT_SCALE * log(loss). The constant is the typical
# loss averaged over qualities (~6 for the shipped model: ~2 at quality 0, ~12 at quality 1, from
# its Kodak bpp and MSE), so the gradient keeps its average size and a run switched from
# "linear" keeps its effective learning rate (Adam's second-moment estimate remembers ~1,000
# steps of gradient sizes).
LOG_LOSS_GRADIENT_SCALE = 6.0

# The side gains' variables hold log-gains divided by this, so Adam, whose steps are about the
# learning rate whatever the gradient's size, moves the log-gains this many times faster than
# the other weights: they start at 0 in a warm start and must travel ~1 nat in a few thousand
# fine-tuning steps at a learning rate of ~5e-5 (the latent's gains had a whole training run).
# Measured: at 20 they moved only ~0.03 nat per 100 steps at 5e-5 (their gradient's sign is
# noisy: every batch has another quality). Part of the model's definition: the codec's
# fingerprint covers it (`codec.FlowCodec._compute_fingerprint`).
SIDE_LOG_GAIN_SPEEDUP = 100.0


def training_objective(loss, loss_scale: str):
  """What the optimizer minimises for a batch's `loss = bpp + lambda * MSE` (float32 scalar).

  "linear": the loss itself. "log": `LOG_LOSS_GRADIENT_SCALE * log(loss)`, whose gradient is
  the loss's gradient times `LOG_LOSS_GRADIENT_SCALE / loss`: a batch at a low quality (small
  loss) then weighs as much, relatively, as one at a high quality.
  """
  check_choice("loss_scale", loss_scale, LOSS_SCALES)
  if loss_scale == "log":
    return LOG_LOSS_GRADIENT_SCALE * tf.math.log(loss)
  return loss


def _interpolate(at_quality_0, at_quality_1, quality):
  """Per-channel values at `quality` (a scalar of the result's dtype), linear between the two."""
  at_quality_0 = tf.cast(at_quality_0, quality.dtype)
  at_quality_1 = tf.cast(at_quality_1, quality.dtype)
  return (1.0 - quality) * at_quality_0 + quality * at_quality_1


class FlowCompressionModel(tf.keras.Model):
  """Trainable flow codec. Call `initialize(batch)` once before training from scratch."""

  def __init__(self, config: ModelConfig, quality_range=(0.0, 1.0), loss_scale: str = "linear",
               quality_power: float = 1.0, name="tfflowcomp"):
    super().__init__(name=name)
    self.config = config
    self.quality_range = tuple(float(q) for q in quality_range)
    self.quality_power = float(quality_power)  # See `TrainConfig.quality_power`.
    check_choice("loss_scale", loss_scale, LOSS_SCALES)
    self.loss_scale = loss_scale
    channels = config.latent_channels
    self.flow = MultiscaleFlow(config)
    # Per-channel log-gains at quality 0 and 1, interpolated linearly in between.
    self.log_gain_low = self.add_weight(name="log_gain_low", shape=[channels],
                                        initializer="zeros")
    self.log_gain_high = self.add_weight(name="log_gain_high", shape=[channels],
                                         initializer="zeros")
    if config.side_gains:  # Created only then: models without them keep their variables.
      self.side_log_gain_low = self.add_weight(
          name="side_log_gain_low", shape=[config.hyper_channels], initializer="zeros")
      self.side_log_gain_high = self.add_weight(
          name="side_log_gain_high", shape=[config.hyper_channels], initializer="zeros")
    self.hyper_analysis = hyperprior.HyperAnalysis(config.hyper_width, config.hyper_channels)
    self.hyper_synthesis = hyperprior.HyperSynthesis(config.hyper_width, channels)
    self.side_prior = entropy.side_prior(config)
    self.latent_model = entropy.latent_entropy_model(config)
    self.initialized = tf.Variable(False, trainable=False, name="initialized")
    self.loss_tracker = {name: tf.keras.metrics.Mean(name) for name in
                         ("loss", "bpp", "mse", "psnr", "quality")}

  def ensure_built(self) -> None:
    """Creates every variable (Keras builds layers lazily) with one tiny forward pass.

    Needed before restoring a checkpoint into a fresh model, fingerprinting or exporting it.
    """
    if not getattr(self, "_all_built", False):
      size = self.config.block_size
      self.rate_distortion(tf.zeros([1, size, size, 3]), 0.5, training=False)
      self._all_built = True

  # ---- The quality knob -------------------------------------------------------------------

  def symbols_per_latent_unit(self, quality, dtype=tf.float32):
    """`gain(q) / step(q)` per latent channel: `[C]` of `dtype` for a scalar quality.

    Training uses float32; coding uses float64 (see `codec.FlowCodec._per_unit`).

    An integer flow's latent is integers / 255, so a symbol finer than one integer (more than
    255 symbols per unit) would code nothing more; the value is capped at 255. With the cap,
    decoding symbol `s` gives the integer latent `v = round(255 s / p)` and re-encoding finds
    `v p / 255` within `p / 510 <= 1/2` of `s`, so plain rounding returns `s`: the decoded image
    re-encodes to the same symbols, and channels at the cap are coded losslessly. Quality 1
    puts every channel at the cap, whatever the learned gains: it is lossless by definition.
    """
    quality = tf.cast(quality, dtype)
    log_gain = _interpolate(self.log_gain_low, self.log_gain_high, quality)
    step = quality_lib.step_size(quality, self.config.max_step, self.config.min_step,
                                 dtype) / 255.0
    per_unit = tf.exp(log_gain) / step
    if self.config.integer_flow:
      levels = tf.cast(integer.LEVELS, dtype)
      per_unit = tf.where(quality >= 1.0, tf.fill(tf.shape(per_unit), levels),
                          tf.minimum(per_unit, levels))
    return per_unit

  def side_symbols_per_unit(self, quality, dtype=tf.float32):
    """Side symbols per unit of the hyper analysis's output: `[Cz]` of `dtype`, scalar quality.

    The coded side information is `round(hyper_analysis(latent) * side_symbols_per_unit)`, and
    the hyper synthesis gets it divided back. All ones unless `ModelConfig.side_gains`; then
    `exp(SIDE_LOG_GAIN_SPEEDUP * ((1 - q) * low + q * high))` per channel.
    """
    channels = self.config.hyper_channels
    if not self.config.side_gains:
      return tf.ones([channels], dtype)
    log_gain = _interpolate(self.side_log_gain_low, self.side_log_gain_high,
                            tf.cast(quality, dtype))
    return tf.exp(SIDE_LOG_GAIN_SPEEDUP * log_gain)

  # ---- Initialisation ---------------------------------------------------------------------

  def initialize(self, images) -> None:
    """Data-dependent ActNorm init, then gains that balance each channel's pixel-domain error.

    At initialisation the flow is affine (couplings start as their linear parts), so the
    synthesis norm `n_c` of latent channel `c` is measured with an impulse. Setting
    `gain_c = n_c` makes a quantization step `step / gain_c` in channel `c` contribute the same
    pixel MSE, `step**2 / 12`, for every channel.

    Args:
      images: uint8 or float `[B, H, W, 3]` training batch, values in [0, 255].
    """
    self.ensure_built()
    self.flow.initialize(to_model_units(images))
    channels = self.config.latent_channels
    size = 8  # Latent positions; the impulse sits in the middle, away from the borders.
    base = self.flow.synthesis(tf.zeros([1, size, size, channels]))
    norms = []
    for start in range(0, channels, 64):  # Chunks bound the memory of the impulse batch.
      chunk = np.arange(start, min(start + 64, channels))
      impulses = np.zeros([len(chunk), size, size, channels], np.float32)
      impulses[np.arange(len(chunk)), size // 2, size // 2, chunk] = 1.0
      response = self.flow.synthesis(tf.constant(impulses)) - base
      norms.append(tf.sqrt(tf.reduce_sum(tf.square(response), axis=[1, 2, 3])))
    norms = tf.concat(norms, axis=0)
    self.log_gain_low.assign(tf.math.log(norms))
    self.log_gain_high.assign(tf.math.log(norms))
    self.initialized.assign(True)

  # ---- Rate-distortion --------------------------------------------------------------------

  def rate_distortion(self, images, quality, training: bool) -> Dict[str, tf.Tensor]:
    """Estimated rate and distortion of a batch at one quality.

    Args:
      images: uint8 or float `[B, H, W, 3]` in [0, 255], `H`, `W` multiples of the block size.
      quality: float32 scalar in [0, 1].
      training: whether to use noise (rate) and straight-through rounding (distortion).
    Returns:
      dict of float32 scalars: `loss`, `bpp`, `mse` (8-bit pixel units), `psnr`; and the
      reconstruction `x_hat` (float32 pixels, `[B, H, W, 3]`).
    """
    x = to_model_units(images)
    latent = self.flow.analysis(x)
    per_unit = self.symbols_per_latent_unit(quality)
    side_per_unit = self.side_symbols_per_unit(quality)
    side_model = entropy.side_training_model(self.side_prior)
    z = self.hyper_analysis(latent) * side_per_unit
    _, side_bits = side_model(z, training=training)
    z_hat = side_model.quantize(z)
    loc, log_scale = self.hyper_synthesis(z_hat / side_per_unit, tf.shape(latent)[1:3])
    symbols = latent * per_unit
    indexes = entropy.scale_indexes(log_scale + tf.math.log(per_unit), self.config)
    _, latent_bits = self.latent_model(symbols, indexes, loc=loc * per_unit, training=training)
    symbols_hat = tfc.round_st(symbols)
    x_hat = self.flow.synthesis(symbols_hat / per_unit)

    shape = tf.shape(x)
    num_pixels = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
    bpp = (tf.reduce_sum(latent_bits) + tf.reduce_sum(side_bits)) / num_pixels
    mse = tf.reduce_mean(tf.square((x_hat - x) * 255.0))
    step = quality_lib.step_size(quality, self.config.max_step, self.config.min_step)
    loss = bpp + quality_lib.rd_lambda(step) * mse
    psnr = 10.0 * tf.math.log(255.0 ** 2 / tf.maximum(mse, 1e-10)) / math.log(10.0)
    return dict(loss=loss, bpp=bpp, mse=mse, psnr=psnr, x_hat=to_pixels(x_hat))

  def _sample_quality(self):
    low, high = self.quality_range  # quality_power 1 draws what tf.random.uniform(low, high) did.
    return low + (high - low) * tf.random.uniform([]) ** self.quality_power

  def train_step(self, images):
    quality = self._sample_quality()
    with tf.GradientTape() as tape:
      result = self.rate_distortion(images, quality, training=True)
      objective = training_objective(result["loss"], self.loss_scale)
    variables = self.trainable_variables
    gradients = tape.gradient(objective, variables)
    gradients, _ = tf.clip_by_global_norm(gradients, 10.0)
    self.optimizer.apply_gradients(zip(gradients, variables))
    return self._update_metrics(result, quality)

  def test_step(self, images):
    quality = self._sample_quality()
    result = self.rate_distortion(images, quality, training=False)
    return self._update_metrics(result, quality)

  def _update_metrics(self, result, quality):
    for name, tracker in self.loss_tracker.items():
      tracker.update_state(quality if name == "quality" else result[name])
    return {name: tracker.result() for name, tracker in self.loss_tracker.items()}

  @property
  def metrics(self):
    return list(self.loss_tracker.values())
