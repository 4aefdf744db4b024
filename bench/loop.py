"""`Learner.fit` against a minimal hand-written PyTorch loop. Target: 1.00x or less.

Both sides run the same model (same initial weights), the same data and shuffles, the
same batch size, learning rate and epochs, and validate over the whole validation set
after every epoch. The hand loop is the article's `train_epoch` / `validate_epoch`
written as tightly as a careful user would: one `randperm` per epoch, `index_select`
for the batch, `p.sub_(p.grad, alpha=lr)`, no callbacks, no history, no divergence
check. With plain SGD both sides do the same arithmetic in the same order, so their
final weights must be equal bit for bit; the row says so, which proves the ratio
compares like with like.

The Fashion-MNIST rows use fixed settings (MLP 784-128-10, batch 256, 2 epochs), not
the ten-digit defaults, so that a change of defaults does not move this figure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from groundup.data.tensors import DataLoaders
from groundup.learn.learner import Learner
from groundup.learn.losses import batch_accuracy, cross_entropy, mnist_loss
from groundup.learn.models import linear_model, mlp, simple_net
from groundup.learn.optim import Adam, BasicOptim
from run import interleave, median, pair_ratio

TARGET = 1.00  # Learner time / hand-loop time: no slower than the loop a user would write


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffle in groundup's DataLoader (seed + epoch before it
    mixed the two)."""
    import groundup.data.tensors

    mix = getattr(groundup.data.tensors, "_epoch_seed", None)
    return mix(seed, epoch) if mix is not None else seed + epoch

Loss = Callable[[Tensor, Tensor], Tensor]


def hand_fit(
    model: Any,
    train: tuple[Tensor, Tensor],
    valid: tuple[Tensor, Tensor],
    loss_func: Loss,
    lr: float,
    epochs: int,
    bs: int = 256,
    seed: int = 0,
    opt: Any = None,
) -> list[float]:
    """The minimal loop: train on shuffled mini-batches, validate every epoch.

    Returns the validation accuracy of each epoch. `opt` is a torch optimizer; without
    one the update is plain SGD, w <- w - lr * g, done by hand.
    """
    x, y = train  # (N, 784), (N, 1) or (N,)
    xv, yv = valid
    params = list(model.parameters())
    n = len(x)
    accs = []
    for epoch in range(epochs):
        # the same shuffle as groundup's DataLoader, so the final weights can be compared
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            loss = loss_func(model(x.index_select(0, idx)), y.index_select(0, idx))
            loss.backward()
            if opt is None:
                with torch.no_grad():
                    for p in params:
                        p.sub_(p.grad, alpha=lr)
                        p.grad = None
            else:
                opt.step()
                opt.zero_grad()
        loss_sum, acc_sum = 0.0, 0.0
        with torch.no_grad():
            for i in range(0, len(xv), bs):
                xb, yb = xv[i : i + bs], yv[i : i + bs]
                preds = model(xb)
                loss_sum += float(loss_func(preds, yb)) * len(xb)
                acc_sum += float(batch_accuracy(preds, yb)) * len(xb)
        accs.append(acc_sum / len(xv))
    return accs


def learner_fit(
    dls: DataLoaders, model: Any, loss_func: Loss, lr: float, epochs: int, opt_func: Any = None
) -> Learner:
    """`Learner(...).fit(epochs, lr)`, from the first shuffle, as a user would call it."""
    dls.train.epoch = 0  # so both sides draw the shuffles of epochs 0, 1, ...
    learn = Learner(dls, model, opt_func or BasicOptim, loss_func, metrics=batch_accuracy)
    return learn.fit(epochs, lr)


def count_ops(fn: Callable[[], Any]) -> int:
    """How many tensor operations `fn` dispatches (autograd's included).

    Unlike a time, the count does not move with the machine's load: for a small model,
    where each op costs more in dispatch than in arithmetic, it is the overhead itself.
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return Count.n


def compare(
    ctx: Any,
    name: str,
    source: str,
    digits: Any,
    make_model: Callable[[], Any],
    loss_func: Loss,
    lr: float,
    epochs: int,
    reps: int,
    adam: bool = False,
) -> dict[str, Any]:
    """Time Learner.fit and the hand loop in turn; the row holds the median ratio."""
    train, valid = ctx.data(source, digits)
    dls = DataLoaders.from_datasets(train, valid, batch_size=256, seed=0)
    xy, xy_valid = (train.x, train.y), (valid.x, valid.y)
    finals: dict[str, list[Tensor]] = {}

    def fresh() -> Any:
        torch.manual_seed(0)
        return make_model()

    def run_learner(model: Any) -> None:
        learner_fit(dls, model, loss_func, lr, epochs, Adam if adam else None)
        finals["learner"] = [p.detach().clone() for p in model.parameters()]

    def run_hand(model: Any) -> None:
        opt = torch.optim.Adam(model.parameters(), lr) if adam else None
        hand_fit(model, xy, xy_valid, loss_func, lr, epochs, opt=opt)
        finals["hand"] = [p.detach().clone() for p in model.parameters()]

    fns = {"learner": run_learner, "hand": run_hand}
    times = interleave(fns, reps, setup=fresh, warmup=0 if ctx.smoke else 1)
    ratio, spread = pair_ratio(times["learner"], times["hand"])
    same = all(torch.equal(a, b) for a, b in zip(finals["learner"], finals["hand"], strict=True))
    if adam:
        note = "ours: groundup Adam; hand: torch.optim.Adam (foreach)"
    else:
        note = "same final weights" if same else "final weights DIFFER"
    # one epoch of each again, untimed, counting tensor ops: the overhead without the noise
    one = [fresh(), fresh()]
    ops_learner = count_ops(
        lambda: learner_fit(dls, one[0], loss_func, lr, 1, Adam if adam else None)
    )
    opt = torch.optim.Adam(one[1].parameters(), lr) if adam else None
    ops_hand = count_ops(lambda: hand_fit(one[1], xy, xy_valid, loss_func, lr, 1, opt=opt))
    note += f"; tensor ops per epoch: Learner {ops_learner:,}, hand loop {ops_hand:,}"
    return ctx.row(
        name,
        ratio,
        target=TARGET,
        goal="max",
        ours_s=median(times["learner"]),
        base_s=median(times["hand"]),
        spread=spread,
        reps=reps,
        note=note,
    )


def run(ctx: Any) -> list[dict[str, Any]]:
    rows = []
    epochs_pair = 2 if ctx.smoke else 20
    rows.append(
        compare(
            ctx,
            f"Learner.fit ÷ hand loop: sample 2-vs-9, linear, SGD lr 1, {epochs_pair} epochs",
            "sample", (2, 9), linear_model, mnist_loss, 1.0, epochs_pair, ctx.reps(31),
        )
    )
    epochs_net = 2 if ctx.smoke else 40
    rows.append(
        compare(
            ctx,
            f"Learner.fit ÷ hand loop: sample 2-vs-9, simple_net, SGD lr 0.1, {epochs_net} epochs",
            "sample", (2, 9), simple_net, mnist_loss, 0.1, epochs_net, ctx.reps(21),
        )
    )
    # the ten-digit net; a smoke run uses the sample's ten digits instead of Fashion-MNIST
    source = "sample" if ctx.smoke else "fashion-mnist"
    epochs_ten = 1 if ctx.smoke else 2
    for adam, lr in ((False, 0.1), (True, 1e-3)):
        opt = "Adam lr 1e-3" if adam else "SGD lr 0.1"
        rows.append(
            compare(
                ctx,
                f"Learner.fit ÷ hand loop: {source} 10 classes, MLP 784-128-10, {opt}, "
                f"{epochs_ten} epochs",
                source, "all", lambda: mlp((128,), n_out=10), cross_entropy, lr, epochs_ten,
                ctx.reps(9), adam=adam,
            )
        )
    return rows
