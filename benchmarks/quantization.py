"""Encoder choices study: quantization (RDOQ vs rounding) and side-information refinement.

  python benchmarks/quantization.py [--images ../shared/data/kodak] [--limit 4]
                                    [--variants inf/0,1/0,1/16,2/16]
                                    [--qualities 0,0.2,0.4,0.6,0.8,1]
                                    [--model savedmodels/tfflowcomp_base]
                                    [--output benchmarks/quantization.json]

Every variant writes real files with the same model and the same decoder; only the encoder's
choices differ. A variant `W/N` uses `W` times the trained trade-off
`quantization.DISTORTION_WEIGHT` in the choice of each latent offset (`inf` = round to the
nearest integer; `tfflowcomp/quantization.py`) and `N` refinement steps of the side information
(`tfflowcomp/side_refinement.py`; 0 = the hyper analysis's one-pass estimate). Prints mean bpp /
PSNR per quality, the mean encode time, and the BD-rate of each variant against the first.
"""

import argparse
import json
import os
import platform
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--images", default=os.path.normpath(
      os.path.join(REPO_ROOT, "..", "shared", "data", "kodak")))
  parser.add_argument("--limit", type=int, default=4)
  parser.add_argument("--variants", default="inf/0,1/0,1/16,2/16",
                      help="comma-separated WEIGHT/SIDE_ITERATIONS pairs; the first is the anchor")
  parser.add_argument("--qualities", default="0,0.2,0.4,0.6,0.8,1")
  parser.add_argument("--model", default=os.path.join(REPO_ROOT, "savedmodels",
                                                      "tfflowcomp_base"))
  parser.add_argument("--output", default=os.path.join(REPO_ROOT, "benchmarks",
                                                       "quantization.json"))
  args = parser.parse_args(argv)
  try:
    variants = [(float(w), int(n)) for w, n in (v.split("/") for v in args.variants.split(","))]
    qualities = [float(q) for q in args.qualities.split(",")]
    if any(n < 0 for _, n in variants):
      raise ValueError("side iterations must be >= 0")
  except ValueError as error:
    print(f"error: --variants takes WEIGHT/ITERATIONS pairs (e.g. inf/0,1/16) and --qualities "
          f"comma-separated numbers: {error}", file=sys.stderr)
    return 2
  import time  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tfflowcomp import data, export, metrics, quantization, rd  # pylint: disable=g-import-not-at-top
  from tfflowcomp.codec import FlowCodec  # pylint: disable=g-import-not-at-top
  try:
    images = data.load_nonempty_folder(args.images, args.limit)
  except ValueError as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  model = export.restore_model(args.model)
  curves, seconds = {}, {}
  for weight, side_iterations in variants:
    codec = FlowCodec.from_model(model, quantization.DISTORTION_WEIGHT * weight, side_iterations)
    name = ("rounding" if np.isinf(weight) else f"RDOQ x{weight:g}") + f" side {side_iterations}"
    codec.compress(images[0][:64, :64], 0.5)  # Trace the graph outside the timing.
    curve, times = curves[name], seconds[name] = [], []
    for quality in qualities:
      bpp, psnr = [], []
      for image in images:
        start = time.perf_counter()
        encoded = codec.compress(image, quality)
        times.append(time.perf_counter() - start)
        bpp.append(metrics.bits_per_pixel(len(encoded), *image.shape[:2]))
        psnr.append(metrics.psnr(image, codec.decompress(encoded)))
      curve.append(dict(quality=quality, bpp=float(np.mean(bpp)), psnr=float(np.mean(psnr))))
      print(json.dumps(dict(variant=name, **curve[-1])), flush=True)
  anchor_name = next(iter(curves))
  anchor = curves[anchor_name]
  print(f"{'variant':>20s} " + " ".join(f"q={q:<13g}" for q in qualities) +
        f"  encode s  BD-rate vs {anchor_name}")
  summary = {}
  for name, curve in curves.items():
    summary[name] = rd.bd_rate([p["bpp"] for p in anchor], [p["psnr"] for p in anchor],
                               [p["bpp"] for p in curve], [p["psnr"] for p in curve])
    cells = " ".join(f"{p['bpp']:6.3f}/{p['psnr']:5.2f} " for p in curve)
    print(f"{name:>20s} {cells} {np.mean(seconds[name]):8.2f}  {summary[name]:+.1f} %")
  with open(args.output, "w") as f:
    json.dump(dict(model=export.latest_version_dir(args.model), images=args.images,
                   limit=args.limit, machine=f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
                   curves=curves,
                   mean_encode_seconds={k: float(np.mean(v)) for k, v in seconds.items()},
                   anchor=anchor_name, bd_rate_vs_anchor=summary), f, indent=1)
  print(f"wrote {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
