"""A one-layer LSTM language model with the ENAS model's interface and regularisation, sized to
a given parameter budget: the baseline `python -m enas_jax.train --config.arch=lstm` trains.

Interface as `RNNLanguageModel`: `__call__(tokens_BxT, state_Bx2H, arch=None, valid_T=None,
train=...) -> (logits_BxTxV, state)`, the carried state being [h, c] side by side. Dropouts map
onto the LSTM as AWD-LSTM applies them: word dropout on embedding rows, locked dropout on the
input (`input_dropout`, then `cell_input_dropout`) and output, DropConnect on the hidden-to-hidden
matrix (`dropconnect`), and a locked mask on h_{t-1} (`between_node_dropout`).
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from enas_jax.spaces.rnn.model import RNNModelConfig, dropout_mask, sow_activation_sq


def lstm_param_count(vocab_size: int, hidden_dim: int) -> int:
  """Tied embedding/softmax V*H, softmax bias V, input and recurrent matrices 2 * H*4H, bias 4H."""
  return vocab_size * hidden_dim + vocab_size + 8 * hidden_dim * hidden_dim + 4 * hidden_dim


def hidden_for_budget(vocab_size: int, budget: int) -> int:
  """The LSTM width whose parameter count is closest to `budget`."""
  a, b, c = 8.0, vocab_size + 4.0, vocab_size - budget
  guess = max(1, int((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)))
  candidates = [h for h in (guess - 1, guess, guess + 1, guess + 2) if h >= 1]
  return min(candidates, key=lambda h: abs(lstm_param_count(vocab_size, h) - budget))


class LSTMLanguageModel(nn.Module):
  """The LSTM baseline; `hidden_dim` is its width (embedding tied, so also the embedding's)."""

  config: RNNModelConfig
  vocab_size: int
  hidden_dim: int

  @property
  def state_size(self) -> int:
    return 2 * self.hidden_dim

  @nn.compact
  def __call__(self, tokens_BxT: jax.Array, state_Bx2H: jax.Array, arch: None = None,
               valid_T: jax.Array | None = None, *, train: bool = False
               ) -> tuple[jax.Array, jax.Array]:
    cfg, hid = self.config, self.hidden_dim
    batch, steps = tokens_BxT.shape
    if valid_T is None:
      valid_T = jnp.ones((steps,), bool)
    init = lambda k, s: jax.random.uniform(k, s, jnp.float32, -cfg.init_range, cfg.init_range)
    embedding_VxH = self.param("embedding", init, (self.vocab_size, hid))
    w_x_Hx4H = self.param("w_x", init, (hid, 4 * hid))
    w_h_Hx4H = self.param("w_h", init, (hid, 4 * hid))
    bias_4H = self.param("bias", nn.initializers.zeros, (4 * hid,))
    softmax_bias_V = self.param("softmax_bias", nn.initializers.zeros, (self.vocab_size,))

    emb = embedding_VxH
    mask = lambda rate, shape: dropout_mask(self.make_rng("dropout"), rate, shape)
    if train and cfg.embedding_dropout > 0:
      emb = emb * mask(cfg.embedding_dropout, (self.vocab_size, 1))
    x_TxBxH = jnp.take(emb, tokens_BxT.T, axis=0)
    for rate in (cfg.input_dropout, cfg.cell_input_dropout):
      if train and rate > 0:
        x_TxBxH = x_TxBxH * mask(rate, (1, batch, hid))
    if train and cfg.dropconnect > 0:
      w_h_Hx4H = w_h_Hx4H * mask(cfg.dropconnect, w_h_Hx4H.shape)
    h_mask_BxH = (mask(cfg.between_node_dropout, (batch, hid))
                  if train and cfg.between_node_dropout > 0 else jnp.ones((batch, hid)))
    xw_TxBx4H = x_TxBxH @ w_x_Hx4H + bias_4H

    def step(carry, inputs):
      h_BxH, c_BxH = carry
      xw_Bx4H, valid = inputs
      z = xw_Bx4H + (h_BxH * h_mask_BxH) @ w_h_Hx4H
      i, f, g, o = jnp.split(z, 4, axis=-1)
      c_new = jax.nn.sigmoid(f) * c_BxH + jax.nn.sigmoid(i) * jnp.tanh(g)
      h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
      return (jnp.where(valid, h_new, h_BxH), jnp.where(valid, c_new, c_BxH)), h_new

    (h_last, c_last), out_TxBxH = jax.lax.scan(
        step, (state_Bx2H[:, :hid], state_Bx2H[:, hid:]), (xw_TxBx4H, valid_T))
    if train:
      sow_activation_sq(self, out_TxBxH, valid_T)
      if cfg.output_dropout > 0:
        out_TxBxH = out_TxBxH * mask(cfg.output_dropout, (1, batch, hid))
    logits_BxTxV = jnp.einsum("tbh,vh->btv", out_TxBxH, embedding_VxH) + softmax_bias_V
    return logits_BxTxV, jnp.concatenate([h_last, c_last], axis=-1)
