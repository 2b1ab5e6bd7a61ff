"""Language modelling: corpora and the planted corpus (`data`, `planted`), the language model's
steps (`steps`), the search task (`search`) and final training (`final`)."""
from __future__ import annotations

from typing import Any

from enas_jax.io.errors import UserError
from enas_jax.tasks.language import final, search  # noqa: F401 (tasks/__init__ reads them)
from enas_jax.tasks.language.data import TextDataConfig
from enas_jax.tasks.language.final import FinalTrainConfig
from enas_jax.tasks.language.steps import SharedTrainConfig
from enas_jax.tasks.sections import TaskSections


def _check_search(cfg: Any) -> None:
  if cfg.controller.reward not in ("inverse_ppl", "inverse_ppl_squared"):
    raise UserError(f"Config field `controller.reward` is {cfg.controller.reward!r}; a language "
                    f"model's reward is `controller.reward_c` / perplexity: \"inverse_ppl\" or "
                    f"\"inverse_ppl_squared\" (accuracy is the image spaces' reward, which "
                    f"they use without this field). Set --config.controller.reward=inverse_ppl "
                    f"(the default) or inverse_ppl_squared.")
  cells = cfg.shared.cells_per_step
  if cells > 1 and cfg.data.batch_size % cells:
    raise UserError(f"Config field `shared.cells_per_step` is {cells}, which does not divide "
                    f"`data.batch_size` ({cfg.data.batch_size}): each cell of a shared step "
                    f"trains on an equal share of the batch's rows. Pick a divisor of the batch "
                    f"size, or change the batch size.")
  if cells > 1 and cfg.search.fair_every:
    raise UserError(f"Config fields `shared.cells_per_step` ({cells}) and `search.fair_every` "
                    f"({cfg.search.fair_every}) together: the fair stream gives one architecture "
                    f"a step. Set one of them back (`shared.cells_per_step=1` or "
                    f"`search.fair_every=0`).")


SECTIONS = TaskSections(
    data=TextDataConfig, shared=SharedTrainConfig, train=FinalTrainConfig,
    final_fields=(("lstm_hidden_dim", int, 0),), controller_fields=("reward_c", "reward"),
    arch_hint=(", e.g. '0 0 1 1 2 ...'; also ENAS-pytorch's dag.json, the corrected ENAS LM "
               "code's 'enas_lm:0 2 1 0 ...', or 'lstm' for the LSTM baseline"),
    check_search=_check_search)
