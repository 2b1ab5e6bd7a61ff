"""The NaN/Inf guard: the finiteness check over a state, and a guarded step keeping the old state
when the new one is not finite."""
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from enas_jax.io import checkpoints
from enas_jax.ops import guards


def _tree(rng: np.random.Generator) -> dict:
  """Float32, bfloat16 and integer leaves of a few shapes."""
  return {"w": rng.normal(size=(3, 5)).astype(np.float32),
          "b": rng.normal(size=(7,)).astype(np.float32),
          "half": jnp.asarray(rng.normal(size=(4, 2)), jnp.bfloat16),
          "scalar": np.float32(rng.normal()),
          "count": np.array([2**31 - 1, -5], np.int32)}


def _plain_finite(tree: dict) -> bool:
  return all(np.isfinite(np.asarray(x, np.float32)).all() for x in jax.tree_util.tree_leaves(tree)
             if np.issubdtype(np.asarray(x).dtype, np.floating) or x.dtype == jnp.bfloat16)


@pytest.mark.parametrize("joined_max", [checkpoints._JOINED_MAX, 0])  # joined; leaf by leaf
def test_tree_finite_agrees_with_a_plain_check_for_every_leaf_and_bad_value(monkeypatch,
                                                                             joined_max):
  monkeypatch.setattr(checkpoints, "_JOINED_MAX", joined_max)
  # Fresh programs: jax caches a traced function's program by its argument shapes.
  check = jax.jit(lambda t: checkpoints.tree_finite(t))
  monkeypatch.setattr(checkpoints, "_tree_finite_program", check)
  rng = np.random.default_rng(0)
  clean = _tree(rng)
  assert bool(check(clean)) and checkpoints.all_finite(clean) and _plain_finite(clean)
  cases = 0
  for name in ("w", "b", "half", "scalar"):
    for bad in (np.nan, np.inf, -np.inf):
      tree = dict(clean)
      x = np.array(np.asarray(tree[name], np.float32))
      x.flat[rng.integers(x.size)] = bad
      tree[name] = jnp.asarray(x, jnp.result_type(clean[name]))
      assert not _plain_finite(tree)
      assert not bool(check(tree)), (name, bad)
      assert not checkpoints.all_finite(tree)
      cases += 1
  assert cases == 12
  assert bool(checkpoints.tree_finite({"only_ints": np.arange(3)}))
  assert bool(checkpoints.tree_finite({}))


def test_a_small_tree_is_checked_by_one_reduction_per_dtype_a_large_one_leaf_by_leaf(
    monkeypatch):
  """The joined check is what keeps the controller update's compile short: one reduction per
  dtype instead of one per leaf; past `_JOINED_MAX` elements each leaf is reduced on its own
  (joining a large tree would copy it)."""
  tree = _tree(np.random.default_rng(1))

  def reductions(t: dict) -> int:
    jaxpr = jax.make_jaxpr(lambda t: checkpoints.tree_finite(t))(t)  # a fresh trace
    return sum(e.primitive.name == "reduce_and" for e in jaxpr.jaxpr.eqns)

  assert reductions(tree) == 2 + 1  # float32, bfloat16; then the two results
  monkeypatch.setattr(checkpoints, "_JOINED_MAX", 30)  # 15 + 7 + 8 + 1 = 31 elements: over
  assert reductions(tree) == 4 + 1


class _State(flax.struct.PyTreeNode):
  w: jax.Array
  step: jax.Array


def test_a_guarded_step_keeps_the_old_state_when_any_leaf_of_the_new_one_is_not_finite():
  def step(state, poison, key):
    del key
    w = state.w + 1.0
    w = w.at[1].set(jnp.where(poison, jnp.nan, w[1]))
    return state.replace(w=w, step=state.step + 1), {"loss": jnp.sum(state.w)}

  guarded = jax.jit(guards.guarded(step, "loss"))
  state = _State(w=jnp.zeros(3), step=jnp.zeros((), jnp.int32))
  sums = {"loss": jnp.zeros(()), "ok_steps": jnp.zeros(()), "steps": jnp.zeros(())}
  key = jax.random.key(0)
  state, sums = guarded(state, False, key, sums)
  np.testing.assert_array_equal(state.w, [1.0, 1.0, 1.0])
  state, sums = guarded(state, True, key, sums)  # the loss is finite, the weights are not
  np.testing.assert_array_equal(state.w, [1.0, 1.0, 1.0])  # kept
  assert int(state.step) == 2  # the counter still advances
  assert {k: float(v) for k, v in sums.items()} == {"loss": 0.0, "ok_steps": 1.0, "steps": 2.0}


def test_a_record_is_the_mean_over_finite_steps_and_nan_where_every_step_was_skipped():
  """Means over the finite steps only (a skipped step adds zeros); perplexity exp(mean NLL);
  with no finite step to average every mean is NaN: a 0 would read as a perfect loss."""
  sums = {"loss": 6.0, "nll": 3.0, "ppl": 99.0, "ok_steps": 3.0, "steps": 4.0}
  record = guards.sums_to_record({k: jnp.float32(v) for k, v in sums.items()})
  assert record == {"loss": 2.0, "nll": 1.0, "ppl": pytest.approx(np.e), "steps": 4.0,
                    "skipped_steps": 1.0}
  assert not guards.every_step_skipped(record)
  none_ok = guards.sums_to_record({"loss": jnp.float32(0), "nll": jnp.float32(0),
                                   "ok_steps": jnp.float32(0), "steps": jnp.float32(5)})
  assert np.isnan(none_ok["loss"]) and np.isnan(none_ok["nll"]) and np.isnan(none_ok["ppl"])
  assert (none_ok["steps"], none_ok["skipped_steps"]) == (5.0, 5.0)
  assert guards.every_step_skipped(none_ok)
