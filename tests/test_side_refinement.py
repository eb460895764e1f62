"""Encoder-side refinement of the side information (tfflowcomp/side_refinement.py)."""

import numpy as np
import pytest
import tensorflow as tf

import tiny
from tfflowcomp import side_refinement
from tfflowcomp.codec import FlowCodec


@pytest.fixture(scope="module")
def perturbed():
  """A tiny codec whose hyperprior is not the identity-like initialisation, and a latent."""
  codec = FlowCodec.from_model(tiny.tiny_model(perturb=0.05), side_iterations=0)
  image = tf.constant(tiny.smooth_image(64, 48, seed=5))
  latent = codec._latent(image)  # pylint: disable=protected-access
  per_unit = tf.cast(codec._per_unit(tf.constant(20000)).latent, tf.float32)  # pylint: disable=protected-access
  return codec, image, latent, per_unit


def _problem(codec, latent, per_unit):
  model = codec.model
  return dict(symbols=tf.round(latent * per_unit), per_unit=per_unit,
              hyper_synthesis=model.hyper_synthesis, side_prior=model.side_prior,
              scale_min=codec.config.scale_min)


def test_refinement_lowers_the_estimated_size_and_is_deterministic(perturbed):
  codec, _, latent, per_unit = perturbed
  problem = _problem(codec, latent, per_unit)
  start = codec.model.hyper_analysis(latent)
  before = float(side_refinement.estimated_bits(start, **problem))
  refined = side_refinement.refine_side_information(start, iterations=16, **problem)
  after = float(side_refinement.estimated_bits(refined, **problem))
  assert after < 0.995 * before  # ~1 % on this untrained tiny model.
  again = side_refinement.refine_side_information(start, iterations=16, **problem)
  np.testing.assert_array_equal(refined.numpy(), again.numpy())


def test_zero_iterations_keep_the_hyper_analysis_estimate(perturbed):
  codec, _, latent, per_unit = perturbed
  start = codec.model.hyper_analysis(latent)
  kept = side_refinement.refine_side_information(
      start, iterations=0, **_problem(codec, latent, per_unit))
  np.testing.assert_array_equal(kept.numpy(), start.numpy())


def test_the_best_iterate_wins_even_with_a_step_that_is_far_too_large(perturbed):
  codec, _, latent, per_unit = perturbed
  problem = _problem(codec, latent, per_unit)
  start = codec.model.hyper_analysis(latent)
  wild = side_refinement.refine_side_information(start, iterations=4, learning_rate=1e4,
                                                 **problem)
  assert (float(side_refinement.estimated_bits(wild, **problem)) <=
          float(side_refinement.estimated_bits(start, **problem)))


def test_refined_files_decode_with_the_same_decoder_and_are_smaller(perturbed):
  codec, image, _, _ = perturbed
  refined = FlowCodec.from_model(codec.model, side_iterations=16)
  assert refined.fingerprint == codec.fingerprint  # An encoder choice, not a new model.
  quality = 20000 / 65535
  one_pass, better = codec.compress(image.numpy(), quality), refined.compress(image.numpy(), quality)
  assert better != one_pass and len(better) < len(one_pass)
  np.testing.assert_array_equal(codec.decompress(better), refined.decompress(better))
  assert refined.compress(image.numpy(), quality) == better


def test_negative_iterations_are_refused():
  with pytest.raises(ValueError, match="side_iterations"):
    FlowCodec(tiny.tiny_model(), side_iterations=-1)
