"""The macro search space: formats, decisions, one compilation, real operation selection."""
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
from enas_jax.spaces.macro import arch as arch_lib
from enas_jax.spaces.macro import network
from tests import authors_counts, jaxpr_counts

CFG = network.MacroModelConfig(num_layers=6, filters=4)


@functools.cache
def _shared_params() -> dict:
  """`init_shared(key 0, CFG, 3 channels, 10 classes)`, made once for the module and compiled
  (`ops.initialize.initialize`), not op by op."""
  return initialize(lambda k: network.init_shared(k, CFG, 3, 10), jax.random.key(0))


def test_authors_string_round_trip_and_layout():
  # layer 0: sep3x3; layer 1: max-pool, bit 0 on (adds the stem); layer 2: conv5x5, bits (0, 1)
  # = (0, 1) (adds layer 0): the sources of the authors' code, stem first
  arch = arch_lib.from_authors_string("1  5 1  2 0 1")
  assert arch.op_L.tolist() == [1, 5, 2]
  assert arch.skip_LxL.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]
  assert arch_lib.to_authors_string(arch) == "1 5 1 2 0 1"
  assert [arch_lib.OPS[i] for i in arch.op_L] == ["sep3x3", "maxpool3x3", "conv5x5"]
  assert [layer["adds"] for layer in arch_lib.to_json(arch)["layers"]] == [[], ["stem"], [0]]
  assert arch_lib.from_json(arch_lib.to_json(arch)).skip_LxL.tolist() == arch.skip_LxL.tolist()
  with pytest.raises(UserError, match="layer 2 adds 1; it can add \"stem\" or the layers 0..0"):
    arch_lib.from_json({"space": "macro", "layers": [{"op": "conv3x3"}, {"op": "conv3x3"},
                                                     {"op": "conv3x3", "adds": [1]}]})
  for adds in (1, 1.5, "stem"):  # a number was a TypeError traceback; a string, its letters
    with pytest.raises(UserError) as err:
      arch_lib.from_json({"space": "macro", "layers": [{"op": "conv3x3", "adds": adds}]})
    assert str(err.value) == (f"In the architecture JSON, layer 0's `adds` must be a list (of "
                              f"\"stem\" and layer numbers); got {adds!r}.")
  with pytest.raises(UserError, match="lists `skips` by layer number"):  # the old format
    arch_lib.from_json({"space": "macro", "layers": [{"op": "conv3x3", "skips": []}]})
  d = arch_lib.decisions(3)
  assert [(x.kind, x.node, x.target) for x in d] == [
      ("op", 0, -1), ("op", 1, -1), ("skip", 1, 0), ("op", 2, -1), ("skip", 2, 0),
      ("skip", 2, 1)]
  values = jnp.asarray(arch_lib.to_decisions(arch))
  traced = jax.jit(arch_lib.from_decisions)(values)
  np.testing.assert_array_equal(traced.skip_LxL, arch.skip_LxL)


@pytest.mark.parametrize("text, message", [
    ("1 5 1 2 0", "5 integers"),
    ("1 6 1", "operation id 6"),
    ("1 5 2", "not 0/1 bits"),
    ("1 five 1", "integers"),
    ("1 5 1_0", "integers"),  # Python's int() reads "1_0" as 10
    ("1 5 99999999999999999999", "holds 99999999999999999999, not an operation id"),  # NumPy's
])                                                                  # OverflowError, a traceback
def test_bad_authors_strings_are_named(text, message):
  with pytest.raises(UserError, match=message):
    arch_lib.from_authors_string(text)


def test_wrong_layer_count_names_the_field():
  with pytest.raises(UserError, match="model.num_layers"):
    arch_lib.from_authors_string("1 5 1", num_layers=12)


def _images(b=4, size=8):
  return jax.random.normal(jax.random.key(1), (b, size, size, 3))


def test_each_operation_index_selects_its_own_computation():
  """The authors' macro code returned max-pool from every branch; here index i must be op i."""
  params = _shared_params()
  x_BxHxWxC = jax.random.normal(jax.random.key(2), (4, 8, 8, CFG.filters))
  layer = params["layers"][2]

  @jax.jit
  def selected(op):
    return jax.lax.switch(op, [lambda x, f=f, p=layer[name]: f(p, x)
                               for f, name in zip(network.BRANCHES, arch_lib.OPS)], x_BxHxWxC)

  # plain references, one per operation
  def inp(p):
    return jax.nn.relu(ops.batch_norm(p["inp"]["bn"], ops.conv2d(x_BxHxWxC, p["inp"]["w"])))

  def conv(p):
    y = inp(p)
    return jax.nn.relu(ops.batch_norm(p["conv"]["bn"], ops.conv2d(y, p["conv"]["w"])))

  def sep(p):
    y = inp(p)
    y = ops.conv2d(y, p["sep"]["depth"], groups=y.shape[-1])
    return jax.nn.relu(ops.batch_norm(p["sep"]["bn"], ops.conv2d(y, p["sep"]["point"])))

  refs = [conv(layer["conv3x3"]), sep(layer["sep3x3"]), conv(layer["conv5x5"]),
          sep(layer["sep5x5"]), ops.avg_pool3(inp(layer["avgpool3x3"])),
          ops.max_pool3(inp(layer["maxpool3x3"]))]
  outs = [np.asarray(selected(jnp.int32(i))) for i in range(arch_lib.NUM_OPS)]
  for i, (out, ref) in enumerate(zip(outs, refs)):
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5, err_msg=arch_lib.OPS[i])
  for i in range(len(outs)):
    for j in range(i):
      assert np.abs(outs[i] - outs[j]).max() > 1e-2, (arch_lib.OPS[i], arch_lib.OPS[j])


def test_pools_by_hand():
  x = jnp.arange(16.0).reshape(1, 4, 4, 1)
  avg = ops.avg_pool3(x)[0, :, :, 0]
  assert float(avg[0, 0]) == pytest.approx((0 + 1 + 4 + 5) / 4)  # padding not counted
  assert float(avg[1, 1]) == pytest.approx(sum([0, 1, 2, 4, 5, 6, 8, 9, 10]) / 9)
  assert float(ops.max_pool3(x)[0, 0, 0, 0]) == 5.0
  red = {"w1": jnp.ones((1, 1, 1, 1)), "w2": 2 * jnp.ones((1, 1, 1, 1)),
         "bn": {"scale": jnp.ones((2,)), "bias": jnp.zeros((2,))}}
  # before batch norm: path 1 reads pixels (0,0),(0,2),(2,0),(2,2); path 2 (1,1),(1,3),(3,1),(3,3)
  y = ops.factorized_reduce(red, x)
  p1 = np.array([[0, 2], [8, 10]], np.float32)
  p2 = 2 * np.array([[5, 7], [13, 15]], np.float32)
  np.testing.assert_allclose(y[0, :, :, 0], (p1 - p1.mean()) / np.sqrt(p1.var() + 1e-5),
                             rtol=1e-4)
  np.testing.assert_allclose(y[0, :, :, 1], (p2 - p2.mean()) / np.sqrt(p2.var() + 1e-5),
                             rtol=1e-4)


def _reference_forward(params, arch, x):
  """The macro network written plainly for one concrete architecture (no lax.switch)."""
  op = np.asarray(arch.op_L)
  skip = np.asarray(arch.skip_LxL)
  x = ops.conv_bn(params["stem"], x)
  outs = [x]  # the authors' prev_layers: the stem, then every layer
  for k in range(len(op)):
    out = network.BRANCHES[int(op[k])](params["layers"][k][arch_lib.OPS[int(op[k])]], x)
    if k:  # bit j: prev_layers[j], the stem (j = 0) or layer j - 1
      out = out + sum((outs[j] for j in range(k) if skip[k, j]), jnp.zeros_like(out))
      out = ops.batch_norm(params["layers"][k]["skip_bn"], out)
    outs.append(out)
    x = out
    if k in network.reduction_layers(len(op)):
      outs = [ops.factorized_reduce(params["reduce"][f"after{k:02d}"][f"from{j:02d}"], o)
              for j, o in enumerate(outs)]
      x = outs[-1]
  return jnp.mean(x, axis=(1, 2)) @ params["head"]["w"] + params["head"]["b"]


def test_shared_network_matches_a_plain_reference_for_fixed_architectures():
  params = _shared_params()
  apply = jax.jit(lambda p, a, x: network.shared_apply(p, a, x, CFG))
  x = _images()
  for seed in range(3):
    arch = jax.tree_util.tree_map(np.asarray, arch_lib.random_arch(jax.random.key(seed), 6))
    np.testing.assert_allclose(apply(params, arch, x), _reference_forward(params, arch, x),
                               rtol=2e-4, atol=2e-4)


def test_one_compilation_for_200_architectures():
  params = _shared_params()
  x = _images(b=2)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def forward(p, a, x):
    return network.shared_apply(p, a, x, CFG)

  outputs = set()
  for i in range(200):
    logits = forward(params, arch_lib.random_arch(jax.random.key(i), 6), x)
    outputs.add(round(float(logits[0, 0]), 5))
  assert len(outputs) > 150  # different architectures really compute different things


def test_controller_skip_bits_by_hand():
  decisions = arch_lib.decisions(4)
  cfg = ctl.ControllerConfig(kind="random", skip_target=0.4)
  c = ctl.Controller(decisions, cfg)
  params = ctl.init_controller(c, jax.random.key(0))
  sample = ctl.sample(c, params, jax.random.key(1))
  bits = 6  # 0 + 1 + 2 + 3
  assert float(sample.entropy) == pytest.approx(4 * math.log(6) + bits * math.log(2), rel=1e-5)
  kl_bit = 0.5 * math.log(0.5 / 0.4) + 0.5 * math.log(0.5 / 0.6)
  assert float(sample.skip_kl) == pytest.approx(bits * kl_bit, rel=1e-5)
  arch_lib.validate(arch_lib.from_decisions(np.asarray(sample.values)))


def test_controller_skip_sampling_agrees_with_scoring_and_learns_the_target_rate():
  decisions = arch_lib.decisions(5)
  c = ctl.Controller(decisions, ctl.ControllerConfig(hidden_dim=16, tanh_c=1.5))
  params = ctl.init_controller(c, jax.random.key(0))
  sample = jax.jit(lambda k: ctl.sample(c, params, k))(jax.random.key(3))
  lp, ent = ctl.log_prob(c, params, sample.values)
  assert float(lp) == pytest.approx(float(sample.log_prob), rel=1e-6)
  assert float(ent) == pytest.approx(float(sample.entropy), rel=1e-6)

  # The KL penalty alone pulls the skip rate toward the target (0.1 here).
  import optax
  cfg = ctl.ControllerConfig(hidden_dim=16, tanh_c=1.5, skip_target=0.1)
  c = ctl.Controller(decisions, cfg)
  opt = optax.adam(0.05)
  state = opt.init(params)

  @jax.jit
  def update(params, state, key):
    grads = jax.grad(lambda p: jnp.mean(ctl.sample_many(c, p, key, 4).skip_kl))(params)
    updates, state = opt.update(grads, state)
    return optax.apply_updates(params, updates), state

  for i in range(100):
    params, state = update(params, state, jax.random.key(i))
  values = ctl.sample_many(c, params, jax.random.key(999), 200).values
  rate = np.mean([arch_lib.from_decisions(np.asarray(v)).skip_LxL.sum() / 10 for v in values])
  assert rate < 0.2, rate


def test_fixed_network_parameter_count_by_hand():
  # 2 layers of 4 filters, no reductions (L/3 = 0): stem 3x3x3x4 + BN; layer 0 conv3x3 branch:
  # 1x1 4x4 + BN, 3x3 4x4 + BN; layer 1 max-pool branch: 1x1 4x4 + BN, skip BN; head 4x10 (no
  # bias, as the authors' fc).
  cfg = network.MacroModelConfig(num_layers=2, filters=4)
  arch = arch_lib.from_authors_string("0 5 1")
  net = network.fixed_network(arch, cfg, 10)
  variables = net.init({"params": jax.random.key(0)}, _images(), train=False)
  count = sum(x.size for x in jax.tree_util.tree_leaves(variables["params"]))
  bn = 8
  expected = (27 * 4 + bn) + (16 + bn + 144 + bn) + (16 + bn + bn) + 40
  assert count == expected


# scripts/cifar10_macro_final.sh of the authors' code: the published 24-layer network.
AUTHORS_24 = ("0 3 0 0 1 0 2 0 0 1 2 0 0 0 0 3 1 1 0 1 0 2 0 0 0 0 0 1 2 0 1 1 0 1 1 1 1 0 1 1 1 0 "
              "1 0 1 0 0 0 0 0 0 0 0 0 0 2 0 0 0 0 0 1 0 0 0 0 0 1 0 0 1 1 0 0 0 0 1 1 2 0 1 0 0 0 "
              "0 0 1 0 1 1 0 1 0 0 1 0 0 0 1 1 1 0 1 0 1 0 1 1 0 1 0 1 0 0 0 0 0 1 0 0 2 0 0 1 0 0 "
              "0 0 0 0 0 1 0 1 0 1 2 0 1 0 0 0 1 0 0 1 1 1 1 0 0 1 0 2 0 0 0 0 1 0 1 0 1 0 0 1 0 1 "
              "0 0 1 3 0 1 1 0 1 0 0 0 0 0 1 0 1 0 1 0 0 0 3 0 1 1 0 0 0 0 0 0 0 0 0 1 1 0 0 0 0 1 "
              "0 1 0 0 1 0 1 1 0 0 0 1 0 0 0 0 0 1 1 0 0 3 0 1 0 1 1 0 0 1 0 1 1 0 1 1 0 1 0 0 1 0 "
              "0 0 1 0 1 0 1 0 0 0 0 0 0 0 0 1 0 1 0 0 1 0 0 0 0 1 1 0 0 0 1 1 1 0 1 0 0 0 1 0 1 0 "
              "0 1 1 0 0 0")


def test_the_published_network_against_the_authors_code_part_by_part():
  """The authors' 24-layer, 96-filter network: their code (tests/authors_counts.py, transcribed
  from general_child.py) builds 42,559,392 parameters; the paper says 21.3M; ours, following the
  paper's description, 19,796,064. Part by part: stem, reductions (every source, the stem's
  included, is read later in this network) and classifier equal the code's; the operations
  (1x1 conv, then a k x k conv or a depthwise-separable one) equal the code's with separable ops
  separable: the code builds them as full convs (+11,611,968); it joins skips by concatenation
  and a 1 x 1 conv instead of a sum (+11,151,360). See experiments/results/authors_networks.md."""
  values = [int(v) for v in AUTHORS_24.split()]
  code = authors_counts.macro(values, 24, 96)
  paper = authors_counts.macro(values, 24, 96, separable_as_conv=False, skips_by_concat=False)
  assert sum(code.values()) == 42_559_392 and sum(paper.values()) == 19_796_064
  cfg = network.MacroModelConfig(num_layers=24, filters=96, double_filters_at_reduction=True)
  net = network.fixed_network(arch_lib.from_authors_string(AUTHORS_24), cfg, 10)
  shapes = jax.eval_shape(lambda: net.init({"params": jax.random.key(0)}, jnp.zeros((2, 32, 32, 3)),
                                           train=False))["params"]

  def count(prefix, contains=""):
    return sum(math.prod(x.shape) for name, tree in shapes.items()
               if name.startswith(prefix) and contains in name
               for x in jax.tree_util.tree_leaves(tree))

  assert count("stem") == code["stem"] and count("head") == code["fc"]
  assert count("reduce") == code["reductions"]
  assert count("layer") - count("layer", "skip_bn") == code["op 1x1"] + paper["op kxk"]
  assert code["op kxk"] - paper["op kxk"] == 11_611_968  # separable built as full convs
  assert count("layer", "skip_bn") == paper["skip"] == code["skip"] - 11_151_360
  assert count("") == sum(paper.values()) == 19_796_064


@pytest.mark.parametrize("double", [False, True])
def test_shared_weights_are_one_draw_per_branch_drawn_once_per_shape(double):
  """`init_shared` draws the weights of one shape in one vmapped call; the numbers are, to the
  bit, those of one call per branch and per reduction source with the keys taken in order
  (written out here as the code before the grouping). With the width doubled at reductions the
  layers fall into three widths, so three groups per operation."""
  cfg = network.MacroModelConfig(num_layers=6, filters=4, double_filters_at_reduction=double)

  def reference(key):
    chans = network.layer_channels(cfg)
    keys = iter(jax.random.split(key, 4 + cfg.num_layers * (arch_lib.NUM_OPS + 1)
                                 + cfg.num_layers * 2))
    layers = []
    for c in chans:
      layer = {op: network._branch_params(next(keys), op, c) for op in arch_lib.OPS}
      layer["skip_bn"] = ops.bn_params(c)
      layers.append(layer)
    reduce = {}
    for r in network.reduction_layers(cfg.num_layers):
      c_out = chans[r] * (2 if double else 1)
      reduce[f"after{r:02d}"] = {f"from{j:02d}": ops.factorized_reduce_params(
          next(keys), chans[r], c_out) for j in range(r + 2)}
    return {"stem": ops.conv_bn_params(next(keys), 3, 3, cfg.filters), "layers": layers,
            "reduce": reduce, "head": {"w": ops.he_init(next(keys), (chans[-1], 10)) * 0.5,
                                       "b": jnp.zeros((10,))}}

  key = jax.random.key(5)
  # both compiled as the product compiles its initialisers (`ops/initialize.py`: XLA's lowest
  # level, seconds to compile where the default level took most of a minute here)
  got = initialize(lambda k: network.init_shared(k, cfg, 3, 10), key)
  chex.assert_trees_all_equal(got, initialize(reference, key))
  # normal draws: a branch group 12 (6 input convs, 2 convs, 2 x 2 separable), a reduction
  # group 2, the stem and the head 1 each; one call per branch: 6 layers x 12 + 8 sources x 2
  assert network.layer_channels(cfg) == ([4, 4, 8, 8, 16, 16] if double else [4] * 6)
  grouped = jaxpr_counts.named_calls(lambda k: network.init_shared(k, cfg, 3, 10), key)
  assert grouped == (3 * 12 + 2 * 2 + 2 if double else 12 + 2 + 2)
  assert jaxpr_counts.named_calls(reference, key) == 6 * 12 + 8 * 2 + 2
