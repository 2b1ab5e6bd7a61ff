"""A plain NumPy ENAS cell, written separately from enas_jax.spaces.rnn.cell, for equivalence
tests."""
import numpy as np


def _act(name_id, z):
  if name_id == 0:
    return np.tanh(z)
  if name_id == 1:
    return np.maximum(z, 0.0)
  if name_id == 2:
    return z
  return 1.0 / (1.0 + np.exp(-z))


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def reference_lm(params, prev, act, tokens_BxT, h_BxH, output="loose_ends", max_norm=0.0,
                 out_HxV=None, reset_token=None, standardize=False, node_mask=None,
                 return_states=False):
  """Logits [B, T, V] and final state of the ENAS LM, one node and one step at a time.

  `out_HxV` replaces the tied softmax (emb.T); `reset_token` zeroes h before reading that token;
  `standardize` gives the softmax each row of h at zero mean and unit variance; `node_mask`
  [B, H] multiplies h_{t-1} and each node's input before its matrix (not the highway's carried
  term); `return_states` adds the cell outputs [T, B, H].
  """
  emb = np.asarray(params["embedding"], np.float64)
  out = emb.T if out_HxV is None else np.asarray(out_HxV, np.float64)
  cell = {k: (np.asarray(v, np.float64) if not isinstance(v, dict) else
              {kk: np.asarray(vv, np.float64) for kk, vv in v.items()})
          for k, v in params["cell"].items()}
  bias = np.asarray(params["softmax_bias"], np.float64)
  n = len(act)
  hid = h_BxH.shape[1]
  used = set(int(p) for p in prev[1:])
  outs = {"loose_ends": [k for k in range(n) if k not in used], "all_nodes": list(range(n)),
          "nodes_after_first": list(range(1, n))}[output]
  mask = np.ones_like(h_BxH) if node_mask is None else np.asarray(node_mask, np.float64)
  states = []
  h = np.asarray(h_BxH, np.float64)
  logits = []
  for t in range(tokens_BxT.shape[1]):
    if reset_token is not None:
      h = np.where((tokens_BxT[:, t] == reset_token)[:, None], 0.0, h)
    x = emb[tokens_BxT[:, t]]
    nodes = []
    z = x @ cell["node0"]["w_x"] + (h * mask) @ cell["node0"]["w_h"]
    c = _sigmoid(z[:, :hid])
    nodes.append(c * _act(act[0], z[:, hid:]) + (1 - c) * h)
    for k in range(1, n):
      inp = nodes[prev[k]]
      z = (inp * mask) @ cell[f"node{k}_prev{prev[k]}"]
      c = _sigmoid(z[:, :hid])
      nodes.append(c * _act(act[k], z[:, hid:]) + (1 - c) * inp)
    h = sum(nodes[k] for k in outs) / len(outs)
    if max_norm > 0:
      norms = np.linalg.norm(h, axis=1, keepdims=True)
      h = np.where(norms > max_norm, h * max_norm / norms, h)
    h_out = h
    states.append(h)
    if standardize:
      c = h - h.mean(axis=1, keepdims=True)
      h_out = c / np.sqrt(np.mean(c * c, axis=1, keepdims=True) + 1e-6)
    logits.append(h_out @ out + bias)
  if return_states:
    return np.stack(logits, axis=1), h, np.stack(states)
  return np.stack(logits, axis=1), h
