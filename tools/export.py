"""Exports a training checkpoint as a SavedModel in TF Serving layout.

  python tools/export.py --work_dir ~/tfflowcomp_runs/base4 --name tfflowcomp_base [--version 1]

Writes savedmodels/<name>/<version>/ (SavedModel with compress/decompress/serving_default
signatures, coding tables, config and fingerprint inside) and savedmodels/<name>/model_info.json
(fingerprint, config, checkpoint and step), then round-trips a test image through the exported
model to prove it works. Refuses to overwrite an existing version.
"""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

_WORK_DIR = flags.DEFINE_string("work_dir", None, "Training work dir (holds checkpoints/).",
                                required=True)
_NAME = flags.DEFINE_string("name", "tfflowcomp_base", "Model name under --output_root.")
_VERSION = flags.DEFINE_integer("version", 1, "Serving version number.", lower_bound=1)
# = side_refinement.DEFAULT_ITERATIONS (not imported here: it loads TensorFlow;
# tests/test_tools.py checks they agree).
SIDE_ITERATIONS = 48
_SIDE_ITERATIONS = flags.DEFINE_integer(
    "side_iterations", SIDE_ITERATIONS,
    "Encoder effort baked into the export: refinement steps of the side information "
    "(tfflowcomp/side_refinement.py; 0 = one-pass hyper analysis, fastest encoding). Files "
    "decode the same either way.", lower_bound=0)
_OUTPUT_ROOT = flags.DEFINE_string("output_root", os.path.join(REPO_ROOT, "savedmodels"),
                                   "Folder of exported models.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfflowcomp import export, metrics, trainer  # pylint: disable=g-import-not-at-top
  from tfflowcomp.codec import FlowCodec  # pylint: disable=g-import-not-at-top
  try:
    model = trainer.restore_model(_WORK_DIR.value)
  except (FileNotFoundError, ValueError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  checkpoint = tf.train.latest_checkpoint(os.path.join(_WORK_DIR.value, "checkpoints"))
  codec = FlowCodec.from_model(model, side_iterations=_SIDE_ITERATIONS.value)
  model_dir = os.path.join(_OUTPUT_ROOT.value, _NAME.value)
  version_dir = os.path.join(model_dir, str(_VERSION.value))
  try:
    export.export_saved_model(codec, version_dir)
  except FileExistsError as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  step = int(checkpoint.rsplit("-", 1)[-1])
  export.write_model_info(model_dir, codec, dict(checkpoint=checkpoint, step=step,
                                                 version=_VERSION.value))
  loaded = export.load(version_dir)
  rng = np.random.default_rng(0)
  image = np.clip(np.cumsum(rng.normal(0, 4, (64, 96, 3)), axis=1) + 128, 0, 255).astype(
      np.uint8)
  data = loaded.compress(image, 0.9)
  assert data == codec.compress(image, 0.9), "exported model differs from the live one"
  psnr = metrics.psnr(image, loaded.decompress(data))
  print(f"exported {checkpoint} (step {step}) to {version_dir}; fingerprint "
        f"{codec.fingerprint.hex()}; self-test {len(data)} bytes, {psnr:.2f} dB")
  return 0


if __name__ == "__main__":
  app.run(main)
