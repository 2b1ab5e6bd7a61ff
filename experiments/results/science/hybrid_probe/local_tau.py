"""Scratch (section 27): each seed's candidates (the ENAS search's derived cells) trained alone;
Kendall tau of their figures under the search's own weights (W1, one cell a step) and under
random search's C = 8 weights (W2) against trained alone. Run with a seed list; writes
OUT/local_tau_seed{S}.json."""
import json, os, sys
from experiments.planted import common, stats

out, seeds = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
common.use_compilation_cache(out)
scale = common.scale_of("small")
trainer = None
for s in seeds:
  w1 = json.load(open(os.path.join(out, f"enas_seed{s}", "summary.json")))
  w2 = json.load(open(os.path.join(out, f"hybrid_seed{s}", "summary.json")))
  s1 = {r["authors"]: r["valid_ppl_shared"] for r in w1["rescored"]}
  s2 = {r["authors"]: r["valid_ppl_shared"] for r in w2["rescored"]}
  if trainer is None:
    _, run = common.run_search(common.search_config(scale, s, "enas"),
                               os.path.join(out, f"enas_seed{s}"))
    trainer = common.StandaloneTrainer(common.search_config(scale, 0, "enas"), run.task.corpus,
                                       scale, keep_in=out)
  cells = list(s1)
  alone = {c: trainer.valid_perplexity(common.arch_of(c)) for c in cells}
  a = [alone[c] for c in cells]
  res = {"seed": s, "cells": cells, "alone": a, "w1": [s1[c] for c in cells],
         "w2": [s2[c] for c in cells],
         "tau_w1": stats.kendall_tau([s1[c] for c in cells], a),
         "tau_w2": stats.kendall_tau([s2[c] for c in cells], a),
         "pick_w1": w1["authors"], "pick_w2": w2["authors"], "best_alone": min(alone, key=alone.get)}
  print(res, flush=True)
  json.dump(res, open(os.path.join(out, f"local_tau_seed{s}.json"), "w"), indent=1)
