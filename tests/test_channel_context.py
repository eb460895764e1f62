"""Channel-conditional context (`ModelConfig.channel_context`, tfflowcomp/context.py)."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import tiny
from tfflowcomp import bitstream
from tfflowcomp import context
from tfflowcomp import export
from tfflowcomp import model as model_lib
from tfflowcomp.codec import FlowCodec
from tfflowcomp.config import ModelConfig

CONTEXT_CONFIG = dataclasses.replace(tiny.TINY_CONFIG, channel_context=True)


@pytest.fixture(scope="module")
def context_codec():
  """A tiny model, all weights perturbed (its context nets' output is far from zero)."""
  model = tiny.tiny_model(perturb=0.05, config=CONTEXT_CONFIG)
  for variable in model.channel_context.variables:  # Effective weights ~0.05, as the others.
    variable.assign(variable / context.CONTEXT_SPEEDUP)
  return FlowCodec.from_model(model)


def _coded_symbols(codec, image, quality_code):
  """(per_unit, symbols `[1, h, w, C]`) that `compress` codes for `image`."""
  per_unit = codec._per_unit(tf.constant(quality_code))  # pylint: disable=protected-access
  return per_unit, codec._analyse(tf.constant(image), per_unit)[3]  # pylint: disable=protected-access


def test_config_json_is_unchanged_without_context_and_round_trips_with_it():
  assert "channel_context" not in ModelConfig().to_json()
  assert ModelConfig.from_json(CONTEXT_CONFIG.to_json()) == CONTEXT_CONFIG
  with pytest.raises(ValueError, match="num_levels >= 2"):
    ModelConfig(num_levels=1, channel_context=True)


def test_slices_follow_the_flow_scales_coarsest_first():
  assert context.slice_bounds(2) == [0, 12, 48]
  assert context.slice_bounds(4) == [0, 12, 48, 192, 768]
  assert context.slice_bounds(4)[-1] == ModelConfig(num_levels=4).latent_channels


def test_tables_of_a_slice_depend_only_on_the_slices_before_it(context_codec):
  """The decoder has only slices < k when it needs slice k's tables."""
  codec = context_codec
  per_unit, symbols = _coded_symbols(codec, tiny.smooth_image(32, 48, seed=1), 30000)
  z_hat = tf.zeros([1, 2, 3, 4])  # Side information of a [8, 12] latent.
  hw = tf.shape(symbols)[1:3]
  coarse_only, fine_only = np.zeros(symbols.shape, np.float32), np.zeros(symbols.shape, np.float32)
  coarse_only[..., :12], fine_only[..., 12:] = 1.0, 1.0
  base = codec._latent_distribution(z_hat, hw, per_unit, symbols)  # pylint: disable=protected-access
  fine = codec._latent_distribution(z_hat, hw, per_unit, symbols + fine_only)  # pylint: disable=protected-access
  for before, after in zip(base[:2], fine[:2]):  # Indexes and locations.
    np.testing.assert_array_equal(before.numpy(), after.numpy())
  coarse = codec._latent_distribution(z_hat, hw, per_unit, symbols + coarse_only)  # pylint: disable=protected-access
  np.testing.assert_array_equal(base[0].numpy()[..., :12], coarse[0].numpy()[..., :12])
  assert not np.array_equal(base[0].numpy()[..., 12:], coarse[0].numpy()[..., 12:])


@pytest.mark.parametrize("quality", [0.0, 0.5, 1.0])
def test_decoding_gives_exactly_the_image_of_the_coded_symbols(context_codec, quality):
  codec = context_codec
  image = tiny.smooth_image(40, 56, seed=2)
  data = codec.compress(image, quality)
  assert codec.compress(image, quality) == data  # Byte-identical for identical input.
  per_unit, symbols = _coded_symbols(codec, image, bitstream.unpack(data).quality_code)
  expected = codec._pixels(symbols, per_unit, 40, 56)  # pylint: disable=protected-access
  np.testing.assert_array_equal(codec.decompress(data), expected.numpy())


def test_a_saved_model_codes_and_decodes_like_the_live_codec(context_codec, tmp_path):
  image = tiny.smooth_image(24, 40, seed=3)
  data = context_codec.compress(image, 0.3)
  export.export_saved_model(context_codec, str(tmp_path / "model"))
  loaded = export.load(str(tmp_path / "model"))
  assert loaded.config.channel_context
  assert loaded.compress(image, 0.3) == data
  np.testing.assert_array_equal(loaded.decompress(data), context_codec.decompress(data))


def test_a_corrupted_context_file_fails_cleanly(context_codec):
  data = bytearray(context_codec.compress(tiny.smooth_image(32, 32, seed=4), 0.4))
  data[-5] ^= 0xFF  # Inside the latent stream, whose checksum then fails.
  with pytest.raises(bitstream.BitstreamError):
    context_codec.decompress(bytes(data))


def test_adding_a_context_to_an_exported_model_keeps_its_symbols_and_pixels():
  model = model_lib.FlowCompressionModel(
      dataclasses.replace(export.saved_model_config(tiny.TINY_MODEL_DIR), channel_context=True))
  model.ensure_built()
  export.read_saved_weights(model, tiny.TINY_MODEL_DIR)
  shipped = export.load(tiny.TINY_MODEL_DIR)
  warm = FlowCodec.from_model(model)
  image = tiny.smooth_image(48, 48, seed=6)
  for quality in (0.0, 0.6):
    shipped_data, warm_data = shipped.compress(image, quality), warm.compress(image, quality)
    np.testing.assert_array_equal(warm.decompress(warm_data), shipped.decompress(shipped_data))
    # The same symbols under the same tables; only the stream's layout (one part per slice,
    # each with its own escapes) and the fingerprint differ.
    assert abs(len(warm_data) - len(shipped_data)) <= 4


def test_a_context_that_predicts_the_fine_scale_saves_bits():
  """Gradient steps on the context nets alone lower the rate of a fixed latent."""
  model = tiny.tiny_model(config=CONTEXT_CONFIG)
  images = tf.constant(np.stack([tiny.smooth_image(32, 32, seed=s) for s in range(4)]))
  optimizer = tf.keras.optimizers.Adam(1e-3)
  variables = model.channel_context.trainable_variables
  before = float(model.rate_distortion(images, 0.5, training=False)["bpp"])
  for _ in range(30):
    with tf.GradientTape() as tape:
      bpp = model.rate_distortion(images, 0.5, training=True)["bpp"]
    optimizer.apply_gradients(zip(tape.gradient(bpp, variables), variables))
  after = float(model.rate_distortion(images, 0.5, training=False)["bpp"])
  assert after < 0.97 * before


def test_side_refinement_uses_the_context_tables(context_codec):
  refined = FlowCodec.from_model(context_codec.model, side_iterations=16)
  one_pass = FlowCodec.from_model(context_codec.model, side_iterations=0)
  image = tiny.smooth_image(48, 64, seed=7)
  refined_data, one_pass_data = refined.compress(image, 0.5), one_pass.compress(image, 0.5)
  assert len(refined_data) < len(one_pass_data)
  np.testing.assert_array_equal(refined.decompress(refined_data),
                                one_pass.decompress(one_pass_data))


def test_the_fingerprint_covers_the_context_parametrisation(context_codec, monkeypatch):
  fingerprint = FlowCodec.from_model(context_codec.model).fingerprint
  monkeypatch.setattr(context, "CONTEXT_SPEEDUP", context.CONTEXT_SPEEDUP / 2)
  assert FlowCodec.from_model(context_codec.model).fingerprint != fingerprint
