"""Training: Keras `fit` with checkpoints, resume, validation with real bitstreams, TensorBoard.

`train(model_config, train_config)` is the whole job. It is safe to kill at any time (kill -9
included): the next call with the same `work_dir` restores the latest checkpoint (weights, Adam
state and step count) and continues the same learning-rate schedule. The model configuration is
stored in `work_dir/model_config.json` and must match on resume.
"""

import json
import math
import os
import time

import numpy as np
import tensorflow as tf

from tfflowcomp import data
from tfflowcomp import export
from tfflowcomp import metrics
from tfflowcomp.codec import FlowCodec
from tfflowcomp.config import ModelConfig, TrainConfig
from tfflowcomp.model import FlowCompressionModel

VALIDATION_QUALITIES = (0.1, 0.4, 0.7, 1.0)


class WarmupCosineSchedule(tf.keras.optimizers.schedules.LearningRateSchedule):
  """Linear warm-up to `peak`, constant until `decay_start`, cosine decay to `final` at `total`."""

  def __init__(self, peak, final, warmup, decay_start, total):
    self.peak, self.final = float(peak), float(final)
    self.warmup, self.decay_start, self.total = int(warmup), int(decay_start), int(total)

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    warm = self.peak * tf.minimum(1.0, (step + 1.0) / max(self.warmup, 1))
    span = float(max(self.total - self.decay_start, 1))
    progress = tf.clip_by_value((step - self.decay_start) / span, 0.0, 1.0)
    cosine = self.final + 0.5 * (self.peak - self.final) * (1.0 + tf.cos(math.pi * progress))
    return tf.where(step < self.decay_start, warm, tf.minimum(warm, cosine))

  def get_config(self):
    return dict(peak=self.peak, final=self.final, warmup=self.warmup,
                decay_start=self.decay_start, total=self.total)


def make_strategy(name: str) -> tf.distribute.Strategy:
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"unknown strategy {name!r}; choose default, mirrored or multi_worker.")


def _is_chief(strategy) -> bool:
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  return resolver.task_type == "chief" or (resolver.task_type == "worker" and
                                           resolver.task_id == 0)


def _checkpoint_dir(work_dir: str, strategy) -> str:
  if _is_chief(strategy):
    return os.path.join(work_dir, "checkpoints")
  # Non-chief workers must write somewhere too (MultiWorkerMirroredStrategy saves collectively).
  return os.path.join(work_dir, "worker_tmp", str(strategy.cluster_resolver.task_id))


def _check_config(work_dir: str, model_config: ModelConfig) -> None:
  path = os.path.join(work_dir, "model_config.json")
  if os.path.exists(path):
    with open(path) as f:
      saved = ModelConfig.from_json(f.read())
    if saved != model_config:
      raise ValueError(
          f"{work_dir} holds a model with a different configuration:\n  saved: {saved}\n"
          f"  given: {model_config}\nUse another work_dir or the saved configuration.")
  else:
    # Workers of a multi-worker run share work_dir and may get here at the same moment: each
    # writes its own temporary file and renames it (same content, the last rename wins).
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
      f.write(model_config.to_json())
    os.replace(tmp, path)


def _warm_start(model: FlowCompressionModel, saved_model: str) -> None:
  """Copies an exported model's weights into a fresh run's `model` (see `TrainConfig.init_from`)."""
  try:
    export.read_saved_weights(model, saved_model)
  except ValueError as error:
    raise ValueError(f"init_from: {error}") from error
  print(f"Initialised from the exported model {saved_model}.", flush=True)


def load_model_config(work_dir: str) -> ModelConfig:
  with open(os.path.join(work_dir, "model_config.json")) as f:
    return ModelConfig.from_json(f.read())


def restore_model(work_dir: str) -> FlowCompressionModel:
  """Rebuilds the model of a work dir and restores its latest checkpoint (for export/eval)."""
  model = FlowCompressionModel(load_model_config(work_dir))
  model.ensure_built()
  latest = tf.train.latest_checkpoint(os.path.join(work_dir, "checkpoints"))
  if latest is None:
    raise FileNotFoundError(f"no checkpoint in {work_dir}/checkpoints.")
  tf.train.Checkpoint(model=model).restore(latest).expect_partial().assert_existing_objects_matched()
  if not bool(model.initialized.numpy()):
    raise ValueError(f"checkpoint {latest} holds an uninitialised model.")
  return model


def validate(model: FlowCompressionModel, images, qualities=VALIDATION_QUALITIES):
  """Real bitstreams: mean bpp (from byte counts) and PSNR per quality on `images`."""
  codec = FlowCodec.from_model(model)
  results = {}
  for quality in qualities:
    bpps, psnrs = [], []
    for image in images:
      data_bytes = codec.compress(image, quality)
      decoded = codec.decompress(data_bytes)
      bpps.append(metrics.bits_per_pixel(len(data_bytes), *image.shape[:2]))
      psnrs.append(metrics.psnr(image, decoded))
    results[quality] = (float(np.mean(bpps)), float(np.mean(psnrs)))
  return results


class _CheckpointAndValidate(tf.keras.callbacks.Callback):
  """Saves a checkpoint at every epoch end (= every `checkpoint_every` steps), validates, logs."""

  def __init__(self, manager, schedule, train_config: TrainConfig, validation_images, writer,
               is_chief):
    super().__init__()
    self.schedule = schedule
    self.manager = manager
    self.config = train_config
    self.validation_images = validation_images
    self.writer = writer
    self.is_chief = is_chief
    self.last_time = time.time()
    self.last_step = None

  def on_epoch_end(self, epoch, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    logs = logs or {}
    if any(not math.isfinite(float(v)) for v in logs.values()):
      print(f"step {step}: non-finite loss, checkpoint not saved.", flush=True)
      return
    self.manager.save(checkpoint_number=step)
    now = time.time()
    rate = ""
    if self.last_step is not None and step > self.last_step:
      rate = f" {(step - self.last_step) / (now - self.last_time):.2f} steps/s"
    self.last_time, self.last_step = now, step
    learning_rate = float(self.schedule(step))
    print(f"step {step}: " + " ".join(f"{k}={v:.4g}" for k, v in logs.items()) +
          f" lr={learning_rate:.3g}{rate}", flush=True)
    if not self.is_chief or self.writer is None:
      return
    with self.writer.as_default(step=step):
      tf.summary.scalar("learning_rate", learning_rate)
      for key, value in logs.items():
        tf.summary.scalar(f"train/{key}", value)
      if self.validation_images and step % self.config.validate_every < self.config.checkpoint_every:
        results = validate(self.model, self.validation_images)
        for quality, (bpp, psnr) in results.items():
          tf.summary.scalar(f"validation/bpp_q{quality}", bpp)
          tf.summary.scalar(f"validation/psnr_q{quality}", psnr)
        print("  validation (real bitstreams): " + ", ".join(
            f"q={q}: {b:.3f} bpp {p:.2f} dB" for q, (b, p) in results.items()), flush=True)
        sample = self.model.rate_distortion(self.validation_images[0][None, :256, :256], 0.3,
                                            training=False)["x_hat"]
        tf.summary.image("reconstruction_q0.3", tf.cast(tf.clip_by_value(sample, 0, 255),
                                                          tf.uint8))
      self.writer.flush()


def train(model_config: ModelConfig, train_config: TrainConfig) -> FlowCompressionModel:
  """Trains (or resumes training) up to `train_config.steps`; returns the model."""
  if train_config.patch_size % model_config.block_size:
    raise ValueError(f"patch_size {train_config.patch_size} must be a multiple of "
                     f"{model_config.block_size} (2**num_levels).")
  strategy = make_strategy(train_config.strategy)
  is_chief = _is_chief(strategy)
  os.makedirs(train_config.work_dir, exist_ok=True)
  _check_config(train_config.work_dir, model_config)
  tf.random.set_seed(train_config.seed)

  with strategy.scope():
    model = FlowCompressionModel(model_config, (train_config.quality_min,
                                                train_config.quality_max),
                                 loss_scale=train_config.loss_scale,
                                 quality_power=train_config.quality_power)
    schedule = WarmupCosineSchedule(train_config.learning_rate, train_config.final_learning_rate,
                                    train_config.warmup_steps, train_config.decay_start,
                                    train_config.steps)
    optimizer = tf.keras.optimizers.Adam(learning_rate=schedule)
    model.compile(optimizer=optimizer)
    model.ensure_built()
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(
        checkpoint, _checkpoint_dir(train_config.work_dir, strategy), max_to_keep=3)
    if manager.latest_checkpoint:
      checkpoint.restore(manager.latest_checkpoint)
      print(f"Resumed from {manager.latest_checkpoint}", flush=True)
    elif train_config.init_from:
      _warm_start(model, train_config.init_from)
    # A resumed run must not replay the data order and qualities of the first run.
    start_step = int(optimizer.iterations.numpy())
    tf.random.set_seed(train_config.seed + start_step)
    dataset = data.training_dataset(
        train_config.train_dir, os.path.join(train_config.work_dir, "tfds"),
        train_config.patch_size, train_config.batch_size, seed=train_config.seed + start_step)
    if not bool(model.initialized.numpy()):
      first_batch = next(iter(dataset))
      model.initialize(first_batch)
      print("Initialised ActNorm and gains from a training batch.", flush=True)

  if start_step >= train_config.steps:
    print(f"Already at step {start_step} >= {train_config.steps}; nothing to do.")
    return model
  validation_images = []
  if train_config.validation_dir and os.path.isdir(train_config.validation_dir):
    validation_images = data.load_folder(train_config.validation_dir,
                                         train_config.validation_images)
  writer = tf.summary.create_file_writer(os.path.join(train_config.work_dir, "logs")) \
      if is_chief else None
  every = train_config.checkpoint_every
  callbacks = [
      tf.keras.callbacks.TerminateOnNaN(),
      _CheckpointAndValidate(manager, schedule, train_config, validation_images, writer, is_chief),
  ]
  model.fit(dataset, steps_per_epoch=every, epochs=math.ceil(train_config.steps / every),
            initial_epoch=start_step // every, callbacks=callbacks, verbose=0)
  return model
