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

from enas_jax import cli
from enas_jax.drawing import describe, graphs, render
from enas_jax.errors import UserError
from enas_jax.spaces import any_space

_SPACE = flags.DEFINE_string("space", "", "rnn, macro or micro; only needed for an authors' "
                             "string that fits several spaces.")
_OUTPUT = flags.DEFINE_string("output", "", "Picture path without extension (default: "
                              "<space>_arch in the current directory).")
_TITLE = flags.DEFINE_string("title", "", "Caption drawn above the picture.")


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    raise UserError("Give exactly one architecture: python -m enas_jax.show ARCH, where ARCH is "
                    "a search workdir, a JSON file or a quoted authors' string.")
  space, arch = any_space.load_any(argv[1], _SPACE.value or None)
  print(f"space: {space}")
  print(f"authors' string: {any_space.to_authors_string(space, arch)}")
  print(describe.describe(space, arch))
  stem = _OUTPUT.value or f"{space}_arch"
  written = render.write_picture(graphs.arch_dot(space, arch, _TITLE.value or None), stem)
  print("pictures: " + ", ".join(written.values()))


if __name__ == "__main__":
  cli.run(main)
