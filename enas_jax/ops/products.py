"""The model's matrix products, in float32 or mixed precision (`matmul_dtype`): "bfloat16"
rounds both operands to bfloat16 and sums in float32 (each product of two bfloat16 numbers is
exact in float32); weights, states and gradients stay float32.

The forms a @ b.T and a.T @ b have their own functions because XLA's CPU products run them in
bfloat16 at float32's rate or slower when written with a transpose; the forms here run at the
bfloat16 rate (performance.md, "mixed precision's transposed products"). Float32 is computed as
it always was, so its results are unchanged to the bit.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

MATMUL_DTYPES = ("float32", "bfloat16")


def operand(x: jax.Array, dtype: str) -> jax.Array:
  """`x` as a product's operand: as it is for "float32", rounded to bfloat16 for "bfloat16"."""
  return x if dtype == "float32" else x.astype(jnp.bfloat16)


def mm(a: jax.Array, b: jax.Array, dtype: str) -> jax.Array:
  """a @ b in float32; "bfloat16": the operands rounded to bfloat16, the products summed in
  float32 (each product of two bfloat16 numbers is exact in float32)."""
  if dtype == "float32":
    return a @ b
  return jnp.matmul(operand(a, dtype), operand(b, dtype), preferred_element_type=jnp.float32)


def mm_nt(a: jax.Array, b_NxK: jax.Array, dtype: str) -> jax.Array:
  """a @ b_NxK.T, as `mm`. For bfloat16 one contraction of both operands' last dimensions:
  `a @ b.T` made XLA's CPU products 1.7-2.9x slower in bfloat16 (not in float32)."""
  if dtype == "float32":
    return a @ b_NxK.T
  return jax.lax.dot_general(operand(a, dtype), operand(b_NxK, dtype),
                             (((a.ndim - 1,), (1,)), ((), ())),
                             preferred_element_type=jnp.float32)


def mm_tn(a_RxK: jax.Array, b_RxN: jax.Array, dtype: str) -> jax.Array:
  """a.T @ b, the sum over the rows R (a leading batch dimension allowed: [M, R, K] x [M, R, N]
  -> [M, K, N]), as `mm`. For bfloat16 the rows as two contracted dimensions [2, R / 2] when R
  is even: XLA's CPU products ran the plain form no faster than float32, this one 1.6-2.9x
  faster (float32 as ever, to the bit)."""
  rows = a_RxK.shape[-2]
  if dtype == "float32" or rows % 2:
    if a_RxK.ndim == 2:
      return mm(a_RxK.T, b_RxN, dtype)
    return jnp.einsum("mrh,mrj->mhj", operand(a_RxK, dtype), operand(b_RxN, dtype),
                      preferred_element_type=jnp.float32)
  split = lambda x: operand(x, dtype).reshape(*x.shape[:-2], 2, rows // 2, x.shape[-1])
  return jnp.einsum("...krh,...krj->...hj", split(a_RxK), split(b_RxN),
                    preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _bf16_matmul(a: jax.Array, b: jax.Array, b_transposed: bool) -> jax.Array:
  return (mm_nt if b_transposed else mm)(a, b, "bfloat16")


def _bf16_matmul_fwd(a, b, b_transposed):
  return _bf16_matmul(a, b, b_transposed), (operand(a, "bfloat16"), operand(b, "bfloat16"))


def _bf16_matmul_bwd(b_transposed, saved, g):
  a, b = saved
  a_rows, g_rows = a.reshape(-1, a.shape[-1]), g.reshape(-1, g.shape[-1])
  if b_transposed:  # b is [N, K]: d_a = g @ b, d_b = g.T @ a
    return mm(g, b, "bfloat16"), mm_tn(g_rows, a_rows, "bfloat16")
  return mm_nt(g, b, "bfloat16"), mm_tn(a_rows, g_rows, "bfloat16")


_bf16_matmul.defvjp(_bf16_matmul_fwd, _bf16_matmul_bwd)


def matmul(a_XxK: jax.Array, b: jax.Array, dtype: str = "float32", b_transposed: bool = False
           ) -> jax.Array:
  """a @ b (`b` [K, N]; with `b_transposed`, a @ b.T for `b` [N, K]; `a` any rank) as the
  model's products are computed: float32, or with `dtype="bfloat16"` mixed precision, whose
  gradient products also take bfloat16 operands (the incoming gradient rounded) and sum in
  float32. Weights, states and gradients stay float32."""
  if dtype == "float32":
    return a_XxK @ (b.T if b_transposed else b)
  return _bf16_matmul(a_XxK, b, b_transposed)
