"""Compress images with tfflowcomp, decompress them, or inspect files.

  compress.py compress IN [OUT] [--quality Q | --target_bpp B | --target_psnr P] [--stable]
  compress.py decompress IN [OUT]
  compress.py roundtrip IN [--quality Q | --target_bpp B | --target_psnr P] [--stable]
  compress.py inspect IN

IN may be a file, a folder or a glob (batch mode); with several inputs OUT is a folder.
Defaults: compress writes `IN.tfc` (the name with its extension replaced), decompress writes
`IN.png`. Existing files are never overwritten without --force; outputs are written atomically.
decompress finds the model from the fingerprint in the file (in savedmodels/ or --model).
--stable makes files that re-encode to themselves: compressing the decoded image again with the
same settings gives the same bytes, so no quality is lost however often an image is re-encoded
(see `CodecApi.compress_stable`). It walks re-encoding until it repeats (a fixed point, at high
qualities often a 2-cycle) and codes where it ends: ~2x slower encoding up to quality ~0.8,
~45 rounds (~5-7x) near 0.9 at about the quality 40 plain re-encodings would keep, and usually
nothing found near 1.0 (then a note and a plain encoding).
Exit codes: 0 success, 1 error (one line on stderr), 2 bad usage, 130 interrupted.
"""

import argparse
import glob
import os
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 3: hides C++ start-up noise

from tfflowcomp import bitstream  # pylint: disable=g-import-not-at-top
from tfflowcomp import image_io
from tfflowcomp import quality as quality_lib

SAVEDMODELS_DIR = os.path.join(REPO_ROOT, "savedmodels")
DEFAULT_MODEL = os.path.join(SAVEDMODELS_DIR, "tfflowcomp_base")
EXTENSION = ".tfc"
BPP_TOLERANCE = 0.03
PSNR_TOLERANCE_DB = 0.1
STABLE_ITERATIONS = 192  # = stable_search.DEFAULT_ITERATIONS (not imported: it loads TensorFlow)


class ToolError(Exception):
  """An error reported to the user as one line."""


# ---- Files ---------------------------------------------------------------------------------


def refuse_existing(path: str, force: bool) -> None:
  """Raises ToolError if `path` exists and `--force` was not given (checked before any work)."""
  if os.path.exists(path) and not force:
    raise ToolError(f"{path} exists (use --force to overwrite).")


def write_atomically(path: str, data: bytes, force: bool) -> None:
  """Writes `data` to `path` through a temporary file and a rename (no partial files)."""
  refuse_existing(path, force)
  if os.path.isdir(path):
    raise ToolError(f"{path} is a directory.")
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise ToolError(f"output folder {folder} does not exist.")
  handle, tmp = tempfile.mkstemp(prefix=".tfflowcomp-", dir=folder)
  try:
    with os.fdopen(handle, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def png_bytes(image) -> bytes:
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG")
  return buffer.getvalue()


def read_bytes(path: str) -> bytes:
  if not os.path.exists(path):
    raise ToolError(f"{path}: no such file.")
  if os.path.isdir(path):
    raise ToolError(f"{path}: is a directory.")
  with open(path, "rb") as f:
    return f.read()


def expand_inputs(spec: str, suffixes) -> list:
  """A file, a folder (its files with `suffixes`) or a glob -> sorted list of files."""
  if os.path.isdir(spec):
    return sorted(os.path.join(spec, n) for n in os.listdir(spec)
                  if n.lower().endswith(suffixes))
  if any(ch in spec for ch in "*?["):
    return sorted(p for p in glob.glob(spec) if os.path.isfile(p))
  return [spec]


def output_path(input_path: str, output: str, many: bool, extension: str) -> str:
  stem = os.path.splitext(os.path.basename(input_path))[0] + extension
  if many:
    return os.path.join(output, stem) if output else os.path.join(
        os.path.dirname(input_path), stem)
  if output:
    return os.path.join(output, stem) if os.path.isdir(output) else output
  return os.path.join(os.path.dirname(input_path), stem)


# ---- Models --------------------------------------------------------------------------------

_MODELS = {}


def load_model(path: str):
  from tfflowcomp import export  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(path)
  if path not in _MODELS:
    try:
      _MODELS[path] = export.load(path)
    except (FileNotFoundError, OSError) as error:
      raise ToolError(f"cannot load model {path}: {error}") from None
  return _MODELS[path]


def model_for_file(data: bytes, model_arg):
  from tfflowcomp import export  # pylint: disable=g-import-not-at-top
  fingerprint = bitstream.unpack(data).fingerprint
  if model_arg:
    codec = load_model(model_arg)
    if codec.fingerprint != fingerprint:
      raise ToolError(f"the file was made by model {fingerprint.hex()}, but --model is "
                      f"{codec.fingerprint.hex()}.")
    return codec
  found = export.find_model_by_fingerprint(fingerprint, [SAVEDMODELS_DIR])
  if found is None:
    raise ToolError(f"unknown model fingerprint {fingerprint.hex()}: no model in "
                    f"{SAVEDMODELS_DIR} made this file (pass it with --model).")
  return load_model(found)


# ---- Rate control --------------------------------------------------------------------------


def encode_with_target(codec, image, args):
  """Returns (bytes, quality, notes). Searches the quality knob for --target_bpp/--target_psnr."""
  (data, converged), quality, notes = _search_quality(codec, image, args)
  if not converged:
    notes.append(f"no re-encoding fixed point or cycle within {STABLE_ITERATIONS} iterations at "
                 f"quality {quality:.4f} (usual near 1.0); wrote a plain encoding, which may "
                 f"change slightly when re-encoded.")
  return data, quality, notes


def _compress_one(codec, image, quality, args):
  """`(bytes, converged)`; converged is always True without --stable."""
  if args.stable:
    return codec.compress_stable(image, quality, STABLE_ITERATIONS, args.tile_side)
  return codec.compress(image, quality, tile_side=args.tile_side), True


def _search_quality(codec, image, args):
  """`((bytes, converged), quality, notes)` for --quality, --target_bpp or --target_psnr."""
  from tfflowcomp import metrics  # pylint: disable=g-import-not-at-top
  if args.target_bpp is None and args.target_psnr is None:
    return _compress_one(codec, image, args.quality, args), args.quality, []
  height, width = image.shape[:2]
  if args.target_bpp is not None:
    target, tolerance, unit = args.target_bpp, args.target_bpp * BPP_TOLERANCE, "bpp"
    measure = lambda data: metrics.bits_per_pixel(len(data), height, width)
  else:
    target, tolerance, unit = args.target_psnr, PSNR_TOLERANCE_DB, "dB"
    measure = lambda data: metrics.psnr(image, codec.decompress(data))
  low, high = 0, quality_lib.QUALITY_CODE_MAX
  best = None
  for _ in range(17):  # Bisection on the 16-bit quality code; both measures rise with it.
    code = (low + high) // 2
    quality = quality_lib.code_to_quality(code)
    result = _compress_one(codec, image, quality, args)
    value = measure(result[0])
    if best is None or abs(value - target) < abs(best[2] - target):
      best = (result, quality, value)
    if abs(value - target) <= tolerance or low >= high:
      break
    if value < target:
      low = code + 1
    else:
      high = code - 1
    if low > high:
      break
  result, quality, value = best
  notes = []
  if abs(value - target) > tolerance:
    notes.append(f"target {target:g} {unit} not reachable within tolerance; closest is "
                 f"{value:.3f} {unit} at quality {quality:.4f}.")
  return result, quality, notes


# ---- Subcommands ---------------------------------------------------------------------------


def _stats_line(name, image, data, decoded, seconds_encode, seconds_decode, quality):
  from tfflowcomp import metrics  # pylint: disable=g-import-not-at-top
  height, width = image.shape[:2]
  bpp = metrics.bits_per_pixel(len(data), height, width)
  psnr = metrics.psnr(image, decoded)
  ms_ssim = metrics.ms_ssim(image, decoded)
  return (f"{name}: {width}x{height} quality={quality:.4f} {len(data)} bytes {bpp:.4f} bpp "
          f"PSNR={psnr:.2f} dB MS-SSIM={ms_ssim:.5f} encode={seconds_encode:.2f}s "
          f"decode={seconds_decode:.2f}s")


def _load_input_image(path):
  image, warnings = image_io.read_image(path)
  for warning in warnings:
    print(f"warning: {path}: {warning}", file=sys.stderr)
  return image


def cmd_compress(args, roundtrip=False):
  inputs = expand_inputs(args.input, image_io_extensions())
  if not inputs:
    raise ToolError(f"no images match {args.input}.")
  many = len(inputs) > 1 or os.path.isdir(args.input)
  if many and args.output and not roundtrip:
    os.makedirs(args.output, exist_ok=True)
  codec = load_model(args.model or DEFAULT_MODEL)
  for index, path in enumerate(inputs):
    out = None if roundtrip else output_path(path, args.output, many, EXTENSION)
    if out:
      refuse_existing(out, args.force)
    image = _load_input_image(path)
    start = time.perf_counter()
    data, quality, notes = encode_with_target(codec, image, args)
    seconds_encode = time.perf_counter() - start
    for note in notes:
      print(f"note: {path}: {note}", file=sys.stderr)
    start = time.perf_counter()
    decoded = codec.decompress(data)
    seconds_decode = time.perf_counter() - start
    prefix = f"[{index + 1}/{len(inputs)}] " if many else ""
    print(prefix + _stats_line(path, image, data, decoded, seconds_encode, seconds_decode,
                               quality), flush=True)
    if out:
      write_atomically(out, data, args.force)
      print(f"  wrote {out}", flush=True)


def cmd_decompress(args):
  inputs = expand_inputs(args.input, (EXTENSION,))
  if not inputs:
    raise ToolError(f"no {EXTENSION} files match {args.input}.")
  many = len(inputs) > 1 or os.path.isdir(args.input)
  if many and args.output:
    os.makedirs(args.output, exist_ok=True)
  for index, path in enumerate(inputs):
    out = output_path(path, args.output, many, ".png")
    if os.path.abspath(out) == os.path.abspath(path):
      raise ToolError(f"output {out} would replace the input.")
    refuse_existing(out, args.force)
    data = read_bytes(path)
    codec = model_for_file(data, args.model)
    start = time.perf_counter()
    image = codec.decompress(data, max_pixels=args.max_pixels)
    seconds = time.perf_counter() - start
    write_atomically(out, png_bytes(image), args.force)
    prefix = f"[{index + 1}/{len(inputs)}] " if many else ""
    print(f"{prefix}{path}: {image.shape[1]}x{image.shape[0]} decoded in {seconds:.2f}s, "
          f"wrote {out}", flush=True)


def cmd_inspect(args):
  data = read_bytes(args.input)
  container = bitstream.unpack(data)
  height, width = container.height, container.width
  print(f"file: {args.input}")
  print(f"size: {len(data)} bytes ({8 * len(data) / (height * width):.4f} bpp)")
  print(f"format version: {container.version}")
  print(f"model fingerprint: {container.fingerprint.hex()}")
  print(f"image: {width}x{height}")
  print(f"quality: {container.quality:.4f} (code {container.quality_code})")
  if container.tile_side:
    grid = bitstream.tile_grid(height, width, container.tile_side)
    print(f"tiles: {len(grid)} of at most {container.tile_side}x{container.tile_side} pixels, "
          "coded independently")
    for i, (top, left, h, w) in enumerate(grid):
      side, latent = container.streams[2 * i:2 * i + 2]
      print(f"tile {i} at ({left}, {top}), {w}x{h}: side information {len(side)} bytes, "
            f"latent {len(latent)} bytes")
    return
  names = ["side information", "latent"]
  for i, stream in enumerate(container.streams):
    name = names[i] if i < len(names) else f"stream {i}"
    print(f"stream {i} ({name}): {len(stream)} bytes")


def image_io_extensions():
  from tfflowcomp import data as data_lib  # pylint: disable=g-import-not-at-top
  return data_lib.IMAGE_EXTENSIONS


# ---- Command line --------------------------------------------------------------------------


def _quality_arg(text):
  try:
    return quality_lib.check_quality(float(text))
  except ValueError as error:
    raise argparse.ArgumentTypeError(str(error)) from None


def _tile_side_arg(text):
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not an integer.") from None
  if value:
    try:
      bitstream.check_tile_side(value)
    except bitstream.BitstreamError as error:
      raise argparse.ArgumentTypeError(f"{error} (or 0: never tile)") from None
  return value


def _positive_float(text):
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a number.") from None
  if not value > 0:
    raise argparse.ArgumentTypeError(f"{text!r} must be positive.")
  return value


def build_parser():
  parser = argparse.ArgumentParser(
      prog="compress.py", description="tfflowcomp: normalizing-flow image codec.")
  sub = parser.add_subparsers(dest="command", required=True)

  def add_common(p):
    p.add_argument("--model", default=None,
                   help="SavedModel folder (default: savedmodels/tfflowcomp_base; for "
                        "decompress: found from the file's fingerprint).")
    p.add_argument("--force", action="store_true", help="Overwrite existing outputs.")

  def add_rate(p):
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quality", type=_quality_arg, default=0.5,
                       help="0.0 (smallest) .. 1.0 (near-lossless); default 0.5.")
    group.add_argument("--target_bpp", type=_positive_float, default=None,
                       help="Search the quality for this bit rate (+-3%%).")
    group.add_argument("--target_psnr", type=_positive_float, default=None,
                       help="Search the quality for this PSNR (+-0.1 dB).")
    p.add_argument("--tile_side", type=_tile_side_arg, default=None,
                   help="code in independent square tiles of this side (a multiple of 64, "
                        ">= 256) to bound memory; 0 never tiles; default: tiles of at most "
                        "2048 for images with a longer side.")
    p.add_argument("--stable", action="store_true",
                   help="re-encoding-proof files: compressing the decoded image again gives "
                        "the same bytes (~2x slower encoding up to quality ~0.8, ~5-7x near "
                        "0.9; near 1.0 usually a note and a plain encoding).")

  p = sub.add_parser("compress", help="image(s) -> .tfc")
  p.add_argument("input", help="image file, folder or glob")
  p.add_argument("output", nargs="?", default="", help="output file (or folder)")
  add_common(p)
  add_rate(p)
  p = sub.add_parser("decompress", help=".tfc -> PNG")
  p.add_argument("input", help=".tfc file, folder or glob")
  p.add_argument("output", nargs="?", default="", help="output PNG (or folder)")
  p.add_argument("--max_pixels", type=int, default=8192 * 8192,
                 help="refuse files that claim larger images (decoding allocates for the "
                      "claimed size); default 8192*8192")
  add_common(p)
  p = sub.add_parser("roundtrip", help="compress + decompress, print statistics only")
  p.add_argument("input", help="image file, folder or glob")
  add_common(p)
  add_rate(p)
  p = sub.add_parser("inspect", help="print a .tfc header without running the model")
  p.add_argument("input", help=".tfc file")
  return parser


def main(argv=None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)  # Exits with status 2 and a usage message on bad flags.
  try:
    if args.command == "compress":
      cmd_compress(args)
    elif args.command == "roundtrip":
      args.output = ""
      cmd_compress(args, roundtrip=True)
    elif args.command == "decompress":
      cmd_decompress(args)
    else:
      cmd_inspect(args)
    return 0
  except KeyboardInterrupt:
    print("interrupted; no partial output was left.", file=sys.stderr)
    return 130
  except (ToolError, bitstream.BitstreamError, image_io.ImageReadError, OSError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  except Exception as error:  # pylint: disable=broad-except
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if isinstance(error, (tf.errors.OpError, ValueError)):
      message = getattr(error, "message", str(error)).strip().splitlines()[0]
      print(f"error: {message}", file=sys.stderr)
      return 1
    raise


if __name__ == "__main__":
  sys.exit(main())
