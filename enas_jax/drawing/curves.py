"""A run's curves from its metrics.jsonl as one picture of panels (matplotlib, Agg backend)."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from enas_jax.io.errors import UserError
from enas_jax.io.metrics import read_metrics
from enas_jax.io.render import write_figure

PICTURE_FORMATS = (".png", ".svg", ".pdf")  # what `plot_records` writes, by the file's ending


@dataclasses.dataclass(frozen=True)
class Panel:
  title: str
  phase: str  # records of this phase
  keys: tuple[str, ...]  # plotted against the record's step
  xlabel: str
  log_y: bool = False
  epoch_axis: bool = False  # derive records count epochs from 0: shown from 1


PANELS = (
    Panel("controller reward", "controller", ("reward", "baseline"), "controller step"),
    Panel("controller entropy (nats, summed over decisions)", "controller", ("entropy",),
          "controller step"),
    Panel("shared weights: training loss", "shared", ("loss",), "shared step"),
    Panel("shared weights: training perplexity", "shared", ("ppl",), "shared step", log_y=True),
    Panel("shared weights: training accuracy", "shared", ("accuracy",), "shared step"),
    Panel("derived architecture: validation perplexity (shared weights)", "derive",
          ("valid_ppl",), "epoch", log_y=True, epoch_axis=True),
    Panel("derived architecture: validation accuracy (shared weights, or the table)", "derive",
          ("valid_acc",), "epoch", epoch_axis=True),
    Panel("training loss", "train", ("loss",), "step"),
    Panel("validation perplexity", "epoch", ("valid_ppl", "train_ppl"), "epoch", log_y=True),
    Panel("validation accuracy", "epoch", ("valid_acc",), "epoch"),
)


def series(records: list[dict[str, Any]], panel: Panel
           ) -> dict[str, tuple[list[float], list[float]]]:
  """{key: (steps, values)} of the panel's finite numbers."""
  out = {}
  for key in panel.keys:
    xs, ys = [], []
    for r in records:
      value = r.get(key)
      if r.get("phase") == panel.phase and isinstance(value, (int, float)):
        xs.append(r["step"] + (1 if panel.epoch_axis else 0))
        ys.append(float(value))
    if xs:
      out[key] = (xs, ys)
  return out


def plot_workdir(workdir: str, output: str) -> list[str]:
  """Writes the PNG; returns the titles of the panels drawn."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.isfile(path):
    raise UserError(f"{path} does not exist: --workdir must be a search or training workdir "
                    f"(one that has metrics.jsonl).")
  drawn = plot_records(read_metrics(path), output, os.path.basename(os.path.normpath(workdir)))
  if not drawn:
    raise UserError(f"{path} has no figures to plot yet (no shared, controller, derive, train "
                    f"or epoch records).")
  return drawn


def plot_records(records: list[dict[str, Any]], output: str, title: str) -> list[str]:
  """Writes the panels that `records` have figures for to the picture `output` (its format by
  its ending, one of `PICTURE_FORMATS`; nothing when there are none), atomically; returns their
  titles."""
  drawn = [(p, s) for p in PANELS if (s := series(records, p))]
  if not drawn:
    return []
  import matplotlib  # imported here: only this command needs it
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  cols = 2 if len(drawn) > 1 else 1
  rows = (len(drawn) + cols - 1) // cols
  fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.6 * rows), squeeze=False)
  for ax, (panel, data) in zip(axes.flat, drawn):
    for key, (xs, ys) in data.items():
      ax.plot(xs, ys, marker="o" if len(xs) < 40 else None, markersize=3, label=key)
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel(panel.xlabel)
    if panel.log_y:
      ax.set_yscale("log")
    if len(data) > 1:
      ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  for ax in list(axes.flat)[len(drawn):]:
    ax.axis("off")
  fig.suptitle(title)
  fig.tight_layout()
  write_figure(fig, output, dpi=100)
  plt.close(fig)
  return [p.title for p, _ in drawn]
