"""The report's check pictures (matplotlib, Agg): where the answer falls among the random cells,
the random cells scored on the two halves of the validation split, and shared-weight against
stand-alone figures."""
from __future__ import annotations

import math

from enas_jax.io import render
from enas_jax.report.scoring import Measurements


def _finite(values: list[float]) -> list[float]:
  return [v for v in values if math.isfinite(v)]


def draw_checks(m: Measurements, output: str) -> None:
  """Writes the PNG `output` (atomically): two panels, three when cells were trained alone."""
  import matplotlib  # imported here: only the report and the plots need it
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  name = f"valid {m.metric}" + (" (shared weights)" if m.figure_source == "shared" else
                                " (the table)")
  log = m.metric == "ppl"
  panels = 3 if m.alone else 2
  fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.0), squeeze=False)
  _answer_among_random(axes[0, 0], m, name, log)
  _halves(axes[0, 1], m, name, log)
  if m.alone:
    _alone(axes[0, 2], m, name, log)
  for a in axes.flat:
    a.grid(alpha=0.3)
  fig.tight_layout()
  render.write_figure(fig, output, dpi=90)
  plt.close(fig)


def _answer_among_random(ax, m: Measurements, name: str, log: bool) -> None:
  whole = _finite([c.whole for c in m.random])
  if whole:
    bins = min(20, max(5, len(whole) // 2))
    label = f"{len(whole)} random cells"
    if log and min(whole) > 0 and max(whole) > min(whole):
      lo, hi = math.log10(min(whole)), math.log10(max(whole))
      ax.hist(whole, bins=[10 ** (lo + (hi - lo) * i / bins) for i in range(bins + 1)],
              color="#8c959f", label=label)
      ax.set_xscale("log")
    else:
      ax.hist(whole, bins=bins, color="#8c959f", label=label)
  ax.axvline(m.answer.whole, color="#cf222e", linewidth=2, label="the answer")
  ax.set_xlabel(name)
  ax.set_ylabel("cells")
  ax.set_title("The answer among random cells", fontsize=10)
  ax.legend(fontsize=8)


def _halves(ax, m: Measurements, name: str, log: bool) -> None:
  pairs = [c.halves for c in m.random if c.halves and all(map(math.isfinite, c.halves))]
  ax.scatter([a for a, _ in pairs], [b for _, b in pairs], s=18, color="#0969da",
             label="random cells")
  if m.answer.halves and all(map(math.isfinite, m.answer.halves)):
    ax.scatter([m.answer.halves[0]], [m.answer.halves[1]], s=40, color="#cf222e",
               label="the answer")
  if log and pairs and min(min(p) for p in pairs) > 0:
    ax.set_xscale("log")
    ax.set_yscale("log")
  ax.set_xlabel(f"{name}, first half")
  ax.set_ylabel(f"{name}, second half")
  ax.set_title("Score stability: the two halves of the validation split", fontsize=10)
  ax.legend(fontsize=8)


def _alone(ax, m: Measurements, name: str, log: bool) -> None:
  for cell in m.alone:
    if math.isfinite(cell.whole) and cell.alone is not None and math.isfinite(cell.alone):
      answer = cell.role == "answer"
      ax.scatter([cell.whole], [cell.alone], s=40 if answer else 18,
                 color="#cf222e" if answer else "#0969da")
  if log:
    ax.set_xscale("log")
    ax.set_yscale("log")
  ax.set_xlabel(name)
  ax.set_ylabel(f"valid {m.metric}, trained alone {m.alone_steps} steps")
  ax.set_title("Shared weights against training alone (red: the answer)", fontsize=10)
