"""Entropy models of the latent and of the side information (tensorflow-compression).

Workflow:
  1. Training: `side_training_model()` (a `ContinuousBatchedEntropyModel` over a trainable
     `NoisyDeepFactorized` prior) gives the rate of `z`; `latent_entropy_model()` (a
     `LocationScaleIndexedEntropyModel` over Gaussians) gives the rate of the latent symbols from
     the hyperprior's location and scale.
  2. Freezing (a named, explicit step): `build_side_tables()` turns the trained prior into range
     coding tables; `frozen_side_model()` wraps them. The latent's tables depend on the config
     only and are built when the model is constructed.
  3. Coding: the frozen models' `compress`/`decompress` run TFC's range coder.

All coding runs in symbol units: latent symbols are integers next to `latent * gain(q) / step(q)`
(chosen by `quantization.py`), so the latent scale `sigma` (latent units) becomes
`sigma * gain / step` bins. The coder carries them minus the rounded predicted mean.
"""

import math

import tensorflow as tf
import tensorflow_compression as tfc

from tfflowcomp.config import ModelConfig


# 16 bits (TFC's maximum): the widest tables (scale_max bins) have several thousand entries,
# more than a 12-bit coder can give non-zero probability to.
RANGE_CODER_PRECISION = 16


class TablesNotBuiltError(RuntimeError):
  """Raised when coding is attempted with a model whose range-coding tables were not built."""


def _log_scale_range(config: ModelConfig):
  log_min = math.log(config.scale_min)
  log_step = (math.log(config.scale_max) - log_min) / (config.num_scales - 1)
  return log_min, log_step


def latent_entropy_model(config: ModelConfig) -> tfc.LocationScaleIndexedEntropyModel:
  """Gaussian location-scale model with `num_scales` log-spaced tables (built here)."""
  log_min, log_step = _log_scale_range(config)
  return tfc.LocationScaleIndexedEntropyModel(
      tfc.NoisyNormal, num_scales=config.num_scales,
      scale_fn=lambda i: tf.exp(log_min + log_step * i),
      coding_rank=3, compression=True, range_coder_precision=RANGE_CODER_PRECISION)


def scale_indexes(log_scale_bins, config: ModelConfig):
  """Continuous table index for a log-scale in bins, clipped to the table range (float32)."""
  log_min, log_step = _log_scale_range(config)
  index = (log_scale_bins - log_min) / log_step
  return tf.clip_by_value(index, 0.0, float(config.num_scales - 1))


def table_scale(indexes, config: ModelConfig):
  """Scale (in bins) of the latent table with integer index `indexes` (int32): float32."""
  log_min, log_step = _log_scale_range(config)
  return tf.exp(log_min + log_step * tf.cast(indexes, tf.float32))


def side_prior(config: ModelConfig) -> tfc.NoisyDeepFactorized:
  return tfc.NoisyDeepFactorized(batch_shape=[config.hyper_channels])


def side_training_model(prior: tfc.NoisyDeepFactorized) -> tfc.ContinuousBatchedEntropyModel:
  """Rate model of `z` for training (no tables; cheap to build in every step)."""
  return tfc.ContinuousBatchedEntropyModel(prior, coding_rank=3, compression=False,
                                           offset_heuristic=False)


def build_side_tables(prior: tfc.NoisyDeepFactorized):
  """The freeze step: range coding tables of the trained side prior.

  Built in a `tf.function` with `stateless=True` (about 1 s instead of ~20 s eagerly; the tables
  are identical).

  Returns:
    `(cdf, cdf_offset)`, int32 1-D tensors.
  """
  @tf.function(autograph=False)
  def build():
    model = tfc.ContinuousBatchedEntropyModel(prior, coding_rank=3, compression=True,
                                              stateless=True, offset_heuristic=False)
    return model.cdf, model.cdf_offset

  return build()


def frozen_side_model(config: ModelConfig, cdf, cdf_offset) -> tfc.ContinuousBatchedEntropyModel:
  """Coding model of `z` whose tables live in variables (so they are saved with the model)."""
  return tfc.ContinuousBatchedEntropyModel(
      prior_shape=[config.hyper_channels], coding_rank=3, compression=True,
      cdf=cdf, cdf_offset=cdf_offset, offset_heuristic=False, quantization_offset=None)
