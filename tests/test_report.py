"""The search report (`python -m enas_jax.report`): each check's figure by hand on constructed
cases, the pages, the report of a tiny search of every space (its figures against the search's
own), a search still running, nothing written outside WORKDIR/report/, clear errors, and the page
opened in a real browser (headless Chromium)."""
import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from enas_jax.configs import nasbench201, quickstart
from enas_jax.io import render
from enas_jax.io.errors import Stopped, UserError
from enas_jax.report import alone_cache, checks, page, scoring, stats
from enas_jax.report.build import build_report
from enas_jax.run import config as run_config
from enas_jax.spaces.registry import SPACES
from tests import runs

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# --- each check's figure by hand --------------------------------------------------------------

def _records(entropies, epoch_after=2):
  """Shared records at steps 10 and 20, the controller's entropies at steps 1.., an epoch
  record after the `epoch_after`-th controller record and a shared record at step 30 after it."""
  out = [{"phase": "shared", "step": 10}, {"phase": "shared", "step": 20}]
  for i, e in enumerate(entropies, start=1):
    out.append({"phase": "controller", "step": i, "entropy": e})
    if i == epoch_after:
      out += [{"phase": "derive", "step": 0}, {"phase": "epoch", "step": 1},
              {"phase": "shared", "step": 30}]
  return out


def test_collapse_is_the_first_entropy_below_the_fraction_with_the_training_it_had():
  c = checks.entropy_collapse(_records([10.0, 8.0, 6.0, 4.9, 3.0]), 0.5)
  # threshold 5.0; 4.9 at controller step 4, in epoch 2, after 30 shared steps
  assert (c.start, c.threshold, c.latest) == (10.0, 5.0, 3.0)
  assert (c.controller_step, c.epoch, c.shared_steps) == (4, 2, 30)
  assert checks.collapse_check(c, 0.5, 200, 10).status == "fail"  # 30/200 = 15% < 25%
  assert checks.collapse_check(c, 0.5, 80, 10).status == "warn"  # 37.5%
  passed = checks.collapse_check(c, 0.5, 60, 10)  # 50%: late enough
  assert passed.status == "pass" and "(50% of the 60 planned)" in passed.figure
  # A table search (no shared weights) is judged by controller steps: 4 of 20 = 20%
  assert checks.collapse_check(c, 0.5, 0, 20).status == "fail"
  never = checks.entropy_collapse(_records([10.0, 9.0, 5.0]), 0.5)  # 5.0 is not below 5.0
  assert never.controller_step is None
  assert checks.collapse_check(never, 0.5, 100, 10).status == "pass"
  assert checks.entropy_collapse([{"phase": "shared", "step": 1}], 0.5) is None
  assert checks.collapse_check(None, 0.5, 100, 10).status == "n/a"


def test_the_answers_percentile_among_random_cells():
  figures = list(range(1, 11))  # 1..10
  # lower is better: 5 beats 6..10 (5 cells) and ties with one: 5.5 of 10
  assert stats.percentile_among(5, figures, lower_is_better=True) == 55.0
  assert stats.percentile_among(5, figures, lower_is_better=False) == 45.0
  best = checks.percentile_check(0.5, figures, True, "ppl")  # the best of its sample
  assert best.status == "pass" and "better than 100% of 10 random cells" in best.figure
  assert checks.percentile_check(3, figures, True, "ppl").status == "pass"  # 75%
  assert checks.percentile_check(5, figures, True, "ppl").status == "warn"
  worst = checks.percentile_check(9, figures, True, "ppl")  # 15%
  assert worst.status == "fail" and worst.remedy


def test_rank_statistics_by_hand():
  # d = (0, 1, -1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8
  assert stats.spearman_rho([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
  # ties get their average rank: x ranks (1.5, 1.5, 3), y ranks (1, 2, 3)
  x_r, y_r = np.array([1.5, 1.5, 3]) - 2, np.array([1, 2, 3]) - 2
  assert stats.spearman_rho([7, 7, 9], [1, 2, 3]) == pytest.approx(
      float(x_r @ y_r / math.sqrt((x_r @ x_r) * (y_r @ y_r))))
  assert math.isnan(stats.spearman_rho([1, 1, 1], [1, 2, 3]))
  # the exact p-value of a perfect ranking of 5: 2 of the 120 orders have |tau| = 1
  p = stats.tau_p_value(range(5), range(5), samples=20_000, seed=3)
  assert p == pytest.approx(2 / 120, abs=0.004)


def test_two_halves_that_agree_pass_and_two_that_disagree_fail():
  a = list(np.linspace(10, 40, 16))
  assert checks.stability_check(a, [2 * v + 1 for v in a]).status == "pass"
  assert checks.stability_check(a, a[::-1]).status == "fail"
  rng = np.random.default_rng(0)
  noise = checks.stability_check(a, list(rng.permutation(a)))
  assert noise.status in ("fail", "warn") and "p = " in noise.figure
  # too few cells: even a perfect agreement is not significant (p = 1/3 over 3 cells)
  few = checks.stability_check([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
  assert few.status == "warn" and "too few cells" in few.reading
  # The rule: strong and significant passes; strong over too few cells, or weak but
  # significant, warns; weak and not significant fails.
  rule = checks._correlation_status  # (value, p, passing, warning)
  assert [rule(0.6, 0.01, 0.5, 0.2), rule(0.6, 0.2, 0.5, 0.2), rule(0.3, 0.01, 0.5, 0.2),
          rule(0.3, 0.3, 0.5, 0.2), rule(0.1, 0.001, 0.5, 0.2)] == [
              "pass", "warn", "warn", "fail", "fail"]
  alone = checks.train_alone_check(a, [v + 1 for v in a], 50)
  assert alone.status == "pass" and "50 training steps" in alone.figure
  assert checks.train_alone_check(a, a[::-1], 50).status == "fail"


def test_the_verdict_is_the_worst_check():
  ok = checks.Check("a", "pass", "", "", "")
  warn = checks.Check("b", "warn", "", "", "")
  fail = checks.Check("c", "fail", "", "", "")
  na = checks.Check("d", "n/a", "", "", "")
  assert checks.verdict([ok, na])[0] == "trust"
  assert checks.verdict([ok, warn])[0] == "caution"
  word, sentence = checks.verdict([ok, warn, fail])
  assert word == "distrust" and "c failed" in sentence and "b only partly passed" in sentence
  assert checks.verdict([na])[0] == "unknown"


def test_the_tasks_facts_come_from_the_summary_and_a_damaged_corpus_is_left_out():
  """summary.json's figures (and its corpus's) on the page; a `corpus` that is not an object
  (a damaged summary.json) was an AttributeError traceback: now left out."""
  from enas_jax.report import build, reading

  def facts(summary):
    files = reading.SearchFiles(workdir="w", config={}, records=[], summary=summary,
                                epoch_archs=[])
    section = build._task_section(files)
    return None if section is None else section.table
  table = facts({"corpus": {"teacher_ppl_valid": 7.75}, "dataset": "planted"})
  assert table == [["fact", "value"], ["the teacher's optimal validation perplexity (the floor)",
                                       "7.75"], ["dataset", "planted"]]
  assert facts({"corpus": 5, "dataset": "planted"}) == [["fact", "value"], ["dataset", "planted"]]
  assert facts({"corpus": [1]}) is None and facts(None) is None


def test_the_html_page_is_self_contained(tmp_path):
  png = render.render("digraph { a -> b }", "png") if render.dot_program() else None
  image = tmp_path / "x.png"
  if png is None:  # any PNG will do: a 1x1 one written by hand
    import zlib, struct
    raw = zlib.compress(b"\x00\xff\x00\x00")
    chunk = lambda t, d: (struct.pack(">I", len(d)) + t + d  # noqa: E731
                          + struct.pack(">I", zlib.crc32(t + d)))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
  image.write_bytes(png)
  doc = page.Page("T <1>", "trust", "All fine.", [checks.Check("c", "pass", "f", "r", "")],
                  [page.Section("S", ["p & q"], [["a", "b|c"], ["1", "2"]],
                                [page.Figure(str(image), "cap")])])
  page.write_html(doc, str(tmp_path / "index.html"))
  page.write_markdown(doc, str(tmp_path / "report.md"))
  text = (tmp_path / "index.html").read_text()
  assert "data:image/png;base64," in text and "x.png" not in text  # inlined, not linked
  assert "T &lt;1&gt;" in text and "p &amp; q" in text
  md = (tmp_path / "report.md").read_text()
  assert "![cap](x.png)" in md and "b\\|c" in md


# --- the report of real searches ----------------------------------------------------------------

_snapshot = runs.snapshot


@pytest.mark.parametrize("space", ["rnn", "nasbench201"])
def test_report_of_a_tiny_search(space, tmp_path, monkeypatch):
  """The recurrent and the table spaces here; the macro and micro searches' reports are checked
  on the searches tests/test_cnn_search.py runs anyway (runs.check_report)."""
  config = quickstart if space == "rnn" else nasbench201
  run, summary = runs.search(runs.search_config(config), tmp_path / space)
  runs.check_report(run, summary, tmp_path / space, train_alone=1)
  if space == "rnn":
    _trained_alone_is_kept_and_a_stop_resumes(tmp_path / space, monkeypatch)
  if space == "rnn":  # the answer's screen (on in the recurrent configs) shown on the page
    md = " ".join((tmp_path / space / "report" / "report.md").read_text().split())
    assert summary["screen"]["candidates"][0]["authors"] == summary["authors"]
    assert "screen: it trains alone (training perplexity " in md
    assert "over the last 16 of 32 steps alone from fresh weights; a uniform guess: " in md
    # as if the screen had passed over the best-scored cell: the page says why the search's
    # answer is another cell, and which it passed over
    passed_over = {"authors": summary["authors"], "train_ppl": 1e9, "skipped_steps": 0,
                   "passed": False}
    chosen = {"authors": "another cell", "train_ppl": 50.0, "skipped_steps": 0, "passed": True}
    screen = dict(summary["screen"], candidates=[passed_over, chosen])
    (tmp_path / space / "summary.json").write_text(json.dumps(
        {**summary, "authors": "another cell", "screen": screen}))
    build_report(str(tmp_path / space), {"random_cells": 3}, lambda _: None)
    md = " ".join((tmp_path / space / "report" / "report.md").read_text().split())
    assert ("the best candidate cell is not the search's own answer (another cell, its screen "
            "passed over the better-scored cell(s), which did not train alone") in md
    assert f"screen: passed over {summary['authors']} (1e+09) (training perplexity" in md


def _trained_alone_is_kept_and_a_stop_resumes(workdir, monkeypatch):
  """The figures of cells trained alone are kept in report/trained_alone.json: a SIGTERM while
  training alone stops after the cell in progress (exit 143) with that cell kept, and the same
  command trains only the other two, to the same figures, bit for bit, as the report that was
  not stopped."""
  cache = workdir / "report" / "trained_alone.json"
  reference = json.loads(cache.read_text())["entries"]
  assert len(reference) == 3  # the top cell, one more random cell, the answer
  trained, calls = scoring.trained_alone, []

  def then_sigterm(*args):
    figure = trained(*args)
    os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would, while a cell trains
    return figure

  cache.unlink()
  monkeypatch.setattr(scoring, "trained_alone", then_sigterm)
  with pytest.raises(Stopped, match="stopped by SIGTERM while training cells alone: 1 of 3 "
                     "trained and kept in .*; run the same command to train the other 2") as stop:
    build_report(str(workdir), {"train_alone": 1}, lambda _: None)
  assert stop.value.exit_code == 128 + signal.SIGTERM
  kept = json.loads(cache.read_text())["entries"]
  assert len(kept) == 1 and kept.items() <= reference.items()
  monkeypatch.setattr(scoring, "trained_alone", lambda *a: calls.append(1) or trained(*a))
  lines = []
  build_report(str(workdir), {"train_alone": 1}, lines.append)
  assert any("1 kept from an earlier report" in line for line in lines), lines
  assert len(calls) == 2 and json.loads(cache.read_text())["entries"] == reference


def test_the_cells_trained_alone_are_kept_by_what_their_training_depends_on(tmp_path):
  """`alone_cache`: a figure is found again under the same config, cell, steps, schedule and
  seed (the config's report and parallel sections aside), and under no other; inf survives the
  file; a damaged file is a warning and is rewritten whole."""
  config = {"model": {"hidden": 8}, "report": {"train_alone": 2}, "parallel": {"devices": 2}}
  said = []
  cache = alone_cache.AloneCache(str(tmp_path / "report"), config, said.append)
  key = cache.key({"nodes": [0, 1]}, 200, "linear", 0)
  cache.put(key, math.inf, "cell A")
  same = alone_cache.AloneCache(str(tmp_path / "report"),
                                {**config, "report": {}, "parallel": {}}, said.append)
  assert same.get(key) == math.inf and said == []
  others = [same.key({"nodes": [0, 2]}, 200, "linear", 0), same.key({"nodes": [0, 1]}, 100,
            "linear", 0), same.key({"nodes": [0, 1]}, 200, "constant", 0),
            same.key({"nodes": [0, 1]}, 200, "linear", 1),
            alone_cache.AloneCache(str(tmp_path / "report"), {**config, "model": {"hidden": 9}},
                                   said.append).key({"nodes": [0, 1]}, 200, "linear", 0)]
  assert key not in others and len(set(others)) == 5
  assert all(same.get(k) is None for k in others)
  path = tmp_path / "report" / alone_cache.FILE
  path.write_text('{"entries": [1, 2]')
  damaged = alone_cache.AloneCache(str(tmp_path / "report"), config, said.append)
  assert len(damaged) == 0 and len(said) == 1 and "cannot be read" in said[0]
  damaged.put(key, 3.5, "cell A")
  assert json.loads(path.read_text()) == {"format": 1, "entries": {
      key: {"figure": 3.5, "authors": "cell A"}}}


def test_two_reports_at_once_keep_both_reports_cells(tmp_path):
  """Two reports of one workdir running at once (say `--train_alone=5` and `=10`), each opened
  the file before the other wrote: the last writer dropped the other's new figures. Now each
  write merges what is on disk, under a lock."""
  folder, config = str(tmp_path / "report"), {"model": {"hidden": 8}}
  first = alone_cache.AloneCache(folder, config, print)
  second = alone_cache.AloneCache(folder, config, print)
  keys = [first.key({"nodes": [0, n]}, 200, "linear", 0) for n in range(3)]
  first.put(keys[0], 5.0, "cell 0")
  second.put(keys[1], 6.0, "cell 1")
  first.put(keys[2], 7.0, "cell 2")
  again = alone_cache.AloneCache(folder, config, print)
  assert [again.get(k) for k in keys] == [5.0, 6.0, 7.0]
  assert second.get(keys[0]) == 5.0  # what the other wrote is read as this one writes


def test_report_of_a_search_still_running(tmp_path):
  """A search in another process, read while it runs: the report uses its newest checkpoint,
  says it is running, and the search goes on undisturbed and finishes."""
  workdir = tmp_path / "running"
  cmd = [sys.executable, "-m", "enas_jax.search", "--config=quickstart:tiny",
         f"--workdir={workdir}", "--config.search.epochs=40", "--progress=off"]
  search = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
  try:
    deadline = time.time() + 120
    lines, report = [], None
    while report is None:  # a checkpoint's folder appears before orbax commits it: retry
      assert search.poll() is None and time.time() < deadline, search.communicate()
      if any(p.name.isdigit() for p in (workdir / "checkpoints").glob("*")):
        try:
          report = build_report(str(workdir), {}, lines.append)
        except UserError as e:
          assert "has no checkpoint yet" in str(e)
      time.sleep(0.2)
    assert search.poll() is None  # the search was still running while the report read it
    md = (workdir / "report" / "report.md").read_text()
    assert "still running or stopped before its end" in md
    assert report.verdict_word in ("trust", "caution", "distrust")
    assert not (workdir / "summary.json").exists()
  finally:
    search.send_signal(signal.SIGTERM)
    out, err = search.communicate(timeout=120)
  assert search.returncode == 128 + signal.SIGTERM, err
  assert "stopped by SIGTERM" in err


@pytest.fixture(scope="module")
def nb201_search(tmp_path_factory):
  """A finished tiny NAS-Bench-201 search (seconds); tests copy it before writing."""
  workdir = tmp_path_factory.mktemp("nb201") / "search"
  runs.search(runs.search_config(nasbench201), workdir)
  return workdir


def test_a_partly_written_log_and_a_checkpoint_being_saved_are_read_around(tmp_path,
                                                                            nb201_search):
  workdir = tmp_path / "copy"
  shutil.copytree(nb201_search, workdir)
  (workdir / "summary.json").unlink()
  with open(workdir / "metrics.jsonl", "a") as f:
    f.write('{"phase": "controller", "step": 99, "entr')  # the line being written
  (workdir / "checkpoints" / "99.orbax-checkpoint-tmp-1").mkdir()  # a save in progress
  before = _snapshot(workdir)
  report = build_report(str(workdir), {}, lambda _: None)
  assert _snapshot(workdir) == before
  assert (workdir / "checkpoints" / "99.orbax-checkpoint-tmp-1").is_dir()  # left alone
  assert "still running" in (workdir / "report" / "report.md").read_text()
  assert report.checks[0].status != "n/a"


def test_an_epochs_nan_figure_is_shown_and_a_damaged_one_left_out(tmp_path, nb201_search):
  """The progress table reads each epoch's architecture file: a diverged epoch's figure, written
  as the text "nan", is shown as nan; a damaged epoch or reward ("x", a list) is left out
  ("?", "-") instead of ending the report in a traceback (it was a TypeError)."""
  workdir = tmp_path / "copy"
  shutil.copytree(nb201_search, workdir)
  first, second = sorted((workdir / "archs").glob("epoch_*.json"))[:2]
  data = json.loads(first.read_text())
  first.write_text(json.dumps({**data, "valid_acc": "nan", "reward": "inf"}))
  second.write_text(json.dumps({**data, "epoch": "x", "valid_acc": [1], "reward": True}))
  build_report(str(workdir), {}, lambda _: None)
  md = (workdir / "report" / "report.md").read_text()
  space = SPACES["nasbench201"]
  authors = space.to_authors_string(space.from_json(data)).replace("|", "\\|")  # markdown's
  assert f"| {int(data['epoch']) + 1} | {authors} | nan | inf |" in md
  assert f"| ? | {authors} | - | - |" in md


def test_a_checkpoint_deleted_while_listed_is_listed_again(tmp_path, nb201_search, monkeypatch):
  """A running search deletes its oldest checkpoint after each save; when that happens while
  the report's reader lists the directory, the reader lists it again (measured: a report of a
  search under load once failed with FileNotFoundError there)."""
  from enas_jax.io import checkpoints
  workdir = tmp_path / "copy"
  shutil.copytree(nb201_search, workdir)
  real, calls = checkpoints.ocp.CheckpointManager, []

  def deleted_during_the_first_listing(*args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
      raise FileNotFoundError(2, "No such file or directory", str(workdir / "checkpoints" / "3"))
    return real(*args, **kwargs)
  monkeypatch.setattr(checkpoints.ocp, "CheckpointManager", deleted_during_the_first_listing)
  report = build_report(str(workdir), {}, lambda _: None)
  assert len(calls) == 2 and report.checks[0].status != "n/a"
  # a directory that changes under every listing: one paragraph, not a traceback
  monkeypatch.setattr(checkpoints.ocp, "CheckpointManager", lambda *a, **k: (_ for _ in ()).throw(
      FileNotFoundError(2, "gone")))
  monkeypatch.setattr(checkpoints.time, "sleep", lambda s: None)
  with pytest.raises(UserError, match="changed under every one of 10 reads"):
    build_report(str(workdir), {}, lambda _: None)


def test_checkpoints_all_gone_while_read_are_listed_again(tmp_path, nb201_search, monkeypatch):
  """A reader slower than a running search's saves: every checkpoint it listed is deleted (the
  search keeps the newest few) before it reads it, while the search saves a newer one. It lists
  the directory again and reads the new one (it said that none could be read: measured once,
  a report of a running search under CI's load)."""
  from enas_jax.io import checkpoints
  workdir = tmp_path / "copy"
  shutil.copytree(nb201_search, workdir)
  directory = workdir / "checkpoints"
  listed = sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())
  new = listed[-1] + 1
  real, asked = checkpoints._restore_step, []

  def saved_and_deleted_under_the_reader(manager, step, position_problem):
    asked.append(step)
    if step in listed:
      if not (directory / str(new)).exists():  # the search saves a new one...
        shutil.copytree(directory / str(listed[-1]), directory / str(new))
      shutil.rmtree(directory / str(step))  # ... and deletes this one before it is read
    return real(manager, step, position_problem)
  monkeypatch.setattr(checkpoints, "_restore_step", saved_and_deleted_under_the_reader)
  report = build_report(str(workdir), {}, lambda _: None)
  assert asked == [*reversed(listed), new] and report.checks[0].status != "n/a"
  # a directory where nothing is readable and nothing new appears: listed twice, then the error
  for p in directory.iterdir():
    shutil.rmtree(p)
  (directory / "7").mkdir()  # not a checkpoint orbax can read
  asked.clear()
  with pytest.raises(UserError, match=r"checkpoints \(7\) could be read"):
    build_report(str(workdir), {}, lambda _: None)
  assert asked == [7]


def test_what_is_not_a_search_is_a_clear_error(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    build_report(str(tmp_path / "nowhere"), {}, print)
  with pytest.raises(UserError, match="no config.json"):
    build_report(str(tmp_path), {}, print)
  final = tmp_path / "final"
  final.mkdir()
  (final / "config.json").write_text(json.dumps({"space": "rnn", "arch": "x", "train": {}}))
  with pytest.raises(UserError, match="a final training's workdir"):
    build_report(str(final), {}, print)
  started = tmp_path / "started"
  started.mkdir()
  config = runs.search_config(nasbench201)
  import dataclasses
  (started / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
  with pytest.raises(UserError, match="no checkpoint yet"):
    build_report(str(started), {}, print)
  assert sorted(os.listdir(started)) == ["config.json"]  # nothing written, not even report/
  (started / "checkpoints" / "5").mkdir(parents=True)  # damaged: not "no checkpoint yet"
  (started / "checkpoints" / "5" / "_CHECKPOINT_METADATA").write_text("garbage")
  with pytest.raises(UserError, match=r"checkpoints \(5\) could be read: damaged.*same "
                                      r"--workdir"):
    build_report(str(started), {}, print)


def test_the_command_prints_the_verdict_and_errors_are_one_paragraph(tmp_path, nb201_search):
  workdir = tmp_path / "nb"
  shutil.copytree(nb201_search, workdir)
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  ok = subprocess.run([sys.executable, "-m", "enas_jax.report", f"--workdir={workdir}",
                       "--random_cells=12"], cwd=ROOT, capture_output=True, text=True, env=env)
  assert ok.returncode == 0, ok.stderr
  assert "verdict: " in ok.stdout and "of 12 random cells" in ok.stdout
  assert "Traceback" not in ok.stderr
  assert "read_only=True" not in ok.stderr  # orbax's notes on a read-only manager's options
  with pytest.raises(UserError, match="from a benchmark's table: there are no shared weights"):
    build_report(str(workdir), {"finetune_steps": 5}, print)  # few-shot scoring needs weights
  summary = json.loads((workdir / "summary.json").read_text())  # as if picked another way
  (workdir / "summary.json").write_text(json.dumps({**summary, "authors": "another cell"}))
  build_report(str(workdir), {}, lambda _: None)
  md = " ".join((workdir / "report" / "report.md").read_text().split())
  assert "the best candidate cell is not the search's own answer (another cell, picked" in md
  bad = subprocess.run([sys.executable, "-m", "enas_jax.report", f"--workdir={tmp_path}/none"],
                       cwd=ROOT, capture_output=True, text=True, env=env)
  assert bad.returncode == 2 and "Traceback" not in bad.stderr
  text = bad.stderr.strip()
  assert text.startswith("error: ") and "\n\n" not in text
  assert "does not exist" in " ".join(text.split())


def test_a_count_flag_beyond_int32_is_one_paragraph_and_a_large_seed_is_not(tmp_path):
  """`--random_cells=10**12` drew and scored cells for ever (killed after 2 minutes)."""
  env = {**os.environ, "PYTHONPATH": str(ROOT)}

  def report(flag):
    return subprocess.run([sys.executable, "-m", "enas_jax.report", f"--workdir={tmp_path}/none",
                           flag], cwd=ROOT, capture_output=True, text=True, env=env)
  for flag in ("--random_cells=2147483648", "--finetune_steps=1000000000000"):
    out = report(flag)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    name, value = flag[2:].split("=")
    least = run_config.ReportConfig.MINIMUMS[name]
    assert " ".join(out.stderr.split()) == (
        f"error: {flag} is out of range: it must be at least {least} and below 2**31 "
        f"(2,147,483,648). Pass --{name}={least} or more (or leave it out for the search "
        f"config's report.{name}).")
  out = report("--seed=2147483648")
  assert out.returncode == 2 and "does not exist" in " ".join(out.stderr.split())
  assert run_config.ReportConfig.in_range("random_cells", 2 ** 31 - 1)
  with pytest.raises(UserError, match=r"`report.train_alone` must be at least 0 and below 2\*\*31"):
    run_config.ReportConfig(train_alone=2 ** 31).validate()
  run_config.ReportConfig(seed=2 ** 40).validate()


# --- the page in a real browser -----------------------------------------------------------------

@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
def test_the_page_loads_in_headless_chromium(tmp_path, nb201_search):
  if render.dot_program() is None:
    pytest.skip("Graphviz is not installed: the page would have no architecture pictures")
  workdir = tmp_path / "nb"
  shutil.copytree(nb201_search, workdir)
  report = build_report(str(workdir), {}, lambda _: None)
  shutil.move(str(workdir / "report"), str(tmp_path / "moved"))  # self-contained: no files
  index = tmp_path / "moved" / "index.html"
  for name in os.listdir(index.parent):  # needed beside it
    if name != "index.html":
      os.remove(index.parent / name)
  flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars"]

  def chromium(*args):
    with tempfile.TemporaryDirectory() as profile:
      return subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}", *args,
                             index.as_uri()], capture_output=True, text=True, timeout=120)

  dom = chromium("--virtual-time-budget=10000", "--dump-dom").stdout
  count = dom.count("<img ")
  assert count >= 4  # the answer, the checks, the curves, the GIF
  assert f'data-images="{count}/{count} loaded"' in dom
  assert f"Verdict: {report.verdict_word}." in dom
  shot = tmp_path / "screenshot.png"
  chromium("--window-size=1100,1400", f"--screenshot={shot}")
  assert render.png_size(shot.read_bytes()) == (1400, 1100)
