"""The search's jitted phases: architectures sampled on the device, each program compiled once."""
import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from enas_jax.controller import policy as ctl
from enas_jax.controller import steps as controller_steps
from enas_jax.io.errors import UserError
from enas_jax.run import program
from enas_jax.tasks.language import steps as lm_steps
from enas_jax.spaces.rnn import arch as arch_lib
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig

N, H, V, B, T = 5, 8, 11, 3, 4


def _setup(kind="enas", num_samples=2, **ctrl):
  model = RNNLanguageModel(RNNModelConfig(num_nodes=N, embed_dim=H, hidden_dim=H), V)
  opt = lm_steps.make_optimizer(lm_steps.SharedTrainConfig(lr=1.0))
  lm_state = lm_steps.init_state(model, opt, jax.random.key(0), B,
                                 arch_lib.random_arch(jax.random.key(1), N))
  train_step, eval_step = lm_steps.make_lm_steps(model, opt, l2=0.0)
  cfg = ctl.ControllerConfig(kind=kind, hidden_dim=16, num_samples=num_samples, lr=0.01, **ctrl)
  controller = ctl.Controller(arch_lib.decisions(N), cfg)
  copt = controller_steps.make_controller_optimizer(cfg)
  cstate = controller_steps.init_controller_state(controller, copt, jax.random.key(2))
  shared_step = program.shared_train_step(arch_lib.from_decisions, train_step)
  score_S = lm_steps.make_score(eval_step, arch_lib.from_decisions, cfg, H)
  controller_step = controller_steps.make_controller_step(controller, cfg, copt, score_S)
  batch = {"inputs": jax.random.randint(jax.random.key(5), (B, T), 0, V),
           "targets": jax.random.randint(jax.random.key(6), (B, T), 0, V),
           "valid": jnp.ones((T,), bool), "lr_scale": jnp.ones(())}
  return lm_state, cstate, shared_step, controller_step, batch, cfg


def test_each_phase_compiles_once():
  lm_state, cstate, shared_step, controller_step, batch, cfg = _setup()
  chex.clear_trace_counter()
  shared = jax.jit(chex.assert_max_traces(shared_step, n=1))
  control = jax.jit(chex.assert_max_traces(controller_step, n=1))
  draw = jax.jit(chex.assert_max_traces(program.shared_draw(
      ctl.Controller(arch_lib.decisions(N), cfg), block=8), n=1))
  for i in range(30):
    values_D = draw(cstate, jax.random.key(i), i)[i % 8]
    lm_state, m = shared(lm_state, values_D, batch, jax.random.key(i))
    cstate, cm = control(cstate, lm_state.params, lm_state.batch_stats, batch,
                         jax.random.key(1000 + i))
  assert np.isfinite(float(m["loss"])) and np.isfinite(float(cm["reward"]))
  assert int(cstate.step) == 30 and int(lm_state.step) == 30


def test_first_update_sets_baseline_and_reward_is_c_over_ppl():
  lm_state, cstate, _, controller_step, batch, cfg = _setup(num_samples=1)
  new, m = jax.jit(controller_step)(cstate, lm_state.params, lm_state.batch_stats, batch,
                                    jax.random.key(0))
  expected = cfg.reward_c / float(m["valid_ppl"]) + cfg.entropy_weight * float(m["entropy"])
  assert float(m["reward"]) == pytest.approx(expected, rel=1e-5)
  assert float(new.baseline) == pytest.approx(expected, rel=1e-5)  # initialised to the reward
  assert float(m["advantage"]) == 0.0
  assert bool(new.baseline_ready)


def test_entropy_weight_schedule_moves_linearly_and_enters_the_reward():
  lm_state, cstate, _, controller_step, batch, cfg = _setup(
      num_samples=1, entropy_weight=0.5, entropy_weight_end=0.1, entropy_schedule_steps=4)
  weights = [float(ctl.entropy_weight_at(cfg, jnp.asarray(s))) for s in range(7)]
  np.testing.assert_allclose(weights, [0.5, 0.4, 0.3, 0.2, 0.1, 0.1, 0.1], rtol=1e-6)
  step = jax.jit(controller_step)
  for s in range(6):
    cstate, m = step(cstate, lm_state.params, lm_state.batch_stats, batch, jax.random.key(s))
    expected = cfg.reward_c / float(m["valid_ppl"]) + weights[s] * float(m["entropy"])
    assert float(m["entropy_weight"]) == pytest.approx(weights[s], rel=1e-6)
    assert float(m["reward"]) == pytest.approx(expected, rel=1e-5)
  constant = ctl.ControllerConfig(entropy_weight=0.3)
  assert float(ctl.entropy_weight_at(constant, jnp.asarray(1000))) == pytest.approx(0.3)


def test_temperature_schedule_moves_linearly_and_samples_and_scores_at_the_step():
  """`controller.temperature_schedule_steps`: the draw and the update's rescoring use the
  temperature of the controller's step; the log-probability is that of the policy at it."""
  cfg = ctl.ControllerConfig(hidden_dim=16, temperature=8.0, temperature_end=2.0,
                             temperature_schedule_steps=3)
  temps = [float(ctl.temperature_at(cfg, jnp.asarray(s))) for s in range(5)]
  np.testing.assert_allclose(temps, [8.0, 6.0, 4.0, 2.0, 2.0], rtol=1e-6)
  assert ctl.temperature_at(dataclasses.replace(cfg, temperature_schedule_steps=0), 3) == 8.0
  scheduled = ctl.Controller(arch_lib.decisions(N), cfg)
  params = ctl.init_controller(scheduled, jax.random.key(0))
  key, values = jax.random.key(3), None
  for s in (0, 2, 4):  # a fixed controller at temperature t: the same draws as the schedule's
    fixed = ctl.Controller(arch_lib.decisions(N), dataclasses.replace(
        cfg, temperature=temps[s], temperature_schedule_steps=0))
    got = ctl.sample(scheduled, params, key, jnp.asarray(s))
    want = ctl.sample(fixed, params, key)
    np.testing.assert_array_equal(got.values, want.values)
    np.testing.assert_allclose(got.log_prob, want.log_prob, rtol=1e-5)
    rescored = ctl.score_many(scheduled, params, got.values[None], jnp.asarray(s))
    np.testing.assert_allclose(rescored.log_prob[0], got.log_prob, rtol=1e-5)
    values = got.values if values is None else values
  hot, cold = (ctl.score_many(scheduled, params, values[None], jnp.asarray(s)).entropy[0]
               for s in (0, 4))
  assert float(hot) > float(cold)  # hotter early: a flatter policy
  with pytest.raises(UserError, match="temperature_end"):
    ctl.ControllerConfig(temperature_schedule_steps=10).validate()


def test_shared_and_controller_draws_sample_at_the_controllers_step():
  """Under a temperature schedule the shared steps' architectures (row t of the shared draw
  from step `first`: the sample from the key folded with first + t, then 0) and the controller
  phase's (and derive's) draws are those of the policy at the controller state's step; a
  block's rows do not depend on where the block starts."""
  _, cstate, _, _, _, cfg = _setup(temperature=50.0, temperature_end=0.05,
                                   temperature_schedule_steps=4)
  controller = ctl.Controller(arch_lib.decisions(N), cfg)
  shared = jax.jit(program.shared_draw(controller, block=5))
  draw = jax.jit(program.stepped_draw(controller, 2))
  key = jax.random.key(11)

  def want(s, t):  # the sample of shared step t at controller step s
    return ctl.sample(controller, cstate.params,
                      jax.random.fold_in(jax.random.fold_in(key, t), 0), jnp.asarray(s)).values

  assert not np.array_equal(want(0, 3), want(4, 3))  # the schedule matters here
  for s in (0, 4):
    ctrl = cstate.replace(step=jnp.asarray(s, cstate.step.dtype))
    rows = np.asarray(shared(ctrl, key, 3))
    for t in range(5):
      np.testing.assert_array_equal(rows[t], want(s, 3 + t))
    np.testing.assert_array_equal(np.asarray(shared(ctrl, key, 5))[:3], rows[2:])
    np.testing.assert_array_equal(draw(ctrl, key, 7), ctl.sample_many(
        controller, cstate.params, jax.random.fold_in(key, 7), 2, jnp.asarray(s)).values)


def test_random_controller_does_not_learn():
  lm_state, cstate, _, controller_step, batch, _ = _setup(kind="random")
  new, _ = jax.jit(controller_step)(cstate, lm_state.params, lm_state.batch_stats, batch,
                                    jax.random.key(0))
  chex.assert_trees_all_equal(new.params, cstate.params)


def test_reward_over_several_windows_is_the_perplexity_of_those_windows_read_in_turn():
  """`data.reward_windows=3`: each reward batch is 3 x bptt tokens a row, and the reward's
  perplexity equals evaluating those windows one after another with the state carried over."""
  from enas_jax.configs import quickstart
  from enas_jax.run import config as run_config
  from enas_jax.spaces.registry import get_space
  from enas_jax.tasks import search_task
  config = quickstart.get_config("tiny")
  config.data.reward_windows = 3
  cfg = run_config.search_config(config)
  space = get_space(cfg.space)
  task = search_task(space, cfg)
  state = task.init_model(jax.random.key(0))
  bptt = cfg.data.bptt
  _, reward_batch = task.example_batches()
  assert reward_batch["inputs"].shape == (cfg.data.batch_size, 3 * bptt)
  values_SxD = jnp.stack([arch_lib.to_decisions(arch_lib.random_arch(jax.random.key(i), 4))
                          for i in range(3)])
  reward_S, figures = jax.jit(task.score())(state.params, state.batch_stats, reward_batch,
                                            values_SxD)
  data_BxN = task.valid.data_BxN[:, :3 * bptt + 1]
  for s in range(3):
    ppl = lm_steps.evaluate_perplexity(jax.jit(task.eval_step), state.params, state.batch_stats,
                                       data_BxN, bptt, arch_lib.from_decisions(values_SxD[s]))
    assert float(figures["valid_ppl"][s]) == pytest.approx(ppl, rel=1e-5)
    assert float(reward_S[s]) == pytest.approx(cfg.controller.reward_c / ppl, rel=1e-5)
  batches = list(task.reward_batches(_Cursors(), 2))
  np.testing.assert_array_equal(batches[1]["inputs"], task.valid.data_BxN[:, 3 * bptt:6 * bptt])


class _Cursors:
  def __init__(self):
    from enas_jax.data.cursor import Cursor
    self.valid_cursor = Cursor()


def test_the_search_programs_compute_the_composed_steps(monkeypatch):
  """The search runs the controller phase as three programs (draw, score, update) and derives in
  chunks of num_samples with the same draw and score: the same architectures and, to float
  rounding, the same states and figures as the one-function controller step, on the real
  quickstart search (2 samples per update, 3 derived, so derive's last chunk is cut)."""
  import io
  import tempfile
  from enas_jax.configs import quickstart
  from enas_jax.io import metrics
  from enas_jax.ops import guards
  from enas_jax.run import config as run_config
  from enas_jax.run import search as search_run
  config = quickstart.get_config("tiny")
  config.controller.num_samples, config.search.derive_samples = 2, 3
  cfg = run_config.search_config(config)
  run = search_run.SearchRun(cfg, tempfile.mkdtemp(), io.StringIO(),
                             metrics.Progress(enabled=False))
  prog, task = run.program, run.task
  state = run.fresh_state()
  key = jax.random.key(7)
  score_S = task.score()
  control_ref = jax.jit(guards.guarded(controller_steps.make_controller_step(
      prog.controller, cfg.controller, prog.ctrl_optimizer, score_S), "controller_loss"))
  model, ctrl, sums = state.model, state.ctrl, state.sums["shared"]
  values = run.shared_architectures(state, key, False)
  for batch in task.shared_batches(state, 3):  # shared weights away from their initial values
    model, sums = prog.shared_step(model, next(values), batch, key, sums)

  def copy(tree):  # the update program donates the controller state and the sums
    return jax.tree_util.tree_map(jnp.copy, tree)

  for batch in task.reward_batches(state, 3):
    values = prog.controller_step.draw(ctrl, key, ctrl.step)
    want_values = ctl.sample_many(prog.controller, ctrl.params,
                                  jax.random.fold_in(key, ctrl.step), 2).values
    np.testing.assert_array_equal(values, want_values)
    want, want_sums = control_ref(ctrl, model.params, model.batch_stats, batch, key,
                                  copy(state.sums["controller"]))
    got, got_sums = prog.controller_step(copy(ctrl), model.params, model.batch_stats, batch,
                                         key, copy(state.sums["controller"]))
    chex.assert_trees_all_close(got.params, want.params, rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_close(got_sums, want_sums, rtol=1e-5)
    assert float(got_sums["ok_steps"]) == 1.0
    ctrl = want
  batch = task.derive_batch(0)
  values_SxD, reward_S, figures = prog.derive_step(ctrl, model.params, model.batch_stats,
                                                   batch, key)
  chunks = [ctl.sample_many(prog.controller, ctrl.params, jax.random.fold_in(key, c), 2).values
            for c in (0, 1)]
  want_values = np.concatenate(chunks)[:3]
  np.testing.assert_array_equal(values_SxD, want_values)
  want_reward, want_figures = jax.jit(score_S)(model.params, model.batch_stats, batch,
                                               jnp.asarray(want_values))
  np.testing.assert_allclose(reward_S, want_reward, rtol=1e-5)
  np.testing.assert_allclose(figures["valid_ppl"], want_figures["valid_ppl"], rtol=1e-5)
  # copied to the host a chunk at a time (a block per chunk): the same rows, to the bit
  monkeypatch.setattr(program, "HOST_ROWS", 1)
  again = prog.derive_step(ctrl, model.params, model.batch_stats, batch, key)
  chex.assert_trees_all_equal(again, (values_SxD, reward_S, figures))
  for phase in (prog.controller_step, prog.derive_step):
    assert phase._cache_size() == 1
  assert prog.controller_step.draw is prog.derive_step.draw  # one compiled draw for both
  assert prog.controller_step.score is prog.derive_step.score


def test_a_search_traces_each_step_once_metric_shapes_included():
  """The search needs its metric sums' shapes before the first step: they come from the traces
  the programs' first calls then reuse, so the training step, the controller's draw, the score
  and the update are each traced exactly once (they were traced twice: once for the shapes,
  the controller's through a composed step the search never runs, and once more to compile)."""
  import io
  import tempfile
  from enas_jax.configs import quickstart
  from enas_jax.io import metrics
  from enas_jax.run import config as run_config
  from enas_jax.run import search as search_run
  from tests import runs
  traces = {}
  with runs.counting_traces(traces):
    run = search_run.SearchRun(run_config.search_config(quickstart.get_config("tiny")),
                               tempfile.mkdtemp(), io.StringIO(), metrics.Progress(enabled=False))
  state = run.fresh_state()  # the metric sums' shapes
  assert traces == {"train": 1, "draw": 1, "score": 1, "update": 1}
  prog, key = run.program, jax.random.key(0)
  values = run.shared_architectures(state, key, False)
  for batch in run.task.shared_batches(state, 2):
    state.model, state.sums["shared"] = prog.shared_step(state.model, next(values), batch, key,
                                                         state.sums["shared"])
  for batch in run.task.reward_batches(state, 2):
    state.ctrl, state.sums["controller"] = prog.controller_step(
        state.ctrl, state.model.params, state.model.batch_stats, batch, key,
        state.sums["controller"])
  assert traces == {"train": 1, "draw": 1, "score": 1, "update": 1}
  assert float(state.sums["shared"]["ok_steps"]) == 2.0
  assert float(state.sums["controller"]["ok_steps"]) == 2.0


def test_fair_stream_takes_every_choice_once_per_block():
  """Decision d's values over any `c` consecutive fair architectures aligned to a multiple of
  `c` (its number of choices) are a permutation of its choices; the stream is a pure function
  of (key, index) and another key gives another stream."""
  num_choices = (4, 1, 4, 2, 4, 3, 4)
  fair = jax.jit(program.fair_values, static_argnums=0)
  stream = np.stack([fair(num_choices, jax.random.key(3), i) for i in range(24)])
  assert stream.shape == (24, len(num_choices)) and stream.dtype == np.int32
  for d, c in enumerate(num_choices):
    for start in range(0, 24, c):
      assert sorted(stream[start:start + c, d]) == list(range(c)), (d, start)
  eager = np.stack([program.fair_values(num_choices, jax.random.key(3), jnp.asarray(i))
                    for i in range(24)])
  np.testing.assert_array_equal(stream, eager)
  other = np.stack([fair(num_choices, jax.random.key(4), i) for i in range(24)])
  assert not np.array_equal(stream, other)


def test_fair_mix_trains_the_fair_cell_every_kth_step_and_the_controller_sample_otherwise():
  """`search.fair_every=3`: steps 0, 3, 6, ... train the fair stream's architectures 0, 1,
  2, ...; the others the controller's samples, as without the mix (the same key scheme)."""
  _, cstate, _, _, _, cfg = _setup()
  controller = ctl.Controller(arch_lib.decisions(N), cfg)
  mixed = np.asarray(jax.jit(program.shared_draw(controller, block=7, fair_every=3))(
      cstate, jax.random.key(7), 0))
  plain = np.asarray(jax.jit(program.shared_draw(controller, block=7))(
      cstate, jax.random.key(7), 0))
  num_choices = tuple(d.num_choices for d in controller.decisions)
  fair_key = jax.random.fold_in(jax.random.key(7), program.FAIR_FOLD)
  for t in range(7):
    if t % 3 == 0:
      np.testing.assert_array_equal(mixed[t], program.fair_values(num_choices, fair_key, t // 3))
    else:
      np.testing.assert_array_equal(mixed[t], plain[t])
  assert not all(np.array_equal(mixed[t], plain[t]) for t in (0, 3, 6))