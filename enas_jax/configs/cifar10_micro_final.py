"""Final training of micro-space cells on CIFAR-10 (the paper's best published setting: 15 normal
cells + 2 reduction cells, 36 filters, auxiliary head, drop-path, cutout 16).

Command:
  python -m enas_jax.train --config=configs/cifar10_micro_final.py \
      --config.arch=workdirs/cifar10_micro --config.data.data_dir=DIR
  (--config.arch: the search's workdir, its best_arch.json, or the authors' micro string of 40
  integers: the normal cell then the reduction cell. The default is the authors' published cells.)

Expected runtime: 630 epochs over 50,000 images; not yet measured here (see experiments/results/
once a GPU run is recorded). Expected result (paper): 2.89% test error with cutout (3.54% without),
4.6M parameters; the network built here from the authors' cells has 3.89M parameters without the
auxiliary head (4.39M with it).

Presets:
  :cpu   3 + 2 cells of 8 filters on synthetic 16x16 images, 3 epochs, with the authors' cells;
         about 2.5 minutes on 2 CPU cores (a pipeline check);
  :tiny  seconds after compiling, for the tests.
"""
import ml_collections

from enas_jax.configs import cifar10_macro_final, cifar10_micro

# The cells of the authors' cifar10_micro_final.sh (the paper's Figure 7): normal, then reduction.
AUTHORS_CELLS = ("0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1 "
                 "1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1")


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = cifar10_macro_final.get_config()  # optimiser and checkpoints as there, except:
  search = cifar10_micro.get_config()
  config.space = "micro"  # the search space the cells come from
  config.arch = AUTHORS_CELLS  # the cells: search workdir, best_arch.json, or the authors' string

  config.data.batch_size = 144  # training batch size (the authors' micro final)
  config.data.cutout = 16  # cutout squares of 16 pixels (the 2.89% result)

  config.model = search.model  # as in the search (see configs/cifar10_micro.py), except:
  config.model.num_layers = 15  # normal cells in all (5 per stage)
  config.model.filters = 36  # channels of the first stage
  config.model.keep_prob = 0.8  # dropout keep probability before the classifier
  config.model.drop_path_keep_prob = 0.6  # drop-path, scheduled by depth and training progress
  config.model.aux_head = True  # auxiliary classifier after the last reduction
  config.model.aux_weight = 0.4  # its loss weight

  config.train.lr_min = 0.0001  # cosine learning rate: minimum (max 0.05, 10 * 2^k epochs)
  config.train.l2 = 2e-4  # L2 weight on the sum of squared weights

  if preset in ("cpu", "tiny"):
    small = cifar10_micro.get_config(preset)
    config.data = small.data  # synthetic images
    config.model.num_layers = small.model.num_layers  # as in the small search
    config.model.num_nodes = small.model.num_nodes  # as in the small search
    config.model.filters = small.model.filters  # as in the small search
    config.model.stem_multiplier = small.model.stem_multiplier  # as in the small search
    config.model.keep_prob = 0.9  # light dropout for a short run
    config.train.lr_t0 = 3  # one cosine cycle over the run
    config.train.log_every = 10  # steps between records
  if preset == "cpu":
    config.data.cutout = 8  # cutout at half the image side, as 16 of 32
    config.train.epochs = 3  # three passes over 1,744 synthetic images
  elif preset == "tiny":
    config.arch = "0 0 1 4 2 1 0 2 1 3 0 1 2 4 1 0"  # two nodes per cell
    config.data.cutout = 4  # exercise cutout
    config.train.epochs = 2  # two passes over 64 images
  elif preset:
    raise ValueError(f"unknown preset {preset!r} for configs/cifar10_micro_final.py; presets: "
                     f"cpu, tiny")
  return config
