"""Quality-dependent quantization of the side information (`ModelConfig.side_gains`)."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import tiny
from tfflowcomp import bitstream
from tfflowcomp import export
from tfflowcomp import model as model_lib
from tfflowcomp.codec import FlowCodec
from tfflowcomp.config import ModelConfig

SIDE_GAIN_CONFIG = dataclasses.replace(tiny.TINY_CONFIG, side_gains=True)


def _side_bytes(codec, image, quality):
  return bitstream.unpack(codec.compress(image, quality)).side_information_bytes


@pytest.fixture(scope="module")
def side_gain_model():
  """A tiny model with side gains whose quality-0 grid is e^2 times coarser than quality 1's."""
  model = tiny.tiny_model(perturb=0.05, config=SIDE_GAIN_CONFIG)
  model.side_log_gain_low.assign(tf.fill([4], -2.0 / model_lib.SIDE_LOG_GAIN_SPEEDUP))
  model.side_log_gain_high.assign(tf.zeros([4]))
  return model


def test_config_json_is_unchanged_without_side_gains_and_round_trips_with_them():
  assert "side_gains" not in ModelConfig().to_json()
  assert ModelConfig.from_json(SIDE_GAIN_CONFIG.to_json()) == SIDE_GAIN_CONFIG
  assert len(tiny.tiny_model().variables) + 2 == len(tiny.tiny_model(config=SIDE_GAIN_CONFIG)
                                                     .variables)


def test_side_symbols_per_unit_interpolates_the_log_gains(side_gain_model):
  np.testing.assert_allclose(side_gain_model.side_symbols_per_unit(0.0), np.exp(-2.0), rtol=1e-6)
  np.testing.assert_allclose(side_gain_model.side_symbols_per_unit(0.5), np.exp(-1.0), rtol=1e-6)
  np.testing.assert_allclose(side_gain_model.side_symbols_per_unit(1.0), 1.0)
  np.testing.assert_array_equal(tiny.tiny_model().side_symbols_per_unit(0.3), np.ones(4))


def test_a_coarser_side_grid_codes_fewer_side_bytes_and_decodes_exactly(side_gain_model):
  image = tiny.smooth_image(64, 64, seed=2)
  # Without side refinement, which could spend the coarser grid's savings elsewhere.
  with_gains = FlowCodec.from_model(side_gain_model, side_iterations=0)
  same_weights = tiny.tiny_model(perturb=0.05, config=SIDE_GAIN_CONFIG)
  for log_gain in (same_weights.side_log_gain_low, same_weights.side_log_gain_high):
    log_gain.assign(tf.zeros([4]))  # Side gains 1 at every quality.
  unit_gains = FlowCodec.from_model(same_weights, side_iterations=0)
  assert _side_bytes(with_gains, image, 0.0) < _side_bytes(unit_gains, image, 0.0)
  data = with_gains.compress(image, 0.0)
  per_unit = with_gains._per_unit(tf.constant(0))  # pylint: disable=protected-access
  symbols = with_gains._analyse(tf.constant(image), per_unit)[3]  # pylint: disable=protected-access
  expected = with_gains._pixels(symbols, per_unit, 64, 64)  # pylint: disable=protected-access
  np.testing.assert_array_equal(with_gains.decompress(data), expected.numpy())


def test_export_with_side_gains_gives_the_same_bytes_and_pixels(side_gain_model, tmp_path):
  codec = FlowCodec.from_model(side_gain_model)
  image = tiny.smooth_image(40, 56, seed=4)
  data = codec.compress(image, 0.2)
  export.export_saved_model(codec, str(tmp_path / "model"))
  loaded = export.load(str(tmp_path / "model"))
  assert loaded.config.side_gains
  assert loaded.compress(image, 0.2) == data
  np.testing.assert_array_equal(loaded.decompress(data), codec.decompress(data))


def test_adding_side_gains_to_an_exported_model_starts_from_its_exact_coding():
  model = model_lib.FlowCompressionModel(
      dataclasses.replace(export.saved_model_config(tiny.TINY_MODEL_DIR), side_gains=True))
  model.ensure_built()
  export.read_saved_weights(model, tiny.TINY_MODEL_DIR)
  shipped = export.load(tiny.TINY_MODEL_DIR)
  warm = FlowCodec.from_model(model, **tiny.tiny_encoder_settings())
  image = tiny.smooth_image(48, 48, seed=6)
  for quality in (0.0, 0.6):
    shipped_data, warm_data = shipped.compress(image, quality), warm.compress(image, quality)
    # Only the fingerprint (the config differs) tells the files apart.
    shipped_file, warm_file = bitstream.unpack(shipped_data), bitstream.unpack(warm_data)
    assert shipped_file.fingerprint != warm_file.fingerprint
    assert dataclasses.replace(shipped_file, fingerprint=warm_file.fingerprint) == warm_file


def test_training_moves_the_side_gains(side_gain_model):
  images = tf.constant(np.stack([tiny.smooth_image(32, 32, seed=s) for s in range(2)]))
  with tf.GradientTape() as tape:
    loss = side_gain_model.rate_distortion(images, 0.1, training=True)["loss"]
  gradients = tape.gradient(loss, [side_gain_model.side_log_gain_low,
                                   side_gain_model.side_log_gain_high])
  assert float(tf.reduce_sum(tf.abs(gradients[0]))) > 0
  assert float(tf.reduce_sum(tf.abs(gradients[1]))) > 0


def test_the_fingerprint_covers_the_side_gain_parametrisation(side_gain_model, monkeypatch):
  fingerprint = FlowCodec.from_model(side_gain_model).fingerprint
  monkeypatch.setattr(model_lib, "SIDE_LOG_GAIN_SPEEDUP", model_lib.SIDE_LOG_GAIN_SPEEDUP / 2)
  assert FlowCodec.from_model(side_gain_model).fingerprint != fingerprint
