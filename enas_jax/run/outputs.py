"""What a run writes besides checkpoints and metrics: architecture files with their pictures,
their captions, the pictures TensorBoard shows, and the lines a search prints about its answer."""
from __future__ import annotations

import os
from typing import Any, Callable

from enas_jax.io import metrics as metrics_lib
from enas_jax.io import render
from enas_jax.io import workdir as workdir_lib
from enas_jax.spaces.base import Arch, SearchSpace
from enas_jax.spaces.registry import get_space


def write_arch(space: SearchSpace, stem: str, arch: Arch, extra: dict[str, Any],
               title: str = "", say: Callable[[str], None] | None = None,
               model_cfg: Any | None = None) -> dict[str, str]:
  """Writes `stem.json` (our JSON plus `extra`), `stem.txt` (the authors' string) and the
  picture under `model_cfg` captioned `title` (`stem.dot`, and `stem.png`/`stem.svg` when
  Graphviz is installed); returns the picture's {extension: path}."""
  os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
  workdir_lib.write_json(stem + ".json", {**space.to_json(arch), **extra})
  workdir_lib.write_atomically(stem + ".txt", space.to_authors_string(arch) + "\n")
  return render.write_picture(space.to_dot(arch, title or None, model_cfg), stem, say=say)


def arch_files(stem: str) -> tuple[str, ...]:
  """The files `write_arch` writes for `stem`, at most."""
  return tuple(f"{stem}.{ext}" for ext in ("json", "txt", "dot") + tuple(render.FORMATS))


def picture_title(epoch: int | None, figures: dict[str, float | None]) -> str:
  """The caption of an architecture picture: "epoch 3  reward 0.412  valid ppl 123.4"."""
  parts = [f"epoch {epoch + 1}"] if epoch is not None else []
  parts += [f"{name} {value:.4g}" for name, value in figures.items() if value is not None]
  return "  ".join(parts)


def log_pictures(log: metrics_lib.MetricsLog, epoch: int, best: dict[str, str],
                 sampled_dot: str) -> None:
  """TensorBoard images at step `epoch + 1`: `arch/best` from the picture files just written
  for the derived architecture (`best`: extension -> path, its PNG reused) and `arch/sampled`
  rendered from `sampled_dot`. Skipped without Graphviz (the run has said so once)."""
  if "png" not in best:
    return
  with open(best["png"], "rb") as f:
    pngs = {"arch/best": f.read(), "arch/sampled": render.render(sampled_dot, "png")}
  for tag, png in pngs.items():
    log.events.image(epoch + 1, tag, png, *render.png_size(png))


def screen_lines(screen: dict[str, Any] | None) -> list[str]:
  """What the answer's screen (`search.screen_steps`, run/screen.py) found, if it ran."""
  if not screen:
    return []
  steps, found = screen["steps"], screen["candidates"]
  how = (f"over the last {steps - steps // 2} of {steps} steps alone from fresh weights; a "
         f"uniform guess: {screen['limit_ppl']:.4g}")
  said = [f"{c['authors']} ({c['train_ppl']:.4g})" for c in found]
  if screen["all_failed"]:
    return [f"warning: every candidate failed the screen (training perplexity {how}): "
            f"{', '.join(said)}; the answer is the best-scored one, but it may not train alone "
            f"at this learning rate"]
  if len(found) == 1:
    return [f"screen: it trains alone (training perplexity {found[0]['train_ppl']:.4g} {how})"]
  return [f"screen: passed over {', '.join(said[:-1])} (training perplexity {how}); the answer "
          f"is the next best-scored, {said[-1]}"]


def result_lines(summary: dict[str, Any], workdir: str, model_cfg: Any = None) -> list[str]:
  """The search's answer: the authors' string, one line per node or layer, its figure under
  the shared weights, and on the planted corpus the teacher's figures."""
  space = get_space(summary["space"])
  arch = space.from_json(summary["architecture"])
  lines = ["", f"found architecture ({space.name} space): {summary['authors']}",
           f"  (the authors' format; also {os.path.join(workdir, 'best_arch.json')})"]
  lines += [f"  {line}" for line in space.describe(arch, model_cfg)]
  weights = (f"the shared weights after {summary['finetune_steps']} steps on it alone"
             if summary.get("finetune_steps") else "the shared weights")
  for key, name, digits in (("valid_ppl_shared", "perplexity", 2),
                            ("valid_acc_shared", "accuracy", 4)):
    if key in summary:
      lines.append(f"its validation {name} under {weights}: {summary[key]:.{digits}f}")
  if summary.get("final_candidates"):
    lines.append(f"picked among {len(summary['rescored'])} cells: each epoch's derived cell and "
                 f"the final controller's {summary['final_candidates']} best")
  lines += screen_lines(summary.get("screen"))
  if "valid_acc_table" in summary:
    lines.append(f"its validation accuracy in the {summary['dataset']} table (mean over its "
                 f"seeds): {100 * summary['valid_acc_table']:.2f}%, rank "
                 f"{summary['table_rank']:,} of {summary['table_cells']:,}; the best cell scores "
                 f"{100 * summary['best_possible_valid_acc']:.2f}% "
                 f"({summary['best_possible']})")
    cost = summary["simulated_cost"]
    lines.append(f"queries: {cost['queries']}, standing for {cost['simulated_seconds'] / 3600:.1f} "
                 f"simulated GPU hours of training")
  corpus = summary.get("corpus", {})
  if "teacher_ppl_valid" in corpus:
    lines.append(f"planted teacher cell: {corpus['teacher_arch']}; the teacher's optimal "
                 f"validation perplexity: {corpus['teacher_ppl_valid']:.2f} (unigram: "
                 f"{corpus['unigram_ppl_valid']:.2f})")
    if "planted_arch_valid_ppl_shared" in summary:
      how = (f"scored the same way ({summary['finetune_steps']} steps on it alone)"
             if summary.get("finetune_steps") else "under the same shared weights")
      lines.append(f"the planted cell {how}: {summary['planted_arch_valid_ppl_shared']:.2f}")
  return lines
