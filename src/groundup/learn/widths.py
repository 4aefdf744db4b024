"""The width trap: a product with 10 output columns can be slower than one with 16.

A CPU's matrix-product kernels work on blocks of columns (8 or 16 floats at a time).
On some machines (AMD EPYC, measured at 2.55×) (B×784)@(784×10) runs far slower than
(B×784)@(784×16), so padding the ten-class output layer's weights with 6 zero columns,
and dropping those 6 outputs again, makes a whole epoch faster; on others (the Intel
Xeon the benchmarks were tuned on) padding costs more than it saves. So it is decided
by measurement, not assumption:

  - on first use, `padding_pays()` times both forms once for this machine (its CPU
    model, torch version and thread count), the bare products and the layer's forward
    and backward, and keeps the answer in a small JSON file
    in groundup's cache folder, so later runs read it instead of measuring;
  - `groundup.learn.names.PAD_OUTPUT = True` (or `False`) overrides it, for tests and
    benchmarks that need one answer whatever the machine.

The padding is internal to the forward pass (`Linear(..., pad_to=16)` and
`padded_product`): the parameters stay the real (n_in, 10) weights, so what is saved,
loaded and stepped is exactly the unpadded model's, and the outputs agree with it up to
float rounding.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from groundup.learn import names

PAD_TO = 16  # the width the kernels like: pad an output layer's columns to a multiple
CACHE_NAME = "width-trap.json"
MARGIN = 1.05  # padding must be this much faster to be worth a second code path


def padded_product(x: Tensor, weight: Tensor, pad_to: int = PAD_TO) -> Tensor:
    """x @ weight, computed with weight's columns padded by zeros to a multiple of `pad_to`.

    x: (B, n_in); weight: (n_in, n_out). The product is (B, n_wide); its first n_out
    columns are x @ weight, the rest are zeros times x and are dropped. Returns
    (B, n_out). The gradient flows back through the slice and the pad to `weight` alone.
    """
    n_out = weight.shape[1]
    extra = -n_out % pad_to
    wide = F.pad(weight, (0, extra))  # (n_in, n_out + extra)
    return (x @ wide)[:, :n_out]


def machine_key() -> str:
    """What the answer depends on: 'CPU model | torch version | threads'."""
    return f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def cpu_model() -> str:
    """The CPU's model name ('Intel(R) Xeon(R) ...', 'AMD EPYC ...'), as lscpu shows it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(batch: int = 256, n_in: int = 784, n_out: int = 10, reps: int = 7) -> dict[str, Any]:
    """Time (batch×n_in)@(n_in×n_out) against the padded width, side by side, twice:

      - the bare products (`narrow_s`, `padded_s`): where the trap shows;
      - the layer's forward and backward, plain and through `padded_product`
        (`layer_s`, `layer_padded_s`): what a training step pays, the pad, the slice
        and the wider gradient included. On an Intel Xeon the bare narrow product was
        1.13× slower, yet the padded epoch lost, so the decision is taken on this one.

    Each of `reps` rounds times a run of each, alternating which goes first; the fastest
    round is kept, as `timeit` does, since a busy neighbour only ever adds time (about
    0.2 s in all). `pays`: the padded layer is faster by more than MARGIN."""
    x = torch.rand(batch, n_in)
    narrow = torch.rand(n_in, n_out)
    wide = torch.rand(n_in, n_out + (-n_out % PAD_TO))
    weight = torch.rand(n_in, n_out, requires_grad=True)
    bias = torch.zeros(n_out, requires_grad=True)

    def layer(padded: bool) -> None:
        out = padded_product(x, weight) if padded else x @ weight
        (out + bias).sum().backward()

    forms = {
        "narrow_s": lambda: x @ narrow,
        "padded_s": lambda: x @ wide,
        "layer_s": lambda: layer(False),
        "layer_padded_s": lambda: layer(True),
    }
    calls = 20
    times: dict[str, list[float]] = {name: [] for name in forms}
    for r in range(reps + 1):
        for name in list(forms) if r % 2 else list(forms)[::-1]:
            start = time.perf_counter()
            for _ in range(calls):
                forms[name]()
            if r:  # round 0 warms the kernels up
                times[name].append((time.perf_counter() - start) / calls)
    best = {name: min(t) for name, t in times.items()}
    return {
        **best,
        "pays": best["layer_s"] > best["layer_padded_s"] * MARGIN,
        "shape": f"({batch}×{n_in})@({n_in}×{n_out}) vs @({n_in}×{n_out + (-n_out % PAD_TO)})",
    }


def cache_path() -> Path:
    from groundup.data.sources import cache_dir

    return cache_dir() / CACHE_NAME


def decision(refresh: bool = False) -> dict[str, Any]:
    """This machine's measurement, from the cache or measured now (and cached).

    The cache maps `machine_key()` to `measure()`'s answer; a file that cannot be read
    is measured again, and a cache that cannot be written is only a lost shortcut."""
    from groundup.atomic import atomic_write_bytes

    path, key = cache_path(), machine_key()
    try:
        known = json.loads(path.read_text())
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    if not refresh and isinstance(known.get(key), dict) and "pays" in known[key]:
        return known[key]
    known[key] = measure()
    try:
        atomic_write_bytes(path, (json.dumps(known, indent=2) + "\n").encode())
    except OSError:
        pass
    return known[key]


def padding_pays() -> bool:
    """Should an output layer's weights be padded to PAD_TO columns on this machine?

    `names.PAD_OUTPUT` decides when set; otherwise the cached measurement."""
    if names.PAD_OUTPUT is not None:
        return names.PAD_OUTPUT
    return bool(decision()["pays"])


def _output_layer(model: Any) -> Any:
    from groundup.learn.models import Sequential

    return model.layers[-1] if isinstance(model, Sequential) else model


def pad_output_layer(model: Any) -> bool:
    """Pad `model`'s last layer if it is a groundup `Linear` whose width is not a
    multiple of PAD_TO, and padding pays here. Returns whether it was padded.

    Only more than one output is padded (a pair's single score is another shape), and only
    groundup's own layers (the cnn is torch.nn, and its time is in its convolutions)."""
    from groundup.learn.models import Linear

    last = _output_layer(model)
    if not isinstance(last, Linear):
        return False
    n_out = last.weight.shape[1]
    if n_out == 1 or n_out % PAD_TO == 0 or not padding_pays():
        return False
    last.pad_to = PAD_TO
    return True
