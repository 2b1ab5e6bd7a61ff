"""Image data: the three sources, clear errors, augmentation by hand, data order."""
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from enas_jax.data import image_batches, images
from enas_jax.data.lm_batches import Cursor
from enas_jax.io.errors import UserError


def test_synthetic_images_are_deterministic_and_split():
  cfg = images.SyntheticImagesConfig(train_images=100, test_images=30, size=8, num_classes=4)
  a = images.synthetic_images(cfg, valid_size=20)
  b = images.synthetic_images(cfg, valid_size=20)
  np.testing.assert_array_equal(a.train_x, b.train_x)
  assert a.train_x.shape == (100, 8, 8, 3) and a.train_x.dtype == np.uint8
  assert a.valid_x.shape == (20, 8, 8, 3) and a.test_x.shape == (30, 8, 8, 3)
  assert set(np.unique(a.train_y)) <= set(range(4)) and a.num_classes == 4
  np.testing.assert_allclose(a.mean_C, a.train_x.reshape(-1, 3).mean(0) / 255, rtol=1e-5)
  # the fingerprint a checkpoint keeps: the same for the same images, another for one pixel
  assert a.fingerprint() == b.fingerprint()
  changed = a.train_x.copy()
  changed[3, 2, 1, 0] ^= 1
  assert dataclasses.replace(a, train_x=changed).fingerprint() != a.fingerprint()
  assert dataclasses.replace(a, train_y=a.train_y[::-1].copy()).fingerprint() != a.fingerprint()


def _write_cifar_batches(root, sizes=(6, 6, 6, 6, 7), test_size=5):
  """CIFAR-10's python files as cifar-10-python.tar.gz holds them (pickled dicts with bytes
  keys, uint8 rows of 3072 channel-major pixels); returns the images in file order."""
  import pickle
  root.mkdir(parents=True)
  rng = np.random.default_rng(0)
  written = {}
  for name, n in [*zip(images.CIFAR10_TRAIN_FILES, sizes), (images.CIFAR10_TEST_FILE, test_size)]:
    rows = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    with open(root / name, "wb") as f:
      pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": rows,
                   b"filenames": [b"x.png"] * n}, f, protocol=2)
    written[name] = (rows, labels)
  return written


def test_synthetic_images_too_large_for_this_process_are_refused_before_they_are_made(
    monkeypatch):
  """`data.synthetic.test_images=2**31 - 1` was touched page by page until the kernel killed the
  process (exit -9, no word). The estimate by hand: the larger split (110 images of 8 x 8 x 3)
  made in float64 twice plus label, shift and flip, 110 * (2 * 8 * 192 + 25); every split kept as
  uint8 with an int32 label, 160 * 196; three 12 x 12 x 3 float64 templates twice, 20,736. It is
  the measured peak to 1% at 201,000 images of 16 x 16 (2.45 GiB against 2.44)."""
  cfg = images.SyntheticImagesConfig(train_images=100, test_images=50, size=8, num_classes=3)
  need = 110 * (2 * 8 * 192 + 25) + 160 * 196 + 20_736
  assert need == 392_766
  room = images.memory_lib.Headroom(need - 1, "a bound")
  monkeypatch.setattr(images.memory_lib, "host_headroom", lambda: room)
  with pytest.raises(UserError, match=r"^The synthetic images \(data.synthetic\) need about 0.37 "
                     r"MiB to make, more than this process may still use \(0.37 MiB: a bound\)\. "
                     r"Lower `data.synthetic.train_images`"):
    images.synthetic_images(cfg, valid_size=10)
  room = images.memory_lib.Headroom(need, "a bound")
  made = images.synthetic_images(cfg, valid_size=10)
  assert made.train_x.shape == (100, 8, 8, 3) and made.test_x.shape == (50, 8, 8, 3)


def test_cifar10_python_batches_with_the_authors_validation_split(tmp_path):
  written = _write_cifar_batches(tmp_path / "cifar-10-batches-py")
  splits = images.cifar10_batches(str(tmp_path / "cifar-10-batches-py"), valid_size=9)
  rows = np.concatenate([written[n][0] for n in images.CIFAR10_TRAIN_FILES])
  labels = sum((written[n][1] for n in images.CIFAR10_TRAIN_FILES), [])
  # pixel (row r, column c, channel k) of image i is byte k*1024 + r*32 + c of its row
  i, r, c, k = 4, 3, 17, 2
  assert splits.train_x[i, r, c, k] == rows[i, k * 1024 + r * 32 + c]
  # the authors' split: the last 9 training images (2 of data_batch_4, 7 of data_batch_5)
  assert splits.train_x.shape == (22, 32, 32, 3) and splits.valid_x.shape == (9, 32, 32, 3)
  np.testing.assert_array_equal(splits.valid_x.reshape(9, -1),
                                rows[-9:].reshape(9, 3, 32, 32).transpose(0, 2, 3, 1)
                                .reshape(9, -1))
  assert list(splits.valid_y) == labels[-9:] and list(splits.train_y) == labels[:-9]
  assert list(splits.test_y) == written["test_batch"][1] and splits.num_classes == 10
  # normalised by the training part's statistics (after the hold-out), as the authors do
  expected = splits.train_x.reshape(-1, 3).astype(np.float64).mean(0) / 255
  np.testing.assert_allclose(splits.mean_C, expected, rtol=1e-6)


def test_a_data_dir_given_with_synthetic_images_is_refused():
  """The `:cpu` presets generate their images: a `data.data_dir` given with one (a real-data run
  meant) was read by nothing, and the run went on with synthetic images without a word."""
  images.ImageDataConfig(source="synthetic").validate()
  images.ImageDataConfig(source="cifar10_batches", data_dir="/data/cifar").validate()
  with pytest.raises(UserError, match=r"`data.data_dir` is '/data/cifar', but the source is "
                                      r"synthetic \(the :cpu and :tiny presets\), which reads "
                                      r"no files: set `data.source` to cifar10_batches"):
    images.ImageDataConfig(source="synthetic", data_dir="/data/cifar").validate()


def test_cifar10_python_batches_errors(tmp_path):
  with pytest.raises(UserError, match=r"`data.data_dir` is empty: set it to the directory"):
    images.cifar10_batches("", valid_size=9)
  root = tmp_path / "cifar-10-batches-py"
  _write_cifar_batches(root)
  (root / "data_batch_3").unlink()
  with pytest.raises(UserError, match=r"data_batch_3 does not exist: `data.data_dir`"):
    images.cifar10_batches(str(root), valid_size=9)
  (root / "data_batch_3").write_bytes(b"\x80\x02truncated")
  with pytest.raises(UserError, match=r"data_batch_3 is not a CIFAR-10 python batch file"):
    images.cifar10_batches(str(root), valid_size=9)
  import pickle  # a pickle that would run code is refused, not executed
  (root / "data_batch_3").write_bytes(pickle.dumps(os.system))
  with pytest.raises(UserError, match=r"refusing to load posix.system"):
    images.cifar10_batches(str(root), valid_size=9)


def test_tfds_cifar10_through_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=40):
    splits = images.tfds_images("cifar10", "", valid_size=10)
    # the same mock records, read with tfds itself in file order
    train = list(tfds.as_numpy(tfds.load("cifar10", split="train", shuffle_files=False)))
    test = list(tfds.as_numpy(tfds.load("cifar10", split="test", shuffle_files=False)))
  assert splits.train_x.shape == (30, 32, 32, 3) and splits.valid_x.shape == (10, 32, 32, 3)
  assert splits.test_x.shape[1:] == (32, 32, 3) and splits.num_classes == 10
  assert splits.train_y.dtype == np.int32
  # pixels and labels as tfds gives them; the validation split is the last 10 training records
  np.testing.assert_array_equal(np.concatenate([splits.train_x, splits.valid_x]),
                                np.stack([r["image"] for r in train]))
  np.testing.assert_array_equal(np.concatenate([splits.train_y, splits.valid_y]),
                                [r["label"] for r in train])
  np.testing.assert_array_equal(splits.test_x, np.stack([r["image"] for r in test]))
  np.testing.assert_array_equal(splits.test_y, [r["label"] for r in test])


def test_tfds_missing_directory_is_one_clear_error(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(UserError, match="data_dir.*download_and_prepare"):
    images.tfds_images("cifar10", str(tmp_path / "none"), valid_size=10)


def _write_folder(root, bad=None):
  from PIL import Image
  rng = np.random.default_rng(0)
  for split, n in (("train", 6), ("test", 3)):
    os.makedirs(root / split)
    lines = []
    for i in range(n):
      Image.fromarray(rng.integers(0, 255, (5, 4, 3), dtype=np.uint8)).save(
          root / split / f"im{i}.png")
      lines.append(f"im{i}.png {['cat', 'dog'][i % 2]}")
    (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
  if bad == "missing":
    with open(root / "test.txt", "a") as f:
      f.write("gone.png cat\n")
  elif bad == "unreadable":
    (root / "test" / "im1.png").write_bytes(b"not a png")
  elif bad == "label":
    with open(root / "test.txt", "a") as f:
      f.write("im0.png bird\n")
  elif bad == "latin1":  # a listing saved in another encoding: a UnicodeDecodeError traceback
    listing = (root / "test.txt").read_bytes().split(b"\n")
    listing[1] = listing[1].replace(b".png", b"\xe9.png")
    (root / "test.txt").write_bytes(b"\n".join(listing))
  elif bad == "size":
    Image.fromarray(np.zeros((6, 4, 3), np.uint8)).save(root / "test" / "im2.png")


def test_image_folder_layout(tmp_path):
  pytest.importorskip("PIL")
  _write_folder(tmp_path)
  splits = images.folder_images(str(tmp_path), valid_size=2)
  assert splits.num_classes == 2  # cat, dog (sorted names)
  assert splits.train_x.shape == (4, 5, 4, 3) and splits.valid_x.shape == (2, 5, 4, 3)
  assert splits.test_y.tolist() == [0, 1, 0]
  from PIL import Image
  np.testing.assert_array_equal(splits.test_x[1],
                                np.asarray(Image.open(tmp_path / "test" / "im1.png")))


def test_image_folder_classes_txt_and_valid_txt(tmp_path):
  """classes.txt fixes the label order (here dog first); valid.txt gives the validation split
  (nothing is carved from train.txt then)."""
  pytest.importorskip("PIL")
  from PIL import Image
  _write_folder(tmp_path)
  (tmp_path / "classes.txt").write_text("dog\ncat\nbird\n")
  os.makedirs(tmp_path / "valid")
  Image.fromarray(np.full((5, 4, 3), 7, np.uint8)).save(tmp_path / "valid" / "v0.png")
  (tmp_path / "valid.txt").write_text("v0.png bird\n")
  splits = images.folder_images(str(tmp_path), valid_size=2)
  assert splits.num_classes == 3
  assert splits.train_x.shape[0] == 6 and splits.train_y.tolist() == [1, 0, 1, 0, 1, 0]
  assert splits.valid_y.tolist() == [2] and int(splits.valid_x[0, 0, 0, 0]) == 7
  (tmp_path / "classes.txt").write_text("\n")
  with pytest.raises(UserError, match="classes.txt lists no classes"):
    images.folder_images(str(tmp_path), valid_size=2)


@pytest.mark.parametrize("bad, message", [
    ("missing", r"test.txt line 4: the listed image .*gone.png does not exist"),
    ("unreadable", r"test.txt line 2: cannot read the image .*im1.png"),
    ("label", r"test.txt line 4: unknown label 'bird'"),
    ("size", r"test.txt line 3: image im2.png is 4x6 but the first image is 4x5; all images"),
    ("latin1", r"test.txt line 2 is not UTF-8 text \(byte \d+\); write the file as UTF-8"),
])
def test_image_folder_errors_name_file_and_line(tmp_path, bad, message):
  pytest.importorskip("PIL")
  _write_folder(tmp_path, bad)
  with pytest.raises(UserError, match=message):
    images.folder_images(str(tmp_path), valid_size=2)


def test_augmentation_by_hand():
  x = jnp.arange(2 * 6 * 6 * 1, dtype=jnp.float32).reshape(2, 6, 6, 1) + 1
  key = jax.random.key(0)
  same = image_batches.augment(key, x, pad_crop=0, flip=False, cutout=0)
  np.testing.assert_array_equal(same, x)
  flipped = image_batches.augment(key, x, pad_crop=0, flip=True, cutout=0)
  for b in range(2):
    assert (np.array_equal(flipped[b], x[b]) or np.array_equal(flipped[b], x[b, :, ::-1]))
  crops = image_batches.augment(key, x, pad_crop=2, flip=False, cutout=0)
  padded = np.pad(np.asarray(x), ((0, 0), (2, 2), (2, 2), (0, 0)))
  for b in range(2):  # each crop is some 6x6 window of the zero-padded image
    assert any(np.array_equal(crops[b], padded[b, i:i + 6, j:j + 6])
               for i in range(5) for j in range(5))
  holes = image_batches.augment(key, jnp.ones((50, 8, 8, 1)), pad_crop=0, flip=False, cutout=4)
  zeros = np.asarray(holes == 0).sum(axis=(1, 2, 3))
  assert zeros.max() == 16 and zeros.min() >= 4  # a 4x4 square, clipped at the border
  np.testing.assert_array_equal(
      image_batches.augment(key, x, 2, True, 2), image_batches.augment(key, x, 2, True, 2))


def test_an_augmentation_that_can_blank_an_image_is_refused():
  """A padding of the image's side or more lets the crop land on padding only; a cutout wider
  than the image can cover it whole. Both trained on blank images without a word (measured: the
  micro final training's `tiny` preset with pad_crop or cutout 100000000 ended rc 0); the
  bounds by hand, for 8x8 and for 8x12 images (the shorter side counts)."""
  base = images.ImageDataConfig(source="synthetic", valid_size=8,
                                synthetic=images.SyntheticImagesConfig(train_images=16,
                                                                       test_images=4, size=8))
  for pad, cut in ((7, 0), (0, 8), (7, 8)):
    images.load_images(dataclasses.replace(base, pad_crop=pad, cutout=cut))
  with pytest.raises(UserError) as err:
    images.load_images(dataclasses.replace(base, pad_crop=8))
  assert str(err.value) == (
      "Config field `data.pad_crop` is 8, more than 7 for these 8x8 images: the crop could land "
      "on padding only. Use at most 7 (the authors: pad_crop 4 and cutout 16 on 32x32 images).")
  with pytest.raises(UserError, match=r"`data.cutout` is 9, more than 8 for these 8x8 images: "
                                      r"the square would be wider than the images"):
    images.load_images(dataclasses.replace(base, cutout=9))
  with pytest.raises(UserError, match=r"`train.data.cutout` is 9, more than 8 for these 8x12"):
    images.check_augmentation(dataclasses.replace(base, cutout=9), (8, 12), "train.data")
  images.check_augmentation(dataclasses.replace(base, pad_crop=7, cutout=8), (12, 8), "data")


def test_data_order_is_a_pure_function_of_seed_stream_and_pass():
  x = np.arange(10)[:, None, None, None].astype(np.uint8)
  y = np.arange(10, dtype=np.int32)
  stream = image_batches.ImageStream(x, y, batch_size=3, seed=5, stream=0)
  assert stream.batches_per_pass == 3
  cursor = Cursor()
  first = [b[1].tolist() for b in stream.take(cursor, 7)]
  assert (cursor.pass_index, cursor.window) == (2, 1)
  seen = sum(first[:3], [])
  assert len(set(seen)) == 9  # one pass: no repeats, the partial batch dropped
  resumed = Cursor(pass_index=1, window=0)  # where a checkpoint after 3 batches resumes
  assert [b[1].tolist() for b in stream.take(resumed, 4)] == first[3:]
  other = image_batches.ImageStream(x, y, batch_size=3, seed=5, stream=1)
  assert [b[1].tolist() for b in other.take(Cursor(), 3)] != first[:3]


def test_a_batch_larger_than_the_split_is_all_of_it_and_the_run_says_so():
  """`data.batch_size` above the training images: every batch is the whole split, reshuffled each
  pass (the run went on without a word; its description now says so)."""
  x = np.arange(10)[:, None, None, None].astype(np.uint8)
  y = np.arange(10, dtype=np.int32)
  stream = image_batches.ImageStream(x, y, batch_size=100000, seed=5, stream=0)
  batches = [b[1].tolist() for b in stream.take(Cursor(), 2)]
  assert [sorted(b) for b in batches] == [list(range(10))] * 2 and batches[0] != batches[1]
  assert image_batches.whole_split_note(100000, 10) == (
      "; note: data.batch_size (100000) is more than the 10 training images, so every batch is "
      "all of them")
  assert image_batches.whole_split_note(10, 10) == ""


def test_eval_batches_pad_and_mask():
  x = np.zeros((5, 2, 2, 3), np.uint8)
  y = np.arange(5, dtype=np.int32)
  batches = list(image_batches.eval_batches(x, y, 2))
  assert [b[2].tolist() for b in batches] == [[1, 1], [1, 1], [1, 0]]
  assert batches[-1][1].tolist() == [4, 0]
