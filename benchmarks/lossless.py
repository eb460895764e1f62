"""Lossless coding: a model at quality 1 beside PNG, WebP and JPEG XL lossless.

  python benchmarks/lossless.py [--model savedmodels/tfflowcomp_base]
                                [--images ../shared/data/kodak] [--limit 0]
                                [--output benchmarks/lossless.json]

Every file is real and decoded again: a codec's row counts only if every image came back
bit-exact (the table says so). PNG is Pillow with `optimize=True`; WebP lossless is Pillow with
`method=6`; JPEG XL lossless is pillow-jxl-plugin with `effort=7` (skipped with a message if the
plugin is missing). A model is only lossless at quality 1 if it is an integer flow
(`ModelConfig.integer_flow`) whose quantization step at quality 1 is fine enough; the script
reports what it measures either way. Prints mean bpp and encode/decode seconds per image.
"""

import argparse
import io
import json
import os
import platform
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _pillow_codec(fmt, **options):
  """(encode, decode) of a Pillow format: uint8 [H, W, 3] <-> bytes."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  def encode(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **options)
    return buffer.getvalue()

  def decode(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
  return encode, decode


def _codecs(model_path):
  """{name: (encode, decode)} of everything that runs here, and {name: why not} of the rest."""
  codecs, missing = {}, {}
  if model_path:
    from tfflowcomp import export  # pylint: disable=g-import-not-at-top
    codec = export.load(model_path)
    codecs[f"tfflowcomp q=1 ({os.path.basename(os.path.normpath(model_path))})"] = (
        lambda image: codec.compress(image, 1.0), codec.decompress)
  codecs["PNG"] = _pillow_codec("PNG", optimize=True)
  codecs["WebP lossless"] = _pillow_codec("WEBP", lossless=True, method=6)
  try:
    import pillow_jxl  # pylint: disable=g-import-not-at-top,unused-import
    codecs["JPEG XL lossless"] = _pillow_codec("JXL", lossless=True, effort=7)
  except ImportError as error:
    missing["JPEG XL lossless"] = f"pillow-jxl-plugin not installed ({error})"
  return codecs, missing


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default=os.path.join(REPO_ROOT, "savedmodels",
                                                      "tfflowcomp_base"),
                      help="exported model ('' for the classical codecs only)")
  parser.add_argument("--images", default=os.path.normpath(
      os.path.join(REPO_ROOT, "..", "shared", "data", "kodak")))
  parser.add_argument("--limit", type=int, default=0, help="first N images (0 = all)")
  parser.add_argument("--output", default=os.path.join(REPO_ROOT, "benchmarks",
                                                       "lossless.json"))
  args = parser.parse_args(argv)
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tfflowcomp import data, metrics  # pylint: disable=g-import-not-at-top
  try:
    images = data.load_nonempty_folder(args.images, args.limit or None)
    codecs, missing = _codecs(args.model)
  except (ValueError, OSError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  for name, why in missing.items():
    print(f"skipping {name}: {why}", file=sys.stderr)
  rows = {}
  for name, (encode, decode) in codecs.items():
    encode(images[0][:64, :64])  # Warm-up (graph tracing) outside the timing.
    bpp, encode_s, decode_s, exact = [], [], [], 0
    for image in images:
      start = time.perf_counter()
      encoded = encode(image)
      encode_s.append(time.perf_counter() - start)
      start = time.perf_counter()
      decoded = decode(encoded)
      decode_s.append(time.perf_counter() - start)
      bpp.append(metrics.bits_per_pixel(len(encoded), *image.shape[:2]))
      exact += int(np.array_equal(decoded, image))
    rows[name] = dict(bpp=float(np.mean(bpp)), exact_images=exact, images=len(images),
                      encode_s=float(np.median(encode_s)), decode_s=float(np.median(decode_s)),
                      per_image_bpp=[float(b) for b in bpp])
    print(json.dumps({"codec": name, **{k: v for k, v in rows[name].items()
                                        if k != "per_image_bpp"}}), flush=True)
  print(f"\n{'codec':>34s}  mean bpp  bit-exact  encode s  decode s")
  for name, row in rows.items():
    print(f"{name:>34s}  {row['bpp']:8.3f}  {row['exact_images']:4d}/{row['images']:<4d}"
          f"  {row['encode_s']:8.2f}  {row['decode_s']:8.2f}")
  with open(args.output, "w") as f:
    json.dump(dict(images=args.images, num_images=len(images), model=args.model,
                   machine=f"{platform.machine()}, {os.cpu_count()} CPUs", skipped=missing,
                   codecs=rows), f, indent=1)
  print(f"wrote {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
