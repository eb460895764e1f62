"""Multi-worker training smoke test: two worker processes on 127.0.0.1 with TF_CONFIG.

  python tools/multiworker_smoke.py [--steps 4] [--work_dir DIR] [--train_dir DIR]

Starts two `tools/train.py --strategy multi_worker` processes (a tiny model unless --full) that
train together through `tf.distribute.MultiWorkerMirroredStrategy`, waits for both, and checks
that they finished at the same step with identical weights (the chief's checkpoint against the
other worker's). Exit status 0 on success. Without --train_dir it makes a few synthetic images.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TINY_FLAGS = ["--num_levels=2", "--coupling_width=4", "--hyper_width=8", "--hyper_channels=4",
              "--patch_size=16", "--batch_size=4"]


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _synthetic_images(folder):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  os.makedirs(folder, exist_ok=True)
  for i in range(4):
    image = np.clip(np.cumsum(rng.normal(0, 6, (40, 48, 3)), axis=1) + 128, 0, 255)
    Image.fromarray(image.astype(np.uint8)).save(os.path.join(folder, f"{i}.png"))


def _variables(checkpoint_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = tf.train.latest_checkpoint(checkpoint_dir)
  reader = tf.train.load_checkpoint(path)
  names = [n for n in reader.get_variable_to_shape_map() if n.startswith("model/") and
           "OPTIMIZER_SLOT" not in n and ".OPTIMIZER" not in n]
  return path, {n: reader.get_tensor(n) for n in names}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=4)
  parser.add_argument("--work_dir", default=None)
  parser.add_argument("--train_dir", default=None)
  parser.add_argument("--timeout_s", type=int, default=900)
  args = parser.parse_args(argv)
  import numpy as np  # pylint: disable=g-import-not-at-top
  work_dir = args.work_dir or tempfile.mkdtemp(prefix="tfflowcomp-mw-")
  train_dir = args.train_dir or os.path.join(work_dir, "images")
  if not args.train_dir:
    _synthetic_images(train_dir)
  workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
  processes = []
  for index in range(2):
    env = dict(os.environ, TF_CONFIG=json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}),
               CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, os.path.join(REPO_ROOT, "tools", "train.py"),
               "--strategy=multi_worker", f"--work_dir={os.path.join(work_dir, 'run')}",
               f"--train_dir={train_dir}", f"--steps={args.steps}", "--checkpoint_every=2",
               "--validate_every=1000", "--validation_dir=", "--warmup_steps=1",
               "--decay_start=2"] + TINY_FLAGS
    log = open(os.path.join(work_dir, f"worker{index}.log"), "w")
    processes.append((subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT),
                      log))
  codes = []
  for process, log in processes:
    try:
      codes.append(process.wait(timeout=args.timeout_s))
    except subprocess.TimeoutExpired:
      process.kill()
      codes.append("timeout")
    log.close()
  if codes != [0, 0]:
    print(f"error: worker exit codes {codes}; logs in {work_dir}", file=sys.stderr)
    return 1
  chief_path, chief = _variables(os.path.join(work_dir, "run", "checkpoints"))
  other_path, other = _variables(os.path.join(work_dir, "run", "worker_tmp", "1"))
  if not chief_path.endswith(f"-{args.steps}") or not other_path.endswith(f"-{args.steps}"):
    print(f"error: checkpoints {chief_path}, {other_path} are not at step {args.steps}",
          file=sys.stderr)
    return 1
  differing = [n for n in chief if not np.array_equal(chief[n], other.get(n))]
  if differing or not chief:
    print(f"error: workers disagree on {len(differing)} variables, e.g. {differing[:3]}",
          file=sys.stderr)
    return 1
  print(f"ok: 2 workers trained {args.steps} steps in sync ({len(chief)} variables identical); "
        f"logs in {work_dir}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
