"""Classical codecs through maintained Pillow plugins, for side-by-side measurements.

Each codec is `ClassicalCodec(name, encode(image, setting) -> bytes, settings)`; decoding always
goes through Pillow. Codecs whose plugin is missing are reported by `available_codecs()` with the
reason, and skipped by the tools.

  JPEG 4:2:0 / 4:4:4   Pillow (libjpeg), quality 1..100, optimized Huffman tables
  WebP                 Pillow (libwebp), quality 0..100, method 6
  AVIF                 pillow-avif-plugin (libavif/aom), quality 0..100, 4:4:4, speed 6
  JPEG XL              pillow-jxl-plugin (libjxl), quality 1..100, effort 7
  HEIC (HEVC)          pillow-heif (libheif + x265), quality 0..100, 4:4:4 and 4:2:0
"""

import dataclasses
import io
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image


@dataclasses.dataclass(frozen=True)
class ClassicalCodec:
  name: str
  encode: Callable[[np.ndarray, int], bytes]
  settings: Tuple[int, ...]

  def decode(self, data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
      return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _pillow_encoder(fmt: str, **options):
  def encode(image: np.ndarray, setting: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, quality=int(setting), **options)
    return buffer.getvalue()
  return encode


def _dense(low, high, count):
  return tuple(int(round(v)) for v in np.linspace(low, high, count))


def available_codecs() -> Tuple[List[ClassicalCodec], Dict[str, str]]:
  """(codecs that work here, {name: reason} for those that do not)."""
  codecs = [
      ClassicalCodec("JPEG 4:2:0", _pillow_encoder("JPEG", subsampling=2, optimize=True),
                     (5, 10, 20, 30, 40, 50, 60, 70, 80, 85, 90, 95, 98, 100)),
      ClassicalCodec("JPEG 4:4:4", _pillow_encoder("JPEG", subsampling=0, optimize=True),
                     (5, 10, 20, 30, 40, 50, 60, 70, 80, 85, 90, 95, 98, 100)),
      # Dense at the bottom, where WebP's curve bends most (quality 0 -> 10 spans 0.10-0.27 bpp
      # on Kodak): a chord there would understate it.
      ClassicalCodec("WebP", _pillow_encoder("WEBP", method=6),
                     (0, 2, 4, 6, 8, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)),
  ]
  missing = {}
  try:
    import pillow_avif  # pylint: disable=g-import-not-at-top,unused-import
    codecs.append(ClassicalCodec(
        "AVIF 4:4:4", _pillow_encoder("AVIF", subsampling="4:4:4", speed=6),
        _dense(5, 100, 14)))
  except ImportError as error:
    missing["AVIF"] = f"pillow-avif-plugin not installed ({error})"
  try:
    import pillow_jxl  # pylint: disable=g-import-not-at-top,unused-import
    codecs.append(ClassicalCodec("JPEG XL", _pillow_encoder("JXL", effort=7),
                                 _dense(10, 98, 14)))
  except ImportError as error:
    missing["JPEG XL"] = f"pillow-jxl-plugin not installed ({error})"
  try:
    import pillow_heif  # pylint: disable=g-import-not-at-top
    pillow_heif.register_heif_opener()
    codecs.append(ClassicalCodec("HEIC (x265) 4:4:4", _pillow_encoder("HEIF", chroma=444),
                                 _dense(5, 100, 14)))
  except ImportError as error:
    missing["HEIC"] = f"pillow-heif not installed ({error})"
  return codecs, missing


def select(names: Sequence[str]):
  """Codecs whose names start with any of `names` (case-insensitive); all if `names` is empty."""
  codecs, missing = available_codecs()
  if not names:
    return codecs, missing
  wanted = [n.lower() for n in names]
  return [c for c in codecs if any(c.name.lower().startswith(w) for w in wanted)], missing
