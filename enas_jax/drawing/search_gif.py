"""The search GIF: the best architecture of every epoch, drawn and captioned, one frame each."""
from __future__ import annotations

import dataclasses
import glob
import math
import os
from typing import Any

from enas_jax.drawing import frames
from enas_jax.io import render
from enas_jax.io.configuration import from_section
from enas_jax.io.errors import UserError
from enas_jax.io.workdir import as_number, make_folders
from enas_jax.spaces.registry import SPACES, from_json_any, read_json_file


def caption(data: dict[str, Any]) -> str:
  """"epoch 3  reward 0.4120  valid ppl 123.4" from an epoch's architecture JSON."""
  parts = [f"epoch {epoch_label(data)}"]
  for key, label, digits in (("reward", "reward", 4), ("valid_ppl", "valid ppl", 1),
                             ("valid_acc", "valid acc", 3)):
    value = as_number(data.get(key))  # "nan" as the search wrote it; a damaged value left out
    if value is not None:
      parts.append(f"{label} {value:.{digits}f}")
  return "   ".join(parts)


def epoch_label(data: dict[str, Any]) -> str:
  """An epoch's architecture JSON's epoch, counted from 1, or "?" where the field is damaged."""
  epoch = as_number(data.get("epoch", 0))
  return str(int(epoch) + 1) if epoch is not None and math.isfinite(epoch) else "?"


def search_model_config(workdir: str) -> Any | None:
  """The model section of the search's config.json as its space's config (the fields the
  pictures depend on; fields this version does not know are left out), or None without one."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    return None
  config = read_json_file(path)
  space = config.get("space") if isinstance(config, dict) else None
  if not isinstance(space, str) or space not in SPACES:
    return None
  cls, model = SPACES[space].model_config, config.get("model") or {}
  if not isinstance(model, dict):  # damaged: was an AttributeError traceback
    raise UserError(f"{path}: its `model` section is {model!r}, not a group of fields: the file "
                    f"is damaged. Move it aside to draw with the space's default model.")
  known = {field.name for field in dataclasses.fields(cls)}
  return from_section(cls, "model", {k: v for k, v in model.items() if k in known})


def build_gif(workdir: str, output: str, frame_ms: int = 800) -> int:
  """Writes the GIF; returns its number of frames."""
  paths = sorted(glob.glob(os.path.join(workdir, "archs", "epoch_*.json")))
  if not paths:
    raise UserError(f"{os.path.join(workdir, 'archs')} has no epoch_*.json: --workdir must be a "
                    f"search workdir with at least one derived architecture (the search writes "
                    f"one every `search.derive_every` epochs).")
  pngs, captions = [], []
  model_cfg = search_model_config(workdir)
  for path in paths:
    data = read_json_file(path)
    space, arch = from_json_any(data, where=f"architecture file {path}")
    pngs.append(render.render(SPACES[space].to_dot(arch, model_cfg=model_cfg), "png"))
    captions.append(caption(data))
  make_folders(os.path.dirname(os.path.abspath(output)))
  frames.write_gif(frames.captioned_frames(pngs, captions), output, frame_ms)
  return len(pngs)
