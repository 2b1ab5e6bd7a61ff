"""The macro-space CNN: the shared-weights network (any architecture, traced) and the fixed one.

Layout (the paper's Figure 6, the authors' `general_child.py`): a 3 x 3 conv stem, then L layers;
layer k reads layer k-1, applies its operation, adds the outputs its skip bits select and
batch-normalises the sum (layers after the first). The outputs a layer can add are the
"sources" of the authors' code (`prev_layers`): source 0 is the stem's output, source j >= 1
layer j-1's; layer k's k skip bits select among sources 0..k-1, that is the stem and layers
0..k-2 (its input, layer k-1, is never added twice). After layers L/3 - 1 and 2L/3 - 1 every
source is halved in size by a factorized reduction (its own weights per (reduction, source)
pair); then global average pooling, dropout and the classifier.

Each operation branch, as in the paper: a 1 x 1 conv with batch norm and ReLU, then
- conv k x k, batch norm, ReLU (conv3x3, conv5x5);
- depthwise-separable k x k, batch norm, ReLU (sep3x3, sep5x5);
- 3 x 3 average or max pooling (avgpool3x3, maxpool3x3).

`shared_apply` takes the architecture as traced int32 arrays and selects each layer's branch with
`lax.switch`, so one compilation serves every architecture, and every branch's weights live in one
pytree under `layers[k][op name]`. `FixedMacroNetwork` is the network of one architecture (only
its branches, Flax BatchNorm with moving averages) for final training.
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
from enas_jax.ops.fixed_blocks import AuxHead, ConvBN, FactorizedReduce, SepConvBN
from enas_jax.ops.initialize import by_shape
from enas_jax.spaces.macro.arch import NUM_OPS, OPS, MacroArch


# Four times the paper's final network (24 layers): layer k's skip choice reads every earlier
# layer, all unrolled; the tiny search at 24 layers was still compiling after 400 s on 2 CPU
# cores (3 layers: 25 s); 2**31 - 1 hung making the weights.
MAX_LAYERS = 96


@dataclasses.dataclass(frozen=True)
class MacroModelConfig:
  """The `model` section of a macro config (see configs/cifar10_macro.py for comments)."""

  num_layers: int = 12
  filters: int = 36
  keep_prob: float = 0.9
  double_filters_at_reduction: bool = False
  aux_head: bool = False
  aux_weight: float = 0.4

  def validate(self, section: str = "model") -> None:
    require(self, section, ">= 0", "aux_weight")
    if not 1 <= self.num_layers <= MAX_LAYERS or self.filters < 2 or self.filters % 2:
      raise UserError(f"Config fields `{section}.num_layers` (1 to {MAX_LAYERS}) and "
                      f"`{section}.filters` (even, >= 2) got {self.num_layers} and "
                      f"{self.filters}. The upper bound is four times the paper's final "
                      f"network: each layer and its skip connections to every earlier one are "
                      f"unrolled in the compiled programs (the tiny search at 24 layers was "
                      f"still compiling after 400 s on 2 CPU cores).")
    if not 0 < self.keep_prob <= 1:
      raise UserError(f"Config field `{section}.keep_prob` must be in (0, 1], got "
                      f"{self.keep_prob}.")


def reduction_layers(num_layers: int) -> tuple[int, ...]:
  """The layers after which every output is halved: L/3 - 1 and 2L/3 - 1 (the authors')."""
  d = num_layers // 3
  return (d - 1, 2 * d - 1) if d >= 1 else ()


def layer_channels(cfg: MacroModelConfig) -> list[int]:
  """Output channels of each layer (doubling after each reduction when configured)."""
  c, out = cfg.filters, []
  for k in range(cfg.num_layers):
    out.append(c)
    if k in reduction_layers(cfg.num_layers) and cfg.double_filters_at_reduction:
      c *= 2
  return out


# --- the shared-weights network ------------------------------------------------------------------

def _branch_params(key: jax.Array, op: str, c: int) -> dict[str, Any]:
  k_in, k_op = jax.random.split(key)
  p = {"inp": ops.conv_bn_params(k_in, 1, c, c)}
  if op.startswith("conv"):
    p["conv"] = ops.conv_bn_params(k_op, int(op[4]), c, c)
  elif op.startswith("sep"):
    p["sep"] = ops.sep_conv_params(k_op, int(op[3]), c, c)
  return p


def _branch(op: str):
  """The pure function (params, x) -> y of one operation branch."""
  pool = {"avgpool3x3": ops.avg_pool3, "maxpool3x3": ops.max_pool3}.get(op)

  def apply(p: dict[str, Any], x: jax.Array) -> jax.Array:
    y = ops.conv_bn(p["inp"], x, relu_after=True)
    if pool is not None:
      return pool(y)
    y = ops.conv_bn(p["conv"], y) if "conv" in p else ops.sep_conv_bn(p["sep"], y)
    return jax.nn.relu(y)

  return apply


BRANCHES = tuple(_branch(op) for op in OPS)  # index = operation id


def init_shared(key: jax.Array, cfg: MacroModelConfig, image_channels: int,
                num_classes: int) -> dict[str, Any]:
  """Every branch of every layer, every (reduction, layer) factorized reduction, stem, head.

  Keys in order: each layer's branches (OPS order), each reduction's sources, the stem, the
  head. Weights of one shape are drawn in one call (`by_shape`: the layers of one width share an
  operation's call, the reductions of one width theirs); the numbers are those of one call per
  branch."""
  chans = layer_channels(cfg)
  keys = jax.random.split(key, 4 + cfg.num_layers * (NUM_OPS + 1) + cfg.num_layers * 2)
  branch_keys_LxO = keys[:cfg.num_layers * NUM_OPS].reshape(cfg.num_layers, NUM_OPS)
  branches = by_shape({(k, op): (branch_keys_LxO[k, j], (op, chans[k]))
                       for k in range(cfg.num_layers) for j, op in enumerate(OPS)},
                      _branch_params)
  layers = [{op: branches[(k, op)] for op in OPS} | {"skip_bn": ops.bn_params(chans[k])}
            for k in range(cfg.num_layers)]
  sources = [(r, j) for r in reduction_layers(cfg.num_layers) for j in range(r + 2)]
  first = cfg.num_layers * NUM_OPS  # the reductions' keys follow the branches'
  scale = 2 if cfg.double_filters_at_reduction else 1
  found = by_shape({(r, j): (keys[first + i], (chans[r], chans[r] * scale))
                    for i, (r, j) in enumerate(sources)}, ops.factorized_reduce_params)
  reduce = {f"after{r:02d}": {f"from{j:02d}": found[(r, j)] for j in range(r + 2)}
            for r in reduction_layers(cfg.num_layers)}
  k_stem, k_head = keys[first + len(sources)], keys[first + len(sources) + 1]
  return {"stem": ops.conv_bn_params(k_stem, 3, image_channels, cfg.filters),
          "layers": layers, "reduce": reduce,
          "head": {"w": ops.he_init(k_head, (chans[-1], num_classes)) * 0.5,
                   "b": jnp.zeros((num_classes,))}}


def shared_apply(params: dict[str, Any], arch: MacroArch, x_BxHxWxC: jax.Array,
                 cfg: MacroModelConfig, dropout_key: jax.Array | None = None) -> jax.Array:
  """Logits [B, classes] of the network `arch` (traced int32 arrays) under the shared weights.

  `dropout_key` None: no dropout (scoring); batch norm always uses the batch's statistics.
  """
  x = ops.conv_bn(params["stem"], x_BxHxWxC)
  sources: list[jax.Array] = [x]  # the stem's output, then each layer's
  for k in range(cfg.num_layers):
    p = params["layers"][k]
    branch_params = [p[op] for op in OPS]
    out = jax.lax.switch(arch.op_L[k], [lambda x_, f=f, bp=bp: f(bp, x_)
                                        for f, bp in zip(BRANCHES, branch_params)], x)
    if k > 0:
      for j in range(k):  # sources 0..k-1: the stem and layers 0..k-2
        out = out + arch.skip_LxL[k, j].astype(out.dtype) * sources[j]
      out = ops.batch_norm(p["skip_bn"], out)
    sources.append(out)
    x = out
    if k in reduction_layers(cfg.num_layers):
      red = params["reduce"][f"after{k:02d}"]
      sources = [ops.factorized_reduce(red[f"from{j:02d}"], o) for j, o in enumerate(sources)]
      x = sources[-1]
  h_BxC = ops.global_avg_pool(x)
  if dropout_key is not None and cfg.keep_prob < 1:
    keep = jax.random.bernoulli(dropout_key, cfg.keep_prob, h_BxC.shape)
    h_BxC = jnp.where(keep, h_BxC / cfg.keep_prob, 0.0)
  return h_BxC @ params["head"]["w"] + params["head"]["b"]


# --- the fixed network of one architecture -------------------------------------------------------

class Branch(nn.Module):
  op: str
  features: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = ConvBN(self.features, 1, relu=True, name="inp")(x, train)
    if self.op == "avgpool3x3":
      return ops.avg_pool3(y)
    if self.op == "maxpool3x3":
      return ops.max_pool3(y)
    k = int(self.op[-1])
    if self.op.startswith("conv"):
      return nn.relu(ConvBN(self.features, k, name="conv")(y, train))
    return nn.relu(SepConvBN(self.features, k, name="sep")(y, train))


def needed_after(arch_ops: Sequence[int], skips: np.ndarray, r: int) -> list[int]:
  """The sources (0: the stem, j: layer j-1; those up to layer r) that a layer after reduction
  point r still reads: layer r itself (the next layer's input) and what later skips add."""
  n = len(arch_ops)
  return [j for j in range(r + 2) if j == r + 1 or any(skips[k, j] for k in range(r + 1, n))]


class FixedMacroNetwork(nn.Module):
  """One architecture's network: `__call__(x, train, step_ratio) -> (logits, aux or None)`."""

  config: MacroModelConfig
  ops_L: tuple[int, ...]
  skips: tuple[tuple[int, ...], ...]  # skips[k]: the sources layer k adds (0: stem, j: layer j-1)
  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool, step_ratio: Any = 1.0
               ) -> tuple[jax.Array, jax.Array | None]:
    del step_ratio  # no schedule in the macro network
    cfg = self.config
    chans = layer_channels(cfg)
    skip_mat = np.zeros((cfg.num_layers, cfg.num_layers), np.int32)
    for k, js in enumerate(self.skips):
      skip_mat[k, list(js)] = 1
    reductions = reduction_layers(cfg.num_layers)
    x = ConvBN(cfg.filters, 3, name="stem")(x, train)
    sources: dict[int, jax.Array] = {0: x}  # 0: the stem's output, k + 1: layer k's
    aux = None
    for k in range(cfg.num_layers):
      out = Branch(OPS[self.ops_L[k]], chans[k], name=f"layer{k:02d}")(x, train)
      if k > 0:
        for j in self.skips[k]:
          out = out + sources[j]
        out = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                           name=f"layer{k:02d}_skip_bn")(out)
      sources[k + 1] = x = out
      if k in reductions:
        c_out = chans[k] * (2 if cfg.double_filters_at_reduction else 1)
        sources = {j: FactorizedReduce(c_out, name=f"reduce_after{k:02d}_from{j:02d}")(
            sources[j], train) for j in needed_after(self.ops_L, skip_mat, k)}
        x = sources[k + 1]
        if cfg.aux_head and k == reductions[-1]:
          aux = AuxHead(self.num_classes, name="aux_head")(x, train) if train else None
    h_BxC = jnp.mean(x, axis=(1, 2))
    h_BxC = nn.Dropout(1 - cfg.keep_prob, deterministic=not train)(h_BxC)
    return nn.Dense(self.num_classes, use_bias=False, name="head")(h_BxC), aux


def fixed_network(arch: MacroArch, cfg: MacroModelConfig, num_classes: int) -> FixedMacroNetwork:
  op = np.asarray(arch.op_L)
  skip = np.asarray(arch.skip_LxL)
  skips = tuple(tuple(int(j) for j in np.nonzero(skip[k, :k])[0]) for k in range(len(op)))
  return FixedMacroNetwork(cfg, tuple(int(o) for o in op), skips, num_classes)
