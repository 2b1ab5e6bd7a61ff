"""The planted-cell corpus: deterministic, state-dependent, and its optimum computed exactly."""
import dataclasses
import re

import numpy as np
import pytest

from enas_jax.tasks.language import planted
from enas_jax.io.errors import UserError
from tests.reference_cell import reference_lm

SMALL = planted.PlantedConfig(seed=3,  # default teacher sizes, fewer tokens
                              train_tokens=20_000, valid_tokens=3_000, test_tokens=3_000)


@pytest.fixture(scope="module")
def corpus():
  return planted.make_planted_corpus(SMALL)


def test_deterministic_from_seed(corpus):
  again = planted.generate_corpus(SMALL)  # generated again, not the process's kept corpus
  for split in ("train", "valid", "test"):
    np.testing.assert_array_equal(again.split(split), corpus.split(split))
  assert again.info == corpus.info
  other = planted.make_planted_corpus(dataclasses.replace(SMALL, seed=4))
  assert not np.array_equal(other.train[:1000], corpus.train[:1000])


def test_a_corpus_is_generated_once_per_process_and_cannot_be_changed(monkeypatch):
  """A second run on the same config gets the same tokens without generating them: read-only
  arrays (a run writing into its corpus would change the next run's) and its own `info`."""
  cfg = dataclasses.replace(SMALL, seed=11, train_tokens=2_000, valid_tokens=500,
                            test_tokens=500)
  first = planted.make_planted_corpus(cfg)
  monkeypatch.setattr(planted, "generate_corpus", lambda cfg: pytest.fail("generated again"))
  again = planted.make_planted_corpus(cfg)
  assert again.train is first.train and again.info == first.info
  with pytest.raises(ValueError, match="read-only"):
    again.train[0] = 1
  again.info["teacher_ppl_valid"] = -1.0
  assert planted.make_planted_corpus(cfg).info == first.info
  monkeypatch.undo()
  np.testing.assert_array_equal(planted.generate_corpus(cfg).train, first.train)


def test_sizes_vocab_and_sentences(corpus):
  assert 0.9 * 20_000 <= len(corpus.train) <= 20_000
  assert corpus.vocab_size == SMALL.vocab_size and corpus.words[0] == "<eos>"
  assert corpus.train.max() < SMALL.vocab_size and corpus.train[-1] == 0 and corpus.valid[-1] == 0
  mean_sentence = len(corpus.train) / np.sum(corpus.train == 0)
  assert 5 < mean_sentence < 100


def test_teacher_is_far_better_than_unigram(corpus):
  for split in ("valid", "test"):
    assert corpus.info[f"teacher_ppl_{split}"] < 0.3 * corpus.info[f"unigram_ppl_{split}"]


@pytest.mark.parametrize("readout,reset", [("standardize", True), ("linear", True),
                                           ("linear", False)])
def test_reported_teacher_perplexity_is_exact(corpus, readout, reset):
  # Without the reset, one stream: the split is then one history from h = 0.
  cfg = dataclasses.replace(SMALL, readout=readout, logit_scale=6.0 if readout == "linear"
                            else SMALL.logit_scale, reset_at_eos=reset,
                            num_streams=SMALL.num_streams if reset else 1)
  if cfg != SMALL:
    corpus = planted.make_planted_corpus(cfg)
  teacher = planted.make_teacher(cfg)
  params = {"embedding": teacher.embedding_VxH, "cell": teacher.cell,
            "softmax_bias": teacher.bias_V}
  tokens = corpus.valid
  # The first token was generated from (h = 0, x = <eos>), as after every sentence.
  inputs = np.concatenate([[0], tokens[:-1]])[None, :]
  logits, _ = reference_lm(params, list(teacher.arch.prev_N), list(teacher.arch.act_N), inputs,
                           np.zeros((1, SMALL.hidden_dim)), out_HxV=teacher.out_HxV,
                           reset_token=0 if reset else None,
                           standardize=readout == "standardize")
  # <eos> (id 0) has probability q = 1 / mean_sentence_length; words share 1 - q by softmax.
  words = logits[0][:, 1:]
  words = words - words.max(1, keepdims=True)
  words = words - np.log(np.sum(np.exp(words), 1, keepdims=True))
  q = 1.0 / SMALL.mean_sentence_length
  logp = np.concatenate([np.full((len(words), 1), np.log(q)), words + np.log(1 - q)], axis=1)
  nll = -np.mean(logp[np.arange(1, len(tokens)), tokens[1:]])
  assert np.exp(nll) == pytest.approx(corpus.info["teacher_ppl_valid"], rel=1e-4)


def test_a_stream_cut_into_chunks_is_the_same_stream_and_one_program_serves_every_split(
    monkeypatch):
  """Two chunks of C steps from the carried state give, to the bit, the tokens, log-probs and
  state of one scan over 2C steps; a corpus traces (so compiles) its generator once for its
  three splits, and a corpus of another teacher of the same sizes and cell not at all."""
  import jax
  import jax.numpy as jnp
  teacher = planted.make_teacher(SMALL)
  key = jax.random.key(5)
  carry0 = (jnp.zeros((7, SMALL.hidden_dim)), jnp.zeros((7,), jnp.int32))
  run = lambda carry, first, steps: jax.jit(lambda c, f: planted._generate(
      teacher, key, c, f, steps, 0.04, "linear", True))(carry, np.int32(first))
  whole = run(carry0, 0, 64)
  first = run(carry0, 0, 32)
  second = run(first[0], 32, 32)
  np.testing.assert_array_equal(np.concatenate([first[1], second[1]], 1), whole[1])
  np.testing.assert_array_equal(np.concatenate([first[2], second[2]], 1), whole[2])
  np.testing.assert_array_equal(second[0][0], whole[0][0])
  assert np.sum(whole[1] == 0) > 0  # sentences ended inside: the resets crossed the cut too
  traces = []
  generate = planted._generate
  monkeypatch.setattr(planted, "_generate", lambda *a, **k: traces.append(1) or generate(*a, **k))
  planted._chunk.clear_cache()
  planted.generate_corpus(dataclasses.replace(SMALL, seed=8))
  assert len(traces) == 1
  # the teacher's weights are the program's arguments: another teacher of the same sizes and
  # cell reuses it
  planted.generate_corpus(dataclasses.replace(SMALL, seed=9, arch=planted.to_authors_string(
      planted.make_teacher(dataclasses.replace(SMALL, seed=8)).arch)))
  planted.generate_corpus(dataclasses.replace(SMALL, seed=8, train_tokens=5_000))
  assert len(traces) == 1


def test_a_corpus_too_large_for_this_process_is_refused_before_it_is_made(monkeypatch):
  """It was a generation that ran for ever (10^12 tokens) or a C++ abort in the teacher's random
  weights (a width of 2^31 - 1). The estimate: teacher + 3 copies of the largest split's
  generated int32 tokens and float64 log-probabilities + the splits' tokens kept."""
  cfg = dataclasses.replace(SMALL, num_streams=10, mean_sentence_length=10.0)
  steps = max(planted._split_steps(cfg, n) for n in (20_000, 3_000, 3_000))
  assert steps == 2_400 + 40
  generated = 3 * 12 * 10 * steps
  # node 0's w_x and w_h [32, 64] and 15 (node, prev) matrices [32, 64]; embedding and readout
  teacher = 4 * (2 * 32 * 64 + 15 * 32 * 64 + 2 * 100 * 32)
  need = teacher + generated + 4 * 26_000
  assert need == 1_147_264
  made = []
  monkeypatch.setattr(planted, "make_teacher", lambda c: made.append(c))
  room = planted.memory_lib.Headroom(need - 1, "a bound")
  monkeypatch.setattr(planted.memory_lib, "host_headroom", lambda: room)
  words = planted.memory_lib.size_in_words
  assert (words(need), words(need - 1)) == ("1.09 MiB", "1.09 MiB")
  with pytest.raises(UserError, match=re.escape(
      "The planted corpus (data.planted) needs about 1.09 MiB to generate, more than this process "
      "may still use (1.09 MiB: a bound). Lower `data.planted.train_tokens`")):
    planted.make_planted_corpus(cfg)
  assert not made
  room = planted.memory_lib.Headroom(need, "a bound")
  with pytest.raises(AttributeError):  # past the check: the stubbed teacher is None
    planted.make_planted_corpus(cfg)
  assert made == [cfg]


def test_a_split_in_which_no_stream_ended_a_sentence_is_one_paragraph(monkeypatch):
  """It was a ValueError from concatenating no streams; a draw with few streams and long
  sentences (here: 3 steps of one stream, a sentence ending with probability 1/1000 a step)."""
  cfg = dataclasses.replace(SMALL, num_streams=1, mean_sentence_length=1000.0)
  monkeypatch.setattr(planted, "_split_steps", lambda c, n: 3)
  with pytest.raises(UserError, match="ended no sentence in 3 steps of each of its 1 stream"):
    planted.make_planted_corpus(cfg)


def test_bad_planted_config():
  with pytest.raises(UserError, match="vocab_size"):
    planted.PlantedConfig(vocab_size=2).validate()
  with pytest.raises(UserError, match="readout.*standardize, linear"):
    planted.PlantedConfig(readout="softmax").validate()
  with pytest.raises(UserError, match="has 3 nodes"):
    planted.make_teacher(planted.PlantedConfig(num_nodes=5, arch="0 0 1 0 2"))
