"""The integer-to-integer flow (`ModelConfig.integer_flow`): exact on 8-bit images, so decoded
images re-encode to the same symbols by construction, and the finest steps are lossless."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tiny
from tfflowcomp.codec import FlowCodec
from tfflowcomp.config import ModelConfig
from tfflowcomp.flow import integer
from tfflowcomp.model import to_model_units


@pytest.fixture(scope="module")
def integer_model():
  return tiny.tiny_model(seed=1, perturb=0.05, config=tiny.TINY_INTEGER_CONFIG)


@pytest.fixture(scope="module")
def integer_codec(integer_model):
  return FlowCodec.from_model(integer_model)


def _noise_image(height, width, seed=0):
  return np.random.default_rng(seed).integers(0, 256, [height, width, 3], dtype=np.uint8)


def _mid_range_image(height, width, seed=0):
  """Smooth test image squeezed into [48, 208], so that decoding does not clip at 0 or 255."""
  return (48 + tiny.smooth_image(height, width, seed).astype(np.int32) * 160 // 255).astype(
      np.uint8)


def test_integer_flow_rejects_glow_steps():
  with pytest.raises(ValueError, match="glow_steps_per_level=0"):
    ModelConfig(integer_flow=True, glow_steps_per_level=1)


def test_config_json_of_float_flows_is_unchanged_and_integer_flows_round_trip():
  assert "integer_flow" not in ModelConfig().to_json()
  config = tiny.TINY_INTEGER_CONFIG
  assert ModelConfig.from_json(config.to_json()) == config


def test_ycocg_r_is_exact_on_all_8_bit_colours():
  levels = np.arange(-128, 128, 5, dtype=np.float32)
  rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(1, -1, 1, 3)
  colour = integer.IntegerColour().bijector()
  ycocg = colour.forward(tf.constant(rgb))
  np.testing.assert_array_equal(ycocg, np.round(ycocg))
  np.testing.assert_array_equal(colour.inverse(ycocg), rgb)


def test_analysis_maps_8_bit_images_to_integer_latents_and_back_exactly(integer_model):
  image = _noise_image(32, 48)
  x = to_model_units(tf.constant(image[None]))
  latent = integer_model.flow.analysis(x).numpy() * integer.LEVELS
  np.testing.assert_array_equal(latent, np.round(latent))
  pixels = (integer_model.flow.synthesis(latent / integer.LEVELS).numpy() + 0.5) * 255
  np.testing.assert_allclose(pixels, image[None], atol=1e-3)


def test_synthesis_of_an_integer_latent_analyses_back_to_it_exactly(integer_model):
  latent = np.random.default_rng(2).integers(-40, 41, [1, 8, 12, 48]).astype(np.float32)
  image = integer_model.flow.synthesis(tf.constant(latent) / integer.LEVELS)
  again = integer_model.flow.analysis(image).numpy() * integer.LEVELS
  np.testing.assert_array_equal(again, latent)


@pytest.mark.parametrize("quality", [0.3, 0.5, 0.7])
def test_decoded_latents_are_given_back_their_symbols_even_by_a_greedy_rdoq(integer_model,
                                                                            quality):
  # A tiny distortion weight makes RDOQ trade almost every symbol for bits; the latent of a
  # decoded image must still get exactly the symbols it was decoded from.
  greedy = FlowCodec.from_model(integer_model, distortion_weight=0.05)
  per_unit = greedy._per_unit(tf.constant(round(quality * 65535)))
  per_unit_f32 = tf.cast(per_unit.latent, tf.float32)
  symbols = np.random.default_rng(7).integers(-12, 13, [1, 6, 8, 48]).astype(np.float32)
  decoded_latent = tf.round(integer.LEVELS * symbols / per_unit_f32) / integer.LEVELS
  chosen = greedy._choose_symbols(decoded_latent, per_unit)[4]
  np.testing.assert_array_equal(chosen, symbols)


@pytest.mark.parametrize("quality", [0.3, 0.5, 0.7])
def test_decoded_image_re_encodes_without_any_generation_loss(integer_codec, quality):
  image = _mid_range_image(32, 48, seed=int(quality * 10))
  first = integer_codec.compress(image, quality)
  decoded = integer_codec.decompress(first)
  assert 0 < decoded.min() and decoded.max() < 255, "the test needs an unclipped decoding"
  assert not np.array_equal(decoded, image), "the test needs a lossy quality"
  second = integer_codec.compress(decoded, quality)
  # The image never changes again; the file is fixed from generation 2 on (its side
  # information came from the original image's latent, then from the decoded one's).
  np.testing.assert_array_equal(integer_codec.decompress(second), decoded)
  assert integer_codec.compress(integer_codec.decompress(second), quality) == second


@pytest.mark.parametrize("quality", [0.3, 0.7])
def test_stable_files_are_byte_identical_from_the_first_generation(integer_codec, quality):
  image = _mid_range_image(32, 48, seed=3)
  data, converged = integer_codec.compress_stable(image, quality)
  assert converged
  again, _ = integer_codec.compress_stable(integer_codec.decompress(data), quality)
  assert again == data


def test_finest_quality_is_lossless_even_for_noise(integer_codec):
  image = _noise_image(24, 40, seed=5)
  per_unit = integer_codec._per_unit(tf.constant(65535)).latent.numpy()
  np.testing.assert_array_equal(per_unit, integer.LEVELS)  # Every channel at the cap.
  np.testing.assert_array_equal(integer_codec.decompress(integer_codec.compress(image, 1.0)),
                                image)


def test_finest_quality_is_lossless_whatever_the_learned_gains():
  # A trained model can learn channel gains so small that gain / min_step stays below the cap:
  # quality 1 must still code every channel one symbol per integer.
  model = tiny.tiny_model(seed=1, perturb=0.05, config=tiny.TINY_INTEGER_CONFIG)
  model.log_gain_high.assign(model.log_gain_high - 8.0)
  codec = FlowCodec.from_model(model)
  np.testing.assert_array_equal(codec._per_unit(tf.constant(65535)).latent.numpy(), integer.LEVELS)
  assert np.all(codec._per_unit(tf.constant(65534)).latent.numpy() < integer.LEVELS)
  image = _noise_image(24, 40, seed=6)
  np.testing.assert_array_equal(codec.decompress(codec.compress(image, 1.0)), image)


def test_integer_model_trains(integer_model):
  model = tiny.tiny_model(seed=2, config=tiny.TINY_INTEGER_CONFIG)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
  images = tf.constant(np.stack([tiny.smooth_image(32, 32, seed=s) for s in range(2)]),
                       tf.float32)
  shift_weights = [v for v in model.trainable_variables if "shift" in v.name]
  before = [v.numpy().copy() for v in shift_weights]
  metrics = model.train_step(images)
  assert np.isfinite(float(metrics["loss"]))
  assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, shift_weights))


def test_exported_integer_codec_gives_the_same_bytes_and_pixels(integer_codec, tmp_path):
  from tfflowcomp import export  # pylint: disable=g-import-not-at-top
  image = _mid_range_image(24, 40, seed=4)
  data = integer_codec.compress(image, 0.5)
  export.export_saved_model(integer_codec, str(tmp_path / "model"))
  loaded = export.load(str(tmp_path / "model"))
  assert loaded.config.integer_flow
  assert loaded.compress(image, 0.5) == data
  decoded = loaded.decompress(data)
  np.testing.assert_array_equal(decoded, integer_codec.decompress(data))
  np.testing.assert_array_equal(loaded.decompress(loaded.compress(decoded, 0.5)), decoded)


def test_training_binary_needs_no_glow_steps_for_an_integer_flow():
  tool = os.path.join(tiny.TESTDATA, "..", "..", "tools", "train.py")
  result = subprocess.run([sys.executable, tool, "--integer_flow"], capture_output=True,
                          text=True, timeout=120)
  assert result.returncode != 0
  assert "glow_steps_per_level=0" in result.stderr
