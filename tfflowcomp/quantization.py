"""Rate-distortion optimised quantization (RDOQ) of the latent: the encoder's only lossy step.

Latent symbols are integers. The range coder carries `offset = symbol - loc`, where `loc` is the
hyperprior's predicted mean rounded to an integer, with a zero-centred Gaussian table of scale
`scale` bins. Instead of rounding each unquantized symbol `s` to the nearest integer, the encoder
chooses whichever of the two integers around it costs less in

    bits(offset) + DISTORTION_WEIGHT * (symbol - s)**2,

the same trade-off the model was trained for. Only the encoder runs this; the decoder just reads
the offsets, so files stay in the same format and decode with any decoder of it.

The symbols stay on the integer grid on purpose: a decoded image re-analyses to symbols next to
the same integers, and re-choosing between the two neighbours keeps the decoded one unless the
other saves more than `DISTORTION_WEIGHT` (~8.7) bits, so re-encoding stays stable. (Quantizing
around the unrounded mean would save rate but tie the reconstruction to the side information,
which changes under re-encoding.)

Why the weight: training minimises `bpp + lambda * MSE` with `lambda = 18 / (ln 2 * step**2)`
(`quality.rd_lambda`). The per-channel gains make a symbol error `e` (in bins) cost about
`(e * step)**2` of summed squared pixel error (`model.FlowCompressionModel.initialize`), and an
image of N pixels has 3N latent elements, so per element the loss is
`(bits + lambda * step**2 * e**2 / 3) / N = (bits + 6 / ln 2 * e**2) / N`.
"""

import math

import tensorflow as tf

DISTORTION_WEIGHT = 6.0 / math.log(2.0)
# Probabilities below the range coder's resolution (16-bit tables) cost at most this many bits.
_MAX_BITS = 16.0


def gaussian_bits(offsets, scale):
  """Information content, in bits, of integer `offsets` under a discretised N(0, scale**2).

  Args:
    offsets: float32, integer-valued, any shape.
    scale: float32, same shape (or broadcastable), > 0, in bins.
  Returns:
    float32 bits, same shape, at most `_MAX_BITS` (tails are escaped by the coder anyway).
  """
  magnitude = tf.abs(offsets)
  denominator = scale * math.sqrt(2.0)
  # P = Phi((|k| + 1/2) / s) - Phi((|k| - 1/2) / s), written with erfc for accurate tails.
  probability = 0.5 * (tf.math.erfc((magnitude - 0.5) / denominator) -
                       tf.math.erfc((magnitude + 0.5) / denominator))
  return tf.minimum(-tf.math.log(tf.maximum(probability, 1e-30)) / math.log(2.0), _MAX_BITS)


def quantize_residual(residual, scale, distortion_weight: float = DISTORTION_WEIGHT):
  """Chooses the coded integer offset of every latent element (encoder only).

  Args:
    residual: float32 `s - loc`, any shape (s = latent * gain / step, loc an integer).
    scale: float32, same shape, the scale (in bins) of each element's coding table.
    distortion_weight: bits per squared bin of error; `float("inf")` gives plain rounding.
  Returns:
    float32, integer-valued, same shape: `floor(residual)` or `floor(residual) + 1`.
  """
  rounded = tf.round(residual)
  if math.isinf(distortion_weight):
    return rounded
  low = tf.floor(residual)
  high = low + 1.0
  cost_low = gaussian_bits(low, scale) + distortion_weight * tf.square(residual - low)
  cost_high = gaussian_bits(high, scale) + distortion_weight * tf.square(high - residual)
  return tf.where(cost_low <= cost_high, low, high)
