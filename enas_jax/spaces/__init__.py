"""Search spaces. Each one describes its decisions, validates architectures and builds the model.

- `spaces.rnn`: the ENAS recurrent cell (Penn Treebank, WikiText-2, planted-cell corpus).
"""
