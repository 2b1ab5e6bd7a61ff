"""The ENAS micro search space: a normal and a reduction cell, stacked into a CNN.

- `arch`: the two cells (rows of input, op, input, op), validation, sampling, decisions, formats.
- `network`: the shared-weights network (weights keyed by (node, prev), `lax.switch` per op, a
  masked 1 x 1 combine of the loose ends) and the fixed network of one architecture.
"""
