"""Data: word-level corpora (`text`), the planted-cell corpus (`planted`), LM batching
(`lm_batches`). `TextDataConfig` + `load_corpus` turn the config's `data` section into a Corpus."""
from __future__ import annotations

import dataclasses
from typing import Literal

from enas_jax.tasks.language.planted import PlantedConfig, make_planted_corpus
from enas_jax.data.text import Corpus, read_corpus
from enas_jax.io.configuration import require
from enas_jax.io.errors import UserError


@dataclasses.dataclass(frozen=True)
class TextDataConfig:
  """The `data` section of a recurrent config (see configs/ptb_rnn.py for comments)."""

  source: Literal["planted", "directory"] = "directory"
  dir: str = ""
  batch_size: int = 64
  eval_batch_size: int = 10
  test_batch_size: int = 1
  bptt: int = 35
  variable_bptt: bool = False
  max_bptt: int = 55
  reward_windows: int = 1
  planted: PlantedConfig = dataclasses.field(default_factory=PlantedConfig)

  def validate(self, section: str = "data") -> None:
    require(self, section, ">= 1", "batch_size", "eval_batch_size", "test_batch_size", "bptt",
            "max_bptt", "reward_windows")
    if self.variable_bptt and self.max_bptt < self.bptt:
      raise UserError(f"Config field `{section}.max_bptt` ({self.max_bptt}) must be at least "
                      f"`{section}.bptt` ({self.bptt}).")
    if self.source == "directory" and not self.dir:
      raise UserError(f"Config field `{section}.dir` is empty: set it to the corpus directory "
                      f"(with train.txt, valid.txt, test.txt), e.g. "
                      f"--config.{section}.dir=data/ptb, "
                      f"or use `{section}.source=planted` for the built-in synthetic corpus.")

  def unread(self) -> dict[str, str]:
    """The fields this section's source does not read, each with why and the fix: a
    command-line override of one is refused (`cli.common.refuse_unread_overrides`), as the run
    would otherwise ignore it silently (e.g. a corpus directory given to the planted preset)."""
    if self.source == "planted":
      return {"dir": "data.source is 'planted', a corpus generated in memory. To read the "
                     "corpus in that directory add --config.data.source=directory; to use the "
                     "planted corpus drop --config.data.dir."}
    return {"planted": "data.source is 'directory', a corpus read from data.dir; the planted "
                       "corpus's settings apply to data.source=planted only. Add "
                       "--config.data.source=planted, or drop the override."}

  @property
  def reward_length(self) -> int:
    """Tokens per row of one reward (or derive) batch: `reward_windows` windows of `bptt`."""
    return self.bptt * self.reward_windows

  @property
  def window_width(self) -> int:
    return self.max_bptt if self.variable_bptt else self.bptt


def load_corpus(cfg: TextDataConfig, section: str = "data") -> Corpus:
  if cfg.source == "planted":
    return make_planted_corpus(cfg.planted)
  return read_corpus(cfg.dir, field=f"{section}.dir")
