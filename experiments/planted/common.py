"""What both studies share: the search config at a given scale, running a search in-process, and
training a cell alone from scratch.

"Trained alone" here means: fresh weights, only this cell, the shared weights' recipe (`shared`
section: SGD, clipping, the same regularisation) for `standalone_epochs` passes over the training
split with the scale's own annealed learning rate (`standalone_lr_decay` every pass from
`standalone_decay_start`), then the perplexity on the whole validation split. The annealing is
what makes the measure precise: trained this way the teacher's cell from three initialisations
agrees to about 3e-4 of its perplexity (sd 0.0075 at 27.4; experiments/results/science.md, "the
benchmark"). The architecture is a traced argument of one jitted step, so every cell of a study
trains with the same compiled code (the unchosen edges exist but never touch the output; they only
decay under the L2 term).
"""
from __future__ import annotations

import ast
import dataclasses
import json
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from enas_jax.configs import quickstart
from enas_jax.io import metrics
from enas_jax.data.lm_batches import batchify, windows
from enas_jax.data.text import Corpus
from enas_jax.io.errors import UserError
from enas_jax.io.workdir import write_atomically
from enas_jax.report.alone_cache import AloneCache
from enas_jax.run import config as run_config
from enas_jax.run import search as search_run
from enas_jax.ops.params import set_learning_rate
from enas_jax.tasks.language import steps as lm_steps
from enas_jax.spaces.rnn import formats
from enas_jax.spaces.rnn.arch import RNNArch
from enas_jax.spaces.rnn.model import RNNLanguageModel


@dataclasses.dataclass(frozen=True)
class Scale:
  """How big a study runs. `small` fits 2 CPU cores in minutes per search."""

  search_epochs: int  # alternations of shared and controller training per search
  controller_steps: int  # controller updates per epoch (each rewards one sampled cell)
  derive_samples: int  # cells scored when deriving
  standalone_epochs: int  # passes over the training split when a cell is trained alone
  train_tokens: int  # planted corpus: training split size
  width: int  # embedding = hidden size
  # The benchmark's design (issue 19; the measurements behind each choice: science.md and
  # science/benchmark_design.md, with the probes that were not kept)
  teacher_arch: str = "0 0 0 0 2 1 1 0 3 3 1"  # the planted cell (authors' string)
  teacher_weight_scale: float = 1.5  # the planted teacher's cell weights ~ U(+-scale*sqrt(3/H))
  teacher_readout: str = "linear"  # teacher logits from its state as it is (the student's
  # softmax layer can represent them exactly), not standardised
  teacher_logit_scale: float = 6.0  # teacher output matrix ~ N(0, (scale / sqrt(H))^2)
  tie_weights: bool = False  # the student's softmax its own matrix, as the teacher's is
  standalone_lr_decay: float = 0.75  # trained alone: lr multiplied by this every pass...
  standalone_decay_start: int = 2  # ...from this pass on
  standalone_warmup_steps: int = 0  # trained alone: lr ramps linearly up to the pass's over
  # the first this many steps (lr * (t + 1) / N at step t); 0: none (the yardstick's recipe)


SCALES = {
    "tiny": Scale(search_epochs=2, controller_steps=5, derive_samples=4, standalone_epochs=1,
                  train_tokens=8_000, width=16),
    "small": Scale(search_epochs=8, controller_steps=100, derive_samples=32, standalone_epochs=10,
                   train_tokens=180_000, width=64),
    "medium": Scale(search_epochs=20, controller_steps=300, derive_samples=64,
                    standalone_epochs=8, train_tokens=500_000, width=128),
}


def scale_of(name: str) -> Scale:
  if name not in SCALES:
    raise UserError(f"--scale is {name!r}; the scales are {', '.join(SCALES)}.")
  return SCALES[name]


def search_config(scale: Scale, seed: int, kind: str) -> ml_collections.ConfigDict:
  """The quickstart search on the planted corpus, resized; only `seed` and `kind` vary within a
  study, so ENAS and random search get the same shared steps and the same number of evaluated
  cells."""
  config = quickstart.get_config()
  config.seed = seed
  config.controller.kind = kind
  config.search.epochs = scale.search_epochs
  config.search.controller_steps = scale.controller_steps
  config.search.derive_samples = scale.derive_samples
  config.search.log_every = max(1, min(20, scale.controller_steps))
  config.shared.lr_decay_start_epoch = max(1, scale.search_epochs // 2)
  config.data.planted.train_tokens = scale.train_tokens
  config.data.planted.arch = scale.teacher_arch
  config.data.planted.weight_scale = scale.teacher_weight_scale
  config.data.planted.readout = scale.teacher_readout
  config.data.planted.logit_scale = scale.teacher_logit_scale
  config.model.tie_weights = scale.tie_weights
  config.model.embed_dim = config.model.hidden_dim = scale.width
  config.checkpoint.every_steps = 0  # epoch ends only
  if scale is SCALES["tiny"]:
    config.data.batch_size = config.data.eval_batch_size = 4
    config.data.bptt = 10
    config.data.planted.valid_tokens = config.data.planted.test_tokens = 2_000
    config.controller.hidden_dim = 16
  return config


def override(config: ml_collections.ConfigDict, settings: list[str]) -> ml_collections.ConfigDict:
  """`config` with each `section.field=value` of `settings` applied (a study's remedy, e.g.
  `model.activation_weights=node0`); values are parsed as Python literals, else kept as text."""
  for setting in settings:
    name, sep, text = setting.partition("=")
    node, *path = name.split(".")
    where = config
    try:
      for part in [node, *path][:-1]:
        where = where[part]
      old = where[([node, *path])[-1]]
    except (KeyError, AttributeError):
      raise UserError(f"--set {setting}: the config has no field {name!r}.") from None
    if not sep:
      raise UserError(f"--set {setting}: write it as section.field=value.")
    where[([node, *path])[-1]] = typed_value(text, old, f"--set {setting}: {name}")
  return config


def typed_value(text: str, old: Any, what: str) -> Any:
  """`text` as a value of `old`'s type: parsed as a Python literal, else kept as text (an int
  where a float goes becomes a float); a user error naming `what` for any other type."""
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  if isinstance(old, float) and isinstance(value, int):
    value = float(value)
  if type(value) is not type(old):
    raise UserError(f"{what} takes {type(old).__name__} values, not {value!r}.")
  return value


def run_search(config: ml_collections.ConfigDict, workdir: str
               ) -> tuple[dict[str, Any], search_run.SearchRun]:
  """Runs (or, when the workdir holds a finished one, reloads) a search; its summary and run."""
  cfg = run_config.search_config(config)
  with open(os.path.join(_mkdir(workdir), "stdout.txt"), "a") as out:
    run = search_run.SearchRun(cfg, workdir, out, metrics.Progress(enabled=False))
    summary = run.execute()
  return summary, run


def shared_perplexity(run: search_run.SearchRun, arch: RNNArch) -> float:
  """The cell's perplexity on the whole validation split under the search's final weights."""
  return run.evaluate(run.final_state, arch)


def finetuned_perplexity(run: search_run.SearchRun, arch: RNNArch, steps: int) -> float:
  """The cell's whole-validation perplexity after `steps` shared steps on it alone from the
  search's final weights (`SearchRun.finetuned`: the same batches and keys for every cell)."""
  return run.task.evaluate(run.finetuned(run.final_state.model, arch, steps), arch)


class StandaloneTrainer:
  """Trains cells alone from scratch with the search's recipe (one compilation for all cells).
  `keep_in`: a study's --out folder, where each figure is kept as it is trained
  (`report.alone_cache`, trained_alone.json, under a hash of the recipe, the corpus, the cell,
  the seed and the JAX that computed it): a study stopped and run again does not train those
  cells again."""

  def __init__(self, config: ml_collections.ConfigDict, corpus: Corpus, scale: Scale,
               seed: int = 0, keep_in: str = ""):
    self.cfg = run_config.search_config(config)
    self.corpus, self.scale, self.seed = corpus, scale, seed
    self.kept = (AloneCache(keep_in, {"study_recipe": config.to_dict(),
                                      "scale": dataclasses.asdict(scale),
                                      "corpus": corpus.fingerprint()}, print)
                 if keep_in else None)
    d = self.cfg.data
    self.model = RNNLanguageModel(self.cfg.model, corpus.vocab_size)
    self.optimizer = lm_steps.make_optimizer(self.cfg.shared)
    train_step, eval_step = lm_steps.make_lm_steps(self.model, self.optimizer,
                                                   self.cfg.shared.l2)
    self.train_step = jax.jit(train_step, donate_argnums=0)
    self.eval_step = jax.jit(eval_step)
    self.train_BxN = batchify(corpus.train, d.batch_size, "train", min_steps=1)
    self.valid_BxN = batchify(corpus.valid, d.eval_batch_size, "valid", min_steps=1)

  def valid_perplexity(self, arch: RNNArch, seed: int | None = None,
                       on_step: Callable[[dict[str, Any]], None] | None = None) -> float:
    """Trains `arch` alone from fresh weights; `seed` (default: the trainer's) sets the weights'
    initialisation, the dropout masks and the data order; `on_step` (a probe's) is given each
    step's metrics (then the figure is neither kept nor reused)."""
    seed = self.seed if seed is None else seed
    if self.kept is None or on_step is not None:
      return self._train(arch, seed, on_step)
    authors = formats.to_authors_string(arch)
    key = self.kept.key(authors, self.scale.standalone_epochs, "study", seed)
    figure = self.kept.get(key)
    if figure is None:
      figure = self._train(arch, seed, None)
      self.kept.put(key, figure, authors)
    return figure

  def _train(self, arch: RNNArch, seed: int,
             on_step: Callable[[dict[str, Any]], None] | None) -> float:
    d, scale = self.cfg.data, self.scale
    arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), arch)
    key = jax.random.key(seed)
    state = lm_steps.init_state(self.model, self.optimizer, jax.random.fold_in(key, 0),
                                d.batch_size, arch)
    for epoch in range(scale.standalone_epochs):
      lr = self.cfg.shared.lr * scale.standalone_lr_decay ** max(
          0, epoch - scale.standalone_decay_start)
      state = state.replace(hidden=jnp.zeros_like(state.hidden),
                            opt_state=set_learning_rate(state.opt_state, lr))
      for window in windows(self.train_BxN, d.bptt, seed, epoch):
        step, warmup = int(state.step), scale.standalone_warmup_steps
        if step <= warmup and warmup:  # the ramp, then the pass's rate back at step N
          state = state.replace(opt_state=set_learning_rate(
              state.opt_state, lr * lm_steps.warmup_factor(step, warmup)))
        step_key = jax.random.fold_in(jax.random.fold_in(key, 1), step)
        state, metrics_ = self.train_step(state, lm_steps.window_batch(window, d.bptt), arch,
                                          step_key)
        if on_step is not None:
          on_step(metrics_)
    return lm_steps.evaluate_perplexity(self.eval_step, state.params, state.batch_stats,
                                        self.valid_BxN, d.bptt, arch)


def use_compilation_cache(out: str) -> None:
  """A persistent XLA cache under `out`: every search of a study compiles the same programs, so
  only the first pays for it (the compiled code is the same either way)."""
  jax.config.update("jax_compilation_cache_dir", os.path.join(out, "xla_cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def arch_of(authors: str) -> RNNArch:
  return formats.from_authors_string(authors)


class StudyResults(dict):
  """A study's results as read from `path`: a field it lacks (the file is another kind of
  study's, or an older one's) is a user error naming the file and `flag`, not a KeyError."""

  def __init__(self, data: dict[str, Any], path: str, flag: str):
    super().__init__(data)
    self.path, self.flag = path, flag

  def __missing__(self, field: str) -> Any:
    raise UserError(f"{self.flag}: {self.path} has no field {field!r}, which this study reads: "
                    f"it is another kind of study's output. Give the --out folder of the study "
                    f"this option names (see --help).")


def read_json(path: str, flag: str) -> StudyResults:
  """The JSON object in `path` (given by option `flag`), its fields read as `StudyResults`';
  a file that cannot be read or is not a JSON object is a user error naming it."""
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, ValueError) as err:  # ValueError: cut short, not JSON or not UTF-8
    why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    raise UserError(f"{flag}: cannot read {path} as JSON ({why}). If a study was stopped while "
                    f"writing it, run that study again.") from None
  if not isinstance(data, dict):
    raise UserError(f"{flag}: {path} holds JSON but not a study's results (not an object).")
  return StudyResults(data, path, flag)


def read_results(folder: str, flag: str) -> StudyResults:
  """A finished study's results.json (`folder`: its --out); a user error naming `flag` (the
  option that gave the folder) when there is none or it cannot be read (`read_json`)."""
  path = os.path.join(folder, "results.json")
  if not os.path.isfile(path):
    raise UserError(f"{flag}: {folder} has no results.json; give the --out folder of a "
                    f"finished study.")
  return read_json(path, flag)


def write_json(path: str, data: Any) -> None:
  """`data` as indented JSON, written whole or not at all (`io.workdir.write_atomically`: a
  full disk leaves an earlier file as it was and names the file in its error)."""
  write_atomically(path, json.dumps(data, indent=2))


def write_report(out: str, result: Any, text: str) -> None:
  """A summary study's outputs: `result` to OUT.json, `text` (its markdown) to OUT.md and the
  terminal."""
  write_json(out + ".json", result)
  write_atomically(out + ".md", text)
  print(text, end="")


def _mkdir(path: str) -> str:
  os.makedirs(path, exist_ok=True)
  return path


def corpus_facts(corpus: Corpus) -> dict[str, Any]:
  return {"name": corpus.name, "vocab": corpus.vocab_size, "train_tokens": int(corpus.train.size),
          "valid_tokens": int(corpus.valid.size),
          **{k: v for k, v in corpus.info.items() if isinstance(v, (int, float, str))}}


def last_entropy(workdir: str) -> float:
  """The controller's policy entropy at its last record (near 0: it always samples one cell)."""
  records = metrics.read_metrics(os.path.join(workdir, "metrics.jsonl"))
  return [r["entropy"] for r in records if r["phase"] == "controller"][-1]


def random_cells(num_nodes: int, count: int, seed: int, exclude: set[str]) -> list[str]:
  """`count` distinct cells drawn uniformly (authors' strings), none of `exclude`."""
  rng = np.random.default_rng(seed)
  cells: list[str] = []
  while len(cells) < count:
    prev = [-1] + [int(rng.integers(0, k)) for k in range(1, num_nodes)]
    act = [int(a) for a in rng.integers(0, 4, num_nodes)]
    tokens = [act[0]] + [t for k in range(1, num_nodes) for t in (prev[k], act[k])]
    text = " ".join(map(str, tokens))
    if text not in exclude and text not in cells:
      cells.append(text)
  return cells
