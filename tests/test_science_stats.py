"""The studies' statistics against hand-computed values (experiments/planted/stats.py)."""
import ast
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from enas_jax.io.errors import UserError
from enas_jax.report import stats as report_stats
from experiments.planted import common, stats


def test_kendall_tau_by_hand():
  assert stats.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
  assert stats.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
  # pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant -> 4/6
  assert stats.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
  # with a tie in x: x = (1,1,2), y = (1,2,3): pairs (0,1) tie in x, (0,2) c, (1,2) c
  # tau-b = 2 / sqrt((2 + 1) * 2)
  assert stats.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
  # two cells that diverged (inf): ranked last and tied with each other, as (1, 2, 3, 3) is;
  # by differences inf - inf was NaN and both pairs counted as discordant
  inf = math.inf
  assert stats.kendall_tau([1, 2, inf, inf], [1, 2, 3, 4]) == stats.kendall_tau(
      [1, 2, 3, 3], [1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(5 * 6))
  assert report_stats.tau_p_value([1, 2, inf, inf, 5], [1, 2, 4, 5, 3], 200) == (
      report_stats.tau_p_value([1, 2, 9, 9, 5], [1, 2, 4, 5, 3], 200))


def test_kendall_tau_matches_a_plain_count_on_random_data():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=12), rng.normal(size=12)
  c = d = 0
  for i, j in itertools.combinations(range(12), 2):
    s = (x[i] - x[j]) * (y[i] - y[j])
    c, d = c + (s > 0), d + (s < 0)
  assert stats.kendall_tau(x, y) == pytest.approx((c - d) / 66)


def test_permutation_test_exact_by_hand():
  # a = (1, 2), b = (3, 4): of the 6 splits of {1,2,3,4} into pairs, |mean diff| >= 2 only for
  # {1,2}|{3,4} and {3,4}|{1,2}: p = 2/6
  assert stats.permutation_test([1, 2], [3, 4]) == pytest.approx(2 / 6)
  assert stats.permutation_test([1, 1, 1], [1, 1, 1]) == 1.0
  # sampled version agrees with the exact one
  a, b = [5.0, 6.1, 5.5, 6.3, 5.9], [6.8, 7.2, 6.1, 7.0, 6.9]
  exact = stats.permutation_test(a, b)
  sampled = stats.permutation_test(a, b, max_exact=10, samples=20_000)
  assert abs(exact - sampled) < 0.01 and exact < 0.05


def test_rank_permutation_test_by_hand():
  """Ranks 1..4 split {1,2} against {3,4}: 2 of the 6 splits are as far apart (p = 1/3); ties
  share a mean rank; a diverged value counts as one rank, so any order-keeping change of the
  values leaves p as it is, where the test on the values moves."""
  assert stats.rank_permutation_test([1.0, 2.0], [3.0, 4.0]) == pytest.approx(1 / 3)
  assert stats.rank_permutation_test([5.0, 5.0], [5.0, 5.0]) == 1.0
  # ties: ranks (1.5, 1.5 | 3, 4) give mean ranks 1.5 and 3.5; 2 of 6 splits as far apart
  assert stats.rank_permutation_test([1.0, 1.0], [2.0, 3.0]) == pytest.approx(2 / 6)
  a, b = [200.0, 202.0, 204.0, 206.0, 1105.0], [205.0, 207.0, 209.0, 211.0, 213.0]
  tamed = [200.0, 202.0, 204.0, 206.0, 214.0]  # the outlier brought back to the same rank
  assert stats.rank_permutation_test(a, b) == stats.rank_permutation_test(tamed, b)
  assert stats.permutation_test(a, b) > 0.5 > stats.permutation_test(tamed, b)


def test_cell_distance_counts_differing_decisions():
  prev, act = [-1, 0, 1, 1], [0, 1, 2, 3]
  assert stats.cell_distance(prev, act, prev, act) == 0
  assert stats.cell_distance(prev, act, [-1, 0, 0, 1], [1, 1, 2, 0]) == 3
  assert stats.mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))


def test_random_cells_are_distinct_valid_and_seeded():
  cells = common.random_cells(6, 20, seed=1, exclude={"0 0 0 0 0 0 0 0 0 0 0"})
  assert len(set(cells)) == 20
  assert cells == common.random_cells(6, 20, seed=1, exclude={"0 0 0 0 0 0 0 0 0 0 0"})
  for text in cells:
    arch = common.arch_of(text)
    assert len(arch.act_N) == 6


def test_ranking_figures_by_hand():
  from experiments.planted import ranking
  rows = [{"cell": c, "shared_ppl": s, "standalone_ppl": a}
          for c, s, a in [("a", 10.0, 9.0), ("b", 12.0, 9.5), ("c", 5e9, 9.2), ("d", 11.0, 10.0)]]
  f = ranking.figures(rows, vocab_size=100)
  # shared order a < d < b < c; alone order a < c < b < d: pairs (a,b) c, (a,c) c, (a,d) c,
  # (b,c) d, (b,d) d, (c,d) d -> tau = 0
  assert f["kendall_tau"] == 0.0
  assert f["worse_than_uniform_under_shared"] == 1  # c: 5e9 > 100
  assert f["kendall_tau_sane"] == pytest.approx(1 / 3)  # a, b, d: (a,b) c, (a,d) c, (b,d) d
  assert f["best_alone_cell"] == "a" and f["best_alone_rank_under_shared"] == 1
  assert f["shared_pick_regret_ppl"] == 0.0
  assert "spread_over_noise" not in f and "teacher_rank" not in f
  rows[2]["teacher"] = True  # c: alone 9.2, second of four
  f = ranking.figures(rows, vocab_size=100, noise=[9.2, 9.3, 9.1], optimal=8.0)
  # alone values 9.0, 9.5, 9.2, 10.0: median 9.35, best 9.0; noise sd 0.1
  assert f["noise_sd"] == pytest.approx(0.1)
  assert f["spread_best_to_median"] == pytest.approx(0.35)
  assert f["spread_over_noise"] == pytest.approx(3.5)
  assert (f["teacher_rank"], f["teacher_rank_fraction"]) == (2, 0.5)
  assert f["teacher_rank_under_shared"] == 4  # c is the shared weights' worst
  assert f["teacher_alone_gap"] == pytest.approx(9.2 / 8.0 - 1)


def test_ranking_study_end_to_end_at_tiny_scale_and_a_remedy_reusing_its_yardstick(tmp_path):
  """The real search, scoring and training alone; then a remedy's study (another search, one
  epoch longer than the scale's through `search.epochs`) that reuses the first study's
  trained-alone figures for the same cells; then that search's cells scored after fine-tuning
  (`finetune_steps`), the plain scores kept beside."""
  from experiments.planted import ranking
  first = ranking.run(str(tmp_path / "a"), "planted", "tiny", 3, "random", "", noise_seeds=2)
  assert first["cells"] == 4 and len(first["noise_ppl_seeds"]) == 2  # 3 cells and the teacher's
  assert first["noise_cell"] == first["corpus"]["teacher_arch"]
  teacher_row = [r for r in first["rows"] if r["teacher"]][0]
  assert first["noise_ppl_seeds"][0] == teacher_row["standalone_ppl"]  # seed 0 trained once
  assert "spread_over_noise" in first and 1 <= first["teacher_rank"] <= 4
  second = ranking.run(str(tmp_path / "b"), "planted", "tiny", 3, "enas", "",
                       ("model.activation_weights=node0", "search.epochs=3"), noise_seeds=2,
                       standalone_from=str(tmp_path / "a"), tau_at=(1,))
  assert [p["epoch"] for p in second["tau_curve"]] == [1, 3]
  assert second["tau_curve"][-1]["kendall_tau"] == second["kendall_tau"]
  assert second["tau_curve"][-1]["entropy"] == second["entropy_end"]
  assert second["settings"] == ["model.activation_weights=node0", "search.epochs=3"]
  assert [r["standalone_ppl"] for r in second["rows"]] == [
      r["standalone_ppl"] for r in first["rows"]]
  assert second["noise_ppl_seeds"] == first["noise_ppl_seeds"]
  assert [r["shared_ppl"] for r in second["rows"]] != [r["shared_ppl"] for r in first["rows"]]
  assert "model.activation_weights=node0" in (tmp_path / "b" / "table.md").read_text()
  shutil.copytree(tmp_path / "b" / "search", tmp_path / "c" / "search")  # reloaded, not rerun
  third = ranking.run(str(tmp_path / "c"), "planted", "tiny", 3, "enas", "",
                      ("model.activation_weights=node0", "search.epochs=3"), noise_seeds=2,
                      standalone_from=str(tmp_path / "a"), finetune_steps=3)
  assert third["finetune_steps"] == 3
  assert third["tau_curve"][-1]["kendall_tau_plain"] == second["kendall_tau"]  # same weights
  assert [r["plain_shared_ppl"] for r in third["rows"]] == [
      r["shared_ppl"] for r in second["rows"]]
  assert [r["shared_ppl"] for r in third["rows"]] != [r["shared_ppl"] for r in second["rows"]]
  assert "scored after 3 steps on it alone" in (tmp_path / "c" / "table.md").read_text()


def test_ptb_corpus_for_the_ranking_study(tmp_path):
  from experiments.planted import ranking
  src = tmp_path / "ptb"
  src.mkdir()
  (src / "valid.txt").write_text("a b c\nd e\n")
  (src / "test.txt").write_text("one\ntwo\nthree\nfour\n")
  out = ranking.prepare_ptb(str(src), str(tmp_path / "out" / "ptb_corpus"))
  assert out == str(tmp_path / "out" / "ptb_corpus")
  read = lambda name: open(f"{out}/{name}.txt").read()
  assert read("train") == "a b c\nd e\n"
  assert read("valid") == "one\ntwo\n" and read("test") == "three\nfour\n"
  assert ranking.prepare_ptb(str(src), out) == out  # again, in place: the same files, no leftovers
  assert sorted(os.listdir(out)) == ["test.txt", "train.txt", "valid.txt"]
  assert read("test") == "three\nfour\n"
  with pytest.raises(UserError, match="valid.txt and test.txt"):
    ranking.prepare_ptb(str(tmp_path / "missing"), str(tmp_path / "out2"))


def test_compare_study_end_to_end_at_tiny_scale(tmp_path, monkeypatch):
  """Both methods at one seed through the real searches and stand-alone training; run again
  (as after a stop), it reloads the searches and trains nothing alone again: every figure kept
  in trained_alone.json as it was trained, the results the same to the bit."""
  from experiments.planted import compare
  result = compare.run(str(tmp_path), "tiny", seeds=1)
  assert [(r["method"], r["seed"]) for r in result["runs"]] == [("enas", 0), ("random", 0)]
  for r in result["runs"]:
    assert np.isfinite(r["standalone_ppl"]) and r["standalone_ppl"] > 1
    assert 0 <= r["distance_to_teacher"] <= 11
    assert r["gap_to_optimal"] == pytest.approx(r["standalone_ppl"]
                                                - result["teacher_optimal_ppl"])
  assert len(result["teacher_standalone_ppl_seeds"]) == 3
  assert 0 <= result["p_value_standalone_ppl"] <= 1
  for name in ("results.json", "table.md", "compare.png"):
    assert (tmp_path / name).is_file()
  assert "Permutation test" in (tmp_path / "table.md").read_text()
  kept = json.loads((tmp_path / "trained_alone.json").read_text())["entries"]
  assert len(kept) == len({r["cell"] for r in result["runs"]}) + 3  # + the teacher's, 3 seeds

  def no_training(*args):
    raise AssertionError("trained alone again")

  monkeypatch.setattr(common.StandaloneTrainer, "_train", no_training)
  again = compare.run(str(tmp_path), "tiny", seeds=1)
  drop = lambda r: {k: v for k, v in r.items() if k != "seconds"}
  assert drop(again) == drop(result)


def test_compare_reuses_random_searches_only_after_a_rerun_matches(tmp_path, monkeypatch):
  """`--random_from`: random search's seeds past `verify_random` come from the earlier study,
  the first ones are rerun and must match it to the bit; a setting that moves random search is
  refused. The searches are stood in for (the real ones: the test above)."""
  from experiments.planted import compare
  calls = []

  class Trainer:
    def valid_perplexity(self, arch, seed=None):
      return 30.0 + (seed or 0)

  def search_row(out, scale, seed, kind, settings, standalone, ctx):
    calls.append((kind, seed))
    ctx.setdefault("corpus", type("C", (), {"info": {"teacher_arch": "0 0 0 0 2 1 1 0 3 3 1",
                                                     "teacher_ppl_valid": 25.0}})())
    ctx.setdefault("trainer", Trainer())
    moved = kind == "random" and "shared.lr=1.0" in settings  # a setting random search feels
    cell = "0 0 1 1 0 2 1 3 0 1 2" if kind == "enas" else f"1 0 0 0 {seed % 4} 0 0 0 0 0 0"
    return {"method": kind, "seed": seed, "cell": cell, "shared_ppl": 40.0 + seed + moved,
            "teacher_shared_ppl": 41.0, "standalone_ppl": 28.0 + seed, "entropy_end": 1.0}

  monkeypatch.setattr(compare, "search_row", search_row)
  monkeypatch.setattr(common, "corpus_facts", lambda corpus: {"name": "planted"})
  for name in "abcd":
    (tmp_path / name).mkdir()
  first = compare.run(str(tmp_path / "a"), "tiny", seeds=3)
  assert calls == [(k, s) for s in range(3) for k in compare.METHODS]
  calls.clear()
  second = compare.run(str(tmp_path / "b"), "tiny", seeds=3, settings=("controller.x=1",),
                       random_from=str(tmp_path / "a"), verify_random=2)
  assert calls == [("enas", 0), ("random", 0), ("enas", 1), ("random", 1), ("enas", 2)]
  mine = [r for r in second["runs"] if r["method"] == "random"]
  before = [r for r in first["runs"] if r["method"] == "random"]
  assert [r["shared_ppl"] for r in mine] == [r["shared_ppl"] for r in before]
  assert [r.get("reused_from") for r in mine] == [None, None, str(tmp_path / "a")]
  assert second["verified_random"] == 2
  with pytest.raises(UserError, match="random search seed 0 rerun here gives"):
    compare.run(str(tmp_path / "c"), "tiny", seeds=3, settings=("shared.lr=1.0",),
                random_from=str(tmp_path / "a"))
  with pytest.raises(UserError, match="seeds 0-3"):
    compare.run(str(tmp_path / "d"), "tiny", seeds=4, random_from=str(tmp_path / "a"))


def test_compare_extends_an_earlier_study_by_the_seeds_it_lacks(tmp_path, monkeypatch):
  """`--extend_from`: both methods' rows for the earlier study's seeds are reused after its
  first `verify_extend` seeds rerun to the bit; only the new seeds are searched, the earlier
  answers are not trained alone again, and the noise figures (no teacher here) are reused. A
  different setting, too few seeds, or both reuse flags are refused. Searches stood in for."""
  from experiments.planted import compare
  calls, trained, names = [], [], {}  # names: each cell by the first search that found it
  code_changed = False

  class Trainer:
    def valid_perplexity(self, arch, seed=None):
      trained.append((names[str(arch)], seed))
      return 100.0 + (seed or 0) + int(arch.act_N[0])

  def search_row(out, scale, seed, kind, settings, standalone, ctx):
    calls.append((kind, seed))
    ctx.setdefault("corpus", type("C", (), {"info": {}})())
    ctx.setdefault("trainer", Trainer())
    moved = kind == "enas" and code_changed  # the code since moved ENAS's searches
    cell = (f"{seed % 4} 0 0 1 0 2 1 3 0 1 2" if kind == "enas"
            else f"3 0 0 0 {seed % 3} 0 0 0 0 0 0")
    names.setdefault(str(common.arch_of(cell)), f"{kind} {seed}")
    if cell not in standalone:
      standalone[cell] = ctx["trainer"].valid_perplexity(common.arch_of(cell))
    return {"method": kind, "seed": seed, "cell": cell, "shared_ppl": 150.0 + seed + moved,
            "teacher_shared_ppl": None, "standalone_ppl": standalone[cell], "entropy_end": 2.0}

  monkeypatch.setattr(compare, "search_row", search_row)
  monkeypatch.setattr(common, "corpus_facts", lambda corpus: {"name": "ptb"})
  for name in "abcdefg":
    (tmp_path / name).mkdir()
  first = compare.run(str(tmp_path / "a"), "tiny", seeds=3, settings=("controller.x=1",))
  calls.clear(), trained.clear()
  second = compare.run(str(tmp_path / "b"), "tiny", seeds=5, settings=("controller.x=1",),
                       extend_from=str(tmp_path / "a"))
  assert calls == [("enas", 0), ("random", 0), ("enas", 3), ("random", 3), ("enas", 4),
                   ("random", 4)]
  # seed 0's two answers trained again (the proof), seed 3's ENAS answer is new, seed 4's ENAS
  # answer is seed 0's cell and random's seed 3 and 4 answers are earlier ones: not trained again
  assert trained == [("enas 0", None), ("random 0", None), ("enas 3", None)]
  assert second["runs"][:6] == [dict(r, reused_from=str(tmp_path / "a")) if r["seed"] >= 1
                                else r for r in first["runs"]]
  assert [(r["method"], r["seed"]) for r in second["runs"]] == [
      (k, s) for s in range(5) for k in compare.METHODS]
  assert second["noise_ppl_seeds"] == first["noise_ppl_seeds"] == [100.0, 101.0, 102.0]
  assert second["extended_from"] == str(tmp_path / "a") and second["verified_extend"] == 1
  calls.clear()
  third = compare.run(str(tmp_path / "c"), "tiny", seeds=6, settings=("controller.x=1",),
                      extend_from=str(tmp_path / "b"), verify_extend=2)
  assert calls == [("enas", 0), ("random", 0), ("enas", 1), ("random", 1), ("enas", 5),
                   ("random", 5)]
  # each reused row names the study that searched it: seed 2 study a, seed 4 study b
  assert [third["runs"][i]["reused_from"] for i in (4, 8)] == [str(tmp_path / n) for n in "ab"]
  with pytest.raises(UserError, match="same scale, corpus and settings"):
    compare.run(str(tmp_path / "e"), "tiny", seeds=5, extend_from=str(tmp_path / "a"))
  with pytest.raises(UserError, match="already has seeds 0-2"):
    compare.run(str(tmp_path / "f"), "tiny", seeds=3, settings=("controller.x=1",),
                extend_from=str(tmp_path / "a"))
  with pytest.raises(UserError, match="both given"):
    compare.run(str(tmp_path / "g"), "tiny", seeds=5, settings=("controller.x=1",),
                extend_from=str(tmp_path / "a"), random_from=str(tmp_path / "a"))
  code_changed = True
  with pytest.raises(UserError, match="enas search seed 0 rerun here gives"):
    compare.run(str(tmp_path / "d"), "tiny", seeds=5, settings=("controller.x=1",),
                extend_from=str(tmp_path / "a"))


def test_compare_on_ptb_reads_the_directory_corpus_and_reports_without_a_teacher(tmp_path,
                                                                               monkeypatch):
  """`--corpus=ptb`: every search reads the corpus folder built from --ptb_dir (the ranking
  study's split), the rows get no distance or gap to a teacher, the noise is the first ENAS
  answer trained from seeds 0, 1, 2, and the table and plot are written without teacher
  columns. The searches are stood in for (their code is the planted studies')."""
  from experiments.planted import compare
  ptb = tmp_path / "ptb"
  ptb.mkdir()
  (ptb / "valid.txt").write_text(" a b c\n b c d\n")
  (ptb / "test.txt").write_text(" a b\n c d\n d a\n b b\n")
  seen_dirs = []

  class Trainer:
    def valid_perplexity(self, arch, seed=None):
      return 100.0 + (seed or 0) + int(arch.act_N[0])

  def search_row(out, scale, seed, kind, settings, standalone, ctx):
    seen_dirs.append(ctx["data_dir"])
    ctx.setdefault("corpus", type("C", (), {"info": {}})())
    ctx.setdefault("trainer", Trainer())
    cell = f"{seed % 2} 0 0 1 0 2 1 3 0 1 2" if kind == "enas" else "3 0 0 0 0 0 0 0 0 0 0"
    standalone.setdefault(cell, ctx["trainer"].valid_perplexity(common.arch_of(cell)))
    return {"method": kind, "seed": seed, "cell": cell, "shared_ppl": 150.0 + seed,
            "teacher_shared_ppl": None, "standalone_ppl": standalone[cell], "entropy_end": 2.0}

  monkeypatch.setattr(compare, "search_row", search_row)
  monkeypatch.setattr(common, "corpus_facts", lambda corpus: {"name": "ptb"})
  out = tmp_path / "out"
  out.mkdir()
  result = compare.run(str(out), "tiny", seeds=4, corpus_name="ptb", ptb_dir=str(ptb))
  assert seen_dirs == [str(out / "ptb_corpus")] * 8
  assert (out / "ptb_corpus" / "train.txt").read_text() == " a b c\n b c d\n"
  assert (out / "ptb_corpus" / "valid.txt").read_text() == " a b\n c d\n"
  assert "teacher_cell" not in result and "p_value_distance" not in result
  assert all("distance_to_teacher" not in r for r in result["runs"])
  assert result["noise_cell"] == "0 0 0 1 0 2 1 3 0 1 2"
  assert result["noise_ppl_seeds"] == [100.0, 101.0, 102.0]
  assert result["methods"]["enas"]["standalone_ppl"]["mean"] == pytest.approx(100.5)
  assert result["methods"]["random"]["standalone_ppl"]["mean"] == pytest.approx(103.0)
  assert "recovered" not in result["methods"]["enas"]
  assert result["p_value_standalone_ppl"] < 0.05  # 4 against 4, every ENAS answer better
  low, high = result["difference_interval"]
  assert low < -2.5 < high < 0
  table = (out / "table.md").read_text()
  assert "| method | trained alone ppl | median | final entropy |" in table
  assert result["methods"]["enas"]["standalone_ppl"]["median"] == pytest.approx(100.5)
  assert result["p_value_standalone_ranks"] == pytest.approx(
      stats.rank_permutation_test([100.0, 101.0] * 2, [103.0] * 4))
  assert f"by ranks p = {result['p_value_standalone_ranks']:.3f}" in table
  assert "distance" not in table and (out / "compare.png").is_file()


def test_remedies_table_pairs_each_remedy_with_the_defaults_seed_for_seed(tmp_path):
  from experiments.planted import remedies

  def study(folder, enas_alone, random_alone, dist=3):
    runs = [{"method": m, "seed": s, "standalone_ppl": v, "distance_to_teacher": dist + s,
             "entropy_end": 5.0} for m, values in (("enas", enas_alone), ("random", random_alone))
            for s, v in enumerate(values)]
    (tmp_path / folder).mkdir()
    common.write_json(str(tmp_path / folder / "results.json"), {"runs": runs, "settings": []})
    return str(tmp_path / folder)

  base = common.read_results(study("base", [27.0, 27.1, 27.2, 27.3, 27.4], [28.0] * 5), "x")
  folder = study("remedy", [26.9, 27.0, 27.1, 27.2], [28.0, 28.0, 28.0, 28.0], dist=0)
  tau_dirs = []
  for seed, tau in ((0, 0.6), (1, 0.7)):
    tau_dirs.append(str(tmp_path / f"tau{seed}"))
    os.makedirs(tau_dirs[-1])
    common.write_json(f"{tau_dirs[-1]}/results.json",
                      {"settings": ["controller.x=1", f"seed={seed}"], "kendall_tau": tau})
  row = remedies.remedy_row("x", folder, tau_dirs, base, {0: 0.5, 1: 0.5, 2: 0.1})
  assert row["seeds"] == 4 and row["enas"][0] == pytest.approx(27.05)
  assert row["vs_defaults_difference"] == pytest.approx(-0.1)  # seeds 0-3 of the baseline
  assert row["vs_defaults_p"] == 2 / 16  # all four differences equal: 2 of the 16 sign flips
  assert row["enas_vs_random_p"] == pytest.approx(2 / 70)  # the split and its mirror of C(8, 4)
  assert row["within_2"] == 3  # distances 0, 1, 2, 3
  assert row["tau"][0] == pytest.approx(0.65) and row["tau_vs_defaults"] == pytest.approx(0.15)
  assert "| x | 4 |" in remedies.table([row], base)
  assert remedies.remedy_row("x", folder, [], base, {}, seeds=2)["enas"][0] == pytest.approx(26.95)
  short = common.read_results(study("short", [27.0] * 2, [28.0] * 2), "x")
  with pytest.raises(UserError, match=r"seed\(s\) \[2, 3\]"):
    remedies.remedy_row("x", folder, [], short, {})


def test_summary_takes_each_key_from_its_study_and_leaves_missing_ones_null():
  from experiments.planted import summary
  ranking = {"kendall_tau": 0.4, "kendall_tau_p": 0.01, "cells": 31, "spread_over_noise": 12.0,
             "teacher_rank_fraction": 1 / 31, "teacher_alone_gap": 0.07, "settings": []}
  runs = [{"method": "enas", "distance_to_teacher": d, "standalone_ppl": v}
          for d, v in zip((0, 2, 3, 0), (0.0, 1.0, 0.0, 1.0))] + [
      {"method": "random", "distance_to_teacher": 5, "standalone_ppl": v}
      for v in (10.0, 11.0, 12.0)]
  compare = {"p_value_standalone_ppl": 0.03, "seeds": 4, "runs": runs,
             "methods": {"enas": {"recovered": 2, "runs": 4, "standalone_ppl": {"mean": 8.0}},
                         "random": {"standalone_ppl": {"mean": 8.2}}}}
  out = summary.summarize(ranking, None, compare)
  assert set(summary.KEYS) <= set(out)
  assert (out["planted_tau"], out["spread_over_noise"], out["teacher_rank_fraction"]) == (
      0.4, 12.0, 1 / 31)
  assert (out["enas_vs_random_p"], out["enas_vs_random_seeds"]) == (0.03, 4)
  # ENAS 0 1 0 1 against random 10 11 12: the 35 splits of 4 + 3 can reject a shift at 95%
  # (the least p 1/35), so the interval is bounded and holds the difference, -10.5
  low, high = out["enas_vs_random_interval"]
  assert low < -10.5 < high
  assert [low, high] == list(stats.shift_interval([0, 1, 0, 1], [10, 11, 12]))
  assert out["teacher_recovered_fraction"] == 0.5 and out["teacher_within_2_fraction"] == 0.75
  assert out["ptb_tau"] is None and out["missing"] == ["ranking_ptb"]
  assert "yardstick_seed_tau" not in out
  yardstick = {"agreement": [{"a": 0, "b": 1, "tau": 0.9}], "per_cell_sd_median": 0.02,
               "searches": [{}], "tau_mean_mean_sd": [0.47, 0.05]}
  out = summary.summarize(ranking, None, compare, yardstick=yardstick)
  assert (out["yardstick_seed_tau"], out["yardstick_cell_sd_median"],
          out["planted_tau_against_seed_mean"]) == ([0.9], 0.02, 0.47)
  assert out["planted_tau"] == 0.4  # the recorded yardstick's figure stays the headline


def test_summary_adds_ptbs_enas_against_random_and_merges_into_an_earlier_summary():
  """`--compare_ptb` puts a PTB compare study's figures under `ptb_` keys (a planted one is
  refused); `--merge` keeps an earlier summary's figures and replaces only the new ones."""
  from experiments.planted import summary
  runs = [{"method": "enas", "seed": 20 + i, "standalone_ppl": v}
          for i, v in enumerate((1.0, 2.0, 1.0))] + [
      {"method": "random", "seed": 20 + i, "standalone_ppl": v}
      for i, v in enumerate((5.0, 6.0, 7.0))]
  compare_ptb = {"corpus_name": "ptb", "p_value_standalone_ppl": 0.1, "seeds": 3, "runs": runs,
                 "methods": {"enas": {"standalone_ppl": {"mean": 4 / 3}},
                             "random": {"standalone_ppl": {"mean": 6.0}}}}
  now = summary.summarize(None, None, None, compare_ptb=compare_ptb)
  assert (now["ptb_enas_vs_random_p"], now["ptb_enas_vs_random_seeds"]) == (0.1, 3)
  assert now["ptb_enas_vs_random_seed_list"] == [20, 21, 22]  # (held_out's seeds of a study)
  assert (now["ptb_enas_standalone_ppl"], now["ptb_random_standalone_ppl"]) == (4 / 3, 6.0)
  assert now["ptb_enas_vs_random_interval"] is None  # 3 against 3: p never below 0.1
  # by ranks every ENAS answer is below every random one: 2 of the 20 splits as far apart
  assert now["ptb_enas_vs_random_p_ranks"] == pytest.approx(0.1)
  assert (now["ptb_enas_standalone_ppl_median"], now["ptb_random_standalone_ppl_median"]) == (
      1.0, 6.0)
  assert now["planted_tau"] is None and "compare" in now["missing"]
  earlier = {"planted_tau": 0.5, "enas_vs_random_p": 0.001, "ptb_tau": 0.56, "missing": []}
  out = summary.merged(earlier, now)
  assert (out["planted_tau"], out["enas_vs_random_p"], out["ptb_tau"]) == (0.5, 0.001, 0.56)
  assert out["ptb_enas_vs_random_p"] == 0.1 and out["missing"] == []
  with pytest.raises(UserError, match="--corpus=ptb"):
    summary.summarize(None, None, None, compare_ptb=dict(compare_ptb, corpus_name="planted"))


def test_study_settings_override_config_fields_and_reject_unknown_or_mistyped_ones():
  from enas_jax.io.errors import UserError
  config = common.search_config(common.SCALES["tiny"], 0, "enas")
  common.override(config, ["model.activation_weights=all", "data.reward_windows=4",
                           "controller.entropy_weight=1", "seed=3"])
  assert config.model.activation_weights == "all" and config.data.reward_windows == 4
  assert config.controller.entropy_weight == 1.0 and isinstance(config.controller.entropy_weight,
                                                                 float)
  assert config.seed == 3
  with pytest.raises(UserError, match="no field 'model.nope'"):
    common.override(config, ["model.nope=1"])
  with pytest.raises(UserError, match="takes int values, not 'many'"):
    common.override(config, ["data.reward_windows=many"])
  with pytest.raises(UserError, match="section.field=value"):
    common.override(config, ["data.reward_windows"])


def test_tau_over_seeds_by_hand(tmp_path):
  """`tau_seeds`: each group's taus, mean and sample sd, and the exact permutation p of two
  groups (taus 0.1, 0.2 against 0.3, 0.4: of the 6 splits of four values into two pairs, 2 differ
  in mean by at least the observed 0.2, p = 1/3); a folder without results is a user error."""
  import json
  from enas_jax.io.errors import UserError
  from experiments.planted import tau_seeds
  dirs = []
  for i, tau in enumerate([0.1, 0.2, 0.3, 0.4]):
    d = tmp_path / f"s{i}"
    d.mkdir()
    (d / "results.json").write_text(json.dumps({
        "settings": [f"seed={i}"], "kendall_tau": tau, "kendall_tau_p": 0.5,
        "worse_than_uniform_under_shared": i, "entropy_end": 5.0, "shared_pick_regret_ppl": 0.1}))
    dirs.append(str(d))
  groups = dict(tau_seeds.read_group(words) for words in (["a", *dirs[:2]], ["b", *dirs[2:]]))
  result = tau_seeds.summarize(groups)
  assert result["groups"]["a"]["tau_mean"] == pytest.approx(0.15)
  assert result["groups"]["a"]["tau_sd"] == pytest.approx(math.sqrt(0.005))
  assert result["tests"] == [{"a": "a", "b": "b", "p": pytest.approx(1 / 3)}]
  assert "| b | 2 | 0.30, 0.40 | 0.35 +- 0.07 | 2, 3 |" in tau_seeds.markdown(result)
  assert "tau_plain_mean" not in result["groups"]["a"]
  for i, (tau, plain) in enumerate([(0.7, 0.5), (0.6, 0.5)]):  # scored after fine-tuning
    d = tmp_path / f"f{i}"
    d.mkdir()
    (d / "results.json").write_text(json.dumps({
        "settings": [], "kendall_tau": tau, "kendall_tau_p": 0.5, "finetune_steps": 80,
        "worse_than_uniform_under_shared": 0, "entropy_end": 5.0, "shared_pick_regret_ppl": 0.1,
        "tau_curve": [{"epoch": 8, "kendall_tau": tau, "kendall_tau_plain": plain}]}))
  tuned = tau_seeds.summarize(dict([tau_seeds.read_group(["f", str(tmp_path / "f0"),
                                                          str(tmp_path / "f1")])]))["groups"]["f"]
  # differences 0.2, 0.1: of the 4 sign flips, (+,+) and (-,-) reach |mean| 0.15: p = 1/2
  assert tuned["tau_plain_mean"] == pytest.approx(0.5) and tuned["tau_plain_sd"] == 0
  assert tuned["paired_p_vs_plain"] == pytest.approx(0.5)
  with pytest.raises(UserError, match="no results.json"):
    tau_seeds.read_group(["c", str(tmp_path)])
  with pytest.raises(UserError, match="NAME DIR"):
    tau_seeds.read_group(["c"])


def test_benchmark_probe_at_tiny_scale_and_its_scale_changes(tmp_path):
  """A design probe: the teacher's cell from two initialisations and the ranking study's first
  two random cells, trained alone at a changed width; the figures from its own rows."""
  from enas_jax.io.errors import UserError
  from experiments.planted import probe
  scale = probe.scaled("tiny", ["width=8", "teacher_weight_scale=1.2"])
  assert (scale.width, scale.teacher_weight_scale) == (8, 1.2)
  r = probe.run(str(tmp_path), scale, ["data.planted.logit_scale=2.0"], cells=2, noise_seeds=2)
  assert r["scale"]["width"] == 8 and r["corpus"]["teacher_arch"] == scale.teacher_arch
  assert [row["cell"] for row in r["rows"][1:]] == common.random_cells(
      6, 2, seed=1, exclude={scale.teacher_arch})
  alone = [row["standalone_ppl"] for row in r["rows"]]
  assert alone[0] == r["noise_ppl_seeds"][0] and len(r["noise_ppl_seeds"]) == 2
  assert r["teacher_rank"] == 1 + sum(a < alone[0] for a in alone)
  assert r["teacher_alone_gap"] == pytest.approx(alone[0] / r["corpus"]["teacher_ppl_valid"] - 1)
  assert (tmp_path / "probe.json").is_file()
  # Named cells instead of the random ones (`--cell`): the same cell, the same figure.
  (tmp_path / "named").mkdir()
  named = probe.run(str(tmp_path / "named"), scale, ["data.planted.logit_scale=2.0"], cells=5,
                    noise_seeds=1, chosen=(r["rows"][2]["cell"],))
  assert [row["cell"] for row in named["rows"]] == [scale.teacher_arch, r["rows"][2]["cell"]]
  assert [row["standalone_ppl"] for row in named["rows"]] == alone[::2]
  with pytest.raises(UserError, match=r"--cell '0 0 1' has 2 nodes but the search space has 6 "
                     r"\(field `model.num_nodes`\)"):
    probe.run(str(tmp_path), scale, [], cells=1, noise_seeds=1, chosen=("0 0 1",))
  with pytest.raises(UserError, match="--cell"):
    probe.run(str(tmp_path), scale, [], cells=1, noise_seeds=1, chosen=("0 0 9 1 0 2 0 1 0 0 1",))
  with pytest.raises(UserError, match="FIELD one of"):
    probe.scaled("tiny", ["depth=3"])
  with pytest.raises(UserError, match="width=wide takes int values"):
    probe.scaled("tiny", ["width=wide"])


def test_summary_takes_planted_tau_as_the_mean_of_a_tau_seeds_group(tmp_path):
  from enas_jax.io.errors import UserError
  from experiments.planted import summary
  path = tmp_path / "tau.json"
  path.write_text(json.dumps({"groups": {"defaults": {
      "searches": 2, "tau_mean": 0.5, "tau_sd": 0.1, "rows": [{"tau": 0.45}, {"tau": 0.55}]}}}))
  group = summary._tau_group(str(path), "defaults")
  out = summary.summarize({"kendall_tau": 0.45, "kendall_tau_p": 0.01, "cells": 31}, None, None,
                          group)
  assert (out["planted_tau"], out["planted_tau_sd"], out["planted_tau_searches"]) == (0.5, 0.1, 2)
  assert out["planted_tau_one_search"] == 0.45 and out["planted_tau_each"] == [0.45, 0.55]
  assert out["ptb_tau"] is None and "ptb_tau_sd" not in out
  out = summary.summarize(None, {"kendall_tau": 0.4, "kendall_tau_p": 0.02, "cells": 30}, None,
                          None, group)
  assert (out["ptb_tau"], out["ptb_tau_sd"], out["ptb_tau_one_search"]) == (0.5, 0.1, 0.4)
  assert out["planted_tau"] is None and out["ptb_tau_each"] == [0.45, 0.55]
  tuned = {"searches": 2, "tau_mean": 0.7, "tau_sd": 0.05, "tau_plain_mean": 0.5,
           "paired_p_vs_plain": 0.5, "rows": [{"tau": 0.65, "finetune_steps": 80},
                                              {"tau": 0.75, "finetune_steps": 80}]}
  out = summary.summarize(None, None, None, group, None, finetuned=(tuned, None))
  assert out["planted_tau"] == 0.5 and out["planted_tau_finetuned"] == 0.7  # beside, not instead
  assert (out["planted_tau_finetuned_sd"], out["planted_tau_finetuned_searches"],
          out["planted_tau_finetuned_steps"], out["planted_tau_finetuned_plain"],
          out["planted_tau_finetuned_paired_p"]) == (0.05, 2, [80], 0.5, 0.5)
  assert "ptb_tau_finetuned" not in out
  out = summary.summarize(None, None, None, compare_finetuned={
      "p_value_standalone_ppl": 0.38, "seeds": 10, "settings": ["search.finetune_steps=80"],
      "methods": {"enas": {"standalone_ppl": {"mean": 27.36}},
                  "random": {"standalone_ppl": {"mean": 27.37}}}})
  assert (out["enas_vs_random_p_finetuned"], out["enas_vs_random_seeds_finetuned"],
          out["enas_standalone_ppl_finetuned"], out["random_standalone_ppl_finetuned"]) == (
              0.38, 10, 27.36, 27.37)
  assert out["enas_vs_random_p"] is None  # the default's figure is not taken from it
  with pytest.raises(UserError, match="--ptb_tau_group='x': .* has the groups"):
    summary._tau_group(str(path), "x", "ptb_tau")
  with pytest.raises(UserError, match="has the groups 'defaults'"):
    summary._tau_group(str(path), "other")
  with pytest.raises(UserError, match="not a tau_seeds study's JSON"):
    summary._tau_group(str(tmp_path / "missing.json"), "defaults")
  with pytest.raises(UserError, match="--yardstick=.*: not a yardstick study's JSON"):
    summary._yardstick(str(path))  # a tau_seeds study, not a yardstick one


def test_summary_takes_the_report_alone_setting_and_the_brief_random_budgets():
  from enas_jax.io.errors import UserError
  from experiments.planted import summary
  short = {"yardstick": "y", "settings": [
      {"steps": 100, "schedule": "linear", "tau_mean": 0.7, "tau_sd": 0.1, "seeds": [{}] * 5},
      {"steps": 200, "schedule": "constant", "tau_mean": 0.6, "tau_sd": 0.1, "seeds": [{}] * 8},
      {"steps": 200, "schedule": "linear", "tau_mean": 0.77, "tau_sd": 0.04, "seeds": [{}] * 8}],
      "tests": [{"a": "200 steps, linear", "b": "200 steps, constant", "paired_p": 0.008},
                {"a": "100 steps, linear", "b": "400 steps, linear", "paired_p": 0.3}]}
  out = summary.summarize(None, None, None, short_alone=(short, None))
  assert (out["planted_report_alone_tau"], out["planted_report_alone_tau_sd"],
          out["planted_report_alone_seeds"], out["planted_report_alone_setting"]) == (
              0.77, 0.04, 8, [200, "linear"])  # the report's defaults' setting, no other
  assert [t["paired_p"] for t in out["planted_report_alone_tests"]] == [0.008]
  assert "ptb_report_alone_tau" not in out
  with pytest.raises(UserError, match="no setting with the report's defaults"):
    summary.summarize(None, None, None, short_alone=(None, {"settings": short["settings"][:2]}))
  def budget(ppl, p_enas, seconds):
    return {"standalone_ppl": {"mean": ppl, "std": 0.03},
            "runs": [{"search_seconds": seconds}, {"search_seconds": seconds + 2}],
            "against": {"enas": {"p": p_enas}, "random": {"p": 0.01}}}
  brief = {"seeds": 2, "budgets": {"8": budget(27.4, 0.01, 10), "16": budget(27.37, 0.04, 20)}}
  out = summary.summarize(None, None, None, brief_random=brief)
  assert (out["enas_vs_brief_random_p"], out["enas_vs_brief_random_cells"],
          out["enas_vs_brief_random_seeds"], out["brief_random_standalone_ppl"]) == (
              0.04, 16, 2, 27.37)
  assert out["brief_random_budgets"]["8"] == {
      "standalone_ppl": 27.4, "standalone_ppl_sd": 0.03, "seconds_mean": 11.0,
      "enas_vs_it_p": 0.01, "it_vs_random_p": 0.01}
  assert summary.summarize(None, None, None, brief_random=brief,
                           brief_budget=8)["enas_vs_brief_random_p"] == 0.01
  with pytest.raises(UserError, match="--brief_random_budget=32: .* has the budgets 8, 16"):
    summary.summarize(None, None, None, brief_random=brief, brief_budget=32)
  versus = {"figure": "valid_ppl", "p": 0.71, "ours": {"a": 1, "b": 2}, "baseline": {"c": 3},
            "ours_mean": 27.35, "baseline_mean": 27.34}
  out = summary.summarize(None, None, None, final_recipe=versus)
  assert (out["enas_vs_random_p_final_recipe"], out["enas_vs_random_seeds_final_recipe"],
          out["enas_final_recipe_mean"], out["random_final_recipe_mean"]) == (0.71, 2, 27.35,
                                                                               27.34)
  assert out["enas_vs_random_interval_final_recipe"] is None  # 2 against 1: unbounded
  agreement = {"top": 16, "teacher_rank_mean": 6,
               "final_vs_final": [{"tau_all": 0.8, "tau_top": 0.7}, {"tau_all": 0.79,
                                                                      "tau_top": 0.63}],
               "final_vs_yardstick": [{"b": "final seed 0", "tau_all": 0.47, "tau_top": -0.13},
                                      {"b": "final mean", "tau_all": 0.46, "tau_top": -0.12}],
               "rescored": {"tau_final_all": [0.34, 0.05], "tau_final_top": [0.1, 0.09],
                            "searches": [{}] * 20}}
  out = summary.summarize(None, None, None, final_agreement=agreement)
  assert (out["final_recipe_seed_tau"], out["final_recipe_seed_tau_top"]) == ([0.8, 0.79],
                                                                              [0.7, 0.63])
  assert (out["yardstick_vs_final_recipe_tau_top"], out["teacher_rank_final_recipe"],
          out["planted_tau_against_final_recipe"],
          out["planted_tau_against_final_recipe_searches"]) == (-0.12, 6, 0.34, 20)
  with pytest.raises(UserError, match="not a final_recipe study"):
    summary.summarize(None, None, None, final_agreement={"top": 16})
  ptb = summary.summarize(None, None, None, ptb_final_agreement={**agreement,
                                                                 "teacher_rank_mean": None})
  assert (ptb["ptb_final_recipe_seed_tau_top"], ptb["ptb_yardstick_vs_final_recipe_tau"],
          ptb["ptb_tau_against_final_recipe"], ptb["ptb_tau_against_final_recipe_top"]) == (
              [0.7, 0.63], 0.46, 0.34, 0.1)
  assert "final_recipe_seed_tau" not in ptb and "teacher_rank_final_recipe" not in ptb
  with pytest.raises(UserError, match="--ptb_final_recipe_agreement: not a final_recipe"):
    summary.summarize(None, None, None, ptb_final_agreement={"top": 16})
  assert out["enas_vs_random_p"] is None  # the headline stays the studies' recipe's
  with pytest.raises(UserError, match="not a comparison"):
    summary.summarize(None, None, None, final_recipe={"p": 0.5})


def test_yardstick_seeds_agreement_and_rescoring_by_hand(tmp_path):
  """Four cells, the yardstick (seed 0) 1 2 3 4 and a second seed 1 3 2 4: tau between seeds
  (6 pairs, one swapped) 4/6; the seeds' mean 1 2.5 2.5 4 ties B and C, so a search whose
  shared figures are 1 2 3 4 has tau-b 1 against seed 0 and 5 / sqrt(6 * 5) against the mean;
  per-cell sd 0, 0.707, 0.707, 0; the teacher's cell (D) last on both."""
  from experiments.planted import yardstick
  cells = ["0 0 0", "0 0 1", "0 0 2", "0 0 3"]
  ys = {"rows": [{"cell": c, "teacher": c == cells[3], "standalone_ppl": v}
                 for c, v in zip(cells, [1.0, 2.0, 3.0, 4.0])],
        "corpus": {"teacher_ppl_valid": 3.2}, "noise_ppl_seeds": [4.0, 4.1]}
  probe = {"rows": [{"cell": c, "standalone_ppl": v} for c, v in zip(cells, [1.0, 3.0, 2.0, 4.0])]}
  search = {"rows": [{"cell": c, "shared_ppl": s, "standalone_ppl": v}
                     for c, s, v in zip(cells, [10.0, 20.0, 30.0, 40.0], [1.0, 2.0, 3.0, 4.0])]}
  result = yardstick.summarize(ys, [probe], [("s0", search)])
  assert result["agreement"][0]["tau"] == pytest.approx(4 / 6)
  assert result["per_cell_sd_median"] == pytest.approx(np.sqrt(0.5) / 2)
  assert result["per_cell_sd_max"] == pytest.approx(np.sqrt(0.5))
  assert result["searches"][0]["tau_single"] == pytest.approx(1.0)
  assert result["searches"][0]["tau_mean"] == pytest.approx(5 / np.sqrt(30))
  assert result["mean_yardstick"]["teacher_rank"] == 4
  assert result["mean_yardstick"]["teacher_alone_gap"] == pytest.approx(4.0 / 3.2 - 1)
  assert result["paired_p"] == 1.0  # one search: both signs give the same |mean|
  assert "0.667" in yardstick.markdown(result)
  # the paired test by hand: d = 1, 2, 3 has |mean| 2 only with all signs equal: 2 of 8
  assert stats.paired_sign_test([1.0, 2.0, 3.0]) == pytest.approx(0.25)
  with pytest.raises(UserError, match="lacks 1 of the yardstick's cells"):
    yardstick.summarize(ys, [{"rows": probe["rows"][:3]}], [])
  with pytest.raises(UserError, match="no results.json or probe.json"):
    yardstick.read_json(str(tmp_path), "--seed_probe")


def test_short_training_alone_study_trains_as_the_report_and_reuses_its_rows(tmp_path,
                                                                             monkeypatch):
  """`short_alone`: every cell of a yardstick trained alone as the report trains it (the same
  fresh state, keys and steps for `report.seed`), its tau against the yardstick's figures, the
  yardstick rank of the cell it puts first, a paired test between settings; rows already in
  OUT.json are reused, not retrained."""
  from enas_jax.report import scoring
  from experiments.planted import short_alone
  cells = common.random_cells(6, 4, seed=1, exclude=set())
  yard = [27.0, 27.5, 26.5, 28.0]
  folder = tmp_path / "yardstick"
  folder.mkdir()
  common.write_json(str(folder / "results.json"), {
      "scale": "tiny", "corpus": {"name": "planted"},
      "rows": [{"cell": c, "standalone_ppl": y} for c, y in zip(cells, yard)]})
  result = short_alone.run(str(folder), [2], ["linear", "constant"], [0, 1])
  linear, constant = result["settings"]
  run = scoring.search_run(common.search_config(common.scale_of("tiny"), 0, "random").to_dict(),
                           "")
  fresh, key = scoring.alone_start(run, 1)
  step = jax.jit(run.task.train_step)
  by_report = [scoring.trained_alone(run, step, fresh, common.arch_of(c), 2, "linear", key)
               for c in cells]
  row = linear["seeds"][1]
  assert row["seed"] == 1 and row["ppl"] == by_report
  assert row["tau"] == report_stats.kendall_tau(by_report, yard)
  assert row["first_cell_yardstick_rank"] == [2, 3, 1, 4][int(np.argmin(by_report))]
  assert constant["seeds"][1]["ppl"] != by_report  # the schedule is not ignored
  test = result["tests"][0]
  assert test["mean_difference"] == pytest.approx(
      np.mean([a["tau"] - b["tau"] for a, b in zip(linear["seeds"], constant["seeds"])]))
  monkeypatch.setattr(scoring, "cells_trained_alone",
                      lambda *a: pytest.fail("retrained a known row"))
  assert short_alone.run(str(folder), [2], ["linear", "constant"], [0, 1], earlier=result) == result
  other = tmp_path / "other"  # another yardstick of the same cells: the rows scored again
  other.mkdir()
  yard2 = [28.0, 26.0, 27.0, 26.5]
  common.write_json(str(other / "results.json"), {
      "scale": "tiny", "corpus": {"name": "planted"},
      "rows": [{"cell": c, "standalone_ppl": y} for c, y in zip(cells, yard2)]})
  again = short_alone.run(str(other), [2], ["linear"], [1], earlier=result)["settings"][0]["seeds"]
  assert again[0]["ppl"] == by_report and again[0]["seconds"] == row["seconds"]
  assert again[0]["tau"] == report_stats.kendall_tau(by_report, yard2) != row["tau"]
  with pytest.raises(UserError, match="other cells"):
    short_alone.run(str(folder), [2], ["linear"], [0], earlier={**result, "cells": cells[::-1]})
  with pytest.raises(UserError, match="ran on the planted corpus, not ptb"):
    short_alone.run(str(folder), [2], ["linear"], [0], corpus="ptb")


def test_random_search_without_sharing_picks_the_best_briefly_trained_cell(tmp_path):
  """`brief_random`: per seed, uniform cells each trained alone briefly as the report trains
  them (annealed), the best of a budget's first cells the answer, trained alone with the study's
  recipe; the compare study's answers trained alone again by the same trainer; figures reused
  from an earlier study only while a retrained one matches them to the bit."""
  from enas_jax.io.errors import UserError
  from enas_jax.report import scoring
  from experiments.planted import brief_random
  scale = common.scale_of("tiny")
  compare_cells = common.random_cells(6, 2, seed=5, exclude=set())
  folder = tmp_path / "compare"
  folder.mkdir()
  common.write_json(str(folder / "results.json"), {"scale": "tiny", "runs": [
      {"method": m, "cell": c, "standalone_ppl": 30.0} for m, c in zip(("enas", "random"),
                                                                      compare_cells)]})
  result = brief_random.run(str(tmp_path / "out"), str(folder), seeds=2, budgets=[3, 2],
                            steps=2)
  run = scoring.search_run(common.search_config(scale, 0, "random").to_dict(), "")
  fresh, key = scoring.alone_start(run, 1)
  step = jax.jit(run.task.train_step)
  drawn = common.random_cells(6, 3, seed=brief_random.CELL_SEED + 1, exclude=set())
  brief = [scoring.trained_alone(run, step, fresh, common.arch_of(c), 2, "linear", key)
           for c in drawn]
  assert result["draws"][1]["brief_ppl"] == brief
  for budget in (2, 3):
    row = result["budgets"][str(budget)]["runs"][1]
    assert row["cell"] == drawn[int(np.argmin(brief[:budget]))]
    assert row["brief_ppl"] == min(brief[:budget])
  trainer = common.StandaloneTrainer(common.search_config(scale, 0, "enas"), run.task.corpus,
                                     scale)
  assert row["standalone_ppl"] == trainer.valid_perplexity(common.arch_of(row["cell"]))
  against = result["budgets"]["3"]["against"]["enas"]
  assert against["mean"] == trainer.valid_perplexity(common.arch_of(compare_cells[0]))
  assert against["recorded_mean"] == 30.0
  assert (tmp_path / "out" / "table.md").is_file()
  # A second study reusing the first's figures computes nothing new and gets the same answers.
  again = brief_random.run(str(tmp_path / "again"), str(folder), seeds=2, budgets=[3], steps=2,
                           standalone_from=(str(tmp_path / "out"),), verify_reused=1)
  def untimed(entry):
    return [{k: v for k, v in r.items() if k != "search_seconds"} for r in entry["runs"]]
  assert untimed(again["budgets"]["3"]) == untimed(result["budgets"]["3"])
  assert again["budgets"]["3"]["against"] == result["budgets"]["3"]["against"]
  with pytest.raises(UserError, match="has changed"):  # the compare study's 30.0 is no figure
    brief_random.run(str(tmp_path / "bad"), str(folder), seeds=1, budgets=[1], steps=2,
                     standalone_from=(str(folder),), verify_reused=2)


def test_final_recipe_self_agreement_by_hand(tmp_path):
  """Four cells; the yardstick 1 2 3 4 (top 3: A B C), final seed 0 2 1 3 4, seed 1 2 1 4 3:
  seed 0 against seed 1 swaps one of 6 pairs (tau 4/6) and none among the top 3 (tau 1);
  seed 0 against the yardstick swaps A-B (4/6; top 3: 1/3). The mean 2 1 3.5 3.5 ties C and D.
  Per-cell sd 0, 0, 0.707, 0.707 (median 0.354); spread (median 2.75 - best 1) = 1.75; the
  teacher (D) 4th on seed 0, 3rd on seed 1, 3rd on the mean (tied). Trainings are read from
  cell<i>/summary.json and checked to be the cell's."""
  from experiments.planted import final_recipe
  cells = ["0 0 0", "0 0 1", "0 0 2", "0 0 3"]
  data = {"cells": cells, "yardstick_ppl": [1.0, 2.0, 3.0, 4.0], "teacher_index": 3,
          "final_recipe_valid_ppl": [2.0, 1.0, 3.0, 4.0]}
  for i, (cell, ppl) in enumerate(zip(cells, [2.0, 1.0, 4.0, 3.0])):
    (tmp_path / f"cell{i}").mkdir()
    common.write_json(str(tmp_path / f"cell{i}" / "summary.json"),
                      {"model": f"ENAS cell [{cell}] (authors' format)", "valid_ppl": ppl})
  seed1 = final_recipe.read_runs(cells, str(tmp_path))
  assert seed1 == [2.0, 1.0, 4.0, 3.0]
  yard_table = {c: [v, v + 2.2 * (i == 0)]  # the runs' mean: 2.1 2 3 4 (A after B)
                for i, (c, v) in enumerate(zip(cells, [1.0, 2.0, 3.0, 4.0]))}
  result = final_recipe.summarize(data, [data["final_recipe_valid_ppl"], seed1], 3, yard_table)
  (ff,) = result["final_vs_final"]
  assert (ff["tau_all"], ff["tau_top"]) == (pytest.approx(4 / 6), pytest.approx(1.0))
  fy0 = result["final_vs_yardstick"][0]
  assert (fy0["a"], fy0["b"]) == ("yardstick", "final seed 0")
  assert (fy0["tau_all"], fy0["tau_top"]) == (pytest.approx(4 / 6), pytest.approx(1 / 3))
  fym = result["final_vs_yardstick"][2]  # the seeds' mean: C, D tied; A-B swapped
  assert (fym["b"], fym["tau_all"]) == ("final mean", pytest.approx(3 / np.sqrt(30)))
  assert len(result["final_vs_yardstick"]) == 3  # each seed and the mean, not seed against seed
  assert result["per_cell_sd_median"] == pytest.approx(np.sqrt(0.5) / 2)
  assert result["spread_of_mean"] == pytest.approx(1.75)
  assert result["teacher_rank_per_seed"] == [4, 3] and result["teacher_rank_mean"] == 3
  assert result["yardstick_vs_yardstick"][0]["tau_all"] == pytest.approx(2 / 6)  # A-B, A-C
  assert "0.667" in final_recipe.markdown(result)
  # Two searches' shared figures, scored against the yardstick's runs' mean (2.1 2 3 4) and the
  # final recipe's (2 1 3.5 3.5): the first 1 2 3 4 (against the runs' mean A-B swapped: 4/6, top
  # 3 A B C: 1/3; against the final mean 3 / sqrt(30), top 1/3), the second 2 1 3 4 (1; 5/sqrt(30)).
  searches = [("s0", {"rows": [{"cell": c, "shared_ppl": v} for c, v in zip(cells, [1, 2, 3, 4])]}),
              ("s1", {"rows": [{"cell": c, "shared_ppl": v} for c, v in zip(cells, [2, 1, 3, 4])]})]
  r = final_recipe.summarize(data, [data["final_recipe_valid_ppl"], seed1], 3, yard_table,
                             searches=searches)["rescored"]
  s0, s1 = r["searches"]
  assert (s0["tau_yardstick_all"], s0["tau_final_all"]) == (pytest.approx(4 / 6),
                                                              pytest.approx(3 / np.sqrt(30)))
  assert (s0["tau_yardstick_top"], s0["tau_final_top"]) == (pytest.approx(1 / 3),
                                                              pytest.approx(1 / 3))
  assert (s1["tau_yardstick_all"], s1["tau_final_all"]) == (1.0, pytest.approx(5 / np.sqrt(30)))
  assert r["tau_yardstick_all"][0] == pytest.approx((1 + 4 / 6) / 2)
  # d = 0.667 - 0.548 = 0.119 and 1 - 0.913 = 0.087, mean 0.103: of the four sign flips only
  # (+, +) and (-, -) reach |mean| 0.103 (the others 0.016): p = 2/4
  assert r["paired_p_all"] == pytest.approx(0.5)
  with pytest.raises(UserError, match="its cells are not these 4"):
    final_recipe.summarize(data, [data["final_recipe_valid_ppl"], seed1], 3,
                           searches=[("s", {"rows": searches[0][1]["rows"][:3]})])
  template = {"corpus": {"name": "planted"}, "rows": [
      {"cell": c, "teacher": i == 3, "standalone_ppl": 9.0, "shared_ppl": 5.0}
      for i, c in enumerate(reversed(cells))]}
  yard = final_recipe.mean_as_yardstick(template, cells, result["mean"])
  assert [(r["cell"], r["standalone_ppl"], r["shared_ppl"]) for r in yard["rows"]] == [
      (c, m, 5.0) for c, m in zip(reversed(cells), [3.5, 3.5, 1.0, 2.0])]
  assert yard["corpus"] == template["corpus"] and template["rows"][0]["standalone_ppl"] == 9.0
  with pytest.raises(UserError, match="its cells are not the ones trained"):
    final_recipe.mean_as_yardstick({"rows": template["rows"][:3]}, cells, result["mean"])
  common.write_json(str(tmp_path / "cell2" / "summary.json"),
                    {"model": "ENAS cell [0 0 3] (authors' format)", "valid_ppl": 1.0})
  with pytest.raises(UserError, match="cell2 trained"):
    final_recipe.read_runs(cells, str(tmp_path))
  with pytest.raises(UserError, match="lacks 1 of the cells"):
    final_recipe.summarize(data, [data["final_recipe_valid_ppl"], seed1], 3,
                           dict(list(yard_table.items())[:3]))
  with pytest.raises(UserError, match="needs two seeds"):
    final_recipe.summarize(data, [data["final_recipe_valid_ppl"]], 3)


def test_final_recipe_on_a_ranking_without_teacher(tmp_path, monkeypatch):
  """PTB's way in: the cells and yardstick figures from a ranking study's rows (no teacher, no
  seed 0 on file), every seed from --runs, `--set` passed to each training; teacher ranks None.
  Yardstick 1 2 3; seed 0 gives 1 3 2 (B-C swapped: tau 1/3 against the yardstick), seed 1
  gives 1 2 3 (1); seed against seed 1/3; the mean 1 2.5 2.5 ties B and C."""
  from experiments.planted import final_recipe
  rows = [{"cell": c, "teacher": False, "standalone_ppl": v, "shared_ppl": 9.0}
          for c, v in (("0 0 0", 1.0), ("0 0 1", 2.0), ("0 0 2", 3.0))]
  (tmp_path / "ranking").mkdir()
  common.write_json(str(tmp_path / "ranking" / "results.json"), {"rows": rows})
  data = final_recipe.cells_to_train("", str(tmp_path / "ranking"))
  assert data == {"cells": ["0 0 0", "0 0 1", "0 0 2"], "yardstick_ppl": [1.0, 2.0, 3.0],
                  "teacher_index": None}
  commands = []
  monkeypatch.setattr(final_recipe.subprocess, "run", lambda cmd, check: commands.append(cmd))
  final_recipe.train_missing(data["cells"][:1], str(tmp_path / "s0"), 7,
                             ["data.source=directory", "data.dir=/x"])
  # a diverging cell is trained to the end and recorded, as the study's recorded runs were
  assert commands[0][-5:] == ["--config.seed=7", f"--workdir={tmp_path / 's0' / 'cell0'}",
                              "--config.train.stop_on_divergence=False",
                              "--config.data.source=directory", "--config.data.dir=/x"]
  assert "--config=configs/ptb_final.py:planted" in commands[0]
  result = final_recipe.summarize(data, [[1.0, 3.0, 2.0], [1.0, 2.0, 3.0]], 3)
  assert [r["tau_all"] for r in result["final_vs_yardstick"]] == [
      pytest.approx(1 / 3), 1.0, pytest.approx(2 / np.sqrt(6))]
  assert result["final_vs_final"][0]["tau_all"] == pytest.approx(1 / 3)
  assert result["teacher_rank_per_seed"] == [None, None] and result["teacher_rank_mean"] is None
  assert "No teacher's cell" in final_recipe.markdown(result)
  yard = final_recipe.mean_as_yardstick({"rows": rows}, data["cells"], result["mean"],
                                        ["data.dir=/x"])
  assert [r["standalone_ppl"] for r in yard["rows"]] == [1.0, 2.5, 2.5]
  assert "--config.data.dir=/x" in yard["standalone_recipe"]
  with pytest.raises(UserError, match="exactly one of --cells"):
    final_recipe.cells_to_train("a.json", str(tmp_path / "ranking"))
  with pytest.raises(UserError, match="no rows with trained-alone figures"):
    common.write_json(str(tmp_path / "ranking" / "results.json"), {"rows": [{"cell": "0 0 0"}]})
    final_recipe.cells_to_train("", str(tmp_path / "ranking"))


def test_held_out_tests_only_the_named_seeds_of_a_finished_study(tmp_path):
  """`held_out`: a study's tests over the named seeds alone, against figures worked by hand."""
  from experiments.planted import held_out
  alone = {("enas", 0): 105.0, ("random", 0): 105.0, ("enas", 1): 90.0, ("random", 1): 200.0,
           ("enas", 2): 100.0, ("random", 2): 103.0, ("enas", 3): 101.0, ("random", 3): 104.0}
  runs = [{"method": m, "seed": s, "cell": f"{s} 0 0 0 0 0 0 0 0 0 0", "shared_ppl": 150.0,
           "standalone_ppl": v, "entropy_end": 2.0} for (m, s), v in alone.items()]
  study = tmp_path / "study"
  study.mkdir()
  (study / "results.json").write_text(json.dumps(
      {"scale": "tiny", "seeds": 4, "settings": [], "corpus_name": "ptb", "runs": runs,
       "noise_cell": "0 0 0 0 0 0 0 0 0 0 0", "noise_ppl_seeds": [1.0, 2.0, 3.0]}))
  assert held_out.parse_seeds("0,2-3") == [0, 2, 3]
  result = held_out.run(str(study), [2, 3], str(tmp_path / "out"))
  assert [(r["method"], r["seed"]) for r in result["runs"]] == [
      ("enas", 2), ("random", 2), ("enas", 3), ("random", 3)]
  # pooled 100, 101, 103, 104: 2 of the 6 splits differ in mean by 3 or more
  assert result["p_value_standalone_ppl"] == pytest.approx(1 / 3)
  # differences -3, -3: 2 of the 4 sign flips reach |mean| 3
  assert result["p_value_paired"] == pytest.approx(0.5)
  assert (result["enas_better"], result["tied"], result["enas_worse"]) == (2, 0, 0)
  assert result["methods"]["enas"]["standalone_ppl"]["mean"] == pytest.approx(100.5)
  with_tie = held_out.run(str(study), [0, 2, 3], str(tmp_path / "tie"))
  assert (with_tie["enas_better"], with_tie["tied"], with_tie["enas_worse"]) == (2, 1, 0)
  assert "better in 2, tied in 1, worse in 0" in (tmp_path / "tie" / "table.md").read_text()
  with pytest.raises(UserError, match=r"lacks both methods' rows for seeds \[7\]"):
    held_out.run(str(study), [3, 7], str(tmp_path / "x"))
  with pytest.raises(UserError, match="FIRST-LAST"):
    held_out.parse_seeds("20-x")


def test_a_cut_short_or_foreign_study_file_is_named_in_one_error(tmp_path):
  """A results.json cut short, of another kind of study, or not an object ended in a
  JSONDecodeError or KeyError traceback (`held_out`, `tau_seeds`, `compare --random_from`, ...);
  `remedies` and `short_alone` printed the bare exception text. Each is one UserError now that
  names the option and the file."""
  from experiments.planted import held_out, tau_seeds
  study = tmp_path / "study"
  study.mkdir()
  path = study / "results.json"
  for text, why in (('{"runs": [', "cannot read .* as JSON \\(Expecting value"),
                    (b"\xff{}", "cannot read .* as JSON \\(.*utf-8"),
                    ("[1, 2]", "holds JSON but not a study's results"),
                    ("{}", "has no field 'runs', which this study reads: it is another kind")):
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    with pytest.raises(UserError, match=f"^--study: .*{why}"):
      held_out.run(str(study), [0], str(tmp_path / "out"))
  with pytest.raises(UserError, match="^--group g: .* has no field 'settings'"):
    tau_seeds.read_group(["g", str(study)])
  assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]
  env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  for args, said in ((["remedies", f"--baseline={study}", f"--out={tmp_path / 'r'}"],
                      f"error: --baseline: {path} has no field"),
                     (["short_alone", "--seeds=0,x", "--steps=8", "--schedule=constant",
                       f"--yardstick={study}", f"--out={tmp_path / 's'}"],
                      "error: --seeds is '0,x'; give whole numbers")):
    result = subprocess.run([sys.executable, "-m", f"experiments.planted.{args[0]}", *args[1:]],
                            env=env, cwd=env["PYTHONPATH"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and " ".join(result.stderr.split()).startswith(said), (
        result.stderr)


def test_study_counts_that_cannot_work_are_refused_before_any_work(tmp_path):
  """`compare --seeds=0` ended in a KeyError traceback; `ranking --cells=0` or `--noise_seeds=0`
  and `probe --noise_seeds=0` ran a whole search or training first; `ranking --tau_at=x` was a
  ValueError traceback. Each is one UserError now, before anything is written."""
  from enas_jax.io.workdir import output_folder
  from experiments.planted import compare, probe, ranking
  with pytest.raises(UserError, match="--seeds is 0; give at least 1"):
    compare.run(str(tmp_path / "c"), "tiny", seeds=0)
  for cells, noise in ((1, 3), (30, 1)):
    with pytest.raises(UserError, match=f"--cells is {cells}, --noise_seeds {noise}, "):
      ranking.run(str(tmp_path / "r"), "planted", "tiny", cells, "enas", "", noise_seeds=noise)
  with pytest.raises(UserError, match="--tau_at is '1,x'; give whole epochs"):
    ranking.tau_epochs("1,x")
  with pytest.raises(UserError, match=r"--tau_at names epoch\(s\) \[0, 99\]; .* after epochs 1-"):
    ranking.run(str(tmp_path / "r"), "planted", "tiny", 3, "enas", "", noise_seeds=2,
                tau_at=(0, 1, 99))  # (they were dropped silently)
  assert ranking.tau_epochs("1, 2,") == (1, 2)
  with pytest.raises(UserError, match="--noise_seeds is 0, --cells 2: a probe trains"):
    probe.run(str(tmp_path / "p"), common.scale_of("tiny"), [], cells=2, noise_seeds=0)
  assert list(tmp_path.iterdir()) == []
  (tmp_path / "file").write_text("")  # an --out that is a file, or has one on its way
  for out in ("file", "file/sub"):
    with pytest.raises(UserError, match=f"--out={tmp_path / out}: that path, or a folder on "):
      output_folder(str(tmp_path / out))
  assert output_folder(str(tmp_path / "a" / "b")) == str(tmp_path / "a" / "b")
  assert (tmp_path / "a" / "b").is_dir()


def test_study_scripts_end_a_full_disk_or_a_stop_in_one_paragraph(tmp_path):
  """Each study script runs its main as the commands do (`io.errors.run_main`): a failed write
  (here a file-size limit, as a full disk) names the file and leaves the earlier output whole
  (the outputs are written atomically); a stop signal, in a search or outside one, is one
  paragraph with the signal's exit status, not a traceback."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  folders = [os.path.join(root, "experiments", name) for name in ("planted", "nasbench201", "ptb")]
  scripts = [os.path.join(d, f) for d in folders for f in sorted(os.listdir(d))
             if f.endswith(".py")]
  assert len(scripts) > 15
  for name in scripts:
    tree = ast.parse(open(name).read())
    mains = [n for n in tree.body if isinstance(n, ast.If)
             and "__main__" in ast.unparse(n.test)]
    assert not mains or "run_main(" in ast.unparse(mains[0]), name
  for study in ("a", "b"):
    os.makedirs(tmp_path / study)
    common.write_json(str(tmp_path / study / "results.json"), {
        "settings": [], "kendall_tau": 0.5, "kendall_tau_p": 0.01, "entropy_end": 5.0,
        "worse_than_uniform_under_shared": 0, "shared_pick_regret_ppl": 0.1})
  (tmp_path / "out.json").write_text("earlier")
  env = dict(os.environ, PYTHONPATH=root)
  result = subprocess.run(
      ["bash", "-c", 'ulimit -f 0; trap "" XFSZ; exec "$0" "$@"', sys.executable, "-m",
       "experiments.planted.tau_seeds", "--group", "g", str(tmp_path / "a"), str(tmp_path / "b"),
       f"--out={tmp_path / 'out'}"], cwd=root, env=env, capture_output=True, text=True,
      timeout=300)
  message = " ".join(result.stderr.split())
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
  assert f"error: Cannot write {tmp_path / 'out.json'}: File too large." in message
  assert (tmp_path / "out.json").read_text() == "earlier"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "out.json"]
  out = tmp_path / "compare"
  proc = subprocess.Popen([sys.executable, "-m", "experiments.planted.compare", "--scale=tiny",
                           "--seeds=1", f"--out={out}"], cwd=root, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while not (out / "searches").exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=240)
  assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
  assert "SIGTERM" in err and len(err.strip().splitlines()) <= 4, err
