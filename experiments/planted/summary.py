r"""The science figures of the chosen defaults in one machine-readable file.

  python -m experiments.planted.summary \
      --ranking_planted=workdirs/science/v2/planted_enas_all_seed0 \
      --ranking_ptb=workdirs/science/v2/ptb_enas_all --compare=workdirs/science/v2/compare \
      --out=experiments/results/science/summary.json

Reads the studies' results.json files (`ranking` on the planted corpus and on PTB, `compare`) and
writes their headline figures under fixed keys. A study not given, or not run, leaves its keys at
null, and `missing` names it: a figure is never made up.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from enas_jax.io.errors import UserError
from experiments.planted import common

KEYS = ("planted_tau", "ptb_tau", "enas_vs_random_p", "enas_vs_random_seeds",
        "teacher_recovered_fraction", "spread_over_noise", "teacher_rank_fraction")


def _results(folder: str, what: str) -> dict[str, Any] | None:
  return common.read_results(folder, f"--{what}") if folder else None


def summarize(ranking_planted: dict | None, ranking_ptb: dict | None,
              compare: dict | None) -> dict[str, Any]:
  """The fixed keys (null where the study is missing), the other useful figures, the sources."""
  out: dict[str, Any] = {k: None for k in KEYS}
  missing = []
  if ranking_planted:
    out.update(planted_tau=ranking_planted["kendall_tau"],
               planted_tau_p=ranking_planted["kendall_tau_p"],
               planted_cells=ranking_planted["cells"],
               spread_over_noise=ranking_planted.get("spread_over_noise"),
               teacher_rank_fraction=ranking_planted.get("teacher_rank_fraction"),
               teacher_alone_gap=ranking_planted.get("teacher_alone_gap"),
               planted_settings=ranking_planted.get("settings", []),
               planted_shared_from=ranking_planted.get("shared_from"))
  else:
    missing.append("ranking_planted")
  if ranking_ptb:
    out.update(ptb_tau=ranking_ptb["kendall_tau"], ptb_tau_p=ranking_ptb["kendall_tau_p"],
               ptb_cells=ranking_ptb["cells"], ptb_settings=ranking_ptb.get("settings", []),
               ptb_shared_from=ranking_ptb.get("shared_from"))
  else:
    missing.append("ranking_ptb")
  if compare:
    enas = compare["methods"]["enas"]
    out.update(enas_vs_random_p=compare["p_value_standalone_ppl"],
               enas_vs_random_seeds=compare["seeds"],
               teacher_recovered_fraction=enas["recovered"] / enas["runs"],
               teacher_within_2_fraction=sum(
                   r["distance_to_teacher"] <= 2 for r in compare["runs"]
                   if r["method"] == "enas") / enas["runs"],
               enas_standalone_ppl=enas["standalone_ppl"]["mean"],
               random_standalone_ppl=compare["methods"]["random"]["standalone_ppl"]["mean"],
               compare_settings=compare.get("settings", []))
  else:
    missing.append("compare")
  out["missing"] = missing
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--ranking_planted", default="")
  parser.add_argument("--ranking_ptb", default="")
  parser.add_argument("--compare", default="")
  parser.add_argument("--out", default="experiments/results/science/summary.json")
  args = parser.parse_args()
  try:
    summary = summarize(_results(args.ranking_planted, "ranking_planted"),
                        _results(args.ranking_ptb, "ranking_ptb"),
                        _results(args.compare, "compare"))
  except UserError as err:
    raise SystemExit(f"error: {err}") from None
  with open(args.out, "w") as f:
    json.dump(summary, f, indent=2)
  print(json.dumps(summary, indent=2))


if __name__ == "__main__":
  main()
