"""`python -m enas_jax.gif`: see `enas_jax.cli.gif`."""
from enas_jax.cli import common
from enas_jax.cli.gif import main

if __name__ == "__main__":
  common.run(main)
