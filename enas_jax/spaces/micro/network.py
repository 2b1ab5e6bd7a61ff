"""The micro-space CNN: the shared-weights network (any pair of cells, traced) and the fixed one.

Layout (the paper's Figure 8, the authors' `micro_child.py`): a 3 x 3 conv stem with
`stem_multiplier * filters` channels, then `num_layers + 2` cells, each reading the outputs of
the two cells before it (the stem twice at the start). Cells at `reduction_layers` (L/3 and
2L/3 + 1 of the L + 2) are reduction cells and double the channels; the rest are normal cells.
Then ReLU, global average pooling, dropout and the classifier; an auxiliary classifier reads the
cell after the last reduction.

Inside a cell (both networks): the two inputs are "calibrated" to the cell's shape (ReLU +
factorized reduction when the earlier input is twice the size, ReLU + 1 x 1 conv + batch norm
when the channels differ); node 2 + b adds op1(input 1) and op2(input 2), where a separable op is
(ReLU, depthwise k x k, pointwise 1 x 1, batch norm) twice and the pools have no parameters.

Shared network (search, `shared_apply`): the weights of an input slot (x or y) of a cell are one
table per op with a row for every (node, prev) pair, row `pair_offsets(B)[b] + prev` for node
2 + b reading node `prev` (sum of (b + 2) rows: exactly the authors' per-(node, prev) weights).
A `lax.scan` runs the nodes: each step reads its two inputs by a dynamic index into a fixed
`[B + 2, N, H, W, C]` node buffer, picks each op by `lax.switch` and gathers its weights' row, so
XLA compiles one node per cell instead of B, and one compilation serves every pair of cells. The
loose ends are combined by a masked 1 x 1 convolution over all B + 2 nodes (mask 0 for the nodes
that are read). As in the authors' search, a reduction cell first halves
the previous output with a factorized reduction and then runs its ops at stride 1.

Fixed network (final training, `FixedMicroNetwork`, Flax with moving-average batch norm): the
authors' fixed layer: a ReLU + 1 x 1 conv + batch norm on the second input, ops reading a
reduction cell's inputs at stride 2 (identity becomes a factorized reduction), drop-path on every
non-identity op, and the loose ends concatenated (so a cell's width depends on its loose ends).

Drop-path keeps a path with probability `1 - (l + 1) / (L + 2) * (1 - drop_path_keep_prob)` at
cell l, moved linearly from 1 to that value over the run (the authors' schedule).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.io.configuration import require
from enas_jax.io.errors import UserError
from enas_jax.ops import conv as ops
from enas_jax.ops.fixed_blocks import AuxHead, ConvBN, FactorizedReduce, ReluConvBN, SepStack
from enas_jax.ops.initialize import by_shape
from enas_jax.spaces.micro.arch import OPS, MicroArch, loose_ends, loose_ends_traced

SEP_KERNELS = {"sep3x3": 3, "sep5x5": 5}


MAX_LAYERS, MAX_NODES = 60, 20  # 4x the paper's final 15 and 5; 2**31 - 1 hung making weights
SIZE_BOUNDS = ("The upper bounds are four times the paper's final network; compiling grows with "
               "them (the tiny search on 2 CPU cores: 38 s at 1 layer, 127 s at 16).")


@dataclasses.dataclass(frozen=True)
class MicroModelConfig:
  """The `model` section of a micro config (see configs/cifar10_micro.py for comments)."""

  num_layers: int = 6
  num_nodes: int = 5
  filters: int = 20
  stem_multiplier: int = 3
  keep_prob: float = 0.9
  drop_path_keep_prob: float = 1.0
  aux_head: bool = True
  aux_weight: float = 0.4

  def validate(self, section: str = "model") -> None:
    require(self, section, ">= 0", "aux_weight")
    if not (0 <= self.num_layers <= MAX_LAYERS and 1 <= self.num_nodes <= MAX_NODES) or \
        self.filters < 2 or self.filters % 2:
      raise UserError(f"Config fields `{section}.num_layers` (0 to {MAX_LAYERS}), `{section}."
                      f"num_nodes` (1 to {MAX_NODES}) and `{section}.filters` (even, >= 2) got "
                      f"{self.num_layers}, {self.num_nodes} and {self.filters}. {SIZE_BOUNDS}")
    require(self, section, ">= 1", "stem_multiplier")
    for name in ("keep_prob", "drop_path_keep_prob"):
      if not 0 < getattr(self, name) <= 1:
        raise UserError(f"Config field `{section}.{name}` must be in (0, 1], got "
                        f"{getattr(self, name)}.")


def reduction_layers(num_layers: int) -> tuple[int, int]:
  """The reduction cells' positions among the L + 2 cells: L/3 and 2L/3 + 1 (the authors')."""
  d = num_layers // 3
  return (d, 2 * d + 1)


def aux_layer(num_layers: int) -> int:
  """The cell whose output the auxiliary head reads (the one after the last reduction)."""
  return min(reduction_layers(num_layers)[1] + 1, num_layers + 1)


def drop_path_keep(cfg: MicroModelConfig, layer: int, step_ratio: Any) -> Any:
  """The authors' schedule: deeper cells drop more, ramping up linearly over the run."""
  final = 1.0 - (layer + 1) / (cfg.num_layers + 2) * (1.0 - cfg.drop_path_keep_prob)
  ratio = jnp.minimum(1.0, step_ratio)
  return 1.0 - ratio * (1.0 - final)


@dataclasses.dataclass(frozen=True)
class _Shape:
  scale: int  # spatial size divisor relative to the stem
  channels: int


@dataclasses.dataclass(frozen=True)
class _LayerPlan:
  reduction: bool
  channels: int
  prev_prev: _Shape  # the cell's first input as it arrives (before calibration)
  prev: _Shape
  reduce_first: _Shape | None  # search only: the shape reduced before a reduction cell


def layer_plan(cfg: MicroModelConfig) -> list[_LayerPlan]:
  """Static shapes of the shared network's cells (inputs before calibration)."""
  stem = _Shape(1, cfg.filters * cfg.stem_multiplier)
  pp, p, c = stem, stem, cfg.filters
  plan = []
  for layer in range(cfg.num_layers + 2):
    reduction = layer in reduction_layers(cfg.num_layers)
    first = None
    if reduction:
      c *= 2
      first = p
      pp, p = p, _Shape(p.scale * 2, c)
    plan.append(_LayerPlan(reduction, c, pp, p, first))
    pp, p = p, _Shape(p.scale, c)
  return plan


# --- the shared-weights network ------------------------------------------------------------------

def pair_offsets(num_nodes: int) -> np.ndarray:
  """Row of (node 2 + b, prev 0) in a slot's weight tables: sum of (i + 2) for i < b."""
  return np.asarray([b * (b + 3) // 2 for b in range(num_nodes)], np.int32)


def num_pairs(num_nodes: int) -> int:
  """(node, prev) pairs of a cell: sum of (b + 2) for b < B."""
  return num_nodes * (num_nodes + 3) // 2


def _slot_params(key: jax.Array, num_inputs: int, c: int) -> dict[str, Any]:
  """Both slots' (x, y) separable convolutions (sep3x3, sep5x5), each two (depthwise, pointwise,
  batch norm) stacks with one row per (node, prev) pair.

  Keys: `key` split in two per slot, op, stack and depthwise/pointwise, then one per pair; the
  weights of one shape drawn in one call (`by_shape`: a layer's 16 draws become 3; the paper-size
  initialiser compiled in 11 s on a CPU with a call per stack, 4 s like this; the same numbers)."""
  keys_SxOxTxWxP = _split_tree(key, (2, 2, 2, 2, num_inputs))
  shapes = lambda k: ((k, k, 1, c), (1, 1, c, c))  # depthwise, pointwise
  drawn = by_shape({(s, o, t, w): (keys_SxOxTxWxP[s, o, t, w], shapes(k)[w])
                    for s in range(2) for o, k in enumerate((3, 5)) for t in range(2)
                    for w in range(2)},
                   lambda keys_P, *shape: jax.vmap(lambda kk: ops.he_init(kk, shape))(keys_P))
  stack = lambda s, o, t: {"depth": drawn[(s, o, t, 0)], "point": drawn[(s, o, t, 1)],
                           "bn": {"scale": jnp.ones((num_inputs, c)),
                                  "bias": jnp.zeros((num_inputs, c))}}
  return {slot: {op: [stack(s, o, t) for t in range(2)]
                 for o, op in enumerate(("sep3x3", "sep5x5"))}
          for s, slot in enumerate(("x", "y"))}


def _split_tree(key: jax.Array, counts: tuple[int, ...]) -> jax.Array:
  """Keys of shape `counts`: `key` split in counts[0], each of those in counts[1], and so on
  (the same keys as nested `jax.random.split` calls)."""
  keys = key[None]
  for n in counts:
    keys = jax.vmap(lambda k: jax.random.split(k, n))(keys.reshape(-1)).reshape(keys.shape + (n,))
  return keys[0]


def _calibrate_params(key: jax.Array, plan: _LayerPlan) -> dict[str, Any]:
  k_x, k_y = jax.random.split(key)
  p: dict[str, Any] = {}
  c = plan.channels
  if plan.prev_prev.scale != plan.prev.scale:
    p["x"] = ops.factorized_reduce_params(k_x, plan.prev_prev.channels, c)
  elif plan.prev_prev.channels != c:
    p["x"] = ops.conv_bn_params(k_x, 1, plan.prev_prev.channels, c)
  if plan.prev.channels != c:
    p["y"] = ops.conv_bn_params(k_y, 1, plan.prev.channels, c)
  return p


def init_shared(key: jax.Array, cfg: MicroModelConfig, image_shape: Sequence[int],
                num_classes: int) -> dict[str, Any]:
  """Stem, every cell's (node, slot, op, input) weights, the combine convs, heads."""
  h, w, channels = image_shape
  plan = layer_plan(cfg)
  b_nodes = cfg.num_nodes
  k_stem, k_head, k_aux, k_layers = jax.random.split(key, 4)
  layers = []
  for p_l, k_l in zip(plan, jax.random.split(k_layers, len(plan))):
    k_red, k_cal, k_comb, k_nodes = jax.random.split(k_l, 4)
    c = p_l.channels
    layer = {"calibrate": _calibrate_params(k_cal, p_l),
             "slots": _slot_params(k_nodes, num_pairs(b_nodes), c),
             "combine": ops.conv_bn_params(k_comb, 1, (b_nodes + 2) * c, c)}
    if p_l.reduce_first is not None:
      layer["reduce_first"] = ops.factorized_reduce_params(k_red, p_l.reduce_first.channels, c)
    layers.append(layer)
  last = plan[-1].channels
  params = {"stem": ops.conv_bn_params(k_stem, 3, channels, cfg.filters * cfg.stem_multiplier),
            "layers": layers,
            "head": {"w": ops.he_init(k_head, (last, num_classes)) * 0.5,
                     "b": jnp.zeros((num_classes,))}}
  if cfg.aux_head:
    a = plan[aux_layer(cfg.num_layers)]
    scale = a.prev.scale
    params["aux_head"] = ops.aux_head_params(k_aux, a.channels, (h // scale, w // scale),
                                             num_classes)
  return params


def _sep_branch(stacks: list[dict[str, Any]], pair: jax.Array):
  """The separable op of one input slot, using row `pair` (traced) of its weight tables."""

  def apply(x: jax.Array) -> jax.Array:
    for s in stacks:
      depth, point = s["depth"][pair], s["point"][pair]
      x = ops.conv2d(jax.nn.relu(x), depth, groups=x.shape[-1])
      x = ops.conv2d(x, point)
      x = ops.batch_norm({"scale": s["bn"]["scale"][pair], "bias": s["bn"]["bias"][pair]}, x)
    return x

  return apply


def slot_branches(slot_params: dict[str, Any], pair: jax.Array) -> list[Any]:
  """The five ops of one node input, in `OPS` order, as functions of the input map; the
  separable ones use row `pair` (the (node, prev) pair) of the slot's weights."""
  table = {"sep3x3": _sep_branch(slot_params["sep3x3"], pair),
           "sep5x5": _sep_branch(slot_params["sep5x5"], pair),
           "avgpool3x3": ops.avg_pool3, "maxpool3x3": ops.max_pool3, "identity": lambda x: x}
  return [table[op] for op in OPS]


def calibrate(p: dict[str, Any], pp: jax.Array, prev: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The cell's two inputs at the cell's size and width."""
  if "x" in p:
    pp = (ops.factorized_reduce(p["x"], jax.nn.relu(pp)) if "w1" in p["x"]
          else ops.relu_conv_bn(p["x"], pp))
  if "y" in p:
    prev = ops.relu_conv_bn(p["y"], prev)
  return pp, prev


def shared_cell(p: dict[str, Any], cell_Bx4: jax.Array, x0: jax.Array, x1: jax.Array,
                keep: Any = None, key: jax.Array | None = None) -> jax.Array:
  """One cell of any architecture (`cell_Bx4` traced) under the shared weights `p`.

  `key` given: drop-path with keep probability `keep` on every non-identity op.
  """
  num_nodes = cell_Bx4.shape[0]
  buf = jnp.zeros((num_nodes + 2,) + x0.shape, x0.dtype).at[0].set(x0).at[1].set(x1)
  identity = OPS.index("identity")
  offsets_B = jnp.asarray(pair_offsets(num_nodes))

  def node(buf: jax.Array, b_and_row: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
    b, row_4 = b_and_row
    total = None
    for slot, name in enumerate(("x", "y")):
      prev, op = row_4[2 * slot], row_4[2 * slot + 1]
      h = jax.lax.dynamic_index_in_dim(buf, prev, 0, keepdims=False)
      y = jax.lax.switch(op, slot_branches(p["slots"][name], offsets_B[b] + prev), h)
      if key is not None:
        dropped = ops.drop_path(jax.random.fold_in(key, 2 * b + slot), y, keep)
        y = jnp.where(op == identity, y, dropped)
      total = y if total is None else total + y
    return jax.lax.dynamic_update_index_in_dim(buf, total, b + 2, 0), None

  buf, _ = jax.lax.scan(node, buf, (jnp.arange(num_nodes), cell_Bx4))
  mask = loose_ends_traced(cell_Bx4)
  n, hh, ww, c = x0.shape
  nodes_NxHxWxJxC = jnp.moveaxis(jax.nn.relu(buf) * mask[:, None, None, None, None], 0, 3)
  combined = nodes_NxHxWxJxC.reshape((n, hh, ww, (num_nodes + 2) * c))
  return ops.batch_norm(p["combine"]["bn"], ops.conv2d(combined, p["combine"]["w"]))


def shared_apply(params: dict[str, Any], arch: MicroArch, x_BxHxWxC: jax.Array,
                 cfg: MicroModelConfig, dropout_key: jax.Array | None = None,
                 step_ratio: Any = 1.0) -> tuple[jax.Array, jax.Array | None]:
  """(logits, aux logits or None) of the network of `arch` (traced) under the shared weights.

  `dropout_key` None: no dropout or drop-path and no auxiliary head (scoring).
  """
  stem = ops.conv_bn(params["stem"], x_BxHxWxC)
  pp, prev = stem, stem
  aux = None
  for layer, (p_l, p) in enumerate(zip(layer_plan(cfg), params["layers"])):
    cell = arch.reduce_Bx4 if p_l.reduction else arch.normal_Bx4
    if p_l.reduction:
      pp, prev = prev, ops.factorized_reduce(p["reduce_first"], prev)
    x0, x1 = calibrate(p["calibrate"], pp, prev)
    key = keep = None
    if dropout_key is not None and cfg.drop_path_keep_prob < 1:
      key = jax.random.fold_in(dropout_key, layer + 1)
      keep = drop_path_keep(cfg, layer, step_ratio)
    out = shared_cell(p, cell, x0, x1, keep, key)
    pp, prev = prev, out
    if cfg.aux_head and dropout_key is not None and layer == aux_layer(cfg.num_layers):
      aux = ops.aux_head(params["aux_head"], out)
  h_BxC = ops.global_avg_pool(jax.nn.relu(prev))
  if dropout_key is not None and cfg.keep_prob < 1:
    keep_mask = jax.random.bernoulli(dropout_key, cfg.keep_prob, h_BxC.shape)
    h_BxC = jnp.where(keep_mask, h_BxC / cfg.keep_prob, 0.0)
  return h_BxC @ params["head"]["w"] + params["head"]["b"], aux


# --- the fixed network of one architecture -------------------------------------------------------

class FixedCell(nn.Module):
  """One cell of a fixed architecture (the authors' `_fixed_layer`)."""

  rows: tuple[tuple[int, int, int, int], ...]
  features: int
  reduction: bool
  drop_path: bool

  @nn.compact
  def __call__(self, pp: jax.Array, prev: jax.Array, train: bool, keep: Any) -> jax.Array:
    c = self.features
    if pp.shape[1] != prev.shape[1]:
      pp = FactorizedReduce(c, name="calibrate_x")(nn.relu(pp), train)
    elif pp.shape[-1] != c:
      pp = ReluConvBN(c, name="calibrate_x")(pp, train)
    if prev.shape[-1] != c:
      prev = ReluConvBN(c, name="calibrate_y")(prev, train)
    prev = ReluConvBN(c, name="base")(prev, train)
    nodes = [pp, prev]
    for b, row in enumerate(self.rows):
      total = None
      for slot in range(2):
        inp, op_id = row[2 * slot], row[2 * slot + 1]
        op = OPS[op_id]
        stride = 2 if self.reduction and inp in (0, 1) else 1
        x = nodes[inp]
        name = f"node{b + 2}_{'xy'[slot]}"
        if op in SEP_KERNELS:
          x = SepStack(c, SEP_KERNELS[op], stride, name=name)(x, train)
        elif op == "avgpool3x3":
          x = ops.avg_pool3(x, stride)
        elif op == "maxpool3x3":
          x = ops.max_pool3(x, stride)
        elif stride > 1:
          x = FactorizedReduce(c, name=name)(x, train)
        if op != "identity" and self.drop_path and train:
          x = ops.drop_path(self.make_rng("dropout"), x, keep)
        total = x if total is None else total + x
      nodes.append(total)
    out_hw = nodes[-1].shape[1]
    outs = []
    for j in np.nonzero(loose_ends(np.asarray(self.rows)))[0]:
      x = nodes[j]
      if x.shape[1] > out_hw:
        x = FactorizedReduce(c, name=f"combine_reduce{j}")(x, train)
      outs.append(x)
    return jnp.concatenate(outs, axis=-1)


class FixedMicroNetwork(nn.Module):
  """One architecture's network: `__call__(x, train, step_ratio) -> (logits, aux or None)`."""

  config: MicroModelConfig
  normal: tuple[tuple[int, int, int, int], ...]
  reduce: tuple[tuple[int, int, int, int], ...]
  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool, step_ratio: Any = 1.0
               ) -> tuple[jax.Array, jax.Array | None]:
    cfg = self.config
    stem = ConvBN(cfg.filters * cfg.stem_multiplier, 3, name="stem")(x, train)
    pp, prev = stem, stem
    c, aux = cfg.filters, None
    reductions = reduction_layers(cfg.num_layers)
    for layer in range(cfg.num_layers + 2):
      reduction = layer in reductions
      c = c * 2 if reduction else c
      out = FixedCell(self.reduce if reduction else self.normal, c, reduction,
                      cfg.drop_path_keep_prob < 1, name=f"cell{layer:02d}")(
                          pp, prev, train, drop_path_keep(cfg, layer, step_ratio))
      pp, prev = prev, out
      if cfg.aux_head and train and layer == aux_layer(cfg.num_layers):
        aux = AuxHead(self.num_classes, name="aux_head")(out, train)
    h_BxC = jnp.mean(nn.relu(prev), axis=(1, 2))
    h_BxC = nn.Dropout(1 - cfg.keep_prob, deterministic=not train)(h_BxC)
    return nn.Dense(self.num_classes, use_bias=False, name="head")(h_BxC), aux


def fixed_network(arch: MicroArch, cfg: MicroModelConfig, num_classes: int) -> FixedMicroNetwork:
  def rows(cell):
    return tuple(tuple(int(v) for v in r) for r in np.asarray(cell))
  return FixedMicroNetwork(cfg, rows(arch.normal_Bx4), rows(arch.reduce_Bx4), num_classes)

