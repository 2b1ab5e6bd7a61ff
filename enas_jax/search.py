"""`python -m enas_jax.search` and the `enas-search` command: see `enas_jax.cli.search`."""
from enas_jax.cli import common
from enas_jax.cli.search import main


def entry() -> None:
  """The `enas-search` console command."""
  common.run(main, resumes=True)


if __name__ == "__main__":
  entry()
