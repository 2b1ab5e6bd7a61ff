"""The search GIF: the best architecture of every epoch, drawn and captioned, one frame each."""
from __future__ import annotations

import dataclasses
import glob
import os
from typing import Any

from enas_jax.drawing import frames
from enas_jax.io import render
from enas_jax.io.configuration import from_section
from enas_jax.io.errors import UserError
from enas_jax.io.workdir import make_folders
from enas_jax.spaces.registry import SPACES, from_json_any, read_json_file


def caption(data: dict[str, Any]) -> str:
  """"epoch 3  reward 0.4120  valid ppl 123.4" from an epoch's architecture JSON."""
  parts = [f"epoch {int(data.get('epoch', 0)) + 1}"]
  if data.get("reward") is not None:
    parts.append(f"reward {float(data['reward']):.4f}")
  if data.get("valid_ppl") is not None:
    parts.append(f"valid ppl {float(data['valid_ppl']):.1f}")
  if data.get("valid_acc") is not None:
    parts.append(f"valid acc {float(data['valid_acc']):.3f}")
  return "   ".join(parts)


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
