"""Final training of a recurrent cell on Penn Treebank: the corrected ENAS LM code's recipe.

Command:
  python -m enas_jax.train --config=configs/ptb_final.py --workdir=workdirs/ptb_final \
      --config.data.dir=/path/to/ptb --config.arch=workdirs/ptb   # or a file, string, 'lstm'
  CPU preset (width 200, 30 epochs): --config=configs/ptb_final.py:cpu
  The quickstart's answers trained alone on its planted corpus (nothing to download):
  python -m enas_jax.train --config=configs/ptb_final.py:planted \
      --config.arch=workdirs/quickstart --workdir=workdirs/quickstart_final

Expected runtime: the full recipe is 3000 epochs, GPU days (the authors quote TPU runs); the `cpu`
preset is measured in experiments/ptb/README.md.
The `planted` preset: about 25 s a cell on 2 CPU cores; measured figures and a check of 10 ENAS
answers against 10 random-search answers with it: experiments/results/quickstart.md and
science.md, section 12.
Expected result: the paper's corrected figure for the ENAS cell is 56.3 test perplexity; the
corrected code reports 56.1 +- 0.1 (TPU) and 57.3 +- 0.1 (GPU) over 10 runs, with this recipe and
the default `arch` below. Our own figures are in experiments/ptb/README.md.
"""
import ml_collections

from enas_jax.configs import ptb_rnn, quickstart


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0  # one base PRNG key per run
  config.deterministic = False  # GPU: XLA's deterministic ops (bit-exact reruns, slower)
  config.arch = "enas_lm:0 2 1 0 2 1 2 2 4 0 5 0 3 2 6 2"  # the ENAS PTB cell (enas_lm README)
  config.lstm_hidden_dim = 0  # arch=lstm: width; 0 matches the cell's parameter count

  config.data = ptb_rnn.get_config().data  # the PTB corpus directory and batching
  config.data.batch_size = 64  # enas_lm: 64
  config.data.eval_batch_size = 64  # validation batch; enas_lm: 64
  config.data.test_batch_size = 1  # the standard test protocol: batch 1, state carried
  config.data.bptt = 35  # enas_lm: 35
  config.data.variable_bptt = True  # random window lengths (AWD-LSTM's scheme), lr scaled
  config.data.max_bptt = 55  # longest window kept

  config.model = ml_collections.ConfigDict()  # the fixed cell and its regularisation
  config.model.num_nodes = 9  # follows the arch (the default cell has 9 nodes)
  config.model.embed_dim = 800  # enas_lm: 800
  config.model.hidden_dim = 800  # enas_lm: 800 (tied softmax)
  config.model.output = "nodes_after_first"  # enas_lm averages nodes 1..N-1
  config.model.tie_weights = True  # enas_lm: tied
  config.model.init_range = 0.05  # enas_lm: 0.05
  config.model.embedding_dropout = 0.125  # word dropout on embedding rows; enas_lm drop_e 0.125
  config.model.input_dropout = 0.175  # locked dropout on embeddings; enas_lm drop_i 0.175
  config.model.cell_input_dropout = 0.725  # locked dropout on the cell input; enas_lm drop_x 0.725
  config.model.between_node_dropout = 0.225  # mask on every node's input; enas_lm drop_l 0.225
  config.model.output_dropout = 0.75  # locked dropout on the cell output; enas_lm drop_o 0.75
  config.model.dropconnect = 0.0  # DropConnect on recurrent weights; enas_lm drop_w 0.0
  config.model.hidden_norm_clip = 0.0  # no state norm clipping in enas_lm
  config.model.scan_unroll = 1  # time steps per scan iteration (speed only)
  config.model.activation_dispatch = "auto"  # "switch": lax.switch runs only the chosen
  # activation; "select": all four computed, the chosen kept, no branch in the time loop; "auto":
  # switch on a CPU, select elsewhere (1.6x faster PTB search epoch on an H200; speed only)
  config.model.matmul_dtype = "float32"  # "bfloat16": the products' operands rounded to
  # bfloat16 and summed in float32 (faster on bfloat16 hardware; weights stay float32)

  config.train = ml_collections.ConfigDict()  # SGD, then averaged SGD
  config.train.epochs = 3000  # enas_lm: 3000
  config.train.lr = 20.0  # enas_lm: 20
  config.train.grad_clip = 0.25  # global-norm clip; enas_lm: 0.25
  config.train.weight_decay = 8e-7  # times the sum of squared weights; enas_lm: 8e-7
  config.train.activation_l2 = 0.7  # times the mean square of cell outputs; enas_lm alpha 0.7
  config.train.asgd = True  # switch to the running weight average (NT-ASGD); enas_lm: yes
  config.train.asgd_nonmono = 10  # trigger window in epochs; enas_lm: 10
  config.train.asgd_start_epoch = 0  # 0: that trigger (enas_lm); k: averaging from the end of
  # epoch k whatever the validation figures (a fixed protocol for comparing cells)
  config.train.lr_warmup_steps = 0  # N > 0: step t's update x (t + 1) / N for t < N (a linear
  # learning-rate warm-up; enas_lm: none; the records' lr is the rate it ramps up to)
  config.train.stop_on_divergence = True  # stop after an epoch whose validation perplexity is
  # not finite (such a model did not recover in the runs of science.md, section 22), or in
  # which every training step had a NaN/Inf loss or result and was skipped
  config.train.log_every = 200  # steps between metric records

  config.checkpoint = ml_collections.ConfigDict()  # orbax checkpoints in <workdir>/checkpoints
  config.checkpoint.every_steps = 1000  # also at every epoch end
  config.checkpoint.keep = 3  # newest kept

  if preset == "cpu":  # small scale on 2 CPU cores (experiments/ptb/README.md)
    config.model.embed_dim = 200  # a quarter of the width
    config.model.hidden_dim = 200  # equal to embed_dim
    config.data.batch_size = 32  # half the batch
    config.data.eval_batch_size = 32  # validation batch
    config.train.epochs = 30  # instead of 3000
    config.train.asgd_nonmono = 5  # a shorter trigger window for the shorter run
    config.train.log_every = 50  # records
  elif preset == "tiny":  # seconds, for tests
    config.data.source = "planted"  # generated corpus
    config.data.planted.train_tokens = 3_000  # a few windows
    config.data.planted.valid_tokens = 1_000  # validation split
    config.data.planted.test_tokens = 300  # test split
    config.data.batch_size = 4  # rows
    config.data.eval_batch_size = 4  # rows
    config.data.bptt = 8  # short windows
    config.data.max_bptt = 12  # variable windows up to this
    config.model.embed_dim = 16  # tiny
    config.model.hidden_dim = 16  # equal to embed_dim
    config.train.epochs = 3  # a few epochs
    config.train.asgd_nonmono = 1  # averaging can start within the run
    config.train.log_every = 5  # records
    config.checkpoint.every_steps = 7  # saves inside epochs too
    config.checkpoint.keep = 10  # keep them all in a short run
  elif preset == "planted":  # the quickstart's corpus and model size, the search's regularisation
    search = quickstart.get_config()
    config.data.source = "planted"  # the quickstart's generated corpus (the planted benchmark)
    config.data.planted = search.data.planted  # the same teacher, splits and readout
    config.data.batch_size = search.data.batch_size  # the quickstart's rows
    config.data.eval_batch_size = search.data.eval_batch_size  # validation rows
    config.data.test_batch_size = 1  # the standard protocol: batch 1, state carried
    config.data.variable_bptt = False  # fixed 35-token windows, as the search trains
    config.model.num_nodes = search.model.num_nodes  # the quickstart's cells
    config.model.embed_dim = search.model.embed_dim  # its width
    config.model.hidden_dim = search.model.hidden_dim  # equal to embed_dim
    config.model.output = search.model.output  # the search's cell output (loose ends averaged)
    config.model.tie_weights = search.model.tie_weights  # untied, as the teacher's readout
    config.model.init_range = search.model.init_range  # the search's initialisation
    config.model.embedding_dropout = search.model.embedding_dropout  # the search's dropout...
    config.model.input_dropout = search.model.input_dropout  # ...
    config.model.cell_input_dropout = 0.0  # ...(the search has no second input mask)...
    config.model.between_node_dropout = 0.0  # ...
    config.model.output_dropout = search.model.output_dropout  # ...
    config.model.dropconnect = search.model.dropconnect  # ...and DropConnect
    config.model.hidden_norm_clip = search.model.hidden_norm_clip  # the search's state clip
    config.train.epochs = 15  # passes over the 180,000 training tokens
    config.train.weight_decay = search.shared.l2  # the search's L2
    config.train.activation_l2 = 0.0  # none in the search
    config.train.asgd_start_epoch = 8  # averaging from the end of epoch 8 for every cell: the
    # trigger started it anywhere from epoch 3 to 15 (experiments/results/science.md, sec. 12)
    config.train.log_every = 50  # records
  elif preset:
    raise ValueError(f"unknown preset {preset!r} for configs/ptb_final.py; presets: cpu, tiny, "
                     f"planted")
  return config
