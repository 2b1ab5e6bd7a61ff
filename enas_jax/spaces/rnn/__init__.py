"""The ENAS recurrent-cell search space.

- `arch`: the architecture (two int32 arrays), its validation, random sampling, decisions.
- `cell`: shared weights keyed by (node, prev) and the traced-architecture cell unrolled in time.
- `model`: the language model around the cell (embedding, dropouts, softmax), shared or fixed.
- `formats`: our JSON, the authors' TensorFlow string, ENAS-pytorch's dag.json.
"""
