"""The micro (cell) space behind the `SearchSpace` interface (`spaces/base.py`)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax

from enas_jax.spaces.decisions import Decision
from enas_jax.spaces.micro import arch as arch_lib
from enas_jax.spaces.micro import network, picture
from enas_jax.spaces.micro.network import MicroModelConfig


class SharedMicroNetwork:
  """The shared micro network in the image task's form: `init(key)`, `apply(params, arch, x,
  dropout_key, step_ratio) -> (logits, aux logits or None)`."""

  def __init__(self, cfg: MicroModelConfig, image_shape: Sequence[int], num_classes: int):
    self.cfg, self.image_shape, self.num_classes = cfg, tuple(image_shape), num_classes

  def init(self, key: jax.Array) -> Any:
    return network.init_shared(key, self.cfg, self.image_shape, self.num_classes)

  def apply(self, params: Any, arch: arch_lib.MicroArch, x: jax.Array,
            dropout_key: jax.Array | None = None, step_ratio: Any = 1.0
            ) -> tuple[jax.Array, jax.Array | None]:
    return network.shared_apply(params, arch, x, self.cfg, dropout_key, step_ratio)


class MicroSpace:
  """The authors' micro space: a normal and a reduction cell of B nodes, stacked."""

  name = "micro"
  task = "images"
  model_config = MicroModelConfig
  controller_fields = ("op_tanh_reduce",)

  def decisions(self, model_cfg: MicroModelConfig) -> tuple[Decision, ...]:
    return arch_lib.decisions(model_cfg.num_nodes)

  def from_decisions(self, values_D: jax.Array) -> arch_lib.MicroArch:
    return arch_lib.from_decisions(values_D)

  def random_arch(self, key: jax.Array, model_cfg: MicroModelConfig) -> arch_lib.MicroArch:
    return arch_lib.random_arch(key, model_cfg.num_nodes)

  def validate(self, arch: arch_lib.MicroArch, model_cfg: MicroModelConfig | None = None,
               where: str = "architecture") -> None:
    arch_lib.validate(arch, model_cfg.num_nodes if model_cfg else None, where)

  def to_json(self, arch: arch_lib.MicroArch) -> dict[str, Any]:
    return arch_lib.to_json(arch)

  def from_json(self, data: Mapping[str, Any], where: str = "architecture JSON"
                ) -> arch_lib.MicroArch:
    return arch_lib.from_json(data, where=where)

  def to_authors_string(self, arch: arch_lib.MicroArch) -> str:
    return arch_lib.to_authors_string(arch)

  def load(self, spec: str, model_cfg: MicroModelConfig | None = None) -> arch_lib.MicroArch:
    return arch_lib.load_arch(spec, model_cfg.num_nodes if model_cfg else None)

  def describe(self, arch: arch_lib.MicroArch) -> list[str]:
    return picture.describe(arch)

  def to_dot(self, arch: arch_lib.MicroArch, title: str | None = None) -> str:
    return picture.to_dot(arch, title)

  def arch_figures(self, arch: arch_lib.MicroArch) -> dict[str, jax.Array]:
    return {}

  def size(self, model_cfg: MicroModelConfig) -> str:
    return (f"micro network of {model_cfg.num_layers + 2} cells ({model_cfg.num_nodes} nodes) "
            f"x {model_cfg.filters} filters")

  def shared_network(self, model_cfg: MicroModelConfig, data_shape: tuple[Sequence[int], int]
                     ) -> SharedMicroNetwork:
    """`data_shape`: (image shape (H, W, C), number of classes)."""
    return SharedMicroNetwork(model_cfg, *data_shape)

  def fixed_network(self, arch: arch_lib.MicroArch, model_cfg: MicroModelConfig,
                    data_shape: tuple[Sequence[int], int]) -> nn.Module:
    return network.fixed_network(arch, model_cfg, data_shape[1])


SPACE = MicroSpace()
