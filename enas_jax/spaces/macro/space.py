"""The macro space behind the `SearchSpace` interface (`spaces/base.py`)."""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax

from enas_jax.spaces.base import ModuleSpace
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


class MacroSpace(ModuleSpace):
  """The authors' macro space: one operation and a set of skip connections per layer."""

  name = "macro"
  task = "images"
  model_config = MacroModelConfig
  arch_lib = formats = arch_lib
  picture, size_field = picture, "num_layers"
  controller_fields = ("skip_target", "skip_weight")

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
