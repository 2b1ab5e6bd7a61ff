"""The recurrent cell as text lines and as a Graphviz picture."""
from __future__ import annotations

import numpy as np

from enas_jax.io import dot
from enas_jax.spaces.rnn.arch import ACTIVATIONS, RNNArch
from enas_jax.spaces.rnn.cell import output_weights

# `model.output` -> how the describing line says it.
OUTPUT_WORDS = {"loose_ends": "the loose ends", "all_nodes": "every node",
                "nodes_after_first": "every node after node 0, as the corrected ENAS LM code"}

ACTIVATION_COLOURS = {"tanh": "#8dd3c7", "relu": "#fb8072", "identity": "#d9d9d9",
                      "sigmoid": "#80b1d3"}


def averaged_nodes(arch: RNNArch, output: str = "loose_ends") -> list[int]:
  """The nodes whose mean is the cell output under `model.output` = `output` (the same rule as
  `cell.output_weights`, on the host)."""
  weights = output_weights(RNNArch(np.asarray(arch.prev_N), np.asarray(arch.act_N)), output)
  return [int(k) for k in np.nonzero(weights)[0]]


def describe(arch: RNNArch, output: str = "loose_ends") -> list[str]:
  """One line per node, then the cell output under `model.output` = `output`."""
  prev, act = np.asarray(arch.prev_N), np.asarray(arch.act_N)
  lines = [f"node 0: {ACTIVATIONS[int(act[0])]}(x[t], h[t-1])"]
  lines += [f"node {k}: {ACTIVATIONS[int(act[k])]}(node {int(prev[k])})"
            for k in range(1, len(act))]
  nodes = averaged_nodes(arch, output)
  lines.append(f"h[t] = mean of nodes {', '.join(map(str, nodes))}  ({OUTPUT_WORDS[output]})")
  return lines


def to_dot(arch: RNNArch, title: str | None = None, output: str = "loose_ends") -> str:
  """x[t] and h[t-1] into node 0, each node k from its chosen node, the averaged nodes (the
  loose ends, or the others `output` names) into h[t]. Node labels "k: activation", coloured
  per activation."""
  prev = [int(p) for p in np.asarray(arch.prev_N)]
  act = [ACTIVATIONS[int(a)] for a in np.asarray(arch.act_N)]
  n = len(act)
  body = [f'x [label="x[t]", {dot.INPUT_STYLE}];', f'h_prev [label="h[t-1]", {dot.INPUT_STYLE}];']
  for k in range(n):
    body.append(f'n{k} [label="{k}: {act[k]}", shape=ellipse, '
                f'fillcolor="{ACTIVATION_COLOURS[act[k]]}"];')
  body += ["x -> n0;", "h_prev -> n0;"]
  body += [f"n{prev[k]} -> n{k};" for k in range(1, n)]
  body.append('avg [label="avg", shape=circle, fillcolor="#ffffff"];')
  body += [f"n{k} -> avg;" for k in averaged_nodes(arch, output)]
  body += [f'h [label="h[t]", {dot.OUTPUT_STYLE}];', "avg -> h;"]
  return dot.graph("rnn_cell", body, title)
