"""Mikolov-layout corpora and LM batching."""
import numpy as np
import pytest

from enas_jax.data import lm_batches, text
from enas_jax.io.errors import UserError


def _corpus(tmp_path, train="a b c\nb <unk> a\n", valid="a z\n", test="c c\n", prefix=""):
  for name, content in (("train", train), ("valid", valid), ("test", test)):
    (tmp_path / f"{prefix}{name}.txt").write_text(content)
  return str(tmp_path)


def test_reads_vocab_in_order_with_eos_and_unk(tmp_path):
  c = text.read_corpus(_corpus(tmp_path))
  assert c.words == ("a", "b", "c", "<eos>", "<unk>")
  np.testing.assert_array_equal(c.train, [0, 1, 2, 3, 1, 4, 0, 3])
  np.testing.assert_array_equal(c.valid, [0, 4, 3])  # 'z' -> <unk>
  np.testing.assert_array_equal(c.test, [2, 2, 3])


def test_accepts_ptb_file_names(tmp_path):
  c = text.read_corpus(_corpus(tmp_path, prefix="ptb."))
  assert c.vocab_size == 5


def test_oov_without_unk_is_an_error_with_count_and_file(tmp_path):
  d = _corpus(tmp_path, train="a b\n", valid="a z y z\n")
  with pytest.raises(UserError, match=r"valid.txt has 3 words \(2 distinct"):
    text.read_corpus(d)


def test_missing_directory_and_split(tmp_path):
  with pytest.raises(UserError, match="does not exist.*data.dir"):
    text.read_corpus(str(tmp_path / "nope"))
  (tmp_path / "train.txt").write_text("a\n")
  (tmp_path / "valid.txt").write_text("a\n")
  with pytest.raises(UserError, match="no test split: looked for test.txt, ptb.test.txt"):
    text.read_corpus(str(tmp_path))
  (tmp_path / "test.txt").mkdir()  # it said the split was missing, while test.txt was there
  with pytest.raises(UserError, match=f"corpus file {tmp_path / 'test.txt'} .* is not a file"):
    text.read_corpus(str(tmp_path))


def test_empty_split_and_bad_bytes(tmp_path):
  with pytest.raises(UserError, match="valid.txt is empty"):
    text.read_corpus(_corpus(tmp_path, valid="\n \n"))
  (tmp_path / "valid.txt").write_bytes(b"a b\nc \xff\xfe\n")
  with pytest.raises(UserError, match=r"not valid UTF-8: byte 6 \(line 2\)"):
    text.read_corpus(str(tmp_path))


def test_write_then_read_is_identity(tmp_path):
  c = text.read_corpus(_corpus(tmp_path))
  text.write_corpus(c, str(tmp_path / "copy"))
  d = text.read_corpus(str(tmp_path / "copy"))
  assert d.words == c.words
  for s in text.SPLITS:
    np.testing.assert_array_equal(d.split(s), c.split(s))


def test_batchify_and_fixed_windows_cover_every_prediction_once():
  tokens = np.arange(103, dtype=np.int32)
  data = lm_batches.batchify(tokens, 4)
  assert data.shape == (4, 25)
  np.testing.assert_array_equal(data[1], np.arange(25, 50))
  wins = list(lm_batches.windows(data, 7))
  assert [w.length for w in wins] == [7, 7, 7, 3]
  assert all(w.inputs_BxW.shape == (4, 7) for w in wins)
  got = np.concatenate([w.targets_BxW[:, :w.length] for w in wins], axis=1)
  np.testing.assert_array_equal(got, data[:, 1:])
  np.testing.assert_array_equal(wins[-1].valid_W, [1, 1, 1, 0, 0, 0, 0])
  # Resuming inside an epoch gives the same remaining windows.
  rest = list(lm_batches.windows(data, 7, start_window=2))
  np.testing.assert_array_equal(rest[0].inputs_BxW, wins[2].inputs_BxW)


def test_variable_windows_are_a_pure_function_of_seed_and_epoch():
  data = lm_batches.batchify(np.arange(5000, dtype=np.int32), 2)
  lengths = lambda s, e: [w.length for w in lm_batches.windows(data, 35, s, e, variable=True)]
  assert lengths(0, 1) == lengths(0, 1)
  assert lengths(0, 1) != lengths(0, 2)
  assert lengths(0, 1) != lengths(1, 1)
  ls = lengths(0, 1)
  assert sum(ls) == data.shape[1] - 1 and max(ls) <= 55 and min(ls[:-1]) >= 5
  assert len(set(ls)) > 5


def test_batch_size_one_and_too_short_corpus():
  data = lm_batches.batchify(np.arange(10, dtype=np.int32), 1)
  assert data.shape == (1, 10)
  with pytest.raises(UserError, match="too few for batch size 4 with windows of 35"):
    lm_batches.batchify(np.arange(100, dtype=np.int32), 4, split="train", min_steps=35)


def test_fingerprint_by_hand():
  """`data.fingerprint`: SHA-256 over tagged parts, checked against hashlib by hand; a corpus's
  changes with a word or a token id."""
  import hashlib
  from enas_jax.data.fingerprint import fingerprint
  ids = np.array([[1, 2], [3, 4]], np.int32)
  by_hand = hashlib.sha256(b"l2:s1:a" + b"s2:bc" + b"a<i4(2, 2):" + ids.tobytes()).hexdigest()
  assert fingerprint(("a", "bc"), ids) == by_hand
  assert fingerprint(("a", "bc"), ids.astype(np.int64)) != by_hand  # the dtype counts
  assert fingerprint(("ab", "c"), ids) != by_hand  # so do the words' boundaries
  corpus = text.Corpus(("<eos>", "a"), np.array([0, 1], np.int32), np.array([1], np.int32),
                       np.array([0], np.int32))
  other = text.Corpus(("<eos>", "b"), corpus.train, corpus.valid, corpus.test)
  assert corpus.fingerprint() != other.fingerprint()
  assert corpus.fingerprint() != text.Corpus(corpus.words, corpus.train, corpus.test,
                                             corpus.valid).fingerprint()
