# fastbook chapter 4's code path, 3s against 7s, typed as a reader of the book would,
# up to simple_net through the Learner. Only the first line differs from the book's
# code: it imported fastai.vision.all (with fastbook's own helpers).
from groundup.all import *

import string

# -- the sample: folders of 3s and 7s -------------------------------------------------------
path = untar_data(URLs.MNIST_SAMPLE)
Path.BASE_PATH = path
top_listing = path.ls()
train_listing = (path / "train").ls()
three_files = (path / "train" / "3").ls().sorted()
seven_files = (path / "train" / "7").ls().sorted()
a_three = Image.open(three_files[1])
corner_array = array(a_three)[4:10, 4:10]
corner_tensor = tensor(a_three)[4:10, 4:10]
shaded = (
    pd.DataFrame(tensor(a_three)[4:15, 4:22])
    .style.set_properties(**{"font-size": "6pt"})
    .background_gradient("Greys")
)
shaded_html = shaded.to_html()

# -- first try: pixel similarity ------------------------------------------------------------
three_tensors = [tensor(Image.open(f)) for f in three_files]
seven_tensors = [tensor(Image.open(f)) for f in seven_files]
show_image(three_tensors[1])
stacked_threes = torch.stack(three_tensors).float() / 255
stacked_sevens = torch.stack(seven_tensors).float() / 255
mean3 = stacked_threes.mean(0)
mean7 = stacked_sevens.mean(0)
show_image(mean3)
sample_three = stacked_threes[1]
l1_to_3 = (sample_three - mean3).abs().mean()
rmse_to_3 = ((sample_three - mean3) ** 2).mean().sqrt()
l1_to_7 = F.l1_loss(sample_three.float(), mean7)
rmse_to_7 = F.mse_loss(sample_three, mean7).sqrt()

# arrays and tensors, side by side
grid = [[1, 2, 3], [4, 5, 6]]
grid_array = array(grid)
grid_tensor = tensor(grid)
grid_row, grid_column = grid_tensor[1], grid_tensor[:, 1]
grid_type = grid_tensor.type()
scaled_grid = grid_tensor * 1.5

# the validation images, and a metric
valid_3_tens = torch.stack([tensor(Image.open(f)) for f in (path / "valid" / "3").ls()])
valid_3_tens = valid_3_tens.float() / 255
valid_7_tens = torch.stack([tensor(Image.open(f)) for f in (path / "valid" / "7").ls()])
valid_7_tens = valid_7_tens.float() / 255


def mnist_distance(a, b):
    return (a - b).abs().mean((-1, -2))


valid_3_dist = mnist_distance(valid_3_tens, mean3)
broadcast_sum = tensor([1, 2, 3]) + tensor(1)


def is_3(x):
    return mnist_distance(x, mean3) < mnist_distance(x, mean7)


accuracy_3s = is_3(valid_3_tens).float().mean()
accuracy_7s = (1 - is_3(valid_7_tens).float()).mean()
similarity_accuracy = ((accuracy_3s + accuracy_7s) / 2).item()


# -- stochastic gradient descent on small examples ------------------------------------------
def f(x):
    return x**2


plot_function(f, "x", "x**2")
xt = tensor(3.0).requires_grad_()
yt = f(xt)
yt.backward()
grad_at_3 = xt.grad


def f(x):
    return (x**2).sum()


xt = tensor([3.0, 4.0, 10.0]).requires_grad_()
f(xt).backward()
grad_of_sum = xt.grad

time = torch.arange(0, 20).float()
speed = torch.randn(20) * 3 + 0.75 * (time - 9.5) ** 2 + 1
plt.scatter(time, speed)


def quadratic(t, params):
    a, b, c = params
    return a * (t**2) + (b * t) + c


def mse(preds, targets):
    return ((preds - targets) ** 2).mean()


params = torch.randn(3).requires_grad_()
step_lr = 1e-5
coaster_losses = []
for _ in range(10):
    loss = mse(quadratic(time, params), speed)
    loss.backward()
    params.data -= step_lr * params.grad.data
    params.grad = None
    coaster_losses.append(loss.item())

# -- the MNIST loss function ----------------------------------------------------------------
train_x = torch.cat([stacked_threes, stacked_sevens]).view(-1, 28 * 28)
train_y = tensor([1] * len(three_files) + [0] * len(seven_files)).unsqueeze(1)
dset = list(zip(train_x, train_y))
x, y = dset[0]
valid_x = torch.cat([valid_3_tens, valid_7_tens]).view(-1, 28 * 28)
valid_y = tensor([1] * len(valid_3_tens) + [0] * len(valid_7_tens)).unsqueeze(1)
valid_dset = list(zip(valid_x, valid_y))


def init_params(size, std=1.0):
    return (torch.randn(size) * std).requires_grad_()


weights = init_params((28 * 28, 1))
bias = init_params(1)


def linear1(xb):
    return xb @ weights + bias


preds = linear1(train_x)
corrects = (preds > 0.0).float() == train_y
random_accuracy = corrects.float().mean().item()

targets_demo = tensor([1, 0, 1])
preds_demo = tensor([0.9, 0.4, 0.2])


def mnist_loss(predictions, targets):
    return torch.where(targets == 1, 1 - predictions, predictions).mean()


demo_loss = mnist_loss(preds_demo, targets_demo)
plot_function(torch.sigmoid, title="Sigmoid", min=-4, max=4)


def sigmoid(x):
    return 1 / (1 + torch.exp(-x))


def mnist_loss(predictions, targets):
    predictions = predictions.sigmoid()
    return torch.where(targets == 1, 1 - predictions, predictions).mean()


# -- mini-batches ---------------------------------------------------------------------------
numbers_dl = DataLoader(range(15), batch_size=5, shuffle=True)
number_batches = list(numbers_dl)
letters = L(enumerate(string.ascii_lowercase))
letters_dl = DataLoader(letters, batch_size=6, shuffle=True)
letter_batches = list(letters_dl)

# -- putting it all together ----------------------------------------------------------------
weights = init_params((28 * 28, 1))
bias = init_params(1)
dl = DataLoader(dset, batch_size=256)
xb, yb = first(dl)
valid_dl = DataLoader(valid_dset, batch_size=256)
batch = train_x[:4]
batch_loss = mnist_loss(linear1(batch), train_y[:4])
batch_loss.backward()
grad_shapes = weights.grad.shape, bias.grad.shape
weights.grad.zero_()
bias.grad.zero_()


def calc_grad(xb, yb, model):
    loss = mnist_loss(model(xb), yb)
    loss.backward()


def train_epoch(model, lr, params):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        for p in params:
            p.data -= p.grad * lr
            p.grad.zero_()


def batch_accuracy(xb, yb):
    return ((xb.sigmoid() > 0.5) == yb).float().mean()


def validate_epoch(model):
    accs = [batch_accuracy(model(xb), yb) for xb, yb in valid_dl]
    return round(torch.stack(accs).mean().item(), 4)


lr = 1.0
params = weights, bias
hand_accuracies = []
for _ in range(20):
    train_epoch(linear1, lr, params)
    hand_accuracies.append(validate_epoch(linear1))

# -- an optimizer ---------------------------------------------------------------------------
linear_model = nn.Linear(28 * 28, 1)
w, b = linear_model.parameters()


class BasicOptim:
    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def step(self, *args, **kwargs):
        for p in self.params:
            p.data -= p.grad.data * self.lr

    def zero_grad(self, *args, **kwargs):
        for p in self.params:
            p.grad = None


opt = BasicOptim(linear_model.parameters(), lr)


def train_epoch(model):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        opt.step()
        opt.zero_grad()


def train_model(model, epochs):
    accuracies = []
    for _ in range(epochs):
        train_epoch(model)
        accuracies.append(validate_epoch(model))
    return accuracies


basic_accuracies = train_model(linear_model, 20)
linear_model = nn.Linear(28 * 28, 1)
opt = SGD(linear_model.parameters(), lr)
sgd_accuracies = train_model(linear_model, 20)

dls = DataLoaders(dl, valid_dl)
learn = Learner(dls, nn.Linear(28 * 28, 1), opt_func=SGD, loss_func=mnist_loss,
                metrics=batch_accuracy)  # fmt: skip
learn.fit(10, lr=lr)
linear_learner_accuracy = learn.recorder.values[-1][2]

# -- adding a nonlinearity ------------------------------------------------------------------
simple_net = nn.Sequential(nn.Linear(28 * 28, 30), nn.ReLU(), nn.Linear(30, 1))
learn = Learner(dls, simple_net, opt_func=SGD, loss_func=mnist_loss, metrics=batch_accuracy)
learn.fit(40, 0.1)
plt.plot(L(learn.recorder.values).itemgot(2))
net_accuracy = learn.recorder.values[-1][2]
