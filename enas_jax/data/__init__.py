"""Data: word-level corpora (`text`), LM batching (`lm_batches`), images (`images`,
`image_batches`), and the position of a stream (`cursor`). Nothing here knows a search space."""
