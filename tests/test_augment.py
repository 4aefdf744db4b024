"""Augmentation: the affine grid against exact shifts and rotations, the random ranges,
and the callback's place in the Learner (training batches only)."""

from __future__ import annotations

import math

import pytest
import torch

from groundup.learn.augment import Augment, augment_batch, random_affine
from groundup.learn.learner import Learner
from groundup.learn.models import linear_model


def _theta(angle_deg: float = 0.0, dx_px: float = 0.0, dy_px: float = 0.0, zoom: float = 1.0):
    a = math.radians(angle_deg)
    c, s = math.cos(a) / zoom, math.sin(a) / zoom
    return torch.tensor([[[c, s, dx_px * 2 / 28], [-s, c, dy_px * 2 / 28]]])  # (1, 2, 3)


def _digit() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    img = torch.zeros(28, 28)
    img[6:22, 8:20] = torch.rand(16, 12, generator=g)  # ink away from the border
    return img.reshape(1, 784)  # (1, 784)


def test_identity_leaves_the_image_unchanged():
    x = _digit()
    assert torch.allclose(augment_batch(x, _theta()), x, atol=1e-6)


def test_whole_pixel_shift_matches_slicing():
    """Reading at x + 2 px moves the content 2 px left; likewise 1 px up for dy = 1."""
    x = _digit()
    out = augment_batch(x, _theta(dx_px=2, dy_px=1)).reshape(28, 28)
    expected = torch.zeros(28, 28)
    expected[:-1, :-2] = x.reshape(28, 28)[1:, 2:]
    assert torch.allclose(out, expected, atol=1e-5)


def test_quarter_turn_matches_rot90():
    x = _digit()
    out = augment_batch(x, _theta(angle_deg=90)).reshape(28, 28)
    turned = [torch.rot90(x.reshape(28, 28), k, dims=(0, 1)) for k in (1, -1)]
    assert any(torch.allclose(out, t, atol=1e-5) for t in turned)


def test_zoom_enlarges_the_ink():
    """The total ink of a centred 10x10 square grows with the area, zoom^2: 121 and 81."""
    x = torch.zeros(28, 28)
    x[9:19, 9:19] = 1.0
    x = x.reshape(1, 784)
    ink = {z: augment_batch(x, _theta(zoom=z)).sum().item() for z in (0.9, 1.0, 1.1)}
    assert ink[1.0] == pytest.approx(100, abs=1e-3)
    assert ink[1.1] == pytest.approx(121, rel=0.03)
    assert ink[0.9] == pytest.approx(81, rel=0.03)


def test_random_affine_stays_within_its_ranges():
    g = torch.Generator().manual_seed(0)
    theta = random_affine(2000, g, degrees=12, shift=2, scale=0.1)  # (2000, 2, 3)
    assert theta.shape == (2000, 2, 3)
    a = theta[:, :, :2]  # R(-angle) / zoom
    zoom = 1 / torch.linalg.det(a).sqrt()  # det = 1 / zoom^2
    angle = torch.rad2deg(torch.atan2(a[:, 0, 1], a[:, 0, 0]))
    shift_px = theta[:, :, 2] * 28 / 2
    assert zoom.min() >= 0.9 - 1e-5 and zoom.max() <= 1.1 + 1e-5
    assert angle.abs().max() <= 12 + 1e-4
    assert shift_px.abs().max() <= 2 + 1e-5
    # and they fill their ranges, each image drawing its own
    assert angle.max() > 11 and angle.min() < -11 and zoom.std() > 0.05


def test_pixels_stay_in_range_and_each_image_differs(dls_pair):
    xb, _ = next(iter(dls_pair.train))
    g = torch.Generator().manual_seed(1)
    out = augment_batch(xb, random_affine(len(xb), g))
    assert out.shape == xb.shape
    assert out.min() >= 0 and out.max() <= 1 + 1e-6
    assert not torch.allclose(out, xb)


class _Spy:
    """Records what the model is given: the training batches after `before_batch`."""

    def __init__(self) -> None:
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def after_batch(self, learn: Learner) -> None:
        self.seen.append((learn.xb, learn.preds.detach()))


def test_callback_replaces_training_batches_only(make_dls):
    torch.manual_seed(0)
    model = linear_model()
    spy = _Spy()
    learn = Learner(make_dls(), model, cbs=[Augment(seed=0), spy])
    plain = [xb for xb, _ in make_dls().train]  # the same seed gives the same batches
    learn.fit(1, 0.1)
    assert len(spy.seen) == len(plain)
    for (xb, _), raw in zip(spy.seen, plain, strict=True):
        assert xb.shape == raw.shape
        assert not torch.allclose(xb, raw)  # the model trained on transformed images
    # validation sees the untouched images: evaluate gives the same as a plain pass
    loss, metrics = learn.evaluate(learn.dls.valid)
    valid = learn.dls.valid.dataset
    from groundup.learn.losses import batch_accuracy

    with torch.no_grad():
        assert metrics["accuracy"] == pytest.approx(
            batch_accuracy(model(valid.x), valid.y).item(), abs=1e-6
        )


def test_same_seed_same_augmentation(make_dls):
    batches = []
    for _ in range(2):
        torch.manual_seed(0)
        spy = _Spy()
        Learner(make_dls(), linear_model(), cbs=[Augment(seed=3), spy]).fit(1, 0.1)
        batches.append(torch.cat([xb for xb, _ in spy.seen]))
    assert torch.equal(batches[0], batches[1])


def test_defaults_on_for_ten_digit_nets_only():
    from groundup.runs.config import TrainConfig

    ten = tuple(range(10))
    assert TrainConfig(digits=ten, model="net").resolved().augment is True
    assert TrainConfig(digits=ten, model="cnn").resolved().augment is True
    assert TrainConfig(digits=ten, model="linear").resolved().augment is False
    assert TrainConfig(model="net").resolved().augment is False  # the article's pair
    assert TrainConfig(digits=ten, model="net", augment=False).resolved().augment is False
    assert TrainConfig(model="net", augment=True).resolved().augment is True


def test_the_sampling_grid_is_affine_grids():
    import torch.nn.functional as F

    from groundup.learn.augment import SIDE, pixel_grid

    theta = random_affine(64, torch.Generator().manual_seed(3), degrees=40, shift=5, scale=0.3)
    ours = pixel_grid(torch.device("cpu")) @ theta.transpose(1, 2)  # (64, 784, 2)
    torch_grid = F.affine_grid(theta, [64, 1, SIDE, SIDE], align_corners=False)
    torch.testing.assert_close(ours.view(64, SIDE, SIDE, 2), torch_grid, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("dtype", "mean_error"), [(torch.float64, 1e-6), (torch.bfloat16, 0.05)])
def test_other_dtypes_are_augmented_in_their_own_dtype(dtype, mean_error):
    # (bfloat16 keeps 8 bits of each grid coordinate: about a tenth of a pixel)
    x = torch.rand(4, 784)
    theta = random_affine(4, torch.Generator().manual_seed(0))
    out = augment_batch(x.to(dtype), theta)
    assert out.dtype == dtype and out.shape == (4, 784)
    assert (out.float() - augment_batch(x, theta)).abs().mean() < mean_error


def test_a_grid_first_made_while_predicting_still_serves_training():
    from groundup.learn import augment

    augment._GRIDS.clear()
    with torch.inference_mode():
        augment_batch(torch.rand(2, 784), random_affine(2, torch.Generator().manual_seed(0)))
    theta = random_affine(2, torch.Generator().manual_seed(1)).requires_grad_()
    augment_batch(torch.rand(2, 784), theta).sum().backward()  # no inference tensor saved
    assert theta.grad is not None
