"""`python -m enas_jax.plot`: see `enas_jax.cli.plot`."""
from enas_jax.cli import common
from enas_jax.cli.plot import main

if __name__ == "__main__":
  common.run(main)
