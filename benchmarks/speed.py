"""Speed and memory of tfflowcomp beside the Ballé 2018 hyperprior, JPEG and WebP (one run).

  python benchmarks/speed.py [--sizes 768x512,2048x2048,4096x4096] [--repeats 5]
                             [--model savedmodels/tfflowcomp_base] [--output benchmarks/speed.json]

Images with a side over 2048 are coded in tiles (the codec's default, `codec.AUTO_TILE_SIDE`),
which bounds memory; `tile_side` in the JSON says which cases were tiled. `--repeats 0` times a
single (first) run, for very large sizes.

Each (codec, size) case runs in its own subprocess, so its peak resident memory (ru_maxrss) and
graph tracing time are its own. Timings are medians of `--repeats` runs after one warm-up run
(which includes tracing, reported separately). Same machine, same default TF thread settings for
every case. bmshj2018 uses untrained weights (speed does not depend on them). Also times one
training step (batch 8, 128x128) of tfflowcomp and bmshj2018.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.join(REPO_ROOT, "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top

CODECS = ("tfflowcomp", "bmshj2018", "JPEG", "WebP")


def test_image(height, width, images_dir):
  """A natural image of the requested size: a Kodak image tiled (mirrored), else synthetic."""
  from tfflowcomp import data  # pylint: disable=g-import-not-at-top
  try:
    base = data.load_folder(images_dir, 1)[0]
  except (OSError, IndexError):
    rng = np.random.default_rng(0)
    base = np.clip(np.cumsum(rng.normal(0, 3, (512, 768, 3)), axis=1) + 128, 0, 255).astype(
        np.uint8)
  reps_y = -(-height // base.shape[0])
  reps_x = -(-width // base.shape[1])
  tile = np.concatenate([base, base[::-1]], axis=0)
  tile = np.concatenate([tile, tile[:, ::-1]], axis=1)
  big = np.tile(tile, (reps_y // 2 + 1, reps_x // 2 + 1, 1))
  return np.ascontiguousarray(big[:height, :width])


def _timed(fn, repeats):
  """(first run seconds, median of `repeats` more runs; the first run's time if 0)."""
  start = time.perf_counter()
  fn()
  first = time.perf_counter() - start
  if repeats == 0:
    return first, first
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return first, float(np.median(times))


def run_case(codec_name, size, repeats, model, images_dir):
  """Runs inside the subprocess; returns the case's result dict."""
  height, width = size
  image = test_image(height, width, images_dir)
  result = dict(codec=codec_name, height=height, width=width)
  if codec_name == "tfflowcomp":
    from tfflowcomp import bitstream, export  # pylint: disable=g-import-not-at-top
    codec = export.load(model)
    holder = {}
    first, median = _timed(lambda: holder.update(data=codec.compress(image, 0.5)), repeats)
    result.update(encode_first_s=first, encode_s=median, bytes=len(holder["data"]),
                  tile_side=bitstream.unpack(holder["data"]).tile_side)
    first, median = _timed(lambda: codec.decompress(holder["data"]), repeats)
    result.update(decode_first_s=first, decode_s=median)
  elif codec_name == "bmshj2018":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import bmshj2018  # pylint: disable=g-import-not-at-top
    model_ = bmshj2018.Bmshj2018()
    holder = {}
    tensor = tf.constant(image)
    first, median = _timed(lambda: holder.update(out=model_.compress(tensor)), repeats)
    result.update(encode_first_s=first, encode_s=median)
    first, median = _timed(lambda: model_.decompress(*holder["out"]).numpy(), repeats)
    result.update(decode_first_s=first, decode_s=median)
  else:
    from tfflowcomp import classical  # pylint: disable=g-import-not-at-top
    codec = {c.name: c for c in classical.available_codecs()[0]}[
        "JPEG 4:2:0" if codec_name == "JPEG" else codec_name]
    holder = {}
    first, median = _timed(lambda: holder.update(data=codec.encode(image, 75)), repeats)
    result.update(encode_first_s=first, encode_s=median, bytes=len(holder["data"]))
    first, median = _timed(lambda: codec.decode(holder["data"]), repeats)
    result.update(decode_first_s=first, decode_s=median)
  result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return result


def run_train_case(codec_name, repeats):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  batch = tf.constant(rng.integers(0, 256, (8, 128, 128, 3)), tf.uint8)
  optimizer = tf.keras.optimizers.Adam(1e-4)
  if codec_name == "tfflowcomp":
    from tfflowcomp.config import ModelConfig  # pylint: disable=g-import-not-at-top
    from tfflowcomp.model import FlowCompressionModel  # pylint: disable=g-import-not-at-top
    model = FlowCompressionModel(ModelConfig())
    model.compile(optimizer=optimizer)
    model.initialize(batch)
    step = tf.function(model.train_step)
  else:
    import bmshj2018  # pylint: disable=g-import-not-at-top
    step = bmshj2018.Bmshj2018().train_step_fn(optimizer)
  first, median = _timed(lambda: step(batch), repeats)
  return dict(codec=codec_name, case="train_step batch 8 x 128x128", first_s=first,
              step_s=median, steps_per_s=1.0 / median,
              peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _subprocess(args):
  command = [sys.executable, os.path.abspath(__file__), "--_case"] + args
  result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
  if result.returncode < 0:
    return dict(error=f"killed by signal {-result.returncode}"
                + (" (the kernel's out-of-memory killer)" if result.returncode == -9 else ""))
  if result.returncode != 0:
    lines = [l for l in result.stderr.strip().splitlines() if "Error" in l] or ["?"]
    return dict(error=f"exit {result.returncode}: {lines[-1][:300]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="768x512,2048x2048,4096x4096")
  parser.add_argument("--codecs", default=",".join(CODECS))
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--train_repeats", type=int, default=5)
  parser.add_argument("--model", default=os.path.join(REPO_ROOT, "savedmodels",
                                                      "tfflowcomp_base"))
  parser.add_argument("--images", default=os.path.normpath(
      os.path.join(REPO_ROOT, "..", "shared", "data", "kodak")))
  parser.add_argument("--output", default=os.path.join(REPO_ROOT, "benchmarks", "speed.json"))
  parser.add_argument("--_case", nargs="*", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args._case is not None:  # pylint: disable=protected-access
    kind, codec_name = args._case[0], args._case[1]  # pylint: disable=protected-access
    if kind == "train":
      result = run_train_case(codec_name, args.train_repeats)
    else:
      height, width = (int(v) for v in args._case[2].split("x")[::-1])  # pylint: disable=protected-access
      result = run_case(codec_name, (height, width), args.repeats, args.model, args.images)
    print(json.dumps(result))
    return 0

  common = ["--repeats", str(args.repeats), "--train_repeats", str(args.train_repeats),
            "--model", args.model, "--images", args.images]
  results = []
  for size in args.sizes.split(","):
    for codec_name in args.codecs.split(","):
      result = _subprocess(["codec", codec_name, size] + common)
      result.setdefault("codec", codec_name)
      result["size"] = size
      results.append(result)
      print(json.dumps(result), flush=True)
  train = [_subprocess(["train", name] + common) for name in ("tfflowcomp", "bmshj2018")
           if args.train_repeats > 0]
  for t in train:
    print(json.dumps(t), flush=True)

  lines = [f"{'size':>10s} {'codec':>11s} {'encode s':>9s} {'decode s':>9s} {'trace s':>8s} "
           f"{'peak MB':>8s} {'enc x':>6s} {'dec x':>6s}"]
  by_key = {(r["size"], r["codec"]): r for r in results}
  for r in results:
    if "error" in r:
      lines.append(f"{r['size']:>10s} {r['codec']:>11s}  failed: {r['error'][:60]}")
      continue
    ref = by_key.get((r["size"], "bmshj2018"), {})
    ratio = lambda key: (f"{r[key] / ref[key]:6.2f}" if ref.get(key) else f"{'-':>6s}")
    trace = r["encode_first_s"] - r["encode_s"]
    lines.append(f"{r['size']:>10s} {r['codec']:>11s} {r['encode_s']:9.3f} {r['decode_s']:9.3f} "
                 f"{trace:8.2f} {r['peak_rss_mb']:8.0f} {ratio('encode_s')} {ratio('decode_s')}")
  for t in train:
    if "error" not in t:
      lines.append(f"train step (8x128x128) {t['codec']}: {t['step_s']:.3f} s "
                   f"({t['steps_per_s']:.2f} steps/s), peak {t['peak_rss_mb']:.0f} MB")
  table = "\n".join(lines)
  print(table)
  machine = dict(platform=platform.platform(), processor=platform.processor(),
                 cpus=os.cpu_count())
  with open(args.output, "w") as f:
    json.dump(dict(machine=machine, results=results, train=train, table=table), f, indent=1)
  print(f"wrote {args.output} (ratios are tfflowcomp / bmshj2018 at the same size)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
