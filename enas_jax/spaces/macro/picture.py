"""The macro network as text lines and as a Graphviz picture."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from enas_jax.io import dot
from enas_jax.spaces.macro.arch import OPS, MacroArch, source_name
from enas_jax.spaces.macro.network import reduction_layers

MACRO_COLOURS = {"conv3x3": "#fb8072", "sep3x3": "#fdb462", "conv5x5": "#bc80bd",
                 "sep5x5": "#80b1d3", "avgpool3x3": "#b3de69", "maxpool3x3": "#8dd3c7"}


def describe(arch: MacroArch) -> list[str]:
  """One line per layer: its operation and what it also adds (the stem, earlier layers)."""
  ops, skip = np.asarray(arch.op_L), np.asarray(arch.skip_LxL)
  lines = []
  for k, op in enumerate(ops):
    adds = [source_name(int(j)) for j in np.nonzero(skip[k, :k])[0]]
    names = [f"layer {a}" if isinstance(a, int) else a for a in adds]
    extra = f" + {', '.join(names)}" if names else ""
    lines.append(f"layer {k}: {OPS[int(op)]}{extra}")
  return lines


def to_dot(arch: MacroArch, title: str | None = None,
           reductions: Sequence[int] | None = None) -> str:
  """The stem, one node per layer coloured per operation, solid edges to the next layer, dashed
  edges for skip connections; `reductions`: layers after which the network halves the spatial
  size (drawn as "reduce" nodes; default: the authors' positions)."""
  if reductions is None:
    reductions = reduction_layers(int(np.shape(arch.op_L)[0]))
  ops = [OPS[int(o)] for o in np.asarray(arch.op_L)]
  skip = np.asarray(arch.skip_LxL)
  body = [f'stem [label="image + stem", {dot.INPUT_STYLE}];']
  prev = "stem"
  for k, op in enumerate(ops):
    body.append(f'l{k} [label="{k}: {op}", shape=box, fillcolor="{MACRO_COLOURS[op]}"];')
    body.append(f"{prev} -> l{k};")
    prev = f"l{k}"
    for j in np.nonzero(skip[k, :k])[0]:  # source 0: the stem; j: layer j - 1
      source = "stem" if j == 0 else f"l{int(j) - 1}"
      body.append(f'{source} -> l{k} [style=dashed, color="#555555"];')
    if k in set(reductions):
      body.append(f'r{k} [label="reduce", shape=invtrapezium, fillcolor="#ffffff"];')
      body.append(f"{prev} -> r{k};")
      prev = f"r{k}"
  body += [f'out [label="pool + softmax", {dot.OUTPUT_STYLE}];', f"{prev} -> out;"]
  return dot.graph("macro_network", body, title)
