"""Compute efficiency: how much of the CPU's matrix-product speed one epoch uses.

1. The peak: the best GFLOP/s of a 2048 x 2048 float32 product (2 n^3 flops).
2. One Fashion-MNIST epoch of an MLP 784-256-128-10 (SGD, batch 256, validation
   included). Its matrix products do, per training row, 2·in·out flops per layer
   forward, as many for the weight gradient, and as many again for the input gradient
   of every layer but the first (the pixels need no gradient); per validation row, the
   forward only. Reported twice, as a share of the peak: over the epoch's wall time,
   and over the time spent inside the products alone (from torch.profiler).
3. The width trap: in MKL, a product with 10 output columns can run at a fraction of
   the speed of one with 16. Measured here as the time of (256x784)@(784x10) against
   (256x784)@(784x16), and on a whole 60k softmax-regression epoch (Linear 784->10)
   against the same epoch with the weights padded to 16 columns of which 10 are used.
   The padded epoch must end with the same weights, bit for bit, to count. Then the
   decision groundup itself takes on this machine (groundup.learn.widths, which pads the
   output layer only where the padded product is faster), with both of its timings.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from groundup.data.tensors import DataLoaders
from groundup.learn import widths
from groundup.learn.losses import cross_entropy
from groundup.learn.models import Linear, mlp
from loop import hand_fit, learner_fit
from run import interleave, median, pair_ratio

HIDDEN = (256, 128)
PEAK_SHARE = 0.70  # the least share of the matmul peak a whole epoch should run at


def peak_gflops(n: int = 2048, reps: int = 5) -> float:
    """The best GFLOP/s of an n x n float32 product, over `reps` timed products."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b  # warm-up: MKL picks its kernels and threads
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def epoch_flops(sizes: list[int], n_train: int, n_valid: int) -> float:
    """Flops of the matrix products in one epoch of an MLP with layer `sizes`."""
    layers = list(zip(sizes[:-1], sizes[1:], strict=True))
    fwd = sum(2 * a * b for a, b in layers)  # per row
    grad_w = fwd
    grad_x = sum(2 * a * b for a, b in layers[1:])  # the first layer's input is the data
    return n_train * (fwd + grad_w + grad_x) + n_valid * fwd


def matmul_seconds(fn: Any) -> tuple[float, float]:
    """Run `fn` under torch.profiler: (wall seconds, seconds inside mm/addmm)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
    inside = sum(
        e.self_cpu_time_total for e in prof.key_averages() if e.key in ("aten::mm", "aten::addmm")
    )
    return wall, inside / 1e6


class PaddedLinear(Linear):
    """`Linear` computing with its weight padded by zero columns to `width` outputs.

    The padding is made afresh in each forward, so the parameters, their shapes and
    their gradients are those of the plain layer; only the product's width changes.
    """

    def __init__(self, layer: Linear, width: int = 16) -> None:
        self.weight, self.bias = layer.weight, layer.bias
        self.pad = width - layer.weight.shape[1]

    def forward(self, x: Tensor) -> Tensor:
        n_out = self.weight.shape[1]
        wide = F.pad(self.weight, (0, self.pad))  # (n_in, width), zeros on the right
        return (x @ wide)[:, :n_out] + self.bias  # (B, width) -> (B, n_out)


def run(ctx: Any) -> list[dict[str, Any]]:
    rows = []
    source = "sample" if ctx.smoke else "fashion-mnist"
    train, valid = ctx.data(source, "all")
    n = 256 if ctx.smoke else 2048
    peak = peak_gflops(n, ctx.reps(5))
    rows.append(ctx.row(f"matrix-product peak: {n}² float32, best of 5", peak, unit="GFLOP/s"))

    # (2) one epoch of the MLP, timed plainly, then once more under the profiler
    dls = DataLoaders.from_datasets(train, valid, batch_size=256, seed=0)
    sizes = [784, *HIDDEN, 10]
    flops = epoch_flops(sizes, len(train), len(valid))

    def one_epoch(_: Any = None) -> None:
        torch.manual_seed(0)
        learner_fit(dls, mlp(HIDDEN, n_out=10), cross_entropy, 0.1, 1)

    times = interleave({"epoch": one_epoch}, ctx.reps(3), warmup=0 if ctx.smoke else 1)
    wall = median(times["epoch"])
    _, inside = matmul_seconds(one_epoch)
    what = f"one {source} epoch, MLP 784-256-128-10, batch 256 ({flops / 1e9:.1f} GFLOP)"
    rows.append(
        ctx.row(
            f"matrix products over the whole epoch ÷ peak: {what}",
            flops / wall / 1e9 / peak,
            target=PEAK_SHARE,
            goal="min",
            unit="of peak",
            ours_s=wall,
            note=f"{flops / wall / 1e9:.1f} GFLOP/s over the epoch's wall time",
        )
    )
    rows.append(
        ctx.row(
            f"matrix products alone ÷ peak: {what}",
            flops / inside / 1e9 / peak,
            unit="of peak",
            ours_s=inside,
            note=f"{flops / inside / 1e9:.1f} GFLOP/s inside mm/addmm (torch.profiler), "
            f"{inside / wall:.0%} of the epoch",
        )
    )

    # (3) the width trap, first on one product, then on a whole epoch
    x = torch.rand(256, 784)
    w10, w16 = torch.rand(784, 10), torch.rand(784, 16)
    n_products = 20 if ctx.smoke else 200

    def products(w: Tensor) -> Any:
        def go(_: Any) -> None:
            for _ in range(n_products):
                x @ w

        return go

    reps = ctx.reps(9)
    t = interleave({"w10": products(w10), "w16": products(w16)}, reps)
    ratio, spread = pair_ratio(t["w10"], t["w16"])
    gf = {k: 2 * 256 * 784 * int(k[1:]) * n_products / median(v) / 1e9 for k, v in t.items()}
    rows.append(
        ctx.row(
            "time of (256×784)@(784×10) ÷ (256×784)@(784×16)",
            ratio,
            ours_s=median(t["w10"]) / n_products,
            base_s=median(t["w16"]) / n_products,
            spread=spread,
            reps=reps,
            note=f"{gf['w10']:.0f} vs {gf['w16']:.0f} GFLOP/s; above 1, the narrow product "
            "takes longer than the wide one",
        )
    )
    # what groundup decided for this machine (measured on first use and cached, see
    # groundup.learn.widths): measured afresh here, so the row shows both timings now
    d = widths.decision(refresh=True)
    rows.append(
        ctx.row(
            f"width-trap decision, bare products: {d['shape']}, narrow ÷ padded",
            d["narrow_s"] / d["padded_s"],
            ours_s=d["narrow_s"],
            base_s=d["padded_s"],
            note="the trap itself; groundup decides on the next row",
        )
    )
    rows.append(
        ctx.row(
            "width-trap decision, the layer's forward + backward: plain ÷ padded",
            d["layer_s"] / d["layer_padded_s"],
            ours_s=d["layer_s"],
            base_s=d["layer_padded_s"],
            note=("pads" if d["pays"] else "does not pad")
            + f" the ten-class output layer on {widths.machine_key()} "
            f"(the padded layer must be {widths.MARGIN:g}× faster)",
        )
    )
    finals: dict[str, list[Tensor]] = {}

    def softmax_epoch(padded: bool) -> Any:
        def go(layer: Linear) -> None:
            model = PaddedLinear(layer) if padded else layer
            hand_fit(model, (train.x, train.y), (valid.x, valid.y), cross_entropy, 0.1, 1)
            finals[str(padded)] = [layer.weight.detach().clone(), layer.bias.detach().clone()]

        return go

    def fresh() -> Linear:
        torch.manual_seed(0)
        return Linear(784, 10)

    reps = ctx.reps(7)
    t = interleave(
        {"plain": softmax_epoch(False), "padded": softmax_epoch(True)},
        reps,
        setup=fresh,
        warmup=0 if ctx.smoke else 1,
    )
    ratio, spread = pair_ratio(t["plain"], t["padded"])
    same = all(torch.equal(a, b) for a, b in zip(finals["False"], finals["True"], strict=True))
    rows.append(
        ctx.row(
            f"softmax-regression epoch ({len(train):,} {source}), Linear 784→10 ÷ padded to 16",
            ratio,
            ours_s=median(t["plain"]),  # what groundup's Linear does now
            base_s=median(t["padded"]),
            spread=spread,
            reps=reps,
            note=("same" if same else "DIFFERENT")
            + " final weights; above 1, padding the last layer would pay",
        )
    )
    return rows
