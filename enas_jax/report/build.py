"""The search report, put together: read the workdir, measure under the newest checkpoint, judge,
draw, write `DIR/report/index.html` and `DIR/report/report.md`. Nothing is written outside
`DIR/report/`."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Callable, Mapping

import numpy as np

from enas_jax.drawing.curves import plot_records
from enas_jax.drawing.search_gif import build_gif, epoch_label
from enas_jax.io import render
from enas_jax.io.configuration import from_section
from enas_jax.io.workdir import as_number
from enas_jax.report import checks as checks_lib
from enas_jax.report import figures, page, reading, scoring
from enas_jax.run import outputs
from enas_jax.run.config import ReportConfig
from enas_jax.spaces.registry import read_json_file


@dataclasses.dataclass(frozen=True)
class Report:
  folder: str
  verdict_word: str
  verdict: str
  checks: list[checks_lib.Check]


def report_options(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> ReportConfig:
  """The search config's `report` section (its defaults for a search saved before the section
  existed) with the command's `overrides`."""
  section = config.get("report") or {}  # not a mapping (damaged): from_section names it
  return from_section(ReportConfig, "report",
                      {**section, **overrides} if isinstance(section, Mapping) else section)


def _fmt(value: Any) -> str:
  """A figure for a table: "-" when missing or damaged, "nan"/"inf" as the run wrote them."""
  value = as_number(value)
  if value is None:
    return "-"
  return f"{value:.4g}" if math.isfinite(value) else str(value)


def _finetuned(m: scoring.Measurements) -> str:
  """How the shared-weight figures were taken, when not from the weights as they are."""
  return (f", each cell's after {m.finetune_steps} steps of them on it alone (few-shot scoring, "
          f"`report.finetune_steps`)" if m.finetune_steps else "")


def judge(files: reading.SearchFiles, m: scoring.Measurements, options: ReportConfig
          ) -> list[checks_lib.Check]:
  """The health checks, in the page's order."""
  collapse = checks_lib.entropy_collapse(files.records, options.collapse_fraction)
  out = [checks_lib.collapse_check(collapse, options.collapse_fraction, m.planned_shared_steps,
                                   m.planned_controller_steps),
         checks_lib.percentile_check(m.answer.whole, [c.whole for c in m.random],
                                     m.lower_is_better, m.metric),
         checks_lib.stability_check([c.halves[0] for c in m.random],
                                    [c.halves[1] for c in m.random],
                                    "the two halves of the validation split"
                                    if m.figure_source == "shared" else
                                    "two disjoint groups of each cell's seeds in the table")]
  if m.alone:
    out.append(checks_lib.train_alone_check([c.whole for c in m.alone],
                                            [c.alone for c in m.alone], m.alone_steps))
  return out


def _answer_section(files: reading.SearchFiles, m: scoring.Measurements, folder: str,
                    say: Callable[[str], None]) -> page.Section:
  space, answer, name = m.space, m.answer, f"valid {m.metric}"
  figs = []
  if render.dot_program() is not None:
    title = f"the answer: {name} {_fmt(answer.whole)} ({m.figure_source})"
    written = render.write_picture(space.to_dot(answer.arch, title, m.model_cfg),
                                   os.path.join(folder, "answer"), ("png",), say)
    figs.append(page.Figure(written["png"], "The answer, drawn."))
  whole = np.asarray([c.whole for c in m.candidates], float)
  spread = (f"Re-scored the same way, the {len(whole)} candidate cell(s) (each epoch's derived "
            f"cell, and with `search.final_candidates` the final controller's best) span "
            f"{_fmt(float(np.min(whole)))} to {_fmt(float(np.max(whole)))} (standard deviation "
            f"{_fmt(float(np.std(whole)))}).")
  rows = [["cell (the authors' string)", f"{name}, whole split", "first half", "second half"]]
  for c in sorted(m.candidates, key=lambda c: c.whole, reverse=not m.lower_is_better):
    rows.append([("the answer: " if c.role == "answer" else "") + c.authors, _fmt(c.whole),
                 _fmt(c.halves[0]), _fmt(c.halves[1])])
  under = (f"shared weights of checkpoint {m.checkpoint_step}" if m.figure_source == "shared"
           else "table") + _finetuned(m)
  state = ("The search has finished." if files.finished else
           "The search is still running or stopped before its end: these figures are those of "
           "its newest checkpoint, and will change.")
  searched, screen = ((files.summary or {}).get(k) for k in ("authors", "screen"))
  if searched and searched != answer.authors:  # the report scored another way than the search
    how = ("its screen passed over the better-scored cell(s), which did not train alone: see "
           "below" if screen and len(screen["candidates"]) > 1 else
           f"picked with `search.finetune_steps` = "
           f"{(files.summary or {}).get('finetune_steps', 0)}")
    state += (f" Scored as here, the best candidate cell is not the search's own answer "
              f"({searched}, {how}); the checks judge the best one as scored here.")
  return page.Section(
      "The answer",
      paragraphs=[state,
                  f"The authors' string: {space.to_authors_string(answer.arch)}",
                  f"Our JSON: {json.dumps(space.to_json(answer.arch))}",
                  f"Its {name} on the whole validation split: {_fmt(answer.whole)} (under the "
                  f"{under}).",
                  spread, *outputs.screen_lines(screen)],
      table=rows, figures=figs)


def _progress_section(files: reading.SearchFiles, m: scoring.Measurements, folder: str,
                      say: Callable[[str], None]) -> page.Section:
  figs = []
  curves = os.path.join(folder, "curves.png")
  if plot_records(files.records, curves, os.path.basename(os.path.normpath(files.workdir))):
    figs.append(page.Figure(curves, "Controller reward and baseline, controller entropy, the "
                            "shared weights' training figures, and each epoch's derived cell "
                            "on the validation split (metrics.jsonl)."))
  if files.epoch_archs and render.dot_program() is not None:
    gif = os.path.join(folder, "search.gif")
    build_gif(files.workdir, gif)
    figs.append(page.Figure(gif, "The derived cell of each epoch (the search GIF)."))
  elif render.dot_program() is None:
    say("note: Graphviz `dot` is not installed: the report has no architecture pictures.")
  rows = [["epoch", "derived cell", f"valid {m.metric} then", "mean reward"]]
  for path in files.epoch_archs:
    data = read_json_file(path)
    rows.append([epoch_label(data), m.space.to_authors_string(
        m.space.from_json(data, where=path)), _fmt(data.get(f"valid_{m.metric}")),
        _fmt(data.get("reward"))])
  return page.Section(
      "How the search went",
      paragraphs=[f"Checkpoint {m.checkpoint_step}: {m.epochs_done} of {m.epochs_planned} "
                  f"epochs done, {m.shared_steps} shared steps. Figures of different epochs "
                  f"come from different weights: only the re-scored ones above compare."],
      table=rows if len(rows) > 1 else (), figures=figs)


def _random_section(m: scoring.Measurements, options: ReportConfig, chart: str) -> page.Section:
  name = f"valid {m.metric}"
  rows = [["cell", f"{name}, whole split", "first half", "second half"]
          + (["trained alone"] if m.alone else [])]
  for c in m.random:  # train_alone set `alone` on the cells it trained
    rows.append([c.authors, _fmt(c.whole), _fmt(c.halves[0]), _fmt(c.halves[1])]
                + ([_fmt(c.alone)] if m.alone else []))
  text = [f"{len(m.random)} cells drawn uniformly (seed {options.seed}), each scored under the "
          f"same {'shared weights' if m.figure_source == 'shared' else 'table'} as the answer"
          f"{_finetuned(m)} on the whole validation split and on its two halves."]
  if m.alone:
    text.append(f"Trained alone: the top {options.train_alone} and {options.train_alone} more "
                f"of these cells and the answer, each from the same fresh weights for "
                f"{m.alone_steps} steps of the search's training stream, "
                f"{_SCHEDULE_WORDS[m.alone_schedule]}; the answer trained alone: "
                f"{_fmt(m.answer.alone)}.")
  text += m.notes
  return page.Section("Random cells under the same weights", paragraphs=text, table=rows,
                      figures=[page.Figure(chart, "Left: the answer among the random cells. "
                                           "Middle: the random cells on the two halves of the "
                                           "validation split. Right (if any): shared weights "
                                           "against training alone.")])


_SCHEDULE_WORDS = {  # `report.train_alone_schedule`, in words
    "linear": "the learning rate annealed linearly from the search's first to 0",
    "constant": "at the search's first learning rate",
    "averaged": "at the search's first learning rate, the weights averaged over the second half"}


_SUMMARY_FIGURES = {  # summary.json facts a task adds, in words
    "teacher_arch": "the planted (teacher's) cell",
    "planted_arch_valid_ppl_shared": "the planted cell under the same shared weights",
    "teacher_ppl_valid": "the teacher's optimal validation perplexity (the floor)",
    "unigram_ppl_valid": "a unigram model's validation perplexity",
    "dataset": "dataset", "table_rank": "the answer's rank in the table",
    "table_cells": "cells in the table", "regret_acc": "the answer's regret (accuracy)",
    "best_possible": "the best cell in the table",
    "best_possible_valid_acc": "its validation accuracy"}


def _task_section(files: reading.SearchFiles) -> page.Section | None:
  """What the task knows about the right answer (summary.json of a finished search)."""
  summary = files.summary or {}
  facts, corpus = dict(summary), summary.get("corpus")
  facts.update({k: v for k, v in (corpus if isinstance(corpus, dict) else {}).items()
                if k in _SUMMARY_FIGURES})  # (a damaged one was an AttributeError traceback)
  rows = [["fact", "value"]] + [[words, _fmt(facts[key]) if isinstance(facts[key], float)
                                 else str(facts[key])]
                                for key, words in _SUMMARY_FIGURES.items() if key in facts]
  if len(rows) == 1:
    return None
  return page.Section("What the task knows", paragraphs=[
      "Facts of the task that judge the answer from outside the search (summary.json)."],
      table=rows)


def _method_section(options: ReportConfig) -> page.Section:
  c = checks_lib
  return page.Section("How the checks are judged", paragraphs=[
      f"Controller collapse: the entropy of the controller's samples (metrics.jsonl) falling "
      f"below {options.collapse_fraction:.0%} of its first value fails before "
      f"{c.COLLAPSE_EARLY / 2:.0%} of the planned shared training, warns before "
      f"{c.COLLAPSE_EARLY:.0%}.",
      f"The answer against random cells: its percentile among the random cells (ties count "
      f"half) passes from {c.PERCENTILE_PASS:.0f}%, warns from {c.PERCENTILE_WARN:.0f}%.",
      f"Stability: Spearman's rho between the random cells' figures on the two halves passes "
      f"from {c.RHO_PASS}, warns from {c.RHO_WARN}.",
      f"Training alone (--train_alone=K): Kendall's tau between shared-weight and stand-alone "
      f"figures passes from {c.TAU_PASS}, warns from {c.TAU_WARN}."])


def build_report(workdir: str, overrides: Mapping[str, Any], say: Callable[[str], None]
                 ) -> Report:
  """Measures, judges and writes the report of the search in `workdir`."""
  files = reading.read_search(workdir)
  options = report_options(files.config, overrides)
  m = scoring.measure(files.config, workdir, options, say)
  checks = judge(files, m, options)
  word, sentence = checks_lib.verdict(checks)
  folder = reading.report_folder(workdir)
  os.makedirs(folder, exist_ok=True)
  chart = os.path.join(folder, "checks.png")
  figures.draw_checks(m, chart)
  task = _task_section(files)
  sections = [_answer_section(files, m, folder, say), *([task] if task else []),
              _random_section(m, options, chart), _progress_section(files, m, folder, say),
              _method_section(options)]
  title = (f"ENAS search report: {os.path.basename(os.path.abspath(workdir))} "
           f"({files.config.get('space')} space)")
  doc = page.Page(title, word, sentence, checks, sections)
  page.write_markdown(doc, os.path.join(folder, "report.md"))
  page.write_html(doc, os.path.join(folder, "index.html"))
  return Report(folder, word, sentence, checks)
