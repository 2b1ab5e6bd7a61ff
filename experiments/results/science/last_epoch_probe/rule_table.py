r"""Section 29's table and tests: the rule R (the last epoch's cell if it passes the answer's
screen, else the finish's answer; `probe.py`'s `rule_of`) against the finish's answer, per seed,
from the probe's seed*.json files; each answer checked against the compare study's.

  PYTHONPATH=. python experiments/results/science/last_epoch_probe/rule_table.py \
      --out=workdirs/science/rule_ptb --study=compare_ptb40.json --seeds=0-19,30-39 \
      > experiments/results/science/last_epoch_probe/rule_ptb.md
  PYTHONPATH=. python experiments/results/science/last_epoch_probe/rule_table.py \
      --out=workdirs/science/last_epoch --seeds=0-19 \
      > experiments/results/science/last_epoch_probe/rule_planted.md
  # and --out=workdirs/science/last_epoch_ptb --study=compare_ptb40.json --seeds=20-29
  # (the tuning seeds, reloaded) > rule_ptb_tuning.md

The test that counts (planned before the run): over the seeds where R's pick differs from the
answer, the two-sided exact sign test on "R's pick trains alone to a lower perplexity".
"""
from __future__ import annotations

import argparse
import json
import math
import os

from experiments.planted import stats
from probe import seeds_of  # this folder: sys.path[0] when run as a script

HERE = os.path.dirname(os.path.abspath(__file__))


def sign_test(better: int, worse: int) -> float:
  """Two-sided exact binomial sign test (ties left out): P(as lopsided | p = 1/2)."""
  n, k = better + worse, min(better, worse)
  if n == 0:
    return 1.0
  return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def rule_alone(row: dict) -> float:
  """R's pick trained alone: the answer's figure, or the last epoch's cell's."""
  return row["answer_alone"] if row["rule_pick"] == row["answer"] else row["last_alone"]


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--study", default="compare_defaults_v3.json")
  parser.add_argument("--seeds", required=True)
  args = parser.parse_args()
  rows = [json.load(open(os.path.join(args.out, f"seed{s}.json"))) for s in seeds_of(args.seeds)]
  study = json.load(open(os.path.join(HERE, "..", args.study)))
  recorded = {r["seed"]: r for r in study["runs"] if r["method"] == "enas"}
  randoms = [r["standalone_ppl"] for r in study["runs"]
             if r["method"] == "random" and r["seed"] in {row["seed"] for row in rows}]
  print("| seed | answer | last epoch's cell | its screen (training ppl) | R's pick "
        "| answer alone | R's pick alone | as recorded |")
  print("|---:|---|---|---|---|---:|---:|---|")
  same = better = worse = 0
  differences = []
  for r in rows:
    rec = recorded.get(r["seed"])
    match = rec is not None and (rec["cell"], rec["standalone_ppl"]) == (r["answer"],
                                                                         r["answer_alone"])
    same += match
    screen = r["last_screen"]
    verdict = f"{'passed' if screen['passed'] else 'failed'} ({screen['train_ppl']:.4g})"
    pick = "the answer" if r["rule_pick"] == r["answer"] else "the last epoch's cell"
    if r["rule_pick"] != r["answer"]:
      difference = rule_alone(r) - r["answer_alone"]
      differences.append(difference)
      better, worse = better + (difference < 0), worse + (difference > 0)
    print(f"| {r['seed']} | `{r['answer']}` | `{r['last_epoch_cell']}` | {verdict} | {pick} "
          f"| {r['answer_alone']:.3f} | {rule_alone(r):.3f} | {'yes' if match else 'NO'} |")
  rule = [rule_alone(r) for r in rows]
  answers = [r["answer_alone"] for r in rows]
  print(f"\n{len(rows)} searches; answers and their trained-alone figures equal to the compare "
        f"study's in {same} of {len(rows)}.")
  print(f"R's pick differs from the answer in {len(differences)}: R's pick minus the answer, "
        f"trained alone: {', '.join(f'{d:+.3f}' for d in differences) or '-'}")
  print(f"- **the test that counts**: R better in {better}, worse in {worse}; two-sided exact "
        f"sign test p = {sign_test(better, worse):.3g}")
  if differences:
    print(f"- second look: exact sign-flip test on the differences, p = "
          f"{stats.paired_sign_test(differences):.3g}")
  mean = lambda x: sum(x) / len(x)
  print(f"- means over the {len(rows)}: answers {mean(answers):.3f}, R's picks {mean(rule):.3f}; "
        f"medians {sorted(answers)[len(rows) // 2]:.3f} / {sorted(rule)[len(rows) // 2]:.3f}")
  if randoms:
    print(f"- second look, against random search's answers of these seeds ({len(randoms)}, "
          f"mean {mean(randoms):.3f}), rank test: the answers p = "
          f"{stats.rank_permutation_test(answers, randoms):.3g}, R's picks p = "
          f"{stats.rank_permutation_test(rule, randoms):.3g}; permutation test on the means: "
          f"p = {stats.permutation_test(answers, randoms):.3g} / "
          f"{stats.permutation_test(rule, randoms):.3g}")


if __name__ == "__main__":
  main()
