"""The convolutional search spaces behind one interface, for the CNN search and training loops.

`CNN_SPACES` maps a config's `space` field to the space's functions; the loops call only these,
so the macro and micro spaces share the search loop, the reward, the final-training loop and the
command-line entry points.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax

from enas_jax.drawing import graphs
from enas_jax.spaces.decisions import Decision
from enas_jax.spaces.macro import arch as macro_arch
from enas_jax.spaces.macro import network as macro_net
from enas_jax.spaces.micro import arch as micro_arch
from enas_jax.spaces.micro import network as micro_net


@dataclasses.dataclass(frozen=True)
class CNNSpace:
  """What the CNN loops need from a convolutional search space.

  Attributes:
    name: the config's `space` value.
    model_config: the frozen dataclass of the config's `model` section.
    decisions: model config -> the controller's decision list.
    from_decisions: decision values (traced or not) -> the architecture (a pytree of int32).
    init_shared: (key, model config, image shape (H, W, C), classes) -> shared weights.
    shared_apply: (params, arch, x, model config, dropout key or None, step ratio in [0, 1]) ->
      (logits, auxiliary logits or None).
    arch_figures: traced architecture -> scalars logged with each sample (macro: skip rate).
    to_authors_string / to_json: the formats written by the search.
    load_arch: (spec, model config) -> architecture, from a workdir, JSON or the authors' string.
    fixed_network: (arch, model config, classes) -> the Flax network for final training, called
      as `(x, train, step_ratio) -> (logits, aux or None)`.
    size: model config -> a short description ("12 layers x 36 filters").
    to_dot: (architecture, caption or None) -> the Graphviz DOT source of its picture.
  """

  name: str
  model_config: type
  decisions: Callable[[Any], tuple[Decision, ...]]
  from_decisions: Callable[[Any], Any]
  init_shared: Callable[..., Any]
  shared_apply: Callable[..., tuple[jax.Array, jax.Array | None]]
  arch_figures: Callable[[Any], dict[str, jax.Array]]
  to_authors_string: Callable[[Any], str]
  to_json: Callable[[Any], dict[str, Any]]
  load_arch: Callable[[str, Any], Any]
  fixed_network: Callable[[Any, Any, int], nn.Module]
  size: Callable[[Any], str]
  to_dot: Callable[[Any, str | None], str]


def _macro_skip_rate(arch: macro_arch.MacroArch) -> dict[str, jax.Array]:
  n = arch.op_L.shape[0]
  return {"skip_rate": arch.skip_LxL.sum() / max(n * (n - 1) // 2, 1)}


def _macro_init(key: jax.Array, cfg: macro_net.MacroModelConfig, image_shape: Sequence[int],
                num_classes: int) -> Any:
  return macro_net.init_shared(key, cfg, image_shape[-1], num_classes)


def _macro_apply(params: Any, arch: macro_arch.MacroArch, x: jax.Array,
                 cfg: macro_net.MacroModelConfig, dropout_key: jax.Array | None = None,
                 step_ratio: Any = 1.0) -> tuple[jax.Array, None]:
  del step_ratio  # no schedule in the macro network
  return macro_net.shared_apply(params, arch, x, cfg, dropout_key), None


MACRO = CNNSpace(
    name="macro", model_config=macro_net.MacroModelConfig,
    decisions=lambda cfg: macro_arch.decisions(cfg.num_layers),
    from_decisions=macro_arch.from_decisions, init_shared=_macro_init,
    shared_apply=_macro_apply, arch_figures=_macro_skip_rate,
    to_authors_string=macro_arch.to_authors_string, to_json=macro_arch.to_json,
    load_arch=lambda spec, cfg: macro_arch.load_arch(spec, cfg.num_layers),
    fixed_network=macro_net.fixed_network,
    size=lambda cfg: f"macro network of {cfg.num_layers} layers x {cfg.filters} filters",
    to_dot=lambda arch, title: graphs.macro_dot(arch, title=title))

MICRO = CNNSpace(
    name="micro", model_config=micro_net.MicroModelConfig,
    decisions=lambda cfg: micro_arch.decisions(cfg.num_nodes),
    from_decisions=micro_arch.from_decisions, init_shared=micro_net.init_shared,
    shared_apply=micro_net.shared_apply, arch_figures=lambda arch: {},
    to_authors_string=micro_arch.to_authors_string, to_json=micro_arch.to_json,
    load_arch=lambda spec, cfg: micro_arch.load_arch(spec, cfg.num_nodes),
    fixed_network=micro_net.fixed_network,
    size=lambda cfg: (f"micro network of {cfg.num_layers + 2} cells ({cfg.num_nodes} nodes) x "
                      f"{cfg.filters} filters"),
    to_dot=graphs.micro_dot)

CNN_SPACES: dict[str, CNNSpace] = {"macro": MACRO, "micro": MICRO}

