"""SavedModel export and loading.

`export_saved_model(codec, path)` writes a self-contained SavedModel: the flow, the hyperprior,
the range-coding tables, the model config (JSON) and the fingerprint are all variables of it.
Signatures:

  compress:          image uint8 [H, W, 3], quality float32 [] -> {"bitstream_bytes": string []}
  decompress:        bitstream string [] -> {"image": uint8 [H, W, 3]}
  serving_default:   same as compress
  compress_encoded:  encoded_image string [] (PNG/JPEG/BMP/GIF bytes), quality float32 []
                     -> {"bitstream_bytes": string []}
  decompress_png:    bitstream string [] -> {"png_bytes": string []}
  compress_stable:   image, quality, max_iterations int32 [] -> {"bitstream_bytes",
                     "iterations", "converged"} (re-encoding fixed point, see codec.py)
  latent_symbols:    image, quality -> {"symbols": int32 [h, w, C]} (diagnostics)

Output names ending in `_bytes` follow TF Serving's REST convention: such outputs are returned
base64-encoded (`{"b64": ...}`) in JSON. Loading needs TFC's op library registered (`import tensorflow_compression`), nothing else of
tfflowcomp. `load(path)` returns a `SavedCodec` with the same Python API as `codec.FlowCodec`.

Serving layout: `savedmodels/<name>/<version>/` is a SavedModel, `savedmodels/<name>/model_info.json`
records the fingerprint and config so tools can find a model by the fingerprint in a file.
"""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
import tensorflow_compression  # pylint: disable=unused-import  (registers the range coder ops)

from tfflowcomp import bitstream
from tfflowcomp.codec import CodecApi, FlowCodec
from tfflowcomp.config import ModelConfig
from tfflowcomp.model import FlowCompressionModel

MODEL_INFO = "model_info.json"


def export_saved_model(codec: FlowCodec, path: str) -> None:
  """Writes `codec` as a SavedModel at `path` (atomically: to a temp dir, then renamed)."""
  codec._check_tables()  # pylint: disable=protected-access
  if os.path.exists(path):
    raise FileExistsError(f"{path} exists; remove it or choose another version.")
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
  try:
    signatures = {
        "compress": codec.compress_graph,
        "decompress": codec.decompress_graph,
        "serving_default": codec.compress_graph,
        "compress_encoded": codec.compress_encoded_graph,
        "decompress_png": codec.decompress_png_graph,
        "compress_stable": codec.compress_stable_graph,
        "latent_symbols": codec.latent_symbols_graph,
    }
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # Keras warns about every sub-layer it does not serialise itself.
    try:
      tf.saved_model.save(codec, tmp, signatures=signatures)
    finally:
      logger.setLevel(level)
    os.replace(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def write_model_info(model_dir: str, codec: FlowCodec, extra: Optional[Dict] = None) -> None:
  """Writes `<model_dir>/model_info.json` (fingerprint, config, the encoder's choices baked into
  the export, and anything in `extra`)."""
  info = dict(fingerprint=codec.fingerprint.hex(), config=json.loads(codec.config.to_json()),
              encoder=dict(distortion_weight=codec.distortion_weight,
                           side_iterations=codec.side_iterations))
  info.update(extra or {})
  with open(os.path.join(model_dir, MODEL_INFO), "w") as f:
    json.dump(info, f, indent=2, sort_keys=True)
    f.write("\n")


class SavedCodec(CodecApi):
  """A codec loaded from a SavedModel (through its signatures)."""

  def __init__(self, path: str):
    self.path = path
    self.module = tf.saved_model.load(path)
    self.fingerprint = self.module.fingerprint_var.numpy()
    self.config = ModelConfig.from_json(self.module.config_json.numpy().decode())
    self._compress_fn = self.module.signatures["compress"]
    self._decompress_fn = self.module.signatures["decompress"]

  def _run_compress(self, image, quality, stable_iterations=0):
    image = tf.constant(image, tf.uint8)
    quality = tf.constant(quality, tf.float32)
    if stable_iterations:
      result = self.module.signatures["compress_stable"](
          image=image, quality=quality, max_iterations=tf.constant(stable_iterations))
      return result["bitstream_bytes"].numpy(), bool(result["converged"])
    return self._compress_fn(image=image, quality=quality)["bitstream_bytes"].numpy(), True

  def latent_symbols(self, image, quality: float) -> np.ndarray:
    """int32 `[h, w, C]` quantized latent of a uint8 image (diagnostics)."""
    return self.module.signatures["latent_symbols"](
        image=tf.constant(image, tf.uint8),
        quality=tf.constant(quality, tf.float32))["symbols"].numpy()

  def _run_decompress(self, data):
    return self._decompress_fn(bitstream=tf.constant(data))["image"].numpy()


def saved_model_config(path: str) -> ModelConfig:
  """The `ModelConfig` of an exported SavedModel (or serving-layout folder), read from its
  variables without loading the graph."""
  reader = tf.train.load_checkpoint(_variables_prefix(path))
  return ModelConfig.from_json(
      reader.get_tensor("config_json/.ATTRIBUTES/VARIABLE_VALUE").decode())


def read_saved_weights(model: FlowCompressionModel, path: str) -> None:
  """Overwrites the variables of a built `model` with those of the export at `path`.

  Goes through `restore_model` (which checks the export's fingerprint), so that a compiled
  `model`, which also tracks optimizer state that an export does not hold, can be warm-started.
  A `model` with `ModelConfig.side_gains` may read an export without them: its side gains keep
  their initial value (zero log-gain, so the warm-started model codes exactly like the export).
  Raises ValueError if the export's `ModelConfig` differs from `model.config` otherwise.
  """
  saved = restore_model(path)
  adds_side_gains = model.config.side_gains and not saved.config.side_gains
  comparable = dataclasses.replace(model.config, side_gains=False) if adds_side_gains \
      else model.config
  if saved.config != comparable:
    raise ValueError(f"{path} has a different model configuration:\n  saved: {saved.config}\n"
                     f"  given: {model.config}")
  new_variables = {id(model.side_log_gain_low), id(model.side_log_gain_high)} \
      if adds_side_gains else set()
  targets = [v for v in model.variables if id(v) not in new_variables]
  for target, value in zip(targets, saved.variables, strict=True):
    if target.shape != value.shape:
      raise ValueError(f"{path}: variable {value.name} {value.shape} does not fit "
                       f"{target.name} {target.shape}.")
    target.assign(value)


def restore_model(path: str) -> FlowCompressionModel:
  """The trainable Keras model inside an exported SavedModel (for studies and fine-tuning).

  `path`: a SavedModel or a serving-layout model folder. `FlowCodec.from_model(model)` then gives
  a live codec with the same fingerprint (checked here) whose encoder settings can be changed.
  """
  model = FlowCompressionModel(saved_model_config(path))
  model.ensure_built()
  variables = _variables_prefix(path)
  tf.train.Checkpoint(model=model).read(variables).expect_partial() \
      .assert_existing_objects_matched()
  fingerprint = tf.train.load_checkpoint(variables).get_tensor(
      "fingerprint_var/.ATTRIBUTES/VARIABLE_VALUE")
  rebuilt = FlowCodec.from_model(model).fingerprint
  if rebuilt != fingerprint:
    raise ValueError(f"restored model {rebuilt.hex()} differs from {path} ({fingerprint.hex()}).")
  return model


def _variables_prefix(path: str) -> str:
  return os.path.join(latest_version_dir(path), "variables", "variables")


def latest_version_dir(model_dir: str) -> str:
  """`model_dir` itself if it is a SavedModel, else its highest numeric version subfolder."""
  if os.path.exists(os.path.join(model_dir, "saved_model.pb")):
    return model_dir
  versions = [d for d in os.listdir(model_dir) if d.isdigit() and
              os.path.exists(os.path.join(model_dir, d, "saved_model.pb"))] \
      if os.path.isdir(model_dir) else []
  if not versions:
    raise FileNotFoundError(f"no SavedModel in {model_dir} (nor in numbered versions below it).")
  return os.path.join(model_dir, max(versions, key=int))


def load(path: str) -> SavedCodec:
  """Loads a SavedModel folder, or the latest version of a serving-layout model folder."""
  return SavedCodec(latest_version_dir(path))


def find_model_by_fingerprint(fingerprint: bytes, search_dirs) -> Optional[str]:
  """Path of the model folder (under any of `search_dirs`) whose model_info has `fingerprint`."""
  for root in search_dirs:
    if not os.path.isdir(root):
      continue
    for name in sorted(os.listdir(root)):
      info_path = os.path.join(root, name, MODEL_INFO)
      if os.path.exists(info_path):
        with open(info_path) as f:
          if json.load(f).get("fingerprint") == fingerprint.hex():
            return os.path.join(root, name)
  return None


def fingerprint_of_file(data: bytes) -> bytes:
  """The model fingerprint written in a container (header only; raises BitstreamError)."""
  return bitstream.unpack(data).fingerprint
