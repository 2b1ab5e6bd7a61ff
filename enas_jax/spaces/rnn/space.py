"""The recurrent-cell space behind the `SearchSpace` interface (`spaces/base.py`)."""
from __future__ import annotations

from typing import Any, Mapping

import jax

from enas_jax.spaces.decisions import Decision
from enas_jax.spaces.rnn import arch as arch_lib
from enas_jax.spaces.rnn import formats, picture
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig


class RNNSpace:
  """ENAS recurrent cells of `model.num_nodes` nodes, for language modelling."""

  name = "rnn"
  task = "language"
  model_config = RNNModelConfig
  controller_fields: tuple[str, ...] = ()

  def decisions(self, model_cfg: RNNModelConfig) -> tuple[Decision, ...]:
    return arch_lib.decisions(model_cfg.num_nodes)

  def from_decisions(self, values_D: jax.Array) -> arch_lib.RNNArch:
    return arch_lib.from_decisions(values_D)

  def random_arch(self, key: jax.Array, model_cfg: RNNModelConfig) -> arch_lib.RNNArch:
    return arch_lib.random_arch(key, model_cfg.num_nodes)

  def validate(self, arch: arch_lib.RNNArch, model_cfg: RNNModelConfig | None = None,
               where: str = "architecture") -> None:
    arch_lib.validate(arch, model_cfg.num_nodes if model_cfg else None, where)

  def to_json(self, arch: arch_lib.RNNArch) -> dict[str, Any]:
    return formats.to_json(arch)

  def from_json(self, data: Mapping[str, Any], where: str = "architecture JSON"
                ) -> arch_lib.RNNArch:
    return formats.from_json(data, where=where)

  def to_authors_string(self, arch: arch_lib.RNNArch) -> str:
    return formats.to_authors_string(arch)

  def load(self, spec: str, model_cfg: RNNModelConfig | None = None) -> arch_lib.RNNArch:
    return formats.load_arch_spec(spec, model_cfg.num_nodes if model_cfg else None).arch

  def describe(self, arch: arch_lib.RNNArch) -> list[str]:
    return picture.describe(arch)

  def to_dot(self, arch: arch_lib.RNNArch, title: str | None = None) -> str:
    return picture.to_dot(arch, title)

  def arch_figures(self, arch: arch_lib.RNNArch) -> dict[str, jax.Array]:
    return {}

  def size(self, model_cfg: RNNModelConfig) -> str:
    return f"{model_cfg.num_nodes}-node cells"

  def shared_network(self, model_cfg: RNNModelConfig, vocab_size: int) -> RNNLanguageModel:
    """The language model whose cell holds a matrix for every (node, prev) pair."""
    return RNNLanguageModel(model_cfg, vocab_size)

  def fixed_network(self, arch: arch_lib.RNNArch, model_cfg: RNNModelConfig, vocab_size: int
                    ) -> RNNLanguageModel:
    fixed = (tuple(int(p) for p in arch.prev_N), tuple(int(a) for a in arch.act_N))
    return RNNLanguageModel(model_cfg, vocab_size, fixed_arch=fixed)


SPACE = RNNSpace()
