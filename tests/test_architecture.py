"""The package's shape: layers that import only downwards, one table of search spaces, small
modules and functions (docs/architecture.md)."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "enas_jax"
# Lowest first: a module may import from its own layer or any layer below, never above.
LAYERS = [
    {"types", "io"},
    {"data", "ops"},
    {"spaces"},
    {"controller"},
    {"tasks"},
    {"run", "drawing"},
    {"report"},
    {"cli", "search", "train", "show", "gif", "plot", "compare", "configs"},
]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _layer(top: str) -> int:
  for i, names in enumerate(LAYERS):
    if top in names:
      return i
  raise AssertionError(f"enas_jax.{top} is in no layer of tests/test_architecture.py")


def _modules():
  return sorted(p for p in PACKAGE.rglob("*.py"))


def _top(path: pathlib.Path) -> str:
  return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(path: pathlib.Path) -> set[str]:
  out = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("enas_jax"):
      parts = node.module.split(".")
      if len(parts) > 1:
        out.add(parts[1])
      else:  # from enas_jax import x
        out.update(alias.name for alias in node.names)
    elif isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name.startswith("enas_jax."):
          out.add(alias.name.split(".")[1])
  return out


def test_every_module_imports_only_its_own_layer_or_lower():
  bad = []
  for path in _modules():
    if path.parent == PACKAGE and path.name == "__init__.py":
      continue
    # A package's __main__.py is an entry point, like enas_jax/search.py: the commands' layer.
    own = _layer("cli") if path.name == "__main__.py" else _layer(_top(path))
    for imported in _imports(path):
      if _layer(imported) > own:
        bad.append(f"{path.relative_to(PACKAGE)} imports enas_jax.{imported}")
  assert not bad, bad


def test_the_layering_check_would_catch_an_upward_import(tmp_path):
  path = tmp_path / "x.py"
  path.write_text("from enas_jax.run.search import SearchRun\n")
  assert _layer(next(iter(_imports(path)))) > _layer("spaces")


def test_one_table_names_the_spaces():
  """Only the registry (and each space's own package) spells a space's name as a string; the
  config files choose a space by name (that is their job)."""
  offenders = []
  for path in _modules():
    rel = path.relative_to(PACKAGE).as_posix()
    if rel.startswith("configs/"):
      continue
    for name in ("rnn", "macro", "micro", "nasbench201"):
      if f'"{name}"' in path.read_text() and rel != "spaces/registry.py" \
          and not rel.startswith(f"spaces/{name}/"):
        offenders.append(f"{rel}: \"{name}\"")
  assert not offenders, offenders


def test_modules_and_functions_are_small():
  long_modules, long_functions = [], []
  for path in _modules():
    text = path.read_text()
    if len(text.splitlines()) > MAX_MODULE_LINES:
      long_modules.append(f"{path.relative_to(PACKAGE)}: {len(text.splitlines())}")
    if path.relative_to(PACKAGE).parts[0] == "configs":
      continue  # a config's get_config is one commented line per field, not logic
    for node in ast.walk(ast.parse(text)):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        n = node.end_lineno - node.lineno + 1
        if n > MAX_FUNCTION_LINES:
          long_functions.append(f"{path.relative_to(PACKAGE)}:{node.name} {n}")
  assert not long_modules, long_modules
  assert not long_functions, long_functions


def test_public_functions_have_type_hints():
  """Every public module-level function and method (and `__call__`) is fully annotated."""
  missing = []
  for path in _modules():
    tree = ast.parse(path.read_text())
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
      defs += [n for n in cls.body if isinstance(n, ast.FunctionDef)]
    for node in defs:
      if node.name.startswith("_") and node.name not in ("__call__", "__init__"):
        continue
      args = [a for a in node.args.args + node.args.kwonlyargs if a.arg not in ("self", "cls")]
      if (node.returns is None and node.name != "__init__") or any(
          a.annotation is None for a in args):
        missing.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
  assert not missing, missing
