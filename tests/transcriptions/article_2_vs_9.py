# The article's code path, 2s against 9s, typed as a reader of the article would.
# Only the first line differs from the article: it imported fastai.vision.all.
from groundup.all import *

# -- the images, as folders of PNGs ---------------------------------------------------------
path = untar_data(URLs.MNIST)
Path.BASE_PATH = path
top_listing = path.ls()
training_listing = (path / "training").ls()
two_files = (path / "training" / "2").ls().sorted()
nine_files = (path / "training" / "9").ls().sorted()

# -- one digit as numbers, then as a shaded table -------------------------------------------
one_two = Image.open(two_files[1])
as_array = array(one_two)[4:10, 4:10]
as_tensor = tensor(one_two)[4:10, 4:10]
pixels = tensor(one_two)
frame = pd.DataFrame(pixels[4:15, 4:22])
styled = frame.style.set_properties(**{"font-size": "6pt"}).background_gradient("Greys")
table_html = styled.to_html()

# -- stacked tensors, scaled to [0, 1] ------------------------------------------------------
twos = torch.stack([tensor(Image.open(f)) for f in two_files]).float() / 255
nines = torch.stack([tensor(Image.open(f)) for f in nine_files]).float() / 255
# validation: the article's held-out folder, scaled exactly like the training images
valid_twos = torch.stack([tensor(Image.open(f)) for f in (path / "testing" / "2").ls()])
valid_nines = torch.stack([tensor(Image.open(f)) for f in (path / "testing" / "9").ls()])
valid_twos = valid_twos.float() / 255
valid_nines = valid_nines.float() / 255

# -- independent and dependent variables; a "2" is 1 and a "9" is 0 -------------------------
train_x = torch.cat([twos, nines]).view(-1, 28 * 28)
train_y = tensor([1] * len(twos) + [0] * len(nines)).unsqueeze(1)
dset = list(zip(train_x, train_y))
valid_x = torch.cat([valid_twos, valid_nines]).view(-1, 28 * 28)
valid_y = tensor([1] * len(valid_twos) + [0] * len(valid_nines)).unsqueeze(1)
valid_dset = list(zip(valid_x, valid_y))
dl = DataLoader(dset, batch_size=256)
valid_dl = DataLoader(valid_dset, batch_size=256)
xb, yb = first(dl)


# -- step 1: initialise ---------------------------------------------------------------------
def init_params(size, std=1.0):
    return (torch.randn(size) * std).requires_grad_()


weights = init_params((28 * 28, 1))
bias = init_params(1)


# -- step 2: predict ------------------------------------------------------------------------
def linear1(xb):
    return xb @ weights + bias


first_score = (train_x[0] * weights.T).sum() + bias
scores = linear1(train_x)


# -- step 3: the loss, through the sigmoid --------------------------------------------------
def sigmoid(x):
    return 1 / (1 + torch.exp(-x))


def mnist_loss(predictions, targets):
    squashed = predictions.sigmoid()
    return torch.where(targets == 1, 1 - squashed, squashed).mean()


few = train_x[:4]
few_loss = mnist_loss(linear1(few), train_y[:4])


# -- step 4: the gradient -------------------------------------------------------------------
def calc_grad(xb, yb, model):
    loss = mnist_loss(model(xb), yb)
    loss.backward()


calc_grad(few, train_y[:4], linear1)
weights.grad.zero_()
bias.grad.zero_()


# -- steps 5 to 7: step, repeat, stop -------------------------------------------------------
def train_epoch(model, lr, params):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        for p in params:
            p.data -= p.grad * lr
            p.grad.zero_()


def batch_accuracy(xb, yb):
    guessed_two = xb.sigmoid() > 0.5
    return (guessed_two == yb).float().mean()


def validate_epoch(model):
    per_batch = [batch_accuracy(model(xb), yb) for xb, yb in valid_dl]
    return round(torch.stack(per_batch).mean().item(), 4)


lr = 1.0
params = weights, bias
hand_accuracies = []
for _ in range(20):
    train_epoch(linear1, lr, params)
    hand_accuracies.append(validate_epoch(linear1))


# -- an optimizer of our own, then the library's SGD ----------------------------------------
class BasicOptim:
    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def step(self, *args, **kwargs):
        for p in self.params:
            p.data -= p.grad.data * self.lr

    def zero_grad(self, *args, **kwargs):
        for p in self.params:
            p.grad = None


linear_model = nn.Linear(28 * 28, 1)
opt = BasicOptim(linear_model.parameters(), lr)


def train_epoch(model):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        opt.step()
        opt.zero_grad()


def train_model(model, epochs):
    return [(train_epoch(model), validate_epoch(model))[1] for _ in range(epochs)]


basic_accuracies = train_model(linear_model, 20)
linear_model = nn.Linear(28 * 28, 1)
opt = SGD(linear_model.parameters(), lr)
sgd_accuracies = train_model(linear_model, 20)

# -- the Learner ----------------------------------------------------------------------------
dls = DataLoaders(dl, valid_dl)
learn = Learner(dls, nn.Linear(28 * 28, 1), opt_func=SGD, loss_func=mnist_loss,
                metrics=batch_accuracy)  # fmt: skip
learn.fit(10, lr=lr)
linear_values = learn.recorder.values


# -- more layers: a ReLU between two linear layers ------------------------------------------
def simple_net(xb):
    hidden = xb @ w1 + b1
    hidden = hidden.max(tensor(0.0))
    return hidden @ w2 + b2


w1 = init_params((28 * 28, 30))
b1 = init_params(30)
w2 = init_params((30, 1))
b2 = init_params(1)
hand_net_scores = simple_net(train_x[:4])

simple_net = nn.Sequential(nn.Linear(28 * 28, 30), nn.ReLU(), nn.Linear(30, 1))
learn = Learner(dls, simple_net, opt_func=SGD, loss_func=mnist_loss, metrics=batch_accuracy)
learn.fit(15, 0.1)
net_values = learn.recorder.values

# -- what the first layer looks for ---------------------------------------------------------
m = learn.model
w = m[0].weight
neuron_axes = show_image(w[0].view(28, 28))
