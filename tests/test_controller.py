"""Controller and REINFORCE: hand-computed numbers and a learning test."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from enas_jax.controller import policy as ctl
from enas_jax.controller import reinforce
from enas_jax.ops.initialize import initialize
from enas_jax.spaces.rnn import arch as arch_lib


def test_reward_baseline_and_loss_by_hand():
  assert float(reinforce.reward_from_ppl(jnp.array(40.0), 80.0)) == pytest.approx(2.0)
  assert float(reinforce.reward_from_ppl(jnp.array(40.0), 80.0, "inverse_ppl_squared")) == (
      pytest.approx(0.05))
  adv, b = reinforce.advantage_and_baseline(jnp.array(2.0), jnp.array(0.0), jnp.array(False), 0.95)
  assert (float(adv), float(b)) == (0.0, 2.0)
  adv, b = reinforce.advantage_and_baseline(jnp.array(3.0), b, jnp.array(True), 0.95)
  assert float(adv) == pytest.approx(1.0) and float(b) == pytest.approx(0.95 * 2 + 0.05 * 3)
  logp = jnp.array([-1.0, -2.0])
  adv = jnp.array([0.5, -1.0])
  assert float(reinforce.policy_loss(logp, adv)) == pytest.approx(-0.75)
  grad = jax.grad(reinforce.policy_loss)(logp, adv)
  np.testing.assert_allclose(grad, [-0.25, 0.5])


def test_random_controller_entropy_and_log_prob_by_hand():
  decisions = arch_lib.decisions(4)
  c = ctl.Controller(decisions, ctl.ControllerConfig(kind="random"))
  params = ctl.init_controller(c, jax.random.key(0))
  values, lp, ent, _ = ctl.sample(c, params, jax.random.key(1))
  expected = 4 * math.log(4) + math.log(1) + math.log(2) + math.log(3)
  assert float(ent) == pytest.approx(expected, rel=1e-5)
  assert float(lp) == pytest.approx(-expected, rel=1e-5)
  arch_lib.validate(arch_lib.from_decisions(np.asarray(values)))


@pytest.mark.parametrize("scan_runs", [True, False])
def test_locality_prior_on_pointers_by_hand(scan_runs):
  """With the attention's output weights zeroed every pointer score is 0, so node k picks prev
  j with probability exp(-lam (k - j)^2) / sum_i exp(-lam (k - i)^2); ops are untouched."""
  n, lam = 6, 1 / 6
  decisions = arch_lib.decisions(n)
  values = jnp.asarray([1, 0, 2, 0, 3, 2, 0, 1, 1, 4, 2], jnp.int32)  # prev 0, 0, 2, 1, 4
  logps = []
  for prior in (0.0, lam):
    c = ctl.Controller(decisions, ctl.ControllerConfig(locality_prior=prior), scan_runs=scan_runs)
    params = ctl.init_controller(c, jax.random.key(0))
    params["attn_v"] = jax.tree_util.tree_map(jnp.zeros_like, params["attn_v"])
    logps.append(float(ctl.log_prob(c, params, values)[0]))
  expected = sum(-lam * (k - p) ** 2 - math.log(sum(math.exp(-lam * (k - j) ** 2)
                                                    for j in range(k))) + math.log(k)
                 for k, p in zip(range(1, n), np.asarray(values)[1::2]))
  assert logps[1] - logps[0] == pytest.approx(expected, rel=1e-5)
  c = ctl.Controller(decisions, ctl.ControllerConfig(locality_prior=5.0))
  params = ctl.init_controller(c, jax.random.key(0))
  prevs = np.asarray(ctl.sample_many(c, params, jax.random.key(1), 20).values)[:, 1::2]
  assert (prevs == np.arange(n - 1)).all()  # a strong prior: always the node just before


@pytest.mark.parametrize("attention", [True, False])
def test_sample_and_log_prob_agree_and_vmap(attention):
  decisions = arch_lib.decisions(6)
  c = ctl.Controller(decisions, ctl.ControllerConfig(attention=attention))
  params = ctl.init_controller(c, jax.random.key(0))
  values, lp, ent, _ = jax.jit(lambda k: ctl.sample(c, params, k))(jax.random.key(3))
  lp2, ent2 = ctl.log_prob(c, params, values)
  assert float(lp) == pytest.approx(float(lp2), rel=1e-6)
  assert float(ent) == pytest.approx(float(ent2), rel=1e-6)
  many_v, many_lp, _, _ = ctl.sample_many(c, params, jax.random.key(4), 50)
  assert many_v.shape == (50, len(decisions))
  for v in np.asarray(many_v):
    arch_lib.validate(arch_lib.from_decisions(v))
  assert len({tuple(v) for v in np.asarray(many_v)}) > 40


def test_squashing_bounds_every_logit_even_for_saturated_weights():
  """Logits are `c * tanh(score / temperature)`, so a choice among n has probability at least
  1 / (1 + (n - 1) e^(2c)) however large the scores (c = tanh_c, tanh_c / op_tanh_reduce for
  operations): with the controller's weights scaled by 1e4 the least likely architectures sit
  at that bound, and without the squashing (tanh_c huge) they fall far below it."""
  decisions = arch_lib.decisions(6)
  cfg = ctl.ControllerConfig(attention=False)

  def bound(c_cfg):
    return -sum(math.log(1 + (d.num_choices - 1) * math.exp(
        2 * (c_cfg.tanh_c / c_cfg.op_tanh_reduce if d.kind == "op" else c_cfg.tanh_c)))
        for d in decisions if d.num_choices > 1)

  archs = [arch_lib.to_decisions(jax.tree_util.tree_map(
      np.asarray, arch_lib.random_arch(jax.random.key(i), 6))) for i in range(200)]

  def lowest(c_cfg):
    c = ctl.Controller(decisions, c_cfg)
    params = jax.tree_util.tree_map(lambda w: 1e4 * w, ctl.init_controller(c, jax.random.key(0)))
    lp = jax.jit(jax.vmap(lambda v: ctl.log_prob(c, params, v)[0]))(jnp.asarray(np.stack(archs)))
    return float(jnp.min(lp))

  squashed = lowest(cfg)
  assert bound(cfg) - 1e-3 <= squashed < 0.5 * bound(cfg)  # bounded, and near the bound
  unsquashed = ctl.ControllerConfig(attention=False, tanh_c=1e6)
  assert lowest(unsquashed) < 100 * bound(cfg)


def test_controller_learns_a_favoured_architecture():
  num_nodes = 4
  decisions = arch_lib.decisions(num_nodes)
  target = jnp.array([2, 0, 1, 1, 3, 2, 0], jnp.int32)
  cfg = ctl.ControllerConfig(tanh_c=5.0)
  c = ctl.Controller(decisions, cfg)
  params = ctl.init_controller(c, jax.random.key(0))
  opt = optax.adam(0.01)
  opt_state = opt.init(params)

  @jax.jit
  def update(params, opt_state, baseline, initialized, key):
    def loss_fn(p):
      values, lp, ent, _ = ctl.sample_many(c, p, key, 8)
      reward = jnp.mean(values == target[None, :], axis=1).astype(jnp.float32)
      reward = reward + cfg.entropy_weight * jax.lax.stop_gradient(ent)
      adv, new_b = reinforce.advantage_and_baseline(jnp.mean(reward), baseline, initialized,
                                                    cfg.baseline_decay)
      adv_S = reward - (jnp.mean(reward) - adv)
      return reinforce.policy_loss(lp, adv_S), new_b
    (loss, new_b), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = opt.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, new_b

  baseline, prob = jnp.zeros(()), 0.0
  for step in range(400):
    params, opt_state, baseline = update(params, opt_state, baseline, jnp.array(step > 0),
                                         jax.random.key(step))
    if step % 50 == 49:
      prob = math.exp(float(ctl.log_prob(c, params, target)[0]))
      if prob > 0.9:
        break
  assert prob > 0.9, prob


def _space_decisions(name):
  """A space's decision list at its tiny or default size."""
  from enas_jax.spaces.registry import get_space
  space = get_space(name)
  cfg = space.model_config()
  if name == "rnn":
    return arch_lib.decisions(12)
  return space.decisions(cfg)


@pytest.mark.parametrize("name,attention", [("rnn", True), ("rnn", False), ("micro", True)])
def test_scanned_runs_score_exactly_like_the_unrolled_controller(name, attention):
  """The controller with runs of alike nodes as one `lax.scan` (pointers padded and masked)
  against every decision unrolled, same parameters: equal log-probabilities, entropies and
  gradients for sampled architectures; samples of the scanned one are valid architectures with
  every choice reachable (no padded choice is ever drawn); the recurrent space is one run."""
  from enas_jax.controller.runs import segments
  from enas_jax.spaces.registry import get_space
  # micro with 3 nodes a cell (the default 5 compiles the unrolled controller for 50 s; the
  # runs' structure, inputs then alike nodes in each cell, is the same)
  decisions = (_space_decisions(name) if name == "rnn" else
               get_space(name).decisions(get_space(name).model_config(num_nodes=3)))
  cfg = ctl.ControllerConfig(attention=attention)
  scanned, unrolled = (ctl.Controller(decisions, cfg), ctl.Controller(decisions, cfg, False))
  params = ctl.init_controller(scanned, jax.random.key(0))
  params = jax.tree_util.tree_map(lambda p: p * 3.0, params)  # far from uniform
  if name == "rnn":
    assert segments(decisions) == [(0, 1, 1), (1, 2, 11)]
    macro = _space_decisions("macro")  # skip bits: every layer unrolled, as before
    assert segments(macro) == [(i, n, 1) for i, n in zip(
        np.cumsum([0] + [1 + k for k in range(11)]), [1 + k for k in range(12)])]
  else:  # two cell inputs, then three alike nodes, in each of the two cells
    assert segments(decisions) == [(0, 1, 2), (2, 5, 3), (17, 1, 2), (19, 5, 3)]
  # compiled at XLA's lowest level (`ops.initialize.initialize`, not only for initialisers): the
  # unrolled controller's gradient takes most of a minute at the default level; same arithmetic
  many = initialize(lambda k: ctl.sample_many(scanned, params, k, 64), jax.random.key(1))

  def scored(c):  # log-probability, entropy and the gradient of the first, for 6 architectures
    def one(p, v):
      (lp, ent), g = jax.value_and_grad(lambda q: ctl.log_prob(c, q, v), has_aux=True)(p)
      return lp, ent, g
    return initialize(jax.vmap(one, in_axes=(None, 0)), params, many.values[:6])

  for got, want in zip(jax.tree_util.tree_leaves(scored(scanned)),
                       jax.tree_util.tree_leaves(scored(unrolled))):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5 * float(np.max(np.abs(want))))
  space = get_space(name)
  for values in np.asarray(many.values):
    assert all(0 <= v < d.num_choices for v, d in zip(values, decisions))
    if name == "rnn":
      arch_lib.validate(arch_lib.from_decisions(values))
    else:
      space.validate(space.from_decisions(jnp.asarray(values)))
