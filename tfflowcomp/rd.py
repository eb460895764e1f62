"""Rate-distortion curve utilities: interpolation and Bjontegaard delta rate (BD-rate).

BD-rate follows the piecewise-cubic variant recommended for curves with many points (as in
JVET-style spreadsheets and the `bjontegaard` PyPI package's "pchip" mode): log10(rate) is
interpolated as a monotone piecewise-cubic (PCHIP) function of PSNR for each curve, both are
integrated over the PSNR interval where the curves overlap, and the mean log-rate difference is
turned into a percentage. Negative = the test codec needs fewer bits at equal PSNR.

A BD-rate is an average; `psnr_lead` says where along the rate axis one curve is ahead of the
other (both interpolated the same way as `psnr_at_bpp`), so "ahead at every rate" can be checked
rather than read off a few sample rates.
"""

import math
from typing import Optional, Sequence

import numpy as np
from scipy import interpolate


def _sorted_unique(x, y):
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  order = np.argsort(x)
  x, y = x[order], y[order]
  keep = np.concatenate([[True], np.diff(x) > 1e-9])
  return x[keep], y[keep]


def _interpolated_overlap(anchor_x, anchor_y, test_x, test_y):
  """PCHIP interpolants y(x) of two curves and the x interval both cover.

  Returns:
    `(anchor_fn, test_fn, low, high)`, or None if a curve has fewer than two distinct x or the
    curves do not overlap.
  """
  anchor_x, anchor_y = _sorted_unique(anchor_x, anchor_y)
  test_x, test_y = _sorted_unique(test_x, test_y)
  if len(anchor_x) < 2 or len(test_x) < 2:
    return None
  low, high = max(anchor_x[0], test_x[0]), min(anchor_x[-1], test_x[-1])
  if high - low < 1e-6:
    return None
  return (interpolate.PchipInterpolator(anchor_x, anchor_y),
          interpolate.PchipInterpolator(test_x, test_y), low, high)


def psnr_at_bpp(bpps: Sequence[float], psnrs: Sequence[float], target: float) -> Optional[float]:
  """PSNR at `target` bpp by PCHIP interpolation in log-rate; None outside the curve."""
  log_rate, psnr = _sorted_unique(np.log10(bpps), psnrs)
  x = math.log10(target)
  if len(log_rate) < 2 or not log_rate[0] <= x <= log_rate[-1]:
    return None
  return float(interpolate.PchipInterpolator(log_rate, psnr)(x))


def psnr_lead(anchor_bpps, anchor_psnrs, test_bpps, test_psnrs, samples: int = 400):
  """PSNR of test minus anchor (dB) over the bit-rates both curves cover; None if they don't.

  Both curves are PCHIP-interpolated in log-rate (as `psnr_at_bpp`) at `samples` log-spaced
  rates of the overlap.

  Returns:
    dict: `min_db` and `min_at_bpp` (where test is furthest behind, or least ahead),
    `max_db` and `max_at_bpp`, and `behind_bpp` (list of `[low, high]` bpp intervals where
    test < anchor; empty if test is ahead, or level, everywhere).
  """
  overlap = _interpolated_overlap(np.log10(anchor_bpps), anchor_psnrs, np.log10(test_bpps),
                                  test_psnrs)
  if overlap is None:
    return None
  anchor_fn, test_fn, low, high = overlap
  log_rates = np.linspace(low, high, samples)
  lead = test_fn(log_rates) - anchor_fn(log_rates)
  rates = 10.0 ** log_rates
  behind, start = [], None
  for rate, value in zip(rates, lead):
    if value < 0 and start is None:
      start = rate
    elif value >= 0 and start is not None:
      behind.append([float(start), float(previous)])
      start = None
    previous = rate
  if start is not None:
    behind.append([float(start), float(rates[-1])])
  worst, best = int(np.argmin(lead)), int(np.argmax(lead))
  return dict(min_db=float(lead[worst]), min_at_bpp=float(rates[worst]),
              max_db=float(lead[best]), max_at_bpp=float(rates[best]), behind_bpp=behind)


def bd_rate(anchor_bpps, anchor_psnrs, test_bpps, test_psnrs) -> Optional[float]:
  """Average bit-rate difference (%) of test vs anchor at equal PSNR; None if no overlap."""
  overlap = _interpolated_overlap(anchor_psnrs, np.log10(anchor_bpps), test_psnrs,
                                  np.log10(test_bpps))
  if overlap is None:
    return None
  anchor_fn, test_fn, low, high = overlap
  # Exact integrals of the piecewise cubics (adaptive quadrature warned on kinked curves).
  anchor_area = float(anchor_fn.integrate(low, high))
  test_area = float(test_fn.integrate(low, high))
  return float((10.0 ** ((test_area - anchor_area) / (high - low)) - 1.0) * 100.0)
