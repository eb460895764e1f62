"""Rate-distortion cost of tiled coding: the same images coded whole and in tiles.

  python benchmarks/tiling_cost.py [--images ../shared/data/kodak] [--limit 6]
                                   [--tile_sides 0,512,256] [--qualities 0.1,0.4,0.7,1.0]
                                   [--model savedmodels/tfflowcomp_base]
                                   [--output benchmarks/tiling_cost.json]

Tiles are coded independently, so each one pays its own side information and loses the context
across its borders. Kodak images (768x512) in 256-pixel tiles (6 tiles each) are a worst case
for the automatic 2048-pixel tiles of large images. Prints mean bpp / PSNR per setting and the
rate increase over whole-image coding.
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
  parser.add_argument("--limit", type=int, default=6)
  parser.add_argument("--tile_sides", default="0,512,256")
  parser.add_argument("--qualities", default="0.1,0.4,0.7,1.0")
  parser.add_argument("--model", default=os.path.join(REPO_ROOT, "savedmodels",
                                                      "tfflowcomp_base"))
  parser.add_argument("--output", default=os.path.join(REPO_ROOT, "benchmarks",
                                                       "tiling_cost.json"))
  args = parser.parse_args(argv)
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tfflowcomp import data, export, metrics  # pylint: disable=g-import-not-at-top
  try:
    images = data.load_nonempty_folder(args.images, args.limit)
  except ValueError as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  codec = export.load(args.model)
  rows = []
  for quality in (float(q) for q in args.qualities.split(",")):
    for tile_side in (int(t) for t in args.tile_sides.split(",")):
      bpp, psnr = [], []
      for image in images:
        encoded = codec.compress(image, quality, tile_side=tile_side)
        bpp.append(metrics.bits_per_pixel(len(encoded), *image.shape[:2]))
        psnr.append(metrics.psnr(image, codec.decompress(encoded)))
      rows.append(dict(quality=quality, tile_side=tile_side, bpp=float(np.mean(bpp)),
                       psnr=float(np.mean(psnr))))
      print(json.dumps(rows[-1]), flush=True)
  whole = {r["quality"]: r for r in rows if r["tile_side"] == 0}
  lines = [f"{'quality':>7s} {'tile':>6s} {'bpp':>8s} {'PSNR dB':>8s} {'rate +%':>8s} "
           f"{'dB':>6s}"]
  for r in rows:
    ref = whole.get(r["quality"])
    extra = (f"{100 * (r['bpp'] / ref['bpp'] - 1):+8.2f} {r['psnr'] - ref['psnr']:+6.2f}"
             if ref else f"{'-':>8s} {'-':>6s}")
    tile = str(r["tile_side"]) if r["tile_side"] else "whole"
    lines.append(f"{r['quality']:7.2f} {tile:>6s} {r['bpp']:8.4f} {r['psnr']:8.2f} {extra}")
  table = "\n".join(lines)
  print(table)
  with open(args.output, "w") as f:
    json.dump(dict(images=args.images, num_images=len(images), model=args.model, rows=rows,
                   table=table), f, indent=1)
  print(f"wrote {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
