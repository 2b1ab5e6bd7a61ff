"""`python -m enas_jax.compare` (`enas_jax.report.versus`): one method's trained answers against
another's over seeds, the permutation test's p-value checked by hand, and a user's mistakes as one
paragraph."""
import json
import subprocess
import sys

import pytest

from enas_jax.report import versus as compare
from enas_jax.io.errors import UserError


def _runs(tmp_path, name, figures):
  paths = []
  for i, figure in enumerate(figures):
    folder = tmp_path / f"{name}{i}"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(figure))
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


def test_a_search_workdir_and_other_mistakes_are_refused(tmp_path):
  shared = _runs(tmp_path, "s", [{"valid_ppl_shared": 30.0, "authors": "0 0"}] * 2)
  runs = compare.read_runs(shared, "ours")
  with pytest.raises(UserError, match="a search's workdir: its figures are under the shared"):
    compare.choose_figure(runs, "")
  assert compare.choose_figure(runs, "valid_ppl_shared") == "valid_ppl_shared"  # when asked
  with pytest.raises(UserError, match="knows which way is better"):
    compare.lower_is_better("params")
  with pytest.raises(UserError, match="names a run twice"):
    compare.read_runs([shared[0], shared[0]], "ours")
  (tmp_path / "broken").mkdir()
  (tmp_path / "broken" / "summary.json").write_text("{not json")
  with pytest.raises(UserError, match="cannot be read as JSON"):
    compare.read_runs([shared[0], str(tmp_path / "broken")], "ours")


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
