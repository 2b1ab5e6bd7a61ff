"""Config files: they load, every field is commented, sections become checked dataclasses."""
import ast
import pathlib

import pytest

from enas_jax.configs import ptb_rnn, quickstart, wikitext2_rnn
from enas_jax.io.configuration import from_section
from enas_jax.tasks.language.data import TextDataConfig
from enas_jax.io.errors import UserError
from enas_jax.run import config as run_config
from enas_jax.tasks.language.steps import SharedTrainConfig
from enas_jax.spaces.rnn.model import RNNModelConfig

CONFIG_DIR = pathlib.Path(__file__).resolve().parent.parent / "enas_jax" / "configs"
SECTIONS = {"data": TextDataConfig, "model": RNNModelConfig, "shared": SharedTrainConfig}


@pytest.mark.parametrize("module,preset", [(ptb_rnn, ""), (ptb_rnn, "cpu"),
                                           (wikitext2_rnn, ""), (wikitext2_rnn, "cpu"),
                                           (quickstart, ""), (quickstart, "tiny")])
def test_config_sections_convert(module, preset):
  config = module.get_config(preset)
  for name, cls in SECTIONS.items():
    from_section(cls, name, config[name])
  whole = run_config.search_config(config)  # every section, checked
  assert whole.model.num_nodes == config.model.num_nodes
  assert set(config.controller) >= {"hidden_dim", "temperature", "tanh_c", "lr", "entropy_weight",
                                     "baseline_decay", "reward_c", "kind"}


def test_paper_values():
  c = ptb_rnn.get_config()
  assert (c.model.num_nodes, c.model.embed_dim, c.model.hidden_dim) == (12, 1000, 1000)
  assert (c.data.batch_size, c.data.bptt) == (64, 35)
  assert (c.shared.lr, c.shared.grad_clip, c.shared.lr_decay) == (20.0, 0.25, 0.96)
  assert (c.shared.lr_decay_start_epoch, c.shared.l2, c.search.epochs) == (15, 1e-7, 150)
  assert (c.controller.lr, c.controller.entropy_weight) == (3.5e-4, 1e-4)
  assert (c.controller.reward_c, c.controller.baseline_decay) == (80.0, 0.95)
  assert SharedTrainConfig(**c.shared).lr_at_epoch(17) == pytest.approx(20.0 * 0.96 ** 2)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.py")), ids=lambda p: p.name)
def test_every_field_has_a_comment_and_docstring_says_command_runtime_result(path):
  source = path.read_text()
  if path.name == "__init__.py":
    return
  doc = ast.get_docstring(ast.parse(source))
  assert doc and "Command" in doc and "runtime" in doc and "result" in doc, path
  for line in source.splitlines():
    stripped = line.strip()
    if stripped.startswith("config.") and "=" in stripped:
      assert "#" in stripped, f"{path.name}: field without a comment: {stripped}"


def test_unknown_and_mistyped_fields_are_clear_errors():
  c = ptb_rnn.get_config()
  model = dict(c.model.to_dict(), hiden_dim=3)
  with pytest.raises(UserError, match=r"Unknown config field\(s\) `model.hiden_dim`"):
    from_section(RNNModelConfig, "model", model)
  data = dict(c.data.to_dict(), bptt="ten")
  with pytest.raises(UserError,
                     match="`data.bptt` has value 'ten' of type str, but it must be int"):
    from_section(TextDataConfig, "data", data)
  data = dict(c.data.to_dict(), source="web")
  with pytest.raises(UserError, match="one of"):
    from_section(TextDataConfig, "data", data)
  planted = dict(c.data.planted.to_dict(), vocab=5)
  with pytest.raises(UserError, match="data.planted.vocab"):
    from_section(TextDataConfig, "data", dict(c.data.to_dict(), planted=planted))


def test_a_damaged_config_json_whose_sections_are_not_groups_is_one_paragraph(tmp_path):
  """A config.json (as the report, `train` and `gif` read a search's) whose whole, `report` or
  `model` is not an object was an AttributeError or TypeError traceback."""
  import json
  from enas_jax.drawing.search_gif import search_model_config
  from enas_jax.report.build import report_options
  for whole in ([], 5, "rnn"):
    with pytest.raises(UserError) as err:
      run_config.search_config(whole)
    assert str(err.value) == f"A config must be a group of sections and fields, got {whole!r}."
  with pytest.raises(UserError) as err:
    report_options({"space": "rnn", "report": [3]}, {"random_cells": 5})
  assert str(err.value) == "Config section `report` must be a group of fields, got [3]."
  assert report_options({"report": {"seed": 3}}, {"random_cells": 5}).random_cells == 5
  config = tmp_path / "config.json"
  config.write_text(json.dumps({"space": "rnn", "model": [4]}))
  with pytest.raises(UserError) as err:
    search_model_config(str(tmp_path))
  assert str(err.value) == (f"{config}: its `model` section is [4], not a group of fields: the "
                            f"file is damaged. Move it aside to draw with the space's default "
                            f"model.")
  for unknown in ([], {"space": ["rnn"]}, {"space": "a future space"}):  # drawn with defaults
    config.write_text(json.dumps(unknown))
    assert search_model_config(str(tmp_path)) is None
  config.write_text(json.dumps({"space": "rnn", "model": {"num_nodes": 5, "unknown": 1}}))
  assert search_model_config(str(tmp_path)).num_nodes == 5


def test_set_learning_rate_returns_a_new_state():
  import jax.numpy as jnp
  from enas_jax.ops.params import set_learning_rate
  from enas_jax.tasks.language.steps import make_optimizer
  for clip in (0.25, 0.0):
    opt = make_optimizer(SharedTrainConfig(lr=20.0, grad_clip=clip))
    state = opt.init({"w": jnp.ones(3)})
    new = set_learning_rate(state, 5.0)
    inner = lambda s: s[-1] if clip else s
    assert float(inner(new).hyperparams["learning_rate"]) == 5.0
    assert float(inner(state).hyperparams["learning_rate"]) == 20.0
    updates, _ = opt.update({"w": jnp.ones(3)}, new)
    assert float(updates["w"][0]) == pytest.approx(-5.0 * 0.25 / 3 ** 0.5 if clip else -5.0)


@pytest.mark.parametrize("preset", ["", "cpu", "tiny", "planted"])
def test_final_training_config_converts_with_the_published_recipe(preset):
  from enas_jax.configs import ptb_final, quickstart
  from enas_jax.run import config as run_config
  cfg = run_config.final_config(ptb_final.get_config(preset))
  if preset == "planted":  # the quickstart's corpus, cell size and regularisation
    search = run_config.search_config(quickstart.get_config())
    assert cfg.data.planted == search.data.planted and cfg.data.source == "planted"
    for field in ("num_nodes", "hidden_dim", "embed_dim", "output", "tie_weights", "init_range",
                  "embedding_dropout", "input_dropout", "output_dropout", "dropconnect",
                  "hidden_norm_clip"):
      assert getattr(cfg.model, field) == getattr(search.model, field), field
    assert (cfg.train.lr, cfg.train.grad_clip, cfg.train.weight_decay) == (
        search.shared.lr, search.shared.grad_clip, search.shared.l2)
  if not preset:
    m, t = cfg.model, cfg.train
    assert (m.hidden_dim, m.init_range, m.embedding_dropout, m.input_dropout) == (800, 0.05, 0.125,
                                                                                 0.175)
    assert (m.cell_input_dropout, m.between_node_dropout, m.output_dropout) == (0.725, 0.225, 0.75)
    assert (t.lr, t.grad_clip, t.weight_decay, t.activation_l2, t.epochs) == (20.0, 0.25, 8e-7,
                                                                             0.7, 3000)


@pytest.mark.parametrize("preset", ["", "cpu", "tiny"])
def test_macro_configs_convert_with_the_paper_values(preset):
  from enas_jax.configs import cifar10_macro, cifar10_macro_final
  from enas_jax.run import config as run_config
  search = run_config.search_config(cifar10_macro.get_config(preset))
  final_config = cifar10_macro_final.get_config(preset)
  if not preset:
    final_config.arch = "0"  # the paper-size config needs the user's architecture
  final = run_config.final_config(final_config)
  if preset:
    assert search.data.source == final.data.source == "synthetic"
    return
  assert (search.model.num_layers, search.model.filters, search.data.batch_size) == (12, 36, 128)
  assert (search.search.epochs, search.shared.lr, search.shared.lr_min) == (310, 0.05, 0.0005)
  assert (search.controller.skip_target, search.controller.skip_weight) == (0.4, 0.8)
  assert search.data.valid_size == 5000 and search.data.name == "cifar10"
  assert (final.model.num_layers, final.model.filters) == (24, 96)
  assert final.model.double_filters_at_reduction and final.data.valid_size == 0


def test_cosine_learning_rate_with_restarts_by_hand():
  from enas_jax.tasks.images.steps import ImageTrainConfig
  cfg = ImageTrainConfig(lr=0.05, lr_min=0.0005, lr_t0=10, lr_t_mul=2)
  mid = 0.0005 + 0.5 * 0.0495
  assert [cfg.lr_at_epoch(e) for e in (0, 5, 10, 20, 30)] == pytest.approx(
      [0.05, mid, 0.05, mid, 0.05])


@pytest.mark.parametrize("preset", ["", "cpu", "tiny"])
def test_micro_configs_convert_with_the_paper_values(preset):
  from enas_jax.configs import cifar10_micro, cifar10_micro_final
  from enas_jax.run import config as run_config
  search = run_config.search_config(cifar10_micro.get_config(preset))
  final = run_config.final_config(cifar10_micro_final.get_config(preset))
  assert search.space == final.space == "micro"
  assert type(search.model).__name__ == type(final.model).__name__ == "MicroModelConfig"
  if preset:
    assert search.data.source == final.data.source == "synthetic"
    return
  m = search.model
  assert (m.num_layers, m.num_nodes, m.filters, search.data.batch_size) == (6, 5, 20, 160)
  assert (search.search.epochs, search.shared.l2, m.aux_head) == (150, 1e-4, True)
  c = search.controller
  assert (c.tanh_c, c.op_tanh_reduce, c.lr, c.num_samples) == (1.10, 2.5, 0.0035, 10)
  assert search.search.controller_steps == 30
  f = final.model
  assert (f.num_layers, f.filters, f.drop_path_keep_prob, f.keep_prob) == (15, 36, 0.6, 0.8)
  assert (final.data.cutout, final.data.batch_size, final.train.epochs) == (16, 144, 630)
  assert (final.train.l2, final.train.lr_min, final.data.valid_size) == (2e-4, 0.0001, 0)


def test_a_micro_field_in_a_macro_config_is_named():
  from enas_jax.configs import cifar10_macro
  from enas_jax.run import config as run_config
  config = cifar10_macro.get_config("tiny")
  config.model.num_nodes = 5
  with pytest.raises(UserError, match="model.num_nodes"):
    run_config.search_config(config)


@pytest.mark.parametrize("config_name, dotted, value", [
    ("quickstart", "model.hidden_dim", 0), ("quickstart", "model.embed_dim", 0),
    ("quickstart", "model.init_range", 0.0), ("quickstart", "controller.hidden_dim", 0),
    ("quickstart", "controller.lr", -1e-3), ("quickstart", "controller.baseline_decay", 1.0),
    ("quickstart", "controller.tanh_c", 0.0), ("quickstart", "shared.lr_decay", 0.0),
    ("quickstart", "data.planted.hidden_dim", 0), ("quickstart", "search.derive_samples", 0),
    ("cifar10_macro", "shared.momentum", 1.0), ("cifar10_macro", "data.synthetic.size", 0),
    ("cifar10_micro", "model.aux_weight", -0.4), ("cifar10_micro", "model.num_nodes", 0),
    ("ptb_final", "train.weight_decay", -1e-6), ("nasbench201", "controller.num_samples", 0),
    ("quickstart", "parallel.distributed", True), ("quickstart", "parallel.process_id", -2),
    ("quickstart", "parallel.timeout_s", 0), ("quickstart", "report.train_alone_schedule", "cos"),
    # not finite: an inf rate passed every range check and made every step non-finite (the
    # final training stopped only at its first checkpoint, the optimizer state holding inf)
    ("ptb_final", "train.lr", float("inf")), ("cifar10_macro_final", "train.lr", float("inf")),
    ("cifar10_micro", "shared.lr", float("inf")), ("quickstart", "shared.l2", float("nan")),
    # beyond a 64-bit integer: an OverflowError traceback at the first key or the data order
    ("quickstart", "seed", 10 ** 20), ("ptb_final", "seed", -2 ** 64),
    ("quickstart", "data.planted.seed", 2 ** 70),
    # negative: NumPy's generators take no negative seed (a ValueError traceback from the final
    # training's variable windows, the image search's data order)
    ("ptb_final", "seed", -1), ("cifar10_micro", "seed", -1),
    ("cifar10_micro_final", "data.synthetic.seed", -1),
    # the image training's length as the recurrent training's: below 2**31 epochs
    ("cifar10_micro_final", "train.epochs", 2 ** 31), ("cifar10_macro_final", "train.log_every",
                                                        0),
    # a window wider than int32 (an allocation of 14.6 TiB)
    ("ptb_final", "data.max_bptt", 10 ** 12),
    # a count beyond int32: OverflowError tracebacks from JAX (the controller's init, a jitted
    # argument, the teacher's random weights) or a corpus generated for ever
    ("quickstart", "controller.hidden_dim", 10 ** 12), ("quickstart", "controller.num_samples",
                                                          2 ** 31),
    ("quickstart", "data.planted.hidden_dim", 2 ** 31), ("quickstart", "data.planted.train_tokens",
                                                         10 ** 12),
    # no sentence would end: the generator's stream length 4 * 1e30 steps, never finished
    ("quickstart", "data.planted.mean_sentence_length", 1e30),
    # a teacher of 2**31 - 1 nodes: a hang, making its edges' weights (the space's 48 at most)
    ("quickstart", "data.planted.num_nodes", 49), ("quickstart", "data.planted.num_nodes", 1),
    # image networks past four times the paper's final one (2**31 - 1: hangs making the weights)
    ("cifar10_micro", "model.num_layers", 61), ("cifar10_micro", "model.num_nodes", 21),
    ("cifar10_micro_final", "model.num_layers", 2 ** 31 - 1), ("cifar10_macro", "model.num_layers",
                                                               97),
    ("cifar10_macro_final", "model.num_layers", 2 ** 31 - 1),
])
def test_impossible_values_are_rejected_before_any_work(config_name, dotted, value):
  """Every one of these used to reach the data, the compiler or the checkpointer first."""
  module = __import__(f"enas_jax.configs.{config_name}", fromlist=["get_config"])
  config = module.get_config("tiny")
  *sections, field = dotted.split(".")
  target = config
  for section in sections:
    target = target[section]
  target[field] = value
  convert = run_config.final_config if "final" in config_name else run_config.search_config
  with pytest.raises(UserError, match=rf"`{dotted}`"):
    convert(config).validate()
