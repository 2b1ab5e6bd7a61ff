"""ENAS micro (cell) search on CIFAR-10 (the paper's Section 3.3 settings, the authors' micro
search script): a normal and a reduction cell of 5 nodes, searched in a network of 6 normal cells
and 2 reduction cells with 20 filters.

Command:
  python -m enas_jax.search --config=configs/cifar10_micro.py --config.data.data_dir=DIR
  (DIR: a tensorflow-datasets directory holding cifar10; see the README for preparing it offline)

Expected runtime: 150 epochs of one pass over 45,000 images plus 30 controller updates of 10
sampled cell pairs per epoch; the paper reports 0.45 GPU days on a GTX 1080Ti. Not yet measured
here on a GPU (see experiments/results/cifar10_micro_cpu.md for the CPU pipeline check).
Expected result (paper): the searched cells, trained from scratch at 15 cells and 36 filters
(configs/cifar10_micro_final.py), reach 3.54% test error, 2.89% with cutout.

Presets:
  :cpu   synthetic 16x16 images, 3 normal + 2 reduction cells of 5 nodes and 8 filters, 3 epochs:
         a pipeline check, about 4.5 minutes on 2 CPU cores (not a result);
  :tiny  seconds after compiling, for the tests.
"""
import ml_collections

from enas_jax.configs import cifar10_macro


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = cifar10_macro.get_config()  # data, optimiser, loop and checkpoints as there, except:
  config.space = "micro"  # the search space: a normal and a reduction cell

  config.data.batch_size = 160  # training and reward batch size (the authors' micro search)

  config.model = ml_collections.ConfigDict()  # the network the cells are searched in
  config.model.num_layers = 6  # normal cells in all; 2 reduction cells are added (L/3, 2L/3+1)
  config.model.num_nodes = 5  # computed nodes per cell (B)
  config.model.filters = 20  # channels of the first stage (doubled at each reduction)
  config.model.stem_multiplier = 3  # the stem has stem_multiplier * filters channels
  config.model.keep_prob = 0.9  # dropout keep probability before the classifier
  config.model.drop_path_keep_prob = 1.0  # drop-path off: the authors' search never applies it
  config.model.aux_head = True  # auxiliary classifier after the last reduction (as the authors)
  config.model.aux_weight = 0.4  # its loss weight

  config.shared.l2 = 1e-4  # L2 weight on the sum of squared weights (the authors' micro search)

  config.controller.temperature = 1.0  # no temperature (the authors' micro script sets none)
  config.controller.tanh_c = 1.10  # pointer logits squashed to 1.10 * tanh(.)
  config.controller.op_tanh_reduce = 2.5  # op logits squashed to (1.10 / 2.5) * tanh(.)
  config.controller.lr = 0.0035  # Adam learning rate
  config.controller.num_samples = 10  # cell pairs per update (the authors' num_aggregate)

  config.search.epochs = 150  # 10 + 20 + 40 + 80: whole cosine cycles
  config.search.controller_steps = 30  # controller updates per epoch

  if preset == "cpu":  # a pipeline check on synthetic images, a few minutes on 2 CPU cores
    small = cifar10_macro.get_config("cpu")
    config.data = small.data  # synthetic 16x16 images, batches of 32
    config.model.num_layers = 3  # cells: normal, reduction, normal, reduction, normal
    config.model.filters = 8  # narrow cells
    config.controller.hidden_dim = 32  # small controller
    config.controller.num_samples = 4  # cell pairs per update
    config.search = small.search  # 3 epochs of 30 shared steps and 10 controller updates
  elif preset == "tiny":  # seconds after compiling, for tests of the pipeline itself
    small = cifar10_macro.get_config("tiny")
    config.data = small.data  # 8x8 synthetic images, batches of 16
    config.model.num_layers = 1  # cells: reduction, reduction, normal
    config.model.num_nodes = 2  # two computed nodes per cell
    config.model.filters = 4  # narrow cells
    config.model.stem_multiplier = 1  # narrow stem
    config.model.drop_path_keep_prob = 0.8  # exercise drop-path in the shared cells
    config.controller.hidden_dim = 16  # small controller
    config.controller.num_samples = 2  # cell pairs per update
    config.search = small.search  # 2 epochs of 4 shared steps and 2 controller updates
    config.report = small.report  # 4 random cells, 2 steps of training alone
  elif preset:
    raise ValueError(f"unknown preset {preset!r} for configs/cifar10_micro.py; presets: cpu, "
                     f"tiny")
  return config
