"""Codec contracts: real range-coded round trips, determinism, graph/eager/SavedModel agreement."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import tiny
from tfflowcomp import bitstream
from tfflowcomp import export
from tfflowcomp import metrics
from tfflowcomp.codec import FlowCodec, pad_to_multiple
from tfflowcomp.entropy import TablesNotBuiltError


@pytest.mark.parametrize("height,width", [(1, 1), (17, 31), (4, 4), (5, 64)])
def test_round_trip_of_odd_sizes(codec, height, width):
  image = tiny.smooth_image(height, width, seed=height)
  data = codec.compress(image, 0.8)
  container = bitstream.unpack(data)
  assert (container.height, container.width) == (height, width)
  decoded = codec.decompress(data)
  assert decoded.shape == image.shape and decoded.dtype == np.uint8
  assert metrics.psnr(image, decoded) > 30.0


@pytest.mark.slow
def test_round_trip_of_a_kodak_sized_image(codec):
  image = tiny.smooth_image(512, 768, seed=5)
  decoded = codec.decompress(codec.compress(image, 0.9))
  assert decoded.shape == (512, 768, 3)
  assert metrics.psnr(image, decoded) > 40.0


def test_compression_is_deterministic(codec):
  image = tiny.smooth_image(40, 24, seed=1)
  outputs = {codec.compress(image, 0.5) for _ in range(5)}
  assert len(outputs) == 1


def test_quality_is_monotone_in_rate_and_psnr(codec):
  image = tiny.smooth_image(64, 64, seed=2)
  rates, psnrs = [], []
  for quality in (0.0, 0.25, 0.5, 0.75, 1.0):
    data = codec.compress(image, quality)
    rates.append(len(data))
    psnrs.append(metrics.psnr(image, codec.decompress(data)))
  assert rates == sorted(rates) and len(set(rates)) == len(rates), rates
  assert psnrs == sorted(psnrs), psnrs
  assert psnrs[-1] > 45.0


def test_quality_is_stored_in_the_bitstream(codec):
  data = codec.compress(tiny.smooth_image(8, 8), 0.3)
  assert bitstream.unpack(data).quality_code == round(0.3 * 65535)


def test_eager_tf_function_and_saved_model_agree(codec, tmp_path):
  from tfflowcomp import export
  image = tiny.smooth_image(24, 40, seed=3)
  graph_bytes = codec.compress(image, 0.6)
  graph_pixels = codec.decompress(graph_bytes)
  tf.config.run_functions_eagerly(True)
  try:
    eager_bytes = codec.compress(image, 0.6)
    eager_pixels = codec.decompress(graph_bytes)
  finally:
    tf.config.run_functions_eagerly(False)
  export.export_saved_model(codec, str(tmp_path / "model"))
  loaded = export.load(str(tmp_path / "model"))
  assert loaded.fingerprint == codec.fingerprint
  assert eager_bytes == graph_bytes == loaded.compress(image, 0.6)
  np.testing.assert_array_equal(eager_pixels, graph_pixels)
  np.testing.assert_array_equal(loaded.decompress(graph_bytes), graph_pixels)


def test_coding_without_tables_fails_loudly():
  unfrozen = FlowCodec(tiny.tiny_model())
  with pytest.raises(TablesNotBuiltError, match="tables were not built"):
    unfrozen.compress(tiny.smooth_image(8, 8), 0.5)
  with pytest.raises(TablesNotBuiltError):
    unfrozen.decompress(b"TFFC")


def test_a_different_model_refuses_the_file(codec):
  other = tiny.tiny_codec(seed=1)
  assert other.fingerprint != codec.fingerprint
  data = codec.compress(tiny.smooth_image(8, 8), 0.5)
  with pytest.raises(bitstream.BitstreamError, match="made by model"):
    other.decompress(data)


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8),
                                 np.zeros((8, 8, 3), np.float32), np.zeros((0, 8, 3), np.uint8)])
def test_invalid_images_are_refused(codec, bad):
  with pytest.raises((ValueError, bitstream.BitstreamError)):
    codec.compress(bad, 0.5)


@pytest.mark.parametrize("quality", [-0.1, 1.5, float("nan"), "high"])
def test_invalid_qualities_are_refused(codec, quality):
  with pytest.raises(ValueError, match="quality"):
    codec.compress(tiny.smooth_image(8, 8), quality)


def test_graph_checks_quality_too(codec):
  with pytest.raises(tf.errors.InvalidArgumentError):
    codec.compress_graph(tf.zeros([8, 8, 3], tf.uint8), tf.constant(2.0))


def test_corrupted_files_raise_the_documented_error(codec):
  data = codec.compress(tiny.smooth_image(16, 16), 0.5)
  for bad in (data[:-3], data[:20], b"GIF89a" + data[6:], data + b"\0"):
    with pytest.raises(bitstream.BitstreamError):
      codec.decompress(bad)


def test_padding_replicates_edges_for_any_size():
  image = tf.constant(np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
  padded = pad_to_multiple(image, 4).numpy()
  assert padded.shape == (4, 4, 3)
  np.testing.assert_array_equal(padded[3, 3], image.numpy()[0, 1])


def test_stable_compression_re_encodes_to_identical_bytes(codec):
  """Re-encoding with the same settings gives the same bytes (the search converged)."""
  image = tiny.smooth_image(24, 32, seed=6)
  one_pass = FlowCodec.from_model(codec.model, side_iterations=0)
  for quality in (0.3, 0.7):
    result = codec.compress_stable_graph(tf.constant(image), quality, 16)
    assert bool(result["converged"]), quality
    data = result["bitstream_bytes"].numpy()
    assert codec.compress_stable(image, quality, 16) == (data, True)
    assert data == codec.compress(image, quality, stable_iterations=16)
    decoded = codec.decompress(data)
    assert codec.compress(decoded, quality, stable_iterations=16) == data, quality
    # The symbols come from the one-pass side information; only their tables are refined.
    one_pass_data = one_pass.compress(decoded, quality)
    np.testing.assert_array_equal(codec.decompress(one_pass_data), decoded)
    np.testing.assert_array_equal(codec.decompress(one_pass.compress(image, quality)),
                                  codec.decompress(codec.compress(image, quality)))
    assert metrics.psnr(image, decoded) > 25.0
  with pytest.raises(ValueError, match="max_iterations"):
    codec.compress_stable(image, 0.5, 0)


def test_stable_compression_settles_on_a_re_encoding_cycle(codec, saved_codec):
  """Where re-encoding alternates between two symbol sets, the canonical one is coded.

  For this noise image at quality 1 the tiny model's re-encoding walk ends in a 2-cycle (no fixed
  point): the file codes the cycle's canonical member, and re-encoding its decoded image, which
  enters the cycle at the other member, gives the same bytes, live and after SavedModel reload.
  """
  image = np.random.default_rng(4).integers(0, 256, (32, 40, 3), dtype=np.uint8)
  result = codec.compress_stable_graph(tf.constant(image), 1.0, 64)
  assert (bool(result["converged"]), int(result["cycle_length"])) == (True, 2)
  for each in (codec, saved_codec):
    data, converged = each.compress_stable(image, 1.0, 64)
    decoded = each.decompress(data)
    assert converged and each.compress_stable(decoded, 1.0, 64) == (data, True)
    # Plain re-encoding of the decoded image moves to the cycle's other member.
    assert each.compress(decoded, 1.0) != data


def test_files_claiming_huge_images_are_refused_before_decoding(codec):
  data = codec.compress(tiny.smooth_image(8, 8), 0.5)
  container = bitstream.unpack(data)
  forged = bitstream.pack(bitstream.Container(
      fingerprint=container.fingerprint, height=16000, width=16000,
      quality_code=container.quality_code, streams=container.streams))
  with pytest.raises(bitstream.BitstreamError, match="decoding limit"):
    codec.decompress(forged)
  with pytest.raises(bitstream.BitstreamError, match="decoding limit"):
    codec.decompress(data, max_pixels=10)


def test_tiled_files_decode_to_the_tiles_coded_alone(codec, saved_codec):
  image = tiny.smooth_image(300, 530, seed=5)
  data = codec.compress(image, 0.6, tile_side=256)
  container = bitstream.unpack(data)
  assert container.tile_side == 256 and len(container.streams) == 2 * 2 * 3
  decoded = codec.decompress(data)
  assert decoded.shape == image.shape
  for top, left, h, w in bitstream.tile_grid(300, 530, 256):
    alone = codec.decompress(codec.compress(image[top:top + h, left:left + w], 0.6))
    np.testing.assert_array_equal(decoded[top:top + h, left:left + w], alone)
  assert codec.compress(image, 0.6, tile_side=256) == data  # Deterministic.
  # The checked-in SavedModel decodes with the same Python API.
  saved_data = saved_codec.compress(image, 0.6, tile_side=256)
  assert bitstream.unpack(saved_data).tile_side == 256
  assert saved_codec.decompress(saved_data).shape == image.shape
  with pytest.raises(ValueError, match="tile side"):
    codec.compress(image, 0.6, tile_side=100)


def test_a_corrupted_tile_is_reported_as_a_bitstream_error(codec):
  image = tiny.smooth_image(40, 600, seed=6)
  container = bitstream.unpack(codec.compress(image, 0.5, tile_side=256))
  streams = list(container.streams)
  streams[3] = bytes(b ^ 0xA5 for b in streams[3]) + b"\x00" * 40  # Second tile's latent.
  forged = bitstream.pack(dataclasses.replace(container, streams=tuple(streams)))
  try:
    decoded = codec.decompress(forged)
  except bitstream.BitstreamError:
    return
  assert decoded.shape == image.shape  # Garbage that still decodes must keep the shape.


@pytest.mark.parametrize("height,width,expected", [
    (512, 768, 0), (2048, 2048, 0), (2049, 100, 1088), (4096, 4096, 2048),
    (8192, 8192, 2048), (3000, 5000, 1728), (1, 10000, 2048)])
def test_automatic_tiling_uses_the_fewest_tiles_of_at_most_2048(height, width, expected):
  from tfflowcomp.codec import choose_tile_side
  side = choose_tile_side(height, width)
  assert side == expected
  if side:
    assert side % bitstream.TILE_MULTIPLE == 0 and side <= 2048
    rows, cols = -(-height // 2048), -(-width // 2048)
    assert len(bitstream.tile_grid(height, width, side)) == rows * cols
  assert choose_tile_side(height, width, 0) == 0


def test_encoder_guard_keeps_table_choices_away_from_rounding_boundaries(monkeypatch):
  """A table index or location near a rounding boundary makes the encoder change z_hat."""
  from tfflowcomp import codec as codec_lib  # pylint: disable=g-import-not-at-top
  margin = 1e-4  # Large enough that a few of these tiny images hit it.
  monkeypatch.setattr(codec_lib, "BOUNDARY_MARGIN", margin)
  # Varied scales and locations; the one-pass side information, so that z_hat below is the
  # encoder's starting point at every quality.
  live = FlowCodec.from_model(tiny.tiny_model(perturb=0.05), side_iterations=0)
  image = tiny.smooth_image(16, 16, seed=3)
  latent = live._latent(tf.constant(image))  # pylint: disable=protected-access
  z_hat = tf.round(live.model.hyper_analysis(latent))
  # The quality shifts every index continuously: find one that puts a value near a boundary.
  for code in range(40000, 65536, 7):
    per_unit = live._per_unit(tf.constant(code))  # pylint: disable=protected-access
    _, _, distance = live._latent_distribution(  # pylint: disable=protected-access
        z_hat, tf.shape(latent)[1:3], per_unit)
    if float(tf.reduce_min(distance)) < margin:
      break
  else:
    pytest.fail("no quality puts a value near a rounding boundary")
  guarded_z, _, _, rounds, safe = live._guarded_side_information(  # pylint: disable=protected-access
      live.model.hyper_analysis(latent), tf.shape(latent)[1:3], per_unit)
  assert int(rounds) >= 1 and bool(safe)
  assert not np.array_equal(guarded_z.numpy(), z_hat.numpy())
  _, _, distance = live._latent_distribution(  # pylint: disable=protected-access
      guarded_z, tf.shape(latent)[1:3], per_unit)
  assert float(tf.reduce_min(distance)) >= margin
  # The file made with the changed side information decodes like any other.
  data = live.compress(image, code / 65535)
  symbols = live._analyse(tf.constant(image), per_unit)[3]  # pylint: disable=protected-access
  expected = live._pixels(symbols, per_unit, 16, 16)  # pylint: disable=protected-access
  np.testing.assert_array_equal(live.decompress(data), expected.numpy())


def test_table_choices_are_computed_in_float64():
  from tfflowcomp import codec as codec_lib  # pylint: disable=g-import-not-at-top
  values = tf.constant([0.5, 1.5 + 1e-12, 2.0, -0.5 - 1e-6], tf.float64)
  np.testing.assert_allclose(codec_lib._distance_to_rounding_boundary(values).numpy(),  # pylint: disable=protected-access
                             [0.0, 1e-12, 0.5, 1e-6], atol=1e-15)


def test_graph_functions_trace_once_for_every_image_size():
  live = tiny.tiny_codec()
  for height, width in ((5, 7), (16, 16), (33, 20), (64, 48)):
    live.decompress(live.compress(tiny.smooth_image(height, width, seed=height), 0.5))
  assert live.compress_graph.experimental_get_tracing_count() == 1
  assert live.decompress_graph.experimental_get_tracing_count() == 1


def test_encoder_trade_off_changes_files_not_decoding(saved_codec):
  """RDOQ (default) vs plain rounding: both decode with the unchanged decoder; RDOQ is smaller.

  The live codecs are rebuilt from the checked-in SavedModel (`export.restore_model`) with the
  encoder settings it was exported with (its model_info.json), and must reproduce its
  fingerprint and its files.
  """
  model = export.restore_model(tiny.TINY_MODEL_DIR)
  encoder = tiny.tiny_encoder_settings()
  rdoq = FlowCodec.from_model(model, **encoder)
  plain = FlowCodec.from_model(model, distortion_weight=float("inf"),
                               side_iterations=encoder["side_iterations"])
  assert rdoq.fingerprint == plain.fingerprint == saved_codec.fingerprint
  image = tiny.smooth_image(48, 64, seed=11)
  for quality in (0.2, 0.6):
    rdoq_data, plain_data = rdoq.compress(image, quality), plain.compress(image, quality)
    assert rdoq_data == saved_codec.compress(image, quality)
    assert rdoq_data != plain_data and len(rdoq_data) < len(plain_data)
    for data in (rdoq_data, plain_data):
      np.testing.assert_array_equal(saved_codec.decompress(data), rdoq.decompress(data))
    rdoq_symbols = rdoq.latent_symbols_graph(tf.constant(image), quality)["symbols"].numpy()
    plain_symbols = plain.latent_symbols_graph(tf.constant(image), quality)["symbols"].numpy()
    moved = rdoq_symbols != plain_symbols
    assert moved.any()
    # RDOQ only ever picks the other integer next to the unquantized value.
    assert np.all(np.abs(rdoq_symbols[moved] - plain_symbols[moved]) == 1)


def test_fingerprint_depends_on_weights_not_on_process_history():
  first = tiny.tiny_codec()
  tiny.tiny_model(seed=3)  # Building other models renumbers Keras layer names.
  again = tiny.tiny_codec()
  assert first.fingerprint == again.fingerprint
  assert tiny.tiny_codec(seed=1).fingerprint != first.fingerprint
