"""Pure step functions for the recurrent language model: shared-weight training and evaluation.

`make_lm_steps` closes over the model and optimizer and returns plain functions
    train_step(state, batch, arch, key) -> (state, metrics)
    eval_step(params, batch_stats, batch, hidden, arch) -> (nll_sum, count, hidden)
for the caller to `jax.jit` (once). The architecture is a traced argument of both.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from enas_jax.controller import reinforce
from enas_jax.data.lm_batches import Window, windows
from enas_jax.io.configuration import require
from enas_jax.io.errors import UserError
from enas_jax.ops.params import l2_penalty
from enas_jax.spaces.rnn.arch import RNNArch
from enas_jax.spaces.rnn.model import RNNLanguageModel, used_weights_penalty

Batch = Mapping[str, jax.Array]  # inputs [B, W], targets [B, W], valid [W], lr_scale []


# What the L2 term of the shared weights' loss covers: every weight (the authors' TF code), or
# only those the step's cell uses (ENAS-pytorch: torch's SGD decays only what got a gradient).
L2_ON = ("all", "used")


@dataclasses.dataclass(frozen=True)
class SharedTrainConfig:
  """The `shared` section: how the shared weights are trained (see configs/ptb_rnn.py)."""

  lr: float = 20.0
  grad_clip: float = 0.25
  lr_decay: float = 0.96
  lr_decay_start_epoch: int = 15
  l2: float = 1e-7
  l2_on: str = "all"
  cells_per_step: int = 1

  def validate(self, section: str = "shared") -> None:
    if self.l2_on not in L2_ON:
      raise UserError(f"Config field `{section}.l2_on` is {self.l2_on!r}; it must be one of "
                      f"{', '.join(L2_ON)} (\"all\": every shared weight, the paper's; "
                      f"\"used\": the weights the step's cell uses, ENAS-pytorch's).")
    require(self, section, ">= 1", "cells_per_step")
    if self.cells_per_step > 1 and self.l2_on == "used":
      raise UserError(f"Config fields `{section}.cells_per_step` ({self.cells_per_step}) and "
                      f"`{section}.l2_on` (\"used\") together: the penalty on the weights of "
                      f"one step's cell has no single cell to follow when a step trains several. "
                      f"Set `{section}.l2_on=all` or `{section}.cells_per_step=1`.")
    require(self, section, "> 0", "lr_decay")
    require(self, section, ">= 0", "lr_decay_start_epoch", "l2")
    require(self, section, "> 0", "lr")
    require(self, section, ">= 0", "grad_clip")  # 0 turns clipping off

  def lr_at_epoch(self, epoch: int) -> float:
    """The paper's schedule: constant, then multiplied by `lr_decay` every epoch."""
    return self.lr * self.lr_decay ** max(0, epoch - self.lr_decay_start_epoch)


class LMState(flax.struct.PyTreeNode):
  """Shared-weight training state; `hidden` is carried from one BPTT window to the next."""

  params: Any
  batch_stats: Any
  opt_state: optax.OptState
  hidden: jax.Array
  step: jax.Array


def make_optimizer(cfg: SharedTrainConfig) -> optax.GradientTransformation:
  """SGD with global-norm clipping; the learning rate is a state hyper-parameter."""
  sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=cfg.lr)
  if cfg.grad_clip > 0:
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), sgd)
  return sgd


def init_state(model: RNNLanguageModel, optimizer: optax.GradientTransformation, key: jax.Array,
               batch_size: int, arch: RNNArch | None) -> LMState:
  hidden = jnp.zeros((batch_size, model.state_size), jnp.float32)
  tokens = jnp.zeros((batch_size, 2), jnp.int32)
  variables = model.init({"params": key}, tokens, hidden, arch)
  params = variables["params"]
  return LMState(params=params, batch_stats=variables.get("batch_stats", {}),
                 opt_state=optimizer.init(params), hidden=hidden,
                 step=jnp.zeros((), jnp.int32))


def masked_nll(logits_BxWxV: jax.Array, targets_BxW: jax.Array, valid_W: jax.Array
               ) -> tuple[jax.Array, jax.Array]:
  """(sum of token NLL over valid steps, number of valid tokens)."""
  nll_BxW = optax.softmax_cross_entropy_with_integer_labels(logits_BxWxV, targets_BxW)
  mask_BxW = jnp.broadcast_to(valid_W[None, :], nll_BxW.shape).astype(nll_BxW.dtype)
  return jnp.sum(nll_BxW * mask_BxW), jnp.sum(mask_BxW)


def stacked(arch: RNNArch | None) -> bool:
  """Whether `arch` is several cells stacked on a leading axis (`shared.cells_per_step` > 1)."""
  return arch is not None and np.ndim(arch.act_N) == 2


def _cell_terms(model: Any, activation_l2: float, params: Any, inputs: jax.Array,
                targets: jax.Array, valid: jax.Array, hidden: jax.Array, arch: RNNArch | None,
                key: jax.Array) -> tuple[jax.Array, jax.Array, Any, jax.Array]:
  """(NLL sum, count, mean square of the cell outputs or 0, new hidden) of one cell on the rows
  it is given."""
  (logits, new_hidden), updates = model.apply(
      {"params": params}, inputs, hidden, arch, valid, train=True, rngs={"dropout": key},
      mutable=["intermediates"] if activation_l2 else [])
  nll_sum, count = masked_nll(logits, targets, valid)
  act = updates["intermediates"]["activation_sq"][0] if activation_l2 else 0.0
  return nll_sum, count, act, new_hidden


def _cells_terms(model: Any, activation_l2: float, params: Any, batch: Batch,
                 hidden_BxH: jax.Array, arch_K: RNNArch, key: jax.Array
                 ) -> tuple[jax.Array, jax.Array, Any, jax.Array]:
  """`_cell_terms` summed over the K stacked cells of `arch_K`, cell k on rows k B/K to
  (k + 1) B/K with `key` folded with k (the activation term averaged); the new hidden state's
  rows in the same order."""
  cells = int(np.shape(arch_K.act_N)[0])
  rows = batch["inputs"].shape[0] // cells
  nll_sum, count, act, hidden = 0.0, 0.0, 0.0, []
  for k in range(cells):
    part = slice(k * rows, (k + 1) * rows)
    terms = _cell_terms(model, activation_l2, params, batch["inputs"][part],
                        batch["targets"][part], batch["valid"], hidden_BxH[part],
                        jax.tree_util.tree_map(lambda x: x[k], arch_K),
                        jax.random.fold_in(key, k))
    nll_sum, count, act = nll_sum + terms[0], count + terms[1], act + terms[2] / cells
    hidden.append(terms[3])
  return nll_sum, count, act, jnp.concatenate(hidden, axis=0)


def make_lm_steps(model: Any, optimizer: optax.GradientTransformation, l2: float,
                  activation_l2: float = 0.0, l2_on: str = "all"
                  ) -> tuple[Callable[..., Any], Callable[..., Any]]:
  """Returns the pure (train_step, eval_step) for `model` (the ENAS LM or the LSTM baseline).

  The training loss is the mean NLL + `l2` * the sum of squares of every weight (`l2_on="all"`)
  or of those the step's cell uses (`"used"`, the shared ENAS LM only:
  `model.used_weights_penalty`) + `activation_l2` * mean square of the cell outputs (the ENAS LM
  code's `alpha`). `train_step`'s `arch` may be K cells stacked on a leading axis
  (`shared.cells_per_step`): the batch's rows split evenly among them in order, the loss the
  NLL over all rows (so the same compute trains K cells), cell k's dropout key folded with k.
  """
  penalty = (used_weights_penalty if l2_on == "used"
             else lambda params, arch: l2_penalty(params))

  def loss_fn(params, batch_stats, batch, hidden, arch, key):
    if stacked(arch):  # cells [K, ...]: the rows split evenly, cell k's dropout key folded with k
      nll_sum, count, act, new_hidden = _cells_terms(model, activation_l2, params, batch, hidden,
                                                     arch, key)
      penalty_term = l2_penalty(params) if l2 > 0 else 0.0  # (l2_on="used" refused)
    else:  # one cell (or the model's own, None): every row
      nll_sum, count, act, new_hidden = _cell_terms(
          model, activation_l2, params, batch["inputs"], batch["targets"], batch["valid"],
          hidden, arch, key)
      penalty_term = penalty(params, arch) if l2 > 0 else 0.0
    nll = nll_sum / jnp.maximum(count, 1.0)
    loss = nll + l2 * penalty_term + activation_l2 * act
    return loss, (nll, new_hidden, batch_stats)

  def train_step(state: LMState, batch: Batch, arch: RNNArch, key: jax.Array
                 ) -> tuple[LMState, dict[str, jax.Array]]:
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, (nll, hidden, batch_stats)), grads = grad_fn(
        state.params, state.batch_stats, batch, state.hidden, arch, key)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    updates = jax.tree_util.tree_map(lambda u: u * batch["lr_scale"], updates)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(params=params, batch_stats=batch_stats, opt_state=opt_state,
                              hidden=jax.lax.stop_gradient(hidden), step=state.step + 1)
    metrics = {"loss": loss, "nll": nll, "ppl": jnp.exp(nll),
               "grad_norm": jnp.sqrt(l2_penalty(grads))}
    return new_state, metrics

  def eval_step(params: Any, batch_stats: Any, batch: Batch, hidden: jax.Array, arch: RNNArch
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    del batch_stats  # the language models keep none (the interface passes it for every task)
    variables = {"params": params}
    logits, new_hidden = model.apply(variables, batch["inputs"], hidden, arch, batch["valid"],
                                     train=False)
    nll_sum, count = masked_nll(logits, batch["targets"], batch["valid"])
    return nll_sum, count, new_hidden

  return train_step, eval_step


def warmup_factor(step: int, warmup_steps: int) -> float:
  """A linear learning-rate warm-up's factor at the 0-based `step`: (step + 1) / N over the first
  N = `warmup_steps` steps, then 1 (N = 0: no warm-up)."""
  return (step + 1) / warmup_steps if step < warmup_steps else 1.0


def window_batch(window: Window, bptt: int, variable: bool = False) -> dict[str, jax.Array]:
  """A window as the step functions' batch dict; variable windows scale the update by
  length / bptt, as AWD-LSTM scales its learning rate."""
  scale = window.length / bptt if variable else 1.0
  return {"inputs": jnp.asarray(window.inputs_BxW), "targets": jnp.asarray(window.targets_BxW),
          "valid": jnp.asarray(window.valid_W), "lr_scale": jnp.asarray(scale, jnp.float32)}


def evaluate_perplexity(eval_step: Callable[..., Any], params: Any, batch_stats: Any,
                        data_BxN: np.ndarray, bptt: int, arch: RNNArch | None,
                        state_size: int | None = None) -> float:
  """Perplexity over a whole batched split, the state carried across windows.

  `eval_step` is the jitted step from `make_lm_steps`; any batch size works, 1 included (the
  standard test protocol). `state_size` defaults to the ENAS cell's hidden width.
  """
  state_size = state_size or _hidden_dim(params)
  hidden = jnp.zeros((data_BxN.shape[0], state_size), jnp.float32)
  # data-parallel: the state replicated as the weights are, at every window (XLA may place the
  # step's new state otherwise), so that every window's call is the one compiled program
  sharding = replicated_like(params)
  place = (lambda h: h) if sharding is None else (lambda h: jax.device_put(h, sharding))
  hidden = place(hidden)
  total, count = jnp.zeros(()), jnp.zeros(())
  for window in windows(data_BxN, bptt):  # sums stay on the device: one sync at the end
    nll_sum, n, hidden = eval_step(params, batch_stats, window_batch(window, bptt), hidden, arch)
    hidden = place(hidden)
    total, count = total + nll_sum, count + n
  with np.errstate(over="ignore"):  # a diverged model's perplexity is inf, not a warning
    return float(np.exp(float(total) / max(float(count), 1.0)))


def replicated_like(params: Any) -> Any:
  """The placement of `params` when they are placed on several devices (a data-parallel run's
  replicated weights), else None: the evaluation's carried state is placed so."""
  leaf = jax.tree_util.tree_leaves(params)[0]
  sharding = getattr(leaf, "sharding", None)
  if sharding is None or len(sharding.device_set) < 2:
    return None
  return sharding


def _hidden_dim(params: Any) -> int:
  return int(params["cell"]["node0"]["w_h"].shape[-2])


def make_score(eval_step: Callable[..., Any], from_decisions: Callable[[jax.Array], Any],
               ctrl: Any, hidden_dim: int) -> Callable[..., Any]:
  """The pure reward `reward_c / ppl` (or its square) of each sampled cell on one window, zero
  initial state, one cell at a time (`lax.map`, so `lax.switch` stays a branch); figure
  `valid_ppl`. `eval_step` is `make_lm_steps`'s, `ctrl` the controller config."""

  def score_S(params: Any, batch_stats: Any, batch: Batch, values_SxD: jax.Array
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
    hidden = jnp.zeros((batch["inputs"].shape[0], hidden_dim), jnp.float32)

    def ppl_of(values_D):
      nll_sum, count, _ = eval_step(params, batch_stats, batch, hidden, from_decisions(values_D))
      return jnp.exp(nll_sum / jnp.maximum(count, 1.0))

    ppl_S = jax.lax.map(ppl_of, values_SxD)
    return reinforce.reward_from_ppl(ppl_S, ctrl.reward_c, ctrl.reward), {"valid_ppl": ppl_S}

  return score_S
