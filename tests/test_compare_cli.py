"""`python -m enas_jax.compare` (`enas_jax.report.versus`): one method's trained answers against
another's over seeds, the permutation test's p-value checked by hand, and a user's mistakes as one
paragraph."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from enas_jax.report import stats
from enas_jax.report import versus as compare
from enas_jax.io import workdir as workdir_lib
from enas_jax.io.errors import UserError


def _runs(tmp_path, name, figures):
  paths = []
  for i, figure in enumerate(figures):
    folder = tmp_path / f"{name}{i}"
    folder.mkdir()
    workdir_lib.write_json(str(folder / "summary.json"), figure)  # as a run writes it
    paths.append(str(folder))
  return paths


def test_the_p_value_and_verdict_by_hand(tmp_path):
  firsts = _runs(tmp_path, "a", [{"valid_ppl": v} for v in (10, 11, 12)])
  ours = compare.read_runs([",".join(firsts)], "ours")  # comma-separated
  base = compare.read_runs(_runs(tmp_path, "b", [{"valid_ppl": v} for v in (13, 14, 15)]),
                           "baseline")
  result = compare.comparison(ours, base, compare.choose_figure({**ours, **base}, ""))
  # 20 splits of six runs into three and three; only the observed one and its mirror are as far
  # apart as |11 - 14| = 3: p = 2 / 20, and no split of 3 + 3 runs can do better.
  assert (result["figure"], result["p"], result["least_p"]) == ("valid_ppl", 0.1, 0.1)
  assert (result["ours_mean"], result["ours_std"], result["difference"]) == (11.0, 1.0, -3.0)
  assert "no significant difference" in result["verdict"] and "run more seeds" in result["verdict"]
  # Four against four, accuracy (higher is better), the baseline ahead: 2 of C(8, 4) = 70 splits.
  ours = compare.read_runs(_runs(tmp_path, "c", [{"test_acc": v} for v in (.90, .91, .92, .93)]),
                           "ours")
  base = compare.read_runs(_runs(tmp_path, "d", [{"test_acc": v} for v in (.94, .95, .96, .97)]),
                           "baseline")
  result = compare.comparison(ours, base, compare.choose_figure({**ours, **base}, ""))
  assert result["figure"] == "test_acc" and not result["lower_is_better"]
  assert result["p"] == pytest.approx(2 / 70) and result["verdict"].startswith("the baseline is")
  # Overlapping sides: 1, 2, 4 against 3, 5, 6: |7/3 - 14/3| = 7/3, reached by 4 of 20 splits
  # (1 2 4 | 3 5 6, 1 2 3 | 4 5 6 and their mirrors).
  ours = compare.read_runs(_runs(tmp_path, "e", [{"valid_ppl": v} for v in (1, 2, 4)]), "ours")
  base = compare.read_runs(_runs(tmp_path, "f", [{"valid_ppl": v} for v in (3, 5, 6)]), "base")
  assert compare.comparison(ours, base, "valid_ppl")["p"] == pytest.approx(4 / 20)


def test_one_run_that_swamps_the_mean_is_flagged_by_the_rank_test(tmp_path):
  """Six of our seven runs beat every baseline run, the seventh diverged (1000): the test on the
  means sees nothing (p = 1), the test on ranks (ours 1-6 and 14 against 7-13) does, and the
  verdict says the two disagree; the medians are reported beside the means."""
  ours = compare.read_runs(_runs(tmp_path, "a", [{"valid_ppl": v} for v in
                                                  (1, 2, 3, 4, 5, 6, 1000)]), "ours")
  base = compare.read_runs(_runs(tmp_path, "b", [{"valid_ppl": v} for v in range(7, 14)]),
                           "baseline")
  result = compare.comparison(ours, base, "valid_ppl")
  assert result["p"] == 1.0
  assert result["p_ranks"] == stats.permutation_test([1, 2, 3, 4, 5, 6, 14], list(range(7, 14)))
  assert result["p_ranks"] < 0.05
  assert (result["ours_median"], result["baseline_median"]) == (4.0, 10.0)
  assert "the two tests disagree" in result["verdict"]
  lines = "\n".join(compare.report_lines(result))
  assert "median 4.0000" in lines and f"by ranks p = {result['p_ranks']:.4g}" in lines
  # when both tests agree nothing is added
  tame = compare.read_runs(_runs(tmp_path, "c", [{"valid_ppl": v} for v in
                                                  (1, 2, 3, 4, 5, 6, 6.5)]), "ours")
  assert "disagree" not in compare.comparison(tame, base, "valid_ppl")["verdict"]


def test_the_interval_of_the_difference_inverts_the_test(tmp_path):
  """a = 0, 1 against b = 10, 12 shifted by d: of the 6 splits, the observed one and its mirror
  differ by |D| = |-10.5 - d|, the two cross splits (0 + 10 | 1 + 12 and 0 + 12 | 1 + 10) by 1.5
  and 0.5 whatever d is. So p = 1 for |D| <= 0.5, 4/6 up to 1.5 and 2/6 beyond: the 50% interval
  is |D| <= 1.5, d in [-12, -9]; at 95% no shift is rejected (least p 1/3)."""
  assert stats.shift_interval([0, 1], [10, 12], alpha=0.5) == (
      pytest.approx(-12.0, abs=1e-6), pytest.approx(-9.0, abs=1e-6))
  assert stats.shift_interval([0, 1], [10, 12]) == (-math.inf, math.inf)
  # Four against four: each end is where the plain test of a - d against b crosses 0.05.
  a, b = [0.90, 0.91, 0.92, 0.93], [0.94, 0.955, 0.96, 0.97]
  low, high = stats.shift_interval(a, b)
  for end, outward in ((low, -1e-6), (high, 1e-6)):  # the ends within 1e-6 of the flips
    assert stats.permutation_test([x - end + outward for x in a], b) >= 0.05
    assert stats.permutation_test([x - end - outward for x in a], b) < 0.05
  assert low < high < 0  # p = 2/70 at d = 0: zero is outside
  # Twenty against twenty (sampled splits): zero inside exactly when the test's p >= 0.05.
  rng = np.random.default_rng(3)
  for shift in (0.0, 0.3, 1.0):
    a, b = rng.normal(size=20) + shift, rng.normal(size=20)
    low, high = stats.shift_interval(a, b)
    assert (low <= 0 <= high) == (stats.permutation_test(a, b) >= 0.05)
    assert low < a.mean() - b.mean() < high
  three = compare.read_runs(_runs(tmp_path, "g", [{"valid_ppl": v} for v in (1, 2, 4)]), "ours")
  other = compare.read_runs(_runs(tmp_path, "h", [{"valid_ppl": v} for v in (3, 5, 6)]), "base")
  result = compare.comparison(three, other, "valid_ppl")
  assert result["interval"] is None
  assert "95% interval of the difference (the shifts the test does not reject): unbounded" in \
      "\n".join(compare.report_lines(result))


def test_a_search_workdir_and_other_mistakes_are_refused(tmp_path):
  shared = _runs(tmp_path, "s", [{"valid_ppl_shared": 30.0, "authors": "0 0"}] * 2)
  runs = compare.read_runs(shared, "ours")
  with pytest.raises(UserError, match="a search's workdir: its figures are under the shared"):
    compare.choose_figure(runs, "")
  assert compare.choose_figure(runs, "valid_ppl_shared") == "valid_ppl_shared"  # when asked
  by_summary = compare.read_runs([f"{shared[0]}/summary.json", shared[1]], "ours")
  with pytest.raises(UserError, match=f"summary.json is a search's summary: .*--config.arch="
                                      f"{shared[0]}\\) and compare"):  # its workdir, not the file
    compare.choose_figure(by_summary, "")
  flagged = compare.read_runs(_runs(tmp_path, "b", [{"valid_ppl": True}, {"valid_ppl": 30.0}]),
                              "ours")  # a JSON true was compared as the number 1.0
  with pytest.raises(UserError, match="b0 has no such number in its summary.json"):
    compare.choose_figure(flagged, "valid_ppl")
  with pytest.raises(UserError, match="No figure that every run has"):
    compare.choose_figure(flagged, "")
  with pytest.raises(UserError, match="knows which way is better"):
    compare.lower_is_better("params")
  with pytest.raises(UserError, match="names a run twice"):
    compare.read_runs([shared[0], shared[0]], "ours")
  diverged = compare.read_runs(_runs(tmp_path, "n", [{"valid_ppl": 30.0},
                                                     {"valid_ppl": float("nan")}]), "ours")
  # written as strict JSON (the text "nan"), read back as the number
  assert json.loads((tmp_path / "n1" / "summary.json").read_text(),
                    parse_constant=lambda c: pytest.fail(c)) == {"valid_ppl": "nan"}
  with pytest.raises(UserError, match=r"n1: its valid_ppl is nan \(the run diverged"):
    compare.comparison(diverged, {"x": {"valid_ppl": 31.0}, "y": {"valid_ppl": 32.0}},
                       "valid_ppl")
  both = {"x": {"valid_ppl": 31.0}, "y": {"valid_ppl": 32.0}}
  with pytest.raises(UserError, match=r"h0: its valid_ppl is 1e\+200 \(the run diverged"):
    compare.comparison(compare.read_runs(_runs(tmp_path, "h", [{"valid_ppl": 1e200},
                                                               {"valid_ppl": 30.0}]), "ours"),
                       both, "valid_ppl")  # its square, in the variance, was inf
  near = compare.comparison({"f": {"valid_ppl": 3.4e38}, "g": {"valid_ppl": 30.0}}, both,
                            "valid_ppl")  # float32's largest: compared, printed short
  lines = compare.report_lines(near)
  assert lines[1] == "ours (2 runs): 1.7e+38 +- 2.40416e+38, median 1.7e+38"
  assert lines[2:4] == ["  3.4e+38  f", "  30.0000  g"]
  assert lines[7].startswith("difference (ours - baseline): +1.7e+38; two-sided permutation p")
  (tmp_path / "broken").mkdir()
  (tmp_path / "broken" / "summary.json").write_text("{not json")
  with pytest.raises(UserError, match="cannot be read as JSON"):
    compare.read_runs([shared[0], str(tmp_path / "broken")], "ours")
  # a training that stopped (here after its second epoch, diverged) has records and no summary
  stopped = tmp_path / "stopped"
  stopped.mkdir()
  (stopped / "metrics.jsonl").write_text("".join(
      json.dumps(r) + "\n" for r in [{"phase": "train", "step": 10, "loss": 4.0},
                                     {"phase": "epoch", "step": 1, "valid_ppl": 90.5},
                                     {"phase": "epoch", "step": 2, "valid_ppl": "nan"}]))
  with pytest.raises(UserError) as err:
    compare.read_runs([shared[0], str(stopped)], "ours")
  assert ("summary.json does not exist: that run has not finished. Its metrics.jsonl records 2 "
          "finished epoch(s), the last with validation perplexity nan; it is still running, was "
          "stopped by a signal") in str(err.value)


def test_the_command_prints_the_test_writes_json_and_fails_in_one_paragraph(tmp_path):
  ours = _runs(tmp_path, "a", [{"valid_ppl": v, "test_ppl": v + 1} for v in (10, 11, 12, 13)])
  base = _runs(tmp_path, "b", [{"valid_ppl": v} for v in (14, 15, 16, 17)])

  def command(*flags):
    return subprocess.run([sys.executable, "-m", "enas_jax.compare", *flags],
                          capture_output=True, text=True, timeout=120)

  out = tmp_path / "versus.json"
  done = command(f"--ours={','.join(ours)}", *(f"--baseline={b}" for b in base),
                 f"--json={out}")
  assert done.returncode == 0, done.stderr
  assert "verdict: ours is better (p < 0.05)" in done.stdout
  assert json.loads(out.read_text())["p"] == pytest.approx(2 / 70)
  for flags, expected in (
      ((f"--ours={ours[0]}", f"--baseline={','.join(base)}"), "--ours names 1 run(s)"),
      ((f"--ours={','.join(ours)}", f"--baseline={','.join(base)}", "--figure=test_ppl"),
       "has no such number"),
      ((f"--ours={','.join(ours)}", f"--baseline={tmp_path / 'nope'},{base[0]}"),
       "does not exist"),
      ((f"--ours={','.join(ours)}", f"--baseline={','.join(base)}", "extra"),
       "compare takes only flags")):
    failed = command(*flags)
    message = " ".join(failed.stderr.split())
    assert failed.returncode == 2 and expected in message and "Traceback" not in message
