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


def _setup(kind="enas", num_samples=2):
  model = RNNLanguageModel(RNNModelConfig(num_nodes=N, embed_dim=H, hidden_dim=H), V)
  opt = lm_steps.make_optimizer(lm_steps.SharedTrainConfig(lr=1.0))
  lm_state = lm_steps.init_state(model, opt, jax.random.key(0), B,
                                 arch_lib.random_arch(jax.random.key(1), N))
  train_step, eval_step = lm_steps.make_lm_steps(model, opt, l2=0.0)
  cfg = ctl.ControllerConfig(kind=kind, hidden_dim=16, num_samples=num_samples, lr=0.01)
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


def test_random_controller_does_not_learn():
  lm_state, cstate, _, controller_step, batch, _ = _setup(kind="random")
  new, _ = jax.jit(controller_step)(cstate, lm_state.params, lm_state.batch_stats, batch,
                                    jax.random.key(0))
  chex.assert_trees_all_equal(new.params, cstate.params)
