"""`python -m enas_jax.report` and the `enas-report` command: see `enas_jax.cli.report`."""
from enas_jax.cli import common
from enas_jax.cli.report import main


def entry() -> None:
  """The `enas-report` console command."""
  common.run(main)


if __name__ == "__main__":
  entry()
