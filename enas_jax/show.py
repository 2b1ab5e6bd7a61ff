"""`python -m enas_jax.show` and the `enas-show` command: see `enas_jax.cli.show`."""
from enas_jax.cli import common
from enas_jax.cli.show import main


def entry() -> None:
  """The `enas-show` console command."""
  common.run(main)


if __name__ == "__main__":
  entry()
