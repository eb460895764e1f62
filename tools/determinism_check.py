"""Determinism check: repeated compression and decoding under different thread settings.

  python tools/determinism_check.py [--model savedmodels/tfflowcomp_base] [--image PATH]
                                    [--repeats 1000] [--quality 0.5]

1. Compresses one image `--repeats` times in this process: all outputs must be one byte string.
2. Decodes that file in two fresh processes, with 1 and with 2 intra-op threads (and 1
   inter-op thread): the decoded pixels must be bit-identical, and each process's own
   compression must give the same bytes.
Prints a JSON summary; exit status 0 when everything matched.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CHILD = r"""
import hashlib, json, sys
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[1]))
tf.config.threading.set_inter_op_parallelism_threads(1)
sys.path.insert(0, sys.argv[2])
from tfflowcomp import export, image_io
codec = export.load(sys.argv[3])
data = open(sys.argv[4], "rb").read()
image = codec.decompress(data)
again = codec.compress(image_io.load_rgb8(sys.argv[5]), float(sys.argv[6]))
print(json.dumps(dict(pixels=hashlib.sha256(image.tobytes()).hexdigest(),
                      bytes=hashlib.sha256(again).hexdigest())))
"""


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default=os.path.join(REPO_ROOT, "savedmodels",
                                                      "tfflowcomp_base"))
  parser.add_argument("--image", default=os.path.join(REPO_ROOT, "samples", "astronaut.png"))
  parser.add_argument("--repeats", type=int, default=1000)
  parser.add_argument("--quality", type=float, default=0.5)
  args = parser.parse_args(argv)
  from tfflowcomp import export, image_io  # pylint: disable=g-import-not-at-top
  codec = export.load(args.model)
  image = image_io.load_rgb8(args.image)
  digests = {hashlib.sha256(codec.compress(image, args.quality)).hexdigest()
             for _ in range(args.repeats)}
  data = codec.compress(image, args.quality)
  with tempfile.NamedTemporaryFile(suffix=".tfc", delete=False) as f:
    f.write(data)
  children = {}
  for threads in (1, 2):
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads), REPO_ROOT, export.latest_version_dir(
            args.model), f.name, args.image, str(args.quality)],
        capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
      print(result.stderr[-2000:], file=sys.stderr)
      return 1
    children[threads] = json.loads(result.stdout.strip().splitlines()[-1])
  os.unlink(f.name)
  expected_bytes = hashlib.sha256(data).hexdigest()
  summary = dict(
      repeats=args.repeats, distinct_outputs=len(digests),
      decode_identical_1_vs_2_threads=children[1]["pixels"] == children[2]["pixels"],
      encode_identical_across_processes=all(c["bytes"] == expected_bytes
                                            for c in children.values()),
      bytes=len(data))
  print(json.dumps(summary))
  ok = (summary["distinct_outputs"] == 1 and summary["decode_identical_1_vs_2_threads"] and
        summary["encode_identical_across_processes"])
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
