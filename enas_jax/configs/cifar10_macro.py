"""ENAS macro search on CIFAR-10 (the paper's Section 3.3 settings, the authors' macro script).

Command:
  python -m enas_jax.search --config=configs/cifar10_macro.py --config.data.data_dir=DIR
  (DIR: a tensorflow-datasets directory holding cifar10; see the README for preparing it offline)

Expected runtime: 310 epochs of one pass over 45,000 images plus 2,000 controller updates of 20
sampled networks; the paper reports about 0.32 days on a GTX 1080Ti. Not yet measured here.
Expected result (paper): the searched network, trained from scratch at 24 layers and 96 filters
(configs/cifar10_macro_final.py), reaches 4.23% test error (3.87% with more channels).

Presets:
  :cpu   synthetic 16x16 images, 6 layers of 8 filters, 3 epochs: a pipeline check in about a
         minute on 2 CPU cores (not a result);
  :tiny  seconds, for the tests.
"""
import ml_collections

from enas_jax.configs import parallel_section, report_section


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.space = "macro"  # the search space: one operation and a set of skips per layer
  config.seed = 0  # base PRNG seed: weights, sampled architectures, data order, augmentation
  config.deterministic = False  # True: deterministic GPU kernels (bit-identical reruns, slower)

  config.data = ml_collections.ConfigDict()  # the images, their split and augmentation
  config.data.source = "cifar10_batches"  # CIFAR-10's python files | tfds | folder | synthetic
  config.data.name = "cifar10"  # the tfds dataset name (source=tfds)
  config.data.data_dir = ""  # cifar-10-batches-py, the tfds data directory, or the folder root
  config.data.valid_size = 5000  # last training images held out for rewards and deriving
  config.data.batch_size = 128  # training and reward batch size
  config.data.eval_batch_size = 500  # batch size of whole-split evaluations
  config.data.flip = True  # random horizontal flips
  config.data.pad_crop = 4  # zero-pad by this many pixels and crop back at a random offset
  config.data.cutout = 0  # side of the cutout square (0: off; 16 in the best published result)
  config.data.synthetic = ml_collections.ConfigDict()  # only for source=synthetic
  config.data.synthetic.train_images = 2000  # training images (valid_size more made to hold out)
  config.data.synthetic.test_images = 500  # test images
  config.data.synthetic.size = 16  # image side in pixels
  config.data.synthetic.num_classes = 10  # classes
  config.data.synthetic.noise = 0.6  # pixel noise relative to the class pattern
  config.data.synthetic.seed = 0  # the synthetic dataset's own seed

  config.model = ml_collections.ConfigDict()  # the macro network
  config.model.num_layers = 12  # layers in the searched network (L)
  config.model.filters = 36  # channels per layer
  config.model.keep_prob = 0.9  # dropout keep probability before the classifier
  config.model.double_filters_at_reduction = False  # the search keeps the width constant
  config.model.aux_head = False  # auxiliary classifier (final training only)
  config.model.aux_weight = 0.4  # its loss weight

  config.shared = ml_collections.ConfigDict()  # how the shared weights are trained
  config.shared.lr = 0.05  # cosine learning rate: maximum
  config.shared.lr_min = 0.0005  # cosine learning rate: minimum
  config.shared.lr_t0 = 10  # first cosine cycle, epochs
  config.shared.lr_t_mul = 2  # each next cycle is this many times longer
  config.shared.momentum = 0.9  # Nesterov momentum
  config.shared.nesterov = True  # Nesterov (True) or heavy-ball momentum
  config.shared.l2 = 2.5e-4  # L2 weight on the sum of squared weights
  config.shared.grad_clip = 5.0  # global-norm gradient clipping (0: off)

  config.controller = ml_collections.ConfigDict()  # the policy and its REINFORCE training
  config.controller.kind = "enas"  # enas (REINFORCE-trained LSTM) | random (uniform baseline)
  config.controller.hidden_dim = 64  # LSTM width
  config.controller.temperature = 5.0  # logits divided by this before the tanh
  config.controller.tanh_c = 1.5  # logits squashed to tanh_c * tanh(.)
  config.controller.attention = True  # attention over earlier layers (always for skip bits)
  config.controller.lr = 0.001  # Adam learning rate
  config.controller.grad_clip = 0.0  # global-norm clipping (0: off)
  config.controller.entropy_weight = 1e-4  # entropy bonus added to the reward (the reward:
  # accuracy on one validation batch)
  config.controller.baseline_decay = 0.99  # moving-average reward baseline
  config.controller.num_samples = 20  # architectures per update (the authors' num_aggregate)
  config.controller.skip_target = 0.4  # target fraction of skip connections
  config.controller.skip_weight = 0.8  # weight of the KL penalty toward skip_target

  config.search = ml_collections.ConfigDict()  # the alternating loop
  config.search.epochs = 310  # alternations of shared and controller training
  config.search.shared_steps = 0  # shared steps per epoch (0: one pass over the training split)
  config.search.controller_steps = 50  # controller updates per epoch
  config.search.derive_every = 10  # derive an architecture every this many epochs (and at the end)
  config.search.derive_samples = 100  # architectures scored when deriving
  config.search.log_every = 50  # steps between metric records
  config.search.on_divergence = "skip"  # NaN/Inf loss: skip | rollback | stop
  config.search.rollback_lr_factor = 0.5  # learning-rate factor after a rollback
  config.search.max_rollbacks = 3  # rollbacks before the run stops

  config.checkpoint = ml_collections.ConfigDict()  # saving and resuming
  config.checkpoint.every_steps = 500  # save every this many steps (and at each epoch's end)
  config.checkpoint.keep = 3  # checkpoints kept

  config.parallel = parallel_section()  # devices: one, or data-parallel over all (configs/__init__)
  config.report = report_section()  # what the search report measures (configs/__init__)

  if preset == "cpu":  # a pipeline check on synthetic images, about a minute on 2 CPU cores
    config.data.source = "synthetic"  # generated in memory, nothing downloaded
    config.data.valid_size = 256  # held-out images for rewards
    config.data.batch_size = 32  # small batches
    config.data.eval_batch_size = 128  # evaluation batch
    config.model.num_layers = 6  # reductions after layers 1 and 3
    config.model.filters = 8  # narrow layers
    config.controller.hidden_dim = 32  # small controller
    config.controller.num_samples = 4  # architectures per update
    config.search.epochs = 3  # three alternations
    config.search.shared_steps = 30  # shared steps per epoch
    config.search.controller_steps = 10  # controller updates per epoch
    config.search.derive_every = 1  # derive every epoch
    config.search.derive_samples = 16  # architectures scored when deriving
    config.search.log_every = 10  # steps between records
  elif preset == "tiny":  # seconds, for tests of the pipeline itself
    config.data.source = "synthetic"  # generated in memory
    config.data.synthetic.train_images = 96  # training images (valid_size more made to hold out)
    config.data.synthetic.test_images = 16  # test images
    config.data.synthetic.size = 8  # 8x8 images
    config.data.valid_size = 32  # held-out images
    config.data.batch_size = 16  # small batches
    config.data.eval_batch_size = 16  # evaluation batch
    config.model.num_layers = 3  # one reduction, after layer 0
    config.model.filters = 4  # narrow layers
    config.controller.hidden_dim = 16  # small controller
    config.controller.num_samples = 2  # architectures per update
    config.search.epochs = 2  # two alternations
    config.search.shared_steps = 4  # shared steps per epoch
    config.search.controller_steps = 2  # controller updates per epoch
    config.search.derive_every = 1  # derive every epoch
    config.search.derive_samples = 4  # architectures scored when deriving
    config.search.log_every = 2  # steps between records
    config.report.random_cells = 4  # a few cells for the report's checks
    config.report.train_alone_steps = 2  # a glimpse of training alone
  elif preset:
    raise ValueError(f"unknown preset {preset!r} for configs/cifar10_macro.py; presets: cpu, "
                     f"tiny")
  return config
