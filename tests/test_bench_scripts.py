"""The PyTorch benchmarks without torch installed: one line saying how to get it, exit status 2,
not a ModuleNotFoundError traceback (experiments/bench/needs_torch.py)."""
import ast
import importlib.util
import os

import pytest

from experiments.bench import needs_torch

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments",
                     "bench")


def test_without_torch_the_check_says_how_to_install_it(monkeypatch, capsys):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "torch" else real(name, *a))
  with pytest.raises(SystemExit) as stop:
    needs_torch.check()
  assert stop.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith("error: this benchmark times PyTorch beside JAX and needs torch")
  assert 'pip install -e ".[bench]"' in err and len(err.splitlines()) == 1


def test_every_benchmark_script_checks_before_it_imports_torch():
  """A script run directly (`python experiments/bench/X.py`) that imports torch at its top
  level calls `needs_torch.check()` first; torch_rnn_reference is a module those scripts load
  after their check."""
  checked = []
  for name in sorted(os.listdir(BENCH)):
    if not name.endswith(".py") or name == "torch_rnn_reference.py":
      continue
    body = ast.parse(open(os.path.join(BENCH, name)).read()).body
    imports = [i for i, node in enumerate(body) if isinstance(node, ast.Import)
               and any(alias.name == "torch" for alias in node.names)]
    if not imports:
      continue
    checks = [i for i, node in enumerate(body) if "needs_torch.check()" in ast.unparse(node)]
    assert checks and checks[0] < imports[0], name
    checked.append(name)
  assert checked == ["enas_pytorch_anchor.py", "rnn_throughput.py"]


def test_the_machine_header_names_the_cpu_model_cores_memory_and_jax():
  """`machine_info.describe`, every benchmark's `# machine:` line: the CPU's model name read from
  /proc/cpuinfo's text (the first `model name`, spaces collapsed), not `platform.processor()`,
  which is empty on Linux."""
  import platform

  import jax

  from experiments.bench import machine_info
  text = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  9B14\n\n"
          "processor\t: 1\nmodel name\t: AMD EPYC 9B14\n")
  assert machine_info.cpu_model(text) == "AMD EPYC 9B14"
  line = machine_info.describe(text)
  assert line.startswith(f"{platform.machine()}, AMD EPYC 9B14, {os.cpu_count()} cores, ")
  assert line.endswith(f" GiB; jax {jax.__version__} on cpu")
  memory = float(line.split(" cores, ")[1].split(" GiB")[0])
  pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  assert abs(memory - pages / 2**30) <= 0.05
  assert machine_info.cpu_model("flags\t: fpu\n") == (platform.processor() or "unknown CPU")


def test_every_benchmark_header_comes_from_machine_info():
  """No script formats the machine itself (`platform.machine()` and friends); each one that
  prints a `# machine:` line takes it from `machine_info.describe()`."""
  headers = []
  for name in sorted(os.listdir(BENCH)):
    if not name.endswith(".py") or name == "machine_info.py":
      continue
    text = open(os.path.join(BENCH, name)).read()
    assert "platform.machine()" not in text and "platform.processor()" not in text, name
    if "# machine:" in text:
      assert "machine_info.describe()" in text, name
      headers.append(name)
  assert len(headers) >= 7, headers
