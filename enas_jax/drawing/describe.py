"""Architectures as short text, one line per node or layer, for terminals and logs."""
from __future__ import annotations

from typing import Any

import numpy as np

from enas_jax.spaces.macro.arch import OPS as MACRO_OPS
from enas_jax.spaces.micro.arch import CELLS, loose_ends
from enas_jax.spaces.micro.arch import OPS as MICRO_OPS
from enas_jax.spaces.rnn.arch import ACTIVATIONS, loose_ends_mask


def rnn_lines(arch: Any) -> list[str]:
  prev, act = np.asarray(arch.prev_N), np.asarray(arch.act_N)
  lines = [f"node 0: {ACTIVATIONS[int(act[0])]}(x[t], h[t-1])"]
  lines += [f"node {k}: {ACTIVATIONS[int(act[k])]}(node {int(prev[k])})"
            for k in range(1, len(act))]
  ends = np.nonzero(np.asarray(loose_ends_mask(prev)))[0]
  lines.append(f"h[t] = mean of nodes {', '.join(map(str, ends))}")
  return lines


def macro_lines(arch: Any) -> list[str]:
  ops, skip = np.asarray(arch.op_L), np.asarray(arch.skip_LxL)
  lines = []
  for k, op in enumerate(ops):
    adds = np.nonzero(skip[k, :k])[0]
    extra = f" + layers {', '.join(map(str, adds))}" if len(adds) else ""
    lines.append(f"layer {k}: {MACRO_OPS[int(op)]}{extra}")
  return lines


def micro_lines(arch: Any) -> list[str]:
  lines = []
  for name, cell in zip(CELLS, arch):
    cell = np.asarray(cell)
    lines.append(f"{name} cell (inputs: node 0 = c[k-2], node 1 = c[k-1])")
    for b, (in1, op1, in2, op2) in enumerate(cell.tolist()):
      lines.append(f"  node {b + 2}: {MICRO_OPS[op1]}(node {in1}) + {MICRO_OPS[op2]}(node {in2})")
    ends = np.nonzero(loose_ends(cell))[0]
    lines.append(f"  output: concat of nodes {', '.join(map(str, ends))}")
  return lines


LINES = {"rnn": rnn_lines, "macro": macro_lines, "micro": micro_lines}


def describe(space: str, arch: Any) -> str:
  return "\n".join(LINES[space](arch))
