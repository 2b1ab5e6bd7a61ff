"""The ENAS recurrent cell: equivalence with a plain reference, compile-once, fixed mode."""
import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from enas_jax.tasks.language import steps as lm_steps
from enas_jax.spaces.rnn import arch as arch_lib
from enas_jax.spaces.rnn import cell as cell_lib
from enas_jax.spaces.rnn.arch import make_arch
from enas_jax.io.errors import UserError
from enas_jax.ops.initialize import initialize
from enas_jax.ops import products
from enas_jax.ops.params import count_params
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig, used_weights_penalty
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


def test_bfloat16_products_in_the_fixed_model_as_in_the_shared_one():
  """`model.matmul_dtype="bfloat16"` reaches the fixed cell of final training: with the shared
  model's weights it gives the shared model's bfloat16 logits, close to float32's and not equal."""
  model, shared = _init()
  prev, act = ARCHS["random_b"]
  bf16 = dataclasses.replace(CFG, matmul_dtype="bfloat16")
  fixed_model = RNNLanguageModel(bf16, V, fixed_arch=(tuple(prev), tuple(act)))
  tokens = jax.random.randint(jax.random.key(1), (B, T), 0, V)
  h0 = jnp.zeros((B, H))
  fixed = {**shared, "cell": {k: shared["cell"][k] for k in ["node0"] + [
      f"node{k}_prev{prev[k]}" for k in range(1, N)]}}
  out_fixed, _ = fixed_model.apply({"params": fixed}, tokens, h0)
  out_shared16, _ = RNNLanguageModel(bf16, V).apply({"params": shared}, tokens, h0,
                                                    make_arch(prev, act))
  out32, _ = model.apply({"params": shared}, tokens, h0, make_arch(prev, act))
  np.testing.assert_allclose(out_fixed, out_shared16, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(out_fixed, out32, rtol=0, atol=0.05 * float(jnp.max(jnp.abs(out32))))
  assert float(jnp.max(jnp.abs(out_fixed - out32))) > 1e-4


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_tied_softmax_is_the_untied_one_holding_the_embedding_transposed(dtype):
  """Tied weights (in bfloat16 the product takes the embedding as its transposed operand): the
  logits and the embedding's gradient are the untied model's whose softmax kernel is the
  embedding transposed (its gradient is the sum of the untied embedding's and kernel's)."""
  prev, act = ARCHS["random_b"]
  tied_cfg = dataclasses.replace(CFG, matmul_dtype=dtype)
  untied_cfg = dataclasses.replace(tied_cfg, tie_weights=False)
  _, params = _init(tied_cfg)
  tokens = jax.random.randint(jax.random.key(1), (B, T), 0, V)
  ct = jax.random.normal(jax.random.key(2), (B, T, V))
  h0, arch = jnp.zeros((B, H)), make_arch(prev, act)

  def loss(cfg, p):
    return jnp.sum(RNNLanguageModel(cfg, V).apply({"params": p}, tokens, h0, arch)[0] * ct)

  untied = {**params, "softmax_kernel": params["embedding"].T}
  np.testing.assert_allclose(loss(tied_cfg, params), loss(untied_cfg, untied), rtol=1e-6)
  g_tied = jax.grad(functools.partial(loss, tied_cfg))(params)["embedding"]
  g_untied = jax.grad(functools.partial(loss, untied_cfg))(untied)
  np.testing.assert_allclose(g_tied, g_untied["embedding"] + g_untied["softmax_kernel"].T,
                             rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(g_tied))))


def _train_setup(**model_fields):
  cfg = RNNModelConfig(num_nodes=N, embed_dim=E, hidden_dim=H, **model_fields)
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


def test_l2_on_used_weights_decays_only_what_the_step_uses():
  """`shared.l2_on="used"` (ENAS-pytorch's weight decay): the L2 term is the sum of squares of
  the embedding, the softmax bias, node 0's matrices and each node's chosen edge, each its
  activation's copy (by hand); a step leaves every other edge and copy exactly as it was, and
  moves the used ones as the L2 over every weight does (no clipping: the same gradients)."""
  cfg = RNNModelConfig(**{**CFG.__dict__, "activation_weights": "all"})
  model = RNNLanguageModel(cfg, V)
  prev, act = ARCHS["random_a"]
  arch = make_arch(prev, act)
  opt = lm_steps.make_optimizer(lm_steps.SharedTrainConfig(lr=1.0, grad_clip=0.0))
  state = lm_steps.init_state(model, opt, jax.random.key(0), B, arch)
  cell = {k: np.asarray(v) if not isinstance(v, dict) else {kk: np.asarray(vv) for kk, vv in
                                                             v.items()}
          for k, v in state.params["cell"].items()}
  used = {("node0", "w_x", act[0]), ("node0", "w_h", act[0])} | {
      (f"node{k}_prev{prev[k]}", None, act[k]) for k in range(1, N)}
  by_hand = (np.sum(np.square(np.asarray(state.params["embedding"], np.float64)))
             + np.sum(np.square(np.asarray(state.params["softmax_bias"], np.float64)))
             + sum(np.sum(np.square((cell[k][w] if w else cell[k])[a].astype(np.float64)))
                   for k, w, a in used))
  np.testing.assert_allclose(float(used_weights_penalty(state.params, arch)), by_hand, rtol=1e-6)
  batch = {"inputs": jax.random.randint(jax.random.key(5), (B, T), 0, V),
           "targets": jax.random.randint(jax.random.key(6), (B, T), 0, V),
           "valid": jnp.ones((T,), bool), "lr_scale": jnp.ones(())}
  after = {}
  for name in ("all", "used"):
    step, _ = lm_steps.make_lm_steps(model, opt, l2=0.01, l2_on=name)
    after[name] = jax.jit(step)(state, batch, arch, jax.random.key(0))[0].params["cell"]
  for key, value in cell.items():
    for w in (("w_x", "w_h") if key == "node0" else (None,)):
      before = value[w] if w else value
      for name in ("all", "used"):
        new = np.asarray(after[name][key][w] if w else after[name][key])
        for a in range(before.shape[0]):
          if (key, w, a) in used:
            np.testing.assert_allclose(new[a], np.asarray(after["all"][key][w] if w else
                                                          after["all"][key])[a], rtol=1e-6)
            assert not np.array_equal(new[a], before[a])
          else:  # "all" decays the unused copies too; "used" leaves them be
            assert np.array_equal(new[a], before[a]) == (name == "used"), (key, w, a, name)
  with pytest.raises(UserError, match="`shared.l2_on` is 'some'; it must be one of all, used"):
    lm_steps.SharedTrainConfig(l2_on="some").validate()


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
  with pytest.raises(UserError, match="embed_dim"):
    RNNModelConfig(embed_dim=10, hidden_dim=20).validate()


def _plain_unroll(xw_TxBx2H, w_h0, w_edges, prev, act, h_BxH, valid_T, output, clip, mask,
                  mm=jnp.matmul):
  """The cell equations as written, with Python-known choices: a plain scan that jax
  differentiates by itself (the reference for the hand-written gradient); `mm` computes the
  products."""
  fns = (jnp.tanh, jax.nn.relu, lambda v: v, jax.nn.sigmoid)
  drop = (lambda v: v) if mask is None else (lambda v: v * mask)
  hidden = h_BxH.shape[-1]
  if output == "all_nodes":
    ends = list(range(len(prev)))
  else:
    ends = [n for n in range(len(prev)) if n not in prev[1:]]

  def highway(z, u, a):
    c = jax.nn.sigmoid(z[:, :hidden])
    return c * fns[a](z[:, hidden:]) + (1.0 - c) * u

  def step(h_prev, inputs):
    xw, valid = inputs
    nodes = [highway(xw + mm(drop(h_prev), w_h0), h_prev, act[0])]
    for k in range(1, len(prev)):
      nodes.append(highway(mm(drop(nodes[prev[k]]), w_edges[k - 1]), nodes[prev[k]], act[k]))
    h_new = sum(nodes[n] for n in ends) / len(ends)
    if clip > 0:
      norm = jnp.sqrt(jnp.sum(h_new * h_new, axis=-1, keepdims=True))
      h_new = h_new * jnp.minimum(1.0, clip / norm)
    return jnp.where(valid, h_new, h_prev), h_new

  return jax.lax.scan(step, h_BxH, (xw_TxBx2H, valid_T))


def _cell_inputs(ks, hidden: int, steps: int, scale: float):
  """Random (xw [T, B, 2H], w_h0, w_edges [N-1, H, 2H] at `scale`, h0 [B, H]) from ks[0:4]."""
  return (jax.random.normal(ks[0], (steps, B, 2 * hidden)),
          scale * jax.random.normal(ks[1], (hidden, 2 * hidden)),
          scale * jax.random.normal(ks[2], (N - 1, hidden, 2 * hidden)),
          jax.random.normal(ks[3], (B, hidden)))


@pytest.mark.parametrize("name", ["chain", "fan_out", "random_a", "random_b"])
@pytest.mark.parametrize("output,clip,masked", [("loose_ends", 0.0, False),
                                                ("all_nodes", 0.7, True),
                                                ("loose_ends", 0.7, True)])
def test_hand_written_gradient_equals_autodiff_of_the_plain_cell(name, output, clip, masked):
  """`cell.unroll`'s custom VJP (sequential data gradients, then one weight-gradient product
  over all steps) against jax's own gradient of the plain cell: every activation, the norm
  clip active on some rows, between-node dropout, steps past the window's end."""
  prev, act = ARCHS[name]
  hidden, steps = 6, 7
  ks = jax.random.split(jax.random.key(5), 7)
  xw, w_h0, w_edges, h0 = _cell_inputs(ks, hidden, steps, 0.6)
  valid = jnp.array([1, 1, 1, 0, 1, 0, 0], bool)
  mask = jax.random.bernoulli(ks[4], 0.7, (B, hidden)) / 0.7 if masked else None
  ct_out = jax.random.normal(ks[5], (steps, B, hidden))
  ct_last = jax.random.normal(ks[6], (B, hidden))
  opts = cell_lib.CellOptions(output=output, hidden_norm_clip=clip)
  arch = make_arch(prev, act)

  def objective(run):
    def f(*diff):
      last, out = run(*diff)
      return jnp.sum(out * ct_out) + jnp.sum(last * ct_last) + jnp.sum(jnp.sin(3.0 * out))
    return f

  ours = objective(lambda *d: cell_lib.unroll(*d[:3], arch, d[3], valid, opts, mask))
  plain = objective(lambda *d: _plain_unroll(*d[:3], prev, act, d[3], valid, output, clip, mask))
  args = (xw, w_h0, w_edges, h0)
  # ours compiled as the search compiles it; the plain reference at XLA's lowest level
  # (`initialize`: the same arithmetic up to float rounding; it ran op by op, 47 -> 39 s for
  # these 12 cases)
  got = jax.jit(jax.grad(ours, argnums=(0, 1, 2, 3)))(*args)
  want = initialize(jax.grad(plain, argnums=(0, 1, 2, 3)), *args)
  for name_, g, w in zip(("xw", "w_h0", "w_edges", "h0"), got, want):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(w))),
                               err_msg=name_)
  np.testing.assert_allclose(ours(*args), plain(*args), rtol=1e-5)
  if clip:  # the clip is active on some rows and not on others
    _, out = _plain_unroll(xw, w_h0, w_edges, prev, act, h0, valid, output, 0.0, mask)
    norms = np.linalg.norm(np.asarray(out), axis=-1)
    assert (norms > clip).any() and (norms < clip).any()


def _rounded_mm(a, b):
  """a @ b with both operands rounded to bfloat16, summed in float32 at full precision."""
  r = lambda x: x.astype(jnp.bfloat16).astype(jnp.float32)
  return jnp.matmul(r(a), r(b), precision=jax.lax.Precision.HIGHEST)


@pytest.mark.parametrize("name", ["chain", "random_a"])
def test_bfloat16_products_are_rounded_operands_summed_in_float32(name):
  """`matmul_dtype="bfloat16"`: the cell's outputs are the plain cell's with every product's
  operands rounded to bfloat16 (to float32 summation order), visibly not the float32 cell's;
  its hand-written gradient is that reference's within bfloat16 rounding of the gradient."""
  prev, act = ARCHS[name]
  hidden, steps = 16, 6
  ks = jax.random.split(jax.random.key(8), 5)
  xw, w_h0, w_edges, h0 = _cell_inputs(ks, hidden, steps, 0.4)
  valid = jnp.ones((steps,), bool)
  ct = jax.random.normal(ks[4], (steps, B, hidden))
  arch = make_arch(prev, act)

  def loss(run):
    return lambda *d: jnp.sum(run(*d)[1] * ct)

  opts = {dt: cell_lib.CellOptions(output="loose_ends", matmul_dtype=dt)
          for dt in ("float32", "bfloat16")}
  ours = {dt: loss(lambda *d, o=o: cell_lib.unroll(*d[:3], arch, d[3], valid, o))
          for dt, o in opts.items()}
  rounded = loss(lambda *d: _plain_unroll(*d[:3], prev, act, d[3], valid, "loose_ends", 0.0,
                                          None, _rounded_mm))
  args = (xw, w_h0, w_edges, h0)
  _, out16 = jax.jit(lambda *d: cell_lib.unroll(*d[:3], arch, d[3], valid,
                                                opts["bfloat16"]))(*args)
  _, out_ref = _plain_unroll(*args[:3], prev, act, h0, valid, "loose_ends", 0.0, None,
                             _rounded_mm)
  _, out32 = cell_lib.unroll(*args[:3], arch, h0, valid, opts["float32"])
  np.testing.assert_allclose(out16, out_ref, rtol=1e-5, atol=1e-5)
  assert float(jnp.max(jnp.abs(out16 - out32))) > 1e-3  # the option is not ignored
  got = jax.jit(jax.grad(ours["bfloat16"], argnums=(0, 1, 2, 3)))(*args)
  want = jax.grad(rounded, argnums=(0, 1, 2, 3))(*args)
  for name_, g, w in zip(("xw", "w_h0", "w_edges", "h0"), got, want):
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(g, w, rtol=0, atol=2e-2 * float(jnp.max(jnp.abs(w))),
                               err_msg=name_)


@pytest.mark.parametrize("rows", [(3, 5), (4, 5)])  # 15 rows, and 20: split in two halves
@pytest.mark.parametrize("b_transposed", [False, True])
def test_bfloat16_matmul_gradient_rounds_the_incoming_gradient(b_transposed, rows):
  """`products.matmul(a, b, "bfloat16")` (the model's input and softmax products): forward and both
  gradients are products of bfloat16-rounded operands (the incoming gradient rounded too),
  summed in float32, for a 3-d `a`; with `b_transposed` (the tied softmax: `b` given as [N, K])
  the same for a @ b.T, and its gradient has `b`'s own shape."""
  a = jax.random.normal(jax.random.key(0), (*rows, 24))
  b = jax.random.normal(jax.random.key(1), (24, 7))
  g = jax.random.normal(jax.random.key(2), (*rows, 7))
  n = rows[0] * rows[1]
  given = b.T if b_transposed else b
  out, vjp = jax.vjp(lambda a, w: products.matmul(a, w, "bfloat16", b_transposed), a, given)
  d_a, d_given = vjp(g)
  d_b = d_given.T if b_transposed else d_given
  assert d_given.shape == given.shape
  np.testing.assert_allclose(out, _rounded_mm(a, b), rtol=1e-6, atol=1e-5)
  np.testing.assert_allclose(d_a, _rounded_mm(g, b.T), rtol=1e-6, atol=1e-5)
  np.testing.assert_allclose(d_b, _rounded_mm(a.reshape(n, 24).T, g.reshape(n, 7)),
                             rtol=1e-6, atol=1e-5)
  assert float(jnp.max(jnp.abs(out - a @ b))) > 1e-3
  np.testing.assert_array_equal(products.matmul(a, given, b_transposed=b_transposed), a @ b)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("lead,rows", [((), 20), ((), 15), ((3,), 20)])
def test_products_of_transposes_are_the_plain_products(dtype, lead, rows):
  """`mm_nt` (a @ b.T) and `mm_tn` (a.T @ b, over rows split in two halves when even, with or
  without a leading batch dimension) are `mm` of the transposed operands: in float32 the same
  expression without a batch dimension (equal), otherwise within float32 summation order."""
  k, n = 6, 4
  a = jax.random.normal(jax.random.key(0), (*lead, rows, k))
  b = jax.random.normal(jax.random.key(1), (*lead, rows, n))
  c = jax.random.normal(jax.random.key(2), (k, n))
  t = lambda x: jnp.swapaxes(x, -1, -2)
  tn, plain_tn = products.mm_tn(a, b, dtype), products.mm(t(a), b, dtype)
  nt, plain_nt = products.mm_nt(b, c, dtype), products.mm(b, c.T, dtype)
  assert tn.shape == (*lead, k, n) and tn.dtype == nt.dtype == jnp.float32
  tol = 0 if dtype == "float32" and not lead else 1e-5
  np.testing.assert_allclose(tn, plain_tn, rtol=tol, atol=tol)
  np.testing.assert_allclose(nt, plain_nt, rtol=tol, atol=tol)
  if dtype == "bfloat16":  # the operands are rounded: not float32's products
    assert float(jnp.max(jnp.abs(tn - products.mm(t(a), b, "float32")))) > 1e-4


@pytest.mark.parametrize("rate,bits", [(0.5, 1), (0.25, 2), (0.375, 4), (0.65, None)])
def test_dropout_masks_have_their_rate_and_bit_packed_ones_unpack_by_hand(rate, bits):
  """Rates that are multiples of 1/2^b come from b random bits per element (element i is bits
  b*(i mod 32/b) up of word i div (32/b)), checked against a NumPy unpacking; every rate keeps
  1 - rate of the elements (binomial, 5 standard deviations) with no pattern between
  neighbours, and scales the kept ones by 1 / (1 - rate)."""
  from enas_jax.spaces.rnn.model import dropout_mask
  shape, key = (3, 250, 401), jax.random.key(11)
  mask = np.asarray(dropout_mask(key, rate, shape))
  assert set(np.unique(mask)) <= {0.0, np.float32(1.0 / (1.0 - rate))}
  keep = mask.reshape(-1) > 0
  n = keep.size
  assert abs(keep.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
  neighbours = np.corrcoef(keep[:-1].astype(float), keep[1:].astype(float))[0, 1]
  assert abs(neighbours) < 5 / np.sqrt(n)
  if bits is not None:
    per_word = 32 // bits
    words = np.asarray(jax.random.bits(key, (-(-n // per_word),), jnp.uint32), np.uint64)
    values = (words[:, None] >> (bits * np.arange(per_word, dtype=np.uint64))) & (2 ** bits - 1)
    np.testing.assert_array_equal(keep, values.reshape(-1)[:n] >= rate * 2 ** bits)
  assert not np.array_equal(mask, np.asarray(dropout_mask(jax.random.key(12), rate, shape)))


@pytest.mark.parametrize("per_act", ["node0", "all"])
def test_weights_per_activation_pick_the_nodes_copy_and_train_only_it(per_act):
  """With one copy of a key's matrices per activation, the model equals the NumPy reference fed
  each node's copy for its activation, and a step moves only the copies the cell used."""
  cfg = RNNModelConfig(**{**CFG.__dict__, "activation_weights": per_act})
  model, params = _init(cfg)
  assert params["cell"]["node0"]["w_x"].shape == (4, E, 2 * H)
  assert params["cell"]["node1_prev0"].shape == ((4, H, 2 * H) if per_act == "all"
                                                 else (H, 2 * H))
  tokens = jax.random.randint(jax.random.key(1), (B, T), 0, V)
  h0 = jax.random.normal(jax.random.key(2), (B, H))
  for name in ("chain", "random_a"):
    prev, act = ARCHS[name]
    logits, h = model.apply({"params": params}, tokens, h0, make_arch(prev, act))
    plain = {"embedding": params["embedding"], "softmax_bias": params["softmax_bias"],
             "cell": {"node0": {w: params["cell"]["node0"][w][act[0]] for w in ("w_x", "w_h")},
                      **{k: (v[act[int(k[4:k.index("_")])]] if v.ndim == 3 else v)
                         for k, v in params["cell"].items() if k != "node0"}}}
    ref_logits, ref_h = reference_lm(plain, prev, act, np.asarray(tokens), np.asarray(h0))
    np.testing.assert_allclose(logits, ref_logits, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(h, ref_h, rtol=2e-5, atol=2e-5)

  prev, act = ARCHS["random_b"]
  opt = lm_steps.make_optimizer(lm_steps.SharedTrainConfig(lr=1.0))
  state = lm_steps.init_state(model, opt, jax.random.key(0), B, make_arch(prev, act))
  step, _ = lm_steps.make_lm_steps(model, opt, l2=0.0)
  batch = {"inputs": tokens, "targets": jnp.roll(tokens, 1, axis=1),
           "valid": jnp.ones((T,), bool), "lr_scale": jnp.ones(())}
  new, _ = jax.jit(step)(state, batch, make_arch(prev, act), jax.random.key(0))
  for a in range(4):
    moved = not np.array_equal(new.params["cell"]["node0"]["w_h"][a],
                               state.params["cell"]["node0"]["w_h"][a])
    assert moved == (a == act[0]), a
    if per_act == "all":
      for k in range(1, N):
        moved = not np.array_equal(new.params["cell"][f"node{k}_prev{prev[k]}"][a],
                                   state.params["cell"][f"node{k}_prev{prev[k]}"][a])
        assert moved == (a == act[k]), (k, a)


def _conditionals_in_loops(jaxpr, in_loop: bool = False) -> int:
  """`cond` equations inside a `scan` or `while` body of a jaxpr (nested jaxprs included)."""
  def inner(value):
    if hasattr(value, "eqns"):
      yield value
    elif hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
      yield value.jaxpr
    elif isinstance(value, (list, tuple)):
      for v in value:
        yield from inner(v)

  count = 0
  for eqn in jaxpr.eqns:
    count += in_loop and eqn.primitive.name == "cond"
    loop = in_loop or eqn.primitive.name in ("scan", "while")
    for value in eqn.params.values():
      count += sum(_conditionals_in_loops(sub, loop) for sub in inner(value))
  return count


def test_activation_select_trains_as_switch_with_no_branch_in_the_time_loop():
  """`model.activation_dispatch="select"` (every activation computed, the chosen one kept) gives
  the "switch" dispatch's loss, gradients and weights bit for bit over three training steps of
  architectures using all four activations, and its time loop holds no conditional, where
  "switch" holds one per node."""
  results, branches = {}, {}
  for dispatch in ("switch", "select"):
    state, train_step, _, batch = _train_setup(activation_dispatch=dispatch)
    arch0 = make_arch(*ARCHS["random_a"])
    branches[dispatch] = _conditionals_in_loops(
        jax.make_jaxpr(train_step)(state, batch, arch0, jax.random.key(0)).jaxpr)
    step, losses = jax.jit(train_step), []
    for i, name in enumerate(("random_a", "random_b", "fan_out")):
      state, metrics = step(state, batch, make_arch(*ARCHS[name]), jax.random.key(i))
      losses.append(np.asarray(metrics["loss"]))
    results[dispatch] = (losses, jax.tree_util.tree_leaves(state.params))
  assert branches == {"switch": N, "select": 0}
  for got, want in zip(jax.tree_util.tree_leaves(results["select"]),
                       jax.tree_util.tree_leaves(results["switch"])):
    np.testing.assert_array_equal(got, want)
  with pytest.raises(UserError, match="activation_dispatch"):
    RNNModelConfig(activation_dispatch="where").validate()


def test_activation_dispatch_auto_is_switch_on_the_cpu_and_select_elsewhere():
  """The default "auto" resolves by backend; an explicit choice is kept on every backend."""
  assert [cell_lib.resolve_dispatch("auto", b) for b in ("cpu", "gpu", "tpu")] == [
      "switch", "select", "select"]
  assert [cell_lib.resolve_dispatch(d, "gpu") for d in ("switch", "select")] == [
      "switch", "select"]
  assert RNNModelConfig().activation_dispatch == "auto"
  assert RNNModelConfig().cell_options.activation_dispatch == (
      "switch" if jax.default_backend() == "cpu" else "select")
