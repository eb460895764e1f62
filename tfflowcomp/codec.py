"""The codec: image <-> container bytes, with the real range coder.

Workflow (in order):
  1. Train a `model.FlowCompressionModel` (or restore one from a checkpoint).
  2. `codec = FlowCodec.from_model(model)`: the freeze step. It builds the side information's
     range-coding tables from the trained prior and computes the model fingerprint. A `FlowCodec`
     whose tables were not built refuses to code (`entropy.TablesNotBuiltError`).
  3. Sender: `codec.compress(image_uint8, quality) -> bytes`.
  4. Receiver: `codec.decompress(bytes) -> image_uint8`.
  5. `export.export_saved_model(codec, path)` writes the same graph functions as a SavedModel;
     `export.load(path)` gives an object with the same Python API.

`compress_graph` and `decompress_graph` are the `tf.function`s with full input signatures that
define the export contract:
  compress_graph(image: uint8 [H, W, 3], quality: float32 []) -> {"bitstream_bytes": string []}
  decompress_graph(bitstream: string []) -> {"image": uint8 [H, W, 3]}
They are deterministic: no noise and no data-dependent initialisation is involved.
"""

import hashlib
from typing import Dict, NamedTuple, Tuple

import numpy as np
import tensorflow as tf

from tfflowcomp import bitstream
from tfflowcomp import entropy
from tfflowcomp import graph_bitstream
from tfflowcomp import model as model_lib
from tfflowcomp import quality as quality_lib
from tfflowcomp import quantization
from tfflowcomp import range_coding
from tfflowcomp import side_refinement
from tfflowcomp import stable_search
from tfflowcomp.config import ModelConfig
from tfflowcomp.flow import integer
from tfflowcomp.model import FlowCompressionModel, to_model_units, to_pixels

_SIDE, _LATENT = 0, 1
# Largest image the Python API decodes unless told otherwise (8192 x 8192).
DEFAULT_MAX_DECODE_PIXELS = 8192 * 8192
# Images with a side longer than this are coded in independent tiles of at most this side, so
# that encoder and decoder memory stay bounded (~1.5 GB for the shipped model on the CPU).
AUTO_TILE_SIDE = 2048


def choose_tile_side(height: int, width: int, tile_side=None) -> int:
  """Tile side for an image (0: untiled).

  `tile_side=None` tiles only images with a side over `AUTO_TILE_SIDE`, in the fewest tiles of
  at most that side, as equal as the format's multiple allows; `0` never tiles; any other value
  is used as given (it must be a multiple of `bitstream.TILE_MULTIPLE`, at least
  `bitstream.MIN_TILE_SIDE`).
  """
  if tile_side is None:
    if max(height, width) <= AUTO_TILE_SIDE:
      return 0
    rows, cols = -(-height // AUTO_TILE_SIDE), -(-width // AUTO_TILE_SIDE)
    side = max(-(-height // rows), -(-width // cols))
    return -(-side // bitstream.TILE_MULTIPLE) * bitstream.TILE_MULTIPLE
  tile_side = int(tile_side)
  if tile_side == 0:
    return 0
  bitstream.check_tile_side(tile_side)
  return 0 if tile_side >= max(height, width) else tile_side


def pad_to_multiple(image, block: int):
  """Edge-replicates `[H, W, C]` to the next multiple of `block` in H and W (any H, W >= 1)."""
  shape = tf.shape(image)
  padded_h = (shape[0] + block - 1) // block * block
  padded_w = (shape[1] + block - 1) // block * block
  rows = tf.minimum(tf.range(padded_h), shape[0] - 1)
  cols = tf.minimum(tf.range(padded_w), shape[1] - 1)
  return tf.gather(tf.gather(image, rows, axis=0), cols, axis=1)


# Smallest distance (in index or symbol units) the encoder allows between a table choice's
# unrounded float64 value and its rounding boundary, and how often it retries to get there.
BOUNDARY_MARGIN = 1e-9
MAX_GUARD_ROUNDS = 16
# Float32 slack (in symbols) of the integer flow's "decoded residual" test in `_choose_symbols`.
_INTEGER_REACH_MARGIN = 1e-4


def _distance_to_rounding_boundary(values):
  """|values - (k + 0.5)| for the nearest k: float64, same shape."""
  return tf.abs(values - tf.floor(values) - 0.5)


class PerUnit(NamedTuple):
  """Symbols per unit at one quality, float64 (they enter the table indexes).

  latent: `[C]`, latent symbols per latent unit (`model.symbols_per_latent_unit`).
  side: `[Cz]`, side symbols per unit of the hyper analysis's output
    (`model.side_symbols_per_unit`; all ones for models without `ModelConfig.side_gains`).
  """
  latent: tf.Tensor
  side: tf.Tensor


def _side_shape(latent_hw):
  """Spatial shape of z for a latent of spatial shape `latent_hw` (two 'same' stride-2 convs)."""
  return (latent_hw + 3) // 4


class CodecApi:
  """Python API shared by live (`FlowCodec`) and loaded (`export.SavedCodec`) codecs.

  Subclasses provide `fingerprint` (bytes), `config` (ModelConfig), `_run_compress(image,
  quality, stable_iterations) -> (bytes, converged)` and `_run_decompress(data) -> image` (they
  call the graph functions).
  """

  fingerprint: bytes
  config: ModelConfig

  def compress(self, image, quality: float, stable_iterations: int = 0,
               tile_side=None) -> bytes:
    """uint8 `[H, W, 3]` array and quality in [0, 1] -> container bytes. Deterministic.

    With `stable_iterations > 0`, searches (up to that many decode/re-analyse rounds) for a
    re-encoding fixed point or cycle, so that `compress(decompress(data)) == data` (see
    `compress_stable`, which also says whether it found one). `tile_side`: see
    `choose_tile_side` (default: tile only images with a side over `AUTO_TILE_SIDE`).
    """
    return self._compress(image, quality, stable_iterations, tile_side)[0]

  def compress_stable(self, image, quality: float,
                      max_iterations: int = stable_search.DEFAULT_ITERATIONS,
                      tile_side=None) -> Tuple[bytes, bool]:
    """Re-encoding-proof compression: `(container bytes, converged)`.

    `converged` is True when every tile's encoder found a re-encoding fixed point or cycle
    (`FlowCodec.compress_stable_graph`; rounds needed: see `stable_search`), so that compressing
    the decoded image with the same settings gives these bytes again; otherwise the tiles
    without one are plain encodings.
    """
    if max_iterations < 1:
      raise ValueError("max_iterations must be >= 1.")
    return self._compress(image, quality, max_iterations, tile_side)

  def _compress(self, image, quality, stable_iterations, tile_side) -> Tuple[bytes, bool]:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
      raise ValueError(
          f"image must be a uint8 array of shape [H, W, 3], got {image.dtype} {image.shape}.")
    bitstream.check_image_shape(image.shape[0], image.shape[1])
    quality = quality_lib.check_quality(quality)
    if stable_iterations < 0:
      raise ValueError("stable_iterations must be >= 0.")
    try:
      side = choose_tile_side(image.shape[0], image.shape[1], tile_side)
    except bitstream.BitstreamError as error:
      raise ValueError(str(error)) from None
    if not side:
      return self._run_compress(image, quality, int(stable_iterations))
    results = [self._run_compress(
        np.ascontiguousarray(image[top:top + h, left:left + w]), quality,
        int(stable_iterations)) for top, left, h, w in bitstream.tile_grid(
            image.shape[0], image.shape[1], side)]
    tiles = [bitstream.unpack(data) for data, _ in results]
    data = bitstream.pack(bitstream.Container(
        fingerprint=self.fingerprint, height=image.shape[0], width=image.shape[1],
        quality_code=tiles[0].quality_code, tile_side=side,
        streams=tuple(s for tile in tiles for s in tile.streams)))
    return data, all(converged for _, converged in results)

  def decompress(self, data: bytes, max_pixels: int = None) -> np.ndarray:
    """Container bytes -> uint8 `[H, W, 3]`. Raises `bitstream.BitstreamError` on bad input.

    `max_pixels` (default `DEFAULT_MAX_DECODE_PIXELS`) bounds the image size a file may claim:
    a few bytes can announce a huge (e.g. flat) image, and decoding allocates for its full size.
    """
    container = bitstream.unpack(data)
    limit = DEFAULT_MAX_DECODE_PIXELS if max_pixels is None else int(max_pixels)
    if container.height * container.width > limit:
      raise bitstream.BitstreamError(
          f"the file claims a {container.width}x{container.height} image, over the decoding "
          f"limit of {limit} pixels (raise max_pixels to allow it).")
    if container.fingerprint != self.fingerprint:
      raise bitstream.BitstreamError(
          f"the file was made by model {container.fingerprint.hex()}, this is model "
          f"{self.fingerprint.hex()}.")
    if container.tile_side:
      return self._decompress_tiles(container)
    if len(container.streams) != 2:
      raise bitstream.BitstreamError(
          f"this model writes 2 streams, the file has {len(container.streams)}.")
    return self._decode_checked(bytes(data))

  def _decode_checked(self, data: bytes) -> np.ndarray:
    try:
      return self._run_decompress(data)
    except tf.errors.InvalidArgumentError as error:
      # The range decoder's sanity check: streams that do not decode to the announced shape.
      raise bitstream.BitstreamError(
          "the streams do not decode consistently with the header (corrupted or forged "
          f"file): {error.message.strip().splitlines()[0][:200]}") from None

  def _decompress_tiles(self, container: bitstream.Container) -> np.ndarray:
    """Decodes each tile as an untiled container of its own size; memory: one tile + output."""
    image = np.empty((container.height, container.width, 3), np.uint8)
    grid = bitstream.tile_grid(container.height, container.width, container.tile_side)
    for i, (top, left, h, w) in enumerate(grid):
      tile = bitstream.pack(bitstream.Container(
          fingerprint=container.fingerprint, height=h, width=w,
          quality_code=container.quality_code, streams=container.streams[2 * i:2 * i + 2]))
      image[top:top + h, left:left + w] = self._decode_checked(tile)
    return image


class FlowCodec(tf.Module, CodecApi):
  """Frozen, exportable codec built around a trained `FlowCompressionModel`.

  Encoder choices (they change which files the encoder writes, never how they decode, so they
  are not part of the fingerprint): `distortion_weight`, the rate-distortion trade-off in
  quantization (`quantization.py`; `float("inf")` = plain rounding), and `side_iterations`, the
  number of refinement steps of the side information (`side_refinement.py`; 0 = the hyper
  analysis's one-pass estimate).
  """

  def __init__(self, model: FlowCompressionModel,
               distortion_weight: float = quantization.DISTORTION_WEIGHT,
               side_iterations: int = side_refinement.DEFAULT_ITERATIONS):
    super().__init__(name="flow_codec")
    model.ensure_built()
    if side_iterations < 0:
      raise ValueError(f"side_iterations must be >= 0, got {side_iterations}.")
    self.model = model
    self.distortion_weight = float(distortion_weight)
    self.side_iterations = int(side_iterations)
    self.config = model.config
    self.side_model = None
    self.side_coder = None
    self.latent_coder = None
    self.fingerprint = b""
    self.fingerprint_var = tf.Variable(b"", trainable=False, name="fingerprint")
    self.config_json = tf.Variable(model.config.to_json(), trainable=False, name="config_json")

  # ---- The freeze step --------------------------------------------------------------------

  @classmethod
  def from_model(cls, model: FlowCompressionModel,
                 distortion_weight: float = quantization.DISTORTION_WEIGHT,
                 side_iterations: int = side_refinement.DEFAULT_ITERATIONS) -> "FlowCodec":
    """Builds the coding tables from a trained model. The model must not change afterwards."""
    codec = cls(model, distortion_weight, side_iterations)
    codec.build_tables()
    return codec

  def build_tables(self) -> None:
    cdf, cdf_offset = entropy.build_side_tables(self.model.side_prior)
    self.side_model = entropy.frozen_side_model(self.config, cdf, cdf_offset)
    self.side_coder = range_coding.BoundedRangeCoder(self.side_model, "side_coder")
    self.latent_coder = range_coding.BoundedRangeCoder(self.model.latent_model, "latent_coder")
    self.fingerprint = self._compute_fingerprint()
    self.fingerprint_var.assign(self.fingerprint)

  @property
  def tables_built(self) -> bool:
    return self.side_model is not None

  def _compute_fingerprint(self) -> bytes:
    """SHA-256 of the config and of every variable that coding uses, in tracking order.

    Variable names are left out: Keras numbers its layers per process ("conv2d_38"), so the same
    weights built after another model would otherwise get another fingerprint. Training metrics
    (running means) are left out too.
    """
    digest = hashlib.sha256(self.config.to_json().encode())
    if self.config.side_gains:  # The variables mean nothing without it.
      digest.update(f"side_log_gain_speedup={model_lib.SIDE_LOG_GAIN_SPEEDUP!r}".encode())
    metric_variables = {id(v) for metric in self.model.metrics for v in metric.variables}
    variables = [v for v in self.model.variables if id(v) not in metric_variables]
    for variable in variables + list(self.side_model.variables):
      digest.update(f"{variable.dtype.name}{variable.shape.as_list()}".encode())
      digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.digest()[:bitstream.FINGERPRINT_BYTES]

  def _check_tables(self):
    if not self.tables_built:
      raise entropy.TablesNotBuiltError(
          "range-coding tables were not built: call FlowCodec.from_model(model) or "
          "codec.build_tables() before compressing or decompressing.")

  # ---- Shared pieces of both directions -----------------------------------------------------

  def _per_unit(self, quality_code) -> PerUnit:
    """Symbols per unit of the latent and of the side information for a quality code.

    Computed in float64 because they enter the table indexes (see `_latent_distribution`).
    """
    quality = tf.cast(quality_code, tf.float64) / quality_lib.QUALITY_CODE_MAX
    return PerUnit(self.model.symbols_per_latent_unit(quality, tf.float64),
                   self.model.side_symbols_per_unit(quality, tf.float64))

  def _latent_distribution(self, z_hat, latent_hw, per_unit):
    """Table indexes and integer locations of the latent symbols, from `z_hat`.

    These decide the probability tables, so sender and receiver must compute them identically.
    They run on the CPU (never on a GPU, where TF32 or other kernels could differ) in float64,
    and `boundary_distance` lets the encoder keep every rounded value far from its rounding
    boundary (`_guarded_side_information`), so ~1e-15 relative differences between platforms
    cannot change a rounding.

    Args:
      z_hat: float32 `[1, hz, wz, Cz]`, integer-valued side information (side symbols).
      latent_hw: int32 `[2]`.
      per_unit: `PerUnit` from `_per_unit`.

    Returns:
      `(indexes, loc, boundary_distance)`: int32 and integer-valued float32 `[1, h, w, C]` (loc
      in symbols), and float64 `[1, h, w, C]`: the smaller distance of the index's and the
      location's unrounded value to a rounding boundary (k + 0.5).
    """
    with tf.device("/cpu:0"):
      loc, log_scale = self.model.hyper_synthesis.call_float64(
          tf.cast(z_hat, tf.float64) / per_unit.side, latent_hw)
      index = entropy.scale_indexes(log_scale + tf.math.log(per_unit.latent), self.config)
      location = loc * per_unit.latent
      distance = tf.minimum(_distance_to_rounding_boundary(index),
                            _distance_to_rounding_boundary(location))
      return (tf.cast(tf.round(index), tf.int32), tf.cast(tf.round(location), tf.float32),
              distance)

  def _guarded_side_information(self, z, latent_hw, per_unit):
    """Encoder: `z_hat` and the latent's tables, with no table choice near a rounding boundary.

    If some index or location lies within `BOUNDARY_MARGIN` of a rounding boundary, a decoder on
    another platform could round it the other way and decode garbage. The encoder then changes
    the side information (adds 1 to one symbol of `z_hat` above the first such position, in a
    different channel each round) and recomputes, up to `MAX_GUARD_ROUNDS` times. In float64 a
    value falls that close with probability ~4e-9 per value, so this almost never runs.

    Args:
      z: float32 `[1, hz, wz, Cz]`, unrounded side information in side symbols.
      latent_hw: int32 `[2]`.
      per_unit: `PerUnit` from `_per_unit`.

    Returns:
      `(z_hat, indexes, loc, rounds, safe)`: rounds is int32 [], safe a bool [] (False only if
      the guard gave up; the file is then still valid where it was made).
    """
    z_hat = tf.round(z)
    indexes, loc, distance = self._latent_distribution(z_hat, latent_hw, per_unit)
    channels = self.config.hyper_channels

    def unsafe(distance):
      return tf.reduce_any(distance < BOUNDARY_MARGIN)

    def keep_going(rounds, unused_z, unused_indexes, unused_loc, distance):
      return tf.logical_and(rounds < MAX_GUARD_ROUNDS, unsafe(distance))

    def nudge(rounds, z_hat, unused_indexes, unused_loc, distance):
      first = tf.cast(tf.where(distance < BOUNDARY_MARGIN)[0], tf.int32)  # [b, y, x, c]
      position = tf.stack([0, first[1] // 4, first[2] // 4, rounds % channels])
      z_hat = tf.tensor_scatter_nd_add(z_hat, position[None], [1.0])
      return (rounds + 1, z_hat) + self._latent_distribution(z_hat, latent_hw, per_unit)

    rounds, z_hat, indexes, loc, distance = tf.while_loop(
        keep_going, nudge, (tf.constant(0), z_hat, indexes, loc, distance))
    return z_hat, indexes, loc, rounds, tf.logical_not(unsafe(distance))

  def _side_indexes(self, side_hw):
    """Table of every side symbol: its channel. int32 `[1, h, w, C]`."""
    channels = self.config.hyper_channels
    shape = tf.concat([[1], tf.cast(side_hw, tf.int32), [channels]], 0)
    return tf.broadcast_to(tf.range(channels), shape)

  # ---- Graph functions (the export contract) -------------------------------------------------

  def _quality_code(self, image, quality):
    """Validates the inputs (graph assertions) and returns the int32 quality code."""
    shape = tf.shape(image, out_type=tf.int64)
    checks = [
        tf.debugging.assert_greater_equal(quality, 0.0, message="quality must be in [0, 1]"),
        tf.debugging.assert_less_equal(quality, 1.0, message="quality must be in [0, 1]"),
        tf.debugging.assert_positive(shape[:2], message="image must be at least 1x1"),
        tf.debugging.assert_less_equal(shape[0] * shape[1],
                                       tf.constant(bitstream.MAX_PIXELS, tf.int64),
                                       message="image exceeds the pixel limit"),
        tf.debugging.assert_less_equal(tf.reduce_max(shape[:2]),
                                       tf.constant(bitstream.MAX_SIDE, tf.int64),
                                       message="image side exceeds the limit"),
    ]
    with tf.control_dependencies(checks):
      return tf.cast(tf.round(quality * quality_lib.QUALITY_CODE_MAX), tf.int32)

  def _latent(self, image):
    """uint8 `[H, W, 3]` -> float32 latent `[1, h, w, C]` (analysis of the padded image)."""
    return self.model.flow.analysis(
        to_model_units(pad_to_multiple(image, self.config.block_size))[None])

  def _choose_symbols(self, latent, per_unit):
    """The integer latent symbols of a latent `[1, h, w, C]` (the only lossy step).

    Chosen by `quantization.quantize_residual` with the tables of the hyper analysis's one-pass
    side information, a smooth function of the latent, never the refined one (which is not
    smooth in the image): a decoded image then re-analyses to the same symbols except where
    8-bit rounding moved the latent across a decision boundary, and the stable mode's
    fixed-point search converges.

    With an integer flow (`ModelConfig.integer_flow`) a decoded image re-analyses to exactly the
    latent it was decoded from, and its residuals are rounded rather than traded by RDOQ, so the
    same symbols come back (unless clipping to [0, 255] or edge padding changed pixels, which
    `compress_stable_graph` settles).

    The symbols stay on the integer grid: the decoder reconstructs `offsets + loc` with `loc`
    rounded, so a decoded image re-analyses to the same symbols whatever side information it
    gets (quantizing around the unrounded mean saves rate but makes the reconstruction follow
    `z_hat`, which changes under re-encoding: measured -0.2 dB per generation).

    Returns:
      `(z, z_hat, indexes, loc, symbols)`: float32 `[1, hz, wz, Cz]` unrounded side
      information (in side symbols) and `z_hat` its guarded rounding; int32 table indexes,
      float32 integer-valued locations and float32 integer-valued symbols, each `[1, h, w, C]`.
    """
    z = self.model.hyper_analysis(latent) * tf.cast(per_unit.side, tf.float32)
    z_hat, indexes, loc, _, _ = self._guarded_side_information(z, tf.shape(latent)[1:3], per_unit)
    residual = latent * tf.cast(per_unit.latent, tf.float32) - loc
    offsets = quantization.quantize_residual(
        residual, entropy.table_scale(indexes, self.config), self.distortion_weight)
    if self.config.integer_flow:
      # A decoded image's latent is round(255 * symbols / per_unit) / 255, whose residual lies
      # within per_unit / 510 of its symbol. Residuals that close to an integer are rounded,
      # never traded by RDOQ, so decoded images re-encode to their symbols (and channels at the
      # cap, per_unit = 255, are lossless).
      reach = tf.cast(per_unit.latent, tf.float32) / (2.0 * integer.LEVELS) + _INTEGER_REACH_MARGIN
      offsets = tf.where(tf.abs(residual - tf.round(residual)) <= reach, tf.round(residual),
                         offsets)
    return z, z_hat, indexes, loc, loc + offsets

  def _symbols(self, image, per_unit):
    """The latent symbols a validated image is coded with: float32 `[1, h, w, C]`."""
    return self._choose_symbols(self._latent(image), per_unit)[4]

  def _analyse(self, image, per_unit, symbols=None):
    """Sender: everything the container carries for a validated image.

    The symbols come from `_choose_symbols` unless given (the stable mode codes a decoded image
    with the symbols it was decoded from); with `side_iterations > 0` the side information
    that codes them is then refined for exactly those symbols (`side_refinement.py`), which
    changes their probability tables (the file size) but not the decoded image.

    Returns:
      `(z_hat, indexes, offsets, symbols)`: float32 integer-valued side information
      `[1, hz, wz, Cz]`; int32 table indexes, float32 integer-valued coded offsets
      (`symbols - loc`) and symbols, each `[1, h, w, C]`.
    """
    latent = self._latent(image)
    z, z_hat, indexes, loc, chosen = self._choose_symbols(latent, per_unit)
    symbols = chosen if symbols is None else symbols
    if self.side_iterations:
      z = side_refinement.refine_side_information(
          z, symbols, tf.cast(per_unit.latent, tf.float32), self.model.hyper_synthesis,
          self.model.side_prior, self.config.scale_min, self.side_iterations,
          side_per_unit=tf.cast(per_unit.side, tf.float32))
      z_hat, indexes, loc, _, _ = self._guarded_side_information(
          z, tf.shape(latent)[1:3], per_unit)
    return z_hat, indexes, symbols - loc, symbols

  def _pixels(self, symbols, per_unit, height, width):
    """Symbols `[1, h, w, C]` -> decoded uint8 image `[height, width, 3]` (synthesis)."""
    x_hat = self.model.flow.synthesis(symbols / tf.cast(per_unit.latent, tf.float32))[0]
    pixels = tf.clip_by_value(tf.round(to_pixels(x_hat)), 0.0, 255.0)
    return tf.cast(pixels[:height, :width], tf.uint8)

  def _encode(self, image, quality_code, per_unit, symbols=None):
    """The whole sender side for a validated image; returns the container (string [])."""
    z_hat, indexes, offsets, _ = self._analyse(image, per_unit, symbols)
    return self._pack(image, quality_code, z_hat, indexes, offsets)

  def _pack(self, image, quality_code, z_hat, indexes, offsets):
    """Range-codes side information and latent offsets into a container (string [])."""
    shape = tf.shape(image, out_type=tf.int64)
    side_string = self.side_coder.encode(tf.cast(z_hat, tf.int32),
                                         self._side_indexes(tf.shape(z_hat)[1:3]))
    latent_string = self.latent_coder.encode(tf.cast(offsets, tf.int32), indexes)
    return graph_bitstream.pack(self.fingerprint_var, shape[0], shape[1], quality_code,
                                [side_string, latent_string])

  # ---- Graph functions (the export contract) -------------------------------------------------

  @tf.function(input_signature=[
      tf.TensorSpec([None, None, 3], tf.uint8, name="image"),
      tf.TensorSpec([], tf.float32, name="quality"),
  ])
  def compress_graph(self, image, quality) -> Dict[str, tf.Tensor]:
    quality_code = self._quality_code(image, quality)
    per_unit = self._per_unit(quality_code)
    return {"bitstream_bytes": self._encode(image, quality_code, per_unit)}

  @tf.function(input_signature=[
      tf.TensorSpec([None, None, 3], tf.uint8, name="image"),
      tf.TensorSpec([], tf.float32, name="quality"),
      tf.TensorSpec([], tf.int32, name="max_iterations"),
  ])
  def compress_stable_graph(self, image, quality, max_iterations) -> Dict[str, tf.Tensor]:
    """Compression whose output re-encodes to itself (generation loss exactly zero).

    Decoding rounds pixels to 8 bits, so re-encoding a decoded image can move latent symbols.
    This walks the re-encoding map `s_{i+1} = symbols(decode(s_i))` from the input's symbols
    `s_0` (`_choose_symbols`) until it closes a cycle, usually a fixed point, at high qualities
    often a 2-cycle (`stable_search.settle`), and codes the cycle's canonical member `c` with the
    image it decodes to (`_encode`: the symbols `c`, their side information refined for them).
    The file is a function of the cycle alone, and re-encoding its decoded image walks the same
    cycle, so `compress(decompress(bytes)) == bytes`. It costs about what plain coding of the
    input costs, in quality about what that many generations of plain re-encoding would. If no
    cycle closes within `max_iterations`, it codes the input plainly (`converged` = False).

    Returns:
      dict: `bitstream_bytes` (string []), `iterations` (int32 []), `converged` (bool []),
      `cycle_length` (int32 [], 1 = fixed point, 0 = none found).
    """
    quality_code = self._quality_code(image, quality)
    per_unit = self._per_unit(quality_code)
    shape = tf.shape(image)

    def re_encode(symbols):
      return self._symbols(self._pixels(symbols, per_unit, shape[0], shape[1]), per_unit)

    iterations, canonical, cycle_length = stable_search.settle(
        re_encode, self._symbols(image, per_unit), max_iterations)
    converged = cycle_length > 0
    bitstream_bytes = tf.cond(
        converged,
        lambda: self._encode(self._pixels(canonical, per_unit, shape[0], shape[1]),
                             quality_code, per_unit, canonical),
        lambda: self._encode(image, quality_code, per_unit))
    return {"bitstream_bytes": bitstream_bytes, "iterations": iterations,
            "converged": converged, "cycle_length": cycle_length}

  @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="bitstream")])
  def decompress_graph(self, data) -> Dict[str, tf.Tensor]:
    height, width, quality_code, streams = graph_bitstream.unpack(
        data, self.fingerprint_var, num_streams=2)
    block = self.config.block_size
    latent_hw = tf.cast(tf.stack([(height + block - 1) // block, (width + block - 1) // block]),
                        tf.int32)
    per_unit = self._per_unit(quality_code)
    side_symbols, side_ok = self.side_coder.decode(
        streams[_SIDE], self._side_indexes(_side_shape(latent_hw)))
    indexes, loc, _ = self._latent_distribution(tf.cast(side_symbols, tf.float32), latent_hw,
                                                per_unit)
    values, latent_ok = self.latent_coder.decode(streams[_LATENT], indexes)
    with tf.control_dependencies([tf.debugging.Assert(
        tf.logical_and(side_ok, latent_ok),
        ["Sanity check failed: the streams do not decode consistently"])]):
      symbols = tf.cast(values, tf.float32) + loc
    return {"image": self._pixels(symbols, per_unit, height, width)}

  @tf.function(input_signature=[
      tf.TensorSpec([None, None, 3], tf.uint8, name="image"),
      tf.TensorSpec([], tf.float32, name="quality"),
  ])
  def latent_symbols_graph(self, image, quality) -> Dict[str, tf.Tensor]:
    """The integer latent symbols an image is coded with (diagnostics): int32 `[h, w, C]`."""
    quality_code = self._quality_code(image, quality)
    per_unit = self._per_unit(quality_code)
    return {"symbols": tf.cast(self._symbols(image, per_unit)[0], tf.int32)}

  @tf.function(input_signature=[
      tf.TensorSpec([], tf.string, name="encoded_image"),
      tf.TensorSpec([], tf.float32, name="quality"),
  ])
  def compress_encoded_graph(self, encoded_image, quality) -> Dict[str, tf.Tensor]:
    """PNG/JPEG/BMP/GIF bytes -> container bytes (for serving clients that send files)."""
    image = tf.io.decode_image(encoded_image, channels=3, dtype=tf.uint8,
                               expand_animations=False)
    return self.compress_graph(image, quality)

  @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="bitstream")])
  def decompress_png_graph(self, data) -> Dict[str, tf.Tensor]:
    """Container bytes -> PNG bytes (for serving clients that want files)."""
    return {"png_bytes": tf.io.encode_png(self.decompress_graph(data)["image"])}

  # ---- Python API ---------------------------------------------------------------------------

  def _run_compress(self, image, quality, stable_iterations=0):
    self._check_tables()
    image, quality = tf.constant(image), tf.constant(quality, tf.float32)
    if stable_iterations:
      result = self.compress_stable_graph(image, quality, tf.constant(stable_iterations))
      return result["bitstream_bytes"].numpy(), bool(result["converged"])
    return self.compress_graph(image, quality)["bitstream_bytes"].numpy(), True

  def _run_decompress(self, data):
    self._check_tables()
    return self.decompress_graph(tf.constant(data))["image"].numpy()

  def decompress(self, data: bytes, max_pixels: int = None) -> np.ndarray:
    self._check_tables()
    return super().decompress(data, max_pixels)
