r"""Scratch probe (science.md section 28): is the defaults' answer the last epoch's derived cell?

For each seed, the defaults' ENAS search of the planted benchmark's small scale (the compare
study's search, `common.search_config`), its derived cells epoch by epoch, the finish's
rescoring under the final weights and the answer; where the answer is not the last epoch's
cell, both trained alone with the yardstick's recipe (the compare study's `StandaloneTrainer`).

  PYTHONPATH=. python experiments/results/science/last_epoch_probe/probe.py \
      --out=workdirs/science/last_epoch --seeds=0-9
  PYTHONPATH=. python experiments/results/science/last_epoch_probe/probe.py --corpus=ptb \
      --out=workdirs/science/last_epoch_ptb --seeds=20-24   # PTB at CPU scale (compare's)

Section 29 added the rule R (`rule_of`): each row's last epoch's cell screened and R's pick.
"""
from __future__ import annotations

import argparse
import json
import os

import jax

from enas_jax.run import screen as screen_lib
from enas_jax.run import search as search_run
from experiments.planted import common, ranking


def seeds_of(text: str) -> list[int]:
  """"0-9" or "0-19,30-39" -> the seeds."""
  seeds = []
  for part in text.split(","):
    lo, _, hi = part.partition("-")
    seeds += range(int(lo), int(hi or lo) + 1)
  return seeds


def load_search(out: str, seed: int, kind: str = "enas", data_dir: str = ""
                ) -> tuple[dict, search_run.SearchRun]:
  """The compare study's search of this seed at the small scale (run, or reloaded when `out`
  holds it finished): on the planted corpus, or on PTB when `data_dir` is the prepared corpus."""
  config = common.search_config(common.scale_of("small"), seed, kind)
  if data_dir:  # as the compare study's PTB searches read it
    config.data.source, config.data.dir = "directory", data_dir
  return common.run_search(config, os.path.join(out, "searches", f"{kind}_seed{seed}"))


def screen_key(run: search_run.SearchRun) -> jax.Array:
  """The key the finish screens its candidates with (`SearchRun.finish`)."""
  return jax.random.fold_in(run.base_key, search_run.SCREEN_STREAM)


def rule_of(run: search_run.SearchRun, summary: dict, last: str) -> dict:
  """Section 29's rule R: the last epoch's cell if it passes the answer's screen (the finish's
  screen, key and steps), else the finish's answer. Where the finish screened that cell too, the
  two screens must agree to the bit."""
  if not run.cfg.search.screen_steps:
    return {"rule_pick": last}
  found = screen_lib.screen(run, common.arch_of(last), screen_key(run))
  for earlier in summary["screen"]["candidates"]:
    if earlier["authors"] == last and {k: earlier[k] for k in found} != found:
      raise SystemExit(f"seed's screen of {last!r} differs from the finish's: {found} {earlier}")
  return {"last_screen": found, "rule_pick": last if found["passed"] else summary["authors"]}


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--seeds", default="0-19")
  parser.add_argument("--kind", default="enas")
  parser.add_argument("--corpus", default="planted", choices=("planted", "ptb"))
  parser.add_argument("--ptb_dir", default="../shared/data/ptb")
  args = parser.parse_args()
  scale = common.scale_of("small")
  trainer = None
  data_dir = (ranking.prepare_ptb(args.ptb_dir, os.path.join(args.out, "ptb_corpus"))
              if args.corpus == "ptb" else "")
  for seed in seeds_of(args.seeds):
    summary, run = load_search(args.out, seed, args.kind, data_dir)
    if trainer is None:
      trainer = common.StandaloneTrainer(common.search_config(scale, 0, "enas"),
                                         run.task.corpus, scale, keep_in=args.out)
    history = [h["authors"] for h in summary["history"]]
    rescored = {r["authors"]: r["valid_ppl_shared"] for r in summary["rescored"]}
    answer, last = summary["authors"], history[-1]
    first = next(i + 1 for i, a in enumerate(history) if a == answer) if answer in history else 0
    row = {"seed": seed, "answer": answer, "last_epoch_cell": last,
           "answer_is_last": answer == last, "answer_first_epoch": first,
           "epochs_with_last_cell": sum(a == last for a in history),
           "history": history, "rescored": rescored, "screen": summary.get("screen"),
           "answer_alone": trainer.valid_perplexity(common.arch_of(answer))}
    if answer != last:
      row["last_alone"] = trainer.valid_perplexity(common.arch_of(last))
    row.update(rule_of(run, summary, last))
    with open(os.path.join(args.out, f"seed{seed}.json"), "w") as f:
      json.dump(row, f, indent=1)
    print(json.dumps({k: row[k] for k in ("seed", "answer", "last_epoch_cell", "answer_is_last",
                                          "answer_first_epoch", "answer_alone", "rule_pick")}
                     | ({"last_alone": row["last_alone"]} if "last_alone" in row else {})),
          flush=True)


if __name__ == "__main__":
  main()
