r"""Kendall tau over several searches per setting: mean, spread and a permutation test.

  python -m experiments.planted.tau_seeds \
      --group all workdirs/science/v2/planted_enas_all_seed{0,1,2,3,4} \
      --group shared workdirs/science/v2/planted_enas_shared_seed{0,1,2,3,4} \
      --out=experiments/results/science/tau_seeds_planted

Each `--group NAME DIR [DIR ...]` names finished `ranking` studies, one search each (their seeds
differ). Writes each group's taus, mean and standard deviation, and for every pair of groups the
two-sided permutation test of equal mean tau, to OUT.md and OUT.json. A group of studies that
scored the cells after fine-tuning (`ranking --finetune_steps=K`) also gets the same searches'
plain shared-weight taus and the paired sign-flip test of fine-tuned against plain.
"""
from __future__ import annotations

import argparse
import itertools
from typing import Any

from enas_jax.io.errors import UserError, run_main
from experiments.planted import common, stats


def read_group(words: list[str]) -> tuple[str, list[dict[str, Any]]]:
  name, dirs = words[0], words[1:]
  if not dirs:
    raise UserError(f"--group {name}: write it as NAME DIR [DIR ...] (finished ranking studies).")
  rows = []
  for folder in dirs:
    r = common.read_results(folder, f"--group {name}")
    rows.append({"dir": folder, "settings": r["settings"], "tau": r["kendall_tau"],
                 "tau_p": r["kendall_tau_p"], "broken": r["worse_than_uniform_under_shared"],
                 "entropy_end": r["entropy_end"], "regret": r["shared_pick_regret_ppl"],
                 "finetune_steps": r.get("finetune_steps", 0),
                 "tau_plain": (r.get("tau_curve") or [{}])[-1].get("kendall_tau_plain")})
  return name, rows


def summarize(groups: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
  out: dict[str, Any] = {"groups": {}, "tests": []}
  for name, rows in groups.items():
    mean, sd = stats.mean_std([r["tau"] for r in rows])
    out["groups"][name] = group = {"searches": len(rows), "tau_mean": mean, "tau_sd": sd,
                                   "rows": rows}
    if all(r["tau_plain"] is not None for r in rows):  # fine-tuned scores, the plain ones kept
      plain = [r["tau_plain"] for r in rows]
      group["tau_plain_mean"], group["tau_plain_sd"] = stats.mean_std(plain)
      group["paired_p_vs_plain"] = stats.paired_sign_test(
          [r["tau"] - t for r, t in zip(rows, plain)])
  for a, b in itertools.combinations(groups, 2):
    p = stats.permutation_test([r["tau"] for r in groups[a]], [r["tau"] for r in groups[b]])
    out["tests"].append({"a": a, "b": b, "p": p})
  return out


def markdown(result: dict[str, Any]) -> str:
  lines = ["| setting | searches | tau per search | mean +- sd | broken cells per search | "
           "controller entropy at the end |", "|---|---:|---|---|---|---|"]
  for name, g in result["groups"].items():
    rows = g["rows"]
    taus = ", ".join(f"{r['tau']:.2f}" for r in rows)
    broken = ", ".join(str(r["broken"]) for r in rows)
    entropy = ", ".join(f"{r['entropy_end']:.1f}" for r in rows)
    lines.append(f"| {name} | {g['searches']} | {taus} | {g['tau_mean']:.2f} +- "
                 f"{g['tau_sd']:.2f} | {broken} | {entropy} |")
  lines.append("")
  for name, g in result["groups"].items():
    if "tau_plain_mean" in g:
      steps = sorted({r["finetune_steps"] for r in g["rows"]})
      lines.append(f"{name}: each cell scored after {', '.join(map(str, steps))} steps on it "
                   f"alone; the same searches' plain shared weights: "
                   + ", ".join(f"{r['tau_plain']:.2f}" for r in g["rows"])
                   + f" ({g['tau_plain_mean']:.2f} +- {g['tau_plain_sd']:.2f}); paired "
                   f"sign-flip test of equal mean: p = {g['paired_p_vs_plain']:.4f}")
  lines += [f"Permutation test of equal mean tau, {t['a']} vs {t['b']}: p = {t['p']:.4f}"
            for t in result["tests"]]
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--group", action="append", nargs="+", default=[], required=True,
                      metavar="NAME DIR")
  parser.add_argument("--out", required=True, help="writes OUT.md and OUT.json")
  args = parser.parse_args()
  groups = dict(read_group(words) for words in args.group)
  result = summarize(groups)
  common.write_report(args.out, result, markdown(result))


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
