r"""`python -m enas_jax.compare`: is one method's result better than another's, over seeds?

  python -m enas_jax.compare --ours=workdirs/final_enas_s0,workdirs/final_enas_s1,... \
      --baseline=workdirs/final_random_s0,workdirs/final_random_s1,...
  python -m enas_jax.compare --ours=... --baseline=... --figure=test_ppl --json=versus.json

Each run is a finished training's workdir (`python -m enas_jax.train`: the searched answer trained
alone, one run per search seed) or its summary.json. Prints each side's figure per run, mean and
standard deviation, the difference of the means and a two-sided permutation test of it (exact:
every split of the pooled runs into sides of these sizes, when there are at most 200,000), the
95% interval of the difference that inverts that test (the shifts of our runs it does not
reject), and the smallest p-value these run counts can reach. The figure defaults to the first of
valid_ppl, valid_acc, valid_acc_table (NAS-Bench-201's table) and test_acc that every run has.
A search's own workdir holds figures under the shared weights, which rank cells poorly: it is
refused unless its figure is named with --figure (then said so in the output).
"""
from __future__ import annotations

from typing import Sequence

from absl import flags

from enas_jax.cli import common as cli
from enas_jax.io import workdir as workdir_lib
from enas_jax.io.errors import UserError
from enas_jax.report import versus

_OURS = flags.DEFINE_multi_string("ours", [], "Runs of the method under test: workdirs or "
                                  "summary.json files, comma-separated or the flag repeated.")
_BASELINE = flags.DEFINE_multi_string("baseline", [], "Runs of the method to compare against, "
                                      "given likewise (e.g. the same search with "
                                      "--config.controller.kind=random, each answer trained).")
_FIGURE = flags.DEFINE_string("figure", "", "summary.json key to compare (default: the first of "
                              "valid_ppl, valid_acc, valid_acc_table, test_acc all runs have).")
_JSON = flags.DEFINE_string("json", "", "Also write the comparison to this JSON file.")


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise UserError(f"Unexpected arguments {' '.join(argv[1:])!r}: compare takes only flags "
                    f"(--ours=RUN,RUN,... --baseline=RUN,RUN,...).")
  if _JSON.value:
    cli.output_file(_JSON.value, "json")  # a path that cannot be written: said before any work
  ours = versus.read_runs(_OURS.value, "ours")
  baseline = versus.read_runs(_BASELINE.value, "baseline")
  result = versus.comparison(ours, baseline,
                             versus.choose_figure({**ours, **baseline}, _FIGURE.value))
  print("\n".join(versus.report_lines(result)))
  if _JSON.value:
    try:
      workdir_lib.write_json(_JSON.value, result)
    except OSError as err:
      raise UserError(f"--json={_JSON.value}: cannot write it ({err}).") from None


if __name__ == "__main__":
  cli.run(main)
