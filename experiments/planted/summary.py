r"""The science figures of the chosen defaults in one machine-readable file.

  python -m experiments.planted.summary \
      --ranking_planted=workdirs/science/v3/lrdecay0.75_seed0 \
      --tau_seeds=experiments/results/science/tau_seeds_20.json \
      --tau_group="defaults: all, lr x0.75, seeds 0-19" \
      --ranking_ptb=workdirs/science/v3/ptb_enas --compare=workdirs/science/v3/compare \
      --ptb_tau_seeds=experiments/results/science/tau_seeds_ptb.json \
      --ptb_tau_group="PTB, defaults, seeds 0-2" \
      --yardstick=experiments/results/science/yardstick_seeds_current.json \
      --finetune_tau_seeds=experiments/results/science/tau_seeds_finetune_all.json \
      --finetune_tau_group="few-shot 80 steps, seeds 0-19" \
      --ptb_finetune_tau_seeds=experiments/results/science/tau_seeds_ptb_finetune.json \
      --ptb_finetune_tau_group="PTB, few-shot 80 steps, seeds 0-2" \
      --compare_finetuned=workdirs/science/v7/compare_ft80 \
      --short_alone=experiments/results/science/short_alone.json \
      --ptb_short_alone=experiments/results/science/short_alone_ptb.json \
      --brief_random=workdirs/science/v10/brief_budgets --brief_random_budget=16 \
      --compare_final_recipe=experiments/results/science/final_recipe/versus_fixed_start_20.json \
      --final_recipe_agreement=experiments/results/science/final_recipe/self_agreement.json \
      --ptb_final_recipe_agreement \
      experiments/results/science/final_recipe/ptb_self_agreement.json \
      --out=experiments/results/science/summary.json

Reads the studies' results.json files (`ranking` on the planted corpus and on PTB, `compare`) and
writes their headline figures under fixed keys. With `--tau_seeds` (a `tau_seeds` study's JSON)
and `--tau_group` (one of its groups), `planted_tau` is that group's mean over its searches
(`planted_tau_sd`, `planted_tau_searches` beside it; the one ranking study's own tau stays as
`planted_tau_one_search`); `--ptb_tau_seeds` and `--ptb_tau_group` do the same for `ptb_tau`.
`--yardstick` (a `yardstick` study's OUT.json) adds how well the yardstick agrees with itself
(`yardstick_seed_tau`), a typical cell's seed noise (`yardstick_cell_sd_median`) and the
searches' tau against the mean of its seeds (`planted_tau_against_seed_mean`).
`--finetune_tau_seeds`/`--finetune_tau_group` (and `--ptb_...` likewise) add a group of ranking
studies that scored the cells after fine-tuning (`ranking --finetune_steps`, an option, not the
default): `planted_tau_finetuned` (mean, sd, searches, the steps), the same searches' plain
shared-weight tau and the paired test between the two; `--compare_finetuned` (a `compare` study
run with `--set=search.finetune_steps=K`) adds `enas_vs_random_p_finetuned` and its figures.
`--short_alone` (a `short_alone` study's OUT.json; `--ptb_short_alone` on PTB) adds the
report's training alone as the defaults run it (`planted_report_alone_tau`: its tau against the
yardstick over seeds, and the tests against the other schedule); `--brief_random` (a
`brief_random` study) adds random search without weight sharing: every budget's answers against
the compare study's (`brief_random_budgets`) and, at `--brief_random_budget` cells a seed,
`enas_vs_brief_random_p`. `--compare_final_recipe` (an `enas_jax.compare --json` file, ENAS's
trained answers against random search's) adds `enas_vs_random_p_final_recipe`: the same test with
the answers trained by the final training instead of the studies' recipe. Each comparison of ENAS
with random search also gets the 95% interval of the difference of means (ENAS - random) that
inverts its permutation test (`enas_vs_random_interval`, `..._final_recipe`; null when unbounded).
`--final_recipe_agreement` (a `final_recipe` study's OUT.json) adds the final recipe's agreement
with itself (`final_recipe_seed_tau`, `..._top` among the yardstick's best), with the yardstick,
the teacher's rank and the rescored searches' tau (`planted_tau_against_final_recipe`);
`--ptb_final_recipe_agreement` the same on PTB's cells, each key prefixed `ptb_`.
`--compare_ptb` (a `compare --corpus=ptb` study, or `held_out`'s) adds ENAS against random search
on PTB (`ptb_enas_vs_random_p`, `..._p_ranks`, the interval, seeds, their list, means, medians).
A study not given leaves its keys null, named in `missing`: a figure is never made up.
`--merge=FILE` (an earlier summary.json) keeps its figures, replacing those given now."""
from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from enas_jax.io.errors import UserError, run_main
from enas_jax.report import versus as versus_lib
from enas_jax.run import config as run_config
from experiments.planted import common, short_alone, stats

KEYS = ("planted_tau", "ptb_tau", "enas_vs_random_p", "enas_vs_random_seeds",
        "teacher_recovered_fraction", "spread_over_noise", "teacher_rank_fraction")


def _results(folder: str, what: str) -> dict[str, Any] | None:
  return common.read_results(folder, f"--{what}") if folder else None


def _not_a(flag: str, path: str, study: str, why: str) -> UserError:
  return UserError(f"--{flag}={path}: not a {study} study's JSON ({why}); give the OUT.json "
                   f"that `python -m experiments.planted.{study}` wrote.")


def _json(path: str, flag: str, study: str) -> dict[str, Any] | None:
  """The `study` (tau_seeds, yardstick) JSON given by --`flag`; None when not given."""
  if not path:
    return None
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, ValueError) as err:
    raise _not_a(flag, path, study, str(err)) from None
  if not isinstance(data, dict):
    raise _not_a(flag, path, study, "not an object")
  return data


def _tau_group(path: str, group: str, flag: str = "tau") -> dict[str, Any] | None:
  """Group `group` of the tau_seeds study written to `path` (its .json); `flag`: the options'
  prefix (`--tau_seeds`/`--tau_group` or `--ptb_tau_seeds`/`--ptb_tau_group`)."""
  study = _json(path, f"{flag}_seeds", "tau_seeds")
  if study is None:
    return None
  groups = study.get("groups")
  if not isinstance(groups, dict):
    raise _not_a(f"{flag}_seeds", path, "tau_seeds", "no groups")
  if group not in groups:
    raise UserError(f"--{flag}_group={group!r}: {path} has the groups "
                    f"{', '.join(map(repr, groups))}; name one of them.")
  return groups[group]


def _yardstick(path: str) -> dict[str, Any] | None:
  study = _json(path, "yardstick", "yardstick")
  if study is not None and not {"agreement", "per_cell_sd_median"} <= set(study):
    raise _not_a("yardstick", path, "yardstick", "no agreement figures")
  return study


def _finetuned_figures(finetuned: tuple[dict | None, dict | None],
                       compare_finetuned: dict | None) -> dict[str, Any]:
  """The keys of few-shot scoring's studies: each tau_seeds group (planted, PTB) beside its
  plain tau, and the compare study run with it."""
  out: dict[str, Any] = {}
  for name, group in zip(("planted", "ptb"), finetuned):
    if group:
      out.update({f"{name}_tau_finetuned": group["tau_mean"],
                  f"{name}_tau_finetuned_sd": group["tau_sd"],
                  f"{name}_tau_finetuned_searches": group["searches"],
                  f"{name}_tau_finetuned_steps": sorted({r["finetune_steps"]
                                                         for r in group["rows"]}),
                  f"{name}_tau_finetuned_plain": group.get("tau_plain_mean"),
                  f"{name}_tau_finetuned_paired_p": group.get("paired_p_vs_plain")})
  if compare_finetuned:
    methods = compare_finetuned["methods"]
    out.update(enas_vs_random_p_finetuned=compare_finetuned["p_value_standalone_ppl"],
               enas_vs_random_seeds_finetuned=compare_finetuned["seeds"],
               enas_standalone_ppl_finetuned=methods["enas"]["standalone_ppl"]["mean"],
               random_standalone_ppl_finetuned=methods["random"]["standalone_ppl"]["mean"],
               compare_finetuned_settings=compare_finetuned.get("settings", []))
  return out


def _short_alone_figures(study: dict | None, name: str) -> dict[str, Any]:
  """The report's training alone as the defaults run it (`report.train_alone_steps`,
  `report.train_alone_schedule`): its tau against the yardstick over seeds, from a short_alone
  study's OUT.json; `name`: the keys' corpus prefix."""
  if not study:
    return {}
  report = run_config.ReportConfig()
  for setting in study.get("settings", []):
    if (setting["steps"], setting["schedule"]) == (report.train_alone_steps,
                                                   report.train_alone_schedule):
      tests = [t for t in study.get("tests", []) if short_alone.name(setting) in (t["a"], t["b"])]
      return {f"{name}_report_alone_tau": setting["tau_mean"],
              f"{name}_report_alone_tau_sd": setting["tau_sd"],
              f"{name}_report_alone_seeds": len(setting["seeds"]),
              f"{name}_report_alone_setting": [setting["steps"], setting["schedule"]],
              f"{name}_report_alone_tests": tests}
  raise UserError(f"the short_alone study of {study.get('yardstick')} has no setting with the "
                  f"report's defaults ({report.train_alone_steps} steps, "
                  f"{report.train_alone_schedule}); run it with --steps="
                  f"{report.train_alone_steps} --schedule={report.train_alone_schedule}.")


def _brief_random_figures(study: dict | None, budget: int) -> dict[str, Any]:
  """Random search without weight sharing (a brief_random study): every budget's answers
  against the compare study's ENAS and random-search answers; `budget` the headline's."""
  if not study:
    return {}
  budgets = study.get("budgets", {})
  if str(budget) not in budgets:
    raise UserError(f"--brief_random_budget={budget}: the brief_random study has the budgets "
                    f"{', '.join(budgets) or 'none (an older study; rerun it)'}; name one.")
  table = {cells: {"standalone_ppl": b["standalone_ppl"]["mean"],
                   "standalone_ppl_sd": b["standalone_ppl"]["std"],
                   "seconds_mean": float(np.mean([r["search_seconds"] for r in b["runs"]])),
                   "enas_vs_it_p": b["against"]["enas"]["p"],
                   "it_vs_random_p": b["against"]["random"]["p"]} for cells, b in budgets.items()}
  return {"enas_vs_brief_random_p": table[str(budget)]["enas_vs_it_p"],
          "enas_vs_brief_random_cells": budget,
          "enas_vs_brief_random_seeds": study["seeds"],
          "brief_random_standalone_ppl": table[str(budget)]["standalone_ppl"],
          "brief_random_budgets": table}


def _compare_figures(compare: dict) -> dict[str, Any]:
  """ENAS against random search from a `compare` study (the answers trained by its recipe)."""
  enas = compare["methods"]["enas"]
  side = lambda m: [r["standalone_ppl"] for r in compare["runs"] if r["method"] == m]
  return {"enas_vs_random_p": compare["p_value_standalone_ppl"],
          "enas_vs_random_interval": versus_lib.interval(side("enas"), side("random")),
          "enas_vs_random_seeds": compare["seeds"],
          "teacher_recovered_fraction": enas["recovered"] / enas["runs"],
          "teacher_within_2_fraction": sum(
              r["distance_to_teacher"] <= 2 for r in compare["runs"]
              if r["method"] == "enas") / enas["runs"],
          "enas_standalone_ppl": enas["standalone_ppl"]["mean"],
          "random_standalone_ppl": compare["methods"]["random"]["standalone_ppl"]["mean"],
          "compare_settings": compare.get("settings", [])}


def _ptb_compare_figures(compare: dict | None) -> dict[str, Any]:
  """ENAS against random search on PTB at CPU scale (a `compare --corpus=ptb` study)."""
  if not compare:
    return {}
  if compare.get("corpus_name") != "ptb":
    raise UserError("--compare_ptb: that compare study ran on the planted corpus; give one run "
                    "with --corpus=ptb (or pass it as --compare).")
  side = lambda m: [r["standalone_ppl"] for r in compare["runs"] if r["method"] == m]
  return {"ptb_enas_vs_random_p": compare["p_value_standalone_ppl"],
          "ptb_enas_vs_random_interval": versus_lib.interval(side("enas"), side("random")),
          "ptb_enas_vs_random_p_ranks": stats.rank_permutation_test(side("enas"), side("random")),
          "ptb_enas_vs_random_seeds": compare["seeds"],
          "ptb_enas_vs_random_seed_list": sorted({r["seed"] for r in compare["runs"]}),
          "ptb_enas_standalone_ppl_median": float(np.median(side("enas"))),
          "ptb_random_standalone_ppl_median": float(np.median(side("random"))),
          "ptb_enas_standalone_ppl": compare["methods"]["enas"]["standalone_ppl"]["mean"],
          "ptb_random_standalone_ppl": compare["methods"]["random"]["standalone_ppl"]["mean"],
          "ptb_compare_settings": compare.get("settings", [])}


def merged(earlier: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
  """`earlier` (a summary.json) with the figures `now` has (not null) put in; `missing` stays
  the earlier run's, less the studies given now."""
  out = dict(earlier)
  out.update({k: v for k, v in now.items() if v is not None and k != "missing"})
  out["missing"] = [m for m in earlier.get("missing", []) if m in now.get("missing", [])]
  return out


def _versus_figures(versus: dict | None) -> dict[str, Any]:
  """ENAS against random search with the answers trained by another recipe: an
  `enas_jax.compare --json` file (ours: ENAS's trainings, baseline: random search's)."""
  if not versus:
    return {}
  if not {"p", "ours", "baseline", "figure"} <= set(versus):
    raise UserError("--compare_final_recipe: not a comparison (no p-value); give the file "
                    "`python -m enas_jax.compare ... --json=FILE` wrote.")
  return {"enas_vs_random_p_final_recipe": versus["p"],
          "enas_vs_random_interval_final_recipe": versus_lib.interval(
              list(versus["ours"].values()), list(versus["baseline"].values())),
          "enas_vs_random_seeds_final_recipe": len(versus["ours"]),
          "enas_final_recipe_mean": versus["ours_mean"],
          "random_final_recipe_mean": versus["baseline_mean"],
          "final_recipe_figure": versus["figure"]}


def _final_agreement_figures(study: dict | None, corpus: str = "planted") -> dict[str, Any]:
  """The final recipe against itself and the yardstick (an `experiments.planted.final_recipe`
  OUT.json), and the searches' tau against it when the study rescored them; on PTB every key
  starts with `ptb_` (and there is no teacher)."""
  if not study:
    return {}
  flag, p = (("--final_recipe_agreement", "") if corpus == "planted" else
             ("--ptb_final_recipe_agreement", "ptb_"))
  if not {"final_vs_final", "final_vs_yardstick", "teacher_rank_mean"} <= set(study):
    raise UserError(f"{flag}: not a final_recipe study's JSON; give the OUT.json "
                    f"`python -m experiments.planted.final_recipe` wrote.")
  mean_row = [r for r in study["final_vs_yardstick"] if r["b"] == "final mean"]
  out = {f"{p}final_recipe_seed_tau": [r["tau_all"] for r in study["final_vs_final"]],
         f"{p}final_recipe_seed_tau_top": [r["tau_top"] for r in study["final_vs_final"]],
         f"{p}final_recipe_top_cells": study["top"],
         f"{p}yardstick_vs_final_recipe_tau": mean_row[0]["tau_all"] if mean_row else None,
         f"{p}yardstick_vs_final_recipe_tau_top": mean_row[0]["tau_top"] if mean_row else None}
  if corpus == "planted":
    out["teacher_rank_final_recipe"] = study["teacher_rank_mean"]
  if "rescored" in study:
    out.update({f"{corpus}_tau_against_final_recipe": study["rescored"]["tau_final_all"][0],
                f"{corpus}_tau_against_final_recipe_top": study["rescored"]["tau_final_top"][0],
                f"{corpus}_tau_against_final_recipe_searches": len(study["rescored"]["searches"])})
  return out


def summarize(ranking_planted: dict | None, ranking_ptb: dict | None,
              compare: dict | None, tau_group: dict | None = None,
              ptb_tau_group: dict | None = None, yardstick: dict | None = None,
              finetuned: tuple[dict | None, dict | None] = (None, None),
              compare_finetuned: dict | None = None,
              short_alone: tuple[dict | None, dict | None] = (None, None),
              brief_random: dict | None = None, brief_budget: int = 16,
              final_recipe: dict | None = None,
              final_agreement: dict | None = None,
              ptb_final_agreement: dict | None = None,
              compare_ptb: dict | None = None) -> dict[str, Any]:
  """The fixed keys (null where the study is missing), the other useful figures, the sources;
  `tau_group` (a tau_seeds group) makes `planted_tau` its mean over searches, `ptb_tau_group`
  likewise `ptb_tau`; `yardstick` (a yardstick study) adds its figures."""
  out: dict[str, Any] = {k: None for k in KEYS}
  missing = []
  if ranking_planted:
    out.update(planted_tau=ranking_planted["kendall_tau"],
               planted_tau_one_search=ranking_planted["kendall_tau"],
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
    out.update(ptb_tau=ranking_ptb["kendall_tau"], ptb_tau_one_search=ranking_ptb["kendall_tau"],
               ptb_tau_p=ranking_ptb["kendall_tau_p"],
               ptb_cells=ranking_ptb["cells"], ptb_settings=ranking_ptb.get("settings", []),
               ptb_shared_from=ranking_ptb.get("shared_from"))
  else:
    missing.append("ranking_ptb")
  for name, group in (("planted", tau_group), ("ptb", ptb_tau_group)):
    if group:
      out.update({f"{name}_tau": group["tau_mean"], f"{name}_tau_sd": group["tau_sd"],
                  f"{name}_tau_searches": group["searches"],
                  f"{name}_tau_each": [r["tau"] for r in group["rows"]]})
  if compare:
    out.update(_compare_figures(compare))
  else:
    missing.append("compare")
  out.update(_finetuned_figures(finetuned, compare_finetuned))
  for name, study in zip(("planted", "ptb"), short_alone):
    out.update(_short_alone_figures(study, name))
  out.update(_brief_random_figures(brief_random, brief_budget))
  out.update(_versus_figures(final_recipe))
  out.update(_final_agreement_figures(final_agreement))
  out.update(_final_agreement_figures(ptb_final_agreement, "ptb"))
  out.update(_ptb_compare_figures(compare_ptb))
  if yardstick:
    out.update(yardstick_seed_tau=[a["tau"] for a in yardstick["agreement"]],
               yardstick_cell_sd_median=yardstick["per_cell_sd_median"],
               planted_tau_against_seed_mean=(yardstick["tau_mean_mean_sd"][0]
                                              if "searches" in yardstick else None))
  out["missing"] = missing
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--ranking_planted", default="")
  parser.add_argument("--ranking_ptb", default="")
  parser.add_argument("--compare", default="")
  parser.add_argument("--tau_seeds", default="", help="a tau_seeds study's OUT.json")
  parser.add_argument("--tau_group", default="", help="its group of the chosen defaults")
  parser.add_argument("--ptb_tau_seeds", default="", help="likewise for PTB's searches")
  parser.add_argument("--ptb_tau_group", default="", help="its group of the chosen defaults")
  parser.add_argument("--yardstick", default="", help="a yardstick study's OUT.json")
  parser.add_argument("--compare_finetuned", default="",
                      help="a compare study run with --set=search.finetune_steps=K")
  for prefix in ("", "ptb_"):
    parser.add_argument(f"--{prefix}finetune_tau_seeds", default="",
                        help="a tau_seeds study of fine-tuned scoring (ranking --finetune_steps)")
    parser.add_argument(f"--{prefix}finetune_tau_group", default="", help="its group")
  for prefix in ("", "ptb_"):
    parser.add_argument(f"--{prefix}short_alone", default="",
                        help="a short_alone study's OUT.json (the report's training alone)")
  parser.add_argument("--brief_random", default="", help="a brief_random study's --out folder")
  parser.add_argument("--brief_random_budget", type=int, default=16,
                      help="its budget (cells a seed) for the headline keys")
  parser.add_argument("--compare_final_recipe", default="",
                      help="an `enas_jax.compare --json` file: ENAS's answers (--ours) against "
                           "random search's, trained by the final training")
  parser.add_argument("--final_recipe_agreement", default="",
                      help="a final_recipe study's OUT.json (the final recipe against itself)")
  parser.add_argument("--ptb_final_recipe_agreement", default="",
                      help="the same study on PTB's cells (final_recipe --ranking=...ranking_ptb)")
  parser.add_argument("--compare_ptb", default="",
                      help="a compare study run with --corpus=ptb (ENAS against random on PTB)")
  parser.add_argument("--merge", default="", help="an earlier summary.json to update")
  parser.add_argument("--out", default="experiments/results/science/summary.json")
  args = parser.parse_args()
  summary = summarize(_results(args.ranking_planted, "ranking_planted"),
                      _results(args.ranking_ptb, "ranking_ptb"),
                      _results(args.compare, "compare"),
                      _tau_group(args.tau_seeds, args.tau_group),
                      _tau_group(args.ptb_tau_seeds, args.ptb_tau_group, "ptb_tau"),
                      _yardstick(args.yardstick),
                      (_tau_group(args.finetune_tau_seeds, args.finetune_tau_group,
                                  "finetune_tau"),
                       _tau_group(args.ptb_finetune_tau_seeds, args.ptb_finetune_tau_group,
                                  "ptb_finetune_tau")),
                      _results(args.compare_finetuned, "compare_finetuned"),
                      (_json(args.short_alone, "short_alone", "short_alone"),
                       _json(args.ptb_short_alone, "ptb_short_alone", "short_alone")),
                      _results(args.brief_random, "brief_random"), args.brief_random_budget,
                      _json(args.compare_final_recipe, "compare_final_recipe",
                            "enas_jax.compare --json"),
                      _json(args.final_recipe_agreement, "final_recipe_agreement",
                            "final_recipe"),
                      _json(args.ptb_final_recipe_agreement, "ptb_final_recipe_agreement",
                            "final_recipe"),
                      _results(args.compare_ptb, "compare_ptb"))
  if args.merge:
    summary = merged(_json(args.merge, "merge", "summary") or {}, summary)
  common.write_json(args.out, summary)
  print(json.dumps(summary, indent=2))


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
