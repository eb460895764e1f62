"""Re-encoding (generation loss) study: decode, save as 8-bit, re-encode with the same settings.

  python tools/reencode.py [--model savedmodels/tfflowcomp_base] [--images DIR] [--limit 6]
                           [--crop 256] [--generations 50] [--qualities 0.3,0.5,0.7,0.9,1]
                           [--output_dir results/reencode]

For tfflowcomp at each quality, in two modes: plain `compress`, and `compress_stable` (192 rounds
by default; the encoder transmits a re-encoding fixed point or cycle member); and for JPEG 4:4:4,
WebP and AVIF at fixed settings. Per generation it records PSNR against the original, whether the
bitstream is byte-identical to the previous generation, and (tfflowcomp) the fraction of latent
symbols that changed (symbols of the encoder's one-pass analysis of each generation's input: for
the stable mode that is how far the settled image is from the original, not a change of the coded
symbols). Once a generation's bytes equal the previous one's, every later generation
is identical (decoding and encoding are deterministic), so the loop stops computing and repeats
the values. Writes reencode.json and reencode.png.
"""

import argparse
import json
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 3: hides C++ start-up noise

import numpy as np  # pylint: disable=g-import-not-at-top

from tfflowcomp import classical  # pylint: disable=g-import-not-at-top
from tfflowcomp import data
from tfflowcomp import metrics
from tfflowcomp import stable_search

CLASSICAL_SETTINGS = {"JPEG 4:4:4": (50, 75, 90, 95), "WebP": (50, 75, 90, 95),
                      "AVIF 4:4:4": (40, 60, 80, 90)}


def center_crop(image, size):
  if not size:
    return image
  height, width = image.shape[:2]
  top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
  return image[top:top + size, left:left + size]


def run_generations(original, encode, decode, generations, symbols_fn=None):
  """Returns per-generation lists: psnr, identical (to previous bytes), changed symbol fraction."""
  psnrs, identical, changed, sizes = [], [], [], []
  image, previous_data, previous_symbols = original, None, None
  start = time.perf_counter()
  for generation in range(generations):
    if previous_data is not None and identical and identical[-1]:
      psnrs.append(psnrs[-1])
      identical.append(True)
      changed.append(0.0 if symbols_fn else None)
      sizes.append(sizes[-1])
      continue
    symbols = symbols_fn(image) if symbols_fn else None
    data_bytes = encode(image)
    decoded = decode(data_bytes)
    psnrs.append(metrics.psnr(original, decoded))
    identical.append(previous_data is not None and data_bytes == previous_data)
    if symbols_fn and previous_symbols is not None:
      changed.append(float(np.mean(symbols != previous_symbols)))
    else:
      changed.append(None)
    sizes.append(len(data_bytes))
    image, previous_data, previous_symbols = decoded, data_bytes, symbols
    if generation == 0:
      first_encode_seconds = time.perf_counter() - start
  return dict(psnr=psnrs, identical=identical, changed_symbols=changed, bytes=sizes,
              first_encode_seconds=first_encode_seconds)


def summarize(name, runs, pixels):
  psnr = np.mean([r["psnr"] for r in runs], axis=0)
  # Lossless generations have infinite PSNR: equal values drift 0 (inf - inf would be NaN).
  drift = 0.0 if psnr[-1] == psnr[0] else float(psnr[-1] - psnr[0])
  identical_from_2 = float(np.mean([r["identical"][1] for r in runs])) if len(
      runs[0]["identical"]) > 1 else None
  changed_1_2 = [r["changed_symbols"][1] for r in runs if len(r["changed_symbols"]) > 1 and
                 r["changed_symbols"][1] is not None]
  return dict(
      name=name, gen1_bpp=float(np.mean([8 * r["bytes"][0] / pixels for r in runs])),
      gen1_psnr=float(psnr[0]), last_psnr=float(psnr[-1]), drift_db=drift,
      byte_identical_from_generation_2=identical_from_2,
      changed_symbols_gen1_to_2=float(np.mean(changed_1_2)) if changed_1_2 else None,
      mean_first_encode_seconds=float(np.mean([r["first_encode_seconds"] for r in runs])),
      mean_psnr_per_generation=[float(v) for v in psnr])


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default=os.path.join(REPO_ROOT, "savedmodels",
                                                      "tfflowcomp_base"))
  parser.add_argument("--images", default=data.DEFAULT_KODAK_DIR)
  parser.add_argument("--limit", type=int, default=6)
  parser.add_argument("--crop", type=int, default=256, help="center crop size (0 = full)")
  parser.add_argument("--generations", type=int, default=50)
  parser.add_argument("--qualities", default="0.3,0.5,0.7,0.9,1")
  parser.add_argument("--stable_iterations", type=int,
                      default=stable_search.DEFAULT_ITERATIONS)
  parser.add_argument("--codecs", default="JPEG,WebP,AVIF", help="classical codecs ('none')")
  parser.add_argument("--output_dir", default=os.path.join(REPO_ROOT, "results", "reencode"))
  args = parser.parse_args(argv)
  try:
    qualities = [float(q) for q in args.qualities.split(",")]
    images = [center_crop(im, args.crop) for im in data.load_folder(args.images, args.limit)]
    if args.generations < 2:
      raise ValueError("--generations must be >= 2")
  except (ValueError, OSError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  from tfflowcomp import export  # pylint: disable=g-import-not-at-top
  codec = export.load(args.model)
  pixels = images[0].shape[0] * images[0].shape[1]
  summaries = []
  modes = [("plain", 0)] + ([("stable", args.stable_iterations)] if args.stable_iterations else [])
  for quality in qualities:
    for mode, iterations in modes:
      runs = [run_generations(
          image, lambda im, q=quality, it=iterations: codec.compress(im, q, it),
          codec.decompress, args.generations,
          symbols_fn=lambda im, q=quality: codec.latent_symbols(im, q)) for image in images]
      summaries.append(summarize(f"tfflowcomp q={quality} {mode}", runs, pixels))
      print(json.dumps({k: v for k, v in summaries[-1].items()
                        if k != "mean_psnr_per_generation"}), flush=True)
  wanted = [] if args.codecs == "none" else args.codecs.split(",")
  codecs, _ = classical.select(wanted) if wanted else ([], {})
  for codec_ in codecs:
    for setting in CLASSICAL_SETTINGS.get(codec_.name, ()):
      runs = [run_generations(image, lambda im, s=setting, c=codec_: c.encode(im, s),
                              codec_.decode, args.generations) for image in images]
      summaries.append(summarize(f"{codec_.name} q={setting}", runs, pixels))
      print(json.dumps({k: v for k, v in summaries[-1].items()
                        if k != "mean_psnr_per_generation"}), flush=True)
  header = (f"{'codec':28s}{'gen1 bpp':>9s}{'gen1 dB':>9s}{'last dB':>9s}{'drift':>8s}"
            f"{'ident.2':>8s}{'chg 1-2':>9s}{'enc s':>7s}")
  lines = [header, "-" * len(header)]
  for s in summaries:
    ident = s["byte_identical_from_generation_2"]
    changed = s["changed_symbols_gen1_to_2"]
    lines.append(f"{s['name'][:28]:28s}{s['gen1_bpp']:9.3f}{s['gen1_psnr']:9.2f}"
                 f"{s['last_psnr']:9.2f}{s['drift_db']:+8.2f}"
                 f"{(f'{100 * ident:.0f}%' if ident is not None else '-'):>8s}"
                 f"{(f'{100 * changed:.2f}%' if changed is not None else '-'):>9s}"
                 f"{s['mean_first_encode_seconds']:7.2f}")
  table = "\n".join(lines)
  print(table)
  os.makedirs(args.output_dir, exist_ok=True)
  with open(os.path.join(args.output_dir, "reencode.json"), "w") as f:
    json.dump(dict(images=args.images, num_images=len(images), crop=args.crop,
                   generations=args.generations, model=args.model, summaries=summaries,
                   table=table), f, indent=1)
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
  generations = np.arange(1, args.generations + 1)
  for s in summaries:
    style = dict(linewidth=2) if s["name"].startswith("tfflowcomp") else dict(
        linewidth=1, linestyle="--")
    ax.plot(generations, np.array(s["mean_psnr_per_generation"]) - s["gen1_psnr"],
            label=f"{s['name']} ({s['gen1_bpp']:.2f} bpp)", **style)
  ax.set_xlabel("generation")
  ax.set_ylabel("PSNR change vs generation 1 (dB)")
  ax.set_title(f"Re-encoding, {len(images)} images ({args.crop or 'full'} crop)", fontsize=10)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=6, ncol=2)
  fig.tight_layout()
  fig.savefig(os.path.join(args.output_dir, "reencode.png"))
  print(f"wrote {args.output_dir}/reencode.json and reencode.png")
  return 0


if __name__ == "__main__":
  sys.exit(main())
