"""Files, formats and messages: errors, config sections, checkpoints, metrics and events, progress,
the workdir, pictures, processes."""
