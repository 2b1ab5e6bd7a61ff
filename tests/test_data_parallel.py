"""Data parallelism on 8 simulated CPU devices (a fresh process: the device count is fixed when
JAX starts): the sharded steps match one device and compile once."""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_sharded_steps_match_one_device_and_compile_once(tmp_path):
  env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, str(ROOT / "tests" / "data_parallel_check.py"),
                           str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  figures = json.loads(result.stdout.strip().splitlines()[-1])
  for space in ("macro", "rnn"):
    for phase in ("shared", "controller"):
      # the loss, accuracy/perplexity, reward, gradient norm and the updated weights (which carry
      # the gradients) agree with the single-device step up to float rounding: measured on
      # 2026-12-02, weights within 1.2e-7 and figures within 4.6e-7 of their size (a few float32
      # ulps); the bounds leave room for another CPU's summation order
      scale = max(figures[f"{space}_{phase}_scale"], 1.0)
      assert figures[f"{space}_{phase}_metric_diff"] <= 2e-6 * scale, (space, phase, figures)
      assert figures[f"{space}_{phase}_param_diff"] <= 1e-6, (space, phase, figures)
    assert figures[f"{space}_traces"] == [1, 1], figures  # shared and controller steps
  assert "does not split over the 8 devices" in figures["bad_batch_error"]
  assert "data.batch_size" in figures["bad_batch_error"]
