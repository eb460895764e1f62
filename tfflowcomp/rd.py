"""Rate-distortion curve utilities: interpolation and Bjontegaard delta rate (BD-rate).

BD-rate follows the piecewise-cubic variant recommended for curves with many points (as in
JVET-style spreadsheets and the `bjontegaard` PyPI package's "pchip" mode): log10(rate) is
interpolated as a monotone piecewise-cubic (PCHIP) function of PSNR for each curve, both are
integrated over the PSNR interval where the curves overlap, and the mean log-rate difference is
turned into a percentage. Negative = the test codec needs fewer bits at equal PSNR.
"""

import math
from typing import Optional, Sequence

import numpy as np
from scipy import integrate, interpolate


def _sorted_unique(x, y):
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  order = np.argsort(x)
  x, y = x[order], y[order]
  keep = np.concatenate([[True], np.diff(x) > 1e-9])
  return x[keep], y[keep]


def psnr_at_bpp(bpps: Sequence[float], psnrs: Sequence[float], target: float) -> Optional[float]:
  """PSNR at `target` bpp by PCHIP interpolation in log-rate; None outside the curve."""
  log_rate, psnr = _sorted_unique(np.log10(bpps), psnrs)
  x = math.log10(target)
  if len(log_rate) < 2 or not log_rate[0] <= x <= log_rate[-1]:
    return None
  return float(interpolate.PchipInterpolator(log_rate, psnr)(x))


def bd_rate(anchor_bpps, anchor_psnrs, test_bpps, test_psnrs) -> Optional[float]:
  """Average bit-rate difference (%) of test vs anchor at equal PSNR; None if no overlap."""
  anchor_psnr, anchor_log_rate = _sorted_unique(anchor_psnrs, np.log10(anchor_bpps))
  test_psnr, test_log_rate = _sorted_unique(test_psnrs, np.log10(test_bpps))
  if len(anchor_psnr) < 2 or len(test_psnr) < 2:
    return None
  low = max(anchor_psnr[0], test_psnr[0])
  high = min(anchor_psnr[-1], test_psnr[-1])
  if high - low < 1e-6:
    return None
  anchor_fn = interpolate.PchipInterpolator(anchor_psnr, anchor_log_rate)
  test_fn = interpolate.PchipInterpolator(test_psnr, test_log_rate)
  anchor_area = integrate.quad(anchor_fn, low, high, limit=200)[0]
  test_area = integrate.quad(test_fn, low, high, limit=200)[0]
  return float((10.0 ** ((test_area - anchor_area) / (high - low)) - 1.0) * 100.0)
