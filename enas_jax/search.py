"""`python -m enas_jax.search`: see `enas_jax.cli.search`."""
from enas_jax.cli import common
from enas_jax.cli.search import main

if __name__ == "__main__":
  common.run(main)
