r"""Tokens/s of the shared recurrent training step: ours against the real ENAS-pytorch
(carpedm20/ENAS-pytorch at commit 0468b8c: its own `models/shared_rnn.py`, `Trainer.get_loss`,
`_apply_penalties` and optimizer, with its `config.py` defaults), in one process, same shapes,
same threads, the same sampled cell.

  git clone https://github.com/carpedm20/ENAS-pytorch /tmp/ENAS-pytorch
  git -C /tmp/ENAS-pytorch checkout 0468b8c
  pip install -e ".[bench]"                      # the CPU build of torch 2.13.0
  python experiments/bench/enas_pytorch_anchor.py --enas_pytorch_dir=/tmp/ENAS-pytorch

Nothing of ENAS-pytorch is copied here: its modules are imported from the clone. Its picture and
logging helpers import pygraphviz, OpenCV and an old TensorBoard writer, which a training step
never calls; when they are missing, empty stand-ins are put in their place (printed).

Its step, as `Trainer.train_shared` runs it: `get_loss` (forward with DropConnect on node 0's two
recurrent matrices, locked and embedding dropout, hidden-norm clip 25, batch norm of the cell
output, tied softmax; cross-entropy), `_apply_penalties` (its defaults), backward,
`clip_grad_norm` 0.25, SGD lr 20 with weight decay 1e-7 on the parameters that got a gradient.
Ours, two ways: with the paper's regularisation (DropConnect on every chosen recurrent matrix,
L2 1e-7 on every shared weight: our default), and as close as our options get to what
ENAS-pytorch computes (`model.dropconnect_on="node0"`: DropConnect 0.5 on node 0's matrices
only, as theirs; `shared.l2_on="used"` with L2 5e-8: the weights the step's cell uses, each
decayed by 1e-7 times itself, as their SGD's weight decay; ours adds it to the gradient before
the clip, theirs after). Timing: alternating blocks (ours paper, ours close, theirs), each opened by
an untimed step, 1 s pause between blocks; median of `--rounds` x `--steps` steps each.

`--bfloat16` adds mixed precision on both sides: ours with `model.matmul_dtype="bfloat16"` (the
products' operands rounded to bfloat16, summed in float32; weights and gradients float32) and
theirs with its forward pass under `torch.autocast("cpu", torch.bfloat16)` (its products and
what autocast's list puts in bfloat16; backward and SGD as before). Neither is either side's
default; on a CPU with bfloat16 matrix units (AMX) both run their products there.
"""
from __future__ import annotations

import argparse
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine_info  # noqa: E402
import needs_torch  # noqa: E402
needs_torch.check()  # without torch: one line saying how to install it, not a traceback
import torch  # noqa: E402
from enas_jax.io import memory  # noqa: E402
from rnn_dynamic_overhead import add_ptb_shape_args  # noqa: E402
from ours_step import PAPER_RATES, Ours, jax_batch  # noqa: E402
from rnn_throughput import arch_lists, matmul_peak, step_flops, time_blocks  # noqa: E402

COMMIT = "0468b8c"
_STAND_INS = {"pygraphviz": {}, "cv2": {"imread": None, "imresize": None, "imwrite": None},
              "tensorboard": {"TensorBoard": object}}


def import_enas_pytorch(path: str) -> types.SimpleNamespace:
  """Its `config`, `models.shared_rnn`, `models.controller` and `trainer` modules."""
  if not os.path.isfile(os.path.join(path, "models", "shared_rnn.py")):
    sys.exit(f"error: {path} is not a clone of carpedm20/ENAS-pytorch (no models/shared_rnn.py)."
             f" Clone it and check out {COMMIT} (see this script's docstring).")
  sys.path.insert(0, os.path.abspath(path))
  for name, attrs in _STAND_INS.items():
    try:
      if name == "tensorboard":  # theirs is a file in the clone that needs an old tensorboardX
        __import__("tensorboard").TensorBoard  # noqa: B018
      else:
        __import__(name)
    except Exception:  # missing, or its import fails: an empty stand-in
      module = types.ModuleType(name)
      for attr, value in attrs.items():
        setattr(module, attr, value)
      sys.modules[name] = module
      print(f"# stand-in for {name} (drawing/logging only; never called by a training step)")
  saved_argv, sys.argv = sys.argv, [sys.argv[0]]  # its config parses the command line
  try:
    import config as their_config  # noqa: E402
    import models.controller as their_controller  # noqa: E402
    import models.shared_rnn as their_shared_rnn  # noqa: E402
    import trainer as their_trainer  # noqa: E402
  finally:
    sys.argv = saved_argv
  return types.SimpleNamespace(config=their_config, controller=their_controller,
                               shared_rnn=their_shared_rnn, trainer=their_trainer)


class Theirs:
  """ENAS-pytorch's shared model and its training step, on the CPU."""

  def __init__(self, enas, hidden: int, vocab: int, nodes: int, batch: int, arch,
               autocast: bool = False):
    saved_argv, sys.argv = sys.argv, [sys.argv[0]]  # its defaults, not this script's flags
    try:
      args, _ = enas.config.get_args()
    finally:
      sys.argv = saved_argv
    args.cuda, args.num_gpu = False, 0
    args.shared_hid = args.shared_embed = hidden
    args.num_blocks = nodes
    self.args = args
    corpus = types.SimpleNamespace(num_tokens=vocab)
    torch.manual_seed(0)
    self.model = enas.shared_rnn.RNN(args, corpus)
    self.model.train()
    prev, act = arch_lists(arch)
    names = args.shared_rnn_activations  # ['tanh', 'ReLU', 'identity', 'sigmoid']: our order
    self.dag = enas.controller._construct_dags([prev[1:]], [act], names, nodes)[0]
    # Trainer.get_loss is called as the trainer calls it, on an object holding what it reads.
    self.holder = types.SimpleNamespace(shared=self.model, args=args,
                                        dataset=types.SimpleNamespace(num_tokens=vocab),
                                        ce=torch.nn.CrossEntropyLoss())
    self.get_loss = enas.trainer.Trainer.get_loss
    self.penalties = enas.trainer._apply_penalties
    self.optim = enas.trainer._get_optimizer(args.shared_optim)(
        self.model.parameters(), lr=args.shared_lr, weight_decay=args.shared_l2_reg)
    self.hidden = self.model.init_hidden(batch)
    self.autocast = autocast

  def run(self, inputs_TxB: torch.Tensor, targets_TB: torch.Tensor) -> float:
    """`Trainer.train_shared`'s loop body."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
      loss, hidden, extra_out = self.get_loss(self.holder, inputs_TxB, targets_TB, self.hidden,
                                              self.dag)
    hidden = hidden.detach().float()
    self.hidden = hidden
    loss = loss + self.penalties(extra_out, self.args)
    self.optim.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.args.shared_grad_clip)
    self.optim.step()
    return loss.item()


# Ours as close to ENAS-pytorch's step as the options go: DropConnect on node 0 only, and its
# SGD weight decay of 1e-7 on the parameters that got a gradient (gradient 1e-7 * w = the
# gradient of 5e-8 * w^2 over the weights the cell uses).
CLOSE = {"dropconnect_on": "node0", "l2": 5e-8, "l2_on": "used"}


def time_all(enas, hidden, vocab, nodes, batch, steps, rounds, data,
             bfloat16: bool = False) -> dict[str, float]:
  """Median step seconds of each implementation, in alternating blocks."""
  ours = {"ours (paper regularisation)": Ours(hidden, vocab, nodes, batch, PAPER_RATES),
          "ours (close to ENAS-pytorch)": Ours(hidden, vocab, nodes, batch, PAPER_RATES,
                                               **CLOSE)}
  if bfloat16:
    ours["ours (paper, bfloat16 products)"] = Ours(hidden, vocab, nodes, batch, PAPER_RATES,
                                                   matmul_dtype="bfloat16")
    ours["ours (close, bfloat16 products)"] = Ours(hidden, vocab, nodes, batch, PAPER_RATES,
                                                   matmul_dtype="bfloat16", **CLOSE)
  arch = ours["ours (paper regularisation)"].arch
  theirs = {"ENAS-pytorch": Theirs(enas, hidden, vocab, nodes, batch, arch)}
  if bfloat16:
    theirs["ENAS-pytorch (bfloat16 autocast)"] = Theirs(enas, hidden, vocab, nodes, batch, arch,
                                                        autocast=True)
  jax_batches = [jax_batch(x, y) for x, y in data]
  torch_batches = [(torch.from_numpy(x.T.copy()), torch.from_numpy(y.T.copy()).reshape(-1))
                   for x, y in data]  # theirs is time-major, targets flattened
  runners = {name: (lambda i, o=o: o.run(jax_batches[i % 4], i)) for name, o in ours.items()}
  runners.update({name: (lambda i, t=t: t.run(*torch_batches[i % 4]))
                  for name, t in theirs.items()})
  return time_blocks(runners, steps, rounds)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  add_ptb_shape_args(parser, 3, "timed steps per implementation and round")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--enas_pytorch_dir", required=True,
                      help=f"a clone of carpedm20/ENAS-pytorch at commit {COMMIT}")
  parser.add_argument("--threads", type=int, default=os.cpu_count(),
                      help="torch intra-op threads (XLA's CPU client uses every core)")
  parser.add_argument("--bfloat16", action="store_true",
                      help="also time both with bfloat16 products (mixed precision)")
  parser.add_argument("--keep_freed_memory", type=int, default=0,
                      help="1: glibc keeps freed memory in the process (our commands' opt-in "
                      "--keep_freed_memory; enas_jax/io/memory.py; the whole process, so theirs "
                      "too); 0 (default): glibc's own")
  args = parser.parse_args()
  kept = memory.keep_freed_memory(bool(args.keep_freed_memory))
  enas = import_enas_pytorch(args.enas_pytorch_dir)
  torch.set_num_threads(args.threads)
  print(f"# machine: {machine_info.describe()}; torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads; ENAS-pytorch from {args.enas_pytorch_dir}; freed "
        f"memory {'kept' if kept else 'returned (glibc default)'}")
  peak = max(matmul_peak().values())
  print(f"# matmul peak {peak:.1f} GFLOP/s; batch {args.batch}, bptt {args.bptt}, vocab "
        f"{args.vocab}, {args.nodes} nodes; median of {args.rounds} x {args.steps} steps")
  print(f"{'hidden':>6}  {'implementation':<34} {'s/step':>7} {'tok/s':>7} {'vs theirs':>9} "
        f"{'GFLOP/s':>8} {'of peak':>7}")
  rng = np.random.default_rng(0)
  tokens = args.batch * args.bptt
  for hidden in args.hidden:
    data = [(rng.integers(0, args.vocab, (args.batch, args.bptt)),
             rng.integers(0, args.vocab, (args.batch, args.bptt))) for _ in range(4)]
    seconds = time_all(enas, hidden, args.vocab, args.nodes, args.batch, args.steps,
                       args.rounds, data, args.bfloat16)
    flops = step_flops(hidden, args.nodes, args.vocab, args.batch, args.bptt)
    for name, s in seconds.items():  # every row against theirs in float32 (their default)
      rate = flops / s / 1e9
      print(f"{hidden:>6}  {name:<34} {s:>7.3f} {tokens / s:>7.0f} "
            f"{seconds['ENAS-pytorch'] / s:>8.2f}x {rate:>8.1f} {rate / peak:>7.0%}", flush=True)


if __name__ == "__main__":
  main()
