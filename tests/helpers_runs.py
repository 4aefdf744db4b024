"""Saving a run of a model made by hand (no training), for the tests of what reads runs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from groundup.runs.config import TrainConfig
from groundup.runs.saved import save_run
from groundup.runs.training import TrainedRun


def save_model(
    run_dir: Path,
    model: Any,
    config: TrainConfig | None = None,
    history: list[dict[str, Any]] | None = None,
    source: str = "sample",
    init_state: dict[str, Any] | None = None,
) -> Path:
    """Save `model` as a run of `config` (a learner stand-in holds what a run reads)."""
    dls = SimpleNamespace(source=source, train=SimpleNamespace(dataset=()))  # no images
    learner = SimpleNamespace(model=model, history=list(history or []), dls=dls)
    config = (config or TrainConfig()).resolved()
    return save_run(run_dir, TrainedRun(config, learner, init_state))  # type: ignore[arg-type]
