"""The search's two jitted phases: architecture sampled inside, one compilation each."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from enas_jax.controller import policy as ctl
from enas_jax.controller import steps as controller_steps
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
  shared_step = program.sampled_train_step(controller, arch_lib.from_decisions, train_step)
  score_S = lm_steps.make_score(eval_step, arch_lib.from_decisions, cfg, H)
  controller_step = controller_steps.make_controller_step(controller, cfg, copt, score_S)
  batch = {"inputs": jax.random.randint(jax.random.key(5), (B, T), 0, V),
           "targets": jax.random.randint(jax.random.key(6), (B, T), 0, V),
           "valid": jnp.ones((T,), bool), "lr_scale": jnp.ones(())}
  return lm_state, cstate, shared_step, controller_step, batch, cfg


def test_each_phase_compiles_once():
  lm_state, cstate, shared_step, controller_step, batch, _ = _setup()
  chex.clear_trace_counter()
  shared = jax.jit(chex.assert_max_traces(shared_step, n=1))
  control = jax.jit(chex.assert_max_traces(controller_step, n=1))
  for i in range(30):
    lm_state, m = shared(lm_state, cstate.params, batch, jax.random.key(i))
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
