"""Image datasets: CIFAR-10 from its python-pickle files (`cifar-10-batches-py`, no TensorFlow)
or through tensorflow-datasets, an image-folder layout, synthetic images.

Every source gives an `ImageSplits`: uint8 images [N, H, W, C] and int32 labels for train,
validation and test, held in host memory (CIFAR-10 is 180 MB). The validation split that rewards
the controller is carved from the end of the training split (`valid_size`, 5,000 images for
CIFAR-10 by default) unless the source has its own.

The image-folder layout: `image_folder`.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
from typing import Any, Literal

import numpy as np

from enas_jax.data.fingerprint import fingerprint
from enas_jax.data.image_folder import INSTALL_IMAGES, read_folder
from enas_jax.io import memory as memory_lib
from enas_jax.io.configuration import require
from enas_jax.io.errors import UserError



@dataclasses.dataclass(frozen=True)
class SyntheticImagesConfig:
  """The `data.synthetic` section: images generated in memory (for the CPU quickstart, tests)."""

  train_images: int = 2000  # training images; `data.valid_size` more are made to hold out
  test_images: int = 500
  size: int = 16
  num_classes: int = 10
  noise: float = 0.6
  seed: int = 0

  def validate(self, section: str = "data.synthetic") -> None:
    require(self, section, ">= 1", "train_images", "test_images", "size")
    require(self, section, ">= 0", "noise")
    require(self, section, "seed", "seed")
    if self.num_classes < 2:
      raise UserError(f"Config field `{section}.num_classes` must be at least 2, got "
                      f"{self.num_classes}.")


@dataclasses.dataclass(frozen=True)
class ImageDataConfig:
  """The `data` section of a CNN config (see configs/cifar10_macro.py for comments)."""

  source: Literal["cifar10_batches", "tfds", "folder", "synthetic"] = "cifar10_batches"
  name: str = "cifar10"
  data_dir: str = ""
  valid_size: int = 5000
  batch_size: int = 128
  eval_batch_size: int = 500
  flip: bool = True
  pad_crop: int = 4
  cutout: int = 0
  synthetic: SyntheticImagesConfig = dataclasses.field(default_factory=SyntheticImagesConfig)

  def validate(self, section: str = "data") -> None:
    require(self, section, ">= 1", "batch_size", "eval_batch_size")
    require(self, section, ">= 0", "valid_size", "pad_crop", "cutout")
    if self.source == "synthetic" and self.data_dir:  # a real-data run meant, quietly not made
      raise UserError(f"Config field `{section}.data_dir` is {self.data_dir!r}, but the source "
                      f"is synthetic (the :cpu and :tiny presets), which reads no files: set "
                      f"`{section}.source` to cifar10_batches, tfds or folder, or leave it empty.")
    if self.source == "folder" and not self.data_dir:
      raise UserError(f"Config field `{section}.data_dir` is empty: set it to the image-folder "
                      f"root (with train.txt, test.txt, train/, test/; see the README), or use "
                      f"`{section}.source=synthetic`.")

  def unread(self) -> dict[str, str]:
    """The fields this source does not read, each with why and the fix (as
    `TextDataConfig.unread`: a command-line override of one is refused)."""
    if self.source == "synthetic":
      return {}
    return {"synthetic": f"data.source is {self.source!r}, which reads real images; the synthetic "
                         f"images' settings apply to data.source=synthetic only (the :cpu and "
                         f":tiny presets). Add --config.data.source=synthetic, or drop the "
                         f"override."}


@dataclasses.dataclass(frozen=True)
class ImageSplits:
  """uint8 images [N, H, W, C] and int32 labels [N] per split, and what normalises them."""

  name: str
  train_x: np.ndarray
  train_y: np.ndarray
  valid_x: np.ndarray
  valid_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  num_classes: int
  mean_C: np.ndarray  # per-channel mean of the training images, in [0, 1]
  std_C: np.ndarray  # per-channel standard deviation, in [0, 1]

  def fingerprint(self) -> str:
    """The hash of the three splits' images and labels (`data.fingerprint`)."""
    return fingerprint(self.train_x, self.train_y, self.valid_x, self.valid_y, self.test_x,
                       self.test_y)

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.train_x.shape[1:])  # type: ignore[return-value]


def _finish(name: str, train: tuple[np.ndarray, np.ndarray],
            valid: tuple[np.ndarray, np.ndarray] | None, test: tuple[np.ndarray, np.ndarray],
            num_classes: int, valid_size: int, field: str) -> ImageSplits:
  train_x, train_y = train
  if valid is None:  # carved from the end of the training split (valid_size 0: none)
    if valid_size >= len(train_x):
      raise UserError(f"Config field `{field}.valid_size` ({valid_size}) must be smaller than the "
                      f"training split ({len(train_x)} images of {name}).")
    cut = len(train_x) - valid_size
    valid = (train_x[cut:], train_y[cut:])
    train_x, train_y = train_x[:cut], train_y[:cut]
  if len(test[0]) == 0:
    raise UserError(f"The dataset {name} has an empty test split; add images to it.")
  pixels = train_x.reshape(-1, train_x.shape[-1]).astype(np.float64) / 255.0
  return ImageSplits(name, train_x, train_y.astype(np.int32), valid[0],
                     valid[1].astype(np.int32), test[0], test[1].astype(np.int32), num_classes,
                     pixels.mean(0).astype(np.float32), pixels.std(0).astype(np.float32) + 1e-6)


# --- synthetic ------------------------------------------------------------------------------------

def check_synthetic_memory(cfg: SyntheticImagesConfig, valid_size: int,
                           section: str = "data.synthetic") -> None:
  """A UserError, before anything is made, when the synthetic images cannot fit in the host
  memory this process may still take: the larger split's making (its images twice in float64,
  label, shift and flip per image) on top of every split's uint8 images and int32 labels, and the
  class templates. Without it a large `test_images` was touched page by page until the kernel
  killed the process (NumPy's MemoryError comes only where the address space runs out)."""
  pixels = cfg.size * cfg.size * 3
  counts = (cfg.train_images + valid_size, cfg.test_images)
  making = max(counts) * (2 * 8 * pixels + 8 + 16 + 1)
  kept = sum(counts) * (pixels + 4)
  need = making + kept + 2 * 8 * cfg.num_classes * (cfg.size + 4) ** 2 * 3
  memory_lib.check_host_room(
      need, f"The synthetic images ({section}) need", "to make",
      f"`{section}.train_images`, `test_images`, `size` or `num_classes` (or `data.valid_size`)")


def synthetic_images(cfg: SyntheticImagesConfig, valid_size: int) -> ImageSplits:
  """Class templates (smooth random colour patterns) shifted, flipped and noised per image.

  Learnable but not trivially: the class is in the spatial pattern, not in a mean colour, so
  convolutions, pooling and depth matter. A pure function of `cfg.seed`.
  """
  check_synthetic_memory(cfg, valid_size)
  rng = np.random.default_rng(cfg.seed)
  s, c = cfg.size, cfg.num_classes
  coarse = rng.normal(size=(c, 4, 4, 3))
  templates = np.kron(coarse, np.ones((1, s // 4 + 1, s // 4 + 1, 1)))[:, :s, :s, :]
  for _ in range(2):  # smooth the blocks a little
    templates = (templates + np.roll(templates, 1, 1) + np.roll(templates, 1, 2)) / 3
  templates /= templates.std(axis=(1, 2, 3), keepdims=True)

  def make(n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, c, size=n)
    shift = rng.integers(-2, 3, size=(n, 2))
    flip = rng.random(n) < 0.5
    x = templates[y]
    for sh in np.unique(shift, axis=0):  # each of the 25 shifts once, for all its images
      rows = np.nonzero((shift == sh).all(axis=1))[0]
      x[rows] = np.roll(x[rows], tuple(sh), axis=(1, 2))
    x[flip] = x[flip, :, ::-1]
    noise = rng.normal(size=x.shape)  # the arithmetic below in place: the same numbers,
    noise *= cfg.noise                # without four more image-sized float64 temporaries
    x += noise
    del noise
    x *= 50
    x += 128
    return np.clip(x, 0, 255, out=x).astype(np.uint8), y.astype(np.int32)

  train = make(cfg.train_images + valid_size)
  test = make(cfg.test_images)
  return _finish("synthetic", train, None, test, c, valid_size, "data")


# --- CIFAR-10's python-pickle files -------------------------------------------------------------

CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
# What a CIFAR-10 batch file may build when unpickled: NumPy arrays and byte strings (protocol
# 2 from Python 3 spells bytes through _codecs.encode), nothing else: a pickle can otherwise run
# any code.
_CIFAR_GLOBALS = {("numpy.core.multiarray", "_reconstruct"),
                  ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
                  ("numpy", "dtype"), ("_codecs", "encode")}


class _ArraysOnly(pickle.Unpickler):
  def find_class(self, module: str, name: str) -> Any:
    if (module, name) not in _CIFAR_GLOBALS:
      raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
    return super().find_class(module, name)


def _cifar_batch(path: str, field: str) -> tuple[np.ndarray, np.ndarray]:
  """One batch file: uint8 images [N, 32, 32, 3] (the file's rows are channel-major, as the
  authors reshape them) and int labels [N]."""
  try:
    with open(path, "rb") as f:
      data = _ArraysOnly(f, encoding="bytes").load()
    rows = np.asarray(data[b"data"], np.uint8)
    labels = np.asarray(data[b"labels"], np.int32)
    images = rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    if len(images) != len(labels):
      raise ValueError(f"{len(images)} images but {len(labels)} labels")
  except FileNotFoundError:
    raise UserError(f"{path} does not exist: `{field}.data_dir` must be the directory "
                    f"cifar-10-batches-py, holding data_batch_1..5 and test_batch (see the "
                    f"README).") from None
  except Exception as err:  # a truncated, foreign or hostile file
    raise UserError(f"{path} is not a CIFAR-10 python batch file ({type(err).__name__}: "
                    f"{' '.join(str(err).split())[:200]}). Unpack cifar-10-python.tar.gz again "
                    f"into `{field}.data_dir`.") from None
  return np.ascontiguousarray(images), labels


def cifar10_batches(data_dir: str, valid_size: int, field: str = "data") -> ImageSplits:
  """CIFAR-10 from `cifar-10-batches-py`, as the authors' `data_utils.read_data` reads it: the
  five training batches in order, the last `valid_size` images of them (of data_batch_5 for
  5,000) the validation split, test_batch the test split."""
  if not data_dir:
    raise UserError(f"Config field `{field}.data_dir` is empty: set it to the directory "
                    f"cifar-10-batches-py (unpacked from cifar-10-python.tar.gz; see the README), "
                    f"or use `{field}.source=synthetic`.")
  parts = [_cifar_batch(os.path.join(data_dir, name), field) for name in CIFAR10_TRAIN_FILES]
  train = (np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]))
  test = _cifar_batch(os.path.join(data_dir, CIFAR10_TEST_FILE), field)
  return _finish("cifar10", train, None, test, 10, valid_size, field)


# --- tensorflow-datasets --------------------------------------------------------------------------

def _tfds_split(tfds, name: str, split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
  ds = tfds.load(name, split=split, data_dir=data_dir, download=False, shuffle_files=False)
  xs, ys = [], []
  for batch in tfds.as_numpy(ds.batch(4096)):
    xs.append(batch["image"])
    ys.append(batch["label"])
  return np.concatenate(xs), np.concatenate(ys)


def tfds_images(name: str, data_dir: str, valid_size: int, field: str = "data") -> ImageSplits:
  """`name`'s train and test splits from a prepared tfds data directory (never downloads)."""
  try:
    import tensorflow_datasets as tfds  # heavy: imported only for this source
  except ImportError:
    raise UserError(f"Config field `{field}.source` is tfds, but tensorflow-datasets is not "
                    f"installed. Run `{INSTALL_IMAGES}`, or use `{field}.source=synthetic`.") \
        from None
  try:
    train = _tfds_split(tfds, name, "train", data_dir or None)
    test = _tfds_split(tfds, name, "test", data_dir or None)
    info = tfds.builder(name, data_dir=data_dir or None).info
    num_classes = info.features["label"].num_classes
  except Exception as err:  # tfds raises assorted types for a missing or partial directory
    where = data_dir or "tfds's default directory (~/tensorflow_datasets)"
    raise UserError(
        f"Cannot load the tfds dataset {name!r} from {where} (field `{field}.data_dir`): "
        f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}. Prepare it once on "
        f"a machine with internet (`python -c \"import tensorflow_datasets as tfds; "
        f"tfds.builder('{name}', data_dir='DIR').download_and_prepare()\"`), copy DIR here and "
        f"set --config.{field}.data_dir=DIR (see the README).") from None
  return _finish(name, train, None, test, num_classes, valid_size, field)


# --- image folder (data/image_folder.py) --------------------------------------------------------

def folder_images(root: str, valid_size: int, field: str = "data") -> ImageSplits:
  """The image-folder layout (`image_folder`'s docstring) as splits."""
  name, arrays, num_classes = read_folder(root, field)
  return _finish(name, arrays["train"], arrays.get("valid"), arrays["test"], num_classes,
                 valid_size, field)


def load_images(cfg: ImageDataConfig, field: str = "data") -> ImageSplits:
  """The splits `cfg` names, after checking its augmentation against their image size."""
  if cfg.source == "synthetic":
    splits = synthetic_images(cfg.synthetic, cfg.valid_size)
  elif cfg.source == "folder":
    splits = folder_images(cfg.data_dir, cfg.valid_size, field)
  elif cfg.source == "cifar10_batches":
    splits = cifar10_batches(cfg.data_dir, cfg.valid_size, field)
  else:
    splits = tfds_images(cfg.name, cfg.data_dir, cfg.valid_size, field)
  check_augmentation(cfg, splits.train_x.shape[1:3], field)
  return splits


def check_augmentation(cfg: ImageDataConfig, size_HW: tuple[int, ...], field: str) -> None:
  """A UserError when the augmentation can blank an image: a padding of the image's side or
  more lets the crop land on padding only, and a cutout square wider than the image can cover
  it whole (a mistyped value trained on blank images without a word)."""
  side = min(size_HW)
  limits = (("pad_crop", cfg.pad_crop, side - 1, "the crop could land on padding only"),
            ("cutout", cfg.cutout, side, "the square would be wider than the images"))
  for name, value, most, why in limits:
    if value > most:
      raise UserError(
          f"Config field `{field}.{name}` is {value}, more than {most} for these "
          f"{size_HW[0]}x{size_HW[1]} images: {why}. Use at most {most} (the authors: pad_crop "
          f"4 and cutout 16 on 32x32 images).")
