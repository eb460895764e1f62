"""Rate-distortion optimised quantization of the latent (tfflowcomp/quantization.py)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfflowcomp import quantization


@pytest.mark.parametrize("scale", [0.11, 0.5, 2.0, 30.0])
def test_gaussian_bits_is_a_distribution(scale):
  offsets = tf.range(-400.0, 401.0)
  bits = quantization.gaussian_bits(offsets, tf.fill(offsets.shape, scale)).numpy()
  probability = 2.0 ** -bits
  np.testing.assert_allclose(bits, bits[::-1], rtol=1e-6)  # Symmetric around 0.
  assert abs(probability[bits < 16].sum() - 1.0) < 1e-3
  assert np.all(np.diff(bits[400:]) >= -1e-6)  # Never cheaper further from the mean.


def test_gaussian_bits_of_a_wide_gaussian_follow_its_density():
  scale = 50.0
  bits = quantization.gaussian_bits(tf.constant([0.0, 60.0]), tf.constant([scale, scale]))
  density = [1 / (scale * math.sqrt(2 * math.pi)) * math.exp(-x * x / (2 * scale ** 2))
             for x in (0.0, 60.0)]
  np.testing.assert_allclose(bits.numpy(), -np.log2(density), rtol=1e-4)


def _random_case(seed, n=20000):
  rng = np.random.default_rng(seed)
  scale = np.exp(rng.uniform(np.log(0.11), np.log(100.0), n)).astype(np.float32)
  residual = (rng.standard_normal(n) * scale * rng.uniform(0.5, 2.0, n)).astype(np.float32)
  return tf.constant(residual), tf.constant(scale)


def _cost(offsets, residual, scale, weight):
  return (quantization.gaussian_bits(offsets, scale) +
          weight * tf.square(offsets - residual)).numpy()


def test_choice_is_a_neighbouring_integer_of_least_cost():
  residual, scale = _random_case(0)
  chosen = quantization.quantize_residual(residual, scale)
  low = tf.floor(residual)
  assert np.all(np.isin((chosen - low).numpy(), [0.0, 1.0]))
  weight = quantization.DISTORTION_WEIGHT
  best = np.minimum(_cost(low, residual, scale, weight), _cost(low + 1, residual, scale, weight))
  np.testing.assert_allclose(_cost(chosen, residual, scale, weight), best, rtol=1e-6)
  # Cheaper than plain rounding in total, and different from it for a real share of values.
  rounded = tf.round(residual)
  total_chosen = _cost(chosen, residual, scale, weight).sum()
  assert total_chosen < _cost(rounded, residual, scale, weight).sum()
  changed = np.mean(chosen.numpy() != rounded.numpy())
  assert 0.01 < changed < 0.5, changed


def test_choices_move_towards_the_mean_only():
  residual, scale = _random_case(1)
  chosen = quantization.quantize_residual(residual, scale).numpy()
  rounded = np.round(residual.numpy())
  moved = chosen != rounded
  assert np.all(np.abs(chosen[moved]) < np.abs(rounded[moved]))


def test_infinite_weight_is_plain_rounding_and_large_weight_approaches_it():
  residual, scale = _random_case(2)
  np.testing.assert_array_equal(
      quantization.quantize_residual(residual, scale, float("inf")).numpy(),
      np.round(residual.numpy()))
  heavy = quantization.quantize_residual(residual, scale, 1e6).numpy()
  assert np.mean(heavy != np.round(residual.numpy())) < 1e-3


def test_dead_zone_around_a_peaked_table():
  # Scale 0.3 bins: 1 is ~4.2 bits dearer than 0, so 0.6 is coded as 0; 0.95 is still coded as 1.
  chosen = quantization.quantize_residual(tf.constant([0.6, -0.6, 0.95, 0.2]),
                                          tf.constant([0.3] * 4))
  np.testing.assert_array_equal(chosen.numpy(), [0.0, 0.0, 1.0, 0.0])
