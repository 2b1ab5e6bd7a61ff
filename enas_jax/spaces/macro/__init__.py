"""The ENAS macro search space: a whole CNN, one operation and a set of skips per layer.

- `arch`: the architecture (ops and skip matrix), validation, sampling, decisions, formats.
- `network`: the shared-weights network (traced architecture, `lax.switch` per layer) and the
  fixed network of one architecture for final training.
"""
