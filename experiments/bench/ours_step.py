"""Our shared recurrent training step as the benchmarks time it (no torch needed here): the
search's step, jitted with the architecture as a traced argument, on PTB's shapes at a given
width, with the paper's regularisation or none, and the options the benchmarks compare
(`experiments/bench/rnn_throughput.py`, `enas_pytorch_anchor.py`, `activation_weights_cost.py`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.spaces.rnn.arch import random_arch
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig
from enas_jax.tasks.language import steps as lm_steps

PAPER_RATES = {"embedding": 0.1, "input": 0.65, "output": 0.4, "dropconnect": 0.5}
NO_DROPOUT = {k: 0.0 for k in PAPER_RATES}


def model_config(hidden: int, nodes: int, rates: dict[str, float], unroll: int = 1,
                 dropconnect_on: str = "all", matmul_dtype: str = "float32",
                 activation_weights: str = "shared",
                 activation_dispatch: str = "switch") -> RNNModelConfig:
  """PTB's model at width `hidden`: the paper's regularisation at `rates`, the hidden-norm clip
  25, and (default) the paper's one matrix per (node, prev) key."""
  return RNNModelConfig(num_nodes=nodes, embed_dim=hidden, hidden_dim=hidden,
                        embedding_dropout=rates["embedding"], input_dropout=rates["input"],
                        output_dropout=rates["output"], dropconnect=rates["dropconnect"],
                        dropconnect_on=dropconnect_on, hidden_norm_clip=25.0,
                        scan_unroll=unroll, matmul_dtype=matmul_dtype,
                        activation_weights=activation_weights,
                        activation_dispatch=activation_dispatch)


class Ours:
  """Our shared step, jitted with the architecture as a traced argument (as in the search)."""

  def __init__(self, hidden: int, vocab: int, nodes: int, batch: int, rates: dict[str, float],
               unroll: int = 1, l2: float = 1e-7, dropconnect_on: str = "all",
               matmul_dtype: str = "float32", l2_on: str = "all",
               activation_weights: str = "shared", activation_dispatch: str = "switch"):
    self.model = RNNLanguageModel(model_config(hidden, nodes, rates, unroll, dropconnect_on,
                                               matmul_dtype, activation_weights,
                                               activation_dispatch), vocab)
    opt = lm_steps.make_optimizer(lm_steps.SharedTrainConfig())
    self.arch = random_arch(jax.random.key(42), nodes)
    self.state = lm_steps.init_state(self.model, opt, jax.random.key(0), batch, self.arch)
    train_step, _ = lm_steps.make_lm_steps(self.model, opt, l2=l2, l2_on=l2_on)
    self.step = jax.jit(train_step, donate_argnums=0)

  def run(self, batch: dict[str, jax.Array], i: int) -> dict[str, float]:
    self.state, m = self.step(self.state, batch, self.arch, jax.random.key(i))
    return {k: float(v) for k, v in m.items()}


def jax_batch(inputs: np.ndarray, targets: np.ndarray) -> dict[str, jax.Array]:
  return {"inputs": jnp.asarray(inputs, jnp.int32), "targets": jnp.asarray(targets, jnp.int32),
          "valid": jnp.ones((inputs.shape[1],), bool), "lr_scale": jnp.ones((), jnp.float32)}
