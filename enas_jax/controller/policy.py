"""The ENAS controller: a Flax LSTM policy over any search space's decision list.

At decision i the LSTM reads the embedding of the previous decision's value (a learned start
vector first) and scores the choices:
- "op" decisions: a dense head shared by all decisions of the same size (its bias starting at
  the decisions' `bias_init`); their squashing constant is `tanh_c / op_tanh_reduce` and the
  decision's fixed `prior` is added after it (the authors' micro controller);
- "pointer" decisions (pick an earlier node): attention over the anchors of earlier nodes, as in
  the paper, `v . tanh(W1 anchor_j + W2 h)`, or a masked dense head when attention is off; the
  next step reads an embedding of the choice, or the chosen node's state (`feed_anchor`);
- "anchor" steps choose nothing: they read the start vector, give their node the state later
  pointers attend to, and hand the start vector to the next step (the micro space's cell inputs
  and the step after each node's operations, as in the authors' micro controller; the
  reduction cell's decisions simply continue the normal cell's LSTM state).
- "skip" bits (does layer k also read earlier layer j; the macro space): one LSTM step per layer
  scores all its bits by the same attention, bit j with logits [-s_j, s_j]; the next step reads
  the mean of the chosen layers' anchors, `sum_j b_j h_j / (1 + sum_j b_j)`, as in the authors'
  code. `skip_kl` is the summed KL from each bit's Bernoulli to `skip_target`; the controller loss
  adds `skip_weight * skip_kl` (the paper's penalty toward a target skip rate).
Scores are divided by `temperature` and squashed to `tanh_c * tanh(.)` before sampling with
`jax.random.categorical` from explicit keys. `kind="random"` gives the uniform policy (the
random-search-with-weight-sharing baseline): same interface, no parameters that matter.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from enas_jax.io.configuration import require
from enas_jax.io.errors import UserError
from enas_jax.spaces.decisions import Decision


@dataclasses.dataclass(frozen=True)
class ControllerConfig:
  """The `controller` section (see configs/ptb_rnn.py for comments)."""

  kind: Literal["enas", "random"] = "enas"
  hidden_dim: int = 100
  temperature: float = 5.0
  tanh_c: float = 2.5
  attention: bool = True
  lr: float = 3.5e-4
  grad_clip: float = 0.0
  entropy_weight: float = 1e-4
  baseline_decay: float = 0.95
  reward_c: float = 80.0
  reward: Literal["inverse_ppl", "inverse_ppl_squared", "accuracy"] = "inverse_ppl"
  num_samples: int = 1
  skip_target: float = 0.4
  skip_weight: float = 0.8
  op_tanh_reduce: float = 1.0

  def validate(self, section: str = "controller") -> None:
    require(self, section, ">= 1", "hidden_dim")
    require(self, section, "> 0", "lr", "tanh_c", "reward_c")
    require(self, section, ">= 0", "grad_clip", "entropy_weight", "skip_weight")
    require(self, section, "[0, 1)", "baseline_decay")
    require(self, section, "> 0", "temperature", "op_tanh_reduce")
    require(self, section, ">= 1", "num_samples")
    if not 0 < self.skip_target < 1:
      raise UserError(f"Config field `{section}.skip_target` must be in (0, 1), got "
                      f"{self.skip_target}.")


class Sample(NamedTuple):
  """One architecture's decisions and what REINFORCE needs about them."""

  values: jax.Array  # int32[D]
  log_prob: jax.Array  # summed over decisions
  entropy: jax.Array  # summed over decisions
  skip_kl: jax.Array  # summed KL of the skip bits to the target rate (0 without skip bits)


class Controller(nn.Module):
  """`__call__(key, forced=None) -> Sample(values int32[D], log_prob, entropy, skip_kl)`.

  With `forced` (int32[D]) the decisions are not sampled but scored: `log_prob` of a given
  architecture. Sampling and scoring are one code path, so they always agree.
  """

  decisions: tuple[Decision, ...]
  config: ControllerConfig

  @nn.compact
  def __call__(self, key: jax.Array, forced: jax.Array | None = None) -> Sample:
    cfg = self.config
    hid = cfg.hidden_dim
    num_nodes = max(d.node for d in self.decisions) + 1
    max_choices = max(d.num_choices for d in self.decisions)
    lstm = nn.OptimizedLSTMCell(hid, name="lstm")
    start_1xH = self.param("start", nn.initializers.uniform(0.1), (1, hid))
    embed = nn.Embed(max_choices + num_nodes, hid, name="embed")
    op_heads = {}
    for d in self.decisions:
      if d.kind == "op" and d.num_choices not in op_heads:
        bias = (nn.initializers.constant(jnp.asarray(d.bias_init, jnp.float32)) if d.bias_init
                else nn.initializers.zeros)
        op_heads[d.num_choices] = nn.Dense(d.num_choices, bias_init=bias,
                                           name=f"op_head_{d.num_choices}")
    attn = pointer_head = None
    if cfg.attention or self._has_skips:  # skip bits are always scored by attention
      w_anchor = nn.Dense(hid, use_bias=False, name="attn_anchor")
      attn = (nn.Dense(hid, use_bias=False, name="attn_query"),
              nn.Dense(1, use_bias=False, name="attn_v"))
    else:
      pointer_head = nn.Dense(num_nodes, name="pointer_head")

    carry = lstm.initialize_carry(jax.random.key(0), (1, hid))
    x_1xH = start_1xH
    anchors = jnp.zeros((num_nodes, hid))  # W1 h at each node's last decision
    anchors_h = jnp.zeros((num_nodes, hid))  # h at each node's last decision (skip inputs)
    values, log_prob, entropy, skip_kl = [], jnp.zeros(()), jnp.zeros(()), jnp.zeros(())
    skip_bits: list[jax.Array] = []
    decisions = self.decisions
    for i, d in enumerate(decisions):
      continues_skips = (d.kind == "skip" and i > 0 and decisions[i - 1].kind == "skip"
                         and decisions[i - 1].node == d.node)
      if not continues_skips:  # a skip group shares one LSTM step
        carry, h_1xH = lstm(carry, x_1xH)
      heads = (op_heads, attn, pointer_head)
      logits = self._logits(d, h_1xH, anchors, heads)
      logp = jax.nn.log_softmax(logits)
      value = (jax.random.categorical(jax.random.fold_in(key, i), logits) if forced is None
               else forced[i]).astype(jnp.int32)
      values.append(value)
      log_prob = log_prob + logp[value]
      entropy = entropy - jnp.sum(jnp.exp(logp) * logp)
      ends_node = i + 1 == len(decisions) or decisions[i + 1].node != d.node
      if d.kind == "skip":
        p_on, t = jnp.exp(logp[1]), cfg.skip_target
        skip_kl = skip_kl + p_on * (logp[1] - jnp.log(t)) + (1 - p_on) * (logp[0] - jnp.log(1 - t))
        skip_bits.append((d.target, value))
        if ends_node or decisions[i + 1].kind != "skip":  # the group's input to the next step
          picked_H = sum(b.astype(jnp.float32) * anchors_h[j] for j, b in skip_bits)
          count = sum(b.astype(jnp.float32) for _, b in skip_bits)
          x_1xH = (picked_H / (1.0 + count))[None, :]
          skip_bits = []
      else:
        x_1xH = _next_input(d, value, start_1xH, anchors_h, embed, max_choices)
      if ends_node:
        if cfg.attention or self._has_skips:
          anchors = anchors.at[d.node].set(w_anchor(h_1xH)[0])
        anchors_h = anchors_h.at[d.node].set(h_1xH[0])
    return Sample(jnp.stack(values), log_prob, entropy, skip_kl)

  def _logits(self, d: Decision, h_1xH: jax.Array, anchors: jax.Array, heads: tuple
              ) -> jax.Array:
    """Decision `d`'s squashed logits from the LSTM output `h_1xH` (`heads`: the op heads by
    size, the attention's (query, v) layers, the masked pointer head)."""
    cfg = self.config
    op_heads, attn, pointer_head = heads
    tanh_c = cfg.tanh_c
    if d.kind == "op":
      logits = op_heads[d.num_choices](h_1xH)[0]
      tanh_c = cfg.tanh_c / cfg.op_tanh_reduce
    elif d.kind == "skip":
      w_query, v_attn = attn
      s_j = v_attn(jnp.tanh(anchors[d.target] + w_query(h_1xH)))[0, 0]
      logits = jnp.stack([-s_j, s_j])
    elif d.kind == "anchor":
      logits = jnp.zeros((1,))
    elif cfg.attention:
      w_query, v_attn = attn
      chosen_from = anchors[d.first:d.first + d.num_choices]
      logits = v_attn(jnp.tanh(chosen_from + w_query(h_1xH)))[:, 0]
    else:
      logits = pointer_head(h_1xH)[0, d.first:d.first + d.num_choices]
    if cfg.kind == "random" or d.kind == "anchor":
      return jnp.zeros((d.num_choices,))
    logits = tanh_c * jnp.tanh(logits / cfg.temperature)
    if d.prior:
      logits = logits + jnp.asarray(d.prior, jnp.float32)
    return logits

  @property
  def _has_skips(self) -> bool:
    return any(d.kind == "skip" for d in self.decisions)


def _next_input(d: Decision, value: jax.Array, start_1xH: jax.Array, anchors_h: jax.Array,
                embed: nn.Module, max_choices: int) -> jax.Array:
  """What the LSTM reads after an op, pointer or anchor step: the start vector after an
  anchor, the chosen node's state for a `feed_anchor` pointer, else the choice's embedding."""
  if d.kind == "anchor":
    return start_1xH
  if d.kind == "pointer" and d.feed_anchor:
    return anchors_h[d.first + value][None, :]
  offset = 0 if d.kind == "op" else max_choices
  return embed(offset + value)[None, :]


def init_controller(controller: Controller, key: jax.Array) -> Any:
  """The controller's parameters."""
  return controller.init(key, jax.random.key(0))["params"]


def sample(controller: Controller, params: Any, key: jax.Array) -> Sample:
  """One architecture's decision values, with their summed log-probability and entropy."""
  return controller.apply({"params": params}, key)


def sample_many(controller: Controller, params: Any, key: jax.Array, n: int) -> Sample:
  """`n` samples in one call (vmap over keys): every field gains a leading axis of size n."""
  keys = jax.random.split(key, n)
  return jax.vmap(lambda k: controller.apply({"params": params}, k))(keys)


def log_prob(controller: Controller, params: Any, values_D: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
  """(log-probability, entropy) of the given decision values."""
  out = controller.apply({"params": params}, jax.random.key(0), values_D)
  return out.log_prob, out.entropy
