"""Contracts of every flow step and of the whole flow: bijective, finite, correct log-det."""

import numpy as np
import pytest
import tensorflow as tf

import tiny
from tfflowcomp.config import ModelConfig
from tfflowcomp.flow import (ActNorm, AffineCouplingStep, InvertibleConv1x1, LiftingStep,
                             MultiscaleFlow, Squeeze, wavelet_lifting_steps)
from tfflowcomp.flow.multiscale import FlowLevel


def _perturb(layer, scale, seed=0):
  rng = np.random.default_rng(seed)
  for variable in layer.trainable_variables:
    variable.assign_add(rng.normal(0, scale, variable.shape).astype(np.float32))


def _random(shape, seed=0):
  return tf.constant(np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32))


def _steps_under_test():
  steps = list(wavelet_lifting_steps(8)) + [
      ActNorm(12), InvertibleConv1x1(12), AffineCouplingStep(12, 8)]
  for i, step in enumerate(steps):
    step.bijector().forward(_random([1, 8, 8, 12]))  # Builds the Keras sublayers.
    _perturb(step, 0.1, seed=i)
  return [(type(s).__name__, s.bijector) for s in steps] + [("Squeeze", Squeeze)]


@pytest.mark.parametrize("name,make_bijector", _steps_under_test())
def test_every_step_is_bijective_and_finite(name, make_bijector):
  x = _random([2, 8, 6, 12], seed=1)
  bijector = make_bijector()
  y = bijector.forward(x)
  # Fresh tensors and a fresh bijector: TFP's cache must not answer the inverse for us.
  x_back = make_bijector().inverse(tf.identity(y))
  assert np.all(np.isfinite(y.numpy())), name
  np.testing.assert_allclose(x_back.numpy(), x.numpy(), atol=1e-5, err_msg=name)
  y_again = make_bijector().forward(tf.identity(x_back))
  np.testing.assert_allclose(y_again.numpy(), y.numpy(), atol=1e-5, err_msg=name)


def test_whole_flow_inverse_error_on_768x512_is_below_1e_4():
  flow = tiny.tiny_model(perturb=0.02).flow
  x = tf.constant(tiny.smooth_image(512, 768)[None].astype(np.float32) / 255.0 - 0.5)
  latent = flow.analysis(x)
  assert latent.shape == (1, 128, 192, 48)
  x_back = flow.synthesis(tf.identity(latent))
  error = float(tf.reduce_max(tf.abs(x_back - x)))
  assert np.isfinite(error) and error <= 1e-4, error


def test_flow_under_tf_function_matches_eager():
  flow = tiny.tiny_model(perturb=0.02).flow
  x = _random([1, 16, 24, 3])
  eager = flow.analysis(x)
  graph = tf.function(flow.analysis)(x)
  np.testing.assert_allclose(graph.numpy(), eager.numpy(), rtol=1e-5, atol=1e-4)


def test_latent_has_as_many_numbers_as_the_image():
  for levels in (1, 2, 3):
    flow = MultiscaleFlow(ModelConfig(num_levels=levels, coupling_width=4))
    x = _random([1, 16, 32, 3])
    assert np.prod(flow.analysis(x).shape) == np.prod(x.shape)


def test_log_det_matches_autodiff_jacobian():
  flow = tiny.tiny_model(perturb=0.05).flow
  x = tf.constant(np.random.default_rng(3).uniform(-0.5, 0.5, [1, 4, 4, 3]), tf.float64)
  x32 = tf.cast(x, tf.float32)
  with tf.GradientTape() as tape:
    tape.watch(x32)
    latent = tf.reshape(flow.analysis(x32), [-1])
  jacobian = tape.jacobian(latent, x32)
  jacobian = tf.reshape(tf.cast(jacobian, tf.float64), [latent.shape[0], -1])
  _, expected = np.linalg.slogdet(jacobian.numpy())
  actual = float(flow.analysis_log_det_jacobian(x32)[0])
  assert actual == pytest.approx(expected, abs=1e-3)
  assert abs(expected) > 1e-2  # The test would be vacuous for a volume-preserving flow.


def test_lifting_starts_as_the_53_wavelet():
  level = FlowLevel(glow_steps=0, width=4, name="level")
  ramp = np.tile(np.arange(16, dtype=np.float32)[None, :, None], [16, 1, 3])[None] / 16.0
  out = level.bijector().forward(tf.constant(ramp))
  details = out.numpy()[0, 1:-1, 1:-1, 3:]  # Interior: away from zero padding.
  # A linear ramp is predicted exactly by the 5/3 wavelet: no detail energy.
  np.testing.assert_allclose(details, 0.0, atol=1e-6)


def test_actnorm_initialisation_normalises_and_is_explicit():
  layer = ActNorm(3)
  x = _random([4, 8, 8, 3]) * 5.0 + 2.0
  unchanged = layer.bijector().forward(x)
  np.testing.assert_allclose(unchanged.numpy(), x.numpy())  # No init inside a call.
  layer.initialize(x)
  # A fresh tensor: TFP caches forward results per (bijector parameters, input tensor).
  y = layer.bijector().forward(tf.identity(x)).numpy()
  np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
  np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, atol=1e-3)


def test_training_gets_gradients_for_every_flow_variable():
  model = tiny.tiny_model(perturb=0.01)
  x = tiny.smooth_image(32, 32)[None]
  with tf.GradientTape() as tape:
    loss = model.rate_distortion(x, 0.5, training=True)["loss"]
  gradients = tape.gradient(loss, model.flow.trainable_variables)
  missing = [v.name for v, g in zip(model.flow.trainable_variables, gradients) if g is None]
  assert not missing
