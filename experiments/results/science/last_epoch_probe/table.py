r"""Summarises the probe's per-seed files (science.md section 28) and checks each answer and its
trained-alone figure against the defaults' compare study (`compare_defaults_v3.json`).

  PYTHONPATH=. python experiments/results/science/last_epoch_probe/table.py \
      --out=workdirs/science/last_epoch > experiments/results/science/last_epoch_probe/table.md
  PYTHONPATH=. python experiments/results/science/last_epoch_probe/table.py \
      --out=workdirs/science/last_epoch_ptb --study=compare_ptb40.json \
      > experiments/results/science/last_epoch_probe/table_ptb.md
"""
from __future__ import annotations

import argparse
import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--study", default="compare_defaults_v3.json",
                      help="the compare study whose ENAS answers the probe's must equal (science/)")
  args = parser.parse_args()
  rows = sorted((json.load(open(p)) for p in glob.glob(os.path.join(args.out, "seed*.json"))),
                key=lambda r: r["seed"])
  study = json.load(open(os.path.join(HERE, "..", args.study)))
  recorded = {r["seed"]: r for r in study["runs"] if r["method"] == "enas"}
  print("| seed | answer | = last epoch's cell | first derived at epoch | epochs deriving it "
        "| candidates | answer alone | last epoch's cell alone | as recorded |")
  print("|---:|---|---|---:|---:|---:|---:|---:|---|")
  same = 0
  for r in rows:
    rec = recorded.get(r["seed"])
    match = (rec is not None and rec["cell"] == r["answer"]
             and rec["standalone_ppl"] == r["answer_alone"])
    same += match
    last = f"{r['last_alone']:.3f}" if "last_alone" in r else "(the same)"
    epochs = r["epochs_with_last_cell"] if r["answer_is_last"] else "-"
    print(f"| {r['seed']} | `{r['answer']}` | {'yes' if r['answer_is_last'] else 'no'} | "
          f"{r['answer_first_epoch']} | {epochs} | {len(r['rescored'])} | "
          f"{r['answer_alone']:.3f} | {last} | "
          f"{'yes' if match else 'NO'} |")
  n = len(rows)
  is_last = sum(r["answer_is_last"] for r in rows)
  print(f"\n{n} searches; the answer is the last epoch's derived cell in {is_last}; answers and "
        f"their trained-alone figures equal to the compare study's in {same} of {n}.")
  diffs = [r["last_alone"] - r["answer_alone"] for r in rows if "last_alone" in r]
  if diffs:
    print(f"where they differ ({len(diffs)}): last epoch's cell minus the answer, trained alone: "
          + ", ".join(f"{d:+.3f}" for d in diffs))


if __name__ == "__main__":
  main()
