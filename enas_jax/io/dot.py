"""Graphviz DOT text: the shared look of every architecture picture.

Each search space draws its own architectures (`spaces/<name>/picture.py`) with these helpers:
inputs are grey rounded boxes, outputs double-bordered yellow boxes, one graph per picture with
an optional caption. `io.render` turns the text into PNG and SVG.
"""
from __future__ import annotations

INPUT_STYLE = 'shape=box, style="rounded,filled", fillcolor="#eeeeee"'
OUTPUT_STYLE = 'shape=box, peripheries=2, style="rounded,filled", fillcolor="#ffffb3"'
_HEADER = ('  rankdir=TB;\n  fontname="Helvetica";\n  node [fontname="Helvetica", style=filled];\n'
           '  edge [fontname="Helvetica"];\n')


def quote(text: str) -> str:
  """`text` as a DOT string literal."""
  return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph(name: str, body: list[str], title: str | None) -> str:
  """A directed graph `name` of the statements `body`, captioned `title` when given."""
  label = f"  label={quote(title)};\n  labelloc=t;\n" if title else ""
  return f"digraph {name} {{\n{_HEADER}{label}" + "".join(f"  {line}\n" for line in body) + "}\n"
