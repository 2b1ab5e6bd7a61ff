"""Convolution building blocks shared by the CNN search spaces (pure functions of arrays)."""
