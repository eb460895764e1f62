"""Frozen configuration dataclasses.

`ModelConfig` fully determines the architecture of a tfflowcomp model; it is saved next to the
weights (as JSON) and inside every exported SavedModel, so a model is never rebuilt by guessing
hyper-parameters from tensor shapes. `TrainConfig` holds what only the trainer needs.

Both are immutable. Tools turn their flags into one of these at the boundary; library code never
reads flags.
"""

import dataclasses
import json
from typing import Any, Dict, Tuple


def check_choice(name: str, value: str, choices: Tuple[str, ...]) -> None:
  """Raises ValueError naming the valid choices if `value` is not one of them."""
  if value not in choices:
    raise ValueError(
        f"{name}={value!r} is not valid; choose one of: {', '.join(choices)}.")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Architecture of the flow codec.

  Attributes:
    num_levels: number of multi-scale levels of the flow. Each level halves the resolution, so
      images are padded to a multiple of `2**num_levels`. The latent has shape
      `[H / 2**num_levels, W / 2**num_levels, 3 * 4**num_levels]`.
    glow_steps_per_level: Glow steps (ActNorm, invertible 1x1 conv, affine coupling) after the
      wavelet-initialised lifting steps of each level.
    coupling_width: width of the hidden layers of every coupling network.
    hyper_width: width of the hidden layers of the hyperprior networks.
    hyper_channels: channels of the side information `z`.
    max_step: quantization step, in 8-bit pixel units, at quality 0.0 (smallest files).
    min_step: quantization step, in 8-bit pixel units, at quality 1.0 (finest).
    num_scales: number of scale tables of the latent's entropy model.
    scale_min: smallest scale (in quantization bins) of those tables.
    scale_max: largest scale (in quantization bins) of those tables.
    integer_flow: make the flow an exact bijection of the integers (`flow/integer.py`): fixed
      YCoCg-R colour transform and lifting steps with rounded shifts, no Glow steps (their
      scalings are not bijections of the integers), so needs `glow_steps_per_level=0`. Decoded
      images then re-encode to the same symbols, and quantization steps of at most one 8-bit
      level are lossless. Omitted from `to_json` when False, so existing models keep their
      fingerprints.
    side_gains: quantize the side information `z` on a quality-dependent grid: learned
      per-channel log-gains at quality 0 and 1, interpolated like the latent's, scale `z` before
      rounding (and back before the hyper synthesis), so low qualities can spend fewer bits on
      side information (`model.FlowCompressionModel.side_symbols_per_unit`). Without them `z`
      is rounded on the same grid at every quality. Omitted from `to_json` when False.
  """
  num_levels: int = 4
  glow_steps_per_level: int = 1
  coupling_width: int = 32
  hyper_width: int = 128
  hyper_channels: int = 64
  max_step: float = 160.0
  min_step: float = 1.0
  num_scales: int = 64
  scale_min: float = 0.11
  scale_max: float = 1024.0
  integer_flow: bool = False
  side_gains: bool = False

  def __post_init__(self):
    if not 1 <= self.num_levels <= 5:
      raise ValueError(f"num_levels must be in [1, 5], got {self.num_levels}.")
    if self.glow_steps_per_level < 0:
      raise ValueError("glow_steps_per_level must be >= 0.")
    if self.integer_flow and self.glow_steps_per_level:
      raise ValueError("integer_flow needs glow_steps_per_level=0: Glow steps scale their "
                       "inputs, which no bijection of the integers can do.")
    for name in ("coupling_width", "hyper_width", "hyper_channels", "num_scales"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
    if not 0 < self.min_step <= self.max_step:
      raise ValueError("Need 0 < min_step <= max_step.")
    if not 0 < self.scale_min < self.scale_max:
      raise ValueError("Need 0 < scale_min < scale_max.")

  @property
  def block_size(self) -> int:
    """Images are padded to a multiple of this many pixels in each dimension."""
    return 2 ** self.num_levels

  @property
  def latent_channels(self) -> int:
    return 3 * 4 ** self.num_levels

  def to_json(self) -> str:
    values = dataclasses.asdict(self)
    # Flags added after models shipped are left out while False, so the JSON (hence the
    # fingerprint) of every earlier model stays the same.
    for name in ("integer_flow", "side_gains"):
      if not values[name]:
        del values[name]
    return json.dumps(values, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> "ModelConfig":
    return cls.from_dict(json.loads(text))

  @classmethod
  def from_dict(cls, values: Dict[str, Any]) -> "ModelConfig":
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
      raise ValueError(f"Unknown ModelConfig fields: {sorted(unknown)}.")
    return cls(**values)


STRATEGIES = ("default", "mirrored", "multi_worker")
# How the per-batch loss `bpp + lambda * MSE` enters the gradient (`model.training_objective`).
LOSS_SCALES = ("linear", "log")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything the trainer needs besides the model architecture.

  Attributes:
    train_dir: folder of training images (PNG/JPEG), never Kodak.
    work_dir: where checkpoints, TensorBoard logs and the model config go.
    patch_size: side of the square random crops, a multiple of the model's block size.
    batch_size: global batch size.
    steps: total number of optimizer steps (training resumes up to this count).
    learning_rate: peak learning rate of Adam.
    warmup_steps: linear warm-up steps of the learning rate.
    decay_start: step at which cosine decay to `final_learning_rate` begins.
    final_learning_rate: learning rate reached at `steps`.
    quality_min, quality_max: the quality knob is drawn from this range per batch.
    quality_power: the draw is `quality_min + (quality_max - quality_min) * u**quality_power`
      with `u` uniform in [0, 1): 1 is uniform, above 1 puts more batches at low qualities
      (1.5: half of them in the lowest 35 % of the range) while still covering all of it.
    checkpoint_every: steps between checkpoints.
    validate_every: steps between validations with real bitstreams.
    validation_dir: folder whose first `validation_images` images are used for validation.
    validation_images: number of held-out images coded at every validation.
    strategy: tf.distribute strategy name, one of `STRATEGIES`.
    loss_scale: one of `LOSS_SCALES`: "linear" minimises the mean of `bpp + lambda * MSE` over
      qualities (absolute improvements count, so high qualities, whose loss is ~6x larger,
      dominate); "log" minimises the mean of its logarithm (each quality's loss improves by the
      same relative amount, which moves weight to low rates).
    seed: random seed of the input pipeline and initialisation.
    init_from: optional exported SavedModel (or serving-layout folder) whose weights start a new
      run instead of a random initialisation (fine-tuning, or continuing a shipped model when its
      checkpoints are gone: Adam's moments start from zero). Its `ModelConfig` must equal the
      run's, except that a run with `side_gains` may start from an export without them (the
      gains then start at 1, so the run begins with the export's exact rate). Ignored once
      `work_dir` holds a checkpoint.
  """
  train_dir: str
  work_dir: str
  patch_size: int = 128
  batch_size: int = 8
  steps: int = 10000
  learning_rate: float = 1e-4
  warmup_steps: int = 200
  decay_start: int = 5000
  final_learning_rate: float = 1e-5
  quality_min: float = 0.0
  quality_max: float = 1.0
  quality_power: float = 1.0
  checkpoint_every: int = 250
  validate_every: int = 1000
  validation_dir: str = ""
  validation_images: int = 4
  strategy: str = "default"
  loss_scale: str = "linear"
  seed: int = 0
  init_from: str = ""

  def __post_init__(self):
    check_choice("strategy", self.strategy, STRATEGIES)
    check_choice("loss_scale", self.loss_scale, LOSS_SCALES)
    if self.patch_size < 8:
      raise ValueError(f"patch_size must be >= 8, got {self.patch_size}.")
    if self.batch_size < 1 or self.steps < 0:
      raise ValueError("batch_size must be >= 1 and steps >= 0.")
    if not 0.0 <= self.quality_min <= self.quality_max <= 1.0:
      raise ValueError("Need 0 <= quality_min <= quality_max <= 1.")
    if not self.quality_power > 0:
      raise ValueError(f"quality_power must be > 0, got {self.quality_power}.")
    if self.learning_rate <= 0 or self.final_learning_rate < 0:
      raise ValueError("Learning rates must be positive.")
    if self.checkpoint_every < 1 or self.validate_every < 1:
      raise ValueError("checkpoint_every and validate_every must be >= 1.")
