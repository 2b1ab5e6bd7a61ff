"""`python -m enas_jax.train` end to end in a subprocess, and its clear errors."""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _train(*args):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run([sys.executable, "-m", "enas_jax.train", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)


def test_cli_trains_a_cell_given_as_an_authors_string(tmp_path):
  workdir = tmp_path / "run"
  result = _train("--config=configs/ptb_final.py:tiny", f"--workdir={workdir}",
                  "--config.arch=0 0 1 1 2", "--config.train.epochs=1")
  assert result.returncode == 0, result.stderr
  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["architecture"]["num_nodes"] == 3 and summary["epochs"] == 1
  assert f"test perplexity {summary['test_ppl']:.2f}" in result.stdout
  assert "model.num_nodes (9) follows it" in result.stdout
  for name in ("config.json", "metrics.jsonl", "checkpoints"):
    assert (workdir / name).exists(), name


def test_cli_errors_are_one_paragraph(tmp_path):
  wrong_space = tmp_path / "macro.json"
  wrong_space.write_text('{"space": "macro", "num_layers": 12, "layers": []}')
  cases = {f"--config.arch={wrong_space}": "'macro' search space",
           "--config.arch=0 2 1 0": "write 'enas_lm:0 2 1 0'",
           "--config.arch=enas_lm:0 7": "enas_lm activation ids are 0 tanh",
           f"--config.arch={tmp_path}": "no best_arch.json",
           f"--config.arch={tmp_path / 'gone'}": f"no file or directory '{tmp_path / 'gone'}'",
           "--config.train.lr=-1": "`train.lr` must be positive"}
  for flag, expected in cases.items():
    result = _train("--config=configs/ptb_final.py:tiny", f"--workdir={tmp_path / 'w'}", flag)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2 and expected in message and "Traceback" not in message, (
        flag, message)
  # a BPTT window longer than the split's rows (733 tokens each here) is all padding past them:
  # it trained, and a length mistyped as 100000000 filled [batch, 100000000] windows (24 GB at
  # batch 32) before any check, and the kernel killed the process; now refused before any data
  result = _train("--config=configs/ptb_final.py:tiny", f"--workdir={tmp_path / 'w'}",
                  "--config.data.bptt=1000", "--config.data.max_bptt=1000")
  assert result.returncode == 2 and " ".join(result.stderr.split()) == (
      "error: The train split has 2934 tokens, too few for batch size 4 with windows of 1000 "
      "steps (each of the 4 rows needs at least 1001 tokens, 4004 in all). Use a longer split, "
      "or a smaller `data.batch_size` or `data.bptt`."), result.stderr
