"""The ENAS recurrent cell: equivalence with a plain reference, compile-once, fixed mode."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from enas_jax.tasks.language import steps as lm_steps
from enas_jax.spaces.rnn import arch as arch_lib
from enas_jax.spaces.rnn.arch import make_arch
from enas_jax.ops.params import count_params
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig
from tests.reference_cell import reference_lm

N, E, H, V, B, T = 6, 8, 8, 13, 3, 5
CFG = RNNModelConfig(num_nodes=N, embed_dim=E, hidden_dim=H, init_range=0.5,
                     embedding_dropout=0.0, input_dropout=0.0, output_dropout=0.0,
                     dropconnect=0.0, hidden_norm_clip=0.0)

ARCHS = {
    "chain": ([-1, 0, 1, 2, 3, 4], [0, 1, 2, 3, 0, 1]),
    "fan_out": ([-1, 0, 1, 1, 1, 1], [3, 0, 1, 2, 3, 0]),
    "star": ([-1, 0, 0, 0, 0, 0], [1, 0, 1, 2, 3, 0]),
    "random_a": ([-1, 0, 0, 2, 1, 3], [2, 3, 0, 1, 1, 2]),
    "random_b": ([-1, 0, 1, 0, 2, 2], [1, 1, 3, 0, 2, 3]),
}


def _init(cfg=CFG, seed=0):
  model = RNNLanguageModel(cfg, V)
  arch = make_arch(*ARCHS["chain"])
  tokens = jnp.zeros((B, T), jnp.int32)
  params = model.init(jax.random.key(seed), tokens, jnp.zeros((B, H)), arch)["params"]
  return model, params


@pytest.mark.parametrize("name", sorted(ARCHS))
@pytest.mark.parametrize("output", ["loose_ends", "all_nodes"])
def test_traced_arch_matches_reference(name, output):
  cfg = RNNModelConfig(**{**CFG.__dict__, "output": output})
  model, params = _init(cfg)
  prev, act = ARCHS[name]
  tokens = jax.random.randint(jax.random.key(1), (B, T), 0, V)
  h0 = jax.random.normal(jax.random.key(2), (B, H))
  apply = jax.jit(lambda p, a: model.apply({"params": p}, tokens, h0, a))
  logits, h = apply(params, make_arch(prev, act))
  ref_logits, ref_h = reference_lm(params, prev, act, np.asarray(tokens), np.asarray(h0), output)
  np.testing.assert_allclose(logits, ref_logits, rtol=2e-5, atol=2e-5)
  np.testing.assert_allclose(h, ref_h, rtol=2e-5, atol=2e-5)


def test_hidden_norm_clip_matches_reference():
  cfg = RNNModelConfig(**{**CFG.__dict__, "hidden_norm_clip": 0.3})
  model, params = _init(cfg)
  prev, act = ARCHS["random_a"]
  tokens = jax.random.randint(jax.random.key(1), (B, T), 0, V)
  h0 = 3.0 * jax.random.normal(jax.random.key(2), (B, H))
  logits, h = model.apply({"params": params}, tokens, h0, make_arch(prev, act))
  ref_logits, ref_h = reference_lm(params, prev, act, np.asarray(tokens), np.asarray(h0),
                                   max_norm=0.3)
  np.testing.assert_allclose(logits, ref_logits, rtol=2e-5, atol=2e-5)
  assert np.all(np.linalg.norm(np.asarray(h), axis=1) <= 0.3 + 1e-5)


def test_fixed_mode_equals_shared_with_same_weights_and_counts_params():
  model, shared = _init()
  prev, act = ARCHS["random_b"]
  fixed_model = RNNLanguageModel(CFG, V, fixed_arch=(tuple(prev), tuple(act)))
  tokens = jax.random.randint(jax.random.key(1), (B, T), 0, V)
  h0 = jnp.zeros((B, H))
  fixed = fixed_model.init(jax.random.key(3), tokens, h0)["params"]
  # Only the chosen (node, prev) edges exist, plus node 0, the embedding and the bias.
  assert sorted(k for k in fixed["cell"] if k != "node0") == sorted(
      f"node{k}_prev{prev[k]}" for k in range(1, N))
  expected = V * E + V + E * 2 * H + H * 2 * H + (N - 1) * H * 2 * H
  assert count_params(fixed) == expected
  assert count_params(shared) == V * E + V + E * 2 * H + H * 2 * H + N * (N - 1) // 2 * H * 2 * H
  copied = jax.tree_util.tree_map(lambda x: x, fixed)
  copied["embedding"] = shared["embedding"]
  copied["softmax_bias"] = shared["softmax_bias"]
  copied["cell"] = {k: shared["cell"][k] for k in fixed["cell"]}
  out_fixed, _ = fixed_model.apply({"params": copied}, tokens, h0)
  out_shared, _ = model.apply({"params": shared}, tokens, h0, make_arch(prev, act))
  np.testing.assert_allclose(out_fixed, out_shared, rtol=1e-6, atol=1e-6)


def _train_setup():
  cfg = RNNModelConfig(num_nodes=N, embed_dim=E, hidden_dim=H)
  model = RNNLanguageModel(cfg, V)
  opt = lm_steps.make_optimizer(lm_steps.SharedTrainConfig(lr=1.0))
  state = lm_steps.init_state(model, opt, jax.random.key(0), B, make_arch(*ARCHS["chain"]))
  train_step, eval_step = lm_steps.make_lm_steps(model, opt, l2=1e-7)
  batch = {"inputs": jax.random.randint(jax.random.key(5), (B, T), 0, V),
           "targets": jax.random.randint(jax.random.key(6), (B, T), 0, V),
           "valid": jnp.ones((T,), bool), "lr_scale": jnp.ones(())}
  return state, train_step, eval_step, batch


def test_two_hundred_random_architectures_compile_once():
  state, train_step, _, batch = _train_setup()
  chex.clear_trace_counter()
  step = jax.jit(chex.assert_max_traces(train_step, n=1))
  seen = set()
  for i in range(200):
    arch = arch_lib.random_arch(jax.random.key(100 + i), N)
    seen.add((tuple(np.asarray(arch.prev_N)), tuple(np.asarray(arch.act_N))))
    state, metrics = step(state, batch, arch, jax.random.key(i))
  assert np.isfinite(float(metrics["loss"]))
  assert len(seen) > 150  # really different architectures
  assert int(state.step) == 200


def test_training_step_only_moves_the_chosen_edges():
  state, _, _, batch = _train_setup()
  prev, act = ARCHS["star"]
  # No L2 so untouched edges stay exactly the same.
  cfg = RNNModelConfig(num_nodes=N, embed_dim=E, hidden_dim=H)
  model = RNNLanguageModel(cfg, V)
  opt = lm_steps.make_optimizer(lm_steps.SharedTrainConfig(lr=1.0))
  step, _ = lm_steps.make_lm_steps(model, opt, l2=0.0)
  new, _ = jax.jit(step)(state, batch, make_arch(prev, act), jax.random.key(0))
  for k in range(1, N):
    for p in range(k):
      moved = not np.array_equal(new.params["cell"][f"node{k}_prev{p}"],
                                 state.params["cell"][f"node{k}_prev{p}"])
      assert moved == (p == prev[k]), (k, p)


def test_dropout_is_deterministic_in_the_key_and_changes_with_it():
  cfg = RNNModelConfig(num_nodes=N, embed_dim=E, hidden_dim=H)
  model = RNNLanguageModel(cfg, V)
  arch = make_arch(*ARCHS["random_a"])
  tokens = jax.random.randint(jax.random.key(1), (B, T), 0, V)
  params = model.init(jax.random.key(0), tokens, jnp.zeros((B, H)), arch)["params"]
  run = lambda k: model.apply({"params": params}, tokens, jnp.zeros((B, H)), arch, train=True,
                              rngs={"dropout": jax.random.key(k)})[0]
  np.testing.assert_array_equal(run(1), run(1))
  assert not np.allclose(run(1), run(2))
  evals = model.apply({"params": params}, tokens, jnp.zeros((B, H)), arch)[0]
  assert not np.allclose(run(1), evals)


def test_dropconnect_on_node0_masks_only_node_zero():
  """`dropconnect_on="node0"` (ENAS-pytorch's code) masks node 0's recurrent matrix only: with
  that matrix zeroed and every other dropout off, the output no longer depends on the dropout
  key and equals the unmasked network's; with "all" (the default) the edges' masks still move
  it, and with node 0's matrix intact "node0" does too."""
  arch = make_arch(*ARCHS["random_a"])
  tokens = jax.random.randint(jax.random.key(1), (B, T), 0, V)
  h0 = jax.random.normal(jax.random.key(2), (B, H))

  def outputs(on, zero_node0):
    cfg = RNNModelConfig(**{**CFG.__dict__, "dropconnect": 0.5, "dropconnect_on": on})
    model, params = _init(cfg)
    if zero_node0:
      params["cell"]["node0"]["w_h"] = jnp.zeros_like(params["cell"]["node0"]["w_h"])
    run = lambda k: np.asarray(model.apply({"params": params}, tokens, h0, arch, train=True,
                                           rngs={"dropout": jax.random.key(k)})[0])
    return run(1), run(2), np.asarray(model.apply({"params": params}, tokens, h0, arch)[0])

  one, two, unmasked = outputs("node0", zero_node0=True)
  np.testing.assert_allclose(one, unmasked, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(two, unmasked, rtol=1e-6, atol=1e-6)
  one, two, unmasked = outputs("all", zero_node0=True)
  assert not np.allclose(one, two) and not np.allclose(one, unmasked)
  one, two, _ = outputs("node0", zero_node0=False)
  assert not np.allclose(one, two)


def test_invalid_steps_leave_the_state_unchanged():
  model, params = _init()
  arch = make_arch(*ARCHS["random_a"])
  tokens = jax.random.randint(jax.random.key(1), (B, T), 0, V)
  h0 = jax.random.normal(jax.random.key(2), (B, H))
  valid = jnp.array([True, True, True, False, False])
  _, h_masked = model.apply({"params": params}, tokens, h0, arch, valid)
  _, h_short = model.apply({"params": params}, tokens[:, :3], h0, arch)
  np.testing.assert_allclose(h_masked, h_short, rtol=1e-6, atol=1e-6)


def test_tied_weights_need_equal_sizes():
  from enas_jax.io.errors import UserError
  with pytest.raises(UserError, match="embed_dim"):
    RNNModelConfig(embed_dim=10, hidden_dim=20).validate()
