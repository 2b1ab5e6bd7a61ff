"""ENAS recurrent-cell search on Penn Treebank, with the paper's settings (Pham et al., 2018).

One departure, measured (experiments/results/science.md): each (node, prev) key of the shared
weights holds one copy of its matrices per activation (`model.activation_weights="all"`); the
paper's one matrix per key (`--config.model.activation_weights=shared`) ranks cells worse
(Kendall tau 0.30 against 0.45 on the planted benchmark, 0.13 against 0.37 on PTB at CPU scale;
science.md, section 4).
The searched cell and its final training are unaffected (one matrix per edge).

Command:
  python -m enas_jax.search --config=configs/ptb_rnn.py --workdir=workdirs/ptb_search \
      --config.data.dir=/path/to/ptb          # holds ptb.train.txt (or train.txt), valid, test
  CPU preset (hidden 200, 10 epochs of 100 shared steps):
  python -m enas_jax.search --config=configs/ptb_rnn.py:cpu --workdir=workdirs/ptb_cpu \
      --config.data.dir=/path/to/ptb

Expected runtime: the full 150-epoch search is GPU work (the paper: about 10 GPU hours on a
GTX 1080Ti). The `cpu` preset: estimated under an hour on 2 CPU cores, from the measured
shared-step time (experiments/results/rnn_dynamic_overhead.md); not measured end to end (no PTB
training split on the CI machine).
Expected result: the paper's searched cell, trained from scratch, reached 55.8 test perplexity
(56.3 after the authors' correction). During search, validation perplexity of derived cells under
the shared weights is far higher (ENAS-pytorch reports 80-100); the search's product is the cell,
judged only after final training.
"""
import ml_collections

from enas_jax.configs import parallel_section, report_section


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0  # one base PRNG key per run; every stream is derived from it
  config.deterministic = False  # GPU: XLA's deterministic ops (bit-exact reruns, slower)

  config.data = ml_collections.ConfigDict()  # the corpus and how it is batched
  config.data.source = "directory"  # "directory" (Mikolov layout) or "planted" (synthetic)
  config.data.dir = "data/ptb"  # corpus directory with train.txt/valid.txt/test.txt
  config.data.batch_size = 64  # paper: 64
  config.data.eval_batch_size = 10  # batch size of full-validation evaluation
  config.data.test_batch_size = 1  # standard test protocol: batch 1, state carried over the split
  config.data.bptt = 35  # truncated-BPTT length; paper: 35
  config.data.variable_bptt = False  # AWD-LSTM's variable window lengths
  config.data.max_bptt = 55  # padded window width when variable_bptt (longer windows are cut)
  config.data.reward_windows = 1  # bptt-long validation windows per controller reward and per
  # derive score, read as one (the paper: 1; more: a less noisy reward, slower steps)
  config.data.planted = ml_collections.ConfigDict()  # only read when source == "planted"
  config.data.planted.seed = 0  # the teacher's weights, architecture and text
  config.data.planted.vocab_size = 100  # words, <eos> included
  config.data.planted.num_nodes = 6  # nodes of the planted teacher cell
  config.data.planted.hidden_dim = 32  # the teacher's hidden size
  config.data.planted.arch = "0 0 0 0 2 1 1 0 3 3 1"  # teacher cell (authors' string); "": random
  config.data.planted.train_tokens = 200_000  # about this many tokens per split, whole sentences
  config.data.planted.valid_tokens = 20_000  # validation split size (rewards, derive)
  config.data.planted.test_tokens = 20_000  # test split size
  config.data.planted.weight_scale = 1.5  # teacher cell weights ~ U(+-scale*sqrt(3/H))
  config.data.planted.logit_scale = 3.0  # logits = scale * standardized(h) @ W; larger: peakier
  config.data.planted.readout = "standardize"  # logits from "standardize"d or "linear" state
  config.data.planted.mean_sentence_length = 25.0  # <eos> has probability 1/this at every step
  config.data.planted.num_streams = 200  # sentences generated in parallel
  config.data.planted.reset_at_eos = True  # the teacher's state zeroed after each <eos>

  config.model = ml_collections.ConfigDict()  # the shared-weights model and its regularisation
  config.model.num_nodes = 12  # N, nodes per cell; paper: 12
  config.model.embed_dim = 1000  # paper: 1000
  config.model.hidden_dim = 1000  # paper: 1000
  config.model.output = "loose_ends"  # "loose_ends" (paper), "all_nodes", "nodes_after_first"
  config.model.tie_weights = True  # softmax reuses the embedding; paper: tied
  config.model.init_range = 0.1  # weights ~ U(-0.1, 0.1), as in ENAS-pytorch
  config.model.embedding_dropout = 0.1  # word dropout on embedding rows; ENAS-pytorch: 0.1
  config.model.input_dropout = 0.65  # locked dropout on the cell input; ENAS-pytorch: 0.65
  config.model.output_dropout = 0.4  # locked dropout on the cell output; ENAS-pytorch: 0.4
  config.model.dropconnect = 0.5  # DropConnect on recurrent weights; ENAS-pytorch: 0.5
  config.model.dropconnect_on = "all"  # "all" chosen matrices (paper), "node0" (ENAS-pytorch)
  config.model.cell_input_dropout = 0.0  # a second locked mask on the cell input (enas_lm drop_x)
  config.model.between_node_dropout = 0.0  # mask on every node's input (enas_lm drop_l)
  config.model.hidden_norm_clip = 25.0  # clip each h_t to this L2 norm (0: off); ENAS-pytorch: 25
  config.model.activation_weights = "all"  # one copy of each (node, prev) key's matrices per
  # activation ("all"; "node0": node 0's only), so no matrix serves tanh and identity alike;
  # "shared": the paper's one matrix per key. "all" ranks cells better (Kendall tau 0.45 +- 0.04
  # against 0.30 +- 0.14 over 5 planted searches, 0.37 against 0.13 on PTB: science.md, sec. 4)
  config.model.scan_unroll = 1  # time steps unrolled per scan iteration (speed only)
  config.model.activation_dispatch = "auto"  # "switch": lax.switch runs only the chosen
  # activation; "select": all four computed, the chosen kept, no branch in the time loop; "auto":
  # switch on a CPU, select elsewhere (1.6x faster PTB search epoch on an H200; speed only)
  config.model.matmul_dtype = "float32"  # "bfloat16": the products' operands rounded to
  # bfloat16 and summed in float32 (faster on bfloat16 hardware; weights stay float32)

  config.shared = ml_collections.ConfigDict()  # training of the shared weights
  config.shared.lr = 20.0  # SGD learning rate of the shared weights; paper: 20
  config.shared.grad_clip = 0.25  # global-norm gradient clip (0: off); paper: 0.25
  config.shared.lr_decay = 0.96  # multiply the lr by this every epoch...; paper: 0.96
  config.shared.lr_decay_start_epoch = 15  # ...from this epoch on; paper: 15
  config.shared.l2 = 1e-7  # L2 weight penalty added to the loss; paper: 1e-7
  config.shared.l2_on = "all"  # the L2 term over "all" shared weights (the authors' TF code) or
  # the "used" ones, those of the step's cell (ENAS-pytorch: torch's SGD decays what got a gradient)
  config.shared.cells_per_step = 1  # cells each shared step trains, the batch's rows split evenly
  # among them (same compute); 1: the paper's one cell per step

  config.controller = ml_collections.ConfigDict()  # the policy that samples cells and how it learns
  config.controller.kind = "enas"  # "enas" (trained LSTM policy) or "random" (uniform baseline)
  config.controller.hidden_dim = 100  # LSTM units; paper: 100
  config.controller.temperature = 5.0  # logits divided by this; ENAS: 5.0
  config.controller.temperature_end = -1.0  # schedule: the temperature moves linearly to this...
  config.controller.temperature_schedule_steps = 0  # ...over this many controller steps (0: off;
  # the shared steps sample at the controller's current step's temperature too)
  config.controller.tanh_c = 2.5  # then squashed to tanh_c * tanh(logits); ENAS: 2.5
  config.controller.attention = True  # prev-node choices attend over earlier controller states
  config.controller.lr = 3.5e-4  # Adam learning rate; paper: 3.5e-4
  config.controller.grad_clip = 0.0  # global-norm clip of controller gradients (0: off)
  config.controller.entropy_weight = 1e-4  # entropy bonus in the reward; paper: 1e-4
  config.controller.entropy_weight_end = -1.0  # schedule: the weight moves linearly to this...
  config.controller.entropy_schedule_steps = 0  # ...over this many controller steps (0: off)
  config.controller.baseline_decay = 0.95  # moving-average reward baseline; paper: 0.95
  config.controller.reward_c = 80.0  # reward = reward_c / valid_ppl; paper: 80
  config.controller.reward = "inverse_ppl"  # "inverse_ppl" (c/ppl) or "inverse_ppl_squared"
  config.controller.locality_prior = 0.0  # minus this x (node - prev)^2 on each pointer's
  # squashed scores: near inputs likelier (the corrected ENAS LM code: 1/6; the paper: 0)
  config.controller.num_samples = 1  # architectures averaged per controller update

  config.search = ml_collections.ConfigDict()  # the alternating search loop
  config.search.epochs = 150  # paper: 150
  config.search.shared_steps = 0  # shared-weight steps per epoch; 0: one pass over train
  config.search.controller_steps = 2000  # controller updates per epoch; ENAS-pytorch: 2000
  config.search.warmup_epochs = 0  # first epochs: uniform cells train the shared weights, no
  # controller steps (0: the paper, the controller learns from the first epoch)
  config.search.fair_every = 0  # every this many shared steps train a cell of the fair
  # stream (each decision's choices in turn, shuffled) instead of the controller's (0: never)
  config.search.derive_every = 1  # derive the best architecture every this many epochs
  config.search.derive_samples = 100  # architectures sampled and scored when deriving
  config.search.finetune_steps = 0  # the answer's pick: each derived cell rescored after this
  # many shared steps on it alone from the final weights (0: the weights as they are, the paper)
  config.search.final_candidates = 0  # the answer's pick also among this many best distinct
  # cells of one more derive from the final controller (0: only each epoch's derived cell, paper)
  config.search.screen_steps = 32  # the answer's screen: each candidate, best-scored first,
  # trained alone from fresh weights for this many steps; one whose training perplexity over the
  # last half is above a uniform guess's is passed over (0: none, the paper; run/screen.py;
  # experiments/results/science.md, section 19: on PTB it replaced the one answer of 20 that
  # cannot be trained alone, and passed over no other)
  config.search.log_every = 50  # steps between metric records
  config.search.on_divergence = "skip"  # NaN/Inf loss: "skip" the step, "rollback", or "stop"
  config.search.rollback_lr_factor = 0.5  # rollback: scale the shared lr by this each time
  config.search.max_rollbacks = 3  # rollback: then stop

  config.checkpoint = ml_collections.ConfigDict()  # orbax checkpoints in <workdir>/checkpoints
  config.checkpoint.every_steps = 500  # save every this many steps (0: at epoch ends only)
  config.checkpoint.keep = 3  # keep the newest this many

  config.parallel = parallel_section()  # devices: one, or data-parallel over all (configs/__init__)
  config.report = report_section()  # what the search report measures (configs/__init__)

  if preset == "cpu":  # a small search that fits 2 CPU cores
    config.model.embed_dim = 200  # 1/5 of the paper's width
    config.model.hidden_dim = 200  # equal to embed_dim (tied softmax)
    config.data.batch_size = 32  # half the paper's batch
    config.search.epochs = 10  # instead of 150
    config.search.shared_steps = 100  # shared steps per epoch instead of a full pass
    config.search.controller_steps = 100  # controller updates per epoch instead of 2000
    config.search.derive_samples = 20  # cells scored when deriving instead of 100
    config.shared.lr_decay_start_epoch = 5  # decay sooner in the shorter run
  elif preset:
    raise ValueError(f"unknown preset {preset!r} for configs/ptb_rnn.py; presets: cpu")
  return config
