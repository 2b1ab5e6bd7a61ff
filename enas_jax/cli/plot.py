r"""`python -m enas_jax.plot`: a run's curves as one PNG, from its metrics.jsonl.

  python -m enas_jax.plot --workdir=workdirs/quickstart                 # WORKDIR/curves.png
  python -m enas_jax.plot --workdir=workdirs/ptb_final --output=final.png

For a search: the controller's reward with its moving-average baseline, the shared weights'
training loss and perplexity (or accuracy), and the validation figure of each epoch's derived
architecture under the shared weights. For a final training: the training loss and the
validation figure per epoch. Panels whose figures the log lacks are left out.
"""
from __future__ import annotations

from typing import Sequence

from absl import flags

from enas_jax.cli import common as cli
from enas_jax.drawing.curves import PICTURE_FORMATS, plot_workdir

_WORKDIR = flags.DEFINE_string("workdir", None, "A search or training workdir.")
_OUTPUT = flags.DEFINE_string("output", "", "The picture to write: .png, .svg or .pdf (default: "
                              "WORKDIR/curves.png).")


def main(argv: Sequence[str]) -> None:
  cli.reject_positional(argv, "python -m enas_jax.plot")
  workdir, output = cli.workdir_and_output(_WORKDIR.value, _OUTPUT.value, "plot", "curves.png",
                                           PICTURE_FORMATS)
  titles = plot_workdir(workdir, output)
  print(f"wrote {output}: " + "; ".join(titles))


if __name__ == "__main__":
  cli.run(main)
