"""`python -m enas_jax.train` and the `enas-train` command: see `enas_jax.cli.train`."""
from enas_jax.cli import common
from enas_jax.cli.train import main


def entry() -> None:
  """The `enas-train` console command."""
  common.run(main, resumes=True)


if __name__ == "__main__":
  entry()
