"""Long-running decoder fuzzer: mutates, truncates and splices valid bitstreams.

  python tools/fuzz_decoder.py [--model tests/testdata/tiny_model] [--inputs 100000]
                               [--seed 0] [--timeout_s 10] [--output results/fuzz.json]

Every input must either decode to an image of the size its header states or raise
`BitstreamError` (the documented exception); anything else is counted as a failure and its bytes
are saved. A per-input alarm (`--timeout_s`) counts hangs. Half of the mutated inputs get their
checksum recomputed so that garbage reaches the range decoder and the inverse flow. A crash of
the process (segfault/abort in native code) would end the run early: the summary then is missing
and the exit status is non-zero.
"""

import argparse
import json
import os
import random
import signal
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


class _Timeout(Exception):
  pass


def _alarm(signum, frame):
  raise _Timeout()


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


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default=os.path.join(REPO_ROOT, "tests", "testdata",
                                                      "tiny_model"))
  parser.add_argument("--inputs", type=int, default=100000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--timeout_s", type=int, default=10)
  parser.add_argument("--output", default=os.path.join(REPO_ROOT, "results", "fuzz.json"))
  args = parser.parse_args(argv)
  from tfflowcomp import bitstream, export  # pylint: disable=g-import-not-at-top
  codec = export.load(args.model)
  rng = random.Random(args.seed)
  image_rng = np.random.default_rng(args.seed)
  seeds = []
  for height, width, quality in ((1, 1, 0.5), (9, 13, 0.1), (17, 31, 0.7), (32, 32, 1.0)):
    image = np.clip(np.cumsum(image_rng.normal(0, 8, (height, width, 3)), axis=1) + 128, 0,
                    255).astype(np.uint8)
    seeds.append(codec.compress(image, quality))
  signal.signal(signal.SIGALRM, _alarm)
  counts = dict(decoded=0, rejected=0, wrong_exception=0, wrong_shape=0, hang=0)
  failures = []
  start = time.time()
  for index in range(args.inputs):
    data = mutate(rng, seeds)
    signal.alarm(args.timeout_s)
    try:
      image = codec.decompress(data, max_pixels=MAX_FUZZ_PIXELS)
      container = bitstream.unpack(data)
      if image.shape != (container.height, container.width, 3):
        counts["wrong_shape"] += 1
        failures.append(data)
      else:
        counts["decoded"] += 1
    except bitstream.BitstreamError:
      counts["rejected"] += 1
    except _Timeout:
      counts["hang"] += 1
      failures.append(data)
    except Exception as error:  # pylint: disable=broad-except
      counts["wrong_exception"] += 1
      failures.append(data)
      print(f"input {index}: {type(error).__name__}: {str(error)[:200]}", file=sys.stderr)
    finally:
      signal.alarm(0)
    if (index + 1) % 5000 == 0:
      print(f"{index + 1} inputs, {time.time() - start:.0f} s: {counts}", flush=True)
  summary = dict(inputs=args.inputs, seed=args.seed, model=args.model, counts=counts,
                 seconds=time.time() - start, failures=len(failures))
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, "w") as f:
    json.dump(summary, f, indent=1)
  for i, data in enumerate(failures[:20]):
    with open(f"{args.output}.failure{i}.bin", "wb") as f:
      f.write(data)
  print(json.dumps(summary))
  return 0 if not failures else 1


if __name__ == "__main__":
  sys.exit(main())
