"""Pictures of runs: the search GIF (any space, through the registry) and the curves of
metrics.jsonl. Each space draws its own architectures (`spaces/<name>/picture.py`)."""
