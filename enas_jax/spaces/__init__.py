"""Search spaces: one package per space (`rnn`, `macro`, `micro`), each with a `SPACE` object
implementing `base.SearchSpace`; `registry.SPACES` is the only table from a name to a space."""
