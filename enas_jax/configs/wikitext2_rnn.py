"""ENAS recurrent-cell search on WikiText-2: the PTB search settings on a larger vocabulary.

Command:
  python -m enas_jax.search --config=configs/wikitext2_rnn.py --workdir=workdirs/wt2_search \
      --config.data.dir=/path/to/wikitext-2   # wiki.train.tokens (or train.txt), valid, test
  CPU preset: --config=configs/wikitext2_rnn.py:cpu

Expected runtime: about twice the PTB search per epoch (2.1M training tokens against 0.93M, a
33,278-word softmax); the `cpu` preset a few hours on 2 CPU cores.
Expected result: no published ENAS search on WikiText-2 to compare with; report the derived cell's
perplexity after final training next to an LSTM of equal size.
"""
import ml_collections

from enas_jax.configs import ptb_rnn


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = ptb_rnn.get_config(preset)
  config.data.dir = "data/wikitext-2"  # holds wiki.{train,valid,test}.tokens or train.txt etc.
  return config
