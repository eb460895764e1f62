"""The container format: round trip, every rejection, and graph/Python agreement."""

import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf

from tfflowcomp import bitstream
from tfflowcomp import graph_bitstream
from tfflowcomp.bitstream import BitstreamError, Container

FINGERPRINT = bytes(range(8))


def _container(**overrides):
  values = dict(fingerprint=FINGERPRINT, height=17, width=31, quality_code=32768,
                streams=(b"side", b"latent-bytes"))
  values.update(overrides)
  return Container(**values)


def _with_checksum(body: bytes) -> bytes:
  return body + struct.pack(">I", zlib.adler32(body))


def test_pack_unpack_round_trip():
  container = _container()
  assert bitstream.unpack(bitstream.pack(container)) == container


def test_empty_streams_round_trip():
  container = _container(streams=(b"", b""))
  assert bitstream.unpack(bitstream.pack(container)) == container


@pytest.mark.parametrize("data,message", [
    (b"", "wrong magic"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "wrong magic"),
    (b"TFFC", "truncated"),
    (b"TFFC\x01" + b"\0" * 40, "unsupported format version 1"),
    (b"TFFC\x02" + b"\0" * 40, "unsupported format version 2"),
    (b"TFFC\x04" + b"\0" * 40, "unsupported format version 4"),
    (b"TFFC\x03" + b"\0" * 10, "truncated"),
])
def test_foreign_truncated_and_unknown_version_are_rejected(data, message):
  with pytest.raises(BitstreamError, match=message):
    bitstream.unpack(data)


def test_every_truncation_is_rejected():
  data = bitstream.pack(_container())
  for length in range(len(data)):
    with pytest.raises(BitstreamError):
      bitstream.unpack(data[:length])


def test_every_single_byte_corruption_is_rejected():
  data = bitstream.pack(_container())
  for position in range(len(data)):
    corrupted = bytearray(data)
    corrupted[position] ^= 0x5A
    with pytest.raises(BitstreamError):
      bitstream.unpack(bytes(corrupted))


def test_trailing_bytes_are_rejected():
  with pytest.raises(BitstreamError, match="trailing"):
    bitstream.unpack(bitstream.pack(_container()) + b"x")


@pytest.mark.parametrize("height,width", [(10**9, 10**9), (0, 5), (5, 0), (70000, 1),
                                          (65536, 65536)])
def test_absurd_image_sizes_are_rejected_before_allocation(height, width):
  header = struct.pack(">4sBB8sIIHB", b"TFFC", bitstream.VERSION, 0, FINGERPRINT, height % 2**32,
                       width % 2**32, 0, 2) + struct.pack(">2I", 0, 0)
  with pytest.raises(BitstreamError, match="image size"):
    bitstream.unpack(_with_checksum(header))


def test_absurd_stream_lengths_are_rejected():
  header = struct.pack(">4sBB8sIIHB", b"TFFC", bitstream.VERSION, 0, FINGERPRINT, 4, 4, 0, 2) + struct.pack(
      ">2I", 2**32 - 1, 2**32 - 1)
  with pytest.raises(BitstreamError, match="truncated"):
    bitstream.unpack(_with_checksum(header))


def test_bad_stream_count_and_flags_are_rejected():
  for count, flags, message in ((0, 0, "stream count"), (200, 0, "stream count"),
                                (2, 2, "flags"), (2, 0x81, "flags")):
    header = struct.pack(">4sBB8sIIHB", b"TFFC", bitstream.VERSION, flags, FINGERPRINT, 4, 4, 0, count)
    with pytest.raises(BitstreamError, match=message):
      bitstream.unpack(_with_checksum(header + b"\0" * 8))


def test_non_bytes_input_is_rejected():
  with pytest.raises(BitstreamError, match="expected bytes"):
    bitstream.unpack("TFFC")


def test_graph_pack_matches_python_pack():
  container = _container()
  graph = graph_bitstream.pack(tf.constant(FINGERPRINT), tf.constant(17), tf.constant(31),
                               tf.constant(32768), [tf.constant(s) for s in container.streams])
  assert graph.numpy() == bitstream.pack(container)


def test_graph_adler32_matches_zlib():
  for data in (b"", b"a", bytes(range(256)) * 300):
    assert int(graph_bitstream.adler32(tf.constant(data))) == zlib.adler32(data)


def test_graph_unpack_reads_python_containers_and_rejects_corruption():
  data = bitstream.pack(_container())
  height, width, code, streams = graph_bitstream.unpack(tf.constant(data),
                                                        tf.constant(FINGERPRINT), 2)
  assert (int(height), int(width), int(code)) == (17, 31, 32768)
  assert [s.numpy() for s in streams] == [b"side", b"latent-bytes"]
  for bad in (data[:-1], data[:10], b"XXXX" + data[4:], data[:30] + b"!" + data[31:]):
    with pytest.raises(tf.errors.InvalidArgumentError):
      graph_bitstream.unpack(tf.constant(bad), tf.constant(FINGERPRINT), 2)
  with pytest.raises(tf.errors.InvalidArgumentError, match="different model"):
    graph_bitstream.unpack(tf.constant(data), tf.constant(b"\0" * 8), 2)


def test_tiled_containers_round_trip_and_are_validated():
  streams = tuple(bytes([i]) * i for i in range(12))  # 6 tiles x (side, latent)
  container = _container(height=600, width=300, streams=streams, tile_side=256)
  data = bitstream.pack(container)
  assert bitstream.unpack(data) == container
  assert container.side_information_bytes == 0 + 2 + 4 + 6 + 8 + 10  # every tile's stream 0
  assert _container(streams=(b"ab", b"cdef")).side_information_bytes == 2
  assert bitstream.tile_grid(600, 300, 256)[-1] == (512, 256, 88, 44)
  with pytest.raises(BitstreamError, match="tile side"):
    bitstream.pack(_container(height=600, width=300, streams=streams, tile_side=300))
  with pytest.raises(BitstreamError, match="need 12 streams"):
    bitstream.pack(_container(height=600, width=300, streams=streams[:10], tile_side=256))
  # Hand-made tables: wrong tile count, wrong table size, lengths that do not add up.
  header = struct.pack(">4sBB8sIIHB", b"TFFC", bitstream.VERSION, bitstream.FLAG_TILED,
                       FINGERPRINT, 600, 300, 0, 2)
  good_table = struct.pack(">II12I", 256, 6, *range(12))
  payload = b"x" * sum(range(12))
  for table, body, message in (
      (struct.pack(">II12I", 256, 5, *range(12)), payload, "lists 5 tiles"),
      (good_table + b"\0", payload, "table's size"),
      (good_table, payload + b"y", "add up"),
      (struct.pack(">I", 256), payload, "truncated tile table"),
      (struct.pack(">II12I", 64, 6, *range(12)), payload, "tile side"),
  ):
    data = header + struct.pack(">2I", len(table), len(body)) + table + body
    with pytest.raises(BitstreamError, match=message):
      bitstream.unpack(_with_checksum(data))
  three_streams = struct.pack(">4sBB8sIIHB", b"TFFC", bitstream.VERSION, bitstream.FLAG_TILED,
                              FINGERPRINT, 600, 300, 0, 3)
  with pytest.raises(BitstreamError, match="tiled file has 2 streams"):
    bitstream.unpack(_with_checksum(three_streams + b"\0" * 12))
