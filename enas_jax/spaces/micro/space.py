"""The micro (cell) space behind the `SearchSpace` interface (`spaces/base.py`)."""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax

from enas_jax.spaces.base import ModuleSpace
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


class MicroSpace(ModuleSpace):
  """The authors' micro space: a normal and a reduction cell of B nodes, stacked."""

  name = "micro"
  task = "images"
  model_config = MicroModelConfig
  arch_lib = formats = arch_lib
  picture, size_field = picture, "num_nodes"
  controller_fields = ("op_tanh_reduce",)

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
