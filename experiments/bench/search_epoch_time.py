"""Time per epoch of a search at the paper's sizes, and the projected time of the whole search.

Meant for a GPU (the targets: the 150-epoch PTB search and the CIFAR-10 micro search each in at
most one hour on one H100); runs anywhere. Data of the right shapes is generated on the spot, so
nothing needs downloading: the PTB search runs on random words with PTB's vocabulary size and
split sizes (929k training, 73k validation tokens), the micro search on synthetic 32x32 images in
CIFAR-10's numbers (45,000 training, 5,000 validation held out beside them, 10,000 test).

It builds the real search (the `SearchRun` the CLI runs) and times, after one compiling call of
each, `--steps` shared steps and `--steps` controller updates (each with its own key, so its own
sampled architecture: the median is printed, and the range), one derive step and one whole
derive as the loop runs it (the derive step, the best architecture's whole validation evaluation,
its records and pictures; timed at its second call: the first, printed as `derive_first_call_s`,
compiles the validation program once per search); then
    epoch = shared steps per epoch x t_shared + controller steps x t_controller
            + t_derive (validation included),   search = epochs x epoch.

Usage:
  python experiments/bench/search_epoch_time.py --space=rnn             # paper sizes
  python experiments/bench/search_epoch_time.py --space=micro --steps=20
  python experiments/bench/search_epoch_time.py --space=rnn --small     # a quick CPU check
  python experiments/bench/search_epoch_time.py --space=rnn --deterministic  # its GPU cost
  python experiments/bench/search_epoch_time.py --space=rnn --set=model.activation_weights=all
  python experiments/bench/search_epoch_time.py --space=rnn --trace_dir=/tmp/t  # + device traces
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from typing import Any

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from enas_jax.configs import cifar10_micro, ptb_rnn
from enas_jax.data import text
from enas_jax.io import metrics
from enas_jax.run import config as run_config
from enas_jax.run import search as search_run
from experiments.bench import device_trace
from experiments.bench import machine_info
from experiments.planted import common


def random_text(directory: str, vocab_size: int, tokens: dict[str, int]) -> None:
  """Writes a corpus of uniformly random words (PTB's layout; every word in the training split)
  to `directory`: step times do not depend on which words the batches hold, and reading it
  takes a second where generating the planted corpus takes 20 (on a GPU) to minutes."""
  rng = np.random.default_rng(0)
  words = [text.EOS] + [f"w{i}" for i in range(1, vocab_size)]
  splits = {name: rng.integers(0, vocab_size, n).astype(np.int32) for name, n in tokens.items()}
  splits["train"][:vocab_size] = rng.permutation(vocab_size)
  text.write_corpus(text.Corpus(words, splits["train"], splits["valid"], splits["test"],
                                name="random"), directory)


def rnn_config(small: bool, corpus_dir: str) -> Any:
  """The paper's PTB search on a random corpus of PTB's vocabulary and split sizes."""
  config = ptb_rnn.get_config()
  vocab, tokens = 10_000, {"train": 929_589, "valid": 73_760, "test": 82_430}
  if small:
    vocab, tokens = 1000, {"train": 50_000, "valid": 10_000, "test": 5_000}
    config.model.embed_dim = config.model.hidden_dim = 128
    config.search.controller_steps, config.search.derive_samples = 100, 20
  random_text(corpus_dir, vocab, tokens)
  config.data.source, config.data.dir = "directory", corpus_dir
  return config


def micro_config(small: bool) -> Any:
  config = cifar10_micro.get_config()
  config.data.source = "synthetic"
  s = config.data.synthetic
  s.train_images, s.test_images, s.size = 45_000, 10_000, 32  # + the 5,000 held out
  if small:
    s.train_images, s.test_images, s.size = 2_000, 200, 16
    config.data.valid_size = 400
    config.model.num_layers, config.model.filters = 2, 8
  return config


def timed(fn, n: int) -> tuple[float, float, float]:
  """Median, least and most seconds of `fn(i)` over calls i = 1..n after one untimed call
  `fn(0)`; each call gets its own index (its own key: its own sampled architecture)."""
  jax.block_until_ready(fn(0))
  times = []
  for i in range(1, n + 1):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(i))
    times.append(time.perf_counter() - t0)
  return float(np.median(times)), min(times), max(times)


def show(name: str, value: Any) -> None:
  """Prints one figure at once (a run stopped at its time limit keeps what it measured)."""
  print(f"{name:>28}: {value:.4g}" if isinstance(value, float) else f"{name:>28}: {value}",
        flush=True)


def trace_steps(trace_dir: str, steps: dict[str, Any]) -> None:
  """Traces 3 more calls of each step (keys of their own) and prints where the time went."""
  for name, fn in steps.items():
    calls = iter(range(1000, 1004))
    print(f"# {name} step, traced:", flush=True)
    print("\n".join(device_trace.traced(lambda f=fn, c=calls: f(next(c)), 3,
                                         os.path.join(trace_dir, name))), flush=True)


def measure(space: str, small: bool, steps: int, deterministic: bool = False,
            settings: tuple[str, ...] = (), trace_dir: str | None = None) -> dict[str, Any]:
  """Times the phases and projects the search, printing each figure as it is measured."""
  r: dict[str, Any] = {}

  def record(name: str, value: Any) -> None:
    r[name] = value
    show(name, value)

  with tempfile.TemporaryDirectory() as workdir:
    t0 = time.perf_counter()
    config = (rnn_config(small, os.path.join(workdir, "corpus")) if space == "rnn"
              else micro_config(small))
    config.deterministic = deterministic
    common.override(config, list(settings))
    run = search_run.SearchRun(run_config.search_config(config), workdir, io.StringIO(),
                         metrics.Progress(enabled=False))
    record("setup_data_s", time.perf_counter() - t0)  # the data made or read, the programs built
    t1 = time.perf_counter()
    state = run.fresh_state()  # the steps traced for their metrics' shapes, the initialisers
    record("setup_state_s", time.perf_counter() - t1)  # compiled and run
    run.open_log(None)  # derive writes its records and pictures
    record("setup_s", time.perf_counter() - t0)
    if space == "rnn":  # what "auto" resolved to on this backend
      record("activation_dispatch", run.cfg.model.cell_options.activation_dispatch)
    prog, key = run.program, jax.random.key(0)
    shared_batch = next(run.task.shared_batches(state, 1))
    reward_batch = next(run.task.reward_batches(state, 1))

    # the shared steps' architectures: one block of the shared draw (timed: its share of a
    # step is added to the step's time), each timed step its own
    record("shared_draw_s", timed(lambda i: prog.shared_draw(state.ctrl, key, np.int32(i)),
                                  1)[0])
    values = np.asarray(prog.shared_draw(state.ctrl, key, np.int32(0)))

    def shared(i: int):
      args = run.placed(shared_batch, state.model, values[i % len(values)],
                        jax.random.fold_in(key, i), state.sums["shared"])
      state.model, state.sums["shared"] = prog.shared_step(*args)
      return state.sums["shared"]

    def controller(i: int):
      args = run.placed(reward_batch, state.ctrl, state.model.params, state.model.batch_stats,
                        jax.random.fold_in(key, i), state.sums["controller"])
      state.ctrl, state.sums["controller"] = prog.controller_step(*args)
      return state.sums["controller"]

    for name, fn in (("shared", shared), ("controller", controller)):
      median, least, most = timed(fn, steps)
      record(f"{name}_step_s", median)  # each call samples its own architecture:
      record(f"{name}_step_range_s", f"{least:.4g} - {most:.4g}")  # the spread over them
    record("derive_step_s", timed(lambda _: prog.derive_step(
        state.ctrl, state.model.params, state.model.batch_stats, reward_batch, key),
        1)[0])
    t0 = time.perf_counter()  # the epoch's derive as the loop runs it (validation included):
    run.derive(state, None)  # the first call compiles the validation program,
    record("derive_first_call_s", time.perf_counter() - t0)
    t0 = time.perf_counter()  # as the search's first epoch does once; later epochs reuse it
    derived = run.derive(state, None)
    record("derive_with_validation_s", time.perf_counter() - t0)
    cfg = run.cfg.search
    record("shared_steps_per_epoch", run.task.shared_phase_length(state))
    record("controller_steps_per_epoch", cfg.controller_steps)
    epoch = (r["shared_steps_per_epoch"] * (r["shared_step_s"]
                                             + r["shared_draw_s"] / len(values))
             + cfg.controller_steps * r["controller_step_s"] + r["derive_with_validation_s"])
    record("epoch_s", epoch)
    record("epochs", cfg.epochs)
    record("search_h", cfg.epochs * epoch / 3600)
    record("derived", str(derived.get("authors", ""))[:40])
    if trace_dir:  # last: a run stopped at its limit loses only this
      trace_steps(trace_dir, {"shared": shared, "controller": controller})
  return r


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--space", choices=["rnn", "micro"], default="rnn")
  parser.add_argument("--steps", type=int, default=10, help="timed calls per phase")
  parser.add_argument("--small", action="store_true", help="small sizes: a quick CPU check")
  parser.add_argument("--deterministic", action="store_true",
                      help="--config.deterministic=True: XLA's deterministic GPU operations")
  parser.add_argument("--trace_dir", default=None,
                      help="also trace 3 shared and 3 controller steps here and summarise them")
  parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                      help="a config change, e.g. model.activation_weights=all (repeatable)")
  args = parser.parse_args()
  if args.deterministic:  # before the backend starts, as the commands do
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_gpu_deterministic_ops=true").strip()
  print(f"# machine: {machine_info.describe()}; space {args.space}, "
        f"{'small' if args.small else 'paper'} sizes"
        f"{', deterministic GPU operations' if args.deterministic else ''}"
        f"{''.join(' --set=' + s for s in args.set)}")
  measure(args.space, args.small, args.steps, args.deterministic, tuple(args.set),
          args.trace_dir)


if __name__ == "__main__":
  main()
