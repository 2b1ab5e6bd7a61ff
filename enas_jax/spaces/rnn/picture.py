"""The recurrent cell as text lines and as a Graphviz picture."""
from __future__ import annotations

import numpy as np

from enas_jax.io import dot
from enas_jax.spaces.rnn.arch import ACTIVATIONS, RNNArch, loose_ends_mask

ACTIVATION_COLOURS = {"tanh": "#8dd3c7", "relu": "#fb8072", "identity": "#d9d9d9",
                      "sigmoid": "#80b1d3"}


def describe(arch: RNNArch) -> list[str]:
  """One line per node, then the cell output (the mean of the loose ends)."""
  prev, act = np.asarray(arch.prev_N), np.asarray(arch.act_N)
  lines = [f"node 0: {ACTIVATIONS[int(act[0])]}(x[t], h[t-1])"]
  lines += [f"node {k}: {ACTIVATIONS[int(act[k])]}(node {int(prev[k])})"
            for k in range(1, len(act))]
  ends = np.nonzero(np.asarray(loose_ends_mask(prev)))[0]
  lines.append(f"h[t] = mean of nodes {', '.join(map(str, ends))}")
  return lines


def to_dot(arch: RNNArch, title: str | None = None) -> str:
  """x[t] and h[t-1] into node 0, each node k from its chosen node, the loose ends averaged into
  h[t]. Node labels "k: activation", coloured per activation."""
  prev = [int(p) for p in np.asarray(arch.prev_N)]
  act = [ACTIVATIONS[int(a)] for a in np.asarray(arch.act_N)]
  n = len(act)
  body = [f'x [label="x[t]", {dot.INPUT_STYLE}];', f'h_prev [label="h[t-1]", {dot.INPUT_STYLE}];']
  for k in range(n):
    body.append(f'n{k} [label="{k}: {act[k]}", shape=ellipse, '
                f'fillcolor="{ACTIVATION_COLOURS[act[k]]}"];')
  body += ["x -> n0;", "h_prev -> n0;"]
  body += [f"n{prev[k]} -> n{k};" for k in range(1, n)]
  read = set(prev[1:])
  body.append('avg [label="avg", shape=circle, fillcolor="#ffffff"];')
  body += [f"n{k} -> avg;" for k in range(n) if k not in read]
  body += [f'h [label="h[t]", {dot.OUTPUT_STYLE}];', "avg -> h;"]
  return dot.graph("rnn_cell", body, title)
