"""Graphviz DOT sources of every architecture kind: a recurrent cell, a macro network, the micro
normal and reduction cells.

Pure functions of the architecture (numpy arrays or our NamedTuples) returning DOT text, so the
pictures can be checked without Graphviz: nodes are coloured per operation or activation
(`ACTIVATION_COLOURS`, `MACRO_COLOURS`, `MICRO_COLOURS`), inputs are grey boxes, outputs are
double-bordered boxes. `render.write_picture` turns the text into PNG and SVG.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from enas_jax.spaces.macro.arch import OPS as MACRO_OPS
from enas_jax.spaces.macro.arch import MacroArch
from enas_jax.spaces.macro.network import reduction_layers
from enas_jax.spaces.micro.arch import CELLS, MicroArch, loose_ends
from enas_jax.spaces.micro.arch import OPS as MICRO_OPS
from enas_jax.spaces.rnn.arch import ACTIVATIONS, RNNArch

ACTIVATION_COLOURS = {"tanh": "#8dd3c7", "relu": "#fb8072", "identity": "#d9d9d9",
                      "sigmoid": "#80b1d3"}
MACRO_COLOURS = {"conv3x3": "#fb8072", "sep3x3": "#fdb462", "conv5x5": "#bc80bd",
                 "sep5x5": "#80b1d3", "avgpool3x3": "#b3de69", "maxpool3x3": "#8dd3c7"}
MICRO_COLOURS = {"sep3x3": "#fdb462", "sep5x5": "#80b1d3", "avgpool3x3": "#b3de69",
                 "maxpool3x3": "#8dd3c7", "identity": "#d9d9d9"}
_INPUT = 'shape=box, style="rounded,filled", fillcolor="#eeeeee"'
_OUTPUT = 'shape=box, peripheries=2, style="rounded,filled", fillcolor="#ffffb3"'
_HEADER = ('  rankdir=TB;\n  fontname="Helvetica";\n  node [fontname="Helvetica", style=filled];\n'
           '  edge [fontname="Helvetica"];\n')


def _quote(text: str) -> str:
  return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _graph(name: str, body: list[str], title: str | None) -> str:
  label = f"  label={_quote(title)};\n  labelloc=t;\n" if title else ""
  return f"digraph {name} {{\n{_HEADER}{label}" + "".join(f"  {line}\n" for line in body) + "}\n"


def rnn_dot(arch: RNNArch, title: str | None = None) -> str:
  """The recurrent cell: x[t] and h[t-1] into node 0, each node k from its chosen node, the loose
  ends averaged into h[t]. Node labels "k: activation", coloured per activation."""
  prev = [int(p) for p in np.asarray(arch.prev_N)]
  act = [ACTIVATIONS[int(a)] for a in np.asarray(arch.act_N)]
  n = len(act)
  body = [f'x [label="x[t]", {_INPUT}];', f'h_prev [label="h[t-1]", {_INPUT}];']
  for k in range(n):
    body.append(f'n{k} [label="{k}: {act[k]}", shape=ellipse, '
                f'fillcolor="{ACTIVATION_COLOURS[act[k]]}"];')
  body += ["x -> n0;", "h_prev -> n0;"]
  body += [f"n{prev[k]} -> n{k};" for k in range(1, n)]
  read = set(prev[1:])
  body.append('avg [label="avg", shape=circle, fillcolor="#ffffff"];')
  body += [f"n{k} -> avg;" for k in range(n) if k not in read]
  body += [f'h [label="h[t]", {_OUTPUT}];', "avg -> h;"]
  return _graph("rnn_cell", body, title)


def macro_dot(arch: MacroArch, reductions: Sequence[int] | None = None,
              title: str | None = None) -> str:
  """The macro network: the stem, one node per layer coloured per operation, solid edges to the
  next layer, dashed edges for skip connections; `reductions`: layers after which the network
  halves the spatial size (drawn as "reduce" nodes; default: the authors' positions)."""
  if reductions is None:
    reductions = reduction_layers(int(np.shape(arch.op_L)[0]))
  ops = [MACRO_OPS[int(o)] for o in np.asarray(arch.op_L)]
  skip = np.asarray(arch.skip_LxL)
  body = [f'stem [label="image + stem", {_INPUT}];']
  prev = "stem"
  for k, op in enumerate(ops):
    body.append(f'l{k} [label="{k}: {op}", shape=box, fillcolor="{MACRO_COLOURS[op]}"];')
    body.append(f"{prev} -> l{k};")
    prev = f"l{k}"
    for j in np.nonzero(skip[k, :k])[0]:
      body.append(f'l{int(j)} -> l{k} [style=dashed, color="#555555"];')
    if k in set(reductions):
      body.append(f'r{k} [label="reduce", shape=invtrapezium, fillcolor="#ffffff"];')
      body.append(f"{prev} -> r{k};")
      prev = f"r{k}"
  body += [f'out [label="pool + softmax", {_OUTPUT}];', f"{prev} -> out;"]
  return _graph("macro_network", body, title)


def _micro_cell(cell: np.ndarray, name: str) -> list[str]:
  """A cluster: inputs c[k-2], c[k-1]; per node two op boxes into an add; loose ends concat."""
  p = name[0]
  lines = [f"subgraph cluster_{name} {{", f'  label="{name} cell";',
           f'  {p}0 [label="c[k-2]", {_INPUT}];', f'  {p}1 [label="c[k-1]", {_INPUT}];']
  for b, (in1, op1, in2, op2) in enumerate(cell.tolist()):
    node = b + 2
    for side, (src, op) in enumerate(((in1, op1), (in2, op2))):
      op_name = MICRO_OPS[op]
      lines.append(f'  {p}{node}_op{side} [label="{op_name}", shape=box, '
                   f'fillcolor="{MICRO_COLOURS[op_name]}"];')
      lines.append(f"  {p}{src} -> {p}{node}_op{side};")
      lines.append(f"  {p}{node}_op{side} -> {p}{node};")
    lines.append(f'  {p}{node} [label="{node}: add", shape=circle, fillcolor="#ffffff"];')
  lines.append(f'  {p}out [label="c[k] (concat)", {_OUTPUT}];')
  lines += [f"  {p}{int(j)} -> {p}out;" for j in np.nonzero(loose_ends(cell))[0]]
  lines.append("}")
  return lines


def micro_dot(arch: MicroArch, title: str | None = None) -> str:
  """The normal and the reduction cell side by side, each as its own cluster."""
  body = []
  for name, cell in zip(CELLS, arch):
    body += _micro_cell(np.asarray(cell), name)
  return _graph("micro_cells", body, title)


DOT_BUILDERS = {"rnn": rnn_dot, "macro": macro_dot, "micro": micro_dot}


def arch_dot(space: str, arch: RNNArch | MacroArch | MicroArch, title: str | None = None) -> str:
  """The DOT source of `arch` of search space `space` ("rnn", "macro" or "micro")."""
  builder = DOT_BUILDERS[space]
  return builder(arch, title=title)
