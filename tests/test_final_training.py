"""Final training: the enas_lm format pinned, the recipe's pieces against hand computations and
plain references, the LSTM baseline, the test protocol, and bit-exact resume."""
import dataclasses
import io
import json
import os
import pathlib
import shutil
import signal
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from enas_jax.configs import ptb_final
from enas_jax.io import metrics
from enas_jax.spaces.rnn.lstm_baseline import LSTMLanguageModel, hidden_for_budget, lstm_param_count
from enas_jax.io.errors import Stopped, UserError
from enas_jax.run import config as run_config
from enas_jax.run import final as final_run
from enas_jax.run import outputs
from enas_jax.spaces.rnn.space import SPACE as RNN
from enas_jax.tasks.language import final as lm_final
from enas_jax.tasks.language import steps as lm_steps
from enas_jax.spaces.rnn import cell as cell_lib
from enas_jax.spaces.rnn import formats
from enas_jax.spaces.rnn.arch import make_arch
from enas_jax.ops.params import count_params
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig
from tests.reference_cell import reference_lm

ENAS_PTB = "0 2 1 0 2 1 2 2 4 0 5 0 3 2 6 2"  # the enas_lm README's cell
NO_DROP = dict(embedding_dropout=0.0, input_dropout=0.0, output_dropout=0.0, dropconnect=0.0,
               hidden_norm_clip=0.0, init_range=0.5)


def test_enas_lm_format_meaning_is_pinned():
  arch = formats.from_enas_lm_string(ENAS_PTB)
  # node k >= 1: (prev, activation) with enas_lm ids 0 tanh, 1 ReLU, 2 sigmoid, 3 identity
  assert list(arch.prev_N) == [-1, 0, 1, 2, 2, 4, 5, 3, 6]
  names = ["tanh", "relu", "identity", "sigmoid"]  # our ids
  assert [names[a] for a in arch.act_N] == ["tanh", "sigmoid", "tanh", "relu", "sigmoid", "tanh",
                                            "tanh", "sigmoid", "sigmoid"]
  assert formats.to_enas_lm_string(arch) == ENAS_PTB
  assert formats.to_authors_string(arch) == "0 0 3 1 0 2 1 2 3 4 0 5 0 3 3 6 3"
  identity = formats.from_enas_lm_string("0 3")  # enas_lm's 3 is identity, ours is 2
  assert list(identity.act_N) == [0, 2]
  spec = formats.load_arch_spec("enas_lm:" + ENAS_PTB)
  assert spec.output == "nodes_after_first"


@pytest.mark.parametrize("text,match", [
    ("0 2 1", "even number"), ("0 4", "activation ids are 0 tanh, 1 ReLU, 2 sigmoid"),
    ("1 0", "may only read nodes 0..0")])
def test_enas_lm_format_errors(text, match):
  with pytest.raises(UserError, match=match):
    formats.from_enas_lm_string(text)


def test_unmarked_even_string_and_workdir_sources(tmp_path):
  with pytest.raises(UserError, match="write 'enas_lm:0 2 1 0'"):
    formats.load_arch_spec("0 2 1 0")
  with pytest.raises(UserError, match="no best_arch.json"):
    formats.load_arch_spec(str(tmp_path))
  outputs.write_arch(RNN, str(tmp_path / "best_arch"), formats.from_authors_string("1 0 2 1 3"),
                     {})
  spec = formats.load_arch_spec(str(tmp_path))
  assert formats.to_authors_string(spec.arch) == "1 0 2 1 3" and spec.output is None
  with pytest.raises(UserError, match="fixes node 0 to tanh"):
    formats.to_enas_lm_string(spec.arch)


def test_enas_lm_output_and_between_node_mask_match_the_reference():
  n, h, v, b, t = 5, 6, 11, 3, 4
  prev, act = [-1, 0, 1, 1, 3], [0, 3, 1, 2, 0]
  cfg = RNNModelConfig(num_nodes=n, embed_dim=h, hidden_dim=h, output="nodes_after_first",
                       **NO_DROP)
  model = RNNLanguageModel(cfg, v)
  tokens = jax.random.randint(jax.random.key(1), (b, t), 0, v)
  h0 = jax.random.normal(jax.random.key(2), (b, h))
  params = model.init(jax.random.key(0), tokens, h0, make_arch(prev, act))["params"]
  mask = (jax.random.bernoulli(jax.random.key(3), 0.7, (b, h)) / 0.7).astype(jnp.float32)
  cell = params["cell"]
  xw = jnp.take(params["embedding"], tokens.T, axis=0) @ cell["node0"]["w_x"]
  arch = make_arch(prev, act)
  _, out = cell_lib.unroll(xw, cell["node0"]["w_h"],
                              cell_lib.select_edge_weights(cell, arch.prev_N), arch, h0,
                              jnp.ones((t,), bool), cfg.cell_options, node_mask_BxH=mask)
  _, _, ref_states = reference_lm(params, prev, act, np.asarray(tokens), np.asarray(h0),
                                  "nodes_after_first", node_mask=np.asarray(mask),
                                  return_states=True)
  np.testing.assert_allclose(out, ref_states, rtol=2e-5, atol=2e-5)


def test_activation_l2_and_weight_decay_enter_the_loss_as_written():
  n, h, v, b, t = 3, 5, 7, 2, 4
  prev, act = (-1, 0, 1), (0, 1, 3)
  cfg = RNNModelConfig(num_nodes=n, embed_dim=h, hidden_dim=h, output="all_nodes", **NO_DROP)
  model = RNNLanguageModel(cfg, v, fixed_arch=(prev, act))
  opt = lm_steps.make_optimizer(lm_steps.SharedTrainConfig(lr=0.1, grad_clip=0.0))
  state = lm_steps.init_state(model, opt, jax.random.key(0), b, None)
  batch = {"inputs": jax.random.randint(jax.random.key(1), (b, t), 0, v),
           "targets": jax.random.randint(jax.random.key(2), (b, t), 0, v),
           "valid": jnp.ones((t,), bool), "lr_scale": jnp.ones(())}
  alpha, wd = 0.7, 1e-3
  train_step, _ = lm_steps.make_lm_steps(model, opt, wd, alpha)
  _, m = train_step(state, batch, None, jax.random.key(3))
  logits, _, states = reference_lm(state.params, list(prev), list(act),
                                   np.asarray(batch["inputs"]), np.zeros((b, h)), "all_nodes",
                                   return_states=True)
  logp = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
  nll = -np.mean(np.take_along_axis(logp, np.asarray(batch["targets"])[..., None], -1))
  squares = sum(np.sum(np.square(np.asarray(x, np.float64)))
                for x in jax.tree_util.tree_leaves(state.params))
  expected = nll + wd * squares + alpha * np.mean(np.square(states))
  assert float(m["nll"]) == pytest.approx(nll, rel=1e-5)
  assert float(m["loss"]) == pytest.approx(expected, rel=1e-5)


def test_asgd_trigger_by_hand():
  assert not lm_final.asgd_should_start([10.0, 9.0], 20.0, 2)  # not more than 2 epochs seen
  assert not lm_final.asgd_should_start([10.0, 9.0, 8.0], 9.5, 2)  # best before last 2: 10
  assert lm_final.asgd_should_start([10.0, 9.0, 8.0], 10.5, 2)
  assert lm_final.asgd_should_start([10.0, 9.0, 8.0, 7.0], 9.5, 2)  # best before: 9


def test_averaged_weights_are_the_mean_of_the_iterates():
  cfg = RNNModelConfig(num_nodes=2, embed_dim=4, hidden_dim=4, **NO_DROP)
  model = RNNLanguageModel(cfg, 7, fixed_arch=((-1, 0), (0, 1)))
  opt = lm_steps.make_optimizer(lm_steps.SharedTrainConfig(lr=0.5, grad_clip=0.0))
  lm = lm_steps.init_state(model, opt, jax.random.key(0), 2, None)
  train_step, _ = lm_steps.make_lm_steps(model, opt, 0.0)
  step = jax.jit(lm_final.make_train_step(train_step))
  avg = lm_final.AverageState(params=jax.tree_util.tree_map(jnp.zeros_like, lm.params),
                              count=jnp.zeros(()), active=jnp.ones((), bool))
  f32 = jnp.zeros(())
  sums = {"loss": f32, "nll": f32, "ppl": f32, "grad_norm": f32, "ok_steps": f32, "steps": f32}
  iterates = []
  for i in range(4):
    batch = {"inputs": jax.random.randint(jax.random.key(10 + i), (2, 3), 0, 7),
             "targets": jax.random.randint(jax.random.key(20 + i), (2, 3), 0, 7),
             "valid": jnp.ones((3,), bool), "lr_scale": jnp.ones(())}
    model, sums = step(lm_final.AveragedLM(lm=lm, avg=avg), batch, jax.random.key(i), sums)
    lm, avg = model.lm, model.avg
    iterates.append(lm.params)
  assert float(avg.count) == 4.0
  mean = jax.tree_util.tree_map(lambda *xs: sum(xs) / len(xs), *iterates)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                         avg.params, mean)


def test_lstm_baseline_matches_a_plain_lstm_and_the_budget():
  v, hid, b, t = 9, 5, 2, 3
  cfg = RNNModelConfig(num_nodes=2, embed_dim=4, hidden_dim=4, **NO_DROP)
  model = LSTMLanguageModel(cfg, v, hid)
  tokens = jax.random.randint(jax.random.key(1), (b, t), 0, v)
  state0 = jax.random.normal(jax.random.key(2), (b, 2 * hid))
  params = model.init(jax.random.key(0), tokens, state0)["params"]
  assert count_params(params) == lstm_param_count(v, hid)
  logits, state = model.apply({"params": params}, tokens, state0)
  p = {k: np.asarray(x, np.float64) for k, x in params.items()}
  sig = lambda z: 1 / (1 + np.exp(-z))
  h, c = np.asarray(state0[:, :hid], np.float64), np.asarray(state0[:, hid:], np.float64)
  ref = []
  for s in range(t):
    z = p["embedding"][np.asarray(tokens[:, s])] @ p["w_x"] + h @ p["w_h"] + p["bias"]
    i, f, g, o = np.split(z, 4, axis=-1)
    c = sig(f) * c + sig(i) * np.tanh(g)
    h = sig(o) * np.tanh(c)
    ref.append(h @ p["embedding"].T + p["softmax_bias"])
  np.testing.assert_allclose(logits, np.stack(ref, 1), rtol=2e-5, atol=2e-5)
  np.testing.assert_allclose(state, np.concatenate([h, c], -1), rtol=2e-5, atol=2e-5)
  for budget in (10_000, 24_000_000):
    width = hidden_for_budget(10_000, budget)
    best = min(range(1, 3000), key=lambda w: abs(lstm_param_count(10_000, w) - budget))
    assert width == best


def test_batch_one_test_protocol_carries_the_state():
  cfg = RNNModelConfig(num_nodes=3, embed_dim=6, hidden_dim=6, **NO_DROP)
  model = RNNLanguageModel(cfg, 11, fixed_arch=((-1, 0, 0), (0, 1, 0)))
  params = model.init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32), jnp.zeros((1, 6)))
  _, eval_step = lm_steps.make_lm_steps(model, lm_steps.make_optimizer(
      lm_steps.SharedTrainConfig()), 0.0)
  data = np.asarray(jax.random.randint(jax.random.key(1), (1, 41), 0, 11))
  step = jax.jit(eval_step)
  windowed = lm_steps.evaluate_perplexity(step, params["params"], {}, data, 7, None, 6)
  whole = lm_steps.evaluate_perplexity(step, params["params"], {}, data, 40, None, 6)
  assert windowed == pytest.approx(whole, rel=1e-5)  # windows of 7 = one window of 40


def _cfg(**changes):
  config = ptb_final.get_config("tiny")
  for dotted, value in changes.items():
    if "." in dotted:
      section, field = dotted.split(".")
      config[section][field] = value
    else:
      config[dotted] = value
  return run_config.final_config(config)


def _train(workdir, cfg):
  out = io.StringIO()
  run = final_run.FinalRun(cfg, str(workdir), out, metrics.Progress(enabled=False))
  return run, run.execute(), out.getvalue()


def _rows(workdir):
  return [{k: v for k, v in r.items() if k != "seconds"}
          for r in metrics.read_metrics(str(pathlib.Path(workdir) / "metrics.jsonl"))]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("final") / "straight"
  run, summary, out = _train(workdir, _cfg())
  return workdir, run, summary, out


def test_training_writes_its_outputs(straight):
  workdir, run, summary, out = straight
  assert run.task.step._cache_size() == 1  # one compilation for every window length and epoch
  # evaluation: one compilation per batch size (validation rows, the test protocol's batch 1)
  data = run.cfg.data
  assert data.eval_batch_size != data.test_batch_size == 1
  assert run.task.eval_step._cache_size() == 2
  assert summary["params"] == count_params(run.final_state.model.lm.params)
  assert np.isfinite(summary["test_ppl"]) and summary["epochs"] == 3
  assert "batch 1" in summary["test_protocol"]
  saved = json.loads((workdir / "summary.json").read_text())
  assert saved["test_ppl"] == summary["test_ppl"]
  phases = [r["phase"] for r in metrics.read_metrics(str(workdir / "metrics.jsonl"))]
  assert phases.count("epoch") == 3 and phases[-1] == "final"
  assert "parameters" in out


def test_averaging_from_a_fixed_epoch_whatever_the_trigger_says(tmp_path):
  """`train.asgd_start_epoch=k`: averaging starts at the end of epoch k (the history says so)
  although the trigger never would (a window longer than the run), and the epochs up to k are a
  never-averaging run's to the bit."""
  never = _rows(_train(tmp_path / "never", _cfg(**{"train.asgd_nonmono": 100}))[0].workdir)
  assert all(r.get("averaging", 0.0) == 0.0 for r in never)
  for start in (1, 2):
    run, summary, _ = _train(tmp_path / f"start{start}", _cfg(**{
        "train.asgd_start_epoch": start, "train.asgd_nonmono": 100}))
    assert summary["asgd_started_after_epoch"] == start
    assert [h["asgd_started"] for h in run.final_state.history] == [e == start for e in (1, 2, 3)]
    epochs = [r for r in _rows(run.workdir) if r["phase"] == "epoch"]
    before = [r for r in never if r["phase"] == "epoch"]
    assert [r["valid_ppl"] for r in epochs[:start]] == [r["valid_ppl"] for r in before[:start]]
    assert [r["averaging"] for r in epochs] == [float(e >= start) for e in (1, 2, 3)]
    assert epochs[-1]["valid_ppl"] != before[-1]["valid_ppl"]  # the average is evaluated
  with pytest.raises(UserError, match="asgd_start_epoch"):
    _cfg(**{"train.asgd_start_epoch": -1})


def test_resume_from_a_mid_epoch_checkpoint_is_bit_identical(straight, tmp_path):
  workdir, run, summary, _ = straight
  copy = tmp_path / "resumed"
  shutil.copytree(workdir, copy)
  (copy / "summary.json").unlink()
  steps = sorted(int(p.name) for p in (copy / "checkpoints").iterdir() if p.name.isdigit())
  keep = steps[1]  # a save inside the first or second epoch (every 7 steps)
  for step in steps:
    if step > keep:
      shutil.rmtree(copy / "checkpoints" / str(step))
  resumed_run, resumed, out = _train(copy, _cfg())
  assert "resuming from checkpoint" in out
  assert resumed_run.task.step._cache_size() == 1  # restored arrays reuse the compiled steps
  assert resumed_run.task.eval_step._cache_size() == 2
  assert _rows(copy) == _rows(workdir)
  assert resumed == summary
  jax.tree_util.tree_map(np.testing.assert_array_equal, resumed_run.final_state.model.lm.params,
                         run.final_state.model.lm.params)
  jax.tree_util.tree_map(np.testing.assert_array_equal, resumed_run.final_state.model.avg.params,
                         run.final_state.model.avg.params)


def test_sigterm_mid_epoch_saves_there_and_resume_is_bit_identical(straight, tmp_path):
  workdir, run, summary, _ = straight
  stopped = final_run.FinalRun(_cfg(), str(tmp_path / "stopped"), io.StringIO(),
                               metrics.Progress(enabled=False))
  step, calls = stopped.task.step, []

  def step_then_sigterm(*args):
    calls.append(1)
    if len(calls) == 10:  # mid-epoch, between scheduled saves (every 7 steps)
      os.kill(os.getpid(), signal.SIGTERM)
    return step(*args)

  stopped.task.step = step_then_sigterm
  with pytest.raises(Stopped, match=r"stopped by SIGTERM at epoch 1, step 10; checkpoint 10 "
                                    r"saved") as stop:
    stopped.execute()
  assert stop.value.exit_code == 143
  assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored
  resumed_run, resumed, out = _train(tmp_path / "stopped", _cfg())
  assert "resuming from checkpoint 10" in out
  assert _rows(tmp_path / "stopped") == _rows(workdir) and resumed == summary
  jax.tree_util.tree_map(np.testing.assert_array_equal, resumed_run.final_state.model.lm.params,
                         run.final_state.model.lm.params)


def test_a_signal_in_the_finish_lets_the_summary_be_written(straight, tmp_path, capfd):
  """A SIGTERM while the finished training evaluates the test split (seconds): it says that it
  writes the summary first, and does, exit 0, the same summary as the run's own."""
  workdir, _, summary, _ = straight
  shutil.copytree(workdir, tmp_path / "copy")
  run = final_run.FinalRun(_cfg(), str(tmp_path / "copy"), io.StringIO(),
                           metrics.Progress(enabled=False))
  finish = run.task.finish

  def sigterm_then_finish(state):
    os.kill(os.getpid(), signal.SIGTERM)
    return finish(state)

  run.task.finish = sigterm_then_finish
  assert run.execute() == summary
  assert ("SIGTERM: the training is complete: writing its summary (seconds), then exiting"
          in capfd.readouterr().err)


def test_lstm_through_the_same_command_and_config_errors(tmp_path):
  _, summary, _ = _train(tmp_path / "lstm", _cfg(arch="lstm", **{"train.epochs": 1}))
  assert summary["model"].startswith("LSTM baseline") and np.isfinite(summary["test_ppl"])
  with pytest.raises(UserError, match="Config field `arch` is empty"):
    _cfg(arch="")
  with pytest.raises(UserError) as err:  # was a traceback from inside JAX
    _train(tmp_path / "negative", _cfg(arch="lstm", lstm_hidden_dim=-1))
  assert str(err.value) == ("Config field `lstm_hidden_dim` must be >= 0, got -1. Fix it in the "
                            "config file or the --config.lstm_hidden_dim override.")
  assert not (tmp_path / "negative").exists()


def test_lr_warmup_scales_each_update_and_resumes_bit_for_bit(straight, tmp_path):
  """`train.lr_warmup_steps=N`: step t's update is the plain one times (t + 1) / N (one SGD step
  from the same weights, by hand), the steps after N are as without it, and a run resumed from a
  checkpoint inside the warm-up (step 7 of 12) ends as the straight run does, bit for bit."""
  cfg = _cfg(**{"train.lr_warmup_steps": 12, "checkpoint.keep": 100, "train.epochs": 1})
  run = final_run.FinalRun(cfg, str(tmp_path / "by_hand"), io.StringIO(),
                           metrics.Progress(enabled=False))
  state = run.fresh_state()
  run.task.start_epoch(state)
  start = dataclasses.replace(state.cursor)  # `batches` advances the cursor in place

  def first_batch(steps_done):
    state.cursor, state.train_steps = dataclasses.replace(start), steps_done
    return next(iter(run.task.batches(state, 1)))

  warm = first_batch(4)  # the fifth step of the run: factor 5 / 12
  plain = {**warm, "lr_scale": warm["lr_scale"] * 12 / 5}
  key = jax.random.key(3)
  moved = [jax.tree_util.tree_map(  # the step donates the weights and sums: fresh ones each
      jnp.subtract, run.task.step(run.fresh_state().model, batch, key, run.zero_sums())[0]
      .lm.params,
      state.model.lm.params) for batch in (warm, plain)]
  # (new - old weights) in float32: exact to about the weights' rounding, 3e-8 at most here
  jax.tree_util.tree_map(lambda w, p: np.testing.assert_allclose(w, p * 5 / 12, rtol=1e-5,
                                                                 atol=3e-8), *moved)
  assert max(float(jnp.abs(m).max()) for m in jax.tree_util.tree_leaves(moved[1])) > 1e-4
  # the warm-up's last step (factor 12 / 12) and after it: the plain batch
  for t in (11, 12, 10**6):
    assert float(first_batch(t)["lr_scale"]) == float(plain["lr_scale"])
  warm_run, summary, _ = _train(tmp_path / "warm", cfg)
  assert warm_run.task.step._cache_size() == 1  # the ramp rides in lr_scale: no recompilation
  first = [r for r in _rows(tmp_path / "warm") if r["phase"] == "train"][0]
  plain_first = [r for r in _rows(straight[0]) if r["phase"] == "train"][0]
  assert first["step"] == plain_first["step"] and first["loss"] != plain_first["loss"]
  copy = tmp_path / "resumed"
  shutil.copytree(tmp_path / "warm", copy)
  (copy / "summary.json").unlink()
  for step in (p for p in (copy / "checkpoints").iterdir() if p.name.isdigit()):
    if int(step.name) > 7:
      shutil.rmtree(step)
  _, resumed, out = _train(copy, cfg)
  assert "resuming from checkpoint 7" in out
  assert resumed == summary and _rows(copy) == _rows(tmp_path / "warm")
  with pytest.raises(UserError, match="lr_warmup_steps"):
    _cfg(**{"train.lr_warmup_steps": -1})


def test_an_epoch_whose_every_step_was_skipped_stops_the_run(straight):
  """The loop's stop rule (`FinalRun.stop_reason`) on hand-made records, with the language
  task's advice: an epoch whose every training step was skipped stops the run, whatever its
  validation perplexity; one step kept, or the option off, does not stop it. (The loop passing
  the epoch's record: tests/test_cnn_train.py.)"""
  _, run, _, _ = straight
  task, after = run.task, types.SimpleNamespace(epoch=2)
  finite = {"valid_ppl": 95.0}
  message = run.stop_reason(after, finite, {"steps": 88.0, "skipped_steps": 88.0})
  message = " ".join(message.split())
  assert message.startswith("Every one of epoch 2's 88 training steps had a NaN/Inf loss")
  steps = task.steps_per_epoch(1)
  assert f"--config.train.lr_warmup_steps={steps}," in message
  assert "--config.train.lr (now 20.0)" in message
  assert run.stop_reason(after, finite, {"steps": 88.0, "skipped_steps": 87.0}) is None
  assert run.stop_reason(after, finite, {"steps": 0.0, "skipped_steps": 0.0}) is None
  off = dataclasses.replace(run.cfg, train=dataclasses.replace(run.cfg.train,
                                                               stop_on_divergence=False))
  run.cfg, kept = off, run.cfg
  try:
    assert run.stop_reason(after, finite, {"steps": 88.0, "skipped_steps": 88.0}) is None
  finally:
    run.cfg = kept


def test_an_epoch_whose_validation_perplexity_is_not_finite_stops_the_run(straight, tmp_path,
                                                                           monkeypatch):
  """`train.stop_on_divergence` (on by default): after an epoch whose validation perplexity is
  not finite (here the second epoch's, made NaN), the run stops with one paragraph naming the
  warm-up and the lower rate, the epoch's record and checkpoint written and no summary; resumed
  with the option off, it trains on to the end, every figure as the straight run's but that
  one."""
  real = lm_final.FinalTaskImpl.perplexity

  def overflowing(self, state, data_BxN):
    is_valid = data_BxN is self.valid_BxN
    return float("nan") if is_valid and state.epoch == 1 else real(self, state, data_BxN)

  monkeypatch.setattr(lm_final.FinalTaskImpl, "perplexity", overflowing)
  workdir = tmp_path / "diverged"
  with pytest.raises(UserError, match="Epoch 2 ended with validation perplexity nan") as err:
    _train(workdir, _cfg())
  message = " ".join(str(err.value).split())
  assert "--config.train.lr_warmup_steps=" in message
  assert "--config.train.lr (now 20.0)" in message
  epochs = [r for r in _rows(workdir) if r["phase"] == "epoch"]
  assert len(epochs) == 2 and epochs[1]["valid_ppl"] == "nan"  # as metrics.jsonl writes NaN
  assert not (workdir / "summary.json").exists()
  _, summary, out = _train(workdir, _cfg(**{"train.stop_on_divergence": False}))
  assert "epoch 3, step 0 of it" in out  # the epoch's end was saved before stopping
  assert summary["epochs"] == 3
  rows, plain = _rows(workdir), _rows(straight[0])
  assert len(rows) == len(plain)
  for row, want in zip(rows, plain):
    if row["phase"] == "epoch" and row["step"] == epochs[1]["step"]:
      assert row["valid_ppl"] == "nan"
      row, want = ({k: v for k, v in r.items() if k != "valid_ppl"} for r in (row, want))
    assert row == want


def test_a_step_the_memory_left_cannot_run_is_refused_before_it_runs(tmp_path, monkeypatch):
  """The training's first step is checked as the search's is (tests/test_search_cli.py): XLA's
  own figure for one call (`memory.call_bytes`, at least the weights' gradients) against what
  this process may still use, refused before it runs, no checkpoint written."""
  from enas_jax.io import memory
  from enas_jax.run import runner

  needs, real_call_bytes = [], memory.call_bytes
  monkeypatch.setattr(memory, "call_bytes",
                      lambda program: needs.append(real_call_bytes(program)) or needs[-1])
  monkeypatch.setattr(memory, "host_headroom", lambda: memory.Headroom(  # needs: the
      needs[-1] - 1 if len(needs) == 2 else 2 ** 40, "a bound"))  # initialiser's, the step's
  workdir, cfg = tmp_path / "w", _cfg()
  shapes = final_run.FinalRun(cfg, str(workdir), io.StringIO(),
                              metrics.Progress(enabled=False)).state_shapes()
  params = sum(x.size * x.dtype.itemsize
               for x in jax.tree_util.tree_leaves(shapes["model"].lm.params))
  with pytest.raises(UserError) as err:
    _train(workdir, cfg)
  assert len(needs) == 2 and needs[1] >= params
  assert str(err.value).startswith(
      f"One step of the training needs {runner.size_in_words(needs[1])} of working memory besides "
      f"the state it updates (activations, gradients and temporaries, by XLA's count), more than "
      f"this process may still use ({runner.size_in_words(needs[1] - 1)}: a bound), so it cannot "
      f"run here.")
  assert not (workdir / "checkpoints").exists() or not any((workdir / "checkpoints").iterdir())
