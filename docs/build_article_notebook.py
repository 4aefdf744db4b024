"""Build docs/the-article-as-written.ipynb: the article's own code path, on groundup.

    .venv/bin/python docs/build_article_notebook.py            # rebuild and execute
    .venv/bin/python docs/build_article_notebook.py --no-run   # cells only, no outputs

The first notebook (build_notebook.py) retells the article with groundup's API. This
one is for the reader who has the article's code in front of them: it starts with
`from groundup.all import *` in place of fastai's import and then uses fastai's
words (`untar_data`, `Path.ls`, `DataLoader(list(zip(x, y)))`, `Learner`, ...).
It runs offline on the bundled sample: the cache is a fresh temporary folder, so the
folders are always built from the sample and the outputs do not depend on what this
machine has downloaded. tests/test_article_notebook.py executes it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "the-article-as-written.ipynb"


def _first_builder():
    """docs/build_notebook.py, for its `execute` and kernel name (one home for both)."""
    spec = importlib.util.spec_from_file_location("build_notebook", HERE / "build_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CELLS: list[tuple[str, str]] = [
    (
        "md",
        """\
# The article as written, on groundup

The article builds its 2-versus-9 classifier with fastai's vocabulary: `untar_data`,
`Path.ls()`, `tensor`, `DataLoader`, `Learner`. If you are following it with its code
open beside you, change its first line from `from fastai.vision.all import *` to the
line below, and the rest runs as you read it: offline, on groundup's own loop, with no
fastai installed. Where the article's notebook had a bug, groundup stops and says so;
section 6 shows it.

The digits are the 5,000 real MNIST images bundled with groundup. (After
`groundup fetch mnist`, the same cells use all 70,000.)""",
    ),
    (
        "py",
        """\
%matplotlib inline
from groundup.all import *

matplotlib.rcParams["figure.dpi"] = 70    # smaller pictures, a lighter notebook file
torch.manual_seed(0);""",
    ),
    (
        "md",
        """\
## 1. The folders of images

`untar_data` hands back a folder laid out as MNIST's PNG archive is: `training/` and
`testing/`, one sub-folder per digit. groundup writes it once, from the data it has,
instead of downloading. Setting `Path.BASE_PATH` makes listings print short.""",
    ),
    (
        "py",
        """\
path = untar_data(URLs.MNIST)
Path.BASE_PATH = path
path.ls()""",
    ),
    (
        "py",
        """\
(path / "training").ls()""",
    ),
    (
        "py",
        """\
twos = (path / "training" / "2").ls().sorted()
nines = (path / "training" / "9").ls().sorted()
print(len(twos), "twos and", len(nines), "nines to learn from")
a_two = Image.open(twos[1])
a_two""",
    ),
    (
        "md",
        """\
## 2. A digit is a grid of numbers

Each pixel is a whole number from 0 (no ink) to 255 (full ink). `tensor` turns the
image into a 28×28 tensor of them; pandas shades a window of it by value.""",
    ),
    (
        "py",
        """\
tensor(a_two)[4:10, 4:10]""",
    ),
    (
        "py",
        """\
pixels = tensor(a_two)
shaded = pd.DataFrame(pixels[4:15, 4:22]).style.set_properties(**{"font-size": "6pt"})
shaded.background_gradient("Greys")""",
    ),
    (
        "md",
        """\
## 3. From images to `x` and `y`

Stack each digit's images into one tensor, scale the pixels to [0, 1] by dividing by
255, and flatten every image into a row of 784 numbers: that is `x`. The label `y` is
1 for a 2 and 0 for a 9. A dataset is then simply a list of `(x, y)` pairs. The
validation images come from `testing/` and are prepared exactly the same way.""",
    ),
    (
        "py",
        """\
def stack_folder(files):
    return torch.stack([tensor(Image.open(f)) for f in files]).float() / 255

stacked_twos, stacked_nines = stack_folder(twos), stack_folder(nines)
valid_twos = stack_folder((path / "testing" / "2").ls())
valid_nines = stack_folder((path / "testing" / "9").ls())

train_x = torch.cat([stacked_twos, stacked_nines]).view(-1, 28 * 28)
train_y = tensor([1] * len(twos) + [0] * len(nines)).unsqueeze(1)
valid_x = torch.cat([valid_twos, valid_nines]).view(-1, 28 * 28)
valid_y = tensor([1] * len(valid_twos) + [0] * len(valid_nines)).unsqueeze(1)
dset, valid_dset = list(zip(train_x, train_y)), list(zip(valid_x, valid_y))
train_x.shape, train_y.shape, valid_x.shape""",
    ),
    (
        "md",
        """\
A `DataLoader` cuts the list into mini-batches of 256. groundup's stacks the list
into two tensors once, when it is built, and slices them from then on.

We ask for `shuffle=True` on the training data. fastai's default, like groundup's, is
no shuffling, and the article keeps the order: all 400 twos, then all 400 nines. With
only four batches per epoch, that means a batch of nothing but 2s, then one of nothing
but 9s, and a linear model at learning rate 1 swings between "everything is a 2" and
"everything is a 9". Shuffled batches hold both digits.""",
    ),
    (
        "py",
        """\
dl = DataLoader(dset, batch_size=256, shuffle=True)
valid_dl = DataLoader(valid_dset, batch_size=256)
xb, yb = first(dl)
xb.shape, yb.shape""",
    ),
    (
        "md",
        """\
## 4. The seven steps by hand

**Initialise** one random weight per pixel and a bias. **Predict** with `x @ w + b`.
Measure the **loss**: squash each score into (0, 1) with the sigmoid, and take how
far it lies from the label.""",
    ),
    (
        "py",
        """\
def init_params(size, std=1.0):
    return (torch.randn(size) * std).requires_grad_()

def linear1(xb):
    return xb @ weights + bias

def mnist_loss(predictions, targets):
    squashed = predictions.sigmoid()
    return torch.where(targets == 1, 1 - squashed, squashed).mean()

weights, bias = init_params((28 * 28, 1)), init_params(1)
print("loss with random weights:", round(mnist_loss(linear1(xb), yb).item(), 4))
plot_function(torch.sigmoid, title="the sigmoid", min=-6, max=6);""",
    ),
    (
        "md",
        """\
Compute the **gradient** with `backward()`, take a **step** against it, **repeat** for
every mini-batch, and **stop** after 20 epochs. Accuracy is measured on the
validation set after each epoch.""",
    ),
    (
        "py",
        """\
def calc_grad(xb, yb, model):
    mnist_loss(model(xb), yb).backward()

def train_epoch(model, lr, params):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        for p in params:
            p.data -= p.grad * lr
            p.grad.zero_()

def batch_accuracy(preds, yb):
    return ((preds.sigmoid() > 0.5) == yb).float().mean()

def validate_epoch(model):
    scores = [batch_accuracy(model(xb), yb) for xb, yb in valid_dl]
    return round(torch.stack(scores).mean().item(), 4)

for epoch in range(20):
    train_epoch(linear1, 1.0, (weights, bias))
print("valid accuracy after 20 epochs:", validate_epoch(linear1))""",
    ),
    (
        "md",
        """\
## 5. An optimizer: `BasicOptim`, then `SGD`

The update and the clearing of gradients are the same for any model, so they move into
an object with `step()` and `zero_grad()`. `nn.Linear` holds the weights and the bias
for us. groundup's `SGD` takes fastai's arguments, `SGD(params, lr, mom=0., wd=0.)`,
and with those defaults it is this same plain step.""",
    ),
    (
        "py",
        """\
class BasicOptim:
    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def step(self):
        for p in self.params:
            p.data -= p.grad.data * self.lr

    def zero_grad(self):
        for p in self.params:
            p.grad = None

def train_model(model, opt, epochs):
    for epoch in range(epochs):
        for xb, yb in dl:
            calc_grad(xb, yb, model)
            opt.step()
            opt.zero_grad()
    return validate_epoch(model)

model = nn.Linear(28 * 28, 1)
print("BasicOptim:", train_model(model, BasicOptim(model.parameters(), 1.0), 20))
model = nn.Linear(28 * 28, 1)
print("SGD:       ", train_model(model, SGD(model.parameters(), 1.0), 20))""",
    ),
    (
        "md",
        """\
## 6. The article's bug, caught

The article's published notebook prepared its validation images differently from its
training images: the 2s were divided by 255 twice (their pixels end up below 0.004)
and the 9s were never converted or divided (pixels up to 255). Nothing complained,
and every validation accuracy it printed afterwards measured nothing. Here is that
mistake, repeated on purpose. Training ignores the validation set, so the damage
appears only in the numbers; `DataLoaders` checks both sets before anything trains,
and refuses, saying which set, what it found, and the likely cause.""",
    ),
    (
        "py",
        """\
raw_twos = torch.stack([tensor(Image.open(f)) for f in (path / "testing" / "2").ls()])
raw_nines = torch.stack([tensor(Image.open(f)) for f in (path / "testing" / "9").ls()])
bad_valid_x = torch.cat([raw_twos.float() / 255 / 255, raw_nines]).view(-1, 28 * 28)
bad_valid_dl = DataLoader(list(zip(bad_valid_x, valid_y)), batch_size=256)
try:
    DataLoaders(dl, bad_valid_dl)
except DataError as err:
    print(f"DataError: {err}")""",
    ),
    (
        "md",
        """\
## 7. The `Learner`

`DataLoaders` pairs the two loaders; `Learner` holds the data, the model, the
optimizer, the loss and the metric, and `fit` runs the whole loop, showing one row per
epoch as fastai does.""",
    ),
    (
        "py",
        """\
dls = DataLoaders(dl, valid_dl)
learn = Learner(dls, nn.Linear(28 * 28, 1), opt_func=SGD, loss_func=mnist_loss,
                metrics=batch_accuracy)
learn.fit(10, lr=1.0)""",
    ),
    (
        "md",
        """\
## 8. A neural network: `simple_net`

Put a layer of 30 neurons between the pixels and the answer, with a ReLU
(`max(x, 0)`) after it, and train it the same way, at learning rate 0.1.""",
    ),
    (
        "py",
        """\
simple_net = nn.Sequential(nn.Linear(28 * 28, 30), nn.ReLU(), nn.Linear(30, 1))
learn = Learner(dls, simple_net, opt_func=SGD, loss_func=mnist_loss, metrics=batch_accuracy)
learn.fit(15, 0.1)
print(f"simple_net after 15 epochs: valid accuracy {learn.recorder.values[-1][2]:.4f}")""",
    ),
    (
        "py",
        """\
learn.recorder.plot_loss();""",
    ),
    (
        "md",
        """\
## 9. What a neuron looks for

Each first-layer neuron has one weight per pixel, so its weights can be drawn as a
28×28 picture: the ink it responds to, and the ink that counts against.""",
    ),
    (
        "py",
        """\
first_layer = learn.model[0].weight    # (30, 784): one row per neuron
show_image(first_layer[0].view(28, 28), title="neuron 0");""",
    ),
]


def build() -> nbformat.NotebookNode:
    """The notebook's cells, without outputs."""
    cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"  # fixed ids, so that a rebuild gives the same file
    nb = new_notebook(cells=cells)
    kernel = _first_builder().KERNEL
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, workdir: Path, timeout: int = 300) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel (the first builder's way) in `workdir`."""
    return _first_builder().execute(nb, workdir, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="write the cells without outputs")
    parser.add_argument("--out", type=Path, default=NOTEBOOK, help=f"default {NOTEBOOK}")
    args = parser.parse_args(argv)
    nb = build()
    if not args.no_run:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            # a fresh cache: the folders are built from the bundled sample every time
            os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
            execute(nb, Path(tmp))
        print(f"executed in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    for cell in nb.cells:  # per-run timing metadata: a rebuild changes only what changed
        cell.metadata.pop("execution", None)
    tmp_out = args.out.with_suffix(".ipynb.tmp")
    tmp_out.write_text(nbformat.writes(nb), encoding="utf-8")
    os.replace(tmp_out, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
