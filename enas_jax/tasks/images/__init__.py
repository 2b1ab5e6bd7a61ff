"""Image classification: the shared and fixed networks' steps (`steps`), the search task
(`search`) and final training (`final`)."""
from __future__ import annotations

from enas_jax.data.images import ImageDataConfig
from enas_jax.tasks.images import final, search  # noqa: F401 (tasks/__init__ reads them)
from enas_jax.tasks.images.final import CNNTrainConfig
from enas_jax.tasks.images.steps import ImageTrainConfig
from enas_jax.tasks.sections import TaskSections

SECTIONS = TaskSections(data=ImageDataConfig, shared=ImageTrainConfig, train=CNNTrainConfig)
