"""Run directories: a trained model saved as `model.safetensors` + `model.json`.

    RUN_DIR/
      model.safetensors   the weights, by name (no pickle: safe to load from anyone)
      model.json          how to rebuild and use them: architecture, digits, data
                          source, preprocessing, history, seed, versions
      init.safetensors    (optional) the weights before training, for the report

Each file is written to a temporary file beside it, then renamed over the old
one, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from groundup.atomic import atomic_dir, atomic_write_bytes  # noqa: F401 (re-exported)
from groundup.errors import RunError, UsageError
from groundup.learn.models import MODELS, ModelSpec, build_model
from groundup.learn.task import Task

if TYPE_CHECKING:
    from groundup.runs.training import TrainedRun

FORMAT = "groundup-run"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
META = "model.json"
INIT_WEIGHTS = "init.safetensors"

# How raw pixels become model inputs; predict applies the same.
PREPROCESSING = {
    "image": "28x28 grayscale, light ink on a dark background (MNIST's convention)",
    "scale": "pixel / 255, giving [0, 1]",
    "flatten": "row-major, 784 values",
    "user_images": "inverted if dark on light, cropped to the ink, fit in 20x20, "
    "centred by centre of mass in 28x28",
}


@dataclass
class Run:
    """A saved model, loaded: `run.predict(x)` gives class probabilities."""

    path: Path | None  # None for a run not saved yet: the web page's, as it trains
    model: Any
    spec: ModelSpec
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def digits(self) -> tuple[int, ...]:
        return tuple(self.meta["digits"])

    @property
    def task(self) -> Task:
        return Task(self.digits)

    @property
    def binary(self) -> bool:
        return self.task.binary

    def predict_proba(self, x: Tensor) -> Tensor:
        """x: (N, 784) in [0, 1]. Returns (N, C): the probability of each digit in `digits`."""
        with torch.no_grad():
            if hasattr(self.model, "eval"):
                self.model.eval()
            return self.task.probabilities(self.model(x))

    def _repr_html_(self) -> str:
        import html

        final = self.meta.get("final", {})
        rows = {
            "model": f"{self.spec.name} ({self.spec.n_in} → {self.spec.n_out})",
            "digits": " ".join(map(str, self.digits)),
            "data": self.meta.get("data", {}).get("source", "?"),
            "epochs": len(self.meta.get("history", [])),
            **{k: f"{final[k]:.4f}" for k in ("accuracy", "valid_loss") if k in final},
            "created": self.meta.get("created", "?"),
        }
        body = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in rows.items()
        )
        return f"<b>Run</b> <code>{html.escape(str(self.path))}</code><table>{body}</table>"


def save_run(run_dir: str | Path, trained: TrainedRun) -> Path:
    """Save a trained run, and everything needed to rebuild and use it, into `run_dir`.

    The weights it started from are kept in init.safetensors, so a report can show
    what training changed.
    """
    from safetensors.torch import save

    run_dir = Path(run_dir)
    config = trained.config
    state = {k: v.detach().to("cpu").contiguous() for k, v in trained.model.state_dict().items()}
    history = list(trained.history)
    final = {k: v for k, v in (history[-1] if history else {}).items() if k != "seconds"}
    source = trained.source
    if Path(source).exists():  # a folder: keep it findable from any working directory
        source = str(Path(source).resolve())
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": trained.spec.to_dict(),
        "digits": list(config.digits),
        "data": {"source": source},
        "preprocessing": PREPROCESSING,
        "history": history,
        "final": final,
        "seed": config.seed,
        "config": config.to_dict(),
        "versions": {
            "groundup": _version(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "compute": run_compute(trained),
        **(trained.extra or {}),
    }
    files = {WEIGHTS: save(state), META: (json.dumps(meta, indent=2) + "\n").encode()}
    if trained.init_state is not None:
        init = {k: v.detach().to("cpu").contiguous() for k, v in trained.init_state.items()}
        files[INIT_WEIGHTS] = save(init)
    check_run_dir_writable(run_dir)
    try:
        # the whole folder at once: never new weights beside an old model.json
        with atomic_dir(run_dir) as tmp:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
    except OSError as err:
        raise RunError(f"cannot save the run to {run_dir}: {err.strerror or err}") from None
    return run_dir


def run_compute(trained: TrainedRun) -> dict[str, int]:
    """What the run cost to train, counted from its model's shapes (learn/compute.py)."""
    from groundup.learn.compute import forward_flops, training_flops

    n_train = len(trained.learner.dls.train.dataset)
    epochs = len(trained.history)
    return {
        "forward_flops_per_image": forward_flops(trained.model, trained.spec.n_in),
        "train_images": n_train,
        "epochs": epochs,
        "training_flops": training_flops(trained.model, n_train, epochs, trained.spec.n_in),
    }


def check_run_dir_writable(run_dir: str | Path) -> None:
    """Refuse a `--out` that saving would fail on, or that is not ours to replace.

    An existing folder is replaced only when it is empty or holds a groundup run,
    never a folder of the user's own files (say `--out .`).
    """
    run_dir = Path(run_dir)
    if run_dir.exists():
        if not run_dir.is_dir():
            raise RunError(f"{run_dir} exists and is not a folder: choose another --out")
        if any(run_dir.iterdir()) and not (run_dir / META).is_file():
            raise RunError(
                f"{run_dir} already holds files that are not a groundup run: choose another --out"
            )
    parent = run_dir.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise RunError(f"cannot create {run_dir}: {parent} is not a writable folder")


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> Run:
    """Load a run directory written by `save_run`; a clear `RunError` if anything is off."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"no run directory at {run_dir}")
    meta_path, weights_path = run_dir / META, run_dir / WEIGHTS
    for p in (meta_path, weights_path):
        if not p.is_file():
            raise RunError(f"{run_dir} is not a complete run: {p.name} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{meta_path} is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RunError(f"{meta_path} was not written by groundup")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise RunError(f"{meta_path} has no valid format_version")
    if version > FORMAT_VERSION:
        raise RunError(f"{meta_path} is from a newer groundup; upgrade to load it")
    # A hand-edited or mixed-up model.json must fail here, not predict wrong digits later
    digits, model_desc = meta.get("digits"), meta.get("model")
    if not (
        isinstance(digits, list)
        and len(digits) >= 2
        and len(set(digits)) == len(digits)
        and all(type(d) is int and 0 <= d <= 9 for d in digits)
    ):
        raise RunError(f"{meta_path}: 'digits' must list two or more digits 0-9, not {digits!r}")
    if not isinstance(model_desc, dict):
        raise RunError(f"{meta_path}: 'model' must describe the architecture, not {model_desc!r}")
    try:
        # read on the CPU, whatever the device: a device the file reader does not know
        # ("meta", a cuda:N that is missing) is then the move's error, not "corrupt"
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise RunError(f"{weights_path} is corrupt or not a safetensors file ({err})") from None
    try:
        spec = ModelSpec.from_dict(model_desc)
    except TypeError as err:
        raise RunError(f"{meta_path}: 'model' is not a model description ({err})") from None
    if spec.name not in MODELS:
        raise RunError(
            f"{meta_path} names an unknown model {spec.name!r}; "
            f"this groundup knows {', '.join(MODELS)}"
        )
    n_out = Task(digits).n_out
    if spec.n_out != n_out:
        raise RunError(
            f"{meta_path} does not add up: {len(digits)} digits need {n_out} output(s), "
            f"but its model has {spec.n_out}"
        )
    try:
        model = build_model(spec)
    except (ValueError, RuntimeError, KeyError, TypeError, UsageError) as err:
        raise RunError(f"{meta_path}: its model cannot be built ({err})") from None
    try:
        model.load_state_dict(state)
    except (ValueError, RuntimeError, KeyError, TypeError) as err:
        raise RunError(f"{weights_path} does not match the model in {META}: {err}") from None
    if hasattr(model, "to"):
        model = model.to(device)
    return Run(run_dir, model, spec, meta)


def load_init_state(run_dir: str | Path) -> dict[str, Tensor] | None:
    """The weights before training, if the run saved them (init.safetensors), else None."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(run_dir) / INIT_WEIGHTS
    if not path.is_file():
        return None
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise RunError(f"{path} is corrupt or not a safetensors file ({err})") from None


def _version() -> str:
    from groundup import __version__

    return __version__
