"""Every command the README shows still parses: its module exists, each flag is one the command
defines, each `--config=NAME[:preset]` loads, each `--config.<section>.<field>` override names a
field, and the resulting search or final-training config passes its checks. (The commands
themselves run in the other tests on tiny presets; this keeps the README from drifting.)"""
import ast
import importlib.util
import pathlib
import re
import shlex

import pytest

from enas_jax.cli import common
from enas_jax.run import config as run_config

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "enas_jax"
# Flags every absl command has, and those the shared helpers of cli/common.py define.
ABSL_FLAGS = {"help", "helpshort", "helpfull", "verbosity", "v", "logtostderr", "alsologtostderr"}
HELPER_FLAGS = {"define_progress_flags": {"progress", "progress_every_s"},
                "define_compilation_cache_flag": {"compilation_cache"}}


def readme_commands() -> list[list[str]]:
  """The enas_jax commands of the README's bash blocks, continuation lines joined, comments
  dropped, each split as the shell would."""
  text = (ROOT / "README.md").read_text()
  out = []
  for block in re.findall(r"```bash\n(.*?)```", text, re.S):
    for line in block.replace("\\\n", " ").splitlines():
      line = line.split("  #")[0].strip()
      if line.startswith(("python -m enas_jax.", "enas-")):
        words = [w for w in shlex.split(line) if w != "..."]
        out.append(words[2:] if words[0] == "python" else words)
  return out


def command_name(words: list[str]) -> str:
  return words[0].split(".", 1)[1] if words[0].startswith("enas_jax.") else words[0][5:]


def defined_flags(command: str) -> set[str]:
  """The flags `enas_jax/cli/<command>.py` defines (read from its source, not imported: the
  commands define flags in one global registry)."""
  tree = ast.parse((PACKAGE / "cli" / f"{command}.py").read_text())
  names = set(ABSL_FLAGS)
  for node in ast.walk(tree):
    if isinstance(node, ast.Call):
      fn = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
      if fn.startswith(("DEFINE_", "define_config_file")) and node.args and isinstance(
          node.args[0], ast.Constant):
        names.add(node.args[0].value)
      names |= HELPER_FLAGS.get(fn, set())
  return names


def load_config(value: str):
  path, _, preset = common.config_path(value).partition(":")
  if not pathlib.Path(path).is_absolute():
    path = str(ROOT / path)
  spec = importlib.util.spec_from_file_location("readme_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def set_override(config, dotted: str, value: str) -> None:
  *sections, field = dotted.split(".")
  target = config
  for name in sections:
    assert name in target, f"no section {name!r} in --config.{dotted}"
    target = target[name]
  assert field in target, f"no field {field!r} in --config.{dotted}"
  current = target[field]
  if isinstance(current, bool):
    target[field] = value == "True"
  elif isinstance(current, (int, float)) and not isinstance(current, bool):
    target[field] = type(current)(value)
  else:
    target[field] = value


COMMANDS = readme_commands()


def test_the_readme_shows_every_command():
  assert {command_name(w) for w in COMMANDS} == {"search", "train", "show", "gif", "plot",
                                                  "compare", "report"}


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(w)[:60] for w in COMMANDS])
def test_a_readme_command_parses(words):
  command = command_name(words)
  assert (PACKAGE / "cli" / f"{command}.py").is_file(), command
  flags = defined_flags(command)
  config, overrides = None, []
  for word in words[1:]:
    if not word.startswith("--"):
      continue  # a positional argument (show's architecture)
    name, _, value = word[2:].partition("=")
    if name.startswith("config."):
      overrides.append((name[len("config."):], value))
      continue
    assert name in flags, f"--{name} is not a flag of enas_jax.{command}"
    if name == "config":
      config = load_config(value)
  for dotted, value in overrides:
    set_override(config, dotted, value)
  if command == "search":
    run_config.search_config(config)
  elif command == "train":
    if not config.arch:
      config.arch = "lstm" if config.space == "rnn" else "workdirs/any"
    run_config.final_config(config)


def test_the_check_would_catch_drift():
  with pytest.raises(AssertionError, match="not a flag"):
    test_a_readme_command_parses(["enas_jax.report", "--workdir=w", "--no_such_flag=1"])
  with pytest.raises(AssertionError, match="no field"):
    test_a_readme_command_parses(["enas_jax.search", "--config=quickstart",
                                  "--config.search.epoch=3"])
  with pytest.raises(ValueError, match="unknown preset"):
    test_a_readme_command_parses(["enas_jax.search", "--config=configs/ptb_rnn.py:tpu"])
