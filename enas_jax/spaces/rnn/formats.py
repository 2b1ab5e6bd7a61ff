"""Recurrent-cell architecture formats: our JSON, the authors' string, ENAS-pytorch's dag.json.

- Our JSON (`to_json`/`from_json`): {"space": "rnn", "num_nodes": N, "nodes": [{"node": k,
  "prev": p, "activation": name}, ...]} with node 0's prev `null` (it reads x_t and h_{t-1}).
- The authors' TensorFlow string (`to_authors_string`/`from_authors_string`): node 0's
  activation, then a (prev, activation) pair per node 1..N-1; activation ids 0 tanh, 1 ReLU,
  2 identity, 3 sigmoid (our own ids), 2N - 1 tokens (23 for 12 nodes).
- ENAS-pytorch's dag.json (`from_dag_json`, and `to_dag_json` for round trips): a dict from a
  node id (-1 and -2 being x_t and h_{t-1}) to a list of [child id, child's activation name];
  loose ends point to an "avg" node N, which points to "h[t]" (N + 1).
- The corrected ENAS language-model code (google-research `enas_lm`, `--fixed_arc`;
  `from_enas_lm_string`/`to_enas_lm_string`): a (prev, activation) pair per node after node 0,
  2(N - 1) tokens; node 0 is a fixed tanh highway over [x_t, h_{t-1}]; activation ids 0 tanh,
  1 ReLU, 2 sigmoid, 3 identity (sigmoid and identity swapped against the authors' string); the
  cell output is the mean of nodes 1..N-1 (`output="nodes_after_first"`, not the loose ends).
  Because the output rule belongs to the format, loading gives an `ArchSpec` (cell + output).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

import numpy as np

from enas_jax.io.configuration import has_kind
from enas_jax.io.errors import UserError
from enas_jax.spaces.arch_file import integer, require_path_if_named
from enas_jax.spaces.rnn.arch import ACTIVATIONS, RNNArch, loose_ends_mask, validate

SPACE_NAME = "rnn"
# enas_lm activation id -> ours, and back.
_ENAS_LM_TO_OURS = {0: 0, 1: 1, 2: 3, 3: 2}
_OURS_TO_ENAS_LM = {v: k for k, v in _ENAS_LM_TO_OURS.items()}
ENAS_LM_OUTPUT = "nodes_after_first"
ENAS_LM_PREFIX = "enas_lm:"
# ENAS-pytorch's activation names.
_DAG_NAMES = {"tanh": 0, "ReLU": 1, "identity": 2, "sigmoid": 3}
_DAG_NAMES_INV = {v: k for k, v in _DAG_NAMES.items()}


def to_json(arch: RNNArch) -> dict[str, Any]:
  validate(arch)
  prev = np.asarray(arch.prev_N)
  act = np.asarray(arch.act_N)
  nodes = [{"node": k, "prev": None if k == 0 else int(prev[k]),
            "activation": ACTIVATIONS[int(act[k])]} for k in range(len(act))]
  return {"space": SPACE_NAME, "num_nodes": len(act), "nodes": nodes}


def from_json(data: Mapping[str, Any], where: str = "architecture JSON") -> RNNArch:
  """Reads our JSON form; `where` names the source in errors."""
  if not isinstance(data, Mapping):
    raise UserError(f"The {where} must be a JSON object with keys space, num_nodes, nodes.")
  space = data.get("space")
  if space != SPACE_NAME:
    raise UserError(
        f"The {where} is an architecture of the {space!r} search space, but the recurrent-cell "
        f"space {SPACE_NAME!r} was expected. Give an architecture found by a recurrent search.")
  nodes = data.get("nodes")
  if not isinstance(nodes, list) or not nodes:
    raise UserError(f"The {where} needs a non-empty list under key 'nodes'.")
  n = data.get("num_nodes", len(nodes))
  if n != len(nodes):
    raise UserError(f"The {where} says num_nodes={n} but lists {len(nodes)} nodes.")
  prev, act = [], []
  for k, node in enumerate(nodes):
    if not isinstance(node, Mapping) or node.get("node", k) != k:
      raise UserError(f"In the {where}, entry {k} of 'nodes' must be an object with node={k}.")
    name = node.get("activation")
    if name not in ACTIVATIONS:
      raise UserError(f"In the {where}, node {k} has activation {name!r}; use one of "
                      f"{', '.join(ACTIVATIONS)}.")
    p = node.get("prev")
    if k == 0:
      if p is not None:
        raise UserError(f"In the {where}, node 0 reads x_t and h_(t-1): its 'prev' must be null.")
      p = -1
    elif not has_kind(p, int):
      raise UserError(f"In the {where}, node {k} has prev {p!r}; it must be an integer node id.")
    prev.append(p)
    act.append(ACTIVATIONS.index(name))
  arch = RNNArch(np.asarray(prev, np.int32), np.asarray(act, np.int32))
  validate(arch, where=where)
  return arch


def to_authors_string(arch: RNNArch) -> str:
  validate(arch)
  prev = np.asarray(arch.prev_N)
  act = np.asarray(arch.act_N)
  tokens = [int(act[0])]
  for k in range(1, len(act)):
    tokens += [int(prev[k]), int(act[k])]
  return " ".join(str(t) for t in tokens)


def from_authors_string(text: str, where: str = "architecture string") -> RNNArch:
  """Parses the authors' string (spaces or commas between integer tokens)."""
  values = _int_tokens(text, where)
  if len(values) % 2 != 1:
    raise UserError(
        f"The {where} {text!r} has {len(values)} tokens; a recurrent cell of N nodes needs "
        f"2N - 1 (node 0's activation, then a prev and an activation per node), e.g. 23 for 12.")
  n = (len(values) + 1) // 2
  prev = [-1] + values[1::2]
  act = [values[0]] + values[2::2]
  for k in range(n):
    if not 0 <= act[k] < len(ACTIVATIONS):
      pos = 0 if k == 0 else 2 * k
      raise UserError(f"Token {pos} of the {where} (node {k}'s activation) is {act[k]}; "
                      f"activation ids are 0 tanh, 1 ReLU, 2 identity, 3 sigmoid.")
  for k in range(1, n):
    if not 0 <= prev[k] < k:
      raise UserError(f"Token {2 * k - 1} of the {where} (node {k}'s prev) is {prev[k]}; node "
                      f"{k} may only read nodes 0..{k - 1}.")
  return RNNArch(np.asarray(prev, np.int32), np.asarray(act, np.int32))


def to_dag_json(arch: RNNArch) -> dict[str, list[list[Any]]]:
  validate(arch)
  prev = np.asarray(arch.prev_N)
  act = np.asarray(arch.act_N)
  n = len(act)
  dag: dict[str, list[list[Any]]] = {"-1": [[0, _DAG_NAMES_INV[int(act[0])]]],
                                     "-2": [[0, _DAG_NAMES_INV[int(act[0])]]]}
  for k in range(1, n):
    dag.setdefault(str(int(prev[k])), []).append([k, _DAG_NAMES_INV[int(act[k])]])
  for k in np.nonzero(loose_ends_mask(np.asarray(prev)))[0]:
    dag.setdefault(str(int(k)), []).append([n, "avg"])
  dag[str(n)] = [[n + 1, "h[t]"]]
  return dag


def from_dag_json(dag: Mapping[str, Any], where: str = "dag.json") -> RNNArch:
  """Reads ENAS-pytorch's dag.json; the loose ends it lists must be the cell's loose ends."""
  if not isinstance(dag, Mapping):
    raise UserError(f"The {where} must be a JSON object from node id to [child, activation] lists.")
  edges: dict[int, tuple[int, str]] = {}
  avg_inputs: set[int] = set()
  avg_id = None
  for key, children in dag.items():
    try:
      parent = int(key)
    except (TypeError, ValueError):
      raise UserError(f"Key {key!r} of the {where} is not an integer node id.") from None
    if not isinstance(children, list):
      raise UserError(f"Key {key!r} of the {where} must map to a list of [child, activation].")
    for child in children:
      if not (isinstance(child, list) and len(child) == 2 and isinstance(child[0], int)):
        raise UserError(f"Under key {key!r} of the {where}, {child!r} is not [child id, name].")
      cid, name = child
      if name == "avg":
        avg_inputs.add(parent)
        avg_id = cid
        continue
      if name == "h[t]":
        continue
      if name not in _DAG_NAMES:
        raise UserError(f"Under key {key!r} of the {where}, activation {name!r} is unknown; "
                        f"ENAS-pytorch's names are {', '.join(_DAG_NAMES)}.")
      if parent in (-1, -2):
        if cid != 0:
          raise UserError(f"Under key {key!r} of the {where}, the inputs x_t and h_(t-1) must "
                          f"feed node 0, not node {cid}.")
        edges[0] = (-1, name)
        continue
      if cid in edges and cid != 0:
        raise UserError(f"In the {where}, node {cid} has two parents ({edges[cid][0]} and "
                        f"{parent}); each ENAS node reads exactly one earlier node.")
      edges[cid] = (parent, name)
  if 0 not in edges:
    raise UserError(f"The {where} has no entry \"-1\" or \"-2\" feeding node 0.")
  n = max(edges) + 1
  missing = [k for k in range(n) if k not in edges]
  if missing:
    raise UserError(f"The {where} has no parent for node(s) {missing}.")
  if avg_id is not None and avg_id != n:
    raise UserError(f"In the {where}, the avg node has id {avg_id}; with {n} nodes it must be {n}.")
  prev = [edges[k][0] for k in range(n)]
  act = [_DAG_NAMES[edges[k][1]] for k in range(n)]
  arch = RNNArch(np.asarray(prev, np.int32), np.asarray(act, np.int32))
  validate(arch, where=where)
  loose = set(int(i) for i in np.nonzero(loose_ends_mask(np.asarray(arch.prev_N)))[0])
  if avg_inputs and avg_inputs != loose:
    raise UserError(
        f"In the {where}, the nodes averaged into the output are {sorted(avg_inputs)}, but the "
        f"cell's loose ends are {sorted(loose)}; ENAS averages exactly the loose ends.")
  return arch


def _int_tokens(text: str, where: str) -> list[int]:
  tokens = text.replace(",", " ").replace("[", " ").replace("]", " ").split()
  values = []
  for i, tok in enumerate(tokens):
    try:
      values.append(integer(tok))
    except ValueError:
      raise UserError(f"Token {i} of the {where} is {tok!r}, which is not an integer.") from None
  return values


def from_enas_lm_string(text: str, where: str = "enas_lm architecture string") -> RNNArch:
  """Parses the corrected ENAS LM code's `fixed_arc` (see the module docstring)."""
  values = _int_tokens(text, where)
  if not values or len(values) % 2:
    raise UserError(f"The {where} {text!r} has {len(values)} tokens; the enas_lm format needs a "
                    f"(prev, activation) pair per node after node 0, an even number, e.g. 16 "
                    f"for 9 nodes.")
  prev, act = [-1], [0]  # node 0: tanh highway over [x_t, h_{t-1}]
  for i in range(len(values) // 2):
    node, p, a = i + 1, values[2 * i], values[2 * i + 1]
    if not 0 <= p < node:
      raise UserError(f"Token {2 * i} of the {where} (node {node}'s prev) is {p}; node {node} "
                      f"may only read nodes 0..{node - 1}.")
    if a not in _ENAS_LM_TO_OURS:
      raise UserError(f"Token {2 * i + 1} of the {where} (node {node}'s activation) is {a}; "
                      f"enas_lm activation ids are 0 tanh, 1 ReLU, 2 sigmoid, 3 identity.")
    prev.append(p)
    act.append(_ENAS_LM_TO_OURS[a])
  return RNNArch(np.asarray(prev, np.int32), np.asarray(act, np.int32))


def to_enas_lm_string(arch: RNNArch) -> str:
  validate(arch)
  prev, act = np.asarray(arch.prev_N), np.asarray(arch.act_N)
  if int(act[0]) != 0:
    raise UserError("The enas_lm format fixes node 0 to tanh; this cell's node 0 is "
                    f"{ACTIVATIONS[int(act[0])]}.")
  return " ".join(f"{int(prev[k])} {_OURS_TO_ENAS_LM[int(act[k])]}" for k in range(1, len(act)))


@dataclasses.dataclass(frozen=True)
class ArchSpec:
  """A loaded architecture and, when its format fixes it, the cell-output rule."""

  arch: RNNArch
  output: str | None = None  # None: the model config decides
  source: str = ""  # what it was read from, for messages


def load_arch_spec(spec: str, num_nodes: int | None = None) -> ArchSpec:
  """Reads an architecture from any supported source.

  `spec` is one of: a search workdir (its best_arch.json), a JSON file (ours or dag.json), a
  file or string in the authors' format, or `enas_lm:<pairs>` (or a file holding that).
  """
  if os.path.isdir(spec):
    best = os.path.join(spec, "best_arch.json")
    if not os.path.isfile(best):
      raise UserError(f"The directory {spec!r} is not a finished search workdir: it has no "
                      f"best_arch.json. Point --config.arch at a search's --workdir after the "
                      f"search ends, or at an architecture file or string.")
    return ArchSpec(load_arch(best, num_nodes), None, best)
  require_path_if_named(spec, "the authors' recurrent string")
  text = spec
  if os.path.isfile(spec):
    text = _read_text(spec).strip()
  if text.startswith(ENAS_LM_PREFIX):
    arch = from_enas_lm_string(text[len(ENAS_LM_PREFIX):], where=f"enas_lm string {spec!r}")
    validate(arch, num_nodes=num_nodes)
    return ArchSpec(arch, ENAS_LM_OUTPUT, spec)
  if not text.startswith("{") and len(_int_tokens(text, f"architecture {spec!r}")) % 2 == 0:
    raise UserError(
        f"The architecture {spec!r} has an even number of integers. The authors' format has "
        f"2N - 1 (node 0's activation first); the corrected ENAS LM code's `fixed_arc` has "
        f"2(N - 1) with another activation numbering, so it must be marked: write "
        f"'{ENAS_LM_PREFIX}{text}'.")
  return ArchSpec(load_arch(spec, num_nodes), None, spec)


def _read_text(path: str) -> str:
  """An architecture file's text, or a UserError naming it (unreadable, or not UTF-8)."""
  try:
    with open(path, encoding="utf-8") as f:
      return f.read()
  except OSError as err:
    raise UserError(f"Cannot read the architecture file {path}: {err.strerror}.") from None
  except UnicodeDecodeError as err:
    raise UserError(f"The architecture file {path} is not text (byte {err.start} cannot be "
                    f"read as UTF-8): give our JSON (a search's best_arch.json), a dag.json or "
                    f"the authors' string of integers.") from None


def load_arch(spec: str, num_nodes: int | None = None) -> RNNArch:
  """Reads an architecture from a file path (our JSON or dag.json) or an authors' string."""
  if os.path.exists(spec):
    stripped = _read_text(spec).strip()
    if stripped.startswith("{"):
      try:
        data = json.loads(stripped)
      except json.JSONDecodeError as err:
        raise UserError(f"The architecture file {spec} is not valid JSON (line {err.lineno}, "
                        f"column {err.colno}: {err.msg}).") from None
      if isinstance(data, Mapping) and ("nodes" in data or "space" in data):
        arch = from_json(data, where=f"architecture file {spec}")
      else:
        arch = from_dag_json(data, where=f"dag.json file {spec}")
    else:
      arch = from_authors_string(stripped, where=f"architecture string in {spec}")
  else:
    if not any(ch.isdigit() for ch in spec):
      raise UserError(f"The architecture {spec!r} is neither an existing file nor an authors' "
                      f"string of integers. Give a path to a .json file or a string like "
                      f"'0 0 1 1 2'.")
    arch = from_authors_string(spec)
  validate(arch, num_nodes=num_nodes)
  return arch
