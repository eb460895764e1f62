"""Long-running decoder fuzzer: mutates, truncates and splices valid bitstreams.

  python tools/fuzz_decoder.py [--model tests/testdata/tiny_model] [--inputs 100000]
                               [--seed 0] [--timeout_s 10] [--output results/fuzz.json]

Every input must either decode to an image of the size its header states or raise
`BitstreamError` (the documented exception); anything else is counted as a failure. Half of the
mutated inputs get their checksum recomputed so that garbage reaches the range decoder and the
inverse flow. Inputs run in child processes of `--chunk` inputs: a watchdog ends a child whose
current input runs longer than `--timeout_s` (a hang; native ops cannot be interrupted), and a
child that dies without its summary is a crash; either way the input is saved next to
`--output` and fuzzing resumes after it.
"""

import argparse
import json
import os
import random
import struct
import sys
import time
import zlib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top


# Files may claim images up to the container's limit (2^28 pixels); decoding one allocates for its
# full size, which the API bounds with max_pixels. The fuzzer uses a small bound so that each
# input decodes in milliseconds; larger claims are rejected with BitstreamError like other bad data.
MAX_FUZZ_PIXELS = 1 << 16


def mutate(rng: random.Random, seeds):
  data = bytearray(rng.choice(seeds))
  for _ in range(rng.randint(1, 4)):
    kind = rng.randrange(5)
    pos = rng.randrange(len(data) + 1)
    if kind == 0 and data:
      data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
    elif kind == 1:
      del data[pos:]
    elif kind == 2:
      data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    elif kind == 3:
      other = rng.choice(seeds)
      cut = rng.randrange(len(other) + 1)
      data = data[:pos] + other[cut:]
    elif kind == 4 and len(data) > 24:
      field = rng.choice([(14, 4), (18, 4), (22, 2), (24, 1), (25, 4), (29, 4)])
      data[field[0]:field[0] + field[1]] = bytes(rng.randrange(256) for _ in range(field[1]))
  if rng.random() < 0.5 and len(data) > 8:
    body = bytes(data[:-4])
    data = bytearray(body + struct.pack(">I", zlib.adler32(body)))
  return bytes(data)


def run_child(args) -> int:
  """Fuzzes inputs [args.start, args.inputs); exits 3 from a watchdog if one input hangs."""
  import threading  # pylint: disable=g-import-not-at-top
  from tfflowcomp import bitstream, export  # pylint: disable=g-import-not-at-top
  codec = export.load(args.model)
  image_rng = np.random.default_rng(args.seed)
  seeds = []
  for height, width, quality in ((1, 1, 0.5), (9, 13, 0.1), (17, 31, 0.7), (32, 32, 1.0)):
    image = np.clip(np.cumsum(image_rng.normal(0, 8, (height, width, 3)), axis=1) + 128, 0,
                    255).astype(np.uint8)
    seeds.append(codec.compress(image, quality))
  counts = dict(decoded=0, rejected=0, wrong_exception=0, wrong_shape=0)
  state = dict(index=args.start, started=time.time())

  def save(extra):
    with open(args.state, "w") as f:
      json.dump(dict(counts=counts, **extra), f)

  def watchdog():
    while True:
      time.sleep(1)
      if time.time() - state["started"] > args.timeout_s:
        save(dict(next=state["index"] + 1, hang_index=state["index"]))
        os._exit(3)  # A native op cannot be interrupted; the parent restarts after this input.

  threading.Thread(target=watchdog, daemon=True).start()
  for index in range(args.start, args.inputs):
    rng = random.Random(f"{args.seed}-{index}")  # Input i is reproducible on its own.
    data = mutate(rng, seeds)
    with open(args.state + ".in_flight.bin", "wb") as f:  # Kept if native code crashes.
      f.write(data)
    state.update(index=index, started=time.time())
    try:
      image = codec.decompress(data, max_pixels=MAX_FUZZ_PIXELS)
      container = bitstream.unpack(data)
      if image.shape != (container.height, container.width, 3):
        counts["wrong_shape"] += 1
      else:
        counts["decoded"] += 1
    except bitstream.BitstreamError:
      counts["rejected"] += 1
    except Exception as error:  # pylint: disable=broad-except
      counts["wrong_exception"] += 1
      print(f"input {index}: {type(error).__name__}: {str(error)[:200]}", file=sys.stderr)
  save(dict(next=args.inputs))
  return 0


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default=os.path.join(REPO_ROOT, "tests", "testdata",
                                                      "tiny_model"))
  parser.add_argument("--inputs", type=int, default=100000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--timeout_s", type=int, default=10)
  parser.add_argument("--chunk", type=int, default=5000, help="inputs per child process")
  parser.add_argument("--output", default=os.path.join(REPO_ROOT, "results", "fuzz",
                                                       "fuzz.json"))
  parser.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
  parser.add_argument("--state", default="", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args._child:  # pylint: disable=protected-access
    return run_child(args)
  import subprocess  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  state_path = args.output + ".state.json"
  totals = dict(decoded=0, rejected=0, wrong_exception=0, wrong_shape=0, hang=0, crash=0)
  hangs, crashes = [], []
  start, began = 0, time.time()
  while start < args.inputs:
    stop = min(args.inputs, start + args.chunk)
    command = [sys.executable, os.path.abspath(__file__), "--_child", "--model", args.model,
               "--seed", str(args.seed), "--timeout_s", str(args.timeout_s), "--start",
               str(start), "--inputs", str(stop), "--state", state_path]
    if os.path.exists(state_path):
      os.unlink(state_path)
    code = subprocess.run(command, stdout=subprocess.DEVNULL).returncode
    if not os.path.exists(state_path):  # Died without writing its state: a crash.
      totals["crash"] += 1
      crashes.append(start)
      saved = args.output + f".crash{len(crashes)}.bin"
      if os.path.exists(state_path + ".in_flight.bin"):
        os.replace(state_path + ".in_flight.bin", saved)
      print(f"child exited {code} without a summary (crash); input kept in {saved}")
      start = stop  # The chunk's position is unknown; move on.
      continue
    with open(state_path) as f:
      state = json.load(f)
    for key, value in state["counts"].items():
      totals[key] += value
    if "hang_index" in state:
      totals["hang"] += 1
      hangs.append(state["hang_index"])
      os.replace(state_path + ".in_flight.bin", args.output + f".hang{len(hangs)}.bin")
    start = state["next"]
    print(f"{start} inputs, {time.time() - began:.0f} s: {totals}", flush=True)
  summary = dict(inputs=args.inputs, seed=args.seed, model=args.model,
                 timeout_s=args.timeout_s, max_pixels=MAX_FUZZ_PIXELS, counts=totals,
                 hang_inputs=hangs, seconds=time.time() - began)
  with open(args.output, "w") as f:
    json.dump(summary, f, indent=1)
  for path in (state_path, state_path + ".in_flight.bin"):
    if os.path.exists(path):
      os.unlink(path)
  print(json.dumps(summary))
  return 0 if not (hangs or crashes or totals["wrong_exception"] or totals["wrong_shape"]) else 1


if __name__ == "__main__":
  sys.exit(main())
