"""The answer's screen (`search.screen_steps`, run/screen.py) on a tiny planted search: its figure
is training alone by hand, it passes over a candidate that fails and warns when all do, it
leaves the search itself as it was, and a finished search resumed with it screens as a run
that had it from the start."""
import io
import math
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from enas_jax.configs import quickstart
from enas_jax.data import lm_batches
from enas_jax.io import metrics
from enas_jax.io.errors import UserError
from enas_jax.ops.initialize import FAST_COMPILE
from enas_jax.ops.params import set_learning_rate
from enas_jax.run import config as run_config
from enas_jax.run import outputs
from enas_jax.run import search as search_run
from enas_jax.spaces.rnn import formats
from enas_jax.tasks.language import steps as lm_steps
from tests import runs


def _cfg(**search):
  config = quickstart.get_config("tiny")
  config.search.derive_samples = 8
  for field, value in search.items():
    config.search[field] = value
  return run_config.search_config(config)


def _run(workdir, cfg, limit=None):
  """A search (or a finished one re-finished); `limit` replaces the task's screen limit."""
  run = search_run.SearchRun(cfg, str(workdir), io.StringIO(), metrics.Progress(enabled=False))
  if limit is not None:
    run.task.screen_limit = lambda: ("nll", limit)
  return run, run.execute()


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("screen")
  plain = _run(tmp / "plain", _cfg(screen_steps=0))
  steps = plain[0].task.train.windows_per_pass(0) + 2  # across a pass boundary
  if steps % 2:
    steps += 1
  jax.clear_caches()  # the screened search's compilations counted from nothing
  compiles = []
  with runs.counting_compiles(compiles):
    screened = _run(tmp / "screened", _cfg(screen_steps=steps))
  return tmp, plain, screened, steps, [program for program, _ in compiles]


def _by_hand(run, authors, steps):
  """The screen's figure computed here: fresh weights from the screen's key (stream 6) folded
  with 0, the recipe's first learning rate, the training split's first windows from its start
  (the carry reset where a pass starts), each step's key as the guarded shared step makes it;
  exp(mean NLL) over the last half of the steps."""
  cfg, task = run.cfg, run.task
  key = jax.random.fold_in(jax.random.key(cfg.seed), 6)
  init_key = jax.random.fold_in(key, 0)
  model = jax.jit(task.init_model).lower(init_key).compile(FAST_COMPILE)(init_key)
  model = model.replace(opt_state=set_learning_rate(model.opt_state, cfg.shared.lr_at_epoch(0)))
  arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32),
                                formats.from_authors_string(authors))
  step, d, stream = jax.jit(task.train_step), cfg.data, task.train
  nll = []
  for epoch in range(2):
    for w in lm_batches.windows(stream.data_BxN, d.bptt, cfg.seed, epoch, d.variable_bptt,
                                stream.width):
      if len(nll) < steps:
        if w.start == 0:
          model = model.replace(hidden=jnp.zeros_like(model.hidden))
        step_key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, 1), len(nll)), 1)
        model, m = step(model, lm_steps.window_batch(w, d.bptt, d.variable_bptt), arch,
                        step_key)
        nll.append(float(m["nll"]))
  assert len(nll) == steps
  return math.exp(np.mean(nll[steps // 2:]))


def test_the_screen_is_training_alone_and_leaves_the_search_as_it_was(searches):
  tmp, (_, plain), (run, screened), steps, compiles = searches
  # the screen trains with the search's own compiled shared step and makes its fresh weights
  # with the initialiser the search started from: nothing compiled twice
  assert compiles.count("jit(init_model)") == 1, compiles
  assert compiles.count("jit(guarded)") == 2, compiles  # the shared step and the update
  assert screened["history"] == plain["history"] and screened["rescored"] == plain["rescored"]
  screen = screened["screen"]
  assert screen["steps"] == steps and "screen" not in plain
  assert screen["limit_ppl"] == pytest.approx(len(run.task.corpus.words))
  first = screen["candidates"][0]
  best_scored = min(plain["rescored"], key=lambda r: r["valid_ppl_shared"])["authors"]
  assert first["authors"] == best_scored
  np.testing.assert_allclose(first["train_ppl"], _by_hand(run, best_scored, steps), rtol=1e-5)
  assert first["passed"] and first["skipped_steps"] == 0 and len(screen["candidates"]) == 1
  assert screened["authors"] == plain["authors"] and not screen["all_failed"]
  lines = "\n".join(outputs.result_lines(screened, str(tmp / "screened")))
  assert (f"screen: it trains alone (training perplexity {first['train_ppl']:.4g} over the last "
          f"{steps - steps // 2} of {steps} steps alone from fresh weights; a uniform guess: "
          f"{screen['limit_ppl']:.4g})") in lines


def test_a_finished_search_resumed_with_the_screen_screens_as_from_the_start(searches):
  tmp, _, (_, screened), steps, _ = searches
  shutil.copytree(tmp / "plain", tmp / "resumed")
  assert _run(tmp / "resumed", _cfg(screen_steps=steps))[1] == screened


def test_a_candidate_over_the_limit_is_passed_over_and_all_failing_is_a_warning(searches):
  tmp, (_, plain), (_, screened), steps, _ = searches
  order = [r["authors"] for r in sorted(plain["rescored"], key=lambda r: r["valid_ppl_shared"])]
  assert len(order) >= 2, "the tiny search should derive at least two distinct cells"
  # a limit just under the first candidate's figure: it fails, the next ones are screened in
  # score order until one passes, and that one is the answer
  limit = math.log(screened["screen"]["candidates"][0]["train_ppl"]) - 1e-4
  shutil.copytree(tmp / "plain", tmp / "strict")
  _, summary = _run(tmp / "strict", _cfg(screen_steps=steps), limit)
  found = summary["screen"]["candidates"]
  assert [c["authors"] for c in found] == order[:len(found)]
  assert [c["passed"] for c in found] == [c["train_ppl"] <= math.exp(limit) for c in found]
  assert not found[0]["passed"]
  if found[-1]["passed"]:
    assert summary["authors"] == found[-1]["authors"] and not summary["screen"]["all_failed"]
    line = f"screen: passed over {found[0]['authors']} ("
  else:
    assert len(found) == len(order) and summary["authors"] == order[0]
    line = "warning: every candidate failed the screen"
  assert line in "\n".join(outputs.result_lines(summary, str(tmp / "strict")))
  # nothing passes a limit below zero: every candidate screened, the best-scored kept, a warning
  shutil.copytree(tmp / "plain", tmp / "none")
  _, summary = _run(tmp / "none", _cfg(screen_steps=steps), -1.0)
  assert [c["authors"] for c in summary["screen"]["candidates"]] == order
  assert summary["screen"]["all_failed"] and summary["authors"] == order[0]
  assert summary["valid_ppl_shared"] == plain["valid_ppl_shared"]
  lines = "\n".join(outputs.result_lines(summary, str(tmp / "none")))
  assert "warning: every candidate failed the screen" in lines
  assert "may not train alone at this learning rate" in lines


def test_a_negative_screen_is_a_config_error():
  with pytest.raises(UserError, match="search.screen_steps"):
    _cfg(screen_steps=-1).validate()
