"""Reading and writing images with Pillow, with explicit conversion rules.

Rules for inputs that are not 8-bit RGB:
  * grayscale (L, 1-bit, I;16 and I/F) -> replicated to 3 channels;
  * 16-bit and 32-bit (I;16*, I, F) -> scaled to 8 bits: 16-bit by `round(v / 257)`; I and F
    are refused (their value range is not defined);
  * palette (P) -> RGB through the palette; transparency is dropped (see below);
  * RGBA, LA, PA -> alpha is dropped and a warning is returned, because tfflowcomp codes colour
    only; pass `allow_alpha=False` to refuse such images instead;
  * CMYK, YCbCr, LAB, HSV -> converted to RGB by Pillow.
Pillow's decompression-bomb limit is enforced (images over `MAX_IMAGE_PIXELS` are refused).
"""

import os
from typing import List, Tuple

import numpy as np
from PIL import Image

MAX_IMAGE_PIXELS = 1 << 28
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


class ImageReadError(ValueError):
  """The file is missing, not an image, truncated, too large, or in an unsupported mode."""


def to_rgb8(image: Image.Image, allow_alpha: bool = True) -> Tuple[np.ndarray, List[str]]:
  """Pillow image -> (uint8 `[H, W, 3]` array, list of warnings)."""
  warnings = []
  mode = image.mode
  if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
    values = np.asarray(image, dtype=np.uint16).astype(np.float64)
    gray = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
    warnings.append("16-bit grayscale converted to 8 bits.")
    return np.repeat(gray[..., None], 3, axis=-1), warnings
  if mode in ("I", "F"):
    raise ImageReadError(f"images in mode {mode} (32-bit) are not supported.")
  if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in
                                                     image.info):
    if not allow_alpha:
      raise ImageReadError(f"image has an alpha channel (mode {mode}); tfflowcomp codes RGB only.")
    warnings.append(f"alpha channel dropped (mode {mode}); only RGB is coded.")
  if mode != "RGB":
    image = image.convert("RGBA" if mode == "P" else "RGB").convert("RGB")
  array = np.asarray(image, dtype=np.uint8)
  if array.ndim != 3 or array.shape[-1] != 3:
    raise ImageReadError(f"could not convert image in mode {mode} to RGB.")
  return np.ascontiguousarray(array), warnings


def read_image(path: str, allow_alpha: bool = True) -> Tuple[np.ndarray, List[str]]:
  """Reads any Pillow-supported image file -> (uint8 `[H, W, 3]`, warnings).

  Raises ImageReadError with a one-line reason for every failure.
  """
  if not os.path.exists(path):
    raise ImageReadError(f"{path}: no such file.")
  if os.path.isdir(path):
    raise ImageReadError(f"{path}: is a directory.")
  try:
    with Image.open(path) as image:
      if image.width * image.height > MAX_IMAGE_PIXELS:
        raise ImageReadError(
            f"{path}: {image.width}x{image.height} exceeds the limit of {MAX_IMAGE_PIXELS} "
            "pixels.")
      image.load()
      return to_rgb8(image, allow_alpha)
  except ImageReadError:
    raise
  except Image.DecompressionBombError as error:
    raise ImageReadError(f"{path}: refused as a decompression bomb ({error}).") from None
  except (OSError, SyntaxError, ValueError) as error:
    raise ImageReadError(f"{path}: not a readable image ({error}).") from None


def load_rgb8(path: str) -> np.ndarray:
  """Reads an image as uint8 `[H, W, 3]` (conversion rules above, warnings ignored)."""
  return read_image(path)[0]


def write_png(array: np.ndarray, path: str) -> None:
  """Writes uint8 `[H, W, 3]` as PNG to `path` (callers handle atomicity)."""
  Image.fromarray(np.asarray(array, dtype=np.uint8), "RGB").save(path, format="PNG")
