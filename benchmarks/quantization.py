"""Encoder-side quantization study: rate-distortion optimised quantization vs plain rounding.

  python benchmarks/quantization.py [--images ../shared/data/kodak] [--limit 4]
                                    [--weights inf,1,0.5,2] [--qualities 0,0.2,0.4,0.6,0.8,1]
                                    [--model savedmodels/tfflowcomp_base]
                                    [--output benchmarks/quantization.json]

Every variant writes real files with the same model and the same decoder; only the encoder's
choice of each latent offset differs (`tfflowcomp/quantization.py`). `--weights` are multiples of
the trained trade-off `quantization.DISTORTION_WEIGHT` (`inf` = round to the nearest integer).
Prints mean bpp / PSNR per quality and the BD-rate of each variant against plain rounding.
"""

import argparse
import json
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--images", default=os.path.normpath(
      os.path.join(REPO_ROOT, "..", "shared", "data", "kodak")))
  parser.add_argument("--limit", type=int, default=4)
  parser.add_argument("--weights", default="inf,1,0.5,2")
  parser.add_argument("--qualities", default="0,0.2,0.4,0.6,0.8,1")
  parser.add_argument("--model", default=os.path.join(REPO_ROOT, "savedmodels",
                                                      "tfflowcomp_base"))
  parser.add_argument("--output", default=os.path.join(REPO_ROOT, "benchmarks",
                                                       "quantization.json"))
  args = parser.parse_args(argv)
  try:
    weights = [float(w) for w in args.weights.split(",")]
    qualities = [float(q) for q in args.qualities.split(",")]
  except ValueError as error:
    print(f"error: --weights and --qualities take comma-separated numbers: {error}",
          file=sys.stderr)
    return 2
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tfflowcomp import data, export, metrics, quantization, rd  # pylint: disable=g-import-not-at-top
  from tfflowcomp.codec import FlowCodec  # pylint: disable=g-import-not-at-top
  try:
    images = data.load_nonempty_folder(args.images, args.limit)
  except ValueError as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  model = export.restore_model(args.model)
  curves = {}
  for weight in weights:
    codec = FlowCodec.from_model(model, quantization.DISTORTION_WEIGHT * weight)
    name = "plain rounding" if np.isinf(weight) else f"RDOQ x{weight:g}"
    curve = curves[name] = []
    for quality in qualities:
      bpp, psnr = [], []
      for image in images:
        encoded = codec.compress(image, quality)
        bpp.append(metrics.bits_per_pixel(len(encoded), *image.shape[:2]))
        psnr.append(metrics.psnr(image, codec.decompress(encoded)))
      curve.append(dict(quality=quality, bpp=float(np.mean(bpp)), psnr=float(np.mean(psnr))))
      print(json.dumps(dict(variant=name, **curve[-1])), flush=True)
  anchor = curves.get("plain rounding")
  print(f"{'variant':>16s} " + " ".join(f"q={q:<13g}" for q in qualities) + "  BD-rate")
  summary = {}
  for name, curve in curves.items():
    bd = None if anchor is None else rd.bd_rate(
        [p["bpp"] for p in anchor], [p["psnr"] for p in anchor],
        [p["bpp"] for p in curve], [p["psnr"] for p in curve])
    summary[name] = bd
    cells = " ".join(f"{p['bpp']:6.3f}/{p['psnr']:5.2f} " for p in curve)
    print(f"{name:>16s} {cells} {'' if bd is None else f'{bd:+.1f} %'}")
  with open(args.output, "w") as f:
    json.dump(dict(model=export.latest_version_dir(args.model), images=args.images,
                   limit=args.limit, curves=curves, bd_rate_vs_plain_rounding=summary), f,
              indent=1)
  print(f"wrote {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
