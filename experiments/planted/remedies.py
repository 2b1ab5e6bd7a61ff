r"""Issue 19's remedies side by side: ENAS against random search under each, and against the
defaults, seed for seed.

  python -m experiments.planted.remedies --baseline=workdirs/science/v15/defaults_v3 \
      --baseline_tau=experiments/results/science/tau_seeds_20.json \
      --remedy "reward over 4 windows" workdirs/science/v15/compare_reward4 \
      --remedy "entropy bonus x100" workdirs/science/v15/compare_entropy \
          workdirs/science/v15/tau_entropy_weight_seed{0,1,2,3,4} \
      --out=experiments/results/science/remedies

`--baseline` is a `compare` study of the defaults (name it as a remedy too for its own row); each
`--remedy NAME DIR [TAU_DIR ...]` a `compare` study of the defaults plus the remedy (its
`--set`s), then any `ranking` studies of the remedy, one search each. Reported per remedy, over
the seeds the remedy's study ran: each method's answers trained alone (mean, sd), ENAS against
random search (two-sided permutation test and the 95% interval of the difference), ENAS under the
remedy against ENAS under the defaults on the same seeds (paired sign-flip test), decisions from
the teacher's cell, answers within 2 decisions of it, the controller's final entropy; and, with
ranking studies, Kendall tau over the searches against the defaults' taus of the same seeds
(`--baseline_tau`, a `tau_seeds` output; paired sign-flip test). Writes OUT.md and OUT.json.
"""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from enas_jax.io.errors import UserError, run_main
from enas_jax.io.workdir import write_atomically
from experiments.planted import common, stats


def by_seed(result: dict[str, Any], method: str, seeds: int = 0) -> dict[int, dict[str, Any]]:
  """The study's runs of `method` by seed (the first `seeds` seeds only, when given)."""
  return {r["seed"]: r for r in result["runs"]
          if r["method"] == method and (not seeds or r["seed"] < seeds)}


def baseline_taus(path: str) -> dict[int, float]:
  """The defaults' tau by search seed, from a `tau_seeds` output (`seed=S` in its settings)."""
  if not path:
    return {}
  groups = common.read_json(path, "--baseline_tau")["groups"]
  taus = {}
  for group in groups.values():
    for row in group["rows"]:
      seeds = [s for s in row["settings"] if s.startswith("seed=")]
      if seeds:
        taus.setdefault(int(seeds[-1].split("=")[1]), row["tau"])
  return taus


def remedy_row(name: str, folder: str, tau_dirs: list[str], base: dict[str, Any],
               base_tau: dict[int, float], seeds: int = 0) -> dict[str, Any]:
  study = common.read_results(folder, f"--remedy {name}")
  enas, rand = by_seed(study, "enas", seeds), by_seed(study, "random", seeds)
  base_enas = by_seed(base, "enas")
  seeds = sorted(enas)
  missing = [s for s in seeds if s not in base_enas]
  if missing:
    raise UserError(f"--baseline has no ENAS search of seed(s) {missing}, which --remedy {name} "
                    f"ran; give a baseline study with at least as many seeds.")
  alone = lambda rows: [rows[s]["standalone_ppl"] for s in seeds]
  mine, theirs, defaults = alone(enas), alone(rand), alone(base_enas)
  row = {"remedy": name, "study": folder, "settings": study["settings"], "seeds": len(seeds),
         "random_reused_from": study.get("random_from", ""),
         "enas": stats.mean_std(mine), "random": stats.mean_std(theirs),
         "enas_vs_random_p": stats.permutation_test(mine, theirs),
         "enas_vs_random_interval": stats.shift_interval(mine, theirs),
         "vs_defaults_difference": float(np.mean(mine) - np.mean(defaults)),
         "vs_defaults_p": stats.paired_sign_test([a - b for a, b in zip(mine, defaults)]),
         "distance": stats.mean_std([enas[s]["distance_to_teacher"] for s in seeds]),
         "within_2": sum(enas[s]["distance_to_teacher"] <= 2 for s in seeds),
         "entropy_end": stats.mean_std([enas[s]["entropy_end"] for s in seeds])}
  if tau_dirs:
    row.update(tau_figures(name, tau_dirs, base_tau))
  return row


def tau_figures(name: str, folders: list[str], base_tau: dict[int, float]) -> dict[str, Any]:
  taus, pairs = [], []
  for folder in folders:
    r = common.read_results(folder, f"--remedy {name}")
    seed = next((int(s.split("=")[1]) for s in r["settings"] if s.startswith("seed=")), 0)
    taus.append(r["kendall_tau"])
    if seed in base_tau:
      pairs.append(r["kendall_tau"] - base_tau[seed])
  out = {"tau": stats.mean_std(taus), "tau_searches": len(taus), "tau_each": taus}
  if pairs:
    out.update(tau_vs_defaults=float(np.mean(pairs)), tau_vs_defaults_p=stats.paired_sign_test(
        pairs), tau_paired=len(pairs))
  return out


def table(rows: list[dict[str, Any]], base: dict[str, Any], seeds: int = 0) -> str:
  ms = lambda v, d=3: f"{v[0]:.{d}f} ± {v[1]:.{d}f}"
  base_rows = list(by_seed(base, "enas").values())
  used = f", seeds 0-{seeds - 1} used" if seeds else ""
  lines = [f"Baseline: the defaults' compare study ({len(base_rows)} seeds{used}); each remedy's "
           "ENAS answers are paired with the baseline's of the same seeds.", "",
           "| remedy | seeds | ENAS alone | random alone | ENAS vs random p (95% interval) | "
           "ENAS vs defaults (paired p) | decisions from teacher | within 2 | final entropy | "
           "tau (searches; vs defaults, paired p) |",
           "|---|---:|---:|---:|---|---|---:|---:|---:|---|"]
  for r in rows:
    lo, hi = r["enas_vs_random_interval"]
    tau = (f"{ms(r['tau'])} ({r['tau_searches']}; {r.get('tau_vs_defaults', float('nan')):+.3f}, "
           f"p = {r.get('tau_vs_defaults_p', float('nan')):.3f})" if "tau" in r else "-")
    reused = " (random reused)" if r["random_reused_from"] else ""
    lines.append(
        f"| {r['remedy']}{reused} | {r['seeds']} | {ms(r['enas'])} | {ms(r['random'])} | "
        f"{_p(r['enas_vs_random_p'])} ({lo:+.3f} to {hi:+.3f}) | "
        f"{r['vs_defaults_difference']:+.3f} (p = {r['vs_defaults_p']:.3f}) | "
        f"{ms(r['distance'], 1)} | {r['within_2']}/{r['seeds']} | {ms(r['entropy_end'], 2)} | "
        f"{tau} |")
  return "\n".join(lines) + "\n"


def _p(p: float) -> str:
  return "p < 0.0001" if p < 1e-4 else f"p = {p:.4f}"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--baseline", required=True, help="a compare study of the defaults")
  parser.add_argument("--baseline_tau", default="", help="a tau_seeds output of the defaults")
  parser.add_argument("--remedy", nargs="+", action="append", default=[],
                      metavar="NAME DIR [TAU_DIR ...]")
  parser.add_argument("--seeds", type=int, default=0,
                      help="only each study's seeds 0..N-1 (0: all of them)")
  parser.add_argument("--out", required=True, help="writes OUT.md and OUT.json")
  args = parser.parse_args()
  base = common.read_results(args.baseline, "--baseline")
  base_tau = baseline_taus(args.baseline_tau)
  if any(len(words) < 2 for words in args.remedy):
    raise UserError("--remedy: write it as NAME DIR [TAU_DIR ...] (a finished compare study, "
                    "then any ranking studies of the same remedy).")
  rows = [remedy_row(w[0], w[1], w[2:], base, base_tau, args.seeds) for w in args.remedy]
  text = table(rows, base, args.seeds)
  common.write_json(args.out + ".json", {"baseline": args.baseline, "remedies": rows})
  write_atomically(args.out + ".md", text)
  print(text)


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
