"""An image folder in ENAS-pytorch's layout, read into arrays (`images.folder_images` splits them):
  ROOT/train.txt, ROOT/valid.txt (optional), ROOT/test.txt: one image per line, `FILE LABEL`,
      FILE relative to ROOT/<split>/ (no spaces in it), LABEL an integer class id or a class name;
  ROOT/train/, ROOT/valid/, ROOT/test/: the images (PNG, JPEG, anything Pillow reads), all the
      same size; colour or grey (converted to RGB);
  ROOT/classes.txt (optional): the class names, one per line, in label order. Without it the
      classes are the labels in train.txt (integers in numeric order, names sorted).
A listed file that is missing, an unreadable image, an image of another size or a label that is
not a class is an error naming the file and line.
"""
from __future__ import annotations

import os

import numpy as np

from enas_jax.io.errors import UserError

INSTALL_IMAGES = 'pip install -e ".[images]"'


def _text_lines(path: str) -> list[str]:
  """The lines of a listing or classes.txt, or a UserError naming it (unreadable, not UTF-8)."""
  try:
    with open(path, encoding="utf-8") as f:
      return f.read().split("\n")
  except OSError as err:
    raise UserError(f"Cannot read {path}: {err.strerror}.") from None
  except UnicodeDecodeError as err:
    with open(path, "rb") as f:
      line = f.read(err.start).count(b"\n") + 1
    raise UserError(f"{path} line {line} is not UTF-8 text (byte {err.start}); write the file "
                    f"as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from None


def _read_listing(path: str) -> list[tuple[int, str, str]]:
  """(line number, file name, label) per non-empty line of a split listing."""
  rows = []
  for number, line in enumerate(_text_lines(path), 1):
    parts = line.split()
    if not parts:
      continue
    if len(parts) != 2:
      raise UserError(f"{path} line {number}: expected `FILE LABEL` (two fields separated by "
                      f"a space), got {line.strip()!r}.")
    rows.append((number, parts[0], parts[1]))
  return rows


def _class_names(root: str, train_rows: list[tuple[int, str, str]]) -> list[str]:
  path = os.path.join(root, "classes.txt")
  if os.path.isfile(path):
    names = [line.strip() for line in _text_lines(path) if line.strip()]
    if not names:
      raise UserError(f"{path} lists no classes; write one class name per line or delete it.")
    return names
  labels = sorted({label for _, _, label in train_rows})
  if all(label.isdigit() for label in labels):
    labels = [str(i) for i in range(max(int(label) for label in labels) + 1)]
  return labels


def _read_image(path: str, where: str) -> np.ndarray:
  try:
    from PIL import Image  # optional dependency (the `images` extra)
  except ImportError:
    raise UserError(f"Reading the image folder needs Pillow. Run `{INSTALL_IMAGES}`.") from None
  if not os.path.isfile(path):
    raise UserError(f"{where}: the listed image {path} does not exist. Fix the listing or add "
                    f"the file.")
  try:
    with Image.open(path) as img:
      return np.asarray(img.convert("RGB"), np.uint8)
  except Exception as err:  # Pillow raises several types for a corrupt file
    raise UserError(f"{where}: cannot read the image {path} ({type(err).__name__}: {err}). "
                    f"Replace the file or remove its line.") from None


def read_folder(root: str, field: str = "data"
                ) -> tuple[str, dict[str, tuple[np.ndarray, np.ndarray]], int]:
  """(name, {split: (images [N, H, W, C] uint8, labels [N] int32)}, class count) of the layout
  described in the module docstring; "valid" only when the folder has its own."""
  if not os.path.isdir(root):
    raise UserError(f"Config field `{field}.data_dir` is {root!r}, which is not a directory. Set "
                    f"it to the image-folder root (train.txt, test.txt, train/, test/).")
  listings = {}
  for split in ("train", "valid", "test"):
    path = os.path.join(root, f"{split}.txt")
    if os.path.isfile(path):
      listings[split] = (path, _read_listing(path))
    elif split != "valid":
      raise UserError(f"The image folder {root} (field `{field}.data_dir`) has no {split}.txt; "
                      f"it needs train.txt and test.txt listing `FILE LABEL` per line (see the "
                      f"README).")
  classes = _class_names(root, listings["train"][1])
  index = {name: i for i, name in enumerate(classes)}
  shape = None
  arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
  for split, (listing, rows) in listings.items():
    if not rows:
      raise UserError(f"{listing} lists no images.")
    images, labels = [], []
    for number, name, label in rows:
      where = f"{listing} line {number}"
      if label not in index:
        raise UserError(f"{where}: unknown label {label!r}; the classes are {classes[:20]}"
                        f"{' ...' if len(classes) > 20 else ''} (from classes.txt, or the labels "
                        f"of train.txt). Fix the label or add the class to classes.txt.")
      img = _read_image(os.path.join(root, split, name), where)
      if shape is None:
        shape = img.shape
      elif img.shape != shape:
        raise UserError(f"{where}: image {name} is {img.shape[1]}x{img.shape[0]} but the first "
                        f"image is {shape[1]}x{shape[0]}; all images must have the same size.")
      images.append(img)
      labels.append(index[label])
    arrays[split] = (np.stack(images), np.asarray(labels, np.int32))
  return os.path.basename(os.path.normpath(root)), arrays, len(classes)
