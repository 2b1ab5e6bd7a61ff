"""ENAS in JAX/Flax: search spaces, controller, data and training loops as pure functions."""

__version__ = "0.1.0"
