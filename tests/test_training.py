"""Trainer, TFDS input pipeline and the training binary, on a tiny model and tiny images."""

import dataclasses
import math
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tiny
from tfflowcomp import data
from tfflowcomp import export
from tfflowcomp import model as model_lib
from tfflowcomp import trainer
from tfflowcomp.config import TrainConfig


@pytest.fixture()
def image_folder(tmp_path):
  folder = tmp_path / "images"
  folder.mkdir()
  for i in range(3):
    Image.fromarray(tiny.smooth_image(40 + i, 48, seed=i)).save(folder / f"{i}.png")
  Image.fromarray(tiny.smooth_image(8, 8)).save(folder / "small.png")  # Skipped: < patch.
  (folder / "notes.txt").write_text("ignored")
  return folder


def test_tfds_builder_reads_a_local_folder(image_folder, tmp_path):
  builder = data.prepare_folder(str(image_folder), str(tmp_path / "tfds"))
  examples = list(builder.as_dataset(split="train").as_numpy_iterator())
  assert len(examples) == 4
  assert all(ex["image"].dtype == np.uint8 and ex["image"].shape[-1] == 3 for ex in examples)


def test_training_batches_are_random_patches(image_folder, tmp_path):
  dataset = data.training_dataset(str(image_folder), str(tmp_path / "tfds"), 16, 4)
  batch = next(iter(dataset))
  assert batch.shape == (4, 16, 16, 3) and batch.dtype == tf.uint8


def test_training_batches_are_reproducible_for_a_seed(image_folder, tmp_path):
  """Multi-worker training initialises every worker from its own first batch: they must match."""
  def first_batches(seed):
    dataset = data.training_dataset(str(image_folder), str(tmp_path / "tfds"), 16, 4, seed=seed)
    return [b.numpy() for b, _ in zip(dataset, range(3))]
  a, b, c = first_batches(1), first_batches(1), first_batches(2)
  assert all(np.array_equal(x, y) for x, y in zip(a, b))
  assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def _config(folder, work_dir, steps, **kwargs):
  return TrainConfig(train_dir=str(folder), work_dir=str(work_dir), patch_size=16,
                     batch_size=2, steps=steps, warmup_steps=1, decay_start=2,
                     checkpoint_every=2, validate_every=2, validation_dir=str(folder),
                     validation_images=1, **kwargs)


@pytest.mark.slow
def test_training_runs_checkpoints_and_resumes(image_folder, tmp_path, capsys):
  work_dir = tmp_path / "run"
  model = trainer.train(tiny.TINY_CONFIG, _config(image_folder, work_dir, 4))
  assert int(model.optimizer.iterations.numpy()) == 4
  out = capsys.readouterr().out
  assert "validation (real bitstreams)" in out
  assert tf.train.latest_checkpoint(str(work_dir / "checkpoints")).endswith("-4")
  resumed = trainer.train(tiny.TINY_CONFIG, _config(image_folder, work_dir, 6))
  out = capsys.readouterr().out
  assert "Resumed from" in out and "Initialised" not in out
  assert int(resumed.optimizer.iterations.numpy()) == 6
  restored = trainer.restore_model(str(work_dir))
  for a, b in zip(restored.trainable_variables, resumed.trainable_variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_resume_refuses_a_different_model_config(image_folder, tmp_path):
  work_dir = tmp_path / "run"
  work_dir.mkdir()
  (work_dir / "model_config.json").write_text(tiny.TINY_CONFIG.to_json())
  other = tiny.TINY_CONFIG.__class__(num_levels=1, coupling_width=4)
  with pytest.raises(ValueError, match="different configuration"):
    trainer.train(other, _config(image_folder, work_dir, 2))


def test_a_new_run_can_start_from_an_exported_model(image_folder, tmp_path, capsys):
  config = _config(image_folder, tmp_path / "run", 0, init_from=tiny.TINY_MODEL_DIR)
  started = trainer.train(tiny.TINY_CONFIG, config)
  out = capsys.readouterr().out
  assert "Initialised from the exported model" in out and "ActNorm" not in out
  shipped = export.restore_model(tiny.TINY_MODEL_DIR)
  assert len(started.variables) == len(shipped.variables)
  for a, b in zip(started.variables, shipped.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_starting_from_an_exported_model_refuses_another_config(image_folder, tmp_path):
  other = tiny.TINY_CONFIG.__class__(num_levels=1, coupling_width=4)
  config = _config(image_folder, tmp_path / "run", 0, init_from=tiny.TINY_MODEL_DIR)
  with pytest.raises(ValueError, match="different model configuration"):
    trainer.train(other, config)


def test_learning_rate_schedule_warms_up_and_decays():
  schedule = trainer.WarmupCosineSchedule(1e-3, 1e-5, warmup=10, decay_start=50, total=100)
  values = [float(schedule(s)) for s in (0, 9, 30, 50, 75, 100, 150)]
  assert values[0] < values[1] == pytest.approx(1e-3)
  assert values[2] == pytest.approx(1e-3) and values[3] == pytest.approx(1e-3)
  assert 1e-5 < values[4] < 1e-3
  assert values[5] == pytest.approx(1e-5) and values[6] == pytest.approx(1e-5)


@pytest.mark.parametrize("kwargs,message", [
    (dict(strategy="tpu"), "strategy"), (dict(patch_size=4), "patch_size"),
    (dict(quality_min=0.8, quality_max=0.2), "quality"), (dict(loss_scale="sqrt"), "loss_scale"),
    (dict(quality_power=0.0), "quality_power"),
])
def test_train_config_validates(kwargs, message):
  with pytest.raises(ValueError, match=message):
    TrainConfig(train_dir="x", work_dir="y", **kwargs)


def test_quality_power_puts_more_batches_at_low_qualities_within_the_range():
  tf.random.set_seed(3)
  uniform = model_lib.FlowCompressionModel(tiny.TINY_CONFIG, (0.2, 0.8))
  low_heavy = model_lib.FlowCompressionModel(tiny.TINY_CONFIG, (0.2, 0.8), quality_power=2.0)
  draws = {name: np.array([float(m._sample_quality()) for _ in range(2000)])  # pylint: disable=protected-access
           for name, m in (("uniform", uniform), ("low_heavy", low_heavy))}
  for values in draws.values():
    assert values.min() >= 0.2 and values.max() < 0.8
  # E[u] = 1/2, E[u**2] = 1/3 of the range above 0.2.
  assert np.mean(draws["uniform"]) == pytest.approx(0.5, abs=0.02)
  assert np.mean(draws["low_heavy"]) == pytest.approx(0.4, abs=0.02)


def test_log_loss_scale_weighs_each_batch_by_the_inverse_of_its_loss():
  """"log": gradient = LOG_LOSS_GRADIENT_SCALE / loss * gradient of the loss, at every quality."""
  tiny_model = tiny.tiny_model(perturb=0.01)
  images = np.stack([tiny.smooth_image(16, 16, seed=s) for s in range(2)])
  for quality in (0.1, 0.9):
    gradients = {}
    for scale in ("linear", "log"):
      with tf.GradientTape() as tape:
        loss = tiny_model.rate_distortion(images, quality, training=False)["loss"]
        objective = model_lib.training_objective(loss, scale)
      gradients[scale] = tape.gradient(objective, tiny_model.trainable_variables)
    weight = model_lib.LOG_LOSS_GRADIENT_SCALE / float(loss)
    for linear, log in zip(gradients["linear"], gradients["log"]):
      if linear is not None:
        expected = weight * linear.numpy()
        np.testing.assert_allclose(log.numpy(), expected, rtol=1e-3,
                                   atol=1e-5 * np.abs(expected).max())
  with pytest.raises(ValueError, match="linear, log"):
    model_lib.FlowCompressionModel(tiny.TINY_CONFIG, loss_scale="sqrt")


def test_train_step_with_log_loss_scale_updates_the_weights():
  tiny_model = tiny.tiny_model()
  tiny_model.loss_scale = "log"
  tiny_model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
  before = [v.numpy().copy() for v in tiny_model.trainable_variables]
  images = tf.constant(np.stack([tiny.smooth_image(16, 16, seed=s) for s in range(2)]))
  metrics = tiny_model.train_step(images)
  assert np.isfinite(float(metrics["loss"]))
  after = tiny_model.trainable_variables
  assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, after))


def test_training_binary_rejects_bad_flags(capsys):
  sys.path.insert(0, os.path.join(tiny.TESTDATA, "..", "..", "tools"))
  import subprocess  # pylint: disable=g-import-not-at-top
  tool = os.path.join(tiny.TESTDATA, "..", "..", "tools", "train.py")
  result = subprocess.run([sys.executable, tool, "--strategy=tpu"], capture_output=True,
                          text=True, timeout=120)
  assert result.returncode != 0
  assert "default, mirrored, multi_worker" in result.stderr or "one of" in result.stderr
  result = subprocess.run([sys.executable, tool, f"--init_from={tiny.TINY_MODEL_DIR}",
                           "--num_levels=1"], capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert "flags disagree with the --init_from model: --num_levels=1" in result.stderr
  result = subprocess.run([sys.executable, tool, "--init_from=/nonexistent"],
                          capture_output=True, text=True, timeout=120)
  assert result.returncode != 0 and "is not an exported tfflowcomp model" in result.stderr


def test_training_binary_adds_side_gains_to_an_init_from_model(image_folder, tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  tool = os.path.join(tiny.TESTDATA, "..", "..", "tools", "train.py")
  work_dir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, tool, f"--init_from={tiny.TINY_MODEL_DIR}", "--side_gains",
       f"--train_dir={image_folder}", f"--work_dir={work_dir}", "--steps=0", "--patch_size=16"],
      capture_output=True, text=True, timeout=300,
      env=dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Initialised from the exported model" in result.stdout
  saved = trainer.load_model_config(str(work_dir))
  assert saved == dataclasses.replace(tiny.TINY_CONFIG, side_gains=True)


@pytest.mark.slow
def test_two_workers_train_in_sync_with_multi_worker_mirrored_strategy(tmp_path):
  sys.path.insert(0, os.path.join(tiny.TESTDATA, "..", "..", "tools"))
  import multiworker_smoke  # pylint: disable=g-import-not-at-top
  assert multiworker_smoke.main(["--steps", "2", "--work_dir", str(tmp_path)]) == 0


@pytest.mark.slow
def test_training_killed_with_sigkill_resumes_from_its_last_checkpoint(image_folder, tmp_path):
  """kill -9 in the middle of training: the next run continues from the last checkpoint."""
  import signal  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  tool = os.path.join(tiny.TESTDATA, "..", "..", "tools", "train.py")
  work_dir = tmp_path / "run"
  flags = [f"--train_dir={image_folder}", f"--validation_dir={image_folder}",
           f"--work_dir={work_dir}", "--num_levels=2", "--coupling_width=4", "--hyper_width=8",
           "--hyper_channels=4", "--patch_size=16", "--batch_size=2", "--warmup_steps=1",
           "--decay_start=2", "--checkpoint_every=2", "--validate_every=100000",
           "--validation_images=1"]
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.Popen([sys.executable, tool, "--steps=100000"] + flags, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  checkpoints = work_dir / "checkpoints"
  deadline = time.time() + 240
  try:
    while time.time() < deadline:
      latest = tf.train.latest_checkpoint(str(checkpoints)) if checkpoints.exists() else None
      if latest and int(latest.rsplit("-", 1)[1]) >= 6:
        break
      time.sleep(0.5)
    else:
      pytest.fail("training wrote no checkpoint within 240 s")
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  assert process.returncode == -signal.SIGKILL
  killed_at = int(tf.train.latest_checkpoint(str(checkpoints)).rsplit("-", 1)[1])
  result = subprocess.run([sys.executable, tool, f"--steps={killed_at + 2}"] + flags, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Resumed from" in result.stdout and "Initialised" not in result.stdout
  # The step count continues where the killed run's last checkpoint left it, with a finite loss.
  line = next(l for l in result.stdout.splitlines() if l.startswith(f"step {killed_at + 2}:"))
  assert math.isfinite(float(line.split("loss=")[1].split()[0]))
  assert tf.train.latest_checkpoint(str(checkpoints)).endswith(f"-{killed_at + 2}")
  restored = trainer.restore_model(str(work_dir))
  assert all(np.all(np.isfinite(v.numpy())) for v in restored.trainable_variables)
