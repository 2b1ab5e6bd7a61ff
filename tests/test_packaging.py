"""The package as pip installs it: a wheel built from the checkout holds every module and the
configs and declares the console commands; a command run from an empty directory finds a config
by its name."""
import configparser
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMMANDS = ("search", "train", "show", "gif", "plot", "compare")


def test_the_wheel_holds_every_module_the_configs_and_the_commands(tmp_path):
  result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  (wheel,) = tmp_path.glob("enas_jax-*.whl")
  names = set(zipfile.ZipFile(wheel).namelist())
  sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "enas_jax").rglob("*.py")}
  assert sources - names == set()  # every module, every subpackage (each has an __init__.py)
  assert {f"enas_jax/configs/{name}.py" for name in ("quickstart", "ptb_rnn", "cifar10_micro",
                                                     "nasbench201")} <= names
  entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
  parser = configparser.ConfigParser()
  parser.read_string(zipfile.ZipFile(wheel).read(entry_points).decode())
  assert dict(parser["console_scripts"]) == {
      **{f"enas-{c}": f"enas_jax.{c}:entry" for c in COMMANDS},
      "enas-report": "enas_jax.report.__main__:entry"}
  metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
  text = zipfile.ZipFile(wheel).read(metadata).decode()
  assert "Requires-Python: >=3.11" in text and "Requires-Dist: optax>=0.2.5" in text
  assert "Requires-Dist: chex" not in text.split("Provides-Extra")[0]  # only the tests use it


def test_a_command_from_an_empty_directory_takes_a_config_by_name(tmp_path):
  command = shutil.which("enas-search", path=os.path.dirname(sys.executable))
  assert command, "the enas-search command is not installed next to this Python"
  env = dict(os.environ)
  env.pop("PYTHONPATH", None)  # the installed package, not the checkout on the path
  result = subprocess.run([command, "--config=quickstart:tiny", "--config.search.epochs=1",
                           "--progress=off"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "found architecture (rnn space)" in result.stdout
  assert (tmp_path / "workdirs" / "quickstart_tiny" / "summary.json").is_file()
  assert "Unable to initialize backend" not in result.stderr  # no start-up chatter
  missing = subprocess.run([command, "--config=quickstrt"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
  assert missing.returncode == 2 and "Traceback" not in missing.stderr
  assert "quickstart" in missing.stderr and "ptb_rnn" in missing.stderr  # the names it knows
