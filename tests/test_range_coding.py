"""The bounded range coder: lossless for every int32 symbol, and a decoder that always ends."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_compression as tfc

import tiny
from tfflowcomp import range_coding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def small_model():
  """Four Gaussian tables of scales 1, e, e^2, e^3 (TFC's overflow-enabled table layout)."""
  return tfc.LocationScaleIndexedEntropyModel(
      tfc.NoisyNormal, num_scales=4, scale_fn=lambda i: tf.exp(tf.cast(i, tf.float32)),
      coding_rank=1, compression=True)


@pytest.fixture(scope="module")
def coder(small_model):
  return range_coding.BoundedRangeCoder(small_model, "test_coder")


def test_escape_symbols_are_the_last_interval_of_each_table(small_model):
  escapes = range_coding.escape_symbols(small_model.cdf.numpy())
  assert escapes.shape == (4,)
  # Wider tables (larger scales) have more symbols.
  assert np.all(np.diff(escapes) > 0)
  # Padding after a table (TFC allows it) does not change the answer.
  cdf = small_model.cdf.numpy()
  top = 1 << int(-cdf[0])
  padded = np.concatenate([cdf, [top, top]])
  np.testing.assert_array_equal(range_coding.escape_symbols(padded), escapes)
  with pytest.raises(ValueError, match="negative precision"):
    range_coding.escape_symbols(np.abs(cdf))


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
def test_round_trip_of_every_kind_of_value(coder, mode):
  rng = np.random.default_rng(0)
  indexes = rng.integers(0, 4, size=(6, 50)).astype(np.int32)
  values = np.round(rng.normal(size=indexes.shape) * np.exp(indexes)).astype(np.int32)
  # Far outside every table, both tails, and the largest codable magnitudes.
  extremes = [10**6, -10**6, 2**30, -(2**31 - 1), 2**31 - 1 - 1000, 0, 1, -1]
  values.flat[:len(extremes)] = extremes
  encode, decode = coder.encode, coder.decode
  if mode == "tf.function":
    encode, decode = tf.function(encode), tf.function(decode)
  stream = encode(values, indexes)
  decoded, consistent = decode(stream, indexes)
  assert bool(consistent)
  np.testing.assert_array_equal(decoded.numpy(), values)
  assert stream.numpy() == coder.encode(values, indexes).numpy()


def test_empty_input_round_trips(coder):
  empty = tf.zeros([0], tf.int32)
  decoded, consistent = coder.decode(coder.encode(empty, empty), empty)
  assert decoded.shape == (0,) and bool(consistent)


@pytest.mark.parametrize("tail", ["gaussian", "heavy"])
def test_cost_matches_tfcs_own_coding(small_model, coder, tail):
  """Same tables, and escapes cost what TFC's Elias-gamma code costs (within 1%)."""
  rng = np.random.default_rng(1)
  indexes = rng.integers(0, 4, size=(1, 4000)).astype(np.int32)
  noise = rng.normal(size=indexes.shape) if tail == "gaussian" else rng.standard_t(
      1.5, size=indexes.shape) * 3  # Many values outside the tables.
  values = np.round(noise * np.exp(indexes)).astype(np.int32)
  ours = len(coder.encode(values, indexes).numpy())
  theirs = len(small_model.compress(values.astype(np.float32),
                                    indexes.astype(np.float32)).numpy()[0])
  assert abs(ours - theirs) <= 0.01 * theirs + 8, (ours, theirs)


def test_garbage_streams_decode_in_bounded_time(coder):
  indexes = tf.constant(np.tile(np.arange(4, dtype=np.int32), 64))
  decode = tf.function(coder.decode)
  rng = np.random.default_rng(2)
  for length in list(range(0, 40)) + [200, 1000]:
    for pattern in (rng.bytes(length), b"\xff" * length, b"\x00" * length):
      decoded, _ = decode(tf.constant(pattern), indexes)
      assert decoded.shape == indexes.shape


def test_inputs_that_hung_tfcs_decoder_now_finish():
  """Files found by tools/fuzz_decoder.py on which TFC's overflow decoding never returned.

  Run in a child process with a time limit, so that a regression fails instead of hanging.
  """
  script = (
      "import sys; sys.path.insert(0, 'tests'); import tiny\n"
      "from tfflowcomp import bitstream, export\n"
      "codec = export.load(tiny.TINY_MODEL_DIR)\n"
      "for name in ('forged_tfc_hang1.tfc', 'forged_tfc_hang2.tfc'):\n"
      "  data = open(f'{tiny.TESTDATA}/{name}', 'rb').read()\n"
      "  c = bitstream.unpack(data)  # Must stay a valid container of the current version\n"
      "  assert c.fingerprint == codec.fingerprint  # and of the tiny model.\n"
      "  try:\n"
      "    image = codec.decompress(data)\n"
      "    assert image.shape == (c.height, c.width, 3), image.shape\n"
      "  except bitstream.BitstreamError:\n"
      "    pass\n"
      "print('finished')\n")
  result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "finished" in result.stdout
