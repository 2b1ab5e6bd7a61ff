"""The ENAS recurrent cell as pure functions of (weights, architecture, inputs).

Every node is a highway update. Node 0 reads x_t and h_{t-1}:
    z = x_t W_x + h_{t-1} W_h,   c = sigmoid(z_c),   h_0 = c * f_0(z_h) + (1 - c) * h_{t-1}
and node k >= 1 reads node p = prev[k] with its own matrix for that (node, prev) edge:
    z = h_p W_{k,p},             c = sigmoid(z_c),   h_k = c * f_k(z_h) + (1 - c) * h_p
The cell's output (and next recurrent state) is the mean of the loose ends, or of all nodes.

Speed (see DESIGN.md): the architecture is a traced input, so one compilation serves every cell.
The per-edge matrices are picked once per call, before the scan over time (`lax.switch` over the
(node, prev) keys); inside the scan, each node's input is picked from the earlier nodes by
selects, and the activation by `lax.switch` (only the chosen one runs) on a CPU, or by computing
all four and selecting on a GPU or TPU (`activation_dispatch`). The gradient is a custom
VJP: the reverse scan does only the sequential part, and each weight gradient is one large
product over all steps (see `unroll`).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.ops import products
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
  matmul_dtype: str = "float32"  # "bfloat16": products of bfloat16 operands summed in float32
  activation_dispatch: str = "switch"  # "select": every activation computed, the chosen kept


# "switch": a `lax.switch` per node and time step runs only the chosen activation (on the CPU the
# cheapest: no wasted tanh or sigmoid); "select": all four computed and the chosen one selected
# elementwise, with no branch in the time loop (on a GPU each branch is a conditional the runtime
# resolves one at a time). Same values: the chosen function is applied to the same input.
# "auto": "switch" on a CPU, "select" elsewhere. Measured (performance.md, "GPU check"): on one
# H200 "select" makes the paper-size PTB controller step 1.8x and the shared step 1.3x faster;
# on 2 CPU cores it costs nothing at hidden 256 and 1000 but 44% on the controller at hidden 128.
ACTIVATION_DISPATCH = ("auto", "switch", "select")


def resolve_dispatch(dispatch: str, backend: str | None = None) -> str:
  """The activation dispatch a run uses: `dispatch` itself, or for "auto" "switch" on the CPU
  and "select" on any other backend (`backend`: default JAX's default backend)."""
  if dispatch != "auto":
    return dispatch
  return "switch" if (backend or jax.default_backend()) == "cpu" else "select"


NUM_ACTIVATIONS = 4  # tanh, relu, identity, sigmoid (the order of `activate`)
ACTIVATION_WEIGHTS = ("shared", "node0", "all")


def init_cell(key: jax.Array, num_nodes: int, embed_dim: int, hidden_dim: int,
              init_range: float, edges: tuple[tuple[int, int], ...] | None = None,
              activation_weights: str = "shared") -> dict:
  """Initialises node 0's input and recurrent weights and one [H, 2H] matrix per edge.

  Args:
    key: PRNG key.
    num_nodes: N.
    embed_dim, hidden_dim: sizes of x_t and h.
    init_range: weights are uniform in [-init_range, init_range].
    edges: the (node, prev) pairs to create; None creates every pair (the shared weights).
    activation_weights: "shared" (ENAS: one matrix per key, whatever the node's activation),
      "node0" (node 0's two matrices get a leading axis of one copy per activation) or "all"
      (every key's matrices do). The keys stay (node, prev); `node_weights` picks the copy.
  """
  if edges is None:
    edges = tuple((k, p) for k in range(1, num_nodes) for p in range(k))
  if activation_weights not in ACTIVATION_WEIGHTS:
    raise ValueError(f"unknown activation_weights {activation_weights!r}")
  keys = jax.random.split(key, len(edges) + 2)
  lead0 = () if activation_weights == "shared" else (NUM_ACTIVATIONS,)
  lead = (NUM_ACTIVATIONS,) if activation_weights == "all" else ()
  u = lambda k, shape: jax.random.uniform(k, shape, jnp.float32, -init_range, init_range)
  params = {
      "node0": {"w_x": u(keys[0], lead0 + (embed_dim, 2 * hidden_dim)),
                "w_h": u(keys[1], lead0 + (hidden_dim, 2 * hidden_dim))},
  }
  for i, (k, p) in enumerate(edges):
    params[edge_key(k, p)] = u(keys[i + 2], lead + (hidden_dim, 2 * hidden_dim))
  return params


def node_weights(w: jax.Array, act: jax.Array) -> jax.Array:
  """The [rows, 2H] matrix a node uses: `w` itself, or its copy for activation `act` when `w`
  holds one per activation ([4, rows, 2H]; `act` may be traced)."""
  if w.ndim == 2:
    return w
  return jax.lax.dynamic_index_in_dim(w, jnp.clip(act, 0, NUM_ACTIVATIONS - 1), 0,
                                      keepdims=False)


def select_edge_weights(cell: Params, prev_N: jax.Array, act_N: jax.Array | None = None
                        ) -> jax.Array:
  """float[N-1, H, 2H]: node k's matrix for its chosen input, picked by `lax.switch` (and its
  activation's copy, when the weights have one per activation: `act_N` is then required).

  Done once per call, outside the time loop; only the chosen branch runs under `jit`.
  """
  num_nodes = prev_N.shape[0]
  chosen = []
  for k in range(1, num_nodes):
    branches = [lambda p=p, k=k: cell[edge_key(k, p)] for p in range(k)]
    w = jax.lax.switch(jnp.clip(prev_N[k], 0, k - 1), branches)
    chosen.append(w if w.ndim == 2 else node_weights(w, act_N[k]))
  return jnp.stack(chosen)


def fixed_edge_weights(cell: Params, prev: tuple[int, ...]) -> jax.Array:
  """The same stack for an architecture known when tracing (fixed-architecture mode, whose
  weights never have one copy per activation)."""
  return jnp.stack([cell[edge_key(k, prev[k])] for k in range(1, len(prev))])


def activate(act: jax.Array, z: jax.Array, dispatch: str = "switch") -> jax.Array:
  """Applies activation `act` (tanh, relu, identity, sigmoid) elementwise; `act` may be traced
  (then "switch" runs only the chosen function, through `lax.switch`, and "select" computes all
  four and selects; see ACTIVATION_DISPATCH)."""
  act = jnp.clip(act, 0, 3)
  if dispatch == "select":
    return jnp.where(act == 0, jnp.tanh(z), jnp.where(act == 1, jax.nn.relu(z),
                                                      jnp.where(act == 2, z, jax.nn.sigmoid(z))))
  return jax.lax.switch(act, (jnp.tanh, jax.nn.relu, lambda v: v, jax.nn.sigmoid), z)


def _highway(z_Bx2H: jax.Array, h_in_BxH: jax.Array, act: jax.Array, dispatch: str
             ) -> jax.Array:
  hidden = h_in_BxH.shape[-1]
  c_BxH = jax.nn.sigmoid(z_Bx2H[:, :hidden])
  f_BxH = activate(act, z_Bx2H[:, hidden:], dispatch)
  return h_in_BxH + c_BxH * (f_BxH - h_in_BxH)


def output_weights(arch: RNNArch, output: str) -> jax.Array | np.ndarray:
  """float32[N]: the weights of the nodes in the cell output (they sum to 1); computed with
  NumPy when the architecture's arrays are NumPy's (the host's pictures)."""
  xp = jnp if isinstance(arch.prev_N, jax.Array) else np
  n = arch.prev_N.shape[0]
  if output == "all_nodes":
    mask_N = xp.ones((n,), xp.float32)
  elif output == "nodes_after_first":  # the corrected ENAS LM code: mean of nodes 1..N-1
    mask_N = (xp.arange(n) > 0).astype(xp.float32)
  elif output == "loose_ends":
    mask_N = loose_ends_mask(xp.asarray(arch.prev_N))
  else:
    raise ValueError(f"unknown cell output {output!r}")
  return mask_N / xp.sum(mask_N)


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

  The gradient is written by hand (`_unroll_bwd`): a reverse scan computes only what must be
  sequential (each step's gradients with respect to its products' inputs), and the weight
  gradients are then one product per matrix over all T * B rows, instead of T small ones.
  """
  return _unroll(xw_TxBx2H, w_h0_Hx2H, w_edges_MxHx2H, h_BxH, valid_T,
                 jnp.asarray(arch.prev_N, jnp.int32), jnp.asarray(arch.act_N, jnp.int32),
                 node_mask_BxH, opts)


def _mix(out_w_N: jax.Array, nodes: list[jax.Array] | jax.Array) -> jax.Array:
  """The cell output: the nodes weighted by `out_w_N`, summed in node order."""
  return sum(out_w_N[n] * nodes[n] for n in range(out_w_N.shape[0]))


def _pick(nodes: list[jax.Array], p: jax.Array, k: int) -> jax.Array:
  """nodes[p] for a traced p in [0, k) (selects: cheaper here than a buffer read by index)."""
  chosen = nodes[0]
  for q in range(1, k):
    chosen = jnp.where(p == q, nodes[q], chosen)
  return chosen


def _unstack(w_MxHx2H: jax.Array) -> list[jax.Array]:
  """The M matrices as separate arrays, split once outside the time loop: indexed inside it,
  XLA's CPU backend copied every matrix at every step (35 x 11 x 8 MB a pass at width 1000)."""
  return [w_MxHx2H[m] for m in range(w_MxHx2H.shape[0])]


def _scan_forward(xw_TxBx2H, w_h0_Hx2H, w_edges_MxHx2H, h_BxH, valid_T, prev_N, act_N,
                  node_mask_BxH, opts: CellOptions, save: bool):
  """The time loop; with `save`, each step also returns (h_{t-1}, nodes [N, B, H], products
  [N, B, 2H]) for the backward pass."""
  num_nodes, dt = act_N.shape[0], opts.matmul_dtype
  out_w_N = output_weights(RNNArch(prev_N, act_N), opts.output)
  drop = (lambda v: v) if node_mask_BxH is None else (lambda v: v * node_mask_BxH)
  w_h0_Hx2H = products.operand(w_h0_Hx2H, dt)
  w_edges_Hx2H = _unstack(products.operand(w_edges_MxHx2H, dt))

  def step(h_prev_BxH, inputs):
    xw_Bx2H, valid = inputs
    z_Bx2H = [xw_Bx2H + products.mm(drop(h_prev_BxH), w_h0_Hx2H, dt)]
    nodes_BxH = [_highway(z_Bx2H[0], h_prev_BxH, act_N[0], opts.activation_dispatch)]
    for k in range(1, num_nodes):
      h_in_BxH = _pick(nodes_BxH, prev_N[k], k)
      z_Bx2H.append(products.mm(drop(h_in_BxH), w_edges_Hx2H[k - 1], dt))
      nodes_BxH.append(_highway(z_Bx2H[k], h_in_BxH, act_N[k], opts.activation_dispatch))
    h_new_BxH = _mix(out_w_N, nodes_BxH)
    if opts.hidden_norm_clip > 0:
      h_new_BxH = clip_norm(h_new_BxH, opts.hidden_norm_clip)
    out = h_new_BxH
    if save:
      out = (h_new_BxH, (h_prev_BxH, jnp.stack(nodes_BxH), jnp.stack(z_Bx2H)))
    return jnp.where(valid, h_new_BxH, h_prev_BxH), out

  return jax.lax.scan(step, h_BxH, (xw_TxBx2H, valid_T), unroll=opts.scan_unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(8,))
def _unroll(xw_TxBx2H, w_h0_Hx2H, w_edges_MxHx2H, h_BxH, valid_T, prev_N, act_N, node_mask_BxH,
            opts):
  return _scan_forward(xw_TxBx2H, w_h0_Hx2H, w_edges_MxHx2H, h_BxH, valid_T, prev_N, act_N,
                       node_mask_BxH, opts, save=False)


def _unroll_fwd(xw_TxBx2H, w_h0_Hx2H, w_edges_MxHx2H, h_BxH, valid_T, prev_N, act_N,
                node_mask_BxH, opts):
  h_last_BxH, (out_TxBxH, saved) = _scan_forward(
      xw_TxBx2H, w_h0_Hx2H, w_edges_MxHx2H, h_BxH, valid_T, prev_N, act_N, node_mask_BxH, opts,
      save=True)
  return (h_last_BxH, out_TxBxH), (saved, w_h0_Hx2H, w_edges_MxHx2H, valid_T, prev_N, act_N,
                                   node_mask_BxH)


def _highway_vjp(z_Bx2H: jax.Array, u_BxH: jax.Array, act: jax.Array, d_BxH: jax.Array
                 ) -> tuple[jax.Array, jax.Array]:
  """(d z, d u) of h = u + sigmoid(z_c) * (f(z_h) - u), by hand: one fused pass, no branch."""
  hidden = u_BxH.shape[-1]
  zc_BxH, zh_BxH = z_Bx2H[:, :hidden], z_Bx2H[:, hidden:]
  c_BxH = jax.nn.sigmoid(zc_BxH)
  tanh_BxH, sig_BxH = jnp.tanh(zh_BxH), jax.nn.sigmoid(zh_BxH)
  f_BxH = activate(act, zh_BxH, "select")  # its tanh and sigmoid are the ones above (CSE)
  df_BxH = jnp.where(act == 0, 1.0 - tanh_BxH * tanh_BxH,
                     jnp.where(act == 1, (zh_BxH > 0).astype(zh_BxH.dtype),
                               jnp.where(act == 2, 1.0, sig_BxH * (1.0 - sig_BxH))))
  dzc_BxH = d_BxH * (f_BxH - u_BxH) * c_BxH * (1.0 - c_BxH)
  dzh_BxH = d_BxH * c_BxH * df_BxH
  return jnp.concatenate([dzc_BxH, dzh_BxH], axis=-1), d_BxH * (1.0 - c_BxH)


def _unroll_bwd(opts: CellOptions, saved, cotangents):
  (h_prev_TxBxH, nodes_TxNxBxH, z_TxNxBx2H), w_h0_Hx2H, w_edges_MxHx2H, valid_T, prev_N, act_N, \
      node_mask_BxH = saved
  d_last_BxH, d_out_TxBxH = cotangents
  num_nodes, dt = act_N.shape[0], opts.matmul_dtype
  out_w_N = output_weights(RNNArch(prev_N, act_N), opts.output)
  drop = (lambda v: v) if node_mask_BxH is None else (lambda v: v * node_mask_BxH)
  w_h0_Hx2H = products.operand(w_h0_Hx2H, dt)
  w_edges_Hx2H = _unstack(products.operand(w_edges_MxHx2H, dt))

  def step(d_carry_BxH, inputs):
    h_prev_BxH, nodes_NxBxH, z_NxBx2H, d_out_BxH, valid = inputs
    d_new_BxH = d_out_BxH + jnp.where(valid, d_carry_BxH, 0.0)
    d_prev_BxH = jnp.where(valid, 0.0, d_carry_BxH)
    if opts.hidden_norm_clip > 0:
      h_pre_BxH = _mix(out_w_N, nodes_NxBxH)  # as the forward pass summed it
      _, clip_vjp = jax.vjp(lambda v: clip_norm(v, opts.hidden_norm_clip), h_pre_BxH)
      (d_new_BxH,) = clip_vjp(d_new_BxH)
    d_nodes_BxH = [out_w_N[n] * d_new_BxH for n in range(num_nodes)]
    dz_Bx2H = [None] * num_nodes
    for k in range(num_nodes - 1, 0, -1):  # consumers before the nodes they read
      h_in_BxH = jax.lax.dynamic_index_in_dim(nodes_NxBxH, prev_N[k], 0, keepdims=False)
      dz_Bx2H[k], d_in_BxH = _highway_vjp(z_NxBx2H[k], h_in_BxH, act_N[k], d_nodes_BxH[k])
      d_in_BxH = d_in_BxH + drop(products.mm_nt(dz_Bx2H[k], w_edges_Hx2H[k - 1], dt))
      for p in range(k):
        d_nodes_BxH[p] = d_nodes_BxH[p] + jnp.where(prev_N[k] == p, d_in_BxH, 0.0)
    dz_Bx2H[0], d_in_BxH = _highway_vjp(z_NxBx2H[0], h_prev_BxH, act_N[0], d_nodes_BxH[0])
    d_prev_BxH = d_prev_BxH + d_in_BxH + drop(products.mm_nt(dz_Bx2H[0], w_h0_Hx2H, dt))
    return d_prev_BxH, jnp.stack(dz_Bx2H)

  d_h_BxH, dz_TxNxBx2H = jax.lax.scan(
      step, d_last_BxH, (h_prev_TxBxH, nodes_TxNxBxH, z_TxNxBx2H, d_out_TxBxH, valid_T),
      reverse=True, unroll=opts.scan_unroll)
  d_w_h0_Hx2H, d_w_edges_MxHx2H = _weight_grads(h_prev_TxBxH, nodes_TxNxBxH, dz_TxNxBx2H, prev_N,
                                                drop, dt)
  d_mask = None if node_mask_BxH is None else jnp.zeros_like(node_mask_BxH)
  return (dz_TxNxBx2H[:, 0], d_w_h0_Hx2H, d_w_edges_MxHx2H, d_h_BxH, _no_cotangent(valid_T),
          _no_cotangent(prev_N), _no_cotangent(act_N), d_mask)


def _weight_grads(h_prev_TxBxH, nodes_TxNxBxH, dz_TxNxBx2H, prev_N, drop, dt: str):
  """Every matrix's gradient as one product over all T * B rows (inputs x product gradients)."""
  steps, num_nodes, batch, two_hidden = dz_TxNxBx2H.shape
  rows = steps * batch
  d_w_h0_Hx2H = products.mm_tn(drop(h_prev_TxBxH).reshape(rows, -1),
                               dz_TxNxBx2H[:, 0].reshape(rows, two_hidden), dt)
  in_TxMxBxH = drop(jnp.take(nodes_TxNxBxH, prev_N[1:], axis=1))
  in_MxRxH = jnp.transpose(in_TxMxBxH, (1, 0, 2, 3)).reshape(num_nodes - 1, rows, -1)
  dz_MxRx2H = jnp.transpose(dz_TxNxBx2H[:, 1:], (1, 0, 2, 3)).reshape(num_nodes - 1, rows,
                                                                      two_hidden)
  return d_w_h0_Hx2H, products.mm_tn(in_MxRxH, dz_MxRx2H, dt)


def _no_cotangent(x: jax.Array) -> np.ndarray:
  """The cotangent of an integer or boolean input."""
  return np.zeros(np.shape(x), dtype=jax.dtypes.float0)


_unroll.defvjp(_unroll_fwd, _unroll_bwd)
