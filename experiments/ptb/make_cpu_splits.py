r"""Writes the small-scale CPU corpus: train on PTB's validation split, validate and test on the
two halves (by lines) of PTB's test split. Only the splits in ../shared/data/ptb/ are needed.

  python experiments/ptb/make_cpu_splits.py --ptb=../shared/data/ptb --out=data/ptb_cpu
"""
import argparse
import os
import sys

from enas_jax.io.errors import UserError, run_main
from enas_jax.io.workdir import output_folder, write_atomically


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--ptb", required=True, help="directory with valid.txt and test.txt "
                      "(or ptb.valid.txt / ptb.test.txt)")
  parser.add_argument("--out", required=True, help="directory to write train/valid/test.txt")
  args = parser.parse_args()

  def read(split: str) -> list[str]:
    for name in (f"{split}.txt", f"ptb.{split}.txt"):
      path = os.path.join(args.ptb, name)
      if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
          return f.readlines()
    raise UserError(f"no {split}.txt or ptb.{split}.txt in {args.ptb!r} (--ptb): give the "
                    f"folder of PTB's splits, e.g. --ptb=../shared/data/ptb.")

  valid, test = read("valid"), read("test")
  half = len(test) // 2
  output_folder(args.out)
  for name, lines in (("train", valid), ("valid", test[:half]), ("test", test[half:])):
    write_atomically(os.path.join(args.out, f"{name}.txt"), "".join(lines))
    print(f"{name}.txt: {len(lines)} lines, {sum(len(l.split()) + 1 for l in lines)} tokens")
  return 0


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: sys.exit(main()), resumes=False)([])
