"""Architectures of the ENAS macro search space (a whole convolutional network).

A network of L layers is two int32 arrays:
- `op_L[k]`: layer k's operation, an index into `OPS` (the authors' ids, so their strings map
  directly);
- `skip_LxL[k, j]` (j < k): 1 if layer k also adds source j, else 0; the upper triangle and the
  diagonal are always 0. The sources are the authors' code's `prev_layers`: source 0 is the
  stem's output, source j >= 1 layer j-1's; so layer k can add the stem and layers 0..k-2 (its
  input, layer k-1, is never added twice).
Layer k reads layer k-1 (the image stem for k = 0). As traced arrays, the pair drives the
shared-weights forward pass (`lax.switch` over the operation) without recompiling.

The authors' string (`to_authors_string`/`from_authors_string`): for layer k (0-based), the
operation id followed by its k skip bits (bit j: source j), L + L(L-1)/2 tokens in all.
Our JSON names the sources: per layer `"adds": ["stem", 0, 3]` (layer numbers, or "stem").
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.io.errors import UserError
from enas_jax.spaces import arch_file
from enas_jax.spaces.decisions import Decision

SPACE_NAME = "macro"
# Operation ids, in the order of the authors' macro strings.
OPS: tuple[str, ...] = ("conv3x3", "sep3x3", "conv5x5", "sep5x5", "avgpool3x3", "maxpool3x3")
NUM_OPS = len(OPS)


class MacroArch(NamedTuple):
  """A macro network: `op_L` and the lower-triangular `skip_LxL`, both int32."""

  op_L: np.ndarray | jax.Array
  skip_LxL: np.ndarray | jax.Array

  @property
  def num_layers(self) -> int:
    return int(np.shape(self.op_L)[0])


def make_arch(ops: list[int], skips: list[list[int]]) -> MacroArch:
  """From plain lists: `skips[k]` holds layer k's k bits. Validated."""
  n = len(ops)
  skip = np.zeros((n, n), np.int32)
  for k, bits in enumerate(skips):
    skip[k, :len(bits)] = bits
  arch = MacroArch(np.asarray(ops, np.int32), skip)
  validate(arch)
  return arch


def validate(arch: MacroArch, num_layers: int | None = None, where: str = "architecture") -> None:
  """Raises a UserError naming the layer at fault if `arch` is not a valid macro network."""
  op = np.asarray(arch.op_L)
  skip = np.asarray(arch.skip_LxL)
  if op.ndim != 1 or op.shape[0] < 1 or skip.shape != (op.shape[0], op.shape[0]):
    raise UserError(f"The {where} must be an op array [L] and a skip matrix [L, L]; got shapes "
                    f"{op.shape} and {skip.shape}.")
  n = op.shape[0]
  if num_layers is not None and n != num_layers:
    raise UserError(f"The {where} has {n} layers but the search space has {num_layers} (field "
                    f"`model.num_layers`). Use an architecture with {num_layers} layers or change "
                    f"the field.")
  for k in range(n):
    if not 0 <= op[k] < NUM_OPS:
      raise UserError(f"In the {where}, layer {k} has operation id {op[k]}; ids are "
                      f"0..{NUM_OPS - 1} ({', '.join(OPS)}).")
    bad = [j for j in range(n) if skip[k, j] not in (0, 1) or (j >= k and skip[k, j])]
    if bad:
      raise UserError(f"In the {where}, layer {k} has skip entries {bad} that are not 0/1 bits to "
                      f"an earlier layer (a layer may only add layers 0..{k - 1}).")


def random_arch(key: jax.Array, num_layers: int, skip_rate: float = 0.5) -> MacroArch:
  """Samples uniformly over operations, each skip bit on with probability `skip_rate`.

  Works under `jit` and `vmap` (traced int32 arrays).
  """
  k_op, k_skip = jax.random.split(key)
  op_L = jax.random.randint(k_op, (num_layers,), 0, NUM_OPS, dtype=jnp.int32)
  lower_LxL = jnp.tril(jnp.ones((num_layers, num_layers), bool), k=-1)
  skip_LxL = (jax.random.bernoulli(k_skip, skip_rate, (num_layers, num_layers)) & lower_LxL)
  return MacroArch(op_L, skip_LxL.astype(jnp.int32))


def decisions(num_layers: int) -> tuple[Decision, ...]:
  """Per layer k: its operation, then k skip bits (one per earlier layer), the authors' order."""
  out: list[Decision] = []
  for k in range(num_layers):
    out.append(Decision(f"layer{k}.op", NUM_OPS, "op", k))
    out.extend(Decision(f"layer{k}.skip{j}", 2, "skip", k, target=j) for j in range(k))
  return tuple(out)


def _positions(num_layers: int) -> tuple[np.ndarray, np.ndarray]:
  """Static index maps: where each op sits in the decision list, and each (k, j) skip bit."""
  op_pos = np.zeros((num_layers,), np.int32)
  skip_pos = np.full((num_layers, num_layers), -1, np.int32)
  i = 0
  for k in range(num_layers):
    op_pos[k] = i
    i += 1
    for j in range(k):
      skip_pos[k, j] = i
      i += 1
  return op_pos, skip_pos


def num_decisions(num_layers: int) -> int:
  return num_layers + num_layers * (num_layers - 1) // 2


def from_decisions(values_D: jax.Array | np.ndarray) -> MacroArch:
  """The controller's decision values (in `decisions` order) -> the architecture (traceable)."""
  d = int(np.shape(values_D)[0])
  num_layers = int(round((np.sqrt(8 * d + 1) - 1) / 2))
  if num_decisions(num_layers) != d:
    raise ValueError(f"{d} decision values do not describe a macro network")
  op_pos, skip_pos = _positions(num_layers)
  xp = jnp if isinstance(values_D, jax.Array) else np
  values_D = xp.asarray(values_D).astype(xp.int32)
  padded = xp.concatenate([values_D, xp.zeros((1,), xp.int32)])  # index -1 -> the 0 pad
  return MacroArch(padded[op_pos], padded[skip_pos])


def to_decisions(arch: MacroArch) -> np.ndarray:
  """The inverse of `from_decisions` (host side)."""
  op = np.asarray(arch.op_L)
  skip = np.asarray(arch.skip_LxL)
  out = []
  for k in range(op.shape[0]):
    out.append(int(op[k]))
    out.extend(int(b) for b in skip[k, :k])
  return np.asarray(out, np.int32)


def to_authors_string(arch: MacroArch) -> str:
  validate(arch)
  return " ".join(str(v) for v in to_decisions(arch))


def from_authors_string(text: str, num_layers: int | None = None,
                        where: str = "macro architecture string") -> MacroArch:
  """Reads the authors' macro string (see the module docstring); errors name the token."""
  tokens = text.replace(",", " ").split()
  try:
    values = [arch_file.integer(t) for t in tokens]
  except ValueError:
    raise UserError(f"The {where} {text!r} must be whitespace-separated integers: for layer k, "
                    f"the operation id then k skip bits.") from None
  n = int(round((np.sqrt(8 * len(values) + 1) - 1) / 2))
  if not values or num_decisions(n) != len(values):
    raise UserError(f"The {where} has {len(values)} integers; a macro network of L layers has "
                    f"L + L(L-1)/2 (e.g. 78 for 12 layers, 300 for 24): for layer k, the "
                    f"operation id then k skip bits.")
  huge = next((v for v in values if abs(v) >= 2 ** 31), None)
  if huge is not None:  # was an OverflowError traceback from NumPy
    raise UserError(f"The {where} holds {huge}, not an operation id (0..{len(OPS) - 1}) or a "
                    f"skip bit (0 or 1).")
  arch = from_decisions(np.asarray(values, np.int32))
  validate(arch, num_layers, where)
  return arch


def source_name(j: int) -> str | int:
  """Source j as our JSON and the pictures name it: "stem" (j = 0) or layer j - 1."""
  return "stem" if j == 0 else j - 1


def to_json(arch: MacroArch) -> dict[str, Any]:
  validate(arch)
  op = np.asarray(arch.op_L)
  skip = np.asarray(arch.skip_LxL)
  layers = [{"layer": k, "op": OPS[int(op[k])],
             "adds": [source_name(j) for j in range(k) if skip[k, j]]}
            for k in range(op.shape[0])]
  return {"space": SPACE_NAME, "num_layers": int(op.shape[0]), "layers": layers}


def from_json(data: Mapping[str, Any], where: str = "architecture JSON") -> MacroArch:
  arch_file.check_space_field(data, SPACE_NAME, "a macro-space architecture", where)
  layers = data.get("layers")
  if not isinstance(layers, list) or not layers:
    raise UserError(f"The {where} needs a non-empty `layers` list of {{layer, op, adds}}.")
  if any(isinstance(layer, Mapping) and "skips" in layer for layer in layers):
    raise UserError(f"The {where} lists `skips` by layer number, the format written before the "
                    f"macro space followed the authors' skip connections (a layer adds the stem "
                    f"or layers up to two before it, named in `adds`): its network is not one of "
                    f"this space. Use its authors' string (the .txt file beside it) or search "
                    f"again.")
  ops, skips = [], []
  for k, layer in enumerate(layers):
    if not isinstance(layer, Mapping) or layer.get("op") not in OPS:
      raise UserError(f"In the {where}, layer {k} must be an object whose `op` is one of "
                      f"{', '.join(OPS)}; got {layer!r}.")
    bits, adds = [0] * k, layer.get("adds", [])
    if not isinstance(adds, list):  # a number was a TypeError traceback; a string, its letters
      raise UserError(f"In the {where}, layer {k}'s `adds` must be a list (of \"stem\" and "
                      f"layer numbers); got {adds!r}.")
    for name in adds:
      j = 0 if name == "stem" else (name + 1 if isinstance(name, int) else -1)
      if not 0 <= j < k:
        raise UserError(f"In the {where}, layer {k} adds {name!r}; it can add \"stem\" or "
                        f"the layers 0..{k - 2} (its input, layer {k - 1}, is added already).")
      bits[j] = 1
    ops.append(OPS.index(layer["op"]))
    skips.append(bits)
  return make_arch(ops, skips)


def load_arch(spec: str, num_layers: int | None = None) -> MacroArch:
  """A search workdir (its best_arch.json), a JSON file, or the authors' string."""
  return arch_file.load_arch(spec, "macro", num_layers, from_authors_string, from_json, validate)
