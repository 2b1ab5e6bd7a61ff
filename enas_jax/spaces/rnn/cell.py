"""The ENAS recurrent cell as pure functions of (weights, architecture, inputs).

Every node is a highway update. Node 0 reads x_t and h_{t-1}:
    z = x_t W_x + h_{t-1} W_h,   c = sigmoid(z_c),   h_0 = c * f_0(z_h) + (1 - c) * h_{t-1}
and node k >= 1 reads node p = prev[k] with its own matrix for that (node, prev) edge:
    z = h_p W_{k,p},             c = sigmoid(z_c),   h_k = c * f_k(z_h) + (1 - c) * h_p
The cell's output (and next recurrent state) is the mean of the loose ends, or of all nodes.

Speed (see DESIGN.md): the architecture is a traced input, so one compilation serves every cell.
The per-edge matrices are picked once per call, before the scan over time (`lax.switch` over the
(node, prev) keys); inside the scan, node outputs live in a fixed [N, batch, hidden] buffer read by
dynamic index, and the activation is picked by `lax.switch` (only the chosen one runs).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import jax
import jax.numpy as jnp

from enas_jax.spaces.rnn.arch import RNNArch, loose_ends_mask

Params = Mapping[str, jax.Array]


def edge_key(node: int, prev: int) -> str:
  """The shared-weights key of the edge prev -> node (a string, so orbax can save it)."""
  return f"node{node}_prev{prev}"


@dataclasses.dataclass(frozen=True)
class CellOptions:
  """How the cell is unrolled; all static under `jit`."""

  output: str = "loose_ends"  # "loose_ends", "all_nodes" or "nodes_after_first"
  hidden_norm_clip: float = 0.0  # clip each example's h_t to this L2 norm; 0 turns it off
  scan_unroll: int = 1  # time steps unrolled per scan iteration


def init_cell(key: jax.Array, num_nodes: int, embed_dim: int, hidden_dim: int,
              init_range: float, edges: tuple[tuple[int, int], ...] | None = None) -> dict:
  """Initialises node 0's input and recurrent weights and one [H, 2H] matrix per edge.

  Args:
    key: PRNG key.
    num_nodes: N.
    embed_dim, hidden_dim: sizes of x_t and h.
    init_range: weights are uniform in [-init_range, init_range].
    edges: the (node, prev) pairs to create; None creates every pair (the shared weights).
  """
  if edges is None:
    edges = tuple((k, p) for k in range(1, num_nodes) for p in range(k))
  keys = jax.random.split(key, len(edges) + 2)
  u = lambda k, shape: jax.random.uniform(k, shape, jnp.float32, -init_range, init_range)
  params = {
      "node0": {"w_x": u(keys[0], (embed_dim, 2 * hidden_dim)),
                "w_h": u(keys[1], (hidden_dim, 2 * hidden_dim))},
  }
  for i, (k, p) in enumerate(edges):
    params[edge_key(k, p)] = u(keys[i + 2], (hidden_dim, 2 * hidden_dim))
  return params


def select_edge_weights(cell: Params, prev_N: jax.Array) -> jax.Array:
  """float[N-1, H, 2H]: node k's matrix for its chosen input, picked by `lax.switch`.

  Done once per call, outside the time loop; only the chosen branch runs under `jit`.
  """
  num_nodes = prev_N.shape[0]
  chosen = []
  for k in range(1, num_nodes):
    branches = [lambda p=p, k=k: cell[edge_key(k, p)] for p in range(k)]
    chosen.append(jax.lax.switch(jnp.clip(prev_N[k], 0, k - 1), branches))
  return jnp.stack(chosen)


def fixed_edge_weights(cell: Params, prev: tuple[int, ...]) -> jax.Array:
  """The same stack for an architecture known when tracing (fixed-architecture mode)."""
  return jnp.stack([cell[edge_key(k, prev[k])] for k in range(1, len(prev))])


def activate(act: jax.Array, z: jax.Array) -> jax.Array:
  """Applies activation `act` (tanh, relu, identity, sigmoid) elementwise; `act` may be traced
  (then only the chosen function runs, through `lax.switch`)."""
  return jax.lax.switch(jnp.clip(act, 0, 3), (jnp.tanh, jax.nn.relu, lambda v: v, jax.nn.sigmoid),
                        z)


def _highway(z_Bx2H: jax.Array, h_in_BxH: jax.Array, act: jax.Array) -> jax.Array:
  hidden = h_in_BxH.shape[-1]
  c_BxH = jax.nn.sigmoid(z_Bx2H[:, :hidden])
  f_BxH = activate(act, z_Bx2H[:, hidden:])
  return h_in_BxH + c_BxH * (f_BxH - h_in_BxH)


def output_weights(arch: RNNArch, output: str) -> jax.Array:
  """float32[N]: the weights of the nodes in the cell output (they sum to 1)."""
  if output == "all_nodes":
    mask_N = jnp.ones(arch.prev_N.shape, jnp.float32)
  elif output == "nodes_after_first":  # the corrected ENAS LM code: mean of nodes 1..N-1
    mask_N = jnp.ones(arch.prev_N.shape, jnp.float32).at[0].set(0.0)
  elif output == "loose_ends":
    mask_N = loose_ends_mask(jnp.asarray(arch.prev_N))
  else:
    raise ValueError(f"unknown cell output {output!r}")
  return mask_N / jnp.sum(mask_N)


def clip_norm(h_BxH: jax.Array, max_norm: float) -> jax.Array:
  """Scales each row whose L2 norm exceeds `max_norm` down to that norm."""
  norm_Bx1 = jnp.linalg.norm(h_BxH, axis=-1, keepdims=True)
  return h_BxH * jnp.minimum(1.0, max_norm / jnp.maximum(norm_Bx1, 1e-12))


def unroll(xw_TxBx2H: jax.Array, w_h0_Hx2H: jax.Array, w_edges_MxHx2H: jax.Array,
           arch: RNNArch, h_BxH: jax.Array, valid_T: jax.Array, opts: CellOptions,
           node_mask_BxH: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Runs the cell over T time steps.

  Args:
    xw_TxBx2H: x_t W_x for every step (computed for all steps at once by the caller).
    w_h0_Hx2H: node 0's recurrent matrix.
    w_edges_MxHx2H: node k's chosen matrix at index k - 1 (M = N - 1).
    arch: the architecture (traced or constant).
    h_BxH: h_{t-1} at the first step.
    valid_T: bool[T]; steps past a variable-length window's end leave the state unchanged.
    opts: static options.
    node_mask_BxH: between-node dropout: multiplies h_{t-1} and every node's input before its
      matrix (not the highway's carried term), one mask for all steps, as the ENAS LM code does.

  Returns:
    (h at the last valid step, cell outputs [T, B, H]).
  """
  num_nodes = arch.act_N.shape[0]
  batch, hidden = h_BxH.shape
  out_w_N = output_weights(arch, opts.output)
  prev_N = jnp.asarray(arch.prev_N)
  act_N = jnp.asarray(arch.act_N)

  def step(h_prev_BxH, inputs):
    xw_Bx2H, valid = inputs
    drop = (lambda v: v) if node_mask_BxH is None else (lambda v: v * node_mask_BxH)
    z_Bx2H = xw_Bx2H + drop(h_prev_BxH) @ w_h0_Hx2H
    node_BxH = _highway(z_Bx2H, h_prev_BxH, act_N[0])
    buf_NxBxH = jnp.zeros((num_nodes, batch, hidden), h_BxH.dtype).at[0].set(node_BxH)
    for k in range(1, num_nodes):
      h_in_BxH = jax.lax.dynamic_index_in_dim(buf_NxBxH, prev_N[k], axis=0, keepdims=False)
      z_Bx2H = drop(h_in_BxH) @ w_edges_MxHx2H[k - 1]
      buf_NxBxH = buf_NxBxH.at[k].set(_highway(z_Bx2H, h_in_BxH, act_N[k]))
    h_new_BxH = jnp.einsum("n,nbh->bh", out_w_N, buf_NxBxH)
    if opts.hidden_norm_clip > 0:
      h_new_BxH = clip_norm(h_new_BxH, opts.hidden_norm_clip)
    return jnp.where(valid, h_new_BxH, h_prev_BxH), h_new_BxH

  h_last_BxH, out_TxBxH = jax.lax.scan(step, h_BxH, (xw_TxBx2H, valid_T),
                                       unroll=opts.scan_unroll)
  return h_last_BxH, out_TxBxH
