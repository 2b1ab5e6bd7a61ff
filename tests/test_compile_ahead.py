"""Compiling ahead (`run/ahead.py`): the controller phase's programs and the whole-split
evaluation compiled in the background during the first shared phase, each once, and reused by
their first calls; the run the same to the bit as without."""
import collections

import pytest

from enas_jax.configs import quickstart
from enas_jax.run.ahead import CompileAhead
from tests import runs


def test_wait_reraises_what_the_compilation_raised_once():
  def fails():
    raise ValueError("no such shape")

  ahead = CompileAhead(fails)
  with pytest.raises(ValueError, match="no such shape"):
    ahead.wait()
  ahead.wait()  # raised once; the thread has finished
  done = []
  CompileAhead(lambda: done.append(1)).wait()
  assert done == [1]


def _by_thread(compiles: list[tuple[str, str]]) -> dict[str, collections.Counter]:
  out: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  for program, thread in compiles:
    out["ahead" if thread == "compile-ahead" else "main"][program] += 1
  return out


def test_the_controller_programs_and_evaluation_compile_once_ahead_and_change_nothing(
    tmp_path):
  cfg = runs.search_config(quickstart)
  ahead, plain = [], []
  with runs.counting_compiles(ahead):
    runs.search(cfg, tmp_path / "ahead")
  with runs.counting_compiles(plain):
    runs.search(cfg, tmp_path / "plain", compile_ahead=False)
  ahead, plain = _by_thread(ahead), _by_thread(plain)
  # ahead: the controller's draw, score and guarded update and the evaluation step, in the
  # background thread, once each; their calls on the main thread reuse them
  for program in ("jit(draw)", "jit(score_S)", "jit(guarded)", "jit(eval_step)"):
    assert ahead["ahead"][program] == 1, (program, ahead)
  assert ahead["main"]["jit(guarded)"] == 1  # the shared step
  assert ahead["main"]["jit(block_draw)"] == 1  # its architectures' draw
  for program in ("jit(draw)", "jit(score_S)", "jit(eval_step)"):
    assert ahead["main"][program] == 0, (program, ahead)
    assert plain["main"][program] == 1, (program, plain)
  assert plain["main"]["jit(guarded)"] == 2 and not plain["ahead"]
  runs.assert_same_run(tmp_path / "ahead", tmp_path / "plain")
