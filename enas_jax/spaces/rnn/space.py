"""The recurrent-cell space behind the `SearchSpace` interface (`spaces/base.py`)."""
from __future__ import annotations

from typing import Any

from enas_jax.spaces.base import ModuleSpace
from enas_jax.spaces.rnn import arch as arch_lib
from enas_jax.spaces.rnn import formats, picture
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig


class RNNSpace(ModuleSpace):
  """ENAS recurrent cells of `model.num_nodes` nodes, for language modelling."""

  name = "rnn"
  task = "language"
  model_config = RNNModelConfig
  arch_lib, formats, picture, size_field = arch_lib, formats, picture, "num_nodes"

  def load(self, spec: str, model_cfg: RNNModelConfig | None = None) -> arch_lib.RNNArch:
    """Any recurrent format (workdir, JSON, dag.json, authors' or `enas_lm:` string); the
    output rule an `enas_lm:` string carries is final training's business (`load_arch_spec`)."""
    return formats.load_arch_spec(spec, self._size(model_cfg)).arch

  def spec_model_config(self, spec: str) -> RNNModelConfig | None:
    output = formats.load_arch_spec(spec).output
    return RNNModelConfig(output=output) if output else None

  def picture_options(self, model_cfg: RNNModelConfig | None) -> dict[str, Any]:
    return {"output": (model_cfg or RNNModelConfig()).output}

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
