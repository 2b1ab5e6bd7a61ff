r"""`python -m enas_jax.gif`: an animated GIF of a search, the best architecture epoch by epoch.

  python -m enas_jax.gif --workdir=workdirs/quickstart --output=search.gif

Reads the architectures the search derived (`WORKDIR/archs/epoch_*.json`), draws each with
Graphviz and captions its frame with the epoch, the epoch's mean controller reward and the
architecture's validation figure under the shared weights. Needs Graphviz's `dot`.
"""
from __future__ import annotations

from typing import Sequence

from absl import flags

from enas_jax.cli import common as cli
from enas_jax.drawing.search_gif import build_gif

_WORKDIR = flags.DEFINE_string("workdir", None, "A search workdir.")
_OUTPUT = flags.DEFINE_string("output", "", "The GIF to write (default: WORKDIR/search.gif).")
# GIF stores each frame's time in hundredths of a second, in 16 bits: 10 ms to 655,350 ms (0 or
# less was written as is; past the top, PIL's OverflowError was a traceback).
_FRAME_MS = flags.DEFINE_integer("frame_ms", 800, "Milliseconds per frame, 10 to 655350 (the "
                                 "last: 2.5 s).", lower_bound=10, upper_bound=655350)


def main(argv: Sequence[str]) -> None:
  cli.reject_positional(argv, "python -m enas_jax.gif")
  workdir, output = cli.workdir_and_output(_WORKDIR.value, _OUTPUT.value, "gif", "search.gif",
                                           (".gif",))
  n = build_gif(workdir, output, _FRAME_MS.value)
  print(f"wrote {output} ({n} frames)")


if __name__ == "__main__":
  cli.run(main)
