"""Range coding over TFC's tables with a decoder that always terminates.

TFC's entropy models give every table an escape symbol (its last interval) for values outside
the table's support, and code the escaped value with an Elias-gamma code whose unary prefix the
decoder reads bit by bit until it meets a 1. In tensorflow-compression 2.14.1 that loop has no
bound, and a decoder that has run past the end of its input keeps reading zeros, so a forged
stream can make `EntropyDecodeIndex` spin forever (found by our fuzzer; docs/reliability.md).

`BoundedRangeCoder` uses the same tables and the same range coder (TFC's ops), but never enters
that branch: the tables are given a positive precision (no overflow coding), so the escape is an
ordinary symbol, and each escaped value follows, in the same stream, as a fixed-size code:
`n = floor(log2(magnitude))` (one of 31 symbols, `P(n) ~ 2**-(n + 1)`), a sign, then the `n` bits
below the leading one. The decoder makes exactly `num_values + 2 * num_escapes + sum(n)` table look-ups,
each bounded, whatever the input, so decoding time is bounded by the image size announced in the
header. The cost is that of TFC's scheme: the escape symbol plus `2 n + 2` bits, paid only for
values outside a table's range.

Stream layout (one range-coded string): `values` in the given order, then for each escape in
that order `(n, sign)`, then all escapes' magnitude bits, most significant first.
"""

import numpy as np
import tensorflow as tf
from tensorflow_compression.python.ops import gen_ops

# Auxiliary tables appended after the model's tables: the exponent `n` in 0..30 with
# probability about 2**-(n + 1) (so it costs n + 1 bits, as the unary prefix of TFC's Elias-gamma
# code does, but takes one bounded table look-up), and one fair bit.
_MAX_EXPONENT = 30
_AUX_PRECISION = 16


def _exponent_cdf():
  counts = [max(1, 2**(_AUX_PRECISION - 1 - n)) for n in range(_MAX_EXPONENT + 1)]
  counts[0] -= sum(counts) - 2**_AUX_PRECISION  # Every count >= 1, total 2**16.
  return [_AUX_PRECISION, 0, *np.cumsum(counts).tolist()]


_AUX_CDF = np.array(_exponent_cdf() + [1, 0, 1, 2], np.int32)


def escape_symbols(cdf: np.ndarray) -> np.ndarray:
  """The escape symbol (last interval) of every table of a TFC CDF vector.

  Args:
    cdf: int32 1-D, TFC's concatenated tables; each row is `[-precision, 0, c_1, ..., c_{m-1},
      2**precision]` (negative precision: overflow coding on), possibly followed by padding
      entries equal to `2**precision`. Every symbol has non-zero probability, so exactly `m`
      entries of a row are below `2**precision`.

  Returns:
    int32 `[num_tables]`: `m - 1`, the index of each table's escape symbol.
  """
  cdf = np.asarray(cdf, np.int64)
  starts = np.flatnonzero(cdf < 0)
  if starts.size == 0 or starts[0] != 0:
    raise ValueError("not a TFC table vector with overflow coding (rows must start with "
                     "a negative precision)")
  ends = np.append(starts[1:], cdf.size)
  escapes = []
  for start, end in zip(starts, ends):
    top = 1 << int(-cdf[start])
    escapes.append(np.count_nonzero(cdf[start + 1:end] < top) - 1)
  return np.array(escapes, np.int32)


class BoundedRangeCoder(tf.Module):
  """Codes int32 symbols with the tables of a TFC entropy model; decoding always terminates.

  Both directions are graph-compatible (they are traced into the exported SavedModel). The
  entropy model's tables are read (not copied) at every call, so they are stored once.
  """

  def __init__(self, tables, name: str):
    """`tables`: a TFC continuous entropy model with built tables (`cdf`, `cdf_offset`)."""
    super().__init__(name=name)
    self.tables = tables
    escapes = escape_symbols(tables.cdf.numpy())
    if escapes.size != tables.cdf_offset.shape[0]:
      raise ValueError(f"{escapes.size} tables in the CDF but {tables.cdf_offset.shape[0]} "
                       "offsets")
    self.escape_symbol = tf.Variable(escapes, trainable=False, name="escape_symbol")

  def _lookup(self):
    """All tables with positive precision (no overflow branch), then the auxiliary tables."""
    return tf.concat([tf.abs(self.tables.cdf), _AUX_CDF], 0)

  def _aux_indexes(self):
    num_tables = tf.shape(self.escape_symbol)[0]
    return num_tables, num_tables + 1  # Exponent table, bit table.

  def encode(self, values, indexes):
    """Range-codes `values` with tables `indexes`.

    Args:
      values: int32, any shape: symbols (absolute, before TFC's per-table offset).
      indexes: int32, same shape: table of each value, in `[0, num_tables)`.

    Returns:
      string `[]`, the coded stream.
    """
    values = tf.reshape(tf.cast(values, tf.int64), [-1])
    indexes = tf.reshape(indexes, [-1])
    relative = values - tf.cast(tf.gather(self.tables.cdf_offset, indexes), tf.int64)
    escape = tf.cast(tf.gather(self.escape_symbol, indexes), tf.int64)
    is_escape = tf.logical_or(relative < 0, relative >= escape)
    coded = tf.where(is_escape, escape, relative)

    escaped = tf.boolean_mask(relative, is_escape)
    escaped_limit = tf.boolean_mask(escape, is_escape)
    sign = tf.cast(escaped < 0, tf.int64)
    magnitude = tf.where(escaped < 0, -escaped, escaped - escaped_limit + 1)  # >= 1
    with tf.control_dependencies([tf.debugging.assert_less(
        magnitude, tf.constant(2**(_MAX_EXPONENT + 1), tf.int64),
        message="a latent symbol is too large to code")]):
      exponent = tf.reduce_sum(tf.cast(
          magnitude[:, None] >= 2**tf.range(1, _MAX_EXPONENT + 1, dtype=tf.int64), tf.int64), 1)
    row, offset_in_row = _ragged_positions(exponent)
    bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(
        tf.gather(magnitude, row), tf.gather(exponent, row) - 1 - offset_in_row), 1)

    exponent_table, bit_table = self._aux_indexes()
    header = tf.reshape(tf.stack([exponent, sign], 1), [-1])
    header_indexes = tf.tile([exponent_table, bit_table], [tf.size(exponent)])
    handle = gen_ops.create_range_encoder([1], self._lookup())
    for part_values, part_indexes in ((coded, indexes), (header, header_indexes),
                                      (bits, tf.fill(tf.shape(bits), bit_table))):
      handle = gen_ops.entropy_encode_index(handle, part_indexes[None],
                                            tf.cast(part_values, tf.int32)[None])
    return gen_ops.entropy_encode_finalize(handle)[0]

  def decode(self, stream, indexes):
    """Inverse of `encode` for the same `indexes`; bounded time for any `stream`.

    Args:
      stream: string `[]`.
      indexes: int32, any shape: the tables used by the encoder.

    Returns:
      `(values, consistent)`: int32 values shaped like `indexes`, and a bool `[]` that is False
      when the stream did not decode consistently (TFC's sanity check: corrupted or forged
      data). Values decoded from an inconsistent stream are meaningless but finite in number.
    """
    shape = tf.shape(indexes)
    indexes = tf.reshape(indexes, [-1])
    handle = gen_ops.create_range_decoder(stream[None], self._lookup())
    handle, coded = gen_ops.entropy_decode_index(handle, indexes[None], tf.shape(indexes),
                                                 tf.int32)
    coded = tf.cast(coded[0], tf.int64)
    escape = tf.cast(tf.gather(self.escape_symbol, indexes), tf.int64)
    is_escape = tf.equal(coded, escape)
    num_escapes = tf.reduce_sum(tf.cast(is_escape, tf.int32))

    exponent_table, bit_table = self._aux_indexes()
    header_indexes = tf.tile([exponent_table, bit_table], [num_escapes])
    handle, header = gen_ops.entropy_decode_index(handle, header_indexes[None],
                                                  tf.shape(header_indexes), tf.int32)
    header = tf.reshape(tf.cast(header[0], tf.int64), [-1, 2])
    exponent, sign = header[:, 0], header[:, 1]
    bit_indexes = tf.fill([tf.cast(tf.reduce_sum(exponent), tf.int32)], bit_table)
    handle, bits = gen_ops.entropy_decode_index(handle, bit_indexes[None],
                                                tf.shape(bit_indexes), tf.int32)
    consistent = gen_ops.entropy_decode_finalize(handle)

    row, offset_in_row = _ragged_positions(exponent)
    weights = tf.bitwise.left_shift(tf.ones_like(row, tf.int64),
                                    tf.gather(exponent, row) - 1 - offset_in_row)
    low_bits = tf.math.unsorted_segment_sum(tf.cast(bits[0], tf.int64) * weights,
                                            tf.cast(row, tf.int32), num_escapes)
    magnitude = tf.bitwise.left_shift(tf.ones_like(exponent), exponent) + low_bits
    escaped = tf.where(sign > 0, -magnitude, tf.boolean_mask(escape, is_escape) + magnitude - 1)
    relative = tf.tensor_scatter_nd_update(coded, tf.where(is_escape), escaped)
    values = relative + tf.cast(tf.gather(self.tables.cdf_offset, indexes), tf.int64)
    values = tf.clip_by_value(values, tf.int32.min, tf.int32.max)
    return tf.reshape(tf.cast(values, tf.int32), shape), tf.reshape(consistent, [])


def _ragged_positions(lengths):
  """For rows of `lengths` (int64 `[k]`), the row and in-row offset of every flat element."""
  total = tf.reduce_sum(lengths)
  row = tf.repeat(tf.range(tf.size(lengths, out_type=tf.int64)), lengths)
  starts = tf.cumsum(lengths, exclusive=True)
  return row, tf.range(total) - tf.gather(starts, row)
