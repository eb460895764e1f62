"""Rate-distortion evaluation of a tfflowcomp model beside classical codecs (Kodak by default).

  python tools/evaluate.py [--model savedmodels/tfflowcomp_base] [--images DIR]
                           [--qualities 0,0.1,...,1] [--codecs JPEG,WebP,AVIF,...]
                           [--output_dir results/kodak]

Every number comes from real files: tfflowcomp bitstreams from the range coder, classical codecs
encoded and decoded through Pillow plugins in the same run, on the same images. bpp = 8 * bytes /
pixels; PSNR is RGB PSNR on 8-bit images; each curve point is the mean over images of one setting.
Published curves come from ../shared/reference/kodak_published_rd.json (if present).

Writes `rd.json`, `rd.png` (log-bpp vs PSNR) and prints a table: PSNR at 0.25/0.5/1/2/4 bpp, the
highest PSNR, BD-rate of tfflowcomp against each other curve, and where tfflowcomp is furthest
behind it ("worst dB @bpp": the most negative PSNR difference, tfflowcomp minus that codec, over
the rates both cover; `rd.psnr_lead`, also in the JSON with the bpp ranges where it is behind).
The JSON also has tfflowcomp's mean side-information bpp per quality (`side_information_bpp`).
"""

import argparse
import json
import os
import platform
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 3: hides C++ start-up noise

import numpy as np  # pylint: disable=g-import-not-at-top

from tfflowcomp import classical  # pylint: disable=g-import-not-at-top
from tfflowcomp import data
from tfflowcomp import metrics
from tfflowcomp import rd

TABLE_BPPS = (0.25, 0.5, 1.0, 2.0, 4.0)
# Denser at the bottom, where the curves of the codecs are closest and bend most.
DEFAULT_QUALITIES = "0,0.05,0.1,0.15,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0"
DEFAULT_REFERENCE = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "reference",
                                                  "kodak_published_rd.json"))
OURS = "tfflowcomp"


def mean_curve(points):
  """{setting: [(bpp, psnr), ...]} -> dict(bpp=[...], psnr=[...]) sorted by bpp."""
  rows = sorted((float(np.mean([p[0] for p in v])), float(np.mean([p[1] for p in v])))
                for v in points.values())
  return dict(bpp=[r[0] for r in rows], psnr=[r[1] for r in rows])


def evaluate_model(model_path, images, qualities, log):
  from tfflowcomp import bitstream, export  # pylint: disable=g-import-not-at-top
  codec = export.load(model_path)
  codec.decompress(codec.compress(images[0][:16, :16], 0.5))  # Trace once, outside timings.
  points, encode_s, decode_s, side_bpp = {}, [], [], []
  for quality in qualities:
    points[quality], side_bits = [], []
    for image in images:
      start = time.perf_counter()
      data_bytes = codec.compress(image, quality)
      encode_s.append(time.perf_counter() - start)
      side_bits.append(metrics.bits_per_pixel(
          bitstream.unpack(data_bytes).side_information_bytes, *image.shape[:2]))
      start = time.perf_counter()
      decoded = codec.decompress(data_bytes)
      decode_s.append(time.perf_counter() - start)
      points[quality].append((metrics.bits_per_pixel(len(data_bytes), *image.shape[:2]),
                              metrics.psnr(image, decoded)))
    bpp, psnr = np.mean(points[quality], axis=0)
    side_bpp.append(float(np.mean(side_bits)))
    log(f"  {OURS} quality {quality:.2f}: {bpp:.4f} bpp (side information {side_bpp[-1]:.4f})"
        f" {psnr:.2f} dB")
  curve = mean_curve(points)
  curve.update(fingerprint=codec.fingerprint.hex(), qualities=list(qualities),
               side_information_bpp=side_bpp,
               median_encode_s=float(np.median(encode_s)),
               median_decode_s=float(np.median(decode_s)),
               per_image={str(q): v for q, v in points.items()})
  return curve


def evaluate_classical(codec, images, log):
  points = {}
  for setting in codec.settings:
    points[setting] = []
    for image in images:
      data_bytes = codec.encode(image, setting)
      decoded = codec.decode(data_bytes)
      points[setting].append((metrics.bits_per_pixel(len(data_bytes), *image.shape[:2]),
                              min(metrics.psnr(image, decoded), 99.0)))
  curve = mean_curve(points)
  curve["settings"] = list(codec.settings)
  log(f"  {codec.name}: {len(codec.settings)} settings, {curve['bpp'][0]:.3f}.."
      f"{curve['bpp'][-1]:.3f} bpp")
  return curve


def load_published(path):
  if not path or not os.path.exists(path):
    return {}
  with open(path) as f:
    reference = json.load(f)
  return {f"{name} (published)": dict(bpp=v["bpp"], psnr=v["psnr_rgb_db"], source=v.get("source"))
          for name, v in reference["codecs"].items()}


def summary_table(curves):
  ours = curves[OURS]
  header = (f"{'codec':34s}" + "".join(f"{f'@{b:g}bpp':>9s}" for b in TABLE_BPPS) +
            f"{'max dB':>8s}{'BD-rate':>10s}{'worst dB @bpp':>16s}")
  lines = [header, "-" * len(header)]
  for name, curve in curves.items():
    cells = []
    for target in TABLE_BPPS:
      value = rd.psnr_at_bpp(curve["bpp"], curve["psnr"], target)
      cells.append(f"{value:9.2f}" if value is not None else f"{'-':>9s}")
    bd = None if name == OURS else rd.bd_rate(curve["bpp"], curve["psnr"], ours["bpp"],
                                              ours["psnr"])
    curve["bd_rate_of_tfflowcomp_percent"] = bd
    bd_text = f"{bd:+9.1f}%" if bd is not None else f"{'-':>10s}"
    lead = None if name == OURS else rd.psnr_lead(curve["bpp"], curve["psnr"], ours["bpp"],
                                                  ours["psnr"])
    curve["psnr_lead_of_tfflowcomp_db"] = lead
    lead_text = (f"{lead['min_db']:+9.2f} @{lead['min_at_bpp']:<5.3g}" if lead is not None else
                 f"{'-':>16s}")
    lines.append(f"{name[:34]:34s}" + "".join(cells) + f"{max(curve['psnr']):8.2f}" + bd_text +
                 lead_text)
  return "\n".join(lines)


# Published curves drawn in the plot (all of them are in the JSON and the table).
PLOTTED_PUBLISHED = ("JPEG2000 (published)", "BPG 4:4:4 (published)",
                     "VTM (VVC reference) (published)", "bmshj2018-hyperprior (published)",
                     "mbt2018 (published)")


def plot(curves, path, title):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(10, 5.5), dpi=100)
  for name, curve in curves.items():
    if "published" in name and name not in PLOTTED_PUBLISHED:
      continue
    style = dict(linewidth=2.8, color="black", marker="o", zorder=10) if name == OURS else dict(
        linewidth=1.2, linestyle="--" if "published" in name else "-", marker=".")
    ax.plot(curve["bpp"], curve["psnr"], label=name, **style)
  ax.set_xscale("log")
  ax.set_xlabel("bits per pixel (log scale)")
  ax.set_ylabel("RGB PSNR (dB)")
  ax.set_title(title, fontsize=10)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default=os.path.join(REPO_ROOT, "savedmodels",
                                                      "tfflowcomp_base"))
  parser.add_argument("--images", default=data.DEFAULT_KODAK_DIR)
  parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
  parser.add_argument("--qualities", default=DEFAULT_QUALITIES)
  parser.add_argument("--codecs", default="", help="comma-separated name prefixes "
                                                   "(default: all available; 'none' for none)")
  parser.add_argument("--reference", default=DEFAULT_REFERENCE)
  parser.add_argument("--output_dir", default=os.path.join(REPO_ROOT, "results", "kodak"))
  args = parser.parse_args(argv)
  try:
    qualities = [float(q) for q in args.qualities.split(",")]
    images = data.load_folder(args.images, args.limit)
  except (ValueError, OSError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  if not images:
    print(f"error: no images in {args.images}", file=sys.stderr)
    return 1
  log = lambda message: print(message, flush=True)
  log(f"{len(images)} images from {args.images}")
  curves = {OURS: evaluate_model(args.model, images, qualities, log)}
  names = [] if args.codecs == "none" else [n for n in args.codecs.split(",") if n]
  codecs, missing = classical.select(names) if args.codecs != "none" else ([], {})
  for name, reason in missing.items():
    log(f"  skipping {name}: {reason}")
  for codec in codecs:
    curves[codec.name] = evaluate_classical(codec, images, log)
  curves.update(load_published(args.reference))
  table = summary_table(curves)
  print(table)
  os.makedirs(args.output_dir, exist_ok=True)
  machine = f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}"
  result = dict(images=args.images, num_images=len(images), model=args.model, machine=machine,
                command=" ".join([os.path.basename(sys.argv[0])] + (argv or sys.argv[1:])),
                curves=curves, table=table)
  with open(os.path.join(args.output_dir, "rd.json"), "w") as f:
    json.dump(result, f, indent=1)
  plot(curves, os.path.join(args.output_dir, "rd.png"),
       f"{len(images)} images of {os.path.basename(os.path.normpath(args.images))}, mean RGB PSNR")
  log(f"wrote {args.output_dir}/rd.json and rd.png")
  return 0


if __name__ == "__main__":
  sys.exit(main())
