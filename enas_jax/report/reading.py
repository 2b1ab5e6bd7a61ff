"""What a search has written so far, read without writing anything: its config.json, the records
of metrics.jsonl (a running search's last, half-written line skipped), summary.json when the
search has finished, and its per-epoch architecture files."""
from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Any

from enas_jax.io import metrics
from enas_jax.io import workdir as workdir_lib
from enas_jax.io.errors import UserError


REPORT_FOLDER = "report"  # WORKDIR/report/: the only place the report writes


def report_folder(workdir: str) -> str:
  return os.path.join(workdir, REPORT_FOLDER)


@dataclasses.dataclass(frozen=True)
class SearchFiles:
  """A search workdir's files as the report reads them."""

  workdir: str
  config: dict[str, Any]  # config.json
  records: list[dict[str, Any]]  # metrics.jsonl, in order
  summary: dict[str, Any] | None  # summary.json; None while the search runs (or if it stopped)
  epoch_archs: list[str]  # archs/epoch_*.json, in order

  @property
  def finished(self) -> bool:
    return self.summary is not None


def _read_json(path: str, what: str) -> dict[str, Any]:
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, ValueError) as err:
    raise UserError(f"Cannot read {what} {path} ({err}). The report reads a search's workdir "
                    f"as the search wrote it; re-run the search to rewrite it.") from None
  if not isinstance(data, dict):
    raise UserError(f"{path} is not a JSON object: it is not the {what} a search writes.")
  return data


def read_search(workdir: str) -> SearchFiles:
  """The workdir's files, or a UserError when it is not a search's workdir."""
  if not os.path.isdir(workdir):
    raise UserError(f"The workdir {workdir!r} does not exist. Pass a search's workdir: "
                    f"python -m enas_jax.report --workdir=workdirs/quickstart.")
  config_path = os.path.join(workdir, "config.json")
  if not os.path.isfile(config_path):
    raise UserError(f"{workdir} is not a search's workdir: it has no config.json (a search "
                    f"writes one when it starts). Pass the --workdir given to "
                    f"`python -m enas_jax.search`.")
  workdir_lib.check_folders(workdir, (REPORT_FOLDER,))  # where the report writes, before any work
  config = _read_json(config_path, "the search config")
  if "search" not in config or "controller" not in config:
    kind = "a final training's" if "train" in config else "not a search's"
    raise UserError(f"{workdir} is {kind} workdir (its config.json has no `search` and "
                    f"`controller` sections). The report judges a search: pass the --workdir "
                    f"of `python -m enas_jax.search`.")
  summary_path = os.path.join(workdir, "summary.json")
  summary = (_read_json(summary_path, "the search summary") if os.path.isfile(summary_path)
             else None)
  return SearchFiles(workdir=workdir, config=config,
                     records=metrics.read_metrics(os.path.join(workdir, "metrics.jsonl")),
                     summary=summary,
                     epoch_archs=sorted(glob.glob(os.path.join(workdir, "archs",
                                                               "epoch_*.json"))))
