"""The micro normal and reduction cells as text lines and as a Graphviz picture."""
from __future__ import annotations

import numpy as np

from enas_jax.io import dot
from enas_jax.spaces.micro.arch import CELLS, OPS, MicroArch, loose_ends

MICRO_COLOURS = {"sep3x3": "#fdb462", "sep5x5": "#80b1d3", "avgpool3x3": "#b3de69",
                 "maxpool3x3": "#8dd3c7", "identity": "#d9d9d9"}


def describe(arch: MicroArch) -> list[str]:
  """Per cell: its inputs, one line per node (two operations added), its output."""
  lines = []
  for name, cell in zip(CELLS, arch):
    cell = np.asarray(cell)
    lines.append(f"{name} cell (inputs: node 0 = c[k-2], node 1 = c[k-1])")
    for b, (in1, op1, in2, op2) in enumerate(cell.tolist()):
      lines.append(f"  node {b + 2}: {OPS[op1]}(node {in1}) + {OPS[op2]}(node {in2})")
    ends = np.nonzero(loose_ends(cell))[0]
    lines.append(f"  output: concat of nodes {', '.join(map(str, ends))}")
  return lines


def _cell(cell: np.ndarray, name: str) -> list[str]:
  """A cluster: inputs c[k-2], c[k-1]; per node two op boxes into an add; loose ends concat."""
  p = name[0]
  lines = [f"subgraph cluster_{name} {{", f'  label="{name} cell";',
           f'  {p}0 [label="c[k-2]", {dot.INPUT_STYLE}];',
           f'  {p}1 [label="c[k-1]", {dot.INPUT_STYLE}];']
  for b, (in1, op1, in2, op2) in enumerate(cell.tolist()):
    node = b + 2
    for side, (src, op) in enumerate(((in1, op1), (in2, op2))):
      op_name = OPS[op]
      lines.append(f'  {p}{node}_op{side} [label="{op_name}", shape=box, '
                   f'fillcolor="{MICRO_COLOURS[op_name]}"];')
      lines.append(f"  {p}{src} -> {p}{node}_op{side};")
      lines.append(f"  {p}{node}_op{side} -> {p}{node};")
    lines.append(f'  {p}{node} [label="{node}: add", shape=circle, fillcolor="#ffffff"];')
  lines.append(f'  {p}out [label="c[k] (concat)", {dot.OUTPUT_STYLE}];')
  lines += [f"  {p}{int(j)} -> {p}out;" for j in np.nonzero(loose_ends(cell))[0]]
  lines.append("}")
  return lines


def to_dot(arch: MicroArch, title: str | None = None) -> str:
  """The normal and the reduction cell side by side, each as its own cluster."""
  body = []
  for name, cell in zip(CELLS, arch):
    body += _cell(np.asarray(cell), name)
  return dot.graph("micro_cells", body, title)
