"""The language model around the ENAS cell: embedding, regularisation, cell, tied softmax.

One Flax module serves both modes:
- shared (search): `fixed_arch=None`; the weights hold a matrix for every (node, prev) edge and
  the architecture is a traced argument of `__call__`.
- fixed (final training): `fixed_arch=(prev, act)` as tuples; only the chosen edges exist.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from enas_jax.io.configuration import require
from enas_jax.io.errors import UserError
from enas_jax.ops import products
from enas_jax.ops.params import l2_penalty
from enas_jax.spaces.rnn import cell as cell_lib
from enas_jax.spaces.rnn import arch as arch_lib
from enas_jax.spaces.rnn.arch import RNNArch


@dataclasses.dataclass(frozen=True)
class RNNModelConfig:
  """The `model` section of a recurrent-search config (see configs/ptb_rnn.py for comments)."""

  num_nodes: int = 12
  embed_dim: int = 1000
  hidden_dim: int = 1000
  output: Literal["loose_ends", "all_nodes", "nodes_after_first"] = "loose_ends"
  tie_weights: bool = True
  init_range: float = 0.1
  embedding_dropout: float = 0.1
  input_dropout: float = 0.65
  output_dropout: float = 0.4
  dropconnect: float = 0.5
  dropconnect_on: Literal["all", "node0"] = "all"
  cell_input_dropout: float = 0.0
  between_node_dropout: float = 0.0
  hidden_norm_clip: float = 25.0
  scan_unroll: int = 1
  # "shared" here, "all" in the configs: a checkpoint saved before this field existed holds
  # shared matrices, and resuming it must read the absent field as "shared".
  activation_weights: Literal["shared", "node0", "all"] = "shared"
  matmul_dtype: Literal["float32", "bfloat16"] = "float32"
  activation_dispatch: Literal["auto", "switch", "select"] = "auto"

  def validate(self, section: str = "model") -> None:
    require(self, section, ">= 1", "embed_dim", "hidden_dim", "scan_unroll")
    arch_lib.check_node_count(self.num_nodes, f"{section}.num_nodes")
    require(self, section, "> 0", "init_range")
    require(self, section, ">= 0", "hidden_norm_clip")
    if self.tie_weights and self.embed_dim != self.hidden_dim:
      raise UserError(
          f"Config fields `{section}.embed_dim` ({self.embed_dim}) and `{section}.hidden_dim` "
          f"({self.hidden_dim}) must be equal when `{section}.tie_weights` is True (the softmax "
          f"reuses the embedding). Make them equal or set tie_weights=False.")
    if self.activation_weights not in cell_lib.ACTIVATION_WEIGHTS:
      raise UserError(f"Config field `{section}.activation_weights` is "
                      f"{self.activation_weights!r}; it must be one of "
                      f"{', '.join(cell_lib.ACTIVATION_WEIGHTS)}.")
    if self.activation_dispatch not in cell_lib.ACTIVATION_DISPATCH:
      raise UserError(f"Config field `{section}.activation_dispatch` is "
                      f"{self.activation_dispatch!r}; it must be one of "
                      f"{', '.join(cell_lib.ACTIVATION_DISPATCH)}.")
    if self.matmul_dtype not in products.MATMUL_DTYPES:
      raise UserError(f"Config field `{section}.matmul_dtype` is {self.matmul_dtype!r}; it must "
                      f"be one of {', '.join(products.MATMUL_DTYPES)}.")
    for name in ("embedding_dropout", "input_dropout", "output_dropout", "dropconnect",
                 "cell_input_dropout", "between_node_dropout"):
      rate = getattr(self, name)
      if not 0.0 <= rate < 1.0:
        raise UserError(f"Config field `{section}.{name}` is a dropout rate and must be in "
                        f"[0, 1), got {rate}.")

  @property
  def cell_options(self) -> cell_lib.CellOptions:
    return cell_lib.CellOptions(output=self.output, hidden_norm_clip=self.hidden_norm_clip,
                                scan_unroll=self.scan_unroll, matmul_dtype=self.matmul_dtype,
                                activation_dispatch=cell_lib.resolve_dispatch(
                                    self.activation_dispatch))


def dropout_mask(key: jax.Array, rate: float, shape: tuple[int, ...]) -> jax.Array:
  """Inverted-dropout mask: 0 with probability `rate`, else 1 / (1 - rate).

  A rate that is a multiple of 1/2^b for b in 1, 2, 4, 8 (0.5 above all: DropConnect's) is drawn
  exactly from b random bits per element, 32 / b elements per random word: a tenth of the
  random-number work of `jax.random.bernoulli` (measured 20 ms against 241 ms for the 22M weights
  of 11 matrices of 1000 x 2000); other rates use `jax.random.bernoulli`.
  """
  bits = _rate_bits(rate)
  if bits is None:
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
  else:
    size, per_word = math.prod(shape), 32 // bits
    words_W = jax.random.bits(key, (-(-size // per_word),), jnp.uint32)
    shifts = jnp.arange(per_word, dtype=jnp.uint32) * bits
    values = (words_W[:, None] >> shifts[None, :]) & jnp.uint32((1 << bits) - 1)
    keep = (values.reshape(-1)[:size] >= int(rate * (1 << bits))).reshape(shape)
  return keep.astype(jnp.float32) / (1.0 - rate)


def _rate_bits(rate: float) -> int | None:
  """The fewest bits b in (1, 2, 4, 8) with rate * 2^b a whole number, or None."""
  for bits in (1, 2, 4, 8):
    if float(rate * (1 << bits)).is_integer():
      return bits
  return None


def dropconnect(cfg: RNNModelConfig, key: jax.Array, w_h0_Hx2H: jax.Array,
                w_edges_MxHx2H: jax.Array) -> tuple[jax.Array, jax.Array]:
  """DropConnect masks on node 0's recurrent matrix and, with `dropconnect_on="all"` (the
  paper's), on the chosen edges' matrices too; "node0" leaves those as they are (ENAS-pytorch)."""
  k0, k1 = jax.random.split(key)
  w_h0_Hx2H = w_h0_Hx2H * dropout_mask(k0, cfg.dropconnect, w_h0_Hx2H.shape)
  if cfg.dropconnect_on == "all":
    w_edges_MxHx2H = w_edges_MxHx2H * dropout_mask(k1, cfg.dropconnect, w_edges_MxHx2H.shape)
  return w_h0_Hx2H, w_edges_MxHx2H


def used_weights_penalty(params: dict, arch: RNNArch) -> jax.Array:
  """Sum of squares of the shared weights a step on `arch` uses: the embedding, the softmax
  layer, node 0's two matrices and each node's chosen edge matrix (each its activation's copy
  where the weights hold one per activation). The other edges are left out, so an L2 term of it
  gives them no gradient: torch's SGD weight decay in ENAS-pytorch, which decays only the
  parameters that got a gradient (`shared.l2_on="used"`)."""
  cell = params["cell"]
  act0 = arch.act_N[0]
  used = [cell_lib.node_weights(cell["node0"]["w_x"], act0),
          cell_lib.node_weights(cell["node0"]["w_h"], act0),
          cell_lib.select_edge_weights(cell, arch.prev_N, arch.act_N)]
  return (l2_penalty({k: v for k, v in params.items() if k != "cell"})
          + sum(jnp.sum(jnp.square(w)) for w in used))


def sow_activation_sq(module: nn.Module, out_TxBxH: jax.Array, valid_T: jax.Array) -> None:
  """Sows the mean square of the cell outputs over the valid steps ('intermediates'), for the
  activation L2 penalty (`lm_steps.make_lm_steps(activation_l2=...)`)."""
  w_T = valid_T.astype(jnp.float32)
  module.sow("intermediates", "activation_sq",
             jnp.sum(jnp.mean(jnp.square(out_TxBxH), axis=(1, 2)) * w_T)
             / jnp.maximum(jnp.sum(w_T), 1.0))


class RNNLanguageModel(nn.Module):
  """ENAS recurrent-cell language model.

  Attributes:
    config: model hyper-parameters.
    vocab_size: V.
    fixed_arch: None for the shared model; (prev, act) tuples for a fixed cell.
  """

  config: RNNModelConfig
  vocab_size: int
  fixed_arch: tuple[tuple[int, ...], tuple[int, ...]] | None = None

  def _edges(self) -> tuple[tuple[int, int], ...] | None:
    if self.fixed_arch is None:
      return None
    prev = self.fixed_arch[0]
    return tuple((k, prev[k]) for k in range(1, len(prev)))

  @nn.compact
  def __call__(self, tokens_BxT: jax.Array, h_BxH: jax.Array, arch: RNNArch | None = None,
               valid_T: jax.Array | None = None, *, train: bool = False
               ) -> tuple[jax.Array, jax.Array]:
    """Returns (logits [B, T, V], the recurrent state after the last valid step).

    `arch` is required (and traced) for the shared model and ignored for a fixed one. Dropout
    draws from the 'dropout' PRNG stream when `train`.
    """
    cfg = self.config
    batch, steps = tokens_BxT.shape
    if self.fixed_arch is not None:
      arch = RNNArch(jnp.asarray(self.fixed_arch[0], jnp.int32),
                     jnp.asarray(self.fixed_arch[1], jnp.int32))
    elif arch is None:
      raise ValueError("the shared model needs an architecture")
    if valid_T is None:
      valid_T = jnp.ones((steps,), bool)

    init_u = lambda lo: (lambda k, s: jax.random.uniform(k, s, jnp.float32, -lo, lo))
    embedding_VxE = self.param("embedding", init_u(cfg.init_range),
                               (self.vocab_size, cfg.embed_dim))
    # one copy per activation only in the shared model (a fixed cell has one activation a node)
    cell = self.param("cell", lambda k: cell_lib.init_cell(
        k, cfg.num_nodes, cfg.embed_dim, cfg.hidden_dim, cfg.init_range, self._edges(),
        cfg.activation_weights if self.fixed_arch is None else "shared"))
    softmax, softmax_transposed = self._softmax_weights(embedding_VxE, init_u(cfg.init_range))
    softmax_bias_V = self.param("softmax_bias", nn.initializers.zeros, (self.vocab_size,))

    w_h0_Hx2H = cell_lib.node_weights(cell["node0"]["w_h"], arch.act_N[0])
    if self.fixed_arch is None:
      w_edges_MxHx2H = cell_lib.select_edge_weights(cell, arch.prev_N, arch.act_N)
    else:
      w_edges_MxHx2H = cell_lib.fixed_edge_weights(cell, self.fixed_arch[0])

    x_TxBxE = self._embed(embedding_VxE, tokens_BxT, train)
    node_mask_BxH = None
    if train and cfg.between_node_dropout > 0:  # enas_lm's drop_l
      node_mask_BxH = dropout_mask(self.make_rng("dropout"), cfg.between_node_dropout,
                                    (batch, cfg.hidden_dim))
    if train and cfg.dropconnect > 0:  # DropConnect on the recurrent weights, one mask per call
      w_h0_Hx2H, w_edges_MxHx2H = dropconnect(cfg, self.make_rng("dropout"), w_h0_Hx2H,
                                              w_edges_MxHx2H)

    xw_TxBx2H = products.matmul(x_TxBxE, cell_lib.node_weights(cell["node0"]["w_x"],
                                                               arch.act_N[0]), cfg.matmul_dtype)
    h_last_BxH, out_TxBxH = cell_lib.unroll(
        xw_TxBx2H, w_h0_Hx2H, w_edges_MxHx2H, arch, h_BxH, valid_T, cfg.cell_options,
        node_mask_BxH)
    if train:
      sow_activation_sq(self, out_TxBxH, valid_T)
    if train and cfg.output_dropout > 0:
      out_TxBxH = out_TxBxH * dropout_mask(self.make_rng("dropout"), cfg.output_dropout,
                                            (1, batch, cfg.hidden_dim))
    return self._logits(out_TxBxH, softmax, softmax_bias_V, softmax_transposed), h_last_BxH

  def _softmax_weights(self, embedding_VxE: jax.Array, init: Any) -> tuple[jax.Array, bool]:
    """(the softmax's matrix, whether it is given transposed, [V, H]). Tied weights: the logits
    are out @ embedding.T; with bfloat16 products the transpose is left to the product
    (`products.matmul`'s `b_transposed`: faster on the CPU), with float32 it is made here,
    before the cell (the gradients' summation order, and so their bits, as ever)."""
    cfg = self.config
    if not cfg.tie_weights:
      return self.param("softmax_kernel", init, (cfg.hidden_dim, self.vocab_size)), False
    if cfg.matmul_dtype == "bfloat16":
      return embedding_VxE, True
    return embedding_VxE.T, False

  def _logits(self, out_TxBxH: jax.Array, softmax: jax.Array, softmax_bias_V: jax.Array,
              transposed: bool) -> jax.Array:
    """[B, T, V]. `softmax`: [H, V] ([V, H] if `transposed`). The outputs go [B, T, H] first: a
    plain [B*T, H] x [H, V] product (einsum "tbh,hv->btv" made XLA's CPU backend write the
    large logits transposed, 1.7x slower for the whole softmax layer)."""
    return products.matmul(jnp.transpose(out_TxBxH, (1, 0, 2)), softmax, self.config.matmul_dtype,
                           b_transposed=transposed) + softmax_bias_V

  def _embed(self, embedding_VxE: jax.Array, tokens_BxT: jax.Array, train: bool) -> jax.Array:
    """The embedded tokens [T, B, E], with word dropout and the locked input masks when
    training (masks drawn in this order from the 'dropout' stream)."""
    cfg, batch = self.config, tokens_BxT.shape[0]
    emb = embedding_VxE
    if train and cfg.embedding_dropout > 0:  # word dropout: whole rows of the embedding
      emb = emb * dropout_mask(self.make_rng("dropout"), cfg.embedding_dropout,
                                (self.vocab_size, 1))
    x_TxBxE = jnp.take(emb, tokens_BxT.T, axis=0)
    if train and cfg.input_dropout > 0:  # locked: one mask for all time steps
      x_TxBxE = x_TxBxE * dropout_mask(self.make_rng("dropout"), cfg.input_dropout,
                                        (1, batch, cfg.embed_dim))
    if train and cfg.cell_input_dropout > 0:  # a second locked mask (enas_lm's drop_x)
      x_TxBxE = x_TxBxE * dropout_mask(self.make_rng("dropout"), cfg.cell_input_dropout,
                                        (1, batch, cfg.embed_dim))
    return x_TxBxE

  @property
  def state_size(self) -> int:
    """Width of the recurrent state the caller carries between windows."""
    return self.config.hidden_dim
