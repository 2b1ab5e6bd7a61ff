r"""`python -m enas_jax.show ARCH`: print and draw any architecture.

  python -m enas_jax.show workdirs/quickstart                  # a search workdir (best_arch.json)
  python -m enas_jax.show workdirs/quickstart/archs/epoch_0003.json
  python -m enas_jax.show "0 0 0 0 2 1 1 0 3 3 1"               # the authors' recurrent string
  python -m enas_jax.show "1 0 1 0 0 ..." --space=micro --output=pictures/cells
  python -m enas_jax.show dag.json                              # ENAS-pytorch's cell file

ARCH is anything the training commands accept: a search workdir, our JSON, ENAS-pytorch's
dag.json, an authors' string (recurrent, macro or micro; --space when it fits several) or an
`enas_lm:` string. Prints the space, the authors' string and one line per node or layer, and
writes OUTPUT.dot plus OUTPUT.png and OUTPUT.svg when Graphviz is installed.
"""
from __future__ import annotations

from typing import Sequence

from absl import flags

from enas_jax.cli import common as cli
from enas_jax.io import render
from enas_jax.io.errors import UserError
from enas_jax.spaces.registry import SPACES, load_any

_SPACE = flags.DEFINE_string("space", "", "The search space (spaces/registry.py); only needed for "
                             "an authors' string that fits several spaces.")
_OUTPUT = flags.DEFINE_string("output", "", "Picture path without extension (default: "
                              "<space>_arch in the current directory).")
_TITLE = flags.DEFINE_string("title", "", "Caption drawn above the picture.")


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    raise UserError("Give exactly one architecture: python -m enas_jax.show ARCH, where ARCH is "
                    "a search workdir, a JSON file or a quoted authors' string.")
  if _OUTPUT.value:
    cli.output_file(_OUTPUT.value, "output")  # a path that cannot be written: said first
  name, arch = load_any(argv[1], _SPACE.value or None)
  space = SPACES[name]
  model_cfg = space.spec_model_config(argv[1])  # what its format implies training will use
  print(f"space: {name}")
  print(f"authors' string: {space.to_authors_string(arch)}")
  print("\n".join(space.describe(arch, model_cfg) + space.known_figures(arch)))
  stem = _OUTPUT.value or f"{name}_arch"
  written = render.write_picture(space.to_dot(arch, _TITLE.value or None, model_cfg), stem)
  print("pictures: " + ", ".join(written.values()))


if __name__ == "__main__":
  cli.run(main)
