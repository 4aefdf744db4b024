"""The names of the choices a run can make, and the largest learning rate, without torch.

Each registry is keyed by these names and builds the thing itself:
`models.MODELS`, `optim.OPTIMIZERS`, `init.SCHEMES` and the schedules of
`callbacks.SCHEDULES`. They live here, in a module with no imports, so that the
command line's `--help` and the web page's form can list them without paying for
torch; a test checks every registry against its list.
"""

MODELS = ("linear", "net", "cnn", "mean")  # linear: the article's; net: simple_net (+ wider)
OPTIMIZERS = ("sgd", "momentum", "adam")  # sgd is the article's BasicOptim
INITS = ("normal", "uniform", "xavier", "kaiming", "zeros")  # normal, std 1: the article's
SCHEDULES = ("constant", "one-cycle")  # constant: the article's

# The largest learning rate a float32 step can hold (torch.finfo(torch.float32).max):
# above it the rate itself is infinite inside the step.
LR_MAX = 3.4028234663852886e38

# The width trap's answer (learn/widths.py) when it must not be timed: True pads the
# output layer to 16 columns, False never does, None measures once per machine.
PAD_OUTPUT: bool | None = None
