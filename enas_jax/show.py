"""`python -m enas_jax.show`: see `enas_jax.cli.show`."""
from enas_jax.cli import common
from enas_jax.cli.show import main

if __name__ == "__main__":
  common.run(main)
