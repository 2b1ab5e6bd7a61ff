"""Search strategies that query a table under a budget: ENAS's controller, random search and
regularized evolution, over NAS-Bench-201's cells.

Each strategy makes `budget.queries` queries; a query of a cell reads one of its training seeds'
validation accuracy (drawn from the strategy's own random stream) and costs the cell's training
time. A run is a `Trace`: the cell and the observed accuracy of every query, in order.
`incumbent_curve` turns a trace into what the studies report: after q queries, the table's mean
accuracy of the cell with the best *observed* accuracy so far (what the strategy would return),
and `within_seconds` cuts a trace at a simulated-time budget.

- ENAS (`enas_traces`): the same controller and REINFORCE step as `python -m enas_jax.search`
  (`controller.steps.make_controller_step`, moving-average baseline, entropy bonus), each update
  on `num_samples` sampled cells; one compiled `lax.scan` per run, called once per seed.
- Random search (`random_trace`): uniform cells.
- Regularized evolution (`evolution_trace`, Real et al. 2019, "aging evolution"): a population
  of `population` random cells; each cycle picks `sample_size` members at random, mutates the one
  with the best observed accuracy (one edge's operation changed to a different one) and queries
  the child, which replaces the oldest member. NAS-Bench-201's settings: 10 and 3.

`Budget.free_repeats` changes the protocol for all three: a cell queried before is read from the
run's memory at no cost, so the budget counts distinct cells.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.controller import policy as ctl
from enas_jax.controller import steps as controller_steps
from enas_jax.data.nasbench201 import NUM_EDGES, NUM_OPS, Table, cell_index
from enas_jax.io.errors import UserError
from enas_jax.spaces.base import SearchSpace
from enas_jax.tasks.table.lookup import DeviceTable, index_of, query

RANDOM_STREAM, EVOLUTION_STREAM = 1, 2  # numpy streams of a seed (ENAS uses jax keys)
# With free repeats, samples a run may draw per query of its budget before it stops short (a
# policy that keeps sampling cells it has seen has converged).
MAX_SAMPLES_PER_QUERY = 20


@dataclasses.dataclass(frozen=True)
class Budget:
  """Queries each run makes (a budget in simulated seconds cuts a trace: `within_seconds`).

  `free_repeats`: a cell the run has queried before is read from the run's memory (the same
  observation, no cost) instead of queried again, so the budget counts distinct cells. False is
  NAS-Bench-201's protocol (every sample is a training run).
  """

  queries: int = 100
  free_repeats: bool = False

  def __post_init__(self) -> None:
    if self.queries < 1:
      raise UserError(f"A search budget needs at least 1 query, got {self.queries}.")


@dataclasses.dataclass(frozen=True)
class EvolutionConfig:
  population: int = 10
  sample_size: int = 3


class Trace(NamedTuple):
  """One run's queries in order: table rows [Q], the observed accuracies (%) [Q], and for ENAS
  the policy's entropy (nats, summed over the 6 decisions) when each query was sampled."""

  index_Q: np.ndarray
  observed_Q: np.ndarray
  entropy_Q: np.ndarray | None = None


def random_trace(table: Table, budget: Budget, seed: int) -> Trace:
  """Uniform cells (with free repeats: uniform among the cells not yet queried)."""
  rng = np.random.default_rng([seed, RANDOM_STREAM])
  if budget.free_repeats:
    index_Q = rng.permutation(len(table.seeds_K))[:budget.queries]
  else:
    index_Q = rng.integers(0, len(table.seeds_K), budget.queries)
  return Trace(index_Q, table.observe(index_Q, rng.random(len(index_Q))))


def _mutate(ops_E: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  child = ops_E.copy()
  edge = rng.integers(NUM_EDGES)
  child[edge] = (child[edge] + rng.integers(1, NUM_OPS)) % NUM_OPS  # a different operation
  return child


def evolution_trace(table: Table, budget: Budget, seed: int,
                    cfg: EvolutionConfig = EvolutionConfig()) -> Trace:
  """Regularized (aging) evolution; its first `population` queries are random cells."""
  rng = np.random.default_rng([seed, EVOLUTION_STREAM])
  population: list[tuple[np.ndarray, float]] = []  # oldest first
  index_Q, observed_Q, memory = [], [], {}
  for _ in range(budget.queries * (MAX_SAMPLES_PER_QUERY if budget.free_repeats else 1)):
    if len(population) < cfg.population:
      ops_E = rng.integers(0, NUM_OPS, NUM_EDGES)
    else:
      picks = rng.choice(len(population), size=min(cfg.sample_size, len(population)),
                         replace=False)
      parent = max((population[i] for i in picks), key=lambda member: member[1])
      ops_E = _mutate(parent[0], rng)
    k = cell_index(ops_E)
    u = rng.random()
    if budget.free_repeats and k in memory:
      observed = memory[k]
    else:
      observed = memory[k] = float(table.observe(np.asarray([k]), np.asarray([u]))[0])
      index_Q.append(k)
      observed_Q.append(observed)
    population.append((ops_E, observed))
    if len(population) > cfg.population:
      population.pop(0)
    if len(index_Q) == budget.queries:
      break
  return Trace(np.asarray(index_Q), np.asarray(observed_Q))


def enas_traces(table: Table, space: SearchSpace, ctrl_cfg: ctl.ControllerConfig,
                budget: Budget, seeds: np.ndarray, reward_scale: float = 1.0) -> list[Trace]:
  """ENAS's controller, one run per seed (one compiled scan, called per seed). The reward is the
  drawn accuracy as a fraction times `reward_scale` (1: ENAS's reward; other values for the
  studies of reward scaling)."""
  device_table = DeviceTable.of(table)
  controller = ctl.Controller(space.decisions(None), ctrl_cfg)
  optimizer = controller_steps.make_controller_optimizer(ctrl_cfg)

  def score_S(memory_K, batch_stats, batch, values_SxD):
    """Drawn accuracies, or the remembered ones (the step's "weights" are the run's memory)."""
    acc_S, time_S = query(device_table, values_SxD, batch["u"])
    acc_S, _ = _recall(memory_K, index_of(values_SxD), acc_S, budget.free_repeats)
    return acc_S * reward_scale, {"valid_acc": acc_S, "train_time": time_S}

  step = controller_steps.make_controller_step(controller, ctrl_cfg, optimizer, score_S)
  n = ctrl_cfg.num_samples
  updates = -(-budget.queries * (MAX_SAMPLES_PER_QUERY if budget.free_repeats else 1) // n)

  def one_run(seed):
    key = jax.random.key(seed)
    state = controller_steps.init_controller_state(controller, optimizer,
                                                   jax.random.fold_in(key, 0))
    memory_K = jnp.full(device_table.seeds_K.shape, jnp.nan)  # stays empty without free repeats

    def update(carry, i):
      state, memory_K = carry
      k = jax.random.fold_in(jax.random.fold_in(key, 1), i)
      u_S = jax.random.uniform(jax.random.fold_in(jax.random.fold_in(key, 2), i), (n,))
      sample = ctl.sample_many(controller, state.params, k, n, state.step)  # as the step does
      index_S = index_of(sample.values)
      acc_S, new_S = _recall(memory_K, index_S, query(device_table, sample.values, u_S)[0],
                             budget.free_repeats)
      state, _ = step(state, memory_K, {}, {"u": u_S}, k)
      if budget.free_repeats:
        memory_K = memory_K.at[index_S].set(acc_S)
      return (state, memory_K), (index_S, acc_S, new_S, sample.entropy)

    _, out_UxS = jax.lax.scan(update, (state, memory_K), jnp.arange(updates))
    return tuple(x.reshape(-1) for x in out_UxS)

  run = jax.jit(one_run)  # compiled once: the seed is an argument
  traces = []
  for seed in np.asarray(seeds, np.uint32):
    index_Q, acc_Q, new_Q, entropy_Q = (np.asarray(x) for x in run(jnp.asarray(seed)))
    keep = np.nonzero(new_Q)[0][:budget.queries]  # every sample, or the first of each cell
    traces.append(Trace(index_Q[keep], acc_Q[keep] * 100.0, entropy_Q[keep]))
  return traces


def _recall(memory_K: jax.Array, index_S: jax.Array, drawn_S: jax.Array, free_repeats: bool
            ) -> tuple[jax.Array, jax.Array]:
  """(accuracy of each sample, whether it is a new query). Without free repeats: every sample is
  a query with its own draw. With them: a remembered cell's observation, else the drawn one; a
  cell sampled twice in one batch is queried once (its first draw)."""
  if not free_repeats:
    return drawn_S, jnp.ones(drawn_S.shape, bool)
  same_SxS = index_S[:, None] == index_S[None, :]
  first_S = jnp.argmax(same_SxS, axis=1)  # the first sample of the batch with the same cell
  remembered_S = memory_K[index_S]
  seen_S = ~jnp.isnan(remembered_S)
  acc_S = jnp.where(seen_S, remembered_S, drawn_S[first_S])
  return acc_S, ~seen_S & (first_S == jnp.arange(index_S.shape[0]))


def incumbent_curve(table: Table, trace: Trace, length: int | None = None) -> np.ndarray:
  """[Q]: after each query, the mean accuracy (%) of the best-observed cell so far; a trace
  shorter than `length` (a run that stopped finding new cells) keeps its last incumbent."""
  best_Q = np.maximum.accumulate(trace.observed_Q)
  # The first query reaching each running maximum is the incumbent from then on.
  is_new = np.concatenate([[True], best_Q[1:] > best_Q[:-1]])
  holder_Q = np.maximum.accumulate(np.where(is_new, np.arange(len(best_Q)), 0))
  curve = table.mean_acc_K[trace.index_Q[holder_Q]]
  if length is not None and len(curve) < length:
    curve = np.concatenate([curve, np.full(length - len(curve), curve[-1])])
  return curve


def within_seconds(table: Table, trace: Trace, seconds: float) -> int:
  """How many of the trace's queries fit in `seconds` of simulated training."""
  spent_Q = np.cumsum(table.train_time_K[trace.index_Q].astype(np.float64))
  return int(np.searchsorted(spent_Q, seconds, side="right"))
