"""From images to tensors: to_tensors, Dataset, DataLoader, DataLoaders, the
normalisation guard against the article's notebook bug, and --digits parsing."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groundup.data.sources import RawData
from groundup.data.tensors import (
    DataLoader,
    DataLoaders,
    Dataset,
    check_normalisation,
    load_data,
    parse_digits,
    require_digits,
    to_tensors,
)
from groundup.errors import DataError, UsageError

# -- to_tensors: the article's x and y --------------------------------------------------------


def test_to_tensors_for_the_articles_pair(sample_raw):
    x, y = to_tensors(sample_raw.train_images, sample_raw.train_labels, (2, 9))
    assert x.shape == (800, 784) and x.dtype == torch.float32
    assert y.shape == (800, 1) and y.dtype == torch.float32
    assert 0.0 <= x.min().item() and x.max().item() <= 1.0
    labels = sample_raw.train_labels[np.isin(sample_raw.train_labels, (2, 9))]
    assert torch.equal(y[:, 0], torch.from_numpy((labels == 2).astype(np.float32)))
    # the pixels are the images', flattened row by row and divided by 255
    first = sample_raw.train_images[np.isin(sample_raw.train_labels, (2, 9))][0]
    assert torch.allclose(x[0], torch.from_numpy(first.reshape(-1) / 255.0).float())


def test_pair_order_gives_the_labels(sample_raw):
    _, y29 = to_tensors(sample_raw.valid_images, sample_raw.valid_labels, (2, 9))
    _, y92 = to_tensors(sample_raw.valid_images, sample_raw.valid_labels, (9, 2))
    assert torch.equal(y29, 1 - y92)  # the first digit of the pair is label 1
    assert int(y29.sum()) == 100


def test_lists_and_all_give_class_positions(sample_raw):
    imgs, labs = sample_raw.valid_images, sample_raw.valid_labels
    x, y = to_tensors(imgs, labs, (3, 5, 8))
    assert y.dtype == torch.int64 and y.shape == (300,)
    kept = labs[np.isin(labs, (3, 5, 8))]
    assert torch.equal(y, torch.from_numpy(np.searchsorted([3, 5, 8], kept)))
    x, y = to_tensors(imgs, labs, tuple(range(10)))
    assert x.shape == (1000, 784)
    assert torch.equal(y, torch.from_numpy(labs.astype(np.int64)))  # `all`: label == digit


# -- Dataset ----------------------------------------------------------------------------------


def test_dataset_behaves_like_the_articles_list_of_pairs(pair_sets):
    train, _ = pair_sets
    assert len(train) == 800
    x5, y5 = train[5]
    assert torch.equal(x5, train.x[5]) and torch.equal(y5, train.y[5])
    assert x5.shape == (784,) and y5.shape == (1,)
    assert torch.equal(train[-1][0], train.x[799])
    part = train[10:20]
    assert isinstance(part, Dataset) and len(part) == 10
    assert part.x.data_ptr() == train.x[10].data_ptr()  # a view, not a copy
    assert part.classes == (2, 9)


def test_dataset_counts_and_views(pair_sets):
    train, valid = pair_sets
    assert train.binary
    assert train.class_counts() == {2: 400, 9: 400}
    assert valid.class_counts() == {2: 100, 9: 100}
    assert torch.equal(train.class_index(), (train.y[:, 0] == 0).long())
    assert repr(valid) == "Dataset(valid, 200 images; 2: 100, 9: 100)"
    html = valid._repr_html_()
    assert "200 images" in html and "<td>2</td><td>100</td>" in html


def test_dataset_refuses_mismatched_lengths():
    with pytest.raises(DataError, match="5 images but 4 labels"):
        Dataset(torch.zeros(5, 784), torch.zeros(4, 1), (2, 9), "train")


# -- DataLoader -------------------------------------------------------------------------------


def _indexed(n: int) -> Dataset:
    """A dataset whose x and y hold each row's own index."""
    idx = torch.arange(n, dtype=torch.float32).unsqueeze(1)  # (n, 1)
    return Dataset(idx.clone(), idx.clone())


def test_batch_sizes_and_the_last_partial_batch(pair_sets):
    train, _ = pair_sets
    dl = DataLoader(train, batch_size=256)
    assert len(dl) == 4
    assert [len(xb) for xb, _ in dl] == [256, 256, 256, 32]
    assert [tuple(yb.shape) for _, yb in dl][-1] == (32, 1)
    dl = DataLoader(train, batch_size=256, drop_last=True)
    assert len(dl) == 3 and [len(xb) for xb, _ in dl] == [256, 256, 256]
    assert [len(xb) for xb, _ in DataLoader(train, batch_size=800)] == [800]
    assert [len(xb) for xb, _ in DataLoader(train, batch_size=1000)] == [800]


def test_not_shuffled_batches_are_views_in_order(pair_sets):
    train, _ = pair_sets
    batches = list(DataLoader(train, batch_size=256))
    xb, yb = batches[1]
    assert torch.equal(xb, train.x[256:512])
    assert xb.data_ptr() == train.x[256].data_ptr()  # no copy
    assert yb.data_ptr() == train.y[256].data_ptr()


def test_shuffles_repeat_for_a_seed_and_change_each_epoch():
    ds = _indexed(50)
    a, b = DataLoader(ds, 10, shuffle=True, seed=7), DataLoader(ds, 10, shuffle=True, seed=7)
    a1, a2 = [torch.cat([y for _, y in a]) for _ in range(2)]
    b1, b2 = [torch.cat([y for _, y in b]) for _ in range(2)]
    assert torch.equal(a1, b1) and torch.equal(a2, b2)  # the same seed repeats
    assert not torch.equal(a1, a2)  # each epoch is a new shuffle
    assert not torch.equal(a1, torch.arange(50.0).unsqueeze(1))
    c1 = torch.cat([y for _, y in DataLoader(ds, 10, shuffle=True, seed=8)])
    assert not torch.equal(a1, c1)


def test_shuffled_rows_keep_their_labels(pair_sets):
    train, _ = pair_sets
    for xb, yb in DataLoader(train, 100, shuffle=True, seed=3):
        for x, y in zip(xb[:5], yb[:5], strict=True):
            row = int((train.x == x).all(dim=1).nonzero()[0])
            assert torch.equal(train.y[row], y)


@given(
    n=st.integers(1, 300),
    batch_size=st.integers(1, 64),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32),
)
@settings(max_examples=150, deadline=None)
def test_every_index_exactly_once(n, batch_size, shuffle, seed):
    dl = DataLoader(_indexed(n), batch_size, shuffle=shuffle, seed=seed)
    sizes, seen = [], []
    for xb, yb in dl:
        assert torch.equal(xb, yb)
        sizes.append(len(xb))
        seen += yb[:, 0].long().tolist()
    assert sorted(seen) == list(range(n))
    assert len(sizes) == len(dl) == math.ceil(n / batch_size)
    assert all(s == batch_size for s in sizes[:-1]) and 1 <= sizes[-1] <= batch_size


@pytest.mark.parametrize("bad", [0, -1, 2.5, "256"])
def test_batch_size_must_be_a_whole_number_above_0(pair_sets, bad):
    with pytest.raises(UsageError, match="batch size"):
        DataLoader(pair_sets[0], batch_size=bad)


# -- DataLoaders and load_data ----------------------------------------------------------------


def test_load_data_sample_pair():
    dls = load_data("sample", (2, 9), batch_size=128, seed=0)
    assert len(dls.train.dataset) == 800 and len(dls.valid.dataset) == 200
    assert dls.classes == (2, 9) and dls.source == "sample"
    assert dls.train.shuffle and not dls.valid.shuffle
    assert dls.train.batch_size == 128
    assert dls.train.dataset.class_counts() == {2: 400, 9: 400}


def test_load_data_from_already_loaded_raw_data():
    """`raw=` builds the loaders from data in hand (the web page loads its source once):
    the same tensors as loading the source, and the source is not read again."""
    from groundup.data.sources import load_source

    raw = load_source("sample")
    tiny = RawData(
        "in-hand", "test", "sample",
        raw.train_images[:600], raw.train_labels[:600],
        raw.valid_images[:300], raw.valid_labels[:300],
    )  # fmt: skip
    # the sample keeps each digit's images together: its first 600 are 0s and 1s
    dls = load_data("no-such-source", (0, 1), batch_size=64, seed=1, raw=tiny)
    assert dls.source == "in-hand" and dls.train.batch_size == 64
    keep = np.isin(tiny.train_labels, [0, 1])
    assert len(dls.train.dataset) == int(keep.sum())
    full = load_data("sample", (2, 9), seed=1, raw=raw)
    assert torch.equal(full.train.dataset.x, load_data("sample", (2, 9), seed=1).train.dataset.x)


@pytest.mark.parametrize("digits", [(2, 2), (2,), (2, 12), "2", "2 2", ()])
def test_load_data_refuses_bad_digit_choices(digits):
    with pytest.raises(UsageError, match="^digits "):
        load_data("sample", digits)


def test_require_digits_names_the_split_and_digit():
    rng = np.random.default_rng(0)
    raw = RawData(
        "tiny", "test", "sample",
        rng.integers(0, 255, (4, 28, 28), dtype=np.uint8), np.array([2, 9, 2, 9]),
        rng.integers(0, 255, (2, 28, 28), dtype=np.uint8), np.array([2, 2]),
    )  # fmt: skip
    require_digits(raw, (2,))
    with pytest.raises(DataError, match="the valid split of 'tiny' has no digit 9 \\(it has: 2\\)"):
        require_digits(raw, (2, 9))


# -- the normalisation guard: the article's notebook bug --------------------------------------


def _scaled(ds: Dataset, digit: int, factor: float) -> Dataset:
    """A copy of `ds` with one class's pixels multiplied by `factor`."""
    x = ds.x.clone()
    rows = ds.class_index() == ds.classes.index(digit)
    x[rows] *= factor
    return Dataset(x, ds.y, ds.classes, ds.name)


def _loaders(train: Dataset, valid: Dataset) -> DataLoaders:
    return DataLoaders(DataLoader(train), DataLoader(valid))


def test_correct_data_passes(pair_sets):
    _loaders(*pair_sets)
    load_data("sample", "all")  # all ten digits: a 1 has the least ink, and still passes


def test_a_class_divided_by_255_twice(pair_sets):
    train, valid = pair_sets
    with pytest.raises(DataError) as err:
        _loaders(train, _scaled(valid, 2, 1 / 255))
    message = str(err.value)
    assert "the valid split, class 2" in message
    mean = valid.x[valid.class_index() == 0].mean().item() / 255
    assert f"mean pixel {mean:.4g}" in message
    assert "divided by 255 twice" in message


def test_a_class_never_scaled(pair_sets):
    train, valid = pair_sets
    with pytest.raises(DataError) as err:
        _loaders(train, _scaled(valid, 9, 255.0))
    message = str(err.value)
    assert "the valid split, class 9" in message
    assert "[0, 255]" in message and "outside [0, 1]" in message


def test_the_notebooks_bug_exactly(pair_sets):
    # its validation cell: the 2s divided by 255 twice, the 9s neither converted nor scaled
    train, valid = pair_sets
    buggy = _scaled(_scaled(valid, 2, 1 / 255), 9, 255.0)
    with pytest.raises(DataError, match="valid split, class (2|9)"):
        _loaders(train, buggy)


def test_a_whole_split_scaled_twice(pair_sets):
    train, valid = pair_sets
    with pytest.raises(DataError, match="the valid split, class"):
        _loaders(train, Dataset(valid.x / 255, valid.y, valid.classes))


def test_pixels_above_1_or_below_0(pair_sets):
    train, valid = pair_sets
    x = train.x.clone()
    x[train.class_index() == 1] *= 1.5  # the 9s, up to 1.5
    with pytest.raises(DataError, match=r"the train split, class 9, range over \[0, 1.5\]"):
        check_normalisation({"train": Dataset(x, train.y, train.classes), "valid": valid})
    x = train.x.clone()
    x[0, 0] = -0.5  # a 2
    with pytest.raises(DataError, match=r"train split, class 2, range over \[-0.5, 1\]"):
        check_normalisation({"train": Dataset(x, train.y, train.classes), "valid": valid})


def test_an_empty_split(pair_sets):
    train, _ = pair_sets
    with pytest.raises(DataError, match="the valid split is empty"):
        _loaders(train, train[0:0])


# -- --digits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (None, (2, 9)),
        (["2", "9"], (2, 9)),
        (["9", "2"], (9, 2)),
        (["3", "5", "8"], (3, 5, 8)),
        ("3 5 8", (3, 5, 8)),
        (["2,9"], (2, 9)),
        (["all"], tuple(range(10))),
        ("ALL", tuple(range(10))),
    ],
)
def test_parse_digits(tokens, expected):
    assert parse_digits(tokens) == expected


@pytest.mark.parametrize(
    ("tokens", "match"),
    [
        (["2", "2"], "lists a digit twice: 2 2"),
        (["2"], "at least two classes"),
        ([], "at least two classes"),
        (["12", "3"], "not '12'"),
        (["two", "9"], "not 'two'"),
        (["-1", "9"], "not '-1'"),
        (["²", "9"], "not '²'"),
        (["all", "2"], "not 'all'"),
    ],
)
def test_parse_digits_refuses(tokens, match):
    with pytest.raises(UsageError, match=match):
        parse_digits(tokens)


@given(st.lists(st.integers(0, 9), min_size=2, max_size=10, unique=True))
def test_any_list_of_different_digits_round_trips(digits):
    assert parse_digits([str(d) for d in digits]) == tuple(digits)
    assert parse_digits(",".join(map(str, digits))) == tuple(digits)


@given(st.lists(st.integers(0, 9), min_size=1, max_size=10).filter(lambda d: len(set(d)) < len(d)))
def test_any_repeated_digit_is_refused(digits):
    with pytest.raises(UsageError, match="twice"):
        parse_digits([str(d) for d in digits])


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_pixels_that_are_not_numbers(pair_sets, value):
    train, valid = pair_sets
    x = valid.x.clone()
    row = int((valid.class_index() == 1).nonzero()[0])  # the first 9
    x[row, 300] = value
    with pytest.raises(DataError, match=f"the valid split, class 9, .* first at row {row}"):
        _loaders(train, Dataset(x, valid.y, valid.classes, "valid"))


@pytest.mark.parametrize(
    ("y", "bad"), [(torch.tensor([[1.0], [0.0], [2.0]]), "row 2 ([2.0])"), (None, "row 1 (5)")]
)
def test_a_label_outside_the_classes_is_a_data_error(y, bad):
    x = torch.rand(3, 784)
    ds = Dataset(x, y, [2, 9]) if y is not None else Dataset(x, torch.tensor([0, 5, 1]), [0, 1, 2])
    with pytest.raises(DataError, match=rf"the train split's label at {re.escape(bad)} is none"):
        check_normalisation({"train": ds})
