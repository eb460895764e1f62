"""Trains a tfflowcomp model (resumes from the latest checkpoint in --work_dir).

Example:
  python tools/train.py --work_dir ~/tfflowcomp_runs/base --steps 20000

Flags are turned into frozen `ModelConfig` / `TrainConfig` objects here; the library never reads
flags. Run with --helpfull for every flag.
"""

import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tfflowcomp import config as config_lib
from tfflowcomp import data

_TRAIN_DIR = flags.DEFINE_string("train_dir", data.DEFAULT_TRAIN_DIR,
                                 "Folder of training images (never Kodak).")
_WORK_DIR = flags.DEFINE_string("work_dir", os.path.expanduser("~/tfflowcomp_runs/default"),
                                "Checkpoints, logs and the model config go here.")
_VALIDATION_DIR = flags.DEFINE_string("validation_dir", data.DEFAULT_KODAK_DIR,
                                      "Folder of held-out images for monitoring ('' = none).")
_VALIDATION_IMAGES = flags.DEFINE_integer("validation_images", 4,
                                          "Number of validation images.", lower_bound=1)
_PATCH = flags.DEFINE_integer("patch_size", 128, "Side of random training crops.",
                              lower_bound=8)
_BATCH = flags.DEFINE_integer("batch_size", 8, "Global batch size.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 20000, "Total optimizer steps.", lower_bound=0)
_LR = flags.DEFINE_float("learning_rate", 3e-4, "Peak learning rate (Adam).", lower_bound=0)
_FINAL_LR = flags.DEFINE_float("final_learning_rate", 1e-5, "Learning rate at --steps.",
                               lower_bound=0)
_WARMUP = flags.DEFINE_integer("warmup_steps", 200, "Linear warm-up steps.", lower_bound=0)
_DECAY_START = flags.DEFINE_integer("decay_start", 10000, "Step where cosine decay starts.",
                                    lower_bound=0)
_QMIN = flags.DEFINE_float("quality_min", 0.0, "Lowest quality drawn in training.",
                           lower_bound=0, upper_bound=1)
_QMAX = flags.DEFINE_float("quality_max", 1.0, "Highest quality drawn in training.",
                           lower_bound=0, upper_bound=1)
_QPOWER = flags.DEFINE_float(
    "quality_power", 1.0,
    "Quality drawn as quality_min + (quality_max - quality_min) * u**quality_power, u uniform: "
    "1 = uniform; above 1 puts more batches at low qualities (1.5: half in the lowest 35 %).",
    lower_bound=0.01)
_LEVELS = flags.DEFINE_integer("num_levels", 4, "Multi-scale levels of the flow.",
                               lower_bound=1, upper_bound=5)
_GLOW = flags.DEFINE_integer("glow_steps_per_level", 1, "Glow steps per level.", lower_bound=0)
_INTEGER_FLOW = flags.DEFINE_bool(
    "integer_flow", False,
    "Integer-to-integer flow (YCoCg-R and lifting steps with rounded shifts; needs "
    "--glow_steps_per_level 0): decoded images re-encode to the same symbols, and quality 1 is "
    "lossless when --min_step is at most the smallest channel gain (~0.25 is safe).")
_SIDE_GAINS = flags.DEFINE_bool(
    "side_gains", False,
    "Quality-dependent quantization grid of the side information (learned per-channel gains at "
    "quality 0 and 1): low qualities can spend fewer bits on it. May be added to an --init_from "
    "model that has none (its gains start at 1).")
_MIN_STEP = flags.DEFINE_float("min_step", 1.0,
                               "Quantization step at quality 1, in 8-bit levels.", lower_bound=0)
_WIDTH = flags.DEFINE_integer("coupling_width", 32, "Hidden width of coupling networks.",
                              lower_bound=1)
_HYPER_WIDTH = flags.DEFINE_integer("hyper_width", 128, "Hidden width of hyperprior networks.",
                                    lower_bound=1)
_HYPER_CHANNELS = flags.DEFINE_integer("hyper_channels", 64, "Channels of side information.",
                                       lower_bound=1)
_CKPT_EVERY = flags.DEFINE_integer("checkpoint_every", 250, "Steps between checkpoints.",
                                   lower_bound=1)
_VALIDATE_EVERY = flags.DEFINE_integer("validate_every", 1000, "Steps between validations.",
                                       lower_bound=1)
_STRATEGY = flags.DEFINE_enum("strategy", "default", list(config_lib.STRATEGIES),
                              "tf.distribute strategy (multi_worker reads TF_CONFIG).")
_LOSS_SCALE = flags.DEFINE_enum(
    "loss_scale", "linear", list(config_lib.LOSS_SCALES),
    "linear: minimise bpp + lambda * MSE averaged over the sampled qualities (high qualities, "
    "with ~6x larger losses, dominate); log: minimise its logarithm, so every quality improves "
    "by the same relative amount (more weight on low rates).")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_INIT_FROM = flags.DEFINE_string(
    "init_from", "",
    "Exported model (SavedModel or serving-layout folder, e.g. savedmodels/tfflowcomp_base) "
    "whose weights start a new run: fine-tuning, or continuing a shipped model whose checkpoints "
    "are gone. The model flags are taken from it (any given must agree). Ignored on resume.")

# ModelConfig field -> the flag that sets it.
_MODEL_FLAGS = {"num_levels": _LEVELS, "glow_steps_per_level": _GLOW, "coupling_width": _WIDTH,
                "hyper_width": _HYPER_WIDTH, "hyper_channels": _HYPER_CHANNELS,
                "min_step": _MIN_STEP, "integer_flow": _INTEGER_FLOW, "side_gains": _SIDE_GAINS}


def model_config_from_flags():
  """The model flags as a ModelConfig, or --init_from's config (explicit flags must agree)."""
  if not _INIT_FROM.value:
    return config_lib.ModelConfig(**{field: holder.value for field, holder in _MODEL_FLAGS.items()})
  from tfflowcomp import export  # pylint: disable=g-import-not-at-top
  try:
    saved = export.saved_model_config(_INIT_FROM.value)
  except (OSError, ValueError, KeyError) as error:
    raise ValueError(f"--init_from {_INIT_FROM.value!r} is not an exported tfflowcomp model "
                     f"({error}).") from error
  if _SIDE_GAINS.value and not saved.side_gains:
    saved = dataclasses.replace(saved, side_gains=True)  # Added in fine-tuning (see the flag).
  conflicts = [f"--{holder.name}={holder.value} (the model has {getattr(saved, field)})"
               for field, holder in _MODEL_FLAGS.items()
               if flags.FLAGS[holder.name].present and holder.value != getattr(saved, field)]
  if conflicts:
    raise ValueError("flags disagree with the --init_from model: " + ", ".join(conflicts))
  return saved


def configs_from_flags():
  """Flags -> (ModelConfig, TrainConfig); raises ValueError with the reason if invalid."""
  model_config = model_config_from_flags()
  train_config = config_lib.TrainConfig(
      train_dir=_TRAIN_DIR.value, work_dir=_WORK_DIR.value, patch_size=_PATCH.value,
      batch_size=_BATCH.value, steps=_STEPS.value, learning_rate=_LR.value,
      warmup_steps=_WARMUP.value, decay_start=_DECAY_START.value,
      final_learning_rate=_FINAL_LR.value, quality_min=_QMIN.value, quality_max=_QMAX.value,
      quality_power=_QPOWER.value,
      checkpoint_every=_CKPT_EVERY.value, validate_every=_VALIDATE_EVERY.value,
      validation_dir=_VALIDATION_DIR.value, validation_images=_VALIDATION_IMAGES.value,
      strategy=_STRATEGY.value, loss_scale=_LOSS_SCALE.value, seed=_SEED.value,
      init_from=_INIT_FROM.value)
  return model_config, train_config


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    model_config, train_config = configs_from_flags()
  except ValueError as error:
    raise app.UsageError(str(error))
  from tfflowcomp import trainer  # pylint: disable=g-import-not-at-top
  if not os.path.isdir(train_config.train_dir):
    raise app.UsageError(f"--train_dir {train_config.train_dir!r} is not a folder.")
  trainer.train(model_config, train_config)


if __name__ == "__main__":
  app.run(main)
