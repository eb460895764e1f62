"""Input pipelines: a TFDS builder over a local image folder, random patches, and image loaders.

Nothing is ever downloaded: `LocalImageFolder` is a TFDS builder whose data are the images of a
local folder given as its `manual_dir`. It is prepared once into `data_dir` (a TFRecord copy of
the folder) and read back with the usual TFDS machinery (sharding, file shuffling, and
`tf.distribute` auto-sharding).

Default folders: `../shared/data/train/` for training, `../shared/data/kodak/` for evaluation,
relative to the repository root; every function takes any folder. Never train on Kodak.
"""

import fcntl
import hashlib
import os
from typing import List, Optional

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TRAIN_DIR = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data", "train"))
DEFAULT_KODAK_DIR = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data", "kodak"))
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".ppm")


def list_images(folder: str) -> List[str]:
  """Sorted paths of the image files directly inside `folder` (by extension)."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"image folder {folder!r} does not exist.")
  names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
  return [os.path.join(folder, n) for n in names]


class LocalImageFolder(tfds.core.GeneratorBasedBuilder):
  """TFDS builder for the RGB images of a local folder (no download).

  Pass the folder as `download_config=tfds.download.DownloadConfig(manual_dir=folder)`. Images
  are converted to 8-bit RGB (see `image_io.to_rgb8`); unreadable files fail the preparation
  with the file name. One split, `train`, with features `image` (uint8 `[H, W, 3]`) and `name`.
  """

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Pass the image folder as manual_dir; nothing is downloaded."

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description="RGB images of a local folder.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3), dtype=np.uint8),
            "name": tfds.features.Text(),
        }),
    )

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(str(dl_manager.manual_dir))}

  def _generate_examples(self, folder):
    from tfflowcomp import image_io  # Pillow-only module; imported lazily by the workers.
    for path in list_images(folder):
      name = os.path.basename(path)
      yield name, {"image": image_io.load_rgb8(path), "name": name}


def _folder_key(folder: str) -> str:
  """Identifies a folder's content (names and sizes) so a changed folder is prepared anew."""
  digest = hashlib.sha256(os.path.abspath(folder).encode())
  for path in list_images(folder):
    digest.update(f"{os.path.basename(path)}:{os.path.getsize(path)}".encode())
  return digest.hexdigest()[:16]


def prepare_folder(folder: str, data_dir: str) -> tfds.core.DatasetBuilder:
  """Prepares (once) and returns the TFDS builder for `folder` under `data_dir`."""
  if not list_images(folder):
    raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {folder!r}.")
  target = os.path.join(data_dir, _folder_key(folder))
  os.makedirs(target, exist_ok=True)
  # Several processes (tf.distribute workers) may prepare the same folder at once: serialise.
  with open(os.path.join(target, ".prepare.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      builder = LocalImageFolder(data_dir=target)
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(manual_dir=folder))
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
  return builder


def random_patches(images: tf.data.Dataset, patch_size: int, seed: Optional[int] = None):
  """uint8 `[H, W, 3]` images -> random `[patch, patch, 3]` crops with random flips.

  Images smaller than the patch in either dimension are skipped. The crops and flips use
  stateless random ops seeded by `(seed, element index)`, so the patches do not depend on how
  the parallel map schedules its threads: every worker of a multi-worker run, and every rerun,
  gets the same patches (`seed=None` means 0).
  """
  def large_enough(image):
    shape = tf.shape(image)
    return tf.logical_and(shape[0] >= patch_size, shape[1] >= patch_size)

  def crop_and_flip(index, image):
    seeds = tf.random.experimental.stateless_split(
        tf.stack([tf.constant(seed or 0, tf.int64), index]), 3)
    patch = tf.image.stateless_random_crop(image, [patch_size, patch_size, 3], seed=seeds[0])
    patch = tf.image.stateless_random_flip_left_right(patch, seed=seeds[1])
    return tf.image.stateless_random_flip_up_down(patch, seed=seeds[2])

  return images.filter(large_enough).enumerate().map(crop_and_flip,
                                                     num_parallel_calls=tf.data.AUTOTUNE)


def training_dataset(folder: str, data_dir: str, patch_size: int, batch_size: int,
                     seed: int = 0) -> tf.data.Dataset:
  """Infinite dataset of uint8 `[batch, patch, patch, 3]` batches from a local image folder."""
  builder = prepare_folder(folder, data_dir)
  # Seeded file shuffling: every worker of a multi-worker run sees the same order (tf.distribute
  # shards it), and a run is reproducible.
  read_config = tfds.ReadConfig(shuffle_seed=seed)
  images = builder.as_dataset(split="train", shuffle_files=True, read_config=read_config).map(
      lambda ex: ex["image"])
  images = images.cache().shuffle(2048, seed=seed, reshuffle_each_iteration=True).repeat()
  patches = random_patches(images, patch_size, seed=seed)
  return patches.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def load_folder(folder: str, limit: Optional[int] = None) -> List[np.ndarray]:
  """Loads the images of a folder (e.g. Kodak) as uint8 `[H, W, 3]` arrays, sorted by name."""
  from tfflowcomp import image_io
  paths = list_images(folder)
  if limit is not None:
    paths = paths[:limit]
  return [image_io.load_rgb8(p) for p in paths]


def load_nonempty_folder(folder: str, limit: Optional[int] = None) -> List[np.ndarray]:
  """`load_folder` for tools: raises ValueError with a one-line message if nothing loads."""
  try:
    images = load_folder(folder, limit)
  except OSError as error:
    raise ValueError(f"cannot read images from {folder}: {error}") from None
  if not images:
    raise ValueError(f"no images in {folder}")
  return images
