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
Scores are divided by the temperature (`temperature_at` the controller's step) and squashed to
`tanh_c * tanh(.)` before sampling with `jax.random.categorical` from explicit keys.
`kind="random"`: the uniform policy (random search with weight sharing), the same interface.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from enas_jax.controller import runs
from enas_jax.io.configuration import require
from enas_jax.io.errors import UserError
from enas_jax.spaces.decisions import Decision


@dataclasses.dataclass(frozen=True)
class ControllerConfig:
  """The `controller` section (see configs/ptb_rnn.py for comments)."""

  kind: Literal["enas", "random"] = "enas"
  hidden_dim: int = 100
  temperature: float = 5.0
  temperature_end: float = -1.0
  temperature_schedule_steps: int = 0
  tanh_c: float = 2.5
  attention: bool = True
  lr: float = 3.5e-4
  grad_clip: float = 0.0
  entropy_weight: float = 1e-4
  entropy_weight_end: float = -1.0
  entropy_schedule_steps: int = 0
  baseline_decay: float = 0.95
  reward_c: float = 80.0
  reward: Literal["inverse_ppl", "inverse_ppl_squared", "accuracy"] = "inverse_ppl"
  num_samples: int = 1
  skip_target: float = 0.4
  skip_weight: float = 0.8
  op_tanh_reduce: float = 1.0
  locality_prior: float = 0.0

  def validate(self, section: str = "controller") -> None:
    require(self, section, ">= 1", "hidden_dim")
    require(self, section, "> 0", "lr", "tanh_c", "reward_c")
    require(self, section, ">= 0", "grad_clip", "entropy_weight", "skip_weight",
            "entropy_schedule_steps", "locality_prior", "temperature_schedule_steps")
    if self.temperature_schedule_steps and self.temperature_end <= 0:
      raise UserError(f"Config field `{section}.temperature_schedule_steps` is "
                      f"{self.temperature_schedule_steps} but `{section}.temperature_end` is "
                      f"{self.temperature_end}: give the temperature the schedule ends at (> 0), "
                      f"or set the steps to 0.")
    if self.entropy_schedule_steps and self.entropy_weight_end < 0:
      raise UserError(f"Config field `{section}.entropy_schedule_steps` is "
                      f"{self.entropy_schedule_steps} but `{section}.entropy_weight_end` is not "
                      f"set: give the weight the schedule ends at (>= 0), or set the steps to 0.")
    require(self, section, "[0, 1)", "baseline_decay")
    require(self, section, "> 0", "temperature", "op_tanh_reduce")
    require(self, section, ">= 1", "num_samples")
    if not 0 < self.skip_target < 1:
      raise UserError(f"Config field `{section}.skip_target` must be in (0, 1), got "
                      f"{self.skip_target}.")


def entropy_weight_at(cfg: ControllerConfig, step: jax.Array) -> jax.Array:
  """The entropy bonus's weight at controller step `step`: `entropy_weight`, moving linearly to
  `entropy_weight_end` over the first `entropy_schedule_steps` steps (then staying there)."""
  if not cfg.entropy_schedule_steps:
    return jnp.asarray(cfg.entropy_weight, jnp.float32)
  return _linear(cfg.entropy_weight, cfg.entropy_weight_end, cfg.entropy_schedule_steps, step)


def temperature_at(cfg: ControllerConfig, step: jax.Array | None) -> float | jax.Array:
  """The sampling temperature at controller step `step` (linear to `temperature_end`, as the
  entropy weight); the config's float without a schedule or a step (the schedule's start)."""
  if not cfg.temperature_schedule_steps or step is None:
    return cfg.temperature
  return _linear(cfg.temperature, cfg.temperature_end, cfg.temperature_schedule_steps, step)


def _linear(start: float, end: float, steps: int, step: jax.Array) -> jax.Array:
  """`start` moving linearly to `end` over `steps` steps, then staying there, at `step`."""
  frac = jnp.minimum(jnp.asarray(step, jnp.float32) / steps, 1.0)
  return start + frac * (end - start)


class Sample(NamedTuple):
  """One architecture's decisions and what REINFORCE needs about them."""

  values: jax.Array  # int32[D]
  log_prob: jax.Array  # summed over decisions
  entropy: jax.Array  # summed over decisions
  skip_kl: jax.Array  # summed KL of the skip bits to the target rate (0 without skip bits)


class _Walk(NamedTuple):
  """The controller's state between two decisions."""

  carry: Any  # the LSTM's
  x_1xH: jax.Array  # what the next LSTM step reads
  anchors_NxH: jax.Array  # W1 h at each node's last decision (attention keys)
  anchors_h_NxH: jax.Array  # h at each node's last decision (skip and feed_anchor inputs)
  log_prob: jax.Array
  entropy: jax.Array


class _Draw(NamedTuple):
  """Decisions sampled from `key` (folded with each one's index), or scored at `forced`."""

  key: jax.Array
  forced: jax.Array | None
  temperature: Any  # a float, or a traced scalar under a schedule


class _At(NamedTuple):
  """Where a decision acts: its index in the list, its node, its pointer's first node and its
  number of choices; plain ints when unrolled, traced inside a scan over a run of nodes."""

  index: Any
  node: Any
  first: Any
  num: Any


class _Parts(NamedTuple):
  """The controller's layers as callables (bound modules, or pure functions inside a scan)."""

  lstm: Any
  embed: Any
  op_heads: dict[int, Any]
  attn_anchor: Any
  attn_query: Any
  attn_v: Any
  pointer_head: Any


_MASKED = -1e9  # the score of a padded choice: never sampled, probability exactly 0


class Controller(nn.Module):
  """`__call__(key, forced=None, step=None) -> Sample(values int32[D], log_prob, entropy,
  skip_kl)`; `step` (the controller's update count) sets the temperature under a schedule.

  With `forced` (int32[D]) the decisions are not sampled but scored: `log_prob` of a given
  architecture. Sampling and scoring are one code path, so they always agree.

  Consecutive nodes whose decisions have the same kinds and sizes (the recurrent space's nodes
  1..N-1, the micro space's nodes) run as one `lax.scan`, their pointer choices padded to the
  run's widest and masked, so a compiled program holds one copy of the LSTM step per node's
  decisions instead of one per decision (`scan_runs=False` unrolls every decision).
  """

  decisions: tuple[Decision, ...]
  config: ControllerConfig
  scan_runs: bool = True

  @nn.compact
  def __call__(self, key: jax.Array, forced: jax.Array | None = None,
               step: jax.Array | None = None) -> Sample:
    hid = self.config.hidden_dim
    draw = _Draw(key, forced, temperature_at(self.config, step))
    parts, start_1xH = self._parts(), self.param("start", nn.initializers.uniform(0.1), (1, hid))
    walk = _Walk(parts.lstm.initialize_carry(jax.random.key(0), (1, hid)), start_1xH,
                 jnp.zeros((self._num_nodes, hid)), jnp.zeros((self._num_nodes, hid)),
                 jnp.zeros(()), jnp.zeros(()))
    values, skip_kl, skip_bits = [], jnp.zeros(()), []
    segments = runs.segments(self.decisions) if self.scan_runs and not self.is_initializing() else [
        (i, 1, 1) for i in range(len(self.decisions))]
    for first_i, block, blocks in segments:
      if blocks > 1:
        walk, values_R = self._scan_run(_pure(parts), start_1xH, first_i, block, blocks, walk,
                                        draw)
        values.extend(values_R[j] for j in range(block * blocks))
        continue
      for i in range(first_i, first_i + block):
        d = self.decisions[i]
        if d.kind == "skip":
          walk, value, kl, skip_bits = self._skip(parts, i, walk, skip_bits, draw)
          skip_kl = skip_kl + kl
        else:
          walk, value = self._decide(parts, start_1xH, d, _At(i, d.node, d.first, d.num_choices),
                                     d.num_choices, walk, draw, self._ends_node(i))
        values.append(value)
    return Sample(jnp.stack(values), walk.log_prob, walk.entropy, skip_kl)

  def _parts(self) -> _Parts:
    cfg, hid = self.config, self.config.hidden_dim
    op_heads = {}
    for d in self.decisions:
      if d.kind == "op" and d.num_choices not in op_heads:
        bias = (nn.initializers.constant(jnp.asarray(d.bias_init, jnp.float32)) if d.bias_init
                else nn.initializers.zeros)
        op_heads[d.num_choices] = nn.Dense(d.num_choices, bias_init=bias,
                                           name=f"op_head_{d.num_choices}")
    attn = (None, None, None)
    pointer_head = None
    if cfg.attention or self._has_skips:  # skip bits are always scored by attention
      attn = (nn.Dense(hid, use_bias=False, name="attn_anchor"),
              nn.Dense(hid, use_bias=False, name="attn_query"),
              nn.Dense(1, use_bias=False, name="attn_v"))
    else:
      pointer_head = nn.Dense(self._num_nodes, name="pointer_head")
    return _Parts(nn.OptimizedLSTMCell(hid, name="lstm"),
                  nn.Embed(self._max_choices + self._num_nodes, hid, name="embed"), op_heads,
                  *attn,
                  pointer_head)

  def _ends_node(self, i: int) -> bool:
    return i + 1 == len(self.decisions) or self.decisions[i + 1].node != self.decisions[i].node

  def _decide(self, parts: _Parts, start_1xH: jax.Array, d: Decision, at: _At, width: int,
              walk: _Walk, draw: _Draw, ends_node: bool) -> tuple[_Walk, jax.Array]:
    """One op, pointer or anchor decision: an LSTM step, its scores over `width` choices (those
    from `at.num` on masked), the sampled (or forced) value and what the next step reads."""
    carry, h_1xH = parts.lstm(walk.carry, walk.x_1xH)
    logits_W, valid_W = self._scores(parts, d, at, width, h_1xH, walk.anchors_NxH,
                                     draw.temperature)
    masked_W = jnp.where(valid_W, logits_W, _MASKED)
    logp_W = jax.nn.log_softmax(masked_W)
    value = (jax.random.categorical(jax.random.fold_in(draw.key, at.index), masked_W)
             if draw.forced is None else draw.forced[at.index]).astype(jnp.int32)
    entropy = -jnp.sum(jnp.where(valid_W, jnp.exp(logp_W) * logp_W, 0.0))
    if d.kind == "anchor":
      x_1xH = start_1xH
    elif d.kind == "pointer" and d.feed_anchor:
      x_1xH = walk.anchors_h_NxH[at.first + value][None, :]
    else:
      offset = 0 if d.kind == "op" else self._max_choices
      x_1xH = parts.embed(offset + value)[None, :]
    anchors_NxH, anchors_h_NxH = walk.anchors_NxH, walk.anchors_h_NxH
    if ends_node:
      if parts.attn_anchor is not None:
        anchors_NxH = anchors_NxH.at[at.node].set(parts.attn_anchor(h_1xH)[0])
      anchors_h_NxH = anchors_h_NxH.at[at.node].set(h_1xH[0])
    return _Walk(carry, x_1xH, anchors_NxH, anchors_h_NxH, walk.log_prob + logp_W[value],
                 walk.entropy + entropy), value

  def _scores(self, parts: _Parts, d: Decision, at: _At, width: int, h_1xH: jax.Array,
              anchors_NxH: jax.Array, temperature: Any) -> tuple[jax.Array, jax.Array]:
    """Decision `d`'s squashed scores over `width` choices and which of them exist."""
    cfg = self.config
    valid_W = jnp.arange(width) < at.num
    tanh_c = cfg.tanh_c
    if d.kind == "op":
      logits = parts.op_heads[d.num_choices](h_1xH)[0]
      tanh_c = cfg.tanh_c / cfg.op_tanh_reduce
    elif d.kind == "anchor":
      logits = jnp.zeros((1,))
    elif cfg.attention:
      chosen_from = runs.window(anchors_NxH, at.first, width)
      logits = parts.attn_v(jnp.tanh(chosen_from + parts.attn_query(h_1xH)))[:, 0]
    else:
      logits = runs.window(parts.pointer_head(h_1xH)[0], at.first, width)
    if cfg.kind == "random" or d.kind == "anchor":
      return jnp.zeros((width,)), valid_W
    logits = tanh_c * jnp.tanh(logits / temperature)
    if d.prior:
      logits = logits + jnp.asarray(d.prior, jnp.float32)
    if d.kind == "pointer" and cfg.locality_prior:  # the corrected ENAS LM code: (k - j)^2 / 6
      distance_W = (at.node - at.first - jnp.arange(width)).astype(jnp.float32)
      logits = logits - cfg.locality_prior * jnp.square(distance_W)
    return logits, valid_W

  def _skip(self, parts: _Parts, i: int, walk: _Walk, skip_bits: list, draw: _Draw
            ) -> tuple[_Walk, jax.Array, jax.Array, list]:
    """Skip bit i (the macro space): the group's first bit takes the LSTM step, every bit is
    scored by attention against its target's anchor, the group's last bit sets the next input
    (the mean of the chosen layers' states) and, at a node's end, the node's anchors."""
    cfg, decisions, d = self.config, self.decisions, self.decisions[i]
    carry, h_1xH = walk.carry, walk.x_1xH
    if not (i > 0 and decisions[i - 1].kind == "skip" and decisions[i - 1].node == d.node):
      carry, h_1xH = parts.lstm(walk.carry, walk.x_1xH)
    s_j = parts.attn_v(jnp.tanh(walk.anchors_NxH[d.target] + parts.attn_query(h_1xH)))[0, 0]
    logits = jnp.stack([-s_j, s_j])
    logits = (jnp.zeros((2,)) if cfg.kind == "random"
              else cfg.tanh_c * jnp.tanh(logits / draw.temperature))
    logp = jax.nn.log_softmax(logits)
    value = (jax.random.categorical(jax.random.fold_in(draw.key, i), logits)
             if draw.forced is None else draw.forced[i]).astype(jnp.int32)
    p_on, t = jnp.exp(logp[1]), cfg.skip_target
    kl = p_on * (logp[1] - jnp.log(t)) + (1 - p_on) * (logp[0] - jnp.log(1 - t))
    skip_bits = skip_bits + [(d.target, value)]
    x_1xH, anchors_NxH, anchors_h_NxH = h_1xH, walk.anchors_NxH, walk.anchors_h_NxH
    if self._ends_node(i) or decisions[i + 1].kind != "skip":  # the group's input onwards
      picked_H = sum(b.astype(jnp.float32) * walk.anchors_h_NxH[j] for j, b in skip_bits)
      count = sum(b.astype(jnp.float32) for _, b in skip_bits)
      x_1xH, skip_bits = (picked_H / (1.0 + count))[None, :], []
    if self._ends_node(i):
      anchors_NxH = anchors_NxH.at[d.node].set(parts.attn_anchor(h_1xH)[0])
      anchors_h_NxH = anchors_h_NxH.at[d.node].set(h_1xH[0])
    walk = _Walk(carry, x_1xH, anchors_NxH, anchors_h_NxH, walk.log_prob + logp[value],
                 walk.entropy - jnp.sum(jnp.exp(logp) * logp))
    return walk, value, kl, skip_bits

  def _scan_run(self, parts: _Parts, start_1xH: jax.Array, first_i: int, block: int,
                blocks: int, walk: _Walk, draw: _Draw) -> tuple[_Walk, jax.Array]:
    """`blocks` consecutive nodes of `block` decisions each, as one `lax.scan` over nodes."""
    slots = self.decisions[first_i:first_i + block]
    rows = [self.decisions[first_i + b * block:first_i + (b + 1) * block] for b in range(blocks)]
    at_BxL = _At(*(jnp.asarray(x, jnp.int32) for x in (
        [[first_i + b * block + s for s in range(block)] for b in range(blocks)],
        [[d.node for d in row] for row in rows], [[d.first for d in row] for row in rows],
        [[d.num_choices for d in row] for row in rows])))
    widths = [max(row[s].num_choices for row in rows) for s in range(block)]

    def one_node(walk, at_L):
      values = []
      for s, d in enumerate(slots):
        walk, value = self._decide(parts, start_1xH, d, _At(*(x[s] for x in at_L)), widths[s],
                                   walk, draw, s == block - 1)
        values.append(value)
      return walk, jnp.stack(values)

    walk, values_BxL = jax.lax.scan(one_node, walk, at_BxL)
    return walk, values_BxL.reshape(-1)

  @property
  def _has_skips(self) -> bool:
    return any(d.kind == "skip" for d in self.decisions)

  @property
  def _max_choices(self) -> int:
    return max(d.num_choices for d in self.decisions)

  @property
  def _num_nodes(self) -> int:
    return max(d.node for d in self.decisions) + 1


class _PureLayer:
  """A layer and its variables, called like the bound layer (and usable inside `lax.scan`)."""

  def __init__(self, module: nn.Module, variables: Any):
    self.module, self.variables = module, variables

  def __call__(self, *args: Any) -> Any:
    return self.module.apply(self.variables, *args)


def _pure(parts: _Parts) -> _Parts:
  """The bound layers as pure functions of their own parameters."""
  def pure(module: nn.Module | None) -> _PureLayer | None:
    return None if module is None else _PureLayer(*module.unbind())
  return _Parts(pure(parts.lstm), pure(parts.embed),
                {k: pure(v) for k, v in parts.op_heads.items()}, pure(parts.attn_anchor),
                pure(parts.attn_query), pure(parts.attn_v), pure(parts.pointer_head))


def init_controller(controller: Controller, key: jax.Array) -> Any:
  """The controller's parameters."""
  return controller.init(key, jax.random.key(0))["params"]


def sample(controller: Controller, params: Any, key: jax.Array, step: jax.Array | None = None
           ) -> Sample:
  """One architecture's decision values, with their summed log-probability and entropy, at
  controller step `step` (the temperature schedule's; None: its start)."""
  return controller.apply({"params": params}, key, None, step)


def sample_many(controller: Controller, params: Any, key: jax.Array, n: int,
                step: jax.Array | None = None) -> Sample:
  """`n` samples in one call (vmap over keys): every field gains a leading axis of size n."""
  keys = jax.random.split(key, n)
  return jax.vmap(lambda k: controller.apply({"params": params}, k, None, step))(keys)


def score_many(controller: Controller, params: Any, values_SxD: jax.Array,
               step: jax.Array | None = None) -> Sample:
  """`sample_many`'s figures for the given rows of decision values (scored, not sampled)."""
  return jax.vmap(lambda v: controller.apply({"params": params}, jax.random.key(0), v, step))(
      values_SxD)


def log_prob(controller: Controller, params: Any, values_D: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
  """(log-probability, entropy) of the given decision values."""
  out = controller.apply({"params": params}, jax.random.key(0), values_D)
  return out.log_prob, out.entropy
