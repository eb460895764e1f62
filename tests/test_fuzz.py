"""Bounded fuzzing of the container and the decoder (Hypothesis).

Every input must either decode to an image of the size its header states or raise
`BitstreamError`; nothing may crash the process or hang. Mutations are applied both to raw files
(caught by the checksum) and with the checksum recomputed, so that garbage reaches the range
decoder and the inverse flow. `tools/fuzz_decoder.py` runs the same property for much longer.
"""

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import tiny
from tfflowcomp import bitstream


def _fix_checksum(data: bytes) -> bytes:
  body = data[:-4]
  return body + struct.pack(">I", zlib.adler32(body))


@pytest.fixture(scope="module")
def valid_files(codec):
  files = [codec.compress(tiny.smooth_image(h, w, seed=h), q)
           for h, w, q in ((9, 13, 0.2), (16, 16, 0.6), (5, 40, 0.95))]
  files.append(codec.compress(tiny.smooth_image(6, 300, seed=1), 0.5, tile_side=256))  # 2 tiles
  return files


def _decode_or_reject(codec, data):
  try:
    image = codec.decompress(data)
  except bitstream.BitstreamError:
    return
  container = bitstream.unpack(data)
  assert image.shape == (container.height, container.width, 3)
  assert image.dtype == np.uint8


mutation = st.tuples(st.integers(0, 3), st.integers(0, 10**6), st.integers(1, 255),
                     st.binary(max_size=64))


def _mutate(data: bytes, kind: int, position: int, value: int, blob: bytes) -> bytes:
  position %= max(len(data), 1)
  if kind == 0 and not data:  # Nothing left to flip (an earlier mutation truncated it all).
    return data
  if kind == 0:  # Flip bits of one byte.
    return data[:position] + bytes([data[position] ^ value]) + data[position + 1:]
  if kind == 1:  # Truncate.
    return data[:position]
  if kind == 2:  # Insert random bytes.
    return data[:position] + blob + data[position:]
  return data[:position] + blob + data[position + len(blob):]  # Overwrite.


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(index=st.integers(0, 3), mutations=st.lists(mutation, min_size=1, max_size=4),
       fix_checksum=st.booleans())
@example(index=0, mutations=[(0, 0, 1, b""), (1, 0, 1, b""), (0, 0, 1, b"")],
         fix_checksum=False)  # Truncated to nothing, then flipped (found by Hypothesis in CI).
def test_mutated_files_decode_or_are_rejected(codec, valid_files, index, mutations,
                                              fix_checksum):
  data = valid_files[index]
  for kind, position, value, blob in mutations:
    data = _mutate(data, kind, position, value, blob)
  if fix_checksum and len(data) > bitstream.FIXED_HEADER_BYTES + 4:
    data = _fix_checksum(data)
  _decode_or_reject(codec, data)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(index=st.integers(0, 2), payload=st.binary(min_size=0, max_size=300))
def test_garbage_streams_behind_a_valid_header_decode_or_are_rejected(codec, valid_files, index,
                                                                      payload):
  container = bitstream.unpack(valid_files[index])
  cut = len(payload) // 2
  forged = bitstream.pack(bitstream.Container(
      fingerprint=container.fingerprint, height=container.height, width=container.width,
      quality_code=container.quality_code, streams=(payload[:cut], payload[cut:])))
  _decode_or_reject(codec, forged)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_are_rejected(data):
  with pytest.raises(bitstream.BitstreamError):
    bitstream.unpack(data)
