"""Data parallelism on 8 simulated CPU devices (a fresh process: the device count is fixed when
JAX starts): the micro and recurrent spaces' sharded steps (the macro space shares the micro
space's image task, batch norm and placement) and a whole search match one device and compile
once."""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_sharded_steps_and_a_whole_search_match_one_device_and_compile_once(tmp_path):
  env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, str(ROOT / "tests" / "data_parallel_check.py"),
                           str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  figures = json.loads(result.stdout.strip().splitlines()[-1])
  for space in ("micro", "rnn"):
    for phase in ("shared", "controller", "derive"):
      # the loss, accuracy/perplexity, reward, gradient norm and the updated weights (which carry
      # the gradients), and the derive step's sampled cells and their scores, agree with the
      # single-device steps up to float rounding: measured on 2026-12-03, weights within 1.2e-7
      # and figures within 4.6e-7 of their size (a few float32 ulps); the bounds leave room for
      # another CPU's summation order
      scale = max(figures[f"{space}_{phase}_scale"], 1.0)
      assert figures[f"{space}_{phase}_metric_diff"] <= 2e-6 * scale, (space, phase, figures)
      assert figures[f"{space}_{phase}_param_diff"] <= 1e-6, (space, phase, figures)
    assert figures[f"{space}_traces"] == [1, 1, 1], figures  # shared, controller, derive steps
  # a whole two-epoch search: the same derived cells; its figures and final weights (after every
  # step's rounding differences have compounded through training) within 5e-5 and 1e-4
  # (measured 7.7e-6 and 2.9e-5); still one compilation per phase
  assert figures["rnn_search_cells_equal"] and figures["rnn_search_figures"] >= 8, figures
  assert figures["rnn_search_figure_rel_diff"] <= 5e-5, figures
  assert figures["rnn_search_param_diff"] <= 1e-4, figures
  assert figures["rnn_search_traces"] == [1, 1, 1], figures
  # the answer's screen (on in the recurrent configs) screens the same candidates with the same
  # verdicts through the already compiled data-parallel shared step (the traces above)
  single, sharded = figures["rnn_screen_verdicts_equal"]
  assert single and single == sharded, figures
  assert figures["rnn_screen_rel_diff"] <= 5e-5, figures
  # compiled ahead (`run/ahead.py`) for the sharded placements: only the evaluation step, which
  # the steps above did not need; the controller's programs were compiled for these placements
  assert figures["rnn_search_compiles"] == {"ahead": {"jit(eval_step)": 1}}, figures
  # each step traced once, the search's metric shapes included (traced with the loop's
  # shardings, so the sharded calls reuse those traces), over all of the above
  assert figures["rnn_step_traces"] == {"train": 1, "draw": 1, "score": 1, "update": 1}, figures
  assert "does not split over the 8 devices" in figures["bad_batch_error"]
  assert "data.batch_size" in figures["bad_batch_error"]
