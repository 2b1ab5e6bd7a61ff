"""The studies' statistics against hand-computed values (experiments/planted/stats.py)."""
import itertools
import math

import numpy as np
import pytest

from experiments.planted import common, stats


def test_kendall_tau_by_hand():
  assert stats.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
  assert stats.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
  # pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant -> 4/6
  assert stats.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
  # with a tie in x: x = (1,1,2), y = (1,2,3): pairs (0,1) tie in x, (0,2) c, (1,2) c
  # tau-b = 2 / sqrt((2 + 1) * 2)
  assert stats.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))


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


def test_ptb_corpus_for_the_ranking_study(tmp_path):
  from enas_jax.io.errors import UserError
  from experiments.planted import ranking
  src = tmp_path / "ptb"
  src.mkdir()
  (src / "valid.txt").write_text("a b c\nd e\n")
  (src / "test.txt").write_text("one\ntwo\nthree\nfour\n")
  out = ranking.prepare_ptb(str(src), str(tmp_path / "out"))
  read = lambda name: open(f"{out}/{name}.txt").read()
  assert read("train") == "a b c\nd e\n"
  assert read("valid") == "one\ntwo\n" and read("test") == "three\nfour\n"
  with pytest.raises(UserError, match="valid.txt and test.txt"):
    ranking.prepare_ptb(str(tmp_path / "missing"), str(tmp_path / "out2"))


def test_compare_study_end_to_end_at_tiny_scale(tmp_path):
  """Both methods at one seed through the real searches and stand-alone training."""
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
