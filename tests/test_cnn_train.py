"""Final training of CNNs (macro and micro): the loop, parameter count, resume bit for bit, the
CLI."""
import io
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from enas_jax.configs import cifar10_macro_final
from enas_jax.io import metrics
from enas_jax.io.errors import UserError
from enas_jax.run import config as run_config
from enas_jax.run import final as final_run
from tests import runs

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _cfg(**train):
  return runs.final_config(cifar10_macro_final, **train)


_run = runs.final


def test_final_training_resumes_bit_for_bit_and_counts_parameters(tmp_path):
  run, summary = _run(_cfg(), tmp_path / "straight")
  assert summary["epochs"] == 2 and len(summary["history"]) == 2
  assert all(0 <= h["test_acc"] <= 1 for h in summary["history"])
  params = run.final_state.model.params
  assert "aux_head" in params  # the tiny preset trains with the auxiliary head ...
  expected = sum(x.size for k, v in params.items() if k != "aux_head"
                 for x in jax.tree_util.tree_leaves(v))
  assert summary["params"] == expected  # ... which the reported count leaves out
  # one compilation each for every training step and every validation and test batch (the last
  # one padded and masked)
  assert run.task.step._cache_size() == 1 and run.task.eval_step._cache_size() == 1

  _run(_cfg(epochs=1), tmp_path / "resumed")
  resumed_run, resumed = _run(_cfg(), tmp_path / "resumed")
  assert resumed["history"] == summary["history"]
  assert resumed_run.task.step._cache_size() == resumed_run.task.eval_step._cache_size() == 1
  jax.tree_util.tree_map(np.testing.assert_array_equal, resumed_run.final_state.model,
                         run.final_state.model)


def test_an_epoch_whose_every_step_was_skipped_stops_the_training(tmp_path):
  """`train.stop_on_divergence` (on by default): at a learning rate of 1e30 the first epoch's
  steps still pass (batch norm keeps the huge weights' outputs finite) and every step of the
  second has a non-finite result and is skipped, so the weights do not change in it: the run
  stops after it with one paragraph, its record and checkpoint written and no summary; resumed
  with the option off, it finishes."""
  workdir, out = tmp_path / "stalled", io.StringIO()
  run = final_run.FinalRun(_cfg(lr=1e30), str(workdir), out, metrics.Progress(enabled=False))
  with pytest.raises(UserError, match="Every one of epoch 2's 6 training steps had a NaN/Inf"
                     ) as err:
    run.execute()
  message = " ".join(str(err.value).split())
  assert "--config.train.lr (now 1e+30)" in message and "grad_clip (now 5.0)" in message
  assert ("warning: 6 step(s) up to step 12 had a NaN/Inf loss or result and were skipped; if it "
          "repeats, start again with a lower --config.train.lr (now 1e+30) or a tighter "
          "--config.train.grad_clip (now 5.0).") in out.getvalue()
  rows = metrics.read_metrics(str(workdir / "metrics.jsonl"))
  assert [r["step"] for r in rows if r["phase"] == "epoch"] == [1, 2]  # epochs
  assert [r["skipped_steps"] for r in rows if r["phase"] == "train"][-1] == 6
  assert not (workdir / "summary.json").exists()
  _, summary = _run(_cfg(lr=1e30, stop_on_divergence=False), workdir)
  assert summary["epochs"] == 2 and len(summary["history"]) == 2


def test_missing_or_wrong_architecture_is_a_clear_error(tmp_path):
  config = cifar10_macro_final.get_config("tiny")
  config.arch = ""
  with pytest.raises(UserError, match="`arch` is empty"):
    run_config.final_config(config)
  config.arch = "1 5 1"  # two layers, the model has three
  with pytest.raises(UserError, match="model.num_layers"):
    final_run.FinalRun(run_config.final_config(config), str(tmp_path), io.StringIO(),
                       metrics.Progress(enabled=False))
  assert not os.listdir(tmp_path)  # nothing written for a bad architecture


def _train_cli(*args):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run([sys.executable, "-m", "enas_jax.train", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)


def test_train_cli_dispatches_on_the_space_field(tmp_path):
  result = _train_cli("--config=configs/cifar10_macro_final.py:tiny",
                      f"--workdir={tmp_path / 'w'}", "--config.train.epochs=1")
  assert result.returncode == 0, result.stderr
  assert "test accuracy" in result.stdout and "parameters" in result.stdout
  assert (tmp_path / "w" / "summary.json").is_file()


def test_micro_final_training_compiles_once_and_wrong_space_architecture(tmp_path):
  from enas_jax.configs import cifar10_micro_final
  out = io.StringIO()
  run = final_run.FinalRun(runs.final_config(cifar10_micro_final, epochs=1), str(tmp_path / "w"),
                           out, metrics.Progress(enabled=False))
  run.execute()
  assert "micro network of 3 cells" in out.getvalue() and "test accuracy" in out.getvalue()
  # every training step (drop-path keep changing with the step) and every evaluation batch
  assert run.task.step._cache_size() == 1 and run.task.eval_step._cache_size() == 1
  summary = json.loads((tmp_path / "w" / "summary.json").read_text())
  assert summary["space"] == "micro" and summary["params"] > 0
  assert summary["architecture"]["outputs"] == {"normal": [3], "reduce": [3]}
  bad = _train_cli("--config=configs/cifar10_micro_final.py:tiny", f"--workdir={tmp_path / 'w2'}",
                   "--config.arch=1 5 1 2 0 1")
  assert bad.returncode == 2 and "Traceback" not in bad.stderr
  assert "8B" in bad.stderr and not (tmp_path / "w2").exists()


def test_batch_norm_running_statistics_by_hand():
  """The fixed networks' batch norm: one training call moves the running mean and variance
  10% of the way to the batch's (biased) statistics; evaluation then normalises with them."""
  from enas_jax.ops.fixed_blocks import ConvBN
  block = ConvBN(features=3, kernel=1)
  x = jax.random.normal(jax.random.key(0), (4, 5, 5, 2)) * 3.0 + 1.0
  variables = block.init(jax.random.key(1), x, train=False)
  y, updates = block.apply(variables, x, train=True, mutable=["batch_stats"])
  conv = np.asarray(x) @ np.asarray(variables["params"]["Conv_0"]["kernel"][0, 0])  # 1x1 conv
  mean, var = conv.mean(axis=(0, 1, 2)), conv.var(axis=(0, 1, 2))
  stats = updates["batch_stats"]["BatchNorm_0"]
  np.testing.assert_allclose(stats["mean"], 0.1 * mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(stats["var"], 0.9 * 1.0 + 0.1 * var, rtol=1e-5)
  # training output: normalised by the batch's own statistics
  np.testing.assert_allclose(y, (conv - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-4)
  # evaluation: by the running ones
  y_eval = block.apply({**variables, "batch_stats": updates["batch_stats"]}, x, train=False)
  np.testing.assert_allclose(y_eval, (conv - stats["mean"]) / np.sqrt(stats["var"] + 1e-5),
                             rtol=1e-4, atol=1e-4)


def test_a_schedule_planned_past_2_to_the_31_steps_traces_and_reads_the_same_ratio():
  """`search.epochs=2**31 - 1` (or `shared_steps`) made the planned total a Python int past int32:
  an OverflowError traceback when the shared step was traced. The drop-path ratio divides by it
  as a float now, in float32 as before."""
  import jax.numpy as jnp
  import optax
  from enas_jax.data.images import ImageDataConfig
  from enas_jax.tasks.images import steps as cnn_steps

  ratios = []

  def apply(params, arch, x, key, step_ratio):
    ratios.append(step_ratio)
    return x.reshape(x.shape[0], -1) @ params["w"], None

  params = {"w": jnp.full((2 * 2 * 3, 3), 0.1)}
  optimizer = optax.sgd(0.1)
  state = cnn_steps.CNNState(params=params, batch_stats={}, opt_state=optimizer.init(params),
                             step=jnp.asarray(6, jnp.int32))
  batch = {"images": np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3),
           "labels": np.array([0, 2], np.int32)}
  data = ImageDataConfig(source="synthetic", pad_crop=0, cutout=0, flip=False)
  for total in (2 ** 32, 700):
    step, _ = cnn_steps.make_shared_steps(apply, optimizer, cnn_steps.ImageTrainConfig(), data,
                                          np.zeros(3), np.ones(3), 0.0, total)
    jax.jit(step)(state, batch, None, jax.random.key(0))  # traces: was the OverflowError
    ratios.clear()
    with jax.disable_jit():  # the ratio the step computes, as a number
      step(state, batch, None, jax.random.key(0))
    assert ratios[0].dtype == jnp.float32
    assert float(ratios[0]) == float(np.float32(7) / np.float32(total))
