"""Architecture formats of the recurrent space: round trips, meaning pinned, clear errors."""
import json
import re

import jax
import numpy as np
import pytest

from enas_jax.io.errors import UserError
from enas_jax.spaces.rnn import arch as arch_lib
from enas_jax.spaces.rnn import formats
from enas_jax.spaces.rnn.arch import make_arch

# ENAS-pytorch's own example dag.json (12 nodes; loose ends 3, 5, 6, 9, 10, 11).
ENAS_PYTORCH_DAG = {
    "-1": [[0, "tanh"]], "-2": [[0, "tanh"]], "0": [[1, "tanh"]],
    "1": [[2, "ReLU"], [3, "tanh"]], "2": [[4, "tanh"], [5, "tanh"], [6, "ReLU"]],
    "4": [[7, "ReLU"]], "7": [[8, "ReLU"]], "8": [[9, "ReLU"], [10, "ReLU"], [11, "ReLU"]],
    "3": [[12, "avg"]], "5": [[12, "avg"]], "6": [[12, "avg"]], "9": [[12, "avg"]],
    "10": [[12, "avg"]], "11": [[12, "avg"]], "12": [[13, "h[t]"]],
}


def _same(a, b):
  np.testing.assert_array_equal(a.prev_N, b.prev_N)
  np.testing.assert_array_equal(a.act_N, b.act_N)


def _random(seed, n=12):
  a = arch_lib.random_arch(jax.random.key(seed), n)
  return arch_lib.RNNArch(np.asarray(a.prev_N), np.asarray(a.act_N))


@pytest.mark.parametrize("seed", range(5))
def test_round_trips(seed):
  a = _random(seed)
  _same(formats.from_json(json.loads(json.dumps(formats.to_json(a)))), a)
  _same(formats.from_authors_string(formats.to_authors_string(a)), a)
  _same(formats.from_dag_json(json.loads(json.dumps(formats.to_dag_json(a)))), a)
  _same(arch_lib.from_decisions(arch_lib.to_decisions(a)), a)


def test_authors_string_meaning_is_pinned():
  a = formats.from_authors_string("1 0 2 1 3 0 0")  # 4 nodes
  np.testing.assert_array_equal(a.prev_N, [-1, 0, 1, 0])
  assert [arch_lib.ACTIVATIONS[i] for i in a.act_N] == ["relu", "identity", "sigmoid", "tanh"]
  assert len(formats.to_authors_string(_random(0, 12)).split()) == 23


def test_enas_pytorch_dag_json_meaning_is_pinned():
  a = formats.from_dag_json(ENAS_PYTORCH_DAG)
  np.testing.assert_array_equal(a.prev_N, [-1, 0, 1, 1, 2, 2, 2, 4, 7, 8, 8, 8])
  names = [arch_lib.ACTIVATIONS[i] for i in a.act_N]
  assert names == ["tanh", "tanh", "relu", "tanh", "tanh", "tanh", "relu", "relu", "relu",
                   "relu", "relu", "relu"]
  assert list(np.nonzero(np.asarray(arch_lib.loose_ends_mask(a.prev_N)))[0]) == [3, 5, 6, 9, 10, 11]


def test_json_is_readable():
  data = formats.to_json(make_arch([-1, 0, 0], [0, 1, 3]))
  assert data["nodes"][0] == {"node": 0, "prev": None, "activation": "tanh"}
  assert data["nodes"][2] == {"node": 2, "prev": 0, "activation": "sigmoid"}


@pytest.mark.parametrize("text,match", [
    ("0 0 1 1", "2N - 1"),
    ("0 0 x", "Token 2 .* 'x'"),
    ("0_0_1", "Token 0 .* '0_0_1', which is not an integer"),  # int() reads it as 1
    ("0 0 7", "Token 2 .*activation"),
    ("0 1 1", "Token 1 .*prev"),
    ("0 0 1 2 1", "Token 3 .*prev"),
])
def test_malformed_authors_strings(text, match):
  with pytest.raises(UserError, match=match):
    formats.from_authors_string(text)


def test_malformed_files(tmp_path):
  bad = tmp_path / "bad.json"
  bad.write_text("{not json")
  with pytest.raises(UserError, match="not valid JSON"):
    formats.load_arch(str(bad))
  wrong_space = tmp_path / "macro.json"
  wrong_space.write_text(json.dumps({"space": "macro", "nodes": [{}]}))
  with pytest.raises(UserError, match="'macro' search space"):
    formats.load_arch(str(wrong_space))
  dag = dict(ENAS_PYTORCH_DAG)
  dag["1"] = [[2, "ReLU"], [3, "swish"]]
  path = tmp_path / "dag.json"
  path.write_text(json.dumps(dag))
  with pytest.raises(UserError, match="'swish'"):
    formats.load_arch(str(path))
  dag = dict(ENAS_PYTORCH_DAG)
  dag["3"] = []  # node 3 no longer averaged although it is a loose end
  path.write_text(json.dumps(dag))
  with pytest.raises(UserError, match="loose ends"):
    formats.load_arch(str(path))
  with pytest.raises(UserError, match="neither an existing file"):
    formats.load_arch("no/such/file.json")
  with pytest.raises(UserError, match="search space has 12"):
    formats.load_arch("0 0 1", num_nodes=12)
  binary = tmp_path / "best_arch.json"
  binary.write_bytes(b'\xff\xfe{"nodes": []}')  # a UnicodeDecodeError traceback, in both readers
  for read in (formats.load_arch, formats.load_arch_spec, lambda spec: formats.load_arch_spec(
      str(tmp_path))):
    with pytest.raises(UserError, match=f"{binary} is not text \\(byte 0 cannot be read"):
      read(str(binary))


@pytest.mark.parametrize("space", [[], {}, None, 3, "bogus"])
def test_a_json_whose_space_field_is_not_a_name_is_one_paragraph(space):
  """A list or an object as `space` was a TypeError traceback (unhashable) in both lookups."""
  from enas_jax.spaces import registry
  with pytest.raises(UserError) as err:
    registry.from_json_any({"space": space, "nodes": []}, where="architecture file a.json")
  assert str(err.value) == (
      f"The architecture file a.json has no valid `space` field (got {space!r}; expected one of "
      f"{', '.join(registry.SPACES)}): it is not an architecture written by a search.")
  with pytest.raises(UserError, match=f"Config field `space` is {re.escape(repr(space))}; the"):
    registry.get_space(space)


def test_validate_names_the_node():
  with pytest.raises(UserError, match="node 2 reads node 2"):
    make_arch([-1, 0, 2], [0, 0, 0])
  with pytest.raises(UserError, match="node 1 has activation id 4"):
    make_arch([-1, 0], [0, 4])


def test_a_cell_of_one_node_or_too_many_is_refused_as_a_config_and_one_node_as_an_architecture(
    tmp_path):
  """A cell of one node has no edge to search: `model.num_nodes=1`, or a one-node architecture
  given to the final training ("1": node 0's activation alone), failed deep in the weights'
  code ("Need at least one array to stack", a traceback). Now one paragraph each."""
  from enas_jax.spaces.rnn.model import RNNModelConfig
  rule = ("a cell of this space has 2 to 48 nodes (node 0, which reads x_t and h_(t-1), and "
          "nodes after it, each with a chosen input and activation; past 48, compiling the "
          "search's programs over the N (N - 1) / 2 edges took more than 15 minutes and 24 GiB)")
  for bad in (1, 49, 10 ** 12):  # 10^12: it was a hang, making the shared weights' edges
    with pytest.raises(UserError) as err:
      RNNModelConfig(num_nodes=bad).validate()
    assert str(err.value) == (f"Config field `model.num_nodes` is {bad}; {rule}. Fix it in the "
                              f"config file or the --config.model.num_nodes override.")
  RNNModelConfig(num_nodes=2).validate()
  RNNModelConfig(num_nodes=48).validate()
  with pytest.raises(UserError) as err:
    formats.load_arch_spec("1")
  assert str(err.value) == f"The architecture has 1 node; {rule}."
  with pytest.raises(UserError, match="1 node; a cell"):
    make_arch([-1], [0])
  make_arch([-1, 0], [0, 0])


def test_random_arch_covers_the_space():
  archs = [_random(s, 4) for s in range(300)]
  assert all(0 <= a.prev_N[k] < k for a in archs for k in range(1, 4))
  assert {int(a.prev_N[3]) for a in archs} == {0, 1, 2}
  assert {int(a.act_N[2]) for a in archs} == {0, 1, 2, 3}
  assert len(arch_lib.decisions(12)) == 23
