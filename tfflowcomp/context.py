"""Channel-conditional context: decoded coarse scales sharpen the tables of the finer ones.

The latent's channels are the flow's scales, coarsest first (`flow/multiscale.py`):

    slice 0: lowpass_L and details_L     (12 channels)
    slice 1: s2d(details_{L-1})          (36)
    ...
    slice L-1: s2d(details_1)            (9 * 4**(L-1))

all at the latent's resolution `[h, w]`, so a 3x3 convolution over slices `< k` sees the parents
and neighbours of every coefficient of slice `k`. The decoder decodes slice by slice; before
slice `k` it runs `ChannelContext.slice_tables(k, ...)` on the symbols of slices `< k` (in latent
units) and the hyperprior's log-scales of slice `k` (in bins), and adds the result to the
hyperprior's location and log-scale (both in bins). Slice 0 is coded with the hyperprior alone.
This is the wavelet codecs' inter-scale context (zerotrees, EBCOT) learned, in the form of Minnen
and Singh's channel-conditional model (2020).

Every net ends in a zero-initialised convolution, so a context added to a trained model
(`tools/train.py --channel_context --init_from ...`) starts from exactly that model's coding.
Its kernels are stored divided by `CONTEXT_SPEEDUP` (every layer's input is multiplied by it), so
Adam, whose steps are about the learning rate per variable, moves the new nets that many times
faster than the warm-started weights around them.

Coding evaluates the same nets in float64 (`dtype`): their outputs choose probability tables by
rounding, which encoder and decoder must agree on (`codec.FlowCodec._latent_distribution`).
"""

from typing import List, Tuple

import tensorflow as tf

from tfflowcomp.config import ModelConfig

CONTEXT_WIDTH = 64
CONTEXT_SPEEDUP = 10.0


def slice_bounds(num_levels: int) -> List[int]:
  """Channel boundaries of the slices: `[0, 12, 48, ..., 3 * 4**num_levels]`."""
  bounds = [0, 12]
  for level in range(1, num_levels):
    bounds.append(bounds[-1] + 9 * 4 ** level)
  return bounds


class _SliceNet(tf.keras.layers.Layer):
  """(decoded `[B, h, w, Cin]`, log-scale bins `[B, h, w, Ck]`) -> 2 x `[B, h, w, Ck]`."""

  def __init__(self, input_channels: int, slice_channels: int, name: str):
    super().__init__(name=name)
    width = CONTEXT_WIDTH
    def small():  # Glorot-uniform for the effective kernel `CONTEXT_SPEEDUP * stored kernel`.
      return tf.keras.initializers.VarianceScaling(1.0 / CONTEXT_SPEEDUP**2, "fan_avg",
                                                   "uniform")

    self.decoded_kernel = self.add_weight(
        name="decoded_kernel", shape=[3, 3, input_channels, width], initializer=small())
    self.scale_kernel = self.add_weight(
        name="scale_kernel", shape=[1, 1, slice_channels, width], initializer=small())
    self.bias1 = self.add_weight(name="bias1", shape=[width], initializer="zeros")
    self.kernel2 = self.add_weight(name="kernel2", shape=[3, 3, width, width], initializer=small())
    self.bias2 = self.add_weight(name="bias2", shape=[width], initializer="zeros")
    self.out_kernel = self.add_weight(
        name="out_kernel", shape=[1, 1, width, 2 * slice_channels], initializer="zeros")
    self.out_bias = self.add_weight(name="out_bias", shape=[2 * slice_channels],
                                    initializer="zeros")

  def apply_in(self, decoded, log_scale_bins, dtype) -> Tuple[tf.Tensor, tf.Tensor]:
    def conv(x, kernel):
      return tf.nn.conv2d(CONTEXT_SPEEDUP * tf.cast(x, dtype), tf.cast(kernel, dtype), 1, "SAME")

    def bias(variable):
      return tf.cast(variable, dtype)

    hidden = tf.nn.relu(conv(decoded, self.decoded_kernel)
                        + conv(log_scale_bins, self.scale_kernel) + bias(self.bias1))
    hidden = tf.nn.relu(conv(hidden, self.kernel2) + bias(self.bias2))
    out = conv(hidden, self.out_kernel) + bias(self.out_bias)
    return tf.split(out, 2, axis=-1)


class ChannelContext(tf.keras.layers.Layer):
  """Corrections of the hyperprior's tables of each slice from the decoded coarser slices."""

  def __init__(self, config: ModelConfig, name: str = "channel_context"):
    super().__init__(name=name)
    self.bounds = slice_bounds(config.num_levels)
    self.nets = [
        _SliceNet(self.bounds[k], self.bounds[k + 1] - self.bounds[k], name=f"slice{k}")
        for k in range(1, len(self.bounds) - 1)
    ]

  @property
  def num_slices(self) -> int:
    return len(self.bounds) - 1

  def call(self, decoded, loc_bins, log_scale_bins, dtype=tf.float32):
    """All slices at once, for symbols known in full (training, and the encoder).

    Args:
      decoded: `[B, h, w, C]`, all decoded symbols divided by their symbols per unit.
      loc_bins, log_scale_bins: `[B, h, w, C]`, the hyperprior's tables in bins.
    Returns:
      `(loc_bins, log_scale_bins)` with the corrections added, each `[B, h, w, C]` of `dtype`.
    """
    locs = [tf.cast(loc_bins[..., :self.bounds[1]], dtype)]
    log_scales = [tf.cast(log_scale_bins[..., :self.bounds[1]], dtype)]
    for k in range(1, self.num_slices):
      start, end = self.bounds[k], self.bounds[k + 1]
      loc_k, log_scale_k = self.slice_tables(k, decoded[..., :start], loc_bins[..., start:end],
                                             log_scale_bins[..., start:end], dtype)
      locs.append(loc_k)
      log_scales.append(log_scale_k)
    return tf.concat(locs, -1), tf.concat(log_scales, -1)

  def slice_tables(self, k: int, decoded, loc_bins_k, log_scale_bins_k, dtype=tf.float32):
    """The tables of slice `k >= 1`: the hyperprior's plus the context's corrections.

    Args:
      k: python int, the slice.
      decoded: `[B, h, w, bounds[k]]`, the decoded symbols of slices `< k` divided by their
        symbols per unit (latent units).
      loc_bins_k, log_scale_bins_k: `[B, h, w, Ck]`, the hyperprior's location and log-scale
        of slice `k`, in bins.
      dtype: float32 (training) or float64 (coding).
    Returns:
      `(loc_bins, log_scale_bins)` of slice `k`, each `[B, h, w, Ck]` of `dtype`.
    """
    log_scale_bins_k = tf.cast(log_scale_bins_k, dtype)
    d_loc, d_log_scale = self.nets[k - 1].apply_in(decoded, log_scale_bins_k, dtype)
    return tf.cast(loc_bins_k, dtype) + d_loc, log_scale_bins_k + d_log_scale
