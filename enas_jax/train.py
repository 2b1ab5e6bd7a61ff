"""`python -m enas_jax.train`: see `enas_jax.cli.train`."""
from enas_jax.cli import common
from enas_jax.cli.train import main

if __name__ == "__main__":
  common.run(main)
