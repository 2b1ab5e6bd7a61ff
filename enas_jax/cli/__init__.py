"""The command-line entry points: flags only, then one call (python -m enas_jax.<command>,
enas-<command>)."""
