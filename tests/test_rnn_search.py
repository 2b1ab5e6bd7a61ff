"""The search loop on a tiny planted corpus: files, compile-once, same seed same run."""
import io
import json
import math
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from enas_jax.configs import quickstart
from enas_jax.controller import policy as ctl
from enas_jax.io import metrics
from enas_jax.data import lm_batches
from enas_jax.data.lm_batches import batchify
from enas_jax.io.errors import UserError
from enas_jax.ops.initialize import initialize
from enas_jax.io import workdir as workdir_lib
from enas_jax.run import answer as answer_lib
from enas_jax.run import config as run_config
from enas_jax.report import scoring
from enas_jax.run import outputs
from enas_jax.run import search as search_run
from enas_jax.spaces.rnn import arch as arch_lib
from enas_jax.spaces.rnn import formats
from enas_jax.tasks.language import steps as lm_steps


def _cfg(seed=0, **overrides):
  config = quickstart.get_config("tiny")
  config.seed = seed
  for dotted, value in overrides.items():
    section, field = dotted.split("__")
    config[section][field] = value
  return run_config.search_config(config)


def _run(tmp_path, name, cfg):
  run = search_run.SearchRun(cfg, str(tmp_path / name), io.StringIO(),
                             metrics.Progress(enabled=False))
  return run, run.execute()


def test_window_stream_continues_across_calls_and_wraps_passes():
  data = batchify(np.arange(2 * 11), 2)  # rows of 11 tokens: 10 predictions, windows 4, 4, 2
  stream = lm_batches.WindowStream(data, 4, seed=0, variable=False, width=4)
  cursor = lm_batches.Cursor()
  first = list(stream.take(cursor, 2))
  rest = list(stream.take(cursor, 3))
  assert [w.start for w, _ in first + rest] == [0, 4, 8, 0, 4]
  assert [s for _, s in first + rest] == [True, False, False, True, False]
  assert (cursor.pass_index, cursor.window) == (1, 2)
  assert stream.windows_per_pass(0) == 3


@pytest.fixture(scope="module")
def seed0_run(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("search")
  run, summary = _run(tmp_path, "a", _cfg())
  return run, summary, tmp_path / "a"


def _rows(workdir):
  return [{k: v for k, v in r.items() if k != "seconds"}  # wall-clock time aside
          for r in metrics.read_metrics(str(workdir / "metrics.jsonl"))]


def test_search_writes_its_outputs_and_compiles_each_phase_once(seed0_run):
  run, summary, workdir = seed0_run
  for jitted in (run.program.shared_step, run.program.controller_step, run.program.derive_step,
                 run.task.jit_eval_step):
    assert jitted._cache_size() == 1  # one compilation for the whole search
  config = json.loads((workdir / "config.json").read_text())
  assert config["search"]["epochs"] == 2 and config["model"]["num_nodes"] == 4
  rows = metrics.read_metrics(str(workdir / "metrics.jsonl"))
  phases = [r["phase"] for r in rows]
  # 5 shared steps logged every 2 (+ the last), 3 controller steps likewise, per epoch
  assert phases == (["shared"] * 3 + ["controller"] * 2 + ["derive", "epoch"]) * 2
  assert [r["step"] for r in rows if r["phase"] == "shared"] == [2, 4, 5, 7, 9, 10]
  for epoch in range(2):
    arch = formats.from_json(
        json.loads((workdir / "archs" / f"epoch_{epoch:04d}.json").read_text()))
    text = (workdir / "archs" / f"epoch_{epoch:04d}.txt").read_text().strip()
    assert formats.to_authors_string(arch) == text == summary["history"][epoch]["authors"]
  best = json.loads((workdir / "best_arch.json").read_text())
  assert formats.to_authors_string(formats.from_json(best)) == summary["authors"]
  assert summary["valid_ppl_shared"] == min(r["valid_ppl_shared"] for r in summary["rescored"])
  assert summary["shared_steps"] == 10 and summary["controller_steps"] == 6
  assert "teacher_ppl_valid" in summary["corpus"]
  assert len(list((workdir / "tb").iterdir())) == 1


def test_same_seed_same_search_other_seed_differs(seed0_run, tmp_path):
  _, a, workdir_a = seed0_run
  _, b = _run(tmp_path, "b", _cfg())
  assert _rows(workdir_a) == _rows(tmp_path / "b")  # every logged figure, bit for bit
  assert a["history"] == b["history"]
  _, c = _run(tmp_path, "c", _cfg(seed=1))
  assert c["history"] != a["history"] and _rows(tmp_path / "c") != _rows(workdir_a)


def test_random_controller_runs_the_same_loop(tmp_path):
  """The uniform baseline runs the whole loop, learns nothing (its weights stay the initial
  ones) and samples with the uniform distribution's entropy, sum of log(choices)."""
  run, summary = _run(tmp_path, "r", _cfg(controller__kind="random"))
  assert len(summary["history"]) == 2
  initial = initialize(run.init_ctrl)
  for a, b in zip(jax.tree_util.tree_leaves(initial.params),
                  jax.tree_util.tree_leaves(run.final_state.ctrl.params)):
    np.testing.assert_array_equal(a, b)
  uniform = sum(math.log(d.num_choices) for d in run.program.controller.decisions)
  rows = [r for r in metrics.read_metrics(str(tmp_path / "r" / "metrics.jsonl"))
          if r["phase"] == "controller"]
  assert rows and all(r["entropy"] == pytest.approx(uniform, rel=1e-5) for r in rows)


def test_warmup_trains_the_shared_weights_on_uniform_cells_before_the_controller_learns(
    tmp_path):
  """In the warm-up epoch the shared steps are exactly the uniform baseline's (same samples,
  same losses bit for bit) and the controller takes no step; afterwards it learns."""
  warm, _ = _run(tmp_path, "w", _cfg(search__warmup_epochs=1))
  _run(tmp_path, "r", _cfg(controller__kind="random"))
  rows = {name: metrics.read_metrics(str(tmp_path / name / "metrics.jsonl")) for name in "wr"}
  shared = {name: [(r["step"], r["loss"]) for r in rows[name] if r["phase"] == "shared"]
            for name in "wr"}
  steps = warm.cfg.search.shared_steps
  first = [x for x in shared["w"] if x[0] <= steps]
  assert first and first == [x for x in shared["r"] if x[0] <= steps]
  assert [r["warmup"] for r in rows["w"] if r["phase"] == "shared"] == [
      float(s <= steps) for s, _ in shared["w"]]
  controller_steps = [r["step"] for r in rows["w"] if r["phase"] == "controller"]
  assert controller_steps and max(controller_steps) == warm.cfg.search.controller_steps
  assert int(warm.final_state.ctrl.step) == warm.cfg.search.controller_steps
  with pytest.raises(UserError, match="`search.warmup_epochs` \\(2\\) must be less"):
    _cfg(search__warmup_epochs=2)


def test_finetuned_scoring_rescores_the_derived_cells_after_steps_on_each_alone(
    seed0_run, tmp_path):
  """`search.finetune_steps=K`: the answer is picked by each derived cell's whole-validation
  perplexity after K shared steps on that cell alone from the final weights: the training
  split's first K windows (the carry reset where a pass starts), keys folded from the run's key
  (stream 5) with the step's index; by hand here. The search itself trains exactly as without
  it, and the scoring leaves its weights as they were; a finished search resumed with the option
  rescores its derived cells the same way."""
  run, plain, workdir = seed0_run
  k = run.task.train.windows_per_pass(0) + 2  # across a pass boundary
  tuned_run, tuned = _run(tmp_path, "k", _cfg(search__finetune_steps=k))
  assert _rows(tmp_path / "k") == _rows(workdir) and tuned["history"] == plain["history"]
  final = tuned_run.final_state.model
  for a, b in zip(jax.tree_util.tree_leaves(final.params),
                  jax.tree_util.tree_leaves(run.final_state.model.params)):
    np.testing.assert_array_equal(a, b)
  d, stream = run.cfg.data, run.task.train
  step = jax.jit(run.task.train_step, donate_argnums=0)  # as `finetuned` compiles it: reused
  key = jax.random.fold_in(jax.random.key(run.cfg.seed), 5)

  def by_hand(arch):
    model, i = jax.tree_util.tree_map(jnp.copy, final), 0  # a copy: the step donates it
    for epoch in range(2):
      for w in lm_batches.windows(stream.data_BxN, d.bptt, run.cfg.seed, epoch, d.variable_bptt,
                                  stream.width):
        if i < k:
          if w.start == 0:
            model = model.replace(hidden=jnp.zeros_like(model.hidden))
          model, _ = step(model, lm_steps.window_batch(w, d.bptt, d.variable_bptt), arch,
                          jax.random.fold_in(key, i))
          i += 1
    assert i == k
    return run.task.evaluate(model, arch)

  for entry, before in zip(tuned["rescored"], plain["rescored"]):
    arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32),
                                  formats.from_authors_string(entry["authors"]))
    assert entry["authors"] == before["authors"]
    assert entry["valid_ppl_shared"] == by_hand(arch) != before["valid_ppl_shared"]
  teacher = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), formats.from_authors_string(
      tuned["corpus"]["teacher_arch"]))
  assert tuned["planted_arch_valid_ppl_shared"] == by_hand(teacher)  # scored the same way
  lines = "\n".join(outputs.result_lines(tuned, str(tmp_path / "k")))
  assert f"under the shared weights after {k} steps on it alone: " in lines
  assert f"the planted cell scored the same way ({k} steps on it alone): " in lines
  assert tuned["finetune_steps"] == k and "finetune_steps" not in plain
  assert tuned["valid_ppl_shared"] == min(r["valid_ppl_shared"] for r in tuned["rescored"])
  shutil.copytree(workdir, tmp_path / "again")  # a finished search, rescored: nothing retrained
  assert _run(tmp_path, "again", _cfg(search__finetune_steps=k))[1] == tuned

  # The report scores every cell as the search picked its answer (report.finetune_steps = -1):
  # the same answer and figures; any search can be reported either way.
  def measure(where, **options):
    with open(where / "config.json") as f:
      config = json.load(f)
    return scoring.measure(config, str(where), run_config.ReportConfig(random_cells=3, **options),
                           lambda _: None)

  def figures(m):
    return [(c.authors, c.whole, c.halves) for c in m.candidates + m.random]

  report = measure(tmp_path / "k")
  assert report.finetune_steps == k and report.answer.authors == tuned["authors"]
  assert ({c.authors: c.whole for c in report.candidates}
          == {r["authors"]: r["valid_ppl_shared"] for r in tuned["rescored"]})
  assert figures(measure(workdir, finetune_steps=k)) == figures(report)
  plain_report = measure(tmp_path / "k", finetune_steps=0)
  assert ({c.authors: c.whole for c in plain_report.candidates}
          == {r["authors"]: r["valid_ppl_shared"] for r in plain["rescored"]})
  assert figures(measure(workdir)) == figures(plain_report)


def test_final_candidates_widen_the_answers_pick_to_the_final_controllers_best_cells(
    seed0_run, tmp_path):
  """`search.final_candidates=K`: the answer is picked among every derived cell and the K best
  distinct cells of one more derive from the final controller (key stream 6, ranked by the
  derive's batch score; by hand here), all rescored alike; the search trains exactly as without
  it; a finished search resumed with the field is rescored the same way without retraining, and
  the report scores the same candidates."""
  run, plain, workdir = seed0_run
  k = 3
  wide_run, wide = _run(tmp_path, "wide", _cfg(search__final_candidates=k))
  assert _rows(tmp_path / "wide") == _rows(workdir) and wide["history"] == plain["history"]
  state = wide_run.final_state
  values_SxD, _, figures = wide_run.program.derive_step(
      state.ctrl, state.model.params, state.model.batch_stats,
      wide_run.task.derive_batch(state.epoch), jax.random.fold_in(jax.random.key(run.cfg.seed), 6))
  score_S = np.asarray(figures["valid_ppl"])
  best = []
  for i in np.argsort(score_S, kind="stable"):
    authors = formats.to_authors_string(arch_lib.from_decisions(np.asarray(values_SxD)[i]))
    if authors not in best:
      best.append(authors)
  derived = [r["authors"] for r in plain["rescored"]]
  assert len(wide["rescored"]) > len(derived)  # the final derive added cells
  assert [r["authors"] for r in wide["rescored"]] == derived + [a for a in best[:k]
                                                                if a not in derived]
  assert wide["rescored"][:len(derived)] == plain["rescored"]  # the same weights, the same score
  for entry in wide["rescored"][len(derived):]:
    arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32),
                                  formats.from_authors_string(entry["authors"]))
    assert entry["valid_ppl_shared"] == run.task.evaluate(run.final_state.model, arch)
  assert wide["final_candidates"] == k and "final_candidates" not in plain
  assert (f"picked among {len(wide['rescored'])} cells: each epoch's derived cell and the final "
          f"controller's {k} best") in outputs.result_lines(wide, str(tmp_path / "wide"))
  assert wide["valid_ppl_shared"] == min(r["valid_ppl_shared"] for r in wide["rescored"])
  shutil.copytree(workdir, tmp_path / "again")
  assert _run(tmp_path, "again", _cfg(search__final_candidates=k))[1] == wide
  with open(tmp_path / "wide" / "config.json") as f:
    report = scoring.measure(json.load(f), str(tmp_path / "wide"),
                             run_config.ReportConfig(random_cells=3), lambda _: None)
  assert ({c.authors: c.whole for c in report.candidates}
          == {r["authors"]: r["valid_ppl_shared"] for r in wide["rescored"]})


def test_training_alone_anneals_the_learning_rate_linearly_to_zero(seed0_run):
  """The report's training alone (`report.train_alone_schedule`): "linear" runs step i of K at
  the search's first learning rate times (1 - i / K), "constant" leaves the fresh state's (the
  search's first) for every step; the figure is the cell's whole-split perplexity after them
  ("averaged": of the mean of the weights over the second half of the steps)."""
  run, _, _ = seed0_run
  cfg = run.cfg
  jitted = jax.jit(run.task.train_step)
  arch = formats.from_authors_string("0 0 1 1 2 0 3")  # 4 nodes: the tiny preset
  fresh, key = scoring.alone_start(run, 0)

  def trained(schedule, k=5):
    seen = []

    def step(model, batch, arch_, step_key):
      seen.append(float(model.opt_state[-1].hyperparams["learning_rate"]))
      model, _ = jitted(model, batch, arch_, step_key)
      last.append(model)
      return model, {}
    last = []
    figure = scoring.trained_alone(run, step, fresh, arch, k, schedule, key)
    if schedule != "averaged":
      assert figure == run.task.evaluate(last[-1], arch)
    return figure, seen, last

  lr0 = cfg.shared.lr_at_epoch(0)
  linear, seen, _ = trained("linear")
  assert seen == [float(np.float32(lr0 * (1 - i / 5))) for i in range(5)]
  constant, seen, _ = trained("constant")
  assert seen == [float(np.float32(lr0))] * 5
  assert math.isfinite(linear) and linear != constant
  # "averaged": the constant rate's steps, scored with the mean of the weights after steps 3-5
  # of 5 (from the middle: 5 // 2 = 2 steps before it), the mean taken here in float64
  averaged, seen, models = trained("averaged")
  assert seen == [float(np.float32(lr0))] * 5
  mean = jax.tree_util.tree_map(lambda *p: np.mean(np.stack(p).astype(np.float64), 0).astype(
      np.float32), *[m.params for m in models[2:]])
  by_hand = run.task.evaluate(models[-1].replace(params=mean), arch)
  assert averaged == pytest.approx(by_hand, rel=1e-5) and averaged != constant
  # a cell whose weights go non-finite alone ranks last: +inf, not a NaN that Kendall's tau
  # would count as discordant with every other cell
  def poisoned(model, batch, arch_, step_key):
    model, m = jitted(model, batch, arch_, step_key)
    return model.replace(params=jax.tree_util.tree_map(lambda p: p * np.nan, model.params)), m
  assert scoring.trained_alone(run, poisoned, fresh, arch, 2, "linear", key) == math.inf
  with pytest.raises(UserError, match="report.train_alone_schedule.*linear, constant, averaged"):
    run_config.ReportConfig(train_alone_schedule="cosine").validate()


def test_bad_search_values_are_user_errors():
  with pytest.raises(UserError, match="`search.epochs` must be at least 1"):
    _cfg(search__epochs=0)
  with pytest.raises(UserError, match="`search.controller_steps` must be >= 0"):
    _cfg(search__controller_steps=-1)
  with pytest.raises(UserError, match="`search.fair_every` must be >= 0"):
    _cfg(search__fair_every=-1)
  with pytest.raises(UserError, match="`search.finetune_steps` must be >= 0"):
    _cfg(search__finetune_steps=-1)
  with pytest.raises(UserError, match="`search.final_candidates` must be >= 0"):
    _cfg(search__final_candidates=-1)
  with pytest.raises(UserError, match="`shared.cells_per_step` must be at least 1"):
    _cfg(shared__cells_per_step=0)
  with pytest.raises(UserError, match=r"`shared.cells_per_step` is 3, which does not divide "
                                      r"`data.batch_size` \(4\)"):
    _cfg(shared__cells_per_step=3)
  with pytest.raises(UserError, match=r"`shared.cells_per_step` \(2\) and `search.fair_every`"):
    _cfg(shared__cells_per_step=2, search__fair_every=4)
  with pytest.raises(UserError, match=r"`shared.cells_per_step` \(2\) and `shared.l2_on`"):
    _cfg(shared__cells_per_step=2, shared__l2_on="used")


def test_cells_per_step_trains_each_cell_on_its_share_of_the_rows(seed0_run):
  """`shared.cells_per_step=2`: the step's loss is the NLL over all rows, rows 0-1 through the
  first cell (dropout key folded with 0) and rows 2-3 through the second (folded with 1), plus
  the L2 term; checked against that sum written out with the model itself: the same loss, the
  same updated weights, each cell's new hidden state on its rows."""
  run, _, _ = seed0_run
  task = run.task
  train_step, _ = lm_steps.make_lm_steps(task.model, task.optimizer, l2=1e-3)
  state = initialize(lambda: task.init_model(jax.random.key(3)))
  state = state.replace(hidden=jax.random.normal(jax.random.key(4), state.hidden.shape))
  batch, _ = task.example_batches()
  batch = dict(batch, lr_scale=jnp.float32(1.0))
  cells = [arch_lib.make_arch([-1, 0, 1, 1], [0, 1, 2, 3]),
           arch_lib.make_arch([-1, 0, 0, 2], [3, 0, 0, 1])]
  stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *cells)
  key = jax.random.key(5)
  new, m = jax.jit(train_step)(state, batch, stacked, key)

  def loss_by_hand(params):
    total, count, hidden = 0.0, 0.0, []
    for k, cell in enumerate(cells):
      rows = slice(2 * k, 2 * k + 2)
      logits, h = task.model.apply({"params": params}, batch["inputs"][rows],
                                   state.hidden[rows], cell, batch["valid"], train=True,
                                   rngs={"dropout": jax.random.fold_in(key, k)})
      logp = jax.nn.log_softmax(logits)
      nll = -jnp.take_along_axis(logp, batch["targets"][rows][..., None], -1)[..., 0]
      total += jnp.sum(nll * batch["valid"]).astype(jnp.float32)
      count += 2 * jnp.sum(batch["valid"])
      hidden.append(h)
    squares = sum(jnp.sum(w ** 2) for w in jax.tree_util.tree_leaves(params))
    return total / count + 1e-3 * squares, jnp.concatenate(hidden)

  (loss, hidden), grads = jax.jit(jax.value_and_grad(loss_by_hand, has_aux=True))(state.params)
  assert float(batch["valid"].sum()) == batch["inputs"].shape[1] == 10  # every step counts
  np.testing.assert_allclose(m["loss"], loss, rtol=1e-6)
  np.testing.assert_allclose(new.hidden, hidden, rtol=1e-6, atol=1e-7)
  updates, _ = task.optimizer.update(grads, state.opt_state, state.params)
  for got, want in zip(jax.tree_util.tree_leaves(new.params),
                       jax.tree_util.tree_leaves(optax.apply_updates(state.params, updates))):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  one, _ = jax.jit(train_step)(state, batch, cells[0], key)  # one cell: every row through it
  assert not np.allclose(one.hidden[2:], new.hidden[2:])


def test_a_search_with_two_cells_a_step_compiles_once_and_draws_two_cells_a_step(tmp_path):
  """The shared draw gives each step two cells, cell c from the step's key folded with c; the
  step and the draw compile once for the whole search, which resumes to the bit."""
  run, summary = _run(tmp_path, "two", _cfg(shared__cells_per_step=2))
  assert run.program.shared_step._cache_size() == 1
  assert run.program.shared_draw._cache_size() == 1
  assert run.program.shared_values == (2, len(run.program.controller.decisions))
  key = jax.random.key(11)
  ctrl = run.final_state.ctrl
  values = run.program.shared_draw(ctrl, key, 5)
  assert values.shape == (64, 2, len(run.program.controller.decisions))
  for step, c in ((5, 0), (5, 1), (9, 1)):
    want = ctl.sample(run.program.controller, ctrl.params, jax.random.fold_in(jax.random.fold_in(
        jax.random.fold_in(key, step), 0), c), ctrl.step).values
    np.testing.assert_array_equal(values[step - 5, c], want)
  assert not np.array_equal(values[:, 0], values[:, 1])
  assert len(summary["history"]) == 2 and math.isfinite(summary["valid_ppl_shared"])
  # stopped after its first epoch and resumed: the same search, every figure to the bit
  _run(tmp_path, "resumed", _cfg(shared__cells_per_step=2, search__epochs=1))
  _, again = _run(tmp_path, "resumed", _cfg(shared__cells_per_step=2))
  assert _rows(tmp_path / "resumed") == _rows(tmp_path / "two")
  assert again["history"] == summary["history"]


def test_unwritable_workdir_is_a_user_error(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(UserError, match="cannot be written"):
    workdir_lib.prepare(str(blocker / "run"))


def test_a_nan_score_ranks_last_when_deriving_and_picking_the_answer():
  """`answer.best_first` orders every score list the search and the report pick from (the
  derive's batch scores, the final candidates, the answer's rescoring, the report's random
  cells): best first, the first of equal scores first (as argmin), a NaN last, where a plain
  argmin or sort would put it first or leave the order undefined."""
  nan = float("nan")
  assert answer_lib.best_first([nan, 3.0, 1.0, 1.0, 2.0], True) == [2, 3, 4, 1, 0]
  assert answer_lib.best_first([nan, 3.0, 1.0, 3.0], False) == [1, 3, 2, 0]
  assert answer_lib.best_first(np.asarray([5.0, nan, 4.0], np.float32), True) == [2, 0, 1]
  assert int(np.argmin([nan, 3.0, 1.0])) == 0  # what derive did before
  # and the finish says so: some candidates unscored, or every one (the answer then blind)
  assert answer_lib.unscored_note({"a": 2.0, "b": 3.0}, "valid ppl", 0) is None
  assert answer_lib.unscored_note({"a": nan, "b": 3.0, "c": float("inf")}, "valid ppl", 8) == (
      "note: 2 of 3 candidates' valid ppl is not finite after search.finetune_steps=8 steps on "
      "each alone (lower it or shared.lr); they rank last")
  assert answer_lib.unscored_note({"a": nan}, "valid ppl", 0) == (
      "warning: every candidate's valid ppl is not finite under the final shared weights (their "
      "outputs overflow): the answer is the first candidate, not chosen by any figure; train "
      "candidates alone to choose")
