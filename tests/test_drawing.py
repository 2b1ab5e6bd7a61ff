"""Pictures of architectures: DOT sources against hand-listed nodes and edges, rendering with and
without Graphviz, the search GIF, `show` and `plot`, and the pictures a search writes."""
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from enas_jax.io import metrics
from enas_jax.drawing import curves, frames, search_gif
from enas_jax.io import render
from enas_jax.cli import common as cli
from enas_jax.io.errors import UserError
from enas_jax.spaces import registry
from enas_jax.spaces.macro import picture as macro_picture
from enas_jax.spaces.micro import picture as micro_picture
from enas_jax.spaces.rnn import picture as rnn_picture
from enas_jax.spaces.macro.arch import make_arch as make_macro
from enas_jax.spaces.micro.arch import MicroArch
from enas_jax.spaces.micro import arch as micro_arch
from enas_jax.spaces.rnn import formats as rnn_formats
from enas_jax.spaces.rnn.cell import output_weights
from enas_jax.spaces.rnn.model import RNNModelConfig
from enas_jax.spaces.registry import SPACES

RNN = SPACES["rnn"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz `dot` not installed (.ci/run installs it)")


def _edges(dot: str) -> list[tuple[str, str, str]]:
  """(tail, head, attributes) of every edge line."""
  return [(m[1], m[2], m[3] or "") for m in re.finditer(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?;",
                                                       dot, re.M)]


def _labels(dot: str) -> dict[str, str]:
  return {m[1]: m[2] for m in re.finditer(r'^\s*(\w+) \[label="([^"]*)"', dot, re.M)}


def test_recurrent_cell_dot_has_the_cells_nodes_and_edges():
  arch = rnn_formats.from_authors_string("0 0 0 0 2 1 1 0 3 3 1")  # prev 0 0 1 0 3
  dot = rnn_picture.to_dot(arch, title="epoch 3  reward 0.41")
  labels = _labels(dot)
  assert [labels[f"n{k}"] for k in range(6)] == ["0: tanh", "1: tanh", "2: identity", "3: relu",
                                                  "4: sigmoid", "5: relu"]
  assert labels["x"] == "x[t]" and labels["h_prev"] == "h[t-1]" and labels["h"] == "h[t]"
  assert sorted((a, b) for a, b, _ in _edges(dot)) == sorted([
      ("x", "n0"), ("h_prev", "n0"), ("n0", "n1"), ("n0", "n2"), ("n1", "n3"), ("n0", "n4"),
      ("n3", "n5"), ("n2", "avg"), ("n4", "avg"), ("n5", "avg"), ("avg", "h")])
  assert rnn_picture.ACTIVATION_COLOURS["sigmoid"] in re.search(r"n4 \[.*", dot)[0]
  assert 'label="epoch 3  reward 0.41"' in dot
  assert "peripheries=2" in re.search(r"^\s*h \[.*", dot, re.M)[0]  # output marked


def test_macro_network_dot_has_layers_skips_and_reductions():
  arch = make_macro([0, 3, 5], [[], [1], [0, 1]])
  dot = macro_picture.to_dot(arch, reductions=(0,))
  labels = _labels(dot)
  assert labels["l0"] == "0: conv3x3" and labels["l1"] == "1: sep5x5"
  assert labels["l2"] == "2: maxpool3x3" and labels["r0"] == "reduce"
  edges = _edges(dot)
  solid = sorted((a, b) for a, b, attrs in edges if "dashed" not in attrs)
  dashed = sorted((a, b) for a, b, attrs in edges if "dashed" in attrs)
  assert solid == sorted([("stem", "l0"), ("l0", "r0"), ("r0", "l1"), ("l1", "l2"),
                          ("l2", "out")])
  # the authors' skip bits: layer 1's bit 0 is the stem, layer 2's bit 1 is layer 0
  assert dashed == [("l0", "l2"), ("stem", "l1")]
  assert macro_picture.MACRO_COLOURS["sep5x5"] in re.search(r"l1 \[.*", dot)[0]
  # default reductions: the authors' positions for 3 layers (after layers 0 and 1... L/3 - 1)
  assert "r0 [" in macro_picture.to_dot(arch)


def test_micro_cells_dot_has_ops_adds_and_loose_ends():
  normal = np.array([[0, 0, 1, 4], [2, 1, 0, 2]])  # 2 = sep3x3(0) + id(1); 3 = sep5x5(2) + avg(0)
  reduce = np.array([[1, 3, 1, 3], [0, 4, 1, 2]])  # 2 = max(1) + max(1); 3 = id(0) + avg(1)
  dot = micro_picture.to_dot(MicroArch(normal, reduce))
  labels = _labels(dot)
  assert labels["n2_op0"] == "sep3x3" and labels["n2_op1"] == "identity"
  assert labels["n3_op0"] == "sep5x5" and labels["n3_op1"] == "avgpool3x3"
  assert labels["r2_op0"] == "maxpool3x3" and labels["r3_op0"] == "identity"
  edges = {(a, b) for a, b, _ in _edges(dot)}
  assert {("n0", "n2_op0"), ("n1", "n2_op1"), ("n2_op0", "n2"), ("n2_op1", "n2"),
          ("n2", "n3_op0"), ("n0", "n3_op1"), ("n3", "nout")} <= edges
  # loose ends: normal cell only node 3; reduction cell nodes 2 and 3
  assert sorted(a for a, b in edges if b == "nout") == ["n3"]
  assert sorted(a for a, b in edges if b == "rout") == ["r2", "r3"]
  assert len(edges) == 2 * (2 * 2 * 2) + 1 + 2  # 2 cells x 2 nodes x 2 ops x 2 edges + outputs
  assert dot.count("subgraph cluster_") == 2


def test_without_graphviz_the_dot_is_written_and_one_line_warns_once(tmp_path, monkeypatch):
  monkeypatch.setenv("PATH", str(tmp_path / "empty"))
  monkeypatch.setattr(render, "_warned", [False])
  said = []
  source = rnn_picture.to_dot(rnn_formats.from_authors_string("0 0 1"))
  written = render.write_picture(source, str(tmp_path / "a" / "cell"), say=said.append)
  assert written == {"dot": str(tmp_path / "a" / "cell.dot")}
  assert (tmp_path / "a" / "cell.dot").read_text() == source
  render.write_picture(source, str(tmp_path / "b"), say=said.append)
  assert len(said) == 1 and "\n" not in said[0] and "graphviz" in said[0].lower()
  with pytest.raises(UserError, match="Graphviz"):
    render.render(source, "png")


@needs_dot
def test_rendering_writes_png_and_svg(tmp_path):
  arch = micro_arch.random_arch(jax.random.key(0), 5)
  written = render.write_picture(micro_picture.to_dot(arch), str(tmp_path / "cells"))
  assert set(written) == {"dot", "png", "svg"}
  png = pathlib.Path(written["png"]).read_bytes()
  height, width = render.png_size(png)
  assert Image.open(written["png"]).size == (width, height) and width > 100
  assert "<svg" in pathlib.Path(written["svg"]).read_text()


def _fake_search_workdir(tmp_path, n_epochs=3):
  """archs/epoch_*.json as a recurrent search writes them, and a metrics log."""
  workdir = tmp_path / "search"
  (workdir / "archs").mkdir(parents=True)
  strings = ["0 0 0 0 1", "0 0 1 1 2", "1 0 3 1 0"]
  log = metrics.MetricsLog(str(workdir))
  for epoch in range(n_epochs):
    arch = rnn_formats.from_authors_string(strings[epoch])
    data = {**rnn_formats.to_json(arch), "epoch": epoch, "valid_ppl": 100.0 - epoch,
            "reward": 0.5 + 0.1 * epoch}
    (workdir / "archs" / f"epoch_{epoch:04d}.json").write_text(json.dumps(data))
    for step in range(3):
      log.write("controller", 3 * epoch + step, {"reward": 0.5 + 0.01 * step, "baseline": 0.5})
      log.write("shared", 3 * epoch + step, {"loss": 5.0 - step, "ppl": 100.0 - step})
    log.write("derive", epoch, {"valid_ppl": 100.0 - epoch, "arch": strings[epoch]})
  log.close()
  return workdir


_FAKE_DOT = """#!{python}
import os, signal, sys
log = os.environ["FAKE_DOT_LOG"]
runs = open(log).read().count("\\n") if os.path.exists(log) else 0
with open(log, "a") as f:
  f.write(f"{{os.getsid(0)}}\\n")
sys.stdin.read()
if runs < int(os.environ["FAKE_DOT_KILLS"]):
  os.kill(os.getpid(), signal.SIGTERM)
sys.stdout.write("PICTURE")
"""


def test_dot_runs_in_its_own_session_and_a_signal_that_kills_it_is_survived(tmp_path, monkeypatch):
  """A Ctrl-C reaches the terminal's whole process group, and a scheduler signals each process of
  a job: `dot` killed mid-picture ended a search with "Graphviz `dot -Tpng` failed:" instead of a
  clean stop. `dot` now runs in a session of its own and, killed by a signal, runs once more."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "dot").write_text(_FAKE_DOT.format(python=sys.executable))
  (bin_dir / "dot").chmod(0o755)
  log = tmp_path / "runs"
  monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
  monkeypatch.setenv("FAKE_DOT_LOG", str(log))
  monkeypatch.setenv("FAKE_DOT_KILLS", "1")
  assert render.render("digraph {}", "png") == b"PICTURE"
  sessions = log.read_text().split()
  assert len(sessions) == 2 and str(os.getsid(0)) not in sessions
  log.unlink()
  monkeypatch.setenv("FAKE_DOT_KILLS", "2")
  with pytest.raises(UserError, match="Graphviz `dot -Tsvg` failed: killed by SIGTERM."):
    render.render("digraph {}", "svg")


@needs_dot
def test_gif_has_one_captioned_frame_per_epoch(tmp_path):
  workdir = _fake_search_workdir(tmp_path)
  out = tmp_path / "out" / "search.gif"
  assert search_gif.build_gif(str(workdir), str(out)) == 3
  with Image.open(out) as image:
    assert image.format == "GIF" and image.n_frames == 3
    sizes, pixels = set(), []
    for i in range(3):
      image.seek(i)
      sizes.add(image.size)
      pixels.append(np.asarray(image.convert("L")))
  assert len(sizes) == 1  # one canvas size for all frames
  assert not np.array_equal(pixels[0], pixels[1])  # different cells and captions
  assert search_gif.caption(json.loads((workdir / "archs" / "epoch_0002.json").read_text())) == \
      "epoch 3   reward 0.7000   valid ppl 98.0"


def test_a_caption_shows_nan_as_the_search_wrote_it_and_leaves_out_damaged_values():
  """A diverged epoch's figures are written as the text "nan"; a damaged file's values (text,
  a list, a bool) are left out of the caption instead of ending the GIF in a traceback."""
  assert search_gif.caption({"epoch": 1, "reward": "nan", "valid_ppl": "inf"}) == \
      "epoch 2   reward nan   valid ppl inf"
  assert search_gif.caption({"epoch": "x", "reward": "abc", "valid_ppl": [1],
                             "valid_acc": True}) == "epoch ?"
  assert search_gif.caption({"epoch": 0, "valid_acc": 0.5}) == "epoch 1   valid acc 0.500"


def test_gif_of_a_directory_without_architectures_is_a_clear_error(tmp_path):
  with pytest.raises(UserError, match="epoch_\\*.json"):
    search_gif.build_gif(str(tmp_path), str(tmp_path / "x.gif"))


def test_captioned_frames_share_one_canvas():
  small = Image.new("RGB", (20, 10), "red")
  big = Image.new("RGB", (60, 40), "blue")
  pngs = []
  for image in (small, big):
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    pngs.append(buf.getvalue())
  out = frames.captioned_frames(pngs, ["a", "b"])
  assert out[0].size == out[1].size and out[0].size[1] == 40 + frames.BAND_PX


def test_plot_draws_the_panels_the_log_has(tmp_path):
  workdir = _fake_search_workdir(tmp_path)
  titles = curves.plot_workdir(str(workdir), str(tmp_path / "curves.png"))
  assert titles == ["controller reward", "shared weights: training loss",
                    "shared weights: training perplexity",
                    "derived architecture: validation perplexity (shared weights)"]
  with Image.open(tmp_path / "curves.png") as image:
    assert image.format == "PNG" and image.size == (1200, 720)
  # a damaged line in the log (here the first) is one paragraph, not a traceback
  log = workdir / "metrics.jsonl"
  log.write_text("{" + log.read_text())
  with pytest.raises(UserError, match="line 1 is not JSON: the metrics log is damaged"):
    curves.plot_workdir(str(workdir), str(tmp_path / "curves.png"))


def test_plot_writes_the_format_its_ending_names_and_leaves_no_temporary_file(tmp_path):
  workdir = _fake_search_workdir(tmp_path)
  for name, start in (("c.svg", b"<?xml"), ("c.pdf", b"%PDF"), ("C.PNG", b"\x89PNG")):
    curves.plot_workdir(str(workdir), str(tmp_path / "out" / name))
    assert (tmp_path / "out" / name).read_bytes().startswith(start)
  assert sorted(os.listdir(tmp_path / "out")) == ["C.PNG", "c.pdf", "c.svg"]


def test_an_output_path_that_cannot_be_written_is_a_user_error_before_any_work(tmp_path):
  """`cli.output_file` (plot, gif, show, compare): a folder, a file on the way, a format the
  command does not write."""
  (tmp_path / "file").write_text("x")
  ok = str(tmp_path / "new" / "deeper" / "c.png")
  assert cli.output_file(ok, "output", curves.PICTURE_FORMATS) == ok
  assert cli.output_file(str(tmp_path / "stem"), "output") == str(tmp_path / "stem")
  for path, said in (
      (str(tmp_path), f"--output={tmp_path} is a folder; give a file path in it, e.g. "
                      f"--output={tmp_path}/out.gif."),
      (f"{tmp_path}/new/", "is a folder"),
      (str(tmp_path / "file" / "x" / "c.gif"), f"{tmp_path}/file is a file, not a folder"),
      (str(tmp_path / "c.png"), f"must end in .gif (the file's format); e.g. "
                                f"--output={tmp_path}/c.gif.")):
    with pytest.raises(UserError, match=re.escape(said)):
      cli.output_file(path, "output", (".gif",))
  with pytest.raises(UserError, match="--output=x.gif must end in .png or .svg or .pdf"):
    cli.workdir_and_output("w", "x.gif", "plot", "curves.png", curves.PICTURE_FORMATS)


def test_any_space_reads_each_format_and_asks_when_ambiguous(tmp_path):
  space, arch = registry.load_any("0 0 0 0 2 1 1 0 3 3 1")
  assert space == "rnn" and list(arch.prev_N)[1:] == [0, 0, 1, 0, 3]
  space, _ = registry.load_any("0 1 1 3 1 0 0 2")  # 8 integers: one micro node per cell
  assert space == "micro"
  space, _ = registry.load_any("0 3 1 5 0 1")  # 6 = 3 + 3: a 3-layer macro network
  assert space == "macro"
  path = tmp_path / "a.json"
  path.write_text(json.dumps(micro_arch.to_json(micro_arch.from_authors_string("0 1 1 3 1 0 0 2"))))
  assert registry.load_any(str(path))[0] == "micro"
  with pytest.raises(UserError, match="any search space"):
    registry.load_any("nonsense")
  # a file that is not JSON, a workdir without its answer (a search still running): one
  # sentence, not every space's complaint
  (tmp_path / "running").mkdir()
  (tmp_path / "bad.json").write_text('{"space": "rnn",')
  for spec, said in ((tmp_path / "bad.json", "is not valid JSON"),
                     (tmp_path / "running", "not a finished search workdir: it has no "
                                            "best_arch.json")):
    with pytest.raises(UserError, match=said) as err:
      registry.load_any(str(spec))
    assert "as rnn" not in str(err.value) and str(spec) in str(err.value)
  # a path that names nothing, or an empty file: likewise
  for spec, said in ((tmp_path / "gone.json", "no file or directory"),
                     (tmp_path / "empty.txt", "is empty")):
    if "empty" in spec.name:
      spec.write_text("")
    with pytest.raises(UserError, match=said) as err:
      registry.load_any(str(spec))
    assert "as rnn" not in str(err.value) and str(spec) in str(err.value)
    # the same with the space named (`show --space=micro`): not blamed on --config.arch
    with pytest.raises(UserError, match="given as the architecture"):
      registry.load_any(str(spec), "micro")
  # 45 integers: a 9-layer macro string and a 23-node recurrent string alike
  ambiguous = " ".join(["0"] * 45)
  with pytest.raises(UserError, match="--space"):
    registry.load_any(ambiguous)
  assert registry.load_any(ambiguous, "macro")[0] == "macro"


def test_the_gifs_frame_time_is_one_a_gif_can_hold(tmp_path):
  """`gif --frame_ms`: 0 or less was written as is; past 655,350 ms (16 bits of hundredths of a
  second), PIL's OverflowError was a traceback. Now the flag's range, one paragraph, exit 2."""
  from enas_jax.cli import gif
  parser = gif.flags.FLAGS["frame_ms"].parser
  for bad in ("0", "-5", "655351", "100000000000"):
    with pytest.raises(ValueError, match=r"is not an integer in the range \[10, 655350\]"):
      parser.parse(bad)
  assert parser.parse("10") == 10 and parser.parse("655350") == 655350
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  result = subprocess.run([sys.executable, "-m", "enas_jax.gif", f"--workdir={tmp_path}",
                           "--frame_ms=0"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert " ".join(result.stderr.split()).startswith(
      "error: Bad command-line flag: flag --frame_ms=0: 0 is not an integer in the range "
      "[10, 655350].")


def test_show_prints_and_draws(tmp_path):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  result = subprocess.run([sys.executable, "-m", "enas_jax.show", "0 0 0 0 2 1 1 0 3 3 1",
                           f"--output={tmp_path / 'cell'}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert "space: rnn" in result.stdout and "node 5: relu(node 3)" in result.stdout
  assert "h[t] = mean of nodes 2, 4, 5" in result.stdout
  assert (tmp_path / "cell.dot").is_file()
  assert (tmp_path / "cell.png").is_file() == (shutil.which("dot") is not None)
  # An enas_lm string: final training averages nodes 1..8 (not the loose ends 7, 8); so do the
  # text and the picture.
  lm = subprocess.run([sys.executable, "-m", "enas_jax.show",
                       "enas_lm:0 2 1 0 2 1 2 2 4 0 5 0 3 2 6 2", f"--output={tmp_path / 'lm'}"],
                      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
  assert lm.returncode == 0, lm.stderr
  assert "h[t] = mean of nodes 1, 2, 3, 4, 5, 6, 7, 8  (every node after node 0" in lm.stdout
  averaged = re.findall(r"n(\d+) -> avg;", (tmp_path / "lm.dot").read_text())
  assert averaged == [str(k) for k in range(1, 9)]
  bad = subprocess.run([sys.executable, "-m", "enas_jax.show", "0 0"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
  assert bad.returncode == 2 and "Traceback" not in bad.stderr and "error:" in bad.stderr


def test_the_described_and_drawn_output_follows_model_output():
  """Every `model.output` rule: the text line and the picture's edges into the average name the
  nodes `cell.output_weights` gives weight (the cell's real output)."""
  arch = rnn_formats.from_authors_string("0 0 0 0 2 1 1 0 3 3 1")  # loose ends 2, 4, 5
  for output, nodes in (("loose_ends", [2, 4, 5]), ("all_nodes", [0, 1, 2, 3, 4, 5]),
                        ("nodes_after_first", [1, 2, 3, 4, 5])):
    cfg = RNNModelConfig(output=output)
    weights = np.asarray(output_weights(arch, output))
    assert list(np.nonzero(weights)[0]) == nodes
    assert RNN.describe(arch, cfg)[-1].startswith(
        f"h[t] = mean of nodes {', '.join(map(str, nodes))}  (")
    assert re.findall(r"n(\d+) -> avg;", RNN.to_dot(arch, None, cfg)) == [str(k) for k in nodes]
