"""Build docs/how-neural-networks-work.ipynb: write its cells, run them, save it with outputs.

    .venv/bin/python docs/build_notebook.py            # rebuild and execute
    .venv/bin/python docs/build_notebook.py --no-run   # cells only, no outputs

The notebook retraces the article with groundup's own functions: one digit as
numbers, the stacked tensors, the seven steps taken by hand, BasicOptim and the
Learner, simple_net, and pictures of what the layers learned. It runs on the
bundled `sample` data, so it needs no download; tests/test_notebook.py executes it.

The cells live here, as Python strings, so that a change to the notebook is a
readable diff of this file; the .ipynb is generated from them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "how-neural-networks-work.ipynb"
KERNEL = "python3"

# (kind, source): "md" for prose, "py" for code
CELLS: list[tuple[str, str]] = [
    ("md", """\
# How do neural networks really work? With groundup

A neural network learns by a loop of seven steps: **initialise** the weights, **predict**,
measure the **loss**, find the **gradient**, take a **step**, **repeat**, and **stop**.
This notebook takes those steps one at a time on real handwritten digits, a 2 against
a 9, with the functions of `groundup` named as the article names them.

Everything runs on the 5,000 MNIST digits bundled with groundup (`sample`), on a CPU,
in well under a minute."""),
    ("py", """\
%matplotlib inline
import matplotlib
import torch
from IPython.display import HTML, display

from groundup.show import figures
from groundup.data.sources import load_source

matplotlib.rcParams["figure.dpi"] = 80    # smaller pictures, a lighter notebook file
torch.manual_seed(0)
figures.steps_figure()"""),
    ("md", """\
## 1. A digit is a table of numbers

A picture on a computer is a grid of numbers. Each MNIST digit is 28 by 28 pixels,
and each pixel is a whole number from 0 (no ink) to 255 (full ink). Here is the
first 2 in the training images, and a window of its pixels (rows 4 to 14,
columns 4 to 21), each shaded by its value."""),
    ("py", """\
raw = load_source("sample")
twos = raw.train_images[raw.train_labels == 2]    # (400, 28, 28) uint8
nines = raw.train_images[raw.train_labels == 9]
a_two = twos[0]
print(a_two.shape, a_two.dtype, "smallest", a_two.min(), "largest", a_two.max())
figures.digit_figure(a_two, "the first 2")"""),
    ("py", """\
HTML(figures.pixel_table_html(a_two, rows=(4, 15), cols=(4, 22)))"""),
    ("md", """\
## 2. Stack the images into tensors

Learning works on many images at once, so we stack them: all the 2s become one
tensor of shape (400, 28, 28). Averaging over the first axis gives the "typical" 2
and 9: a blurry outline of where their ink usually is."""),
    ("py", """\
stacked_twos = torch.stack([torch.tensor(im) for im in twos]).float() / 255    # (400, 28, 28)
stacked_nines = torch.stack([torch.tensor(im) for im in nines]).float() / 255
print(stacked_twos.shape, stacked_nines.shape)
mean_two, mean_nine = stacked_twos.mean(0), stacked_nines.mean(0)    # (28, 28) each
figures.digits_figure(torch.stack([mean_two, mean_nine]), ["mean 2", "mean 9"])"""),
    ("md", """\
Before any learning, the mean images already make a classifier: call an image a 2
when it is closer to the mean 2 than to the mean 9. Any model we train has to do
better than this. The validation images were kept aside: the model never sees them
while it learns, so they tell us how it does on digits it has not met."""),
    ("py", """\
from groundup.data.tensors import load_data

dls = load_data("sample", (2, 9))    # 800 training and 200 validation images
valid = dls.valid.dataset
print("x", tuple(valid.x.shape), "y", tuple(valid.y.shape))

def distance(a, b):
    return ((a - b) ** 2).mean(-1).sqrt()    # root mean squared difference per image

is_two = distance(valid.x, mean_two.flatten()) < distance(valid.x, mean_nine.flatten())
print(f"nearest mean image: {(is_two.float() == valid.y[:, 0]).float().mean():.1%} right")
dls.train.dataset"""),
    ("md", """\
`load_data` did the stacking for us, as the article does by hand: each image is
flattened into a row of 784 numbers divided by 255, a 2 gets the label 1 and a 9
the label 0. It also checks that every split was scaled the same way, a mistake
that is easy to make and hard to see.

## 3. The seven steps, by hand

**Step 1, initialise.** One weight per pixel and a bias, all random. The article draws
them from a normal distribution with standard deviation 1."""),
    ("py", """\
from groundup import calc_grad, init_params, linear1, mnist_loss, sigmoid

train_x, train_y = dls.train.dataset.x, dls.train.dataset.y    # (800, 784), (800, 1)
weights = init_params((28 * 28, 1))    # (784, 1)
bias = init_params(1)                  # (1,)
weights.shape, bias.shape"""),
    ("md", """\
**Step 2, predict.** The model multiplies each pixel by its weight and adds them up,
plus the bias: one score per image, `x @ w + b`. A score above 0 says "2"."""),
    ("py", """\
preds = linear1(train_x, weights, bias)    # (800, 1)
print("first scores:", preds[:4, 0].tolist())
accuracy = ((preds > 0).float() == train_y).float().mean()
print(f"accuracy with random weights: {accuracy:.1%}")"""),
    ("md", """\
**Step 3, loss.** Accuracy is a poor guide for learning: nudging a weight a little
rarely flips any prediction, so accuracy rarely moves, and its slope is zero almost
everywhere. The loss must change smoothly instead. `mnist_loss` squashes each score
into (0, 1) with the sigmoid and measures how far that is from the label."""),
    ("py", """\
loss = mnist_loss(preds, train_y)
print(f"loss: {loss:.4f}")
figures.sigmoid_figure()"""),
    ("md", """\
**Step 4, gradient.** The gradient says, for every weight, how the loss changes
when that weight grows a little. PyTorch computes it for us: `calc_grad` predicts,
measures the loss and calls `backward()`, which fills each parameter's `.grad`.

**Step 5, step.** Move every weight a little against its gradient, `w ← w − lr · grad`.
On y = x² the idea is easy to see: the slope tells us which way is downhill, and the
steps get shorter as the slope flattens near the bottom."""),
    ("py", """\
figures.descent_figure(x0=1.5, lr=0.2, steps=6)"""),
    ("py", """\
xb, yb = next(iter(dls.train))    # one shuffled mini-batch: (256, 784), (256, 1)
lr = 1.0
before = mnist_loss(linear1(xb, weights, bias), yb).item()
calc_grad(xb, yb, lambda x: linear1(x, weights, bias))
print("gradient of the bias:", bias.grad.tolist(), " size of the weights' gradient:",
      round(weights.grad.norm().item(), 4))
with torch.no_grad():                 # the step itself is not part of the model
    weights -= lr * weights.grad
    bias -= lr * bias.grad
weights.grad, bias.grad = None, None  # gradients add up unless cleared
after = mnist_loss(linear1(xb, weights, bias), yb).item()
print(f"loss on this batch: {before:.4f} before the step, {after:.4f} after")"""),
    ("md", """\
**Step 6, repeat,** and **step 7, stop.** `train_epoch` takes one step per
mini-batch of 256 images; `validate_epoch` measures accuracy on the validation set.
We repeat for 20 epochs and stop. (With standard deviation 1, the first scores are
large, the sigmoid is flat where they land, and the gradient there is tiny: how far
this run gets depends on the random start.)"""),
    ("py", """\
from groundup import train_epoch, validate_epoch

def model(x):
    return linear1(x, weights, bias)

for epoch in range(20):
    train_epoch(model, dls.train, lr, [weights, bias])
    if epoch % 4 == 3:
        print(f"epoch {epoch + 1:2d}: valid accuracy {validate_epoch(model, dls.valid):.4f}")"""),
    ("md", """\
The weights are one number per pixel, so we can look at them as a 28×28 picture.
Blue pixels push the score up, toward "2"; red ones push it down, toward "9"."""),
    ("py", """\
figures.weights_figure(weights, (2, 9), bias)"""),
    ("md", """\
## 4. An optimizer and a Learner

The update `w ← w − lr · grad` and the clearing of gradients are the same for every
model, so `BasicOptim` keeps them in one place: `step()` and `zero_grad()`. A
`Linear` layer keeps a model's weight and bias together. With both, an epoch reads
like the loop of the article."""),
    ("py", """\
from groundup import BasicOptim, Linear

torch.manual_seed(0)
linear_model = Linear(28 * 28, 1, init="normal", std=1.0)
opt = BasicOptim(linear_model.parameters(), lr=1.0)

def train_epoch_with(model, opt):
    for xb, yb in dls.train:
        calc_grad(xb, yb, model)
        opt.step()
        opt.zero_grad()

for epoch in range(20):
    train_epoch_with(linear_model, opt)
print(f"after 20 epochs: valid accuracy {validate_epoch(linear_model, dls.valid):.4f}")"""),
    ("md", """\
The `Learner` wraps the whole loop: the data, the model, the optimizer, the loss and
the metric. `fit(epochs, lr)` runs the seven steps and records, after each epoch,
the training loss, the validation loss and the validation accuracy. In a notebook
it shows that record as a table. Here the weights start with groundup's default,
scaled to the number of inputs (`kaiming`), which keeps the first scores small."""),
    ("py", """\
from groundup import Learner, batch_accuracy

torch.manual_seed(0)
learn = Learner(dls, Linear(28 * 28, 1), opt_func=BasicOptim, loss_func=mnist_loss,
                metrics=batch_accuracy)
learn.fit(10, lr=1.0)
learn"""),
    ("py", """\
figures.curves_figure(learn.history, title="the linear model")"""),
    ("md", """\
## 5. A neural network: simple_net

A linear model can only add up evidence pixel by pixel. `simple_net` puts a layer
of 30 neurons in between: each neuron computes its own weighted sum of the pixels,
the ReLU keeps only the positive ones (`max(x, 0)`), and a second linear layer
combines the 30 results into the final score. Same loop, same Learner; the article
trains it with a learning rate of 0.1 for 40 epochs."""),
    ("py", """\
from groundup import simple_net

torch.manual_seed(0)
net = simple_net()
net_learn = Learner(dls, net, opt_func=BasicOptim, loss_func=mnist_loss,
                    metrics=batch_accuracy)
net_learn.fit(40, lr=0.1)
final = net_learn.history[-1]
print(f"simple_net after 40 epochs: valid accuracy {final['accuracy']:.4f}, "
      f"valid loss {final['valid_loss']:.4f}")
figures.curves_figure(net_learn.history, title="simple_net")"""),
    ("md", """\
## 6. What the layers learned

Each of the 30 first-layer neurons has 784 weights: a 28×28 map of the ink it
looks for (blue) and the ink that switches it off (red). The caption gives the
neuron's weight in the second layer: positive neurons vote "2", negative ones "9".
On the right, the second layer's weights as bars."""),
    ("py", """\
figures.layers_figure(net, (2, 9))"""),
    ("md", """\
Many maps still look like noise: the random start, which 800 images and 40 epochs
have changed only a little. Subtracting the starting weights shows what training
added, and there the shapes of 2s and 9s appear."""),
    ("py", """\
torch.manual_seed(0)
start = simple_net()    # the same seed draws the same starting weights
w1 = net.layers[0].weight.detach()          # (784, 30)
w1_start = start.layers[0].weight.detach()  # (784, 30)
figures.neurons_figure(w1 - w1_start, net.layers[2].weight,
                       title="first layer: learned minus initial")"""),
    ("md", """\
One validation image passing through the net: the 30 weighted sums, what is left
after the ReLU, the final score, and the probability the sigmoid makes of it."""),
    ("py", """\
figures.activations_figure(net, valid.x[0], (2, 9), title="validation image 0")"""),
    ("md", """\
## 7. The mistakes

The confusion matrix counts, for each true digit, what the model said; the
diagonal is right. Then the images the model got wrong while being most sure,
the ones with the highest loss."""),
    ("py", """\
from groundup.learn.task import Task
from groundup.runs.evaluate import confusion_matrix

probs = Task((2, 9)).probabilities(net_learn.get_preds()[0]).numpy()    # (200, 2)
true = valid.class_index()                                        # (200,): 0 for a 2
cm = confusion_matrix(torch.from_numpy(probs.argmax(1)), true, 2)
figures.confusion_figure(cm, (2, 9))"""),
    ("py", """\
figures.top_losses_figure(valid.x, probs, true, (2, 9), k=5)"""),
    ("md", """\
## 8. Keep the model

A trained run is one value, a `TrainedRun`: its settings, its learner, and the
weights it started from. `save_run` writes the weights (safetensors) and what is
needed to use them again (JSON); `load_run` reads them back. From the command line, the same run and its
report are one command:

```
groundup train --model net --report
```"""),
    ("py", """\
from groundup import TrainConfig, load_run, save_run
from groundup.runs.training import TrainedRun

# the settings this notebook trained simple_net with, as the run's config
trained = TrainedRun(TrainConfig(model="net", lr=0.1, epochs=40).resolved(), net_learn, start.state_dict())
save_run("runs/notebook-net", trained)
run = load_run("runs/notebook-net")
again = run.predict_proba(valid.x)    # (200, 2)
print("the reloaded model gives the same probabilities:",
      torch.allclose(again, torch.tensor(probs, dtype=torch.float32), atol=1e-6))
run"""),
]


def build() -> nbformat.NotebookNode:
    """The notebook's cells, without outputs."""
    cells = [
        new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS
    ]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"  # fixed ids, so that a rebuild gives the same file
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, workdir: Path, timeout: int = 300) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel with `workdir` as its current directory."""
    from nbclient import NotebookClient

    # The kernel is this Python: jupyter_client maps the spec's "python" to sys.executable.
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="write the cells without outputs")
    parser.add_argument("--out", type=Path, default=NOTEBOOK, help=f"default {NOTEBOOK}")
    args = parser.parse_args(argv)
    nb = build()
    if not args.no_run:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:  # the run it saves goes here, not in docs/
            execute(nb, Path(tmp))
        print(f"executed in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    # strip the per-run timing metadata so a rebuild changes only what changed
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    text = nbformat.writes(nb)
    tmp_out = args.out.with_suffix(".ipynb.tmp")
    tmp_out.write_text(text, encoding="utf-8")
    os.replace(tmp_out, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
