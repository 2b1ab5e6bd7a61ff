r"""A finished compare study's test over some of its seeds: the held-out seeds of a test planned
before the run.

  python -m experiments.planted.held_out --study=workdirs/science/v21/compare_ptb40 \
      --seeds=20-39 --out=workdirs/science/v21/held_out_20_39

A study extended with `compare --extend_from` holds the seeds a setting was chosen on and the new
ones; the figure that tests the choice is the new seeds' alone. Written as `compare` writes them
(results.json, table.md, compare.png; the same tests, `compare.tests`) for the rows of the named
seeds, plus the paired view: ENAS's answer better, tied or worse seed by seed and the sign-flip
test of the paired differences.
"""
from __future__ import annotations

import argparse
import os

from enas_jax.io.errors import UserError, run_main
from enas_jax.io.workdir import output_folder
from experiments.planted import common, compare, stats


def parse_seeds(text: str) -> list[int]:
  """`20-39`, `3,5,7` or a mix (`0-4,9`) as a sorted list of seeds."""
  seeds: set[int] = set()
  try:
    for part in filter(None, text.replace(" ", "").split(",")):
      first, _, last = part.partition("-")
      seeds.update(range(int(first), int(last or first) + 1))
  except ValueError:
    raise UserError(f"--seeds={text!r}: give seeds as FIRST-LAST, a comma-separated list, or "
                    f"both (e.g. 20-39 or 0-4,9).") from None
  if not seeds:
    raise UserError(f"--seeds={text!r} names no seed; give e.g. --seeds=20-39.")
  return sorted(seeds)


def paired(rows: list[dict]) -> dict:
  """ENAS's answer against random search's of the same seed: wins (ENAS lower), ties, losses,
  and the two-sided sign-flip test of the mean paired difference."""
  by = {(r["method"], r["seed"]): r["standalone_ppl"] for r in rows}
  seeds = sorted({r["seed"] for r in rows})
  d = [by["enas", s] - by["random", s] for s in seeds]
  return {"enas_better": sum(x < 0 for x in d), "tied": sum(x == 0 for x in d),
          "enas_worse": sum(x > 0 for x in d), "p_value_paired": stats.paired_sign_test(d)}


def run(study: str, seeds: list[int], out: str) -> dict:
  earlier = common.read_results(study, "--study")
  have = {(r["method"], r["seed"]) for r in earlier["runs"]}
  missing = [s for s in seeds if any((m, s) not in have for m in compare.METHODS)]
  if missing:
    raise UserError(f"--study={study} lacks both methods' rows for seeds {missing} (it has "
                    f"seeds {sorted({s for _, s in have})}); name seeds it ran.")
  rows = [r for r in earlier["runs"] if r["seed"] in seeds]
  result = dict(earlier, study=study, seeds=len(seeds), seeds_taken=seeds, runs=rows,
                methods=compare.summarize(rows), **compare.tests(rows), **paired(rows))
  output_folder(out)
  compare.write_outputs(out, result)
  with open(os.path.join(out, "table.md"), "a") as f:
    f.write(f"\nSeeds {', '.join(map(str, seeds))} of {study}. Seed by seed, ENAS's answer "
            f"better in {result['enas_better']}, tied in {result['tied']}, worse in "
            f"{result['enas_worse']}; paired sign-flip p = {result['p_value_paired']:.3f}.\n")
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--study", required=True, help="a finished compare study's --out")
  parser.add_argument("--seeds", required=True, help="the seeds to test: 20-39, 3,5,7, 0-4,9")
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  run(args.study, parse_seeds(args.seeds), args.out)
  print(open(os.path.join(args.out, "table.md")).read(), end="")


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
