"""Encoder-side refinement of the side information `z` (the hyperprior's latent).

The hyper analysis predicts `z` from the latent in one pass, trained to be good on average over
images and qualities (an amortised guess). The encoder may send any integer `z`: the decoder only
runs the hyper synthesis on what it receives. So before rounding, the encoder refines `z` for the
image and quality at hand by gradient descent (Adam, a fixed number of iterations) on the
estimated cost of the file,

    bits(z) under the side prior
    + bits(latent symbols) under the Gaussians hyper_synthesis(round(z)) predicts,
      centred on their rounded means as the coder codes them,

with the symbols fixed (the codec chooses them first, with the one-pass `z`'s tables:
`codec.FlowCodec._choose_symbols`) and straight-through gradients through the roundings. The
iterate with the lowest estimated cost wins (the unrefined `z` included), so refinement never
makes the estimate worse. Decoders and the file format are unchanged.

Everything here is deterministic (no noise; a fixed number of steps), so the same image gives
the same file. It is not smooth in the image, though (a decoded image can refine to a rather
different `z`), so the symbols are never chosen with the refined `z`: refinement changes the file
size, not the decoded image, and re-encoding stays as stable as with the one-pass encoder.
"""

import math

import tensorflow as tf

from tfflowcomp import quantization

# Measured with tfflowcomp_base v13 (benchmarks/quantization.py, benchmarks/README.md): 48 steps
# code 1-3 % smaller files than 16 (most at the lowest qualities) at ~2.5x the encode time.
DEFAULT_ITERATIONS = 48
LEARNING_RATE = 0.2
_BETA1, _BETA2, _EPSILON = 0.9, 0.999, 1e-8


def estimated_bits(z, symbols, per_unit, hyper_synthesis, side_prior, scale_min: float,
                   side_per_unit=1.0):
  """Estimated size in bits of side information `z` plus the latent symbols it predicts.

  Args:
    z: float32 `[1, hz, wz, Cz]`, continuous side information in side symbols (rounded
      straight-through).
    symbols: float32 `[1, h, w, C]`, integer-valued latent symbols.
    per_unit: float32 `[C]`, symbols per latent unit (`model.symbols_per_latent_unit`).
    hyper_synthesis: `hyperprior.HyperSynthesis` (z -> loc, log_scale in latent units).
    side_prior: the trained prior of `z` (a TFC noisy distribution, batch shape `[Cz]`).
    scale_min: smallest table scale in bins (`ModelConfig.scale_min`).
    side_per_unit: float32 `[Cz]` (or 1), side symbols per unit of the hyper synthesis's input
      (`model.side_symbols_per_unit`).
  Returns:
    float32 scalar.
  """
  z_hat = _straight_through_round(z)
  side_bits = -tf.reduce_sum(side_prior.log_prob(z)) / math.log(2.0)
  loc, log_scale = hyper_synthesis(z_hat / side_per_unit, tf.shape(symbols)[1:3])
  scale = tf.maximum(tf.exp(log_scale) * per_unit, scale_min)
  # The coder codes `symbols - round(loc)`; with the unrounded location the estimate was up to
  # 4 % optimistic after refinement (it learned fractional locations the coder cannot use).
  offsets = symbols - _straight_through_round(loc * per_unit)
  latent_bits = tf.reduce_sum(quantization.gaussian_bits(offsets, scale))
  return side_bits + latent_bits


def _straight_through_round(x):
  """round(x) forward, identity backward."""
  return x + tf.stop_gradient(tf.round(x) - x)


def refine_side_information(z, symbols, per_unit, hyper_synthesis, side_prior,
                            scale_min: float, iterations: int = DEFAULT_ITERATIONS,
                            learning_rate: float = LEARNING_RATE, side_per_unit=1.0):
  """Adam on `estimated_bits`; returns the best iterate (float32, shape of `z`, not rounded).

  Args: as `estimated_bits`, plus `iterations` (python int or int32 scalar tensor; 0 returns `z`)
  and the Adam step size `learning_rate` (in units of `z`, whose coded values are integers).
  """
  def cost_and_gradient(z):
    with tf.GradientTape() as tape:
      tape.watch(z)
      cost = estimated_bits(z, symbols, per_unit, hyper_synthesis, side_prior, scale_min,
                            side_per_unit)
    return cost, tape.gradient(cost, z)

  def keep_going(i, *unused):
    return i < iterations

  def step(i, z, first_moment, second_moment, best_z, best_cost):
    cost, gradient = cost_and_gradient(z)
    better = cost < best_cost
    best_z = tf.where(better, z, best_z)
    best_cost = tf.where(better, cost, best_cost)
    t = tf.cast(i + 1, tf.float32)
    first_moment = _BETA1 * first_moment + (1.0 - _BETA1) * gradient
    second_moment = _BETA2 * second_moment + (1.0 - _BETA2) * tf.square(gradient)
    update = (first_moment / (1.0 - _BETA1 ** t)) / (
        tf.sqrt(second_moment / (1.0 - _BETA2 ** t)) + _EPSILON)
    return i + 1, z - learning_rate * update, first_moment, second_moment, best_z, best_cost

  zeros = tf.zeros_like(z)
  inf = tf.constant(float("inf"))
  *_, best_z, _ = tf.while_loop(
      keep_going, step, (tf.constant(0), z, zeros, zeros, z, inf))
  return best_z
