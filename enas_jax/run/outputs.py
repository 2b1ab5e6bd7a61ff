"""What a run writes besides checkpoints and metrics: architecture files with their pictures,
their captions, and the pictures TensorBoard shows."""
from __future__ import annotations

import json
import os
from typing import Any, Callable

from enas_jax.io import metrics as metrics_lib
from enas_jax.io import render
from enas_jax.spaces.base import Arch, SearchSpace


def write_arch(space: SearchSpace, stem: str, arch: Arch, extra: dict[str, Any],
               title: str = "", say: Callable[[str], None] | None = None,
               model_cfg: Any | None = None) -> dict[str, str]:
  """Writes `stem.json` (our JSON plus `extra`), `stem.txt` (the authors' string) and the
  picture under `model_cfg` captioned `title` (`stem.dot`, and `stem.png`/`stem.svg` when
  Graphviz is installed); returns the picture's {extension: path}."""
  os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
  with open(stem + ".json", "w") as f:
    json.dump({**space.to_json(arch), **extra}, f, indent=2)
  with open(stem + ".txt", "w") as f:
    f.write(space.to_authors_string(arch) + "\n")
  return render.write_picture(space.to_dot(arch, title or None, model_cfg), stem, say=say)


def picture_title(epoch: int | None, figures: dict[str, float | None]) -> str:
  """The caption of an architecture picture: "epoch 3  reward 0.412  valid ppl 123.4"."""
  parts = [f"epoch {epoch + 1}"] if epoch is not None else []
  parts += [f"{name} {value:.4g}" for name, value in figures.items() if value is not None]
  return "  ".join(parts)


def log_pictures(log: metrics_lib.MetricsLog, epoch: int, best: dict[str, str],
                 sampled_dot: str) -> None:
  """TensorBoard images at step `epoch + 1`: `arch/best` from the picture files just written
  for the derived architecture (`best`: extension -> path, its PNG reused) and `arch/sampled`
  rendered from `sampled_dot`. Skipped without Graphviz (the run has said so once)."""
  if "png" not in best:
    return
  with open(best["png"], "rb") as f:
    pngs = {"arch/best": f.read(), "arch/sampled": render.render(sampled_dot, "png")}
  for tag, png in pngs.items():
    log.events.image(epoch + 1, tag, png, *render.png_size(png))
