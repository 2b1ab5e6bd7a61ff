"""The search-space interface: what the loops, the commands, the pictures and the formats need
from a space. One registry (`spaces/registry.py`) maps a space's name to its implementation.

An architecture is a pytree of int32 arrays (a NamedTuple), concrete on the host or traced under
`jit`: the same compiled step serves every architecture of the space.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping, Protocol, Sequence

import jax
import numpy as np

from enas_jax.spaces.decisions import Decision

Arch = Any  # a space's architecture: a NamedTuple of int32 arrays (host or traced)


class SearchSpace(Protocol):
  """A search space.

  Attributes:
    name: the config's `space` value.
    task: the task its networks solve: "language" (recurrent cells) or "images" (CNNs).
    model_config: the frozen dataclass of the config's `model` section.
    controller_fields: controller settings only this space uses (the others reject them).
  """

  name: str
  task: str
  model_config: type
  controller_fields: tuple[str, ...]

  def decisions(self, model_cfg: Any) -> tuple[Decision, ...]:
    """The controller's decision list."""

  def from_decisions(self, values_D: jax.Array) -> Arch:
    """Decision values (traced or not, in `decisions` order) -> the architecture."""

  def to_decisions(self, arch: Arch) -> np.ndarray:
    """The architecture -> decision values `from_decisions` maps back to it (int32, host)."""

  def random_arch(self, key: jax.Array, model_cfg: Any) -> Arch:
    """A uniformly sampled architecture (traceable)."""

  def validate(self, arch: Arch, model_cfg: Any | None = None, where: str = "architecture"
               ) -> None:
    """Raises a UserError naming the node or layer and field at fault."""

  def to_json(self, arch: Arch) -> dict[str, Any]:
    """Our JSON form (with a `space` field naming this space)."""

  def from_json(self, data: Mapping[str, Any], where: str = "architecture JSON") -> Arch:
    """The inverse of `to_json`; `where` names the source in errors."""

  def to_authors_string(self, arch: Arch) -> str:
    """The authors' text format."""

  def load(self, spec: str, model_cfg: Any | None = None) -> Arch:
    """An architecture from a search workdir, a JSON file or any text format of the space,
    checked against `model_cfg`'s size when given."""

  def spec_model_config(self, spec: str) -> Any | None:
    """The model config an architecture's own format implies, where it implies one (an
    `enas_lm:` recurrent string: the mean of nodes 1..N-1 as the cell output), else None."""

  def describe(self, arch: Arch, model_cfg: Any | None = None) -> list[str]:
    """One line per node or layer, then what the network outputs under `model_cfg` (the
    space's default config when None)."""

  def to_dot(self, arch: Arch, title: str | None = None, model_cfg: Any | None = None) -> str:
    """The Graphviz DOT source of its picture under `model_cfg`, captioned `title`."""

  def arch_figures(self, arch: Arch) -> dict[str, jax.Array]:
    """Scalars logged with each sampled architecture (traceable; macro: its skip rate)."""

  def known_figures(self, arch: Arch) -> list[str]:
    """What is known of the architecture's quality without running it (a benchmark table's
    figures), one line each; none for most spaces."""

  def size(self, model_cfg: Any) -> str:
    """A short description of the searched network ("macro network of 12 layers x 36 ...")."""

  def shared_network(self, model_cfg: Any, data_shape: Sequence[int] | int) -> Any:
    """The shared-weights network, in the form its task expects (see tasks/)."""

  def fixed_network(self, arch: Arch, model_cfg: Any, data_shape: Sequence[int] | int) -> Any:
    """The Flax network of one architecture for final training."""


class ModuleSpace:
  """A `SearchSpace` whose architecture functions live in modules, as every space here has them:
  `arch_lib` (decisions(size), from_decisions, random_arch(key, size), validate(arch, size,
  where)), `formats` (to_json, from_json, to_authors_string, load_arch(spec, size)) and
  `picture` (describe, to_dot). `size_field` names the model-config field that sizes an
  architecture (nodes or layers). Subclasses add the networks and what differs."""

  arch_lib: ModuleType
  formats: ModuleType
  picture: ModuleType
  size_field: str
  controller_fields: tuple[str, ...] = ()

  def _size(self, model_cfg: Any | None) -> int | None:
    return getattr(model_cfg, self.size_field) if model_cfg is not None else None

  def decisions(self, model_cfg: Any) -> tuple[Decision, ...]:
    return self.arch_lib.decisions(self._size(model_cfg))

  def from_decisions(self, values_D: jax.Array) -> Arch:
    return self.arch_lib.from_decisions(values_D)

  def to_decisions(self, arch: Arch) -> np.ndarray:
    return np.asarray(self.arch_lib.to_decisions(arch), np.int32)

  def random_arch(self, key: jax.Array, model_cfg: Any) -> Arch:
    return self.arch_lib.random_arch(key, self._size(model_cfg))

  def validate(self, arch: Arch, model_cfg: Any | None = None, where: str = "architecture"
               ) -> None:
    self.arch_lib.validate(arch, self._size(model_cfg), where)

  def to_json(self, arch: Arch) -> dict[str, Any]:
    return self.formats.to_json(arch)

  def from_json(self, data: Mapping[str, Any], where: str = "architecture JSON") -> Arch:
    return self.formats.from_json(data, where=where)

  def to_authors_string(self, arch: Arch) -> str:
    return self.formats.to_authors_string(arch)

  def load(self, spec: str, model_cfg: Any | None = None) -> Arch:
    return self.formats.load_arch(spec, self._size(model_cfg))

  def spec_model_config(self, spec: str) -> Any | None:
    return None

  def picture_options(self, model_cfg: Any | None) -> dict[str, Any]:
    """The model-config fields the picture depends on, as `picture` keyword arguments."""
    return {}

  def describe(self, arch: Arch, model_cfg: Any | None = None) -> list[str]:
    return self.picture.describe(arch, **self.picture_options(model_cfg))

  def to_dot(self, arch: Arch, title: str | None = None, model_cfg: Any | None = None) -> str:
    return self.picture.to_dot(arch, title, **self.picture_options(model_cfg))

  def arch_figures(self, arch: Arch) -> dict[str, jax.Array]:
    return {}

  def known_figures(self, arch: Arch) -> list[str]:
    return []
