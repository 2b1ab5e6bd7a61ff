"""Pictures of architectures and runs: Graphviz DOT sources, rendering, the search GIF, curves."""
