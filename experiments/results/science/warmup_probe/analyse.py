"""Section 21's figures from the probe's JSON lines (`warmup.py`), against the yardstick without
the warm-up (section 19's `same_draw.jsonl`, section 20's `compare_ptb40.json`).

  PYTHONPATH=. python experiments/results/science/warmup_probe/analyse.py \
      --tune=workdirs/science/v22/tune_w64.jsonl --held_out=workdirs/science/v22/heldout_w64.jsonl \
      --study_out=workdirs/science/v22/compare_ptb40_warmup64 \
      --out=experiments/results/science/warmup_ptb64.json

Writes `--study_out/results.json`: section 20's study with every seed-20-39 answer's trained-alone
figure replaced by the warm-up's (for `experiments.planted.held_out`, which runs the planned
test on it), and `--out`: the tuning table, the paired view of the forty answers under the two
yardsticks and the noise.
"""
import argparse
import json
import os

import numpy as np

from enas_jax.report.stats import kendall_tau, tau_p_value
from experiments.planted import stats

FAILED = 300.0  # the plan's line: a draw that ends above it failed (ordinary draws: 202-240)
SCIENCE = "experiments/results/science"


def lines(path):
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def tuning(tune_path):
  before = {(r["cell"], r["seed"]): r for r in lines(f"{SCIENCE}/screen_probe/same_draw.jsonl")}
  rows = [{"cell": r["cell"], "seed": r["seed"],
           "before": before[r["cell"], r["seed"]]["valid_ppl"],
           "after": r["valid_ppl"], "screen_before": before[r["cell"], r["seed"]]["screen_ppl"],
           "screen_after": r["screen_ppl"]} for r in lines(tune_path)]
  return {"rows": rows, "failed_before": sum(r["before"] > FAILED for r in rows),
          "failed_after": sum(r["after"] > FAILED for r in rows)}


def held_out(held_path, study_out):
  study = json.load(open(f"{SCIENCE}/compare_ptb40.json"))
  got = lines(held_path)
  noise_cell = study["noise_cell"]
  noise = [r["valid_ppl"] for r in got if r["cell"] == noise_cell and r["seed"] in (0, 1, 2)][:3]
  warm = {r["cell"]: r["valid_ppl"] for r in got if r["seed"] == 0}
  runs = [r for r in study["runs"] if 20 <= r["seed"] <= 39]
  old = [r["standalone_ppl"] for r in runs]
  new = [warm[r["cell"]] for r in runs]
  diff = np.subtract(new, old)
  os.makedirs(study_out, exist_ok=True)
  changed = dict(study, runs=[dict(r, standalone_ppl=warm[r["cell"]]) for r in runs],
                 noise_ppl_seeds=noise, settings=study["settings"] + ["standalone_warmup_steps"])
  with open(os.path.join(study_out, "results.json"), "w") as f:
    json.dump(changed, f, indent=1)
  return {"answers": len(runs), "noise_cell": noise_cell, "noise_before": study["noise_ppl_seeds"],
          "noise_after": noise, "noise_sd_before": float(np.std(study["noise_ppl_seeds"], ddof=1)),
          "noise_sd_after": float(np.std(noise, ddof=1)),
          "mean_change": float(diff.mean()), "median_change": float(np.median(diff)),
          "changes": [float(x) for x in diff], "better_with_warmup": int((diff < 0).sum()),
          "p_change_paired": stats.paired_sign_test(list(diff)),
          "tau_between_yardsticks": kendall_tau(old, new), "tau_p": tau_p_value(old, new),
          "failed_before": int(sum(v > FAILED for v in old)),
          "failed_after": int(sum(v > FAILED for v in new)),
          "spread_before": [float(min(old)), float(max(old))],
          "spread_after": [float(min(new)), float(max(new))]}


def main():
  parser = argparse.ArgumentParser()
  for flag in ("--tune", "--held_out", "--study_out", "--out"):
    parser.add_argument(flag, required=True)
  args = parser.parse_args()
  result = {"tuning": tuning(args.tune), "held_out": held_out(args.held_out, args.study_out)}
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  t, h = result["tuning"], result["held_out"]
  print(f"tuning: failed draws {t['failed_before']} -> {t['failed_after']} of {len(t['rows'])}")
  for r in t["rows"]:
    print(f"  {r['cell']}  seed {r['seed']}: {r['before']:8.2f} -> {r['after']:8.2f}")
  print(f"held out: {h['answers']} answers, mean change {h['mean_change']:+.2f} (median "
        f"{h['median_change']:+.2f}), better with the warm-up {h['better_with_warmup']}, paired "
        f"p {h['p_change_paired']:.3f}; tau between yardsticks {h['tau_between_yardsticks']:.3f}; "
        f"noise {h['noise_before']} -> {h['noise_after']}; failed {h['failed_before']} -> "
        f"{h['failed_after']}")


if __name__ == "__main__":
  main()
