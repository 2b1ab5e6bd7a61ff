"""`python -m enas_jax.compare` and the `enas-compare` command: see `enas_jax.cli.compare`."""
from enas_jax.cli import common
from enas_jax.cli.compare import main


def entry() -> None:
  """The `enas-compare` command."""
  common.run(main)


if __name__ == "__main__":
  entry()
