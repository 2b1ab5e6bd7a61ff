"""A NAS-Bench-201 cell as text lines and as a Graphviz picture."""
from __future__ import annotations

import numpy as np

from enas_jax.io import dot
from enas_jax.spaces.nasbench201.arch import EDGES, OPS, Cell201

COLOURS = {"skip_connect": "#d9d9d9", "nor_conv_1x1": "#80b1d3", "nor_conv_3x3": "#fdb462",
           "avg_pool_3x3": "#b3de69"}


def describe(arch: Cell201) -> list[str]:
  """One line per node: the sum of its incoming operations (`none` edges left out)."""
  ops = np.asarray(arch.ops_E).tolist()
  lines = ["node 0: the cell's input"]
  for node in (1, 2, 3):
    terms = [f"{OPS[op]}(node {src})" for (to, src), op in zip(EDGES, ops)
             if to == node and OPS[op] != "none"]
    label = "the cell's output" if node == 3 else f"node {node}"
    lines.append(f"{label} = " + (" + ".join(terms) if terms else "0 (every incoming edge is "
                                                                   "none)"))
  return lines


def to_dot(arch: Cell201, title: str | None = None) -> str:
  """Nodes 0..3 left to right; one labelled edge per operation other than `none`."""
  body = ["rankdir=LR;", f'n0 [label="0: input", {dot.INPUT_STYLE}];',
          'n1 [label="1", shape=circle, fillcolor="#ffffff"];',
          'n2 [label="2", shape=circle, fillcolor="#ffffff"];',
          f'n3 [label="3: output", {dot.OUTPUT_STYLE}];']
  for (to, src), op in zip(EDGES, np.asarray(arch.ops_E).tolist()):
    name = OPS[op]
    if name != "none":
      body.append(f'n{src} -> n{to} [label={dot.quote(name)}, color="{COLOURS[name]}", '
                  f'penwidth=2.5];')
  return dot.graph("nasbench201_cell", body, title)
