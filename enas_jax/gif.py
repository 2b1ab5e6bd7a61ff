"""`python -m enas_jax.gif` and the `enas-gif` command: see `enas_jax.cli.gif`."""
from enas_jax.cli import common
from enas_jax.cli.gif import main


def entry() -> None:
  """The `enas-gif` console command."""
  common.run(main)


if __name__ == "__main__":
  entry()
