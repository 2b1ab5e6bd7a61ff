"""What every command-line entry point shares: flag parsing and config loading that turn a user's
mistake into one clear paragraph and exit status 2, never a traceback."""
from __future__ import annotations

import os
import re
import sys
from typing import Any, Callable, Sequence

import jax
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from enas_jax import configs
from enas_jax.io import compile_cache, memory
from enas_jax.io import workdir as workdir_lib
from enas_jax.io.errors import UserError, exit_with, paragraph, run_main
from enas_jax.io.metrics import Progress
from enas_jax.io.signals import to_null_device


def _traceback_tail(text: str) -> str:
  """`text`, or for an exception's text that embeds a traceback (absl's), its last line."""
  text = text.replace("\\n", "\n")
  return [line for line in text.splitlines() if line.strip()][-1] if "Traceback" in text else text


def _root_message(err: BaseException) -> str:
  """The innermost cause's message on one line; for an embedded traceback, its last line."""
  while err.__cause__ is not None:
    err = err.__cause__
  text = _traceback_tail(str(err.args[0]) if isinstance(err, (KeyError, AttributeError))
                         and err.args else str(err))
  suggestion = re.search(r'Did you mean "(\w+)" instead of "(\w+)"', text)
  if suggestion:
    return f'no field "{suggestion.group(2)}" (did you mean "{suggestion.group(1)}"?)'
  text = text.replace("\\'", "'")
  bare = re.fullmatch(r"""["']*(\w+)["']*""", text)
  if bare:  # a KeyError/AttributeError carrying only the missing field's name
    return f'no field "{bare.group(1)}"'
  return " ".join(text.split()).rstrip(".")


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl flag parsing, with bad flags, config files that do not load and bad `--config.*`
  overrides reported plainly."""
  level = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.ERROR)  # config_flags' warnings: our paragraph says it
  try:
    return flags.FLAGS(argv)
  except Exception as err:  # absl parses the config flags, so runs the config files
    broken = _given_config_unusable(err) or _config_file_error(err)
    if broken is not None:
      exit_with(broken)
    if isinstance(err, flags.Error):
      exit_with(UserError(f"Bad command-line flag: {_root_message(err)}. Run with --helpshort "
                          f"to list the flags."))
    if isinstance(err, (KeyError, AttributeError, TypeError, ValueError)):  # an override's field
      exit_with(_override_error("config", err))
    raise
  finally:  # --verbosity, when given, sets its own level as it is parsed
    if "verbosity" not in flags.FLAGS or not flags.FLAGS["verbosity"].present:
      absl_logging.set_verbosity(level)


_CONFIG_FLAGS: dict[str, str] = {}  # `define_config_file`'s flags: name -> default file
_TYPED: dict[str, str] = {}  # a config flag's value as given -> as the user typed it (a name)


def _config_files_given() -> list[tuple[str, str]]:
  """(flag name, value) of each `define_config_file` flag given on the command line as
  `--NAME=VALUE` (a shipped config's name already turned into its path)."""
  pairs = [arg.lstrip("-").partition("=")[::2] for arg in sys.argv[1:]]
  return [(name, value) for name, value in pairs if name in _CONFIG_FLAGS and value]


def _config_file_error(err: BaseException) -> UserError | None:
  """The one paragraph for a config file given by a `define_config_file` flag that fails to
  load (its Python does not parse, raises, or defines no `get_config`), or None when `err` (or
  what it wraps) did not come from one."""
  given = {}  # file -> (the flag's value, its name): those on the command line first
  for name, value in _config_files_given():
    given.setdefault(os.path.abspath(value.partition(":")[0]), (value, name))
  for name, default in _CONFIG_FLAGS.items():
    given.setdefault(os.path.abspath(default.partition(":")[0]), (default, name))
  chain = []
  while err is not None:
    chain.append(err)
    err = err.__cause__ or err.__context__
  for err in reversed(chain):  # the innermost first
    text = err.msg if isinstance(err, SyntaxError) else str(err).replace("\\n", "\n")
    where = re.findall(r'File "([^"]+)", line (\d+)', text)  # a traceback inside the message
    text = (_traceback_tail(text) if "Traceback" in text  # absl's: the exception's last line
            else f"{type(err).__name__}: {text}")
    if isinstance(err, SyntaxError) and err.filename:
      where.append((err.filename, err.lineno))
    tb = err.__traceback__
    while tb is not None:
      where.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
      tb = tb.tb_next
    hit = [(os.path.abspath(f), line) for f, line in where if os.path.abspath(f) in given]
    text = " ".join(text.split())
    if hit or "get_config" in text:
      value, name = given[hit[-1][0]] if hit else next(iter(given.values()))
      why = (f"line {hit[-1][1]}: {text}" if hit
             else "it defines no get_config()" if "has no attribute 'get_config'" in text
             else text)
      return UserError(
          f"The config file given by --{name}={_TYPED.get(value, value)} could not be loaded: "
          f"{why}. Fix the file "
          f"(it defines get_config(), or get_config(preset) for --{name}=FILE:PRESET, returning "
          f"an ml_collections.ConfigDict), or pass the name of a config that comes with "
          f"enas_jax ({', '.join(shipped_configs())}).")
  return None


def _given_config_unusable(err: BaseException) -> UserError | None:
  """The paragraph for a config file given on the command line that does not exist, or whose
  get_config() returned None, found while absl applied `--config.*` overrides to it (which
  hides the cause: a traceback about an earlier failure to load, or an override naming a field
  of None); None otherwise."""
  for name, value in _config_files_given():
    path = value.partition(":")[0]
    if not os.path.exists(path):
      return _unloadable(name, value, _missing(path))
    if "<class 'NoneType'>" in str(err):
      return _unloadable(name, value, RETURNED_NONE)
  return None


def _missing(path: str) -> str:
  """Why the config file at `path` (a shipped config's name turned into its path) is missing."""
  if os.path.dirname(path) == CONFIG_DIR:
    return f"no config named {os.path.basename(path)[:-3]!r} comes with enas_jax"
  return f"there is no file {path!r} relative to {os.getcwd()}"


RETURNED_NONE = "its get_config() returned None, not an ml_collections.ConfigDict"


def _unloadable(flag: str, given: str, reason: str) -> UserError:
  """The paragraph for the config file given by `--{flag}={given}` that could not be loaded."""
  return UserError(
      f"The config file given by --{flag}={_TYPED.get(given, given)} could not be loaded: "
      f"{reason}. "
      f"Pass the name of a config that comes with enas_jax ({', '.join(shipped_configs())}) "
      f"or a config file's path, with an optional preset after a colon "
      f"(--{flag}=ptb_rnn:cpu, --{flag}=my_configs/ptb.py).")


def _override_error(name: str, err: BaseException) -> UserError:
  """The one paragraph for a `--{name}.*` override that names no field of the config file."""
  override = next((a for a in sys.argv[1:] if a.startswith(f"--{name}.")), "")
  return UserError(
      f"A --{name} override could not be applied: {_root_message(err)}. Overrides name an "
      f"existing field of the config file, e.g. --{name}.shared.lr=10"
      + (f" (first override given: {override})." if override else "."))


CONFIG_DIR = os.path.dirname(os.path.abspath(configs.__file__))


def shipped_configs() -> list[str]:
  """The names of the config files that come with the package (enas_jax/configs)."""
  return sorted(f[:-3] for f in os.listdir(CONFIG_DIR) if f.endswith(".py") and f[0] != "_")


def config_path(value: str) -> str:
  """`NAME[:preset]` of a config shipped with the package -> its file's path (with the preset);
  a path (anything with a slash or ending in .py) is returned unchanged."""
  name, sep, preset = value.partition(":")
  if "/" in name or os.sep in name or name.endswith(".py"):
    return value
  return os.path.join(CONFIG_DIR, name + ".py") + sep + preset


def define_config_file(name: str, default: str, help_string: str) -> flags.FlagHolder:
  """`config_flags.DEFINE_config_file` taking a shipped config's name (`--{name}=quickstart`) or
  a file's path; it already applies `--{name}.*` overrides from sys.argv: a bad override is
  reported here, at import, as a clear error."""
  for i, arg in enumerate(sys.argv):  # names -> paths, before absl reads them
    if arg.startswith(f"--{name}="):
      typed = arg.partition("=")[2]
      _TYPED.setdefault(config_path(typed), typed)
      sys.argv[i] = f"--{name}=" + config_path(typed)
    elif arg == f"--{name}" and i + 1 < len(sys.argv):
      typed = sys.argv[i + 1]
      _TYPED.setdefault(config_path(typed), typed)
      sys.argv[i + 1] = config_path(typed)
  _CONFIG_FLAGS[name] = config_path(default)
  try:
    return config_flags.DEFINE_config_file(name, config_path(default), help_string)
  except (KeyError, AttributeError, TypeError, ValueError) as err:
    exit_with(_override_error(name, err))


def load_config(holder: flags.FlagHolder, flag: str = "config") -> Any:
  """The config from a `define_config_file` flag; a file that failed to load is a UserError."""
  try:
    holder.value.to_dict()  # a failed load only raises on first use
    return holder.value
  except (OSError, ValueError, AttributeError, ImportError, flags.Error) as err:
    given = flags.FLAGS[flag].serialize().partition("=")[2] if flag in flags.FLAGS else "?"
    path = given.partition(":")[0]
    reason = (_missing(path) if not os.path.exists(path)
              else RETURNED_NONE if isinstance(err, flags.IllegalFlagValueError)
              else _root_message(err))
    raise _unloadable(flag, given, reason) from None


def refuse_unread_overrides(cfg: Any, flag: str = "config") -> None:
  """A `--{flag}.*` override of a field the run will not read (its data section's `unread()`,
  e.g. `data.dir` under the planted corpus) is a UserError: it would be ignored silently."""
  given = config_flags.get_override_values(flags.FLAGS[flag])
  unread = getattr(getattr(cfg, "data", None), "unread", dict)()
  for field, why in unread.items():
    key = f"data.{field}"
    hit = sorted(k for k in given if k == key or k.startswith(f"{key}."))
    if hit:
      raise UserError(f"--{flag}.{hit[0]}={given[hit[0]]} is given but this run does not read "
                      f"it: {why}")


def default_workdir(config_flag: Any, prefix: str = "") -> str:
  """`workdirs/<prefix><config file stem>[_<preset>]`."""
  path = config_flags.get_config_filename(config_flag)
  name, _, preset = os.path.basename(path).partition(":")
  name = os.path.splitext(name)[0]
  return os.path.join("workdirs", prefix + (f"{name}_{preset}" if preset else name))


def workdir_and_output(workdir: str | None, output: str, command: str, default_name: str,
                       extensions: Sequence[str]) -> tuple[str, str]:
  """(--workdir, --output or WORKDIR/`default_name`) of a command that reads a run's workdir;
  a missing --workdir, or an --output that cannot be written (`output_file`), is a UserError
  showing `command`'s use."""
  if not workdir:
    raise UserError(f"Give the run's workdir: python -m enas_jax.{command} --workdir=DIR "
                    f"[--output={default_name}].")
  if output:
    return workdir, output_file(output, "output", extensions)
  return workdir, os.path.join(workdir, default_name)


def output_file(path: str, flag: str, extensions: Sequence[str] = ()) -> str:
  """`path` (a command's `--flag`), checked before any work: not a folder, no folder on its way
  that is a file, and (with `extensions`, the first the usual one) ending in one of them; else a
  UserError naming the flag and a path that works."""
  ext = extensions[0] if extensions else ""
  example = os.path.join(path.rstrip("/" + os.sep) or ".", f"out{ext}")
  if path.endswith(("/", os.sep)) or os.path.isdir(path):
    raise UserError(f"--{flag}={path} is a folder; give a file path in it, e.g. "
                    f"--{flag}={example}.")
  parent = os.path.dirname(os.path.abspath(path))
  while not os.path.exists(parent) and os.path.dirname(parent) != parent:
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise UserError(f"--{flag}={path}: {parent} is a file, not a folder, so nothing can be "
                    f"written under it. Give another path.")
  too_long = workdir_lib.path_too_long(path)
  if too_long:
    raise UserError(f"--{flag}={workdir_lib.shortened(path)}: {too_long}, so nothing can be "
                    f"written there. Give a shorter path.")
  if extensions and not path.lower().endswith(tuple(extensions)):
    raise UserError(f"--{flag}={path} must end in {' or '.join(extensions)} (the file's format); "
                    f"e.g. --{flag}={os.path.splitext(path)[0]}{ext}.")
  return path


def define_progress_flags() -> Callable[[], Progress]:
  """--progress and --progress_every_s (for the commands that run a loop); returns the function
  that builds the `Progress` they ask for."""
  mode = flags.DEFINE_enum(
      "progress", "auto", ["auto", "bar", "on", "lines", "off"],
      "Progress of each phase with its rate and time left: a bar redrawn in place (bar; `on` is "
      "the same), a plain line every --progress_every_s seconds (lines, for logs), none (off); "
      "auto: the bar when stderr is a terminal, lines otherwise.")
  every_s = flags.DEFINE_float("progress_every_s", 30.0,
                               "Seconds between progress lines when they are lines.")

  def make() -> Progress:
    enabled = {"auto": None, "bar": True, "on": True, "lines": True, "off": False}[mode.value]
    return Progress(enabled=enabled, lines=mode.value == "lines", every_s=every_s.value)

  return make


def define_compilation_cache_flag() -> flags.FlagHolder:
  """--compilation_cache (for the commands that compile): see `io/compile_cache.py`."""
  return flags.DEFINE_string(
      "compilation_cache", compile_cache.AUTO,
      "JAX's persistent compilation cache, so that a later run of the same shapes loads its "
      "compiled steps: auto (JAX_COMPILATION_CACHE_DIR, else ENAS_JAX_COMPILATION_CACHE, else "
      "~/.cache/enas_jax/xla), off, or a directory.")


def use_compilation_cache(setting: str) -> str | None:
  """Turns the cache on (or off) before the first compile; a warning, never a failure."""
  return compile_cache.enable(setting, warn=lambda text: print(text, file=sys.stderr))


def define_keep_freed_memory_flag() -> flags.FlagHolder:
  """--keep_freed_memory (for the commands that run steps): see `io/memory.py`."""
  return flags.DEFINE_bool(
      "keep_freed_memory", False,
      "Keep freed memory in the process (glibc only) instead of returning it after every step: "
      "XLA's CPU steps then reuse their pages rather than fault them in again (steps 4-8% "
      "faster on CPU, but compiling about 45% slower, and the process holds its peak memory).")


def use_kept_memory(enabled: bool) -> bool:
  """Before the first computation: freed memory kept in the process (`io/memory.py`)."""
  return memory.keep_freed_memory(enabled)


def use_deterministic_gpu_ops(enabled: bool) -> None:
  """`--xla_gpu_deterministic_ops` for bit-exact GPU reruns; before the backend starts."""
  if enabled:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_gpu_deterministic_ops=true").strip()


def reject_positional(argv: Sequence[str], command: str) -> None:
  if len(argv) > 1:
    raise UserError(f"Unexpected arguments {' '.join(argv[1:])!r}: {command} takes only flags "
                    f"(--config=FILE, --workdir=DIR, --config.<section>.<field>=VALUE).")


def quiet_logging_unless_asked() -> None:
  """JAX and absl INFO chatter off by default; --verbosity=0 brings it back."""
  if not flags.FLAGS["verbosity"].present:
    absl_logging.set_verbosity(absl_logging.WARNING)


def check_jax_modes() -> None:
  """For the commands that compile (search, train, report): JAX's global modes, as the
  environment may set them. The 64-bit mode (JAX_ENABLE_X64, set globally in many scientific
  set-ups) is turned off for the command with a note: enas_jax computes in float32 and int32,
  and its programs failed to trace under it (a dtype traceback from a scan). Jit disabled
  (JAX_DISABLE_JIT) is refused: the run's programs are compiled ahead of time (a ValueError
  traceback from JAX's AOT path)."""
  if jax.config.jax_disable_jit:
    raise UserError("JAX_DISABLE_JIT is set in the environment (or jax_disable_jit in JAX's "
                    "config), but enas_jax compiles its steps ahead of time and cannot run them "
                    "op by op. Unset it (JAX_DISABLE_JIT=0) for this command; to look inside a "
                    "step, jax.debug.print and jax.debug.breakpoint work in compiled code.")
  if jax.config.jax_enable_x64:
    jax.config.update("jax_enable_x64", False)
    sys.stderr.write(paragraph("note: JAX_ENABLE_X64 is set in the environment; enas_jax "
                               "computes in 32 bits, so this command runs with JAX's 64-bit mode "
                               "off (its results are those of a run without it).") + "\n")


def reopen_closed_streams() -> None:
  """Standard output or error closed by the caller (`>&-`, `2>&-`, a job launcher that closes
  them): Python then leaves `sys.stdout` or `sys.stderr` None, and a run ended at its first line
  in an AttributeError (exit 1, even where nothing else was wrong). The closed descriptor is
  reopened on the null device, so what the command prints goes nowhere, as asked."""
  for fd, name in ((1, "stdout"), (2, "stderr")):
    if getattr(sys, name) is not None:
      continue
    to_null_device([fd])
    setattr(sys, name, open(fd, "w", buffering=1, encoding="utf-8", closefd=False))


def run(main: Callable[[Sequence[str]], None], resumes: bool = False) -> None:
  """`app.run` with the clear-error wrapper, the flag parser and JAX's start-up chatter (the
  backend probe's "Unable to initialize backend 'tpu'" line) off unless --verbosity is given;
  closed standard streams reopened on the null device first. `resumes`: the command checkpoints
  into a workdir and resumes from it (search, train), which a failed write's paragraph says."""
  reopen_closed_streams()

  def quiet_main(argv: Sequence[str]) -> None:
    quiet_logging_unless_asked()
    main(argv)

  app.run(run_main(quiet_main, resumes), argv=sys.argv, flags_parser=parse_flags)
