"""Animated GIFs of architecture pictures: each frame a PNG on a white canvas of one size with a
caption band on top (Pillow)."""
from __future__ import annotations

import io
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from enas_jax.io.workdir import write_atomically

BAND_PX = 36  # height of the caption band


def _font(size: int = 18) -> ImageFont.ImageFont:
  try:
    return ImageFont.load_default(size=size)
  except TypeError:  # Pillow < 10.1: the bitmap font has one size
    return ImageFont.load_default()


def captioned_frames(pngs: Sequence[bytes], captions: Sequence[str]) -> list[Image.Image]:
  """Each picture centred on a canvas as large as the largest one, its caption above it."""
  if len(pngs) != len(captions):
    raise ValueError("one caption per picture")
  images = [Image.open(io.BytesIO(png)).convert("RGB") for png in pngs]
  font = _font()
  caption_width = max(int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(c, font=font))
                      for c in captions) + 20
  width = max([im.width for im in images] + [caption_width])
  height = max(im.height for im in images) + BAND_PX
  frames = []
  for image, caption in zip(images, captions):
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(image, ((width - image.width) // 2, BAND_PX))
    ImageDraw.Draw(canvas).text((10, 8), caption, fill="black", font=font)
    frames.append(canvas)
  return frames


def write_gif(frames: Sequence[Image.Image], path: str, frame_ms: int = 800,
              last_frame_ms: int = 2500) -> None:
  """An endlessly looping GIF, written atomically; the last frame (the final architecture)
  stays up longer."""
  durations = [frame_ms] * (len(frames) - 1) + [last_frame_ms]
  gif = io.BytesIO()
  frames[0].save(gif, format="GIF", save_all=True, append_images=list(frames[1:]),
                 duration=durations, loop=0, optimize=False, disposal=1)
  write_atomically(path, gif.getvalue())
