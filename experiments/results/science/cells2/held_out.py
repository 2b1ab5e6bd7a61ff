r"""Sections 30 and 31's planned tests for `shared.cells_per_step=2`, from finished studies:

  PYTHONPATH=. python experiments/results/science/cells2/held_out.py \
      --taus=workdirs/science/c2 --compare=workdirs/science/c2/compare \
      --out=experiments/results/science/held_out_cells2                      # section 30
  PYTHONPATH=. python experiments/results/science/cells2/held_out.py \
      --compare=workdirs/science/c2/compare20 --compare_seeds=10-19 \
      --out=experiments/results/science/cells2_vs_defaults_10_19            # section 31

(1) Kendall tau of the ranking studies `TAUS/tau_seedS` (S = 5-19) paired with the defaults'
recorded taus of the same seeds (`tau_seeds_cells8.json`, group "defaults ..."), two-sided exact
sign-flip test; (2) the C = 2 compare study's ENAS-against-random test (over `--compare_seeds`,
default all of the study's), and each method's answers seed for seed against the defaults'
compare study (`compare_defaults_v3.json`, same seeds). Either part may be left out. Writes
OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from enas_jax.io.errors import UserError, run_main
from experiments.planted import common, compare, held_out, stats

HERE = os.path.dirname(os.path.abspath(__file__))
SCIENCE = os.path.dirname(HERE)


def defaults_taus() -> dict[int, float]:
  groups = common.read_json(os.path.join(SCIENCE, "tau_seeds_cells8.json"), "(recorded)")["groups"]
  rows = next(g for name, g in groups.items() if name.startswith("defaults"))["rows"]
  return {int(r["dir"].rstrip("/").split("seed")[-1]): r["tau"] for r in rows}


def tau_test(taus_dir: str, seeds: range) -> dict:
  base = defaults_taus()
  rows = []
  for s in seeds:
    r = common.read_results(os.path.join(taus_dir, f"tau_seed{s}"), "--taus")
    rows.append({"seed": s, "tau": r["kendall_tau"], "tau_defaults": base[s],
                 "entropy_end": r["entropy_end"],
                 "broken": r["worse_than_uniform_under_shared"]})
  d = [r["tau"] - r["tau_defaults"] for r in rows]
  mean, sd = stats.mean_std([r["tau"] for r in rows])
  return {"rows": rows, "mean": mean, "sd": sd,
          "mean_defaults": float(np.mean([r["tau_defaults"] for r in rows])),
          "higher": sum(x > 0 for x in d), "n": len(d), "mean_difference": float(np.mean(d)),
          "p_sign_flip": stats.paired_sign_test(d)}


def compare_test(compare_dir: str, seeds: list[int] | None = None) -> dict:
  new = common.read_results(compare_dir, "--compare")
  runs = [r for r in new["runs"] if seeds is None or r["seed"] in seeds]
  old = common.read_json(os.path.join(SCIENCE, "compare_defaults_v3.json"), "(recorded)")
  taken = sorted({r["seed"] for r in runs})
  tests = compare.tests(runs)
  out = {"p_enas_vs_random": tests["p_value_standalone_ppl"], "seeds": len(taken),
         "seeds_taken": taken, "difference_interval": tests["difference_interval"]}
  for method in ("enas", "random"):
    a = {r["seed"]: r for r in runs if r["method"] == method}
    b = {r["seed"]: r for r in old["runs"] if r["method"] == method and r["seed"] in a}
    d = [a[s]["standalone_ppl"] - b[s]["standalone_ppl"] for s in sorted(a)]
    mean, sd = stats.mean_std([a[s]["standalone_ppl"] for s in a])
    out[method] = {"alone_mean": mean, "alone_sd": sd,
                   "defaults_alone_mean": float(np.mean([b[s]["standalone_ppl"] for s in a])),
                   "vs_defaults_mean_difference": float(np.mean(d)),
                   "vs_defaults_p_sign_flip": stats.paired_sign_test(d),
                   "distance_mean": float(np.mean([a[s]["distance_to_teacher"] for s in a])),
                   "entropy_end_mean": float(np.mean([a[s]["entropy_end"] for s in a]))}
  out["enas_better_seeds"] = held_out.paired(runs)["enas_better"]
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--taus", default="", help="the folder of section 30's tau_seedS studies")
  parser.add_argument("--compare", default="", help="a C = 2 compare study's --out")
  parser.add_argument("--compare_seeds", default="", help="its seeds to test (default: all)")
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  result, lines = {}, []
  if args.taus:
    result["taus"] = t = tau_test(args.taus, range(5, 20))
    lines = ["| seed | tau, C = 2 | tau, defaults | controller entropy at the end (C = 2) |",
             "|---:|---:|---:|---:|"]
    lines += [f"| {r['seed']} | {r['tau']:.3f} | {r['tau_defaults']:.3f} | "
              f"{r['entropy_end']:.1f} |" for r in t["rows"]]
    lines.append(f"\nHeld out (seeds 5-19): C = 2 {t['mean']:.3f} +- {t['sd']:.3f} against the "
                 f"defaults' {t['mean_defaults']:.3f}; higher in {t['higher']} of {t['n']}, mean "
                 f"difference {t['mean_difference']:+.3f}, exact sign-flip p = "
                 f"{t['p_sign_flip']:.4f}.")
  if args.compare:
    seeds = held_out.parse_seeds(args.compare_seeds) if args.compare_seeds else None
    result["compare"] = c = compare_test(args.compare, seeds)
    lines.append(f"\nENAS against random search with C = 2, {c['seeds']} seeds: ENAS "
                 f"{c['enas']['alone_mean']:.3f} +- {c['enas']['alone_sd']:.3f}, random search "
                 f"{c['random']['alone_mean']:.3f} +- {c['random']['alone_sd']:.3f} trained alone, "
                 f"p = {c['p_enas_vs_random']:.4f}; ENAS better in {c['enas_better_seeds']}.")
    for m in ("enas", "random"):
      lines.append(f"- {m}: against the defaults' study on the same seeds "
                   f"{c[m]['vs_defaults_mean_difference']:+.3f} (paired p = "
                   f"{c[m]['vs_defaults_p_sign_flip']:.3f}); distance to the teacher "
                   f"{c[m]['distance_mean']:.1f}, entropy at the end "
                   f"{c[m]['entropy_end_mean']:.1f}")
  if not result:
    raise UserError("Give --taus, --compare or both: there is nothing to test.")
  common.write_report(args.out, result, "\n".join(lines).lstrip("\n") + "\n")


if __name__ == "__main__":  # mistakes and full disks in one paragraph
  run_main(lambda _: main(), resumes=False)([])
