"""Baselines trained through the same commands as ENAS cells (`--config.arch=lstm`)."""
