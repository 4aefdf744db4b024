"""Run directories: a trained model saved as `model.safetensors` + `model.json`.

    RUN_DIR/
      model.safetensors   the weights, by name (no pickle: safe to load from anyone)
      model.json          how to rebuild and use them: architecture, digits, data
                          source, preprocessing, history, seed, versions
      init.safetensors    (optional) the weights before training, for the report

The folder is written whole: a new folder is filled beside it, then swapped in
(`groundup.atomic.atomic_dir`), so that at every instant RUN_DIR holds the old
run or the new one. Saving over an existing folder replaces only a run: a folder
holding any file groundup did not write (notes, a report of your own) is refused,
naming those files, so nothing of yours is ever deleted (`check_run_dir_writable`).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from groundup.atomic import atomic_dir, atomic_write_bytes, recover_dir  # noqa: F401
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
REPORT = "report.html"  # written by `groundup report` / `train --report`
RUN_FILES = (WEIGHTS, META, INIT_WEIGHTS)
# How a report groundup wrote begins (report.py's <title>): a report.html without it
# is the user's own, and is never replaced.
REPORT_MARK = b"<title>groundup report:"

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
            # the same seed gives the same numbers only at the same thread count
            "torch_threads": torch.get_num_threads(),
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
        with atomic_dir(run_dir, owned=owned_by_run) as tmp:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
    except OSError as err:
        raise RunError(f"cannot save the run to {run_dir}: {err.strerror or err}") from None
    return run_dir


def owned_by_run(entry: Path) -> bool:
    """Whether `entry`, in a run folder, is a file groundup wrote there (and may replace):
    the run's files, a report it wrote, or a temporary file of one, left by a crash."""
    name = entry.name
    if entry.is_symlink() or not entry.is_file():
        return False
    if name in RUN_FILES:
        return True
    if name == REPORT:
        try:
            with entry.open("rb") as f:
                return REPORT_MARK in f.read(1024)
        except OSError:
            return False
    return name.endswith(".tmp") and any(name.startswith(f".{n}.") for n in (*RUN_FILES, REPORT))


def recover_run_dir(run_dir: str | Path) -> list[str]:
    """Repair or remove what an interrupted save left beside `run_dir`; one note per
    thing done (see `groundup.atomic.recover_dir`). Only groundup's files are removed."""
    try:
        return recover_dir(run_dir, owned=owned_by_run)
    except OSError as err:
        raise RunError(f"cannot tidy up beside {run_dir}: {err.strerror or err}") from None


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

    - not the current folder, nor a folder holding it (it would be swapped away);
    - an existing folder is replaced only when every file in it is groundup's
      (`owned_by_run`): any other file is named, and the save refused;
    - the folder that will hold it must let us create the new folder (tried, not
      guessed from permission bits: /proc and /sys say yes and then refuse).
    """
    run_dir = Path(run_dir)
    here, target = Path.cwd().resolve(), run_dir.resolve()
    if target == here or target in here.parents:
        what = "the current folder" if target == here else "a folder above the current one"
        raise UsageError(
            f"--out {run_dir} is {what}: saving replaces the whole folder; "
            "choose a new folder, such as runs/my-run"
        )
    if run_dir.exists():
        if not run_dir.is_dir():
            raise RunError(f"{run_dir} exists and is not a folder: choose another --out")
        try:
            foreign = sorted(e.name for e in run_dir.iterdir() if not owned_by_run(e))
        except OSError as err:
            raise RunError(f"cannot read {run_dir}: {err.strerror or err}") from None
        if foreign:
            shown = ", ".join(foreign[:5]) + (
                f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            )
            raise RunError(
                f"{run_dir} holds files groundup did not write ({shown}); saving replaces "
                "the whole folder, so move them out or choose another --out"
            )
    parent = run_dir.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        # named as a save's temporary folder, so a kill right here leaves nothing unknown
        prefix, suffix = f".{run_dir.name}.{os.getpid()}.", ".tmp"
        Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent)).rmdir()
    except OSError as err:
        raise RunError(
            f"cannot create {run_dir}: {parent} is not a folder we can write "
            f"({err.strerror or err})"
        ) from None


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
    check_meta(meta, meta_path)
    digits, model_desc = meta["digits"], meta["model"]
    spec = ModelSpec.from_dict(model_desc)
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
    # Compare the shapes model.json implies with those in the weights' header before
    # building anything: a hand-edited `hidden` must not allocate a huge model first.
    try:
        with torch.device("meta"):  # shapes only, no memory
            expected = {k: tuple(v.shape) for k, v in build_model(spec).state_dict().items()}
    except (ValueError, RuntimeError, KeyError, TypeError, UsageError) as err:
        raise RunError(f"{meta_path}: its model cannot be built ({err})") from None
    stored = _stored_shapes(weights_path)
    if stored != expected:
        missing = [k for k in expected if k not in stored]
        extra = [k for k in stored if k not in expected]
        wrong = [k for k in expected if k in stored and stored[k] != expected[k]]
        if wrong:
            k = wrong[0]
            why = f"{k} is {list(stored[k])} in the weights but {list(expected[k])} in the model"
        elif missing:
            why = f"the weights have no {missing[0]} (the model needs {list(expected[missing[0]])})"
        else:
            why = f"the weights hold {extra[0]}, which the model has not"
        raise RunError(f"{weights_path} does not match the model in {META}: {why}")
    try:
        # read on the CPU, whatever the device: a device the file reader does not know
        # ("meta", a cuda:N that is missing) is then the move's error, not "corrupt"
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise RunError(f"{weights_path} is corrupt or not a safetensors file ({err})") from None
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


def _stored_shapes(weights_path: Path) -> dict[str, tuple[int, ...]]:
    """The shape of each tensor in a safetensors file, read from its header alone."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights_path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise RunError(f"{weights_path} is corrupt or not a safetensors file ({err})") from None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


# model.json, field by field: (what it must be, how to tell). Fields marked optional
# may be missing (older runs); when present, each must have its type.
_MODEL_FIELDS: dict[str, tuple[str, Any]] = {
    "name": ("a model name (text)", lambda v: isinstance(v, str)),
    "hidden": (
        "a list of widths, each a whole number of at least 1",
        lambda v: isinstance(v, list) and all(_is_count(h) for h in v),
    ),
    "n_in": ("a whole number of at least 1", _is_count),
    "n_out": ("a whole number of at least 1", _is_count),
    "init": ("an initialisation name (text)", lambda v: isinstance(v, str)),
    "std": ("a number", _is_number),
}
_META_FIELDS: dict[str, tuple[str, Any, bool]] = {  # name: (what, check, required)
    "model": ("an object describing the architecture", lambda v: isinstance(v, dict), True),
    "digits": (
        "a list of two or more different digits 0-9",
        lambda v: (
            isinstance(v, list)
            and len(v) >= 2
            and all(type(d) is int and 0 <= d <= 9 for d in v)
            and len(set(v)) == len(v)
        ),
        True,
    ),
    "data": (
        'an object like {"source": "sample"}',
        lambda v: isinstance(v, dict) and isinstance(v.get("source", ""), str),
        False,
    ),
    "history": (
        "a list of epochs, each an object of numbers",
        lambda v: (
            isinstance(v, list)
            and all(
                isinstance(row, dict) and all(_is_number(x) or x is None for x in row.values())
                for row in v
            )
        ),
        False,
    ),
    "final": (
        "an object of numbers",
        lambda v: isinstance(v, dict) and all(_is_number(x) or x is None for x in v.values()),
        False,
    ),
    "seed": ("a whole number or null", lambda v: v is None or type(v) is int, False),
    "config": ("an object", lambda v: isinstance(v, dict), False),
    "versions": ("an object", lambda v: isinstance(v, dict), False),
    "created": ("a date (text)", lambda v: isinstance(v, str), False),
    "preprocessing": ("an object", lambda v: isinstance(v, dict), False),
}


def check_meta(meta: Any, meta_path: str | Path) -> None:
    """Check a loaded model.json against its schema: a `RunError` naming the first
    field that is missing or of the wrong type (its format and version are checked
    by `load_run`)."""
    for name, (what, ok, required) in _META_FIELDS.items():
        if name not in meta:
            if required:
                raise RunError(f"{meta_path}: the field '{name}' is missing; it must be {what}")
            continue
        if not ok(meta[name]):
            raise RunError(f"{meta_path}: '{name}' must be {what}, not {_short(meta[name])}")
    for name, (what, ok) in _MODEL_FIELDS.items():
        if name in meta["model"] and not ok(meta["model"][name]):
            raise RunError(
                f"{meta_path}: 'model.{name}' must be {what}, not {_short(meta['model'][name])}"
            )
    if "name" not in meta["model"]:
        raise RunError(f"{meta_path}: the field 'model.name' is missing")


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
