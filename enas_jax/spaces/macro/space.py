"""The macro space behind the `SearchSpace` interface (`spaces/base.py`)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax

from enas_jax.spaces.decisions import Decision
from enas_jax.spaces.macro import arch as arch_lib
from enas_jax.spaces.macro import network, picture
from enas_jax.spaces.macro.network import MacroModelConfig


class SharedMacroNetwork:
  """The shared macro network in the image task's form: `init(key)`, `apply(params, arch, x,
  dropout_key, step_ratio) -> (logits, None)`."""

  def __init__(self, cfg: MacroModelConfig, image_shape: Sequence[int], num_classes: int):
    self.cfg, self.image_shape, self.num_classes = cfg, tuple(image_shape), num_classes

  def init(self, key: jax.Array) -> Any:
    return network.init_shared(key, self.cfg, self.image_shape[-1], self.num_classes)

  def apply(self, params: Any, arch: arch_lib.MacroArch, x: jax.Array,
            dropout_key: jax.Array | None = None, step_ratio: Any = 1.0) -> tuple[jax.Array, None]:
    del step_ratio  # no schedule in the macro network
    return network.shared_apply(params, arch, x, self.cfg, dropout_key), None


class MacroSpace:
  """The authors' macro space: one operation and a set of skip connections per layer."""

  name = "macro"
  task = "images"
  model_config = MacroModelConfig
  controller_fields = ("skip_target", "skip_weight")

  def decisions(self, model_cfg: MacroModelConfig) -> tuple[Decision, ...]:
    return arch_lib.decisions(model_cfg.num_layers)

  def from_decisions(self, values_D: jax.Array) -> arch_lib.MacroArch:
    return arch_lib.from_decisions(values_D)

  def random_arch(self, key: jax.Array, model_cfg: MacroModelConfig) -> arch_lib.MacroArch:
    return arch_lib.random_arch(key, model_cfg.num_layers)

  def validate(self, arch: arch_lib.MacroArch, model_cfg: MacroModelConfig | None = None,
               where: str = "architecture") -> None:
    arch_lib.validate(arch, model_cfg.num_layers if model_cfg else None, where)

  def to_json(self, arch: arch_lib.MacroArch) -> dict[str, Any]:
    return arch_lib.to_json(arch)

  def from_json(self, data: Mapping[str, Any], where: str = "architecture JSON"
                ) -> arch_lib.MacroArch:
    return arch_lib.from_json(data, where=where)

  def to_authors_string(self, arch: arch_lib.MacroArch) -> str:
    return arch_lib.to_authors_string(arch)

  def load(self, spec: str, model_cfg: MacroModelConfig | None = None) -> arch_lib.MacroArch:
    return arch_lib.load_arch(spec, model_cfg.num_layers if model_cfg else None)

  def describe(self, arch: arch_lib.MacroArch) -> list[str]:
    return picture.describe(arch)

  def to_dot(self, arch: arch_lib.MacroArch, title: str | None = None) -> str:
    return picture.to_dot(arch, title)

  def arch_figures(self, arch: arch_lib.MacroArch) -> dict[str, jax.Array]:
    n = arch.op_L.shape[0]
    return {"skip_rate": arch.skip_LxL.sum() / max(n * (n - 1) // 2, 1)}

  def size(self, model_cfg: MacroModelConfig) -> str:
    return f"macro network of {model_cfg.num_layers} layers x {model_cfg.filters} filters"

  def shared_network(self, model_cfg: MacroModelConfig, data_shape: tuple[Sequence[int], int]
                     ) -> SharedMacroNetwork:
    """`data_shape`: (image shape (H, W, C), number of classes)."""
    return SharedMacroNetwork(model_cfg, *data_shape)

  def fixed_network(self, arch: arch_lib.MacroArch, model_cfg: MacroModelConfig,
                    data_shape: tuple[Sequence[int], int]) -> nn.Module:
    return network.fixed_network(arch, model_cfg, data_shape[1])


SPACE = MacroSpace()
