"""`fetch` against a local HTTP server: success, mirrors, bad checksums, cut connections.

The server runs on 127.0.0.1 in a thread and serves tiny IDX files written by the
test; the dataset's checksums are replaced by theirs.
"""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from groundup.data import fetch as fetch_module
from groundup.data.fetch import fetch
from groundup.data.sources import load_source
from groundup.errors import DataError, UsageError
from helpers_data import cut_after, local_server, synthetic_raw, write_idx_dir


@pytest.fixture
def tiny_mnist(tmp_path_factory, monkeypatch) -> dict[str, bytes]:
    """Four tiny IDX .gz files, with `fetch`'s MNIST checksums set to theirs."""
    paths = write_idx_dir(tmp_path_factory.mktemp("upstream"), synthetic_raw(per_class=4))
    files = {p.name: p.read_bytes() for p in paths.values()}
    checksums = {name: hashlib.md5(body).hexdigest() for name, body in files.items()}
    monkeypatch.setitem(fetch_module.CHECKSUMS, "mnist", checksums)
    return files


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_downloads_verifies_and_load_source_finds_it(tmp_path, tiny_mnist, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    routes = {f"/mnist/{name}": body for name, body in tiny_mnist.items()}
    with local_server(routes) as (url, requested):
        dest = fetch("mnist", mirrors=[f"{url}/mnist/"], progress=False)
    assert dest == tmp_path / "xdg" / "groundup" / "mnist"
    assert leftovers(dest) == sorted(tiny_mnist)  # the four files and nothing else
    for name, body in tiny_mnist.items():
        assert (dest / name).read_bytes() == body
    assert len(requested) == 4
    raw = load_source("mnist")
    assert raw.kind == "idx" and len(raw.train_labels) == 8
    np.testing.assert_array_equal(raw.train_labels, synthetic_raw(per_class=4).train_labels)


def test_files_already_present_are_not_downloaded_again(tmp_path, tiny_mnist):
    routes = {f"/{name}": body for name, body in tiny_mnist.items()}
    with local_server(routes) as (url, requested):
        fetch("mnist", tmp_path, mirrors=[url], progress=False)
        fetch("mnist", tmp_path, mirrors=[url], progress=False)
    assert len(requested) == 4


def test_wrong_checksum_leaves_nothing_and_says_so(tmp_path, tiny_mnist):
    routes = {f"/{name}": body for name, body in tiny_mnist.items()}
    routes["/train-images-idx3-ubyte.gz"] = b"not the real file"
    dest = tmp_path / "dest"
    with local_server(routes) as (url, _):
        with pytest.raises(DataError) as err:
            fetch("mnist", dest, mirrors=[url], progress=False)
    message = str(err.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert url in message
    assert "checksum mismatch" in message
    assert "train-images-idx3-ubyte.gz" not in leftovers(dest)
    assert not any(name.endswith(".part") for name in leftovers(dest))


def test_connection_cut_mid_transfer_leaves_nothing(tmp_path, tiny_mnist):
    body = tiny_mnist["train-labels-idx1-ubyte.gz"]
    routes = {f"/{name}": body for name, body in tiny_mnist.items()}
    routes["/train-labels-idx1-ubyte.gz"] = cut_after(body, len(body) // 2)
    dest = tmp_path / "dest"
    with local_server(routes) as (url, _):
        with pytest.raises(DataError) as err:
            fetch("mnist", dest, mirrors=[url], progress=False)
    message = str(err.value)
    assert "train-labels-idx1-ubyte.gz" in message
    assert f"after {len(body) // 2:,} of {len(body):,} bytes" in message
    # the file before it arrived whole; the cut one left no trace
    assert leftovers(dest) == ["train-images-idx3-ubyte.gz"]


def test_next_mirror_is_tried_after_a_failure(tmp_path, tiny_mnist):
    routes = {f"/good/{name}": body for name, body in tiny_mnist.items()}
    routes.update({f"/bad/{name}": b"corrupt" for name in tiny_mnist})
    with local_server(routes) as (url, requested):
        dest = fetch("mnist", tmp_path, mirrors=[f"{url}/bad", f"{url}/good/"], progress=False)
    assert leftovers(dest) == sorted(tiny_mnist)
    assert [p.split("/")[1] for p in requested] == ["bad", "good"] * 4


def test_every_mirror_failing_lists_each(tmp_path, tiny_mnist):
    with local_server({}) as (url, _):  # answers 404 to everything
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()  # nobody listens there: connection refused
        with pytest.raises(DataError) as err:
            fetch("mnist", tmp_path, mirrors=[url, f"http://127.0.0.1:{port}/"], progress=False)
    message = str(err.value)
    assert "HTTP 404" in message
    assert "cannot connect" in message
    assert leftovers(tmp_path) == []


def test_a_server_that_stalls_times_out(tmp_path, tiny_mnist):
    def stall(handler):
        time.sleep(1.5)

    routes = {f"/{name}": stall for name in tiny_mnist}
    with local_server(routes) as (url, _):
        with pytest.raises(DataError, match=r"within 0\.3 s|no data for 0\.3 s"):
            fetch("mnist", tmp_path, mirrors=[url], progress=False, timeout=0.3)
    assert leftovers(tmp_path) == []


def test_unknown_dataset_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="unknown dataset 'cifar'"):
        fetch("cifar", tmp_path)


def test_published_checksums_are_well_formed():
    assert set(fetch_module.CHECKSUMS) == set(fetch_module.MIRRORS)
    for files in fetch_module.CHECKSUMS.values():
        assert sorted(files) == sorted(
            f"{stem}.gz"
            for stem in (
                "train-images-idx3-ubyte",
                "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte",
            )
        )
        assert all(len(md5) == 32 and int(md5, 16) >= 0 for md5 in files.values())
    # torchvision's value for MNIST's training images, checked by hand
    assert fetch_module.CHECKSUMS["mnist"]["train-images-idx3-ubyte.gz"] == (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    )
