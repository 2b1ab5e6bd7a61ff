"""The search report (`python -m enas_jax.report`): can a search's answer be trusted? Reads a
search's workdir (`reading`), measures under its newest checkpoint (`scoring`), judges
(`checks`, with `stats`), draws (`figures`) and writes the pages (`page`); `build` puts it
together."""
