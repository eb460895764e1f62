"""The container format of `bitstream.py`, written and read with TensorFlow ops.

The exported SavedModel's `compress` signature returns container bytes and its `decompress`
signature takes them, so packing and parsing must also exist as graph ops. `bitstream.py` is the
specification; tests check that both produce and accept identical bytes. Invalid input makes the
graph raise `tf.errors.InvalidArgumentError` with the same kind of message.
"""

import tensorflow as tf

from tfflowcomp import bitstream

_ADLER_MOD = 65521


def _check(condition, message: str):
  """An assertion op that raises InvalidArgumentError(message) in graphs and eagerly alike."""
  return tf.debugging.Assert(condition, [message])


def _byte_table():
  return tf.constant([bytes([i]) for i in range(256)], dtype=tf.string)


def bytes_from_uint(value, num_bytes: int):
  """Big-endian bytes of a non-negative integer tensor (scalar) as a scalar string."""
  value = tf.cast(value, tf.int64)
  shifts = tf.constant([8 * (num_bytes - 1 - i) for i in range(num_bytes)], tf.int64)
  digits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(value, shifts), 255)
  return tf.strings.reduce_join(tf.gather(_byte_table(), digits))


def uint_from_bytes(data, offset: int, num_bytes: int):
  """Big-endian unsigned integer (int64 scalar) at `data[offset:offset + num_bytes]`."""
  digits = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, num_bytes), tf.uint8),
                   tf.int64)
  shifts = tf.constant([8 * (num_bytes - 1 - i) for i in range(num_bytes)], tf.int64)
  return tf.reduce_sum(tf.bitwise.left_shift(digits, shifts))


def adler32(data):
  """zlib's Adler-32 of a scalar string, as an int64 scalar."""
  values = tf.cast(tf.io.decode_raw(data, tf.uint8), tf.int64)
  n = tf.size(values, out_type=tf.int64)
  weights = tf.math.floormod(n - tf.range(n, dtype=tf.int64), _ADLER_MOD)
  a = tf.math.floormod(1 + tf.reduce_sum(values), _ADLER_MOD)
  b = tf.math.floormod(n + tf.reduce_sum(weights * values), _ADLER_MOD)
  return b * 65536 + a


def pack(fingerprint, height, width, quality_code, streams):
  """Scalar string container from header fields and a list of scalar string streams."""
  parts = [
      tf.constant(bitstream.MAGIC), bytes_from_uint(bitstream.VERSION, 1),
      bytes_from_uint(0, 1), fingerprint, bytes_from_uint(height, 4),
      bytes_from_uint(width, 4), bytes_from_uint(quality_code, 2),
      bytes_from_uint(len(streams), 1)
  ]
  parts += [bytes_from_uint(tf.strings.length(s), 4) for s in streams]
  body = tf.strings.join(parts + list(streams))
  return tf.strings.join([body, bytes_from_uint(adler32(body), 4)])


def unpack(data, fingerprint, num_streams: int):
  """Parses and validates a container; returns `(height, width, quality_code, streams)`.

  Raises (at run time) `tf.errors.InvalidArgumentError` for anything `bitstream.unpack` rejects,
  or if the fingerprint differs from `fingerprint` (the model this graph belongs to).
  """
  size = tf.strings.length(data)
  minimum = bitstream.FIXED_HEADER_BYTES + 4 * num_streams + bitstream.CHECKSUM_BYTES
  int64 = lambda value: tf.constant(value, tf.int64)
  with tf.control_dependencies([
      _check(tf.greater_equal(size, minimum), "truncated file: shorter than the header")]):
    checks = [
        _check(tf.equal(tf.strings.substr(data, 0, 4), bitstream.MAGIC),
               "not a tfflowcomp file (wrong magic number)"),
        _check(tf.equal(uint_from_bytes(data, 4, 1), int64(bitstream.VERSION)),
               "unsupported format version"),
        _check(tf.equal(uint_from_bytes(data, 5, 1), int64(0)),
               "unknown flags in header (tiled files are decoded by the Python API)"),
        _check(tf.equal(tf.strings.substr(data, 6, 8), fingerprint),
               "the file was made by a different model"),
        _check(tf.equal(uint_from_bytes(data, 24, 1), int64(num_streams)),
               "invalid stream count"),
    ]
  with tf.control_dependencies(checks):
    height = uint_from_bytes(data, 14, 4)
    width = uint_from_bytes(data, 18, 4)
    quality_code = uint_from_bytes(data, 22, 2)
    lengths = [uint_from_bytes(data, bitstream.FIXED_HEADER_BYTES + 4 * i, 4)
               for i in range(num_streams)]
  body_size = tf.cast(size, tf.int64) - bitstream.CHECKSUM_BYTES
  header_size = int64(bitstream.FIXED_HEADER_BYTES + 4 * num_streams)
  checks = [
      _check(tf.logical_and(height >= 1, height <= bitstream.MAX_SIDE), "invalid image height"),
      _check(tf.logical_and(width >= 1, width <= bitstream.MAX_SIDE), "invalid image width"),
      _check(height * width <= bitstream.MAX_PIXELS, "image size exceeds the pixel limit"),
      _check(tf.equal(header_size + tf.add_n(lengths), body_size),
             "stream lengths do not match the file size (truncated or corrupted)"),
  ]
  with tf.control_dependencies(checks):
    body = tf.strings.substr(data, 0, tf.cast(body_size, tf.int32))
    checksum = uint_from_bytes(tf.strings.substr(data, tf.cast(body_size, tf.int32), 4), 0, 4)
  with tf.control_dependencies([
      _check(tf.equal(adler32(body), checksum), "checksum mismatch: the file is corrupted")]):
    streams = []
    offset = header_size
    for length in lengths:
      streams.append(tf.strings.substr(data, tf.cast(offset, tf.int32),
                                       tf.cast(length, tf.int32)))
      offset += length
  return height, width, quality_code, streams
