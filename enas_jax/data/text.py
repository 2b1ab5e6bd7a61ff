"""Word-level corpora in the Mikolov layout (Penn Treebank, WikiText-2, your own).

A corpus directory holds `train.txt`, `valid.txt` and `test.txt` (also accepted: `ptb.train.txt`
and WikiText's `wiki.train.tokens`, likewise for valid/test). Each line's whitespace-separated
words are followed by one `<eos>`. The vocabulary is built from the training split in order of
first appearance; a valid/test word outside it maps to `<unk>` when the vocabulary has `<unk>`,
and is an error otherwise.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping

import numpy as np

from enas_jax.data.fingerprint import fingerprint
from enas_jax.io.errors import UserError

EOS = "<eos>"
UNK = "<unk>"
SPLITS = ("train", "valid", "test")
_NAME_PATTERNS = ("{split}.txt", "ptb.{split}.txt", "wiki.{split}.tokens")


@dataclasses.dataclass(frozen=True)
class Corpus:
  """Token ids of the three splits and the vocabulary they index."""

  words: tuple[str, ...]
  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray
  name: str = "corpus"
  # Extra facts a synthetic corpus knows, e.g. the planted teacher's perplexity per split.
  info: Mapping[str, float] = dataclasses.field(default_factory=dict)

  def fingerprint(self) -> str:
    """The hash of the vocabulary and the three splits' token ids (`data.fingerprint`)."""
    return fingerprint(self.words, self.train, self.valid, self.test)

  @property
  def vocab_size(self) -> int:
    return len(self.words)

  def split(self, name: str) -> np.ndarray:
    return {"train": self.train, "valid": self.valid, "test": self.test}[name]


def find_split(directory: str, split: str, field: str = "data.dir") -> str:
  """The path of `split` in `directory`, or a UserError naming what was looked for."""
  if not os.path.isdir(directory):
    raise UserError(
        f"The corpus directory {directory!r} does not exist (config field `{field}`). Put "
        f"train.txt, valid.txt and test.txt there (the Mikolov layout, as PTB and WikiText-2 are "
        f"distributed) or set `{field}` to the directory that holds them.")
  names = [p.format(split=split) for p in _NAME_PATTERNS]
  for name in names:
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      return path
    if os.path.exists(path):
      raise UserError(f"The corpus file {path} (config field `{field}`) is not a file: the "
                      f"{split} split must be a text file of that name. Move it away and put the "
                      f"file there.")
  raise UserError(
      f"The corpus directory {directory!r} (config field `{field}`) has no {split} split: "
      f"looked for {', '.join(names)}. Add the file or point `{field}` at the right directory.")


def read_words(path: str) -> list[str]:
  """The words of a file, one `<eos>` after each line; UserError if undecodable or empty."""
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except OSError as err:
    raise UserError(f"Cannot read corpus file {path}: {err.strerror}.") from None
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as err:
    line = raw[:err.start].count(b"\n") + 1
    raise UserError(
        f"Corpus file {path} is not valid UTF-8: byte {err.start} (line {line}) cannot be "
        f"decoded. Re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from None
  words: list[str] = []
  for line in text.splitlines():
    words.extend(line.split())
    words.append(EOS)
  if not any(w != EOS for w in words):
    raise UserError(f"Corpus file {path} is empty (no words). Give a non-empty split.")
  return words


def build_vocabulary(words: list[str]) -> tuple[str, ...]:
  """Vocabulary in order of first appearance."""
  return tuple(dict.fromkeys(words))


def encode(words: list[str], vocab: Mapping[str, int], path: str) -> np.ndarray:
  """Word ids; out-of-vocabulary words become `<unk>` if the vocabulary has it."""
  unk = vocab.get(UNK)
  ids = np.empty(len(words), np.int32)
  oov: dict[str, int] = {}
  for i, w in enumerate(words):
    idx = vocab.get(w)
    if idx is None:
      oov[w] = oov.get(w, 0) + 1
      idx = unk if unk is not None else -1
    ids[i] = idx
  if oov and unk is None:
    examples = ", ".join(repr(w) for w in list(oov)[:5])
    raise UserError(
        f"Corpus file {path} has {sum(oov.values())} words ({len(oov)} distinct, e.g. "
        f"{examples}) that are not in the training split's vocabulary, and the vocabulary has "
        f"no {UNK} to map them to. Replace rare words with {UNK} in all splits, as PTB and "
        f"WikiText-2 do.")
  return ids


def read_corpus(directory: str, field: str = "data.dir") -> Corpus:
  """Reads a Mikolov-layout corpus; errors name the file and the config field to fix."""
  paths = {s: find_split(directory, s, field) for s in SPLITS}
  train_words = read_words(paths["train"])
  words = build_vocabulary(train_words)
  index = {w: i for i, w in enumerate(words)}
  arrays = {s: (encode(train_words, index, paths[s]) if s == "train" else
                encode(read_words(paths[s]), index, paths[s])) for s in SPLITS}
  name = os.path.basename(os.path.normpath(directory)) or directory
  return Corpus(words, arrays["train"], arrays["valid"], arrays["test"], name=name)


def write_corpus(corpus: Corpus, directory: str) -> None:
  """Writes a corpus in the Mikolov layout (one line per `<eos>`)."""
  os.makedirs(directory, exist_ok=True)
  eos = corpus.words.index(EOS)
  for split in SPLITS:
    ids = corpus.split(split)
    lines, current = [], []
    for i in ids:
      if i == eos:
        lines.append(" ".join(current))
        current = []
      else:
        current.append(corpus.words[i])
    if current:
      lines.append(" ".join(current))
    with open(os.path.join(directory, f"{split}.txt"), "w", encoding="utf-8") as f:
      f.write("\n".join(lines) + "\n")
