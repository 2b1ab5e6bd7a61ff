"""`python -m enas_jax.plot` and the `enas-plot` command: see `enas_jax.cli.plot`."""
from enas_jax.cli import common
from enas_jax.cli.plot import main


def entry() -> None:
  """The `enas-plot` console command."""
  common.run(main)


if __name__ == "__main__":
  entry()
