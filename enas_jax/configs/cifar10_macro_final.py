"""Final training of a macro-space network on CIFAR-10 (the paper's settings: 24 layers, 96
filters, doubled after each reduction as in the authors' fixed-architecture code).

Command:
  python -m enas_jax.train --config=configs/cifar10_macro_final.py \
      --config.arch=workdirs/cifar10_macro --config.data.data_dir=DIR
  (--config.arch: the search's workdir, its best_arch.json, or the authors' macro string of 300
  integers for 24 layers)

Expected runtime: 630 epochs over 50,000 images; not yet measured here (see
experiments/results/ once a GPU run is recorded). Expected result (paper): 4.23% test error for
the searched network, 3.87% with more channels; the paper does not use cutout for its macro result.

Presets:
  :cpu   6 layers of 8 filters on synthetic 16x16 images, 3 epochs, with the network found by the
         cifar10_macro.py:cpu search; about a minute on 2 CPU cores (a pipeline check);
  :tiny  seconds, for the tests.
"""
import ml_collections

from enas_jax.configs import cifar10_macro


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  search = cifar10_macro.get_config()
  config = ml_collections.ConfigDict()
  config.space = "macro"  # the search space the architecture comes from
  config.seed = 0  # base PRNG seed: weights, data order, augmentation, dropout
  config.deterministic = False  # True: deterministic GPU kernels (bit-identical reruns, slower)
  config.arch = ""  # the architecture: search workdir, best_arch.json, or the authors' string

  config.data = search.data  # as in the search (see configs/cifar10_macro.py), except:
  config.data.valid_size = 0  # train on all 50,000 training images (no held-out split)
  config.data.eval_batch_size = 500  # test evaluation batch

  config.model = search.model  # as in the search, except:
  config.model.num_layers = 24  # the final network is twice as deep
  config.model.filters = 96  # and wider
  config.model.double_filters_at_reduction = True  # channels double at each reduction
  config.model.keep_prob = 0.5  # dropout keep probability before the classifier
  config.model.aux_head = False  # auxiliary classifier after the last reduction (off)
  config.model.aux_weight = 0.4  # its loss weight when on

  config.train = ml_collections.ConfigDict()  # the optimiser and the length of the run
  config.train.epochs = 630  # 10 + 20 + 40 + 80 + 160 + 320: whole cosine cycles
  config.train.log_every = 100  # steps between metric records
  config.train.lr = 0.05  # cosine learning rate: maximum
  config.train.lr_min = 0.001  # cosine learning rate: minimum
  config.train.lr_t0 = 10  # first cosine cycle, epochs
  config.train.lr_t_mul = 2  # each next cycle twice as long
  config.train.momentum = 0.9  # Nesterov momentum
  config.train.nesterov = True  # Nesterov (True) or heavy-ball momentum
  config.train.l2 = 2e-4  # L2 weight on the sum of squared weights
  config.train.grad_clip = 5.0  # global-norm gradient clipping (0: off)
  config.train.stop_on_divergence = True  # stop after an epoch in which every training step had
  # a NaN/Inf loss or result and was skipped (the weights did not change in it)

  config.checkpoint = search.checkpoint  # every 500 steps and each epoch's end, keep 3

  if preset in ("cpu", "tiny"):
    small = cifar10_macro.get_config(preset)
    config.data = small.data  # synthetic images
    config.model.num_layers = small.model.num_layers  # as in the small search
    config.model.filters = small.model.filters  # as in the small search
    config.model.keep_prob = 0.9  # light dropout for a short run
    config.model.aux_head = True  # exercise the auxiliary head
    config.train.lr_t0 = 3  # one cosine cycle over the run
    config.train.log_every = 10  # steps between records
  if preset == "cpu":
    config.arch = "4 2 0 2 0 1 4 0 1 1 2 1 1 0 0 3 1 1 0 1 1"  # found by cifar10_macro.py:cpu
    config.train.epochs = 3  # three passes over 2,000 synthetic images
  elif preset == "tiny":
    config.arch = "1 5 1 2 0 1"  # sep3x3; max-pool + skip from 0; conv5x5 + skip from 1
    config.train.epochs = 2  # two passes over 64 images
  elif preset:
    raise ValueError(f"unknown preset {preset!r} for configs/cifar10_macro_final.py; presets: "
                     f"cpu, tiny")
  return config
