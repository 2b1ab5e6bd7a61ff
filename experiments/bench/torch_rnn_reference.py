"""A plain PyTorch eager reference of the ENAS shared recurrent step, for the speed comparison in
`rnn_throughput.py` (install with `pip install -e ".[bench]"`: the CPU build of torch 2.13.0).

The same model and the same step as `enas_jax.spaces.rnn` + `enas_jax.tasks.language.steps` with the
paper's regularisation (`configs/ptb_rnn.py`): embedding with word dropout (whole rows), locked
input dropout, node 0 reading x_t W_x + h_{t-1} W_h, nodes k >= 1 reading their chosen node
through their (node, prev) matrix, highway updates, DropConnect on the recurrent matrices (one mask
per step), cell output the mean of the loose ends, each h_t clipped to an L2 norm, locked output
dropout, tied softmax with bias, mean cross-entropy plus L2 on every weight, global-norm gradient
clipping and SGD. It is written the way an eager implementation is written (ENAS-pytorch's
style): Python loops over time steps and nodes, the chosen matrices picked by Python indexing,
one branch per activation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def edge_key(node: int, prev: int) -> str:
  return f"node{node}_prev{prev}"


class SharedRNN(torch.nn.Module):
  """The shared weights: embedding (tied softmax), node 0's two matrices, one per edge."""

  def __init__(self, vocab: int, hidden: int, num_nodes: int, init_range: float = 0.1):
    super().__init__()
    u = lambda *shape: torch.nn.Parameter(torch.empty(*shape).uniform_(-init_range, init_range))
    self.num_nodes, self.hidden = num_nodes, hidden
    self.embedding = u(vocab, hidden)
    self.w_x = u(hidden, 2 * hidden)
    self.w_h = u(hidden, 2 * hidden)
    self.edges = torch.nn.ParameterDict(
        {edge_key(k, p): u(hidden, 2 * hidden) for k in range(1, num_nodes) for p in range(k)})
    self.softmax_bias = torch.nn.Parameter(torch.zeros(vocab))

  def forward(self, tokens_BxT: torch.Tensor, h_BxH: torch.Tensor, prev: list[int],
              act: list[int], rates: dict[str, float], clip: float
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [B, T, V], last h); `rates` are the dropout rates (all 0: no dropout)."""
    batch, steps = tokens_BxT.shape
    hidden = self.hidden

    def mask(rate: float, *shape: int) -> torch.Tensor | float:
      if rate <= 0:
        return 1.0
      return torch.bernoulli(torch.full(shape, 1.0 - rate)) / (1.0 - rate)

    emb_VxH = self.embedding * mask(rates["embedding"], self.embedding.shape[0], 1)
    x_TxBxH = F.embedding(tokens_BxT.t(), emb_VxH) * mask(rates["input"], 1, batch, hidden)
    w_h = self.w_h * mask(rates["dropconnect"], hidden, 2 * hidden)
    w_edges = [self.edges[edge_key(k, prev[k])] * mask(rates["dropconnect"], hidden, 2 * hidden)
               for k in range(1, self.num_nodes)]
    loose = [k for k in range(self.num_nodes) if k not in set(prev[1:])]
    xw_TxBx2H = x_TxBxH @ self.w_x

    outputs = []
    for t in range(steps):
      nodes = [_highway(xw_TxBx2H[t] + h_BxH @ w_h, h_BxH, act[0], hidden)]
      for k in range(1, self.num_nodes):
        h_in = nodes[prev[k]]
        nodes.append(_highway(h_in @ w_edges[k - 1], h_in, act[k], hidden))
      h_BxH = torch.stack([nodes[k] for k in loose]).mean(0)
      if clip > 0:
        norm = h_BxH.norm(dim=-1, keepdim=True)
        h_BxH = h_BxH * torch.clamp(clip / norm.clamp_min(1e-12), max=1.0)
      outputs.append(h_BxH)
    out_TxBxH = torch.stack(outputs) * mask(rates["output"], 1, batch, hidden)
    logits_BxTxV = (out_TxBxH @ self.embedding.t() + self.softmax_bias).transpose(0, 1)
    return logits_BxTxV, h_BxH


def _highway(z_Bx2H: torch.Tensor, h_in: torch.Tensor, act: int, hidden: int) -> torch.Tensor:
  c = torch.sigmoid(z_Bx2H[:, :hidden])
  z = z_Bx2H[:, hidden:]
  if act == 0:
    f = torch.tanh(z)
  elif act == 1:
    f = torch.relu(z)
  elif act == 2:
    f = z
  else:
    f = torch.sigmoid(z)
  return h_in + c * (f - h_in)


class Trainer:
  """One shared-weight training step: loss, backward, clip, SGD (the hidden state carried)."""

  def __init__(self, model: SharedRNN, lr: float, grad_clip: float, l2: float,
               rates: dict[str, float], hidden_clip: float):
    self.model, self.grad_clip, self.l2 = model, grad_clip, l2
    self.rates, self.hidden_clip = rates, hidden_clip
    self.optimizer = torch.optim.SGD(model.parameters(), lr=lr)

  def loss(self, inputs_BxT: torch.Tensor, targets_BxT: torch.Tensor, h_BxH: torch.Tensor,
           prev: list[int], act: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    logits, h_last = self.model(inputs_BxT, h_BxH, prev, act, self.rates, self.hidden_clip)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets_BxT.reshape(-1))
    l2 = sum(torch.sum(p * p) for p in self.model.parameters())
    return nll + self.l2 * l2, nll, h_last

  def step(self, inputs_BxT: torch.Tensor, targets_BxT: torch.Tensor, h_BxH: torch.Tensor,
           prev: list[int], act: list[int]) -> tuple[float, torch.Tensor, float]:
    """(loss, next hidden state, gradient norm before clipping)."""
    self.optimizer.zero_grad(set_to_none=True)
    loss, _, h_last = self.loss(inputs_BxT, targets_BxT, h_BxH, prev, act)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
    self.optimizer.step()
    return float(loss.detach()), h_last.detach(), float(norm)
