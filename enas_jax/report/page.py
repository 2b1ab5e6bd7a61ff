"""The report's pages: `report.md` (images beside it) and `index.html` (one self-contained file:
every image inlined as a data URI, no network needed), from the measured checks and pictures.

The HTML page marks on its <body> whether every image decoded (`data-images="N/M loaded"`) and
shows a warning line when one did not: a reader (or a browser test) sees at once if the page is
whole.
"""
from __future__ import annotations

import base64
import dataclasses
import html
import os
from typing import Sequence

from enas_jax.io import workdir as workdir_lib
from enas_jax.report.checks import Check

_MIME = {".png": "image/png", ".gif": "image/gif", ".svg": "image/svg+xml"}


@dataclasses.dataclass(frozen=True)
class Figure:
  """An image file in the report folder and its caption."""

  path: str
  caption: str


@dataclasses.dataclass(frozen=True)
class Section:
  """A titled part of the page: paragraphs, a table, figures."""

  title: str
  paragraphs: Sequence[str] = ()
  table: Sequence[Sequence[str]] = ()  # the first row is the header
  figures: Sequence[Figure] = ()


@dataclasses.dataclass(frozen=True)
class Page:
  title: str
  verdict_word: str
  verdict: str
  checks: Sequence[Check]
  sections: Sequence[Section]


_ICON = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "n/a": "n/a"}
_COLOUR = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "n/a": "#57606a"}


def write_markdown(page: Page, path: str) -> None:
  folder = os.path.dirname(path)
  lines = [f"# {page.title}", "", f"**Verdict: {page.verdict_word}.** {page.verdict}", "",
           "## Health checks", ""]
  for c in page.checks:
    lines += [f"- **[{_ICON[c.status]}] {c.title}**: {c.figure}.", f"  {c.reading}"]
    if c.remedy:
      lines.append(f"  *What to do:* {c.remedy}")
  for s in page.sections:
    lines += ["", f"## {s.title}", ""]
    for p in s.paragraphs:
      lines += [p, ""]
    if s.table:
      cells = [[v.replace("|", "\\|") for v in row] for row in s.table]  # NAS-Bench-201's |
      lines.append("| " + " | ".join(cells[0]) + " |")
      lines.append("|" + "|".join("---" for _ in cells[0]) + "|")
      lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
      lines.append("")
    for f in s.figures:
      lines += [f"![{f.caption}]({os.path.relpath(f.path, folder)})", "", f"*{f.caption}*", ""]
  workdir_lib.write_atomically(path, "\n".join(lines).rstrip() + "\n")


def _data_uri(path: str) -> str:
  with open(path, "rb") as f:
    data = base64.b64encode(f.read()).decode()
  return f"data:{_MIME[os.path.splitext(path)[1]]};base64,{data}"


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
.verdict { font-size: 1.2em; padding: .6em 1em; border-radius: 6px; border: 2px solid; }
.check { margin: .6em 0; padding: .4em .8em; border-left: 5px solid; background: #f6f8fa; }
.status { font-weight: bold; font-family: monospace; }
table { border-collapse: collapse; font-size: .92em; }
td, th { border: 1px solid #d0d7de; padding: .25em .6em; text-align: left; }
th { background: #f6f8fa; } code { font-size: .95em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: .9em; } #broken { color: #cf222e; font-weight: bold; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images", ok + "/" + images.length + " loaded");
  if (ok < images.length) {
    document.getElementById("broken").textContent =
        (images.length - ok) + " picture(s) of this report failed to load.";
  }
});
"""


def write_html(page: Page, path: str) -> None:
  e = html.escape
  colour = {"trust": _COLOUR["pass"], "caution": _COLOUR["warn"],
            "distrust": _COLOUR["fail"]}.get(page.verdict_word, _COLOUR["n/a"])
  parts = [
      "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
      f"<title>{e(page.title)}</title><style>{_STYLE}</style>",
      f"<script>{_SCRIPT}</script></head><body>", f"<h1>{e(page.title)}</h1>",
      "<p id=\"broken\"></p>",
      f"<p class=\"verdict\" id=\"verdict\" style=\"border-color:{colour}\"><b>Verdict: "
      f"{e(page.verdict_word)}.</b> {e(page.verdict)}</p>", "<h2>Health checks</h2>"]
  for c in page.checks:
    col = _COLOUR[c.status]
    parts.append(
        f"<div class=\"check\" style=\"border-color:{col}\"><span class=\"status\" "
        f"style=\"color:{col}\">[{_ICON[c.status]}]</span> <b>{e(c.title)}</b>: {e(c.figure)}."
        f"<br>{e(c.reading)}"
        + (f"<br><i>What to do:</i> {e(c.remedy)}" if c.remedy else "") + "</div>")
  for s in page.sections:
    parts.append(f"<h2>{e(s.title)}</h2>")
    parts += [f"<p>{e(p)}</p>" for p in s.paragraphs]
    if s.table:
      parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in s.table[0]) + "</tr>")
      parts += ["<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>"
                for row in s.table[1:]]
      parts.append("</table>")
    for f in s.figures:
      parts.append(f"<figure><img src=\"{_data_uri(f.path)}\" alt=\"{e(f.caption)}\">"
                   f"<figcaption>{e(f.caption)}</figcaption></figure>")
  parts.append("</body></html>")
  workdir_lib.write_atomically(path, "\n".join(parts) + "\n")
