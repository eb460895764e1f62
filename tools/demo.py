"""Demo: compress + decompress an image with the shipped model and print bpp, PSNR and time.

  python tools/demo.py [--image samples/astronaut.png] [--model savedmodels/tfflowcomp_base]
                       [--qualities 0.1,0.4,0.7,1.0] [--out_dir DIR]

Each quality goes through the real path: bytes written to a .tfc file, read back, decoded by the
range decoder and the inverse flow, written as PNG.
"""

import argparse
import os
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 3: hides C++ start-up noise


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", default=os.path.join(REPO_ROOT, "samples", "astronaut.png"))
  parser.add_argument("--model", default=os.path.join(REPO_ROOT, "savedmodels",
                                                      "tfflowcomp_base"))
  parser.add_argument("--qualities", default="0.1,0.4,0.7,1.0")
  parser.add_argument("--out_dir", default=None, help="where the .tfc/.png files go "
                                                      "(default: a temporary folder)")
  args = parser.parse_args(argv)
  from tfflowcomp import export, image_io, metrics  # pylint: disable=g-import-not-at-top
  try:
    qualities = [float(q) for q in args.qualities.split(",")]
    image = image_io.load_rgb8(args.image)
    codec = export.load(args.model)
  except (ValueError, OSError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  out_dir = args.out_dir or tempfile.mkdtemp(prefix="tfflowcomp-demo-")
  os.makedirs(out_dir, exist_ok=True)
  height, width = image.shape[:2]
  print(f"model {args.model} (fingerprint {codec.fingerprint.hex()})")
  print(f"image {args.image}: {width}x{height}; outputs in {out_dir}")
  print(f"{'quality':>7} {'bytes':>8} {'bpp':>7} {'PSNR dB':>8} {'encode s':>9} {'decode s':>9}")
  codec.decompress(codec.compress(image[:16, :16], 0.5))  # Trace the graphs once.
  for quality in qualities:
    stem = os.path.join(out_dir, f"q{quality:.2f}")
    start = time.perf_counter()
    data = codec.compress(image, quality)
    encode_seconds = time.perf_counter() - start
    with open(stem + ".tfc", "wb") as f:
      f.write(data)
    with open(stem + ".tfc", "rb") as f:
      data = f.read()
    start = time.perf_counter()
    decoded = codec.decompress(data)
    decode_seconds = time.perf_counter() - start
    image_io.write_png(decoded, stem + ".png")
    bpp = metrics.bits_per_pixel(os.path.getsize(stem + ".tfc"), height, width)
    print(f"{quality:7.2f} {len(data):8d} {bpp:7.3f} {metrics.psnr(image, decoded):8.2f} "
          f"{encode_seconds:9.2f} {decode_seconds:9.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
