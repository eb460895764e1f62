"""The tfflowcomp container format, version 3 (pure Python, no TensorFlow).

Layout (all integers big-endian):

    offset  size  field
    0       4     magic b"TFFC"
    4       1     format version (3)
    5       1     flags (reserved, must be 0)
    6       8     model fingerprint (first 8 bytes of the model's SHA-256 digest)
    14      4     image height in pixels (1 .. MAX_SIDE)
    18      4     image width in pixels (1 .. MAX_SIDE), height * width <= MAX_PIXELS
    22      2     quality code: quality = code / 65535
    24      1     number of streams N (2: side information, latent)
    25      4*N   length of each stream in bytes
    ...           the N streams, back to back
    -4      4     Adler-32 (zlib) of every byte before it

Tiled files (flags bit 0 set; written for large images so that memory stays bounded) keep
N = 2: stream 0 is a tile table, stream 1 the tiles' streams back to back:

    tile table: tile side S (4 bytes; a multiple of TILE_MULTIPLE, >= MIN_TILE_SIDE),
                tile count T (4 bytes; must equal ceil(height / S) * ceil(width / S)),
                then per tile (raster order) the lengths of its side and latent streams (4+4)

Each tile is coded independently (as if it were an image of its own size) and is decoded by
re-wrapping its two streams in an untiled container of the tile's size.

Each stream is one string of `range_coding.BoundedRangeCoder`, and the latent's tables are chosen
by the float64 hyper-synthesis with the encoder's boundary guard (`codec.FlowCodec`). Older
versions are refused: version 1 used TFC's own overflow coding, whose decoder can be made to loop
forever; version 2 chose tables in float32.

Every way a byte string can fail to be a valid container raises `BitstreamError` with a message
that says what is wrong; this happens before anything is allocated from header values.
"""

import dataclasses
import struct
import zlib
from typing import Tuple

MAGIC = b"TFFC"
VERSION = 3
FINGERPRINT_BYTES = 8
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28
NUM_STREAMS = 2
MAX_STREAMS = 8

FLAG_TILED = 1
MIN_TILE_SIDE = 256
TILE_MULTIPLE = 64

_FIXED = struct.Struct(">4sBB8sIIHB")  # Everything up to and including the stream count.
FIXED_HEADER_BYTES = _FIXED.size  # 25
CHECKSUM_BYTES = 4


class BitstreamError(ValueError):
  """The bytes are not a valid tfflowcomp container (or not one this version can read)."""


@dataclasses.dataclass(frozen=True)
class Container:
  """A parsed container. `streams` are the raw range-coded byte strings."""
  fingerprint: bytes
  height: int
  width: int
  quality_code: int
  streams: Tuple[bytes, ...]
  version: int = VERSION
  tile_side: int = 0  # 0: untiled. Else `streams` holds (side, latent) for every tile.

  @property
  def quality(self) -> float:
    return self.quality_code / 65535.0

  @property
  def side_information_bytes(self) -> int:
    """Bytes of the side-information streams (stream 0 of the image, or of every tile)."""
    return sum(len(stream) for stream in self.streams[0::2])


def check_image_shape(height: int, width: int) -> None:
  """Raises BitstreamError unless the image size can be stored in a container."""
  if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
    raise BitstreamError(
        f"image size {height}x{width} is outside 1..{MAX_SIDE} pixels per side.")
  if height * width > MAX_PIXELS:
    raise BitstreamError(
        f"image size {height}x{width} exceeds the limit of {MAX_PIXELS} pixels.")


def tile_grid(height: int, width: int, tile_side: int):
  """(top, left, tile_height, tile_width) of every tile, in raster order."""
  return [(top, left, min(tile_side, height - top), min(tile_side, width - left))
          for top in range(0, height, tile_side) for left in range(0, width, tile_side)]


def check_tile_side(tile_side: int) -> None:
  """Raises BitstreamError unless `tile_side` is a valid tile side for the format."""
  if tile_side < MIN_TILE_SIDE or tile_side > MAX_SIDE or tile_side % TILE_MULTIPLE:
    raise BitstreamError(f"invalid tile side {tile_side}: must be a multiple of "
                         f"{TILE_MULTIPLE} in {MIN_TILE_SIDE}..{MAX_SIDE}.")


def _tile_count(tile_side: int, height: int, width: int) -> int:
  """Number of tiles of a valid `tile_side` (raises BitstreamError for an invalid one)."""
  check_tile_side(tile_side)
  return -(-height // tile_side) * -(-width // tile_side)


def _pack_tiles(container: Container) -> Tuple[bytes, bytes]:
  num_tiles = _tile_count(container.tile_side, container.height, container.width)
  if len(container.streams) != 2 * num_tiles:
    raise BitstreamError(f"{num_tiles} tiles need {2 * num_tiles} streams, got "
                         f"{len(container.streams)}.")
  table = struct.pack(f">II{2 * num_tiles}I", container.tile_side, num_tiles,
                      *map(len, container.streams))
  return table, b"".join(container.streams)


def _unpack_tiles(height: int, width: int, table: bytes, payload: bytes) -> Tuple[int, tuple]:
  if len(table) < 8:
    raise BitstreamError("truncated tile table.")
  tile_side, num_tiles = struct.unpack_from(">II", table, 0)
  expected_tiles = _tile_count(tile_side, height, width)
  if num_tiles != expected_tiles:
    raise BitstreamError(f"the tile table lists {num_tiles} tiles, a {width}x{height} image "
                         f"in {tile_side}-pixel tiles has {expected_tiles}.")
  if len(table) != 8 + 8 * num_tiles:
    raise BitstreamError("the tile table's size does not match its tile count.")
  lengths = struct.unpack_from(f">{2 * num_tiles}I", table, 8)
  if sum(lengths) != len(payload):
    raise BitstreamError("the tile streams' lengths do not add up to the payload.")
  streams, offset = [], 0
  for length in lengths:
    streams.append(payload[offset:offset + length])
    offset += length
  return tile_side, tuple(streams)


def pack(container: Container) -> bytes:
  """Container -> bytes."""
  if len(container.fingerprint) != FINGERPRINT_BYTES:
    raise BitstreamError(f"fingerprint must be {FINGERPRINT_BYTES} bytes.")
  check_image_shape(container.height, container.width)
  if not 0 <= container.quality_code <= 65535:
    raise BitstreamError("quality code must be in 0..65535.")
  streams, flags = container.streams, 0
  if container.tile_side:
    streams, flags = _pack_tiles(container), FLAG_TILED
  if not 1 <= len(streams) <= MAX_STREAMS:
    raise BitstreamError(f"a container holds 1..{MAX_STREAMS} streams.")
  header = _FIXED.pack(MAGIC, VERSION, flags, container.fingerprint, container.height,
                       container.width, container.quality_code, len(streams))
  lengths = struct.pack(f">{len(streams)}I", *map(len, streams))
  body = header + lengths + b"".join(streams)
  return body + struct.pack(">I", zlib.adler32(body))


def unpack(data: bytes) -> Container:
  """bytes -> Container, validating everything. Raises BitstreamError."""
  if not isinstance(data, (bytes, bytearray, memoryview)):
    raise BitstreamError(f"expected bytes, got {type(data).__name__}.")
  data = bytes(data)
  if len(data) < 4 or data[:4] != MAGIC:
    raise BitstreamError("not a tfflowcomp file (wrong magic number).")
  if len(data) < 5:
    raise BitstreamError("truncated file: no format version.")
  if data[4] != VERSION:
    raise BitstreamError(
        f"unsupported format version {data[4]}; this decoder reads version {VERSION}.")
  if len(data) < FIXED_HEADER_BYTES + CHECKSUM_BYTES:
    raise BitstreamError(f"truncated file: {len(data)} bytes is shorter than the header.")
  (_, version, flags, fingerprint, height, width, quality_code,
   num_streams) = _FIXED.unpack_from(data, 0)
  if flags & ~FLAG_TILED:
    raise BitstreamError(f"unknown flags 0x{flags:02x} in header.")
  if flags & FLAG_TILED and num_streams != 2:
    raise BitstreamError(f"a tiled file has 2 streams, this one announces {num_streams}.")
  check_image_shape(height, width)
  if not 1 <= num_streams <= MAX_STREAMS:
    raise BitstreamError(f"invalid stream count {num_streams}.")
  lengths_end = FIXED_HEADER_BYTES + 4 * num_streams
  if len(data) < lengths_end + CHECKSUM_BYTES:
    raise BitstreamError("truncated file: stream table incomplete.")
  lengths = struct.unpack_from(f">{num_streams}I", data, FIXED_HEADER_BYTES)
  expected = lengths_end + sum(lengths) + CHECKSUM_BYTES
  if len(data) < expected:
    raise BitstreamError(
        f"truncated file: header announces {expected} bytes, file has {len(data)}.")
  if len(data) > expected:
    raise BitstreamError(
        f"{len(data) - expected} unexpected trailing bytes after the last stream.")
  body = data[:-CHECKSUM_BYTES]
  (checksum,) = struct.unpack_from(">I", data, len(data) - CHECKSUM_BYTES)
  if zlib.adler32(body) != checksum:
    raise BitstreamError("checksum mismatch: the file is corrupted.")
  streams = []
  offset = lengths_end
  for length in lengths:
    streams.append(body[offset:offset + length])
    offset += length
  tile_side = 0
  if flags & FLAG_TILED:
    tile_side, streams = _unpack_tiles(height, width, *streams)
  return Container(fingerprint=fingerprint, height=height, width=width,
                   quality_code=quality_code, streams=tuple(streams), version=version,
                   tile_side=tile_side)
