"""The micro search space: formats, the controller's order and biases, cells against a plain
reference, one compilation over 200 architectures, the fixed cells against a plain reference and
the fixed network's size."""
import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from enas_jax.controller import policy as ctl
from enas_jax.io.errors import UserError
from enas_jax.ops import conv as ops
from enas_jax.ops.initialize import initialize
from enas_jax.spaces.micro import arch as arch_lib
from enas_jax.spaces.micro import network
from tests import authors_counts, jaxpr_counts

# The authors' published cells (cifar10_micro_final.sh): normal cell, then reduction cell.
AUTHORS = ("0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1 "
           "1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1")


def test_authors_string_layout_round_trips_and_loose_ends():
  arch = arch_lib.from_authors_string(AUTHORS)
  assert arch.normal_Bx4.shape == (5, 4)
  # normal node 2 = avgpool3x3(node 0) + sep3x3(node 0); reduce node 6 = maxpool(0) + sep5x5(1)
  assert arch.normal_Bx4[0].tolist() == [0, 2, 0, 0]
  assert arch.reduce_Bx4[4].tolist() == [0, 3, 1, 1]
  assert arch_lib.to_authors_string(arch) == " ".join(AUTHORS.split())
  data = arch_lib.to_json(arch)
  assert data["normal"][0] == {"node": 2, "inputs": [0, 0], "ops": ["avgpool3x3", "sep3x3"]}
  # no normal node reads another node; in the reduction cell node 4 reads node 3
  assert data["outputs"] == {"normal": [2, 3, 4, 5, 6], "reduce": [2, 4, 5, 6]}
  back = arch_lib.from_json(data)
  np.testing.assert_array_equal(back.reduce_Bx4, arch.reduce_Bx4)
  values = jnp.asarray(arch_lib.to_decisions(arch))
  traced = jax.jit(arch_lib.from_decisions)(values)
  np.testing.assert_array_equal(traced.normal_Bx4, arch.normal_Bx4)
  np.testing.assert_array_equal(traced.reduce_Bx4, arch.reduce_Bx4)


def test_loose_ends_traced_matches_host():
  for seed in range(20):
    arch = jax.tree_util.tree_map(np.asarray, arch_lib.random_arch(jax.random.key(seed), 4))
    arch_lib.validate(arch)
    for cell in arch:
      np.testing.assert_array_equal(np.asarray(arch_lib.loose_ends_traced(jnp.asarray(cell))),
                                    arch_lib.loose_ends(cell).astype(np.float32))


@pytest.mark.parametrize("text, message", [
    ("0 2 0 0 0 4 0", "7 integers"),
    ("0 2 2 0 0 0 0 0", "normal cell node 2 reads node 2"),
    ("0 5 0 0 0 0 0 0", "operation id 5"),
    ("0 0 0 0 0 0 0 x", "integers"),
    ("0_1_1_3_1_0_0_2", "integers"),  # Python's int() reads it as 1131002
    ("0 +1 1 3 1 0 0 2", "integers"),
])
def test_bad_authors_strings_are_named(text, message):
  with pytest.raises(UserError, match=message):
    arch_lib.from_authors_string(text)


def test_wrong_node_count_and_other_space_are_clear(tmp_path):
  with pytest.raises(UserError, match="model.num_nodes"):
    arch_lib.from_authors_string(AUTHORS, num_nodes=4)
  missing = str(tmp_path / "best_arch.json")  # a path that names nothing: not read as a string
  with pytest.raises(UserError, match=f"no file or directory '{missing}'"):
    arch_lib.load_arch(missing)
  with pytest.raises(UserError, match="^The architecture string '0 x' must be"):  # named once
    arch_lib.load_arch("0 x")
  with pytest.raises(UserError, match="not a micro-space architecture"):
    arch_lib.from_json({"space": "macro", "layers": []})


def test_decision_order_follows_the_authors_controller():
  d = arch_lib.decisions(2)
  assert len(d) == arch_lib.num_decisions(2) == 24
  assert [(x.kind, x.node, x.num_choices) for x in d[:7]] == [
      ("anchor", 0, 1), ("anchor", 1, 1), ("pointer", 2, 2), ("pointer", 2, 2), ("op", 2, 5),
      ("op", 2, 5), ("anchor", 2, 1)]
  reduce_first_pointer = d[12 + 2]
  assert reduce_first_pointer.first == 4 and reduce_first_pointer.node == 6
  assert d[4].prior == arch_lib.OP_PRIOR and d[12 + 4].prior == ()  # normal cell only


def _controller(decisions, cfg):
  controller = ctl.Controller(decisions, cfg)
  params = ctl.init_controller(controller, jax.random.key(0))
  params = jax.tree_util.tree_map(lambda x: x, params)
  params["op_head_5"]["kernel"] = jnp.zeros_like(params["op_head_5"]["kernel"])
  return controller, params


def test_op_logits_are_bias_then_reduced_tanh_then_prior():
  """With the op head's weights zeroed, an op's logits are c/r * tanh(b/T) + prior (by hand)."""
  cfg = ctl.ControllerConfig(hidden_dim=8, temperature=1.0, tanh_c=1.1, op_tanh_reduce=2.5)
  c = 1.1 / 2.5
  full = arch_lib.decisions(2)
  values = jnp.asarray(arch_lib.to_decisions(arch_lib.random_arch(jax.random.key(3), 2)))
  # the very last op of the reduction cell: no prior; only an anchor step follows it
  controller, params = _controller(full, cfg)
  last_op = len(full) - 2
  lp = [ctl.log_prob(controller, params, values.at[last_op].set(op))[0] for op in (0, 2)]
  assert float(lp[0] - lp[1]) == pytest.approx(c * math.tanh(10.0), abs=1e-5)
  # the normal cell alone: its last op carries the prior +0.25 / -0.25
  normal = full[:12]
  controller, params = _controller(normal, cfg)
  lp = [ctl.log_prob(controller, params, values[:12].at[10].set(op))[0] for op in (0, 2)]
  assert float(lp[0] - lp[1]) == pytest.approx(c * math.tanh(10.0) + 0.5, abs=1e-5)


def test_reduction_cell_continues_the_normal_cells_lstm_state():
  cfg = ctl.ControllerConfig(hidden_dim=8, temperature=1.0, tanh_c=1.1, op_tanh_reduce=2.5)
  controller = ctl.Controller(arch_lib.decisions(2), cfg)
  params = ctl.init_controller(controller, jax.random.key(0))
  a = jnp.asarray(arch_lib.to_decisions(arch_lib.from_authors_string(
      "0 0 1 4 2 1 0 2 1 3 0 1 2 4 1 0")))
  b = a.at[4].set(3)  # another op in the normal cell only
  samples = ctl.sample_many(controller, params, jax.random.key(5), 64)
  for v in np.asarray(samples.values):
    arch_lib.validate(arch_lib.from_decisions(v), num_nodes=2)
  # the reduction cell's log-probability depends on what the normal cell chose
  normal = ctl.Controller(arch_lib.decisions(2)[:12], cfg)
  normal_params = dict(params, embed={"embedding": params["embed"]["embedding"][:5 + 4]})

  def reduce_logp(v):
    full = ctl.log_prob(controller, params, v)[0]
    return float(full - ctl.log_prob(normal, normal_params, v[:12])[0])
  assert abs(reduce_logp(a) - reduce_logp(b)) > 1e-6


# --- the shared cell against a plain reference ----------------------------------------------------

def _plain_bn(x, scale, bias):
  mean = x.mean(axis=(0, 1, 2))
  var = x.var(axis=(0, 1, 2))
  return (x - mean) / np.sqrt(var + 1e-5) * scale + bias


def _plain_conv(x, w, groups=1):
  return np.asarray(jax.lax.conv_general_dilated(
      jnp.asarray(x), jnp.asarray(w), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=groups, precision="highest"))


def _plain_pool(x, kind):
  n, h, w, c = x.shape
  out = np.zeros_like(x)
  for i in range(h):
    for j in range(w):
      win = x[:, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2, :]
      out[:, i, j, :] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
  return out


def reference_cell(p, rows, x0, x1):
  """A plain static implementation: the chosen ops only, the loose ends' rows of the combine."""
  p = jax.tree_util.tree_map(np.asarray, p)
  nodes = [np.asarray(x0), np.asarray(x1)]
  offsets = network.pair_offsets(len(rows))
  for b, row in enumerate(rows):
    total = 0
    for slot, name in enumerate("xy"):
      inp, op = row[2 * slot], arch_lib.OPS[row[2 * slot + 1]]
      h = nodes[inp]
      if op.startswith("sep"):
        pair = offsets[b] + inp  # the weights of the pair (node b + 2, input inp)
        for s in p["slots"][name][op]:
          h = _plain_conv(np.maximum(h, 0), s["depth"][pair], groups=h.shape[-1])
          h = _plain_conv(h, s["point"][pair])
          h = _plain_bn(h, s["bn"]["scale"][pair], s["bn"]["bias"][pair])
      elif op == "avgpool3x3":
        h = _plain_pool(h, "avg")
      elif op == "maxpool3x3":
        h = _plain_pool(h, "max")
      total = total + h
    nodes.append(total)
  loose = [j for j in range(len(nodes)) if j not in {r[0] for r in rows} | {r[2] for r in rows}]
  c = x0.shape[-1]
  w = p["combine"]["w"].reshape(len(nodes), c, c)
  out = sum(np.einsum("nhwc,cd->nhwd", np.maximum(nodes[j], 0), w[j]) for j in loose)
  return _plain_bn(out, p["combine"]["bn"]["scale"], p["combine"]["bn"]["bias"])


CELL_CFG = network.MicroModelConfig(num_layers=3, num_nodes=5, filters=4, stem_multiplier=1,
                                    aux_head=False)


@functools.cache
def _shared_params(cfg: network.MicroModelConfig) -> dict:
  """`init_shared` for 8x8 images and 10 classes, key 0, made once per module and config: op by
  op it took 18 s (`ops.initialize.initialize`: 3 s)."""
  return initialize(lambda k: network.init_shared(k, cfg, (8, 8, 3), 10), jax.random.key(0))


@pytest.mark.parametrize("cell", [
    AUTHORS.split()[:20], AUTHORS.split()[20:],
    "1 4 0 3 2 1 2 2 3 0 1 4 0 1 4 2 3 3 5 0".split(),
])
def test_shared_cell_equals_a_plain_reference(cell):
  rows = np.asarray([int(v) for v in cell], np.int32).reshape(5, 4)
  params = _shared_params(CELL_CFG)
  p = params["layers"][0]
  k0, k1 = jax.random.split(jax.random.key(4))
  x0 = jax.random.normal(k0, (3, 8, 8, 4))
  x1 = jax.random.normal(k1, (3, 8, 8, 4))
  with jax.default_matmul_precision("highest"):
    got = jax.jit(network.shared_cell)(p, jnp.asarray(rows), x0, x1)
  np.testing.assert_allclose(np.asarray(got), reference_cell(p, rows.tolist(), x0, x1),
                             rtol=2e-4, atol=2e-4)


def test_each_operation_index_selects_its_own_computation():
  params = _shared_params(CELL_CFG)
  slot = params["layers"][0]["slots"]["x"]
  x = jax.random.normal(jax.random.key(2), (2, 8, 8, 4))
  outs = [np.asarray(jax.jit(lambda op: jax.lax.switch(
      op, network.slot_branches(slot, jnp.int32(4)), x))(jnp.int32(i)))
          for i in range(arch_lib.NUM_OPS)]
  np.testing.assert_allclose(outs[4], np.asarray(x))
  np.testing.assert_allclose(outs[3], _plain_pool(np.asarray(x), "max"), rtol=1e-6)
  for i in range(5):
    for j in range(i):
      assert np.abs(outs[i] - outs[j]).max() > 1e-2, (arch_lib.OPS[i], arch_lib.OPS[j])


def test_weights_are_keyed_by_node_and_input():
  """A slot's tables have one row per (node, prev) pair: 2 + 3 + 4 + 5 + 6 = 20 for B = 5, the
  authors' count; each pair's weights are their own and only they get its gradient."""
  params = _shared_params(CELL_CFG)
  depth = np.asarray(params["layers"][0]["slots"]["y"]["sep5x5"][1]["depth"])
  assert depth.shape == (20, 5, 5, 1, 4) and network.num_pairs(5) == 20
  assert network.pair_offsets(5).tolist() == [0, 2, 5, 9, 14]
  assert len({depth[i].tobytes() for i in range(20)}) == 20
  rows = jnp.asarray([[0, 4, 1, 4], [0, 4, 2, 4], [3, 4, 1, 1], [0, 4, 0, 4], [1, 4, 5, 4]])
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 4))
  grads = jax.grad(lambda p: network.shared_cell(p, rows, x, x).sum())(params["layers"][0])
  g = np.abs(np.asarray(grads["slots"]["y"]["sep5x5"][1]["depth"])).sum(axis=(1, 2, 3, 4))
  # only node 4's y slot runs sep5x5, reading node 1: pair row 5 + 1 = 6
  assert g[6] > 0 and np.count_nonzero(g) == 1


TINY = network.MicroModelConfig(num_layers=1, num_nodes=2, filters=4, stem_multiplier=1,
                                drop_path_keep_prob=0.7)


def test_compiles_once_over_200_random_architectures():
  params = _shared_params(TINY)
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))

  @jax.jit
  @chex.assert_max_traces(n=1)
  def forward(p, a, x, key):
    return network.shared_apply(p, a, x, TINY, key, 0.5)

  seen = set()
  for i in range(200):
    arch = arch_lib.random_arch(jax.random.key(i), 2)
    logits, aux = forward(params, arch, x, jax.random.key(i))
    assert logits.shape == (2, 10) and aux.shape == (2, 10)
    seen.add(arch_lib.to_authors_string(jax.tree_util.tree_map(np.asarray, arch)))
  assert len(seen) > 150 and forward._cache_size() == 1


def test_drop_path_and_its_schedule_by_hand():
  x = jnp.ones((64, 2, 2, 3))
  y = np.asarray(ops.drop_path(jax.random.key(0), x, 0.75))
  per_example = y[:, 0, 0, 0]
  kept = np.isclose(per_example, 1 / 0.75)
  assert (kept | (per_example == 0)).all() and 0 < kept.sum() < 64
  assert (y == y[:, :1, :1, :1]).all()  # whole examples
  cfg = network.MicroModelConfig(num_layers=6, drop_path_keep_prob=0.6)
  # cell 0 of 8: 1 - 1/8 * 0.4 = 0.95 at the end of training, halfway there at step ratio 0.5
  assert float(network.drop_path_keep(cfg, 0, 1.0)) == pytest.approx(0.95)
  assert float(network.drop_path_keep(cfg, 0, 0.5)) == pytest.approx(0.975)
  assert float(network.drop_path_keep(cfg, 7, 1.0)) == pytest.approx(0.6)


# --- the fixed (final-training) cells against a plain NumPy reference ---------------------------

def _same_pads(size, k, stride):
  """TensorFlow's SAME: (output size, padding before); the odd pixel of padding goes after."""
  out = -(-size // stride)
  return out, max((out - 1) * stride + k - size, 0) // 2


def _np_conv(x, w, stride=1, depthwise=False):
  """Convolution by its definition (SAME padding, no bias): a sum over the kernel's offsets."""
  n, h, wd, c = x.shape
  k = w.shape[0]
  (oh, top), (ow, left) = _same_pads(h, k, stride), _same_pads(wd, k, stride)
  xp = np.zeros((n, h + k, wd + k, c))
  xp[:, top:top + h, left:left + wd] = x
  out = 0.0
  for i in range(k):
    for j in range(k):
      patch = xp[:, i:i + stride * oh:stride, j:j + stride * ow:stride]
      out = out + (patch * w[i, j, 0] if depthwise else patch @ w[i, j])
  return out


def _np_pool(x, kind, stride):
  """3 x 3 SAME pooling; the average counts only the pixels inside the image."""
  n, h, w, c = x.shape
  (oh, top), (ow, left) = _same_pads(h, 3, stride), _same_pads(w, 3, stride)
  out = np.zeros((n, oh, ow, c))
  for i in range(oh):
    for j in range(ow):
      r0, c0 = i * stride - top, j * stride - left
      win = x[:, max(r0, 0):r0 + 3, max(c0, 0):c0 + 3]
      out[:, i, j] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
  return out


def _np_bn(x, p):
  return _plain_bn(x, p["scale"], p["bias"])  # training mode: the batch's statistics


def _np_relu_conv_bn(p, x):
  return _np_bn(_np_conv(np.maximum(x, 0), p["Conv_0"]["kernel"]), p["BatchNorm_0"])


def _np_factorized_reduce(p, x):
  """The authors' factorized reduction: 1 x 1 convs on the even pixels and on the odd pixels
  (the image shifted by one), concatenated, batch-normalised."""
  a = x[:, ::2, ::2] @ p["Conv_0"]["kernel"][0, 0]
  b = x[:, 1::2, 1::2] @ p["Conv_1"]["kernel"][0, 0]
  return _np_bn(np.concatenate([a, b], axis=-1), p["BatchNorm_0"])


def _np_sep_stack(p, x, k, stride):
  for i in range(2):
    x = _np_conv(np.maximum(x, 0), p[f"Conv_{2 * i}"]["kernel"], stride if i == 0 else 1, True)
    x = _np_bn(x @ p[f"Conv_{2 * i + 1}"]["kernel"][0, 0], p[f"BatchNorm_{i}"])
  return x


def reference_fixed_cell(p, rows, reduction, c, pp, prev):
  """The authors' `_fixed_layer` written out: calibrate the two inputs to c channels (a
  factorized reduction of relu(pp) when pp is larger), the layer's base 1 x 1 conv on prev, each
  node the sum of its two chosen operations (stride 2 on the inputs of a reduction cell, where the
  identity becomes a factorized reduction), then the loose ends concatenated, reduced if larger."""
  if pp.shape[1] != prev.shape[1]:
    pp = _np_factorized_reduce(p["calibrate_x"], np.maximum(pp, 0))
  elif pp.shape[-1] != c:
    pp = _np_relu_conv_bn(p["calibrate_x"], pp)
  if prev.shape[-1] != c:
    prev = _np_relu_conv_bn(p["calibrate_y"], prev)
  nodes = [pp, _np_relu_conv_bn(p["base"], prev)]
  for b, row in enumerate(rows):
    total = 0.0
    for slot in range(2):
      inp, op = row[2 * slot], arch_lib.OPS[row[2 * slot + 1]]
      stride = 2 if reduction and inp < 2 else 1
      name = f"node{b + 2}_{'xy'[slot]}"
      if op.startswith("sep"):
        h = _np_sep_stack(p[name], nodes[inp], int(op[3]), stride)
      elif op.endswith("pool3x3"):
        h = _np_pool(nodes[inp], op[:3], stride)
      else:
        h = _np_factorized_reduce(p[name], nodes[inp]) if stride == 2 else nodes[inp]
      total = total + h
    nodes.append(total)
  used = {r[0] for r in rows} | {r[2] for r in rows}
  outs = [nodes[j] if nodes[j].shape[1] == nodes[-1].shape[1]
          else _np_factorized_reduce(p[f"combine_reduce{j}"], nodes[j])
          for j in range(len(nodes)) if j not in used]
  return np.concatenate(outs, axis=-1)


def _random_bn_affine(params, key):
  """Batch norm's scale and bias set away from 1 and 0, so that the reference must use them."""
  leaves, tree = jax.tree_util.tree_flatten_with_path(params)
  keys = jax.random.split(key, len(leaves))
  return jax.tree_util.tree_unflatten(tree, [
      np.asarray(v) + (np.asarray(jax.random.normal(k, v.shape)) * 0.5
                       if path[-1].key in ("scale", "bias") else 0.0)
      for (path, v), k in zip(leaves, keys)])


@pytest.mark.parametrize("cells, reduction, pp_shape, prev_shape", [
    # the authors' reduction cell: both inputs calibrated from 6 channels, stride 2 on them
    (AUTHORS.split()[20:], True, (3, 8, 8, 6), (3, 8, 8, 6)),
    # a reduction cell that leaves input 1 loose (reduced for the output) and takes the
    # identity of input 0 at stride 2 (a factorized reduction), every op at stride 2 once
    ("0 4 0 0 0 1 0 2 2 3 0 4 3 0 4 1 0 3 5 2".split(), True, (3, 8, 8, 4), (3, 8, 8, 6)),
    # the authors' normal cell after a reduction: pp at twice prev's size, reduced to calibrate
    (AUTHORS.split()[:20], False, (3, 8, 8, 4), (3, 4, 4, 8)),
])
def test_fixed_cell_equals_a_plain_reference(cells, reduction, pp_shape, prev_shape):
  rows = tuple(tuple(int(v) for v in cells[i:i + 4]) for i in range(0, 20, 4))
  cell = network.FixedCell(rows, 8, reduction, drop_path=False)
  k0, k1 = jax.random.split(jax.random.key(3))
  pp, prev = jax.random.normal(k0, pp_shape), jax.random.normal(k1, prev_shape)
  with jax.default_matmul_precision("highest"):
    variables = cell.init({"params": jax.random.key(0)}, pp, prev, True, 1.0)
    params = _random_bn_affine(variables["params"], jax.random.key(9))
    got, _ = cell.apply({**variables, "params": params}, pp, prev, True, 1.0,
                        mutable=["batch_stats"])
  want = reference_fixed_cell(jax.tree_util.tree_map(np.float64, params), rows, reduction, 8,
                              np.asarray(pp, np.float64), np.asarray(prev, np.float64))
  loose = int(arch_lib.loose_ends(np.asarray(rows)).sum())
  side = prev_shape[1] // 2 if reduction else prev_shape[1]
  assert got.shape == want.shape == (3, side, side, 8 * loose)
  np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-4)


def test_paper_size_network_from_the_authors_cells_has_the_authors_code_parameter_count():
  cfg = network.MicroModelConfig(num_layers=15, filters=36, keep_prob=0.8,
                                 drop_path_keep_prob=0.6)
  net = network.fixed_network(arch_lib.from_authors_string(AUTHORS), cfg, 10)
  shapes = jax.eval_shape(lambda: net.init(
      {"params": jax.random.key(0), "dropout": jax.random.key(1)}, jnp.zeros((2, 32, 32, 3)),
      train=True))["params"]
  total = sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(shapes))
  aux = sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(shapes["aux_head"]))
  # The authors' code builds these cells with 3,894,372 parameters and 4,389,220 with the
  # auxiliary head (tests/authors_counts.py, transcribed from micro_child.py); so do we, part by
  # part. The paper says 4.6M; its code does not build that for these cells.
  code = authors_counts.micro([int(v) for v in AUTHORS.split()], 15, 36)
  assert total - aux == sum(code.values()) - code["aux head"] == 3_894_372
  assert aux == code["aux head"] and total == sum(code.values()) == 4_389_220
  assert len([k for k in shapes if k.startswith("cell")]) == 17


def test_slot_weights_are_the_per_stack_draws_drawn_three_calls_a_layer():
  """The grouped initialiser (`_slot_params`) gives, to the bit, what one `he_init` per stack
  with nested key splits gives (slot, op, stack, depthwise/pointwise, pair; the code before the
  grouping, written out here), and draws a layer's 16 stacks' weights in 3 normal draws, which
  is what cut the paper-size initialiser's compile (11 s -> 4 s on a CPU): 16 normal draws in the
per-stack code."""
  n, c = network.num_pairs(3), 6
  key = jax.random.key(7)

  def per_stack(k, size):
    out = []
    for key_s in jax.random.split(k, 2):
      k_d, k_p = jax.random.split(key_s)
      out.append({"depth": jax.vmap(lambda kk: ops.he_init(kk, (size, size, 1, c)))(
                      jax.random.split(k_d, n)),
                  "point": jax.vmap(lambda kk: ops.he_init(kk, (1, 1, c, c)))(
                      jax.random.split(k_p, n)),
                  "bn": {"scale": jnp.ones((n, c)), "bias": jnp.zeros((n, c))}})
    return out

  def reference(k):
    out = {}
    for slot, k_s in zip(("x", "y"), jax.random.split(k, 2)):
      k3, k5 = jax.random.split(k_s)
      out[slot] = {"sep3x3": per_stack(k3, 3), "sep5x5": per_stack(k5, 5)}
    return out

  expected = jax.jit(reference)(key)  # both compiled: eager rounding differs by an ulp
  got = jax.jit(lambda k: network._slot_params(k, n, c))(key)
  chex.assert_trees_all_equal(got, expected)
  assert jaxpr_counts.named_calls(lambda k: network._slot_params(k, n, c), key) == 3
  assert jaxpr_counts.named_calls(reference, key) == 16
