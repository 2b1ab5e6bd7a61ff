"""Running a config's preset in-process, quietly, for the tests of the search and training loops."""
import io
from typing import Any

import ml_collections

from enas_jax.io import metrics
from enas_jax.run import config as run_config
from enas_jax.run import final as final_run
from enas_jax.run import search as search_run


def preset(config_module: Any, name: str, section: str, **fields: Any
           ) -> ml_collections.ConfigDict:
  """`config_module.get_config(name)` with `fields` of `section` changed."""
  config = config_module.get_config(name)
  for field, value in fields.items():
    config[section][field] = value
  return config


def search_config(config_module: Any, name: str = "tiny", **search: Any) -> Any:
  """The checked search config of a preset, with `search` section fields changed."""
  return run_config.search_config(preset(config_module, name, "search", **search))


def final_config(config_module: Any, name: str = "tiny", **train: Any) -> Any:
  """The checked final-training config of a preset, with `train` section fields changed."""
  return run_config.final_config(preset(config_module, name, "train", **train))


def search(cfg: Any, workdir: Any) -> tuple[search_run.SearchRun, dict]:
  """(the run, its summary) of a whole search, its output swallowed."""
  run = search_run.SearchRun(cfg, str(workdir), io.StringIO(), metrics.Progress(enabled=False))
  return run, run.execute()


def final(cfg: Any, workdir: Any) -> tuple[final_run.FinalRun, dict]:
  """(the run, its summary) of a whole final training, its output swallowed."""
  run = final_run.FinalRun(cfg, str(workdir), io.StringIO(), metrics.Progress(enabled=False))
  return run, run.execute()
