"""Fuzzing what groundup reads from users (issue 12): IDX files, raw and gzipped; image
files and arrays through `prepare_digit`; `model.json`; the web page's JSON endpoints.

Every input either works or raises one of groundup's own errors (`GroundupError`,
shown as one line), and the web server answers it with a 4xx JSON error, never a 500.
The suite is bounded (about 30 s on two cores) and derandomized, so `make test` is
the same every time; set GROUNDUP_FUZZ=10 to run ten times as many random examples.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from starlette.testclient import TestClient

from groundup.data import idx
from groundup.data.images import open_image, prepare_digit
from groundup.errors import GroundupError
from groundup.learn.models import ModelSpec, build_model
from groundup.runs.saved import META, load_run
from helpers_runs import save_model

SCALE = int(os.environ.get("GROUNDUP_FUZZ", "0"))


def fuzz(examples: int):
    """Hypothesis settings: `examples` by default, derandomized; GROUNDUP_FUZZ=N for N
    times as many, random."""
    return settings(
        max_examples=examples * max(SCALE, 1),
        derandomize=not SCALE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


# -- IDX ----------------------------------------------------------------------------------------

magics = st.sampled_from([idx.IMAGES_MAGIC, idx.LABELS_MAGIC]) | st.integers(0, 2**32 - 1)


@st.composite
def idx_bytes(draw) -> bytes:
    """Mostly well-formed headers, with dimensions and bodies that may lie."""
    magic = draw(magics)
    ndim = magic & 0xFF
    dims = draw(
        st.lists(st.integers(0, 30) | st.integers(0, 2**32 - 1), min_size=min(ndim, 4), max_size=4)
    )
    body = draw(st.binary(max_size=3000))
    data = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims[:ndim]) + body
    cut = draw(st.none() | st.integers(0, len(data)))
    return data if cut is None else data[:cut]


@fuzz(300)
@given(
    data=idx_bytes(),
    gz=st.sampled_from(["raw", "gz", "gz-cut", "gz-flipped"]),
    seed=st.integers(0, 2**16),
)
def test_fuzz_idx(scratch: Path, data: bytes, gz: str, seed: int) -> None:
    path = scratch / ("f.idx" + (".gz" if gz != "raw" else ""))
    if gz != "raw":
        packed = bytearray(gzip.compress(data))
        rng = np.random.default_rng(seed)
        if gz == "gz-cut":
            packed = packed[: rng.integers(0, len(packed) + 1)]
        elif gz == "gz-flipped" and packed:
            packed[rng.integers(0, len(packed))] ^= 1 << int(rng.integers(0, 8))
        data = bytes(packed)
    path.write_bytes(data)
    for read in (idx.read_idx, idx.read_images, idx.read_labels):
        try:
            read(path)
        except GroundupError:
            pass


# -- images ---------------------------------------------------------------------------------------

MODES = ["L", "RGB", "RGBA", "P", "1", "LA", "I", "F", "I;16", "CMYK", "YCbCr", "HSV", "LAB"]
FORMATS = ["PNG", "TIFF", "BMP", "GIF", "JPEG", "WEBP", "PPM"]


@st.composite
def image_files(draw) -> bytes:
    mode, fmt = draw(st.sampled_from(MODES)), draw(st.sampled_from(FORMATS))
    w, h = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    img = Image.new(mode, (w, h))
    gray = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8))
    try:
        img.paste(gray.convert(mode) if mode not in ("LAB", "HSV") else gray)
    except ValueError:
        pass  # a mode a gray picture cannot be pasted into: keep it flat
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):
        assume(False)  # this format cannot hold this mode
    data = bytearray(buf.getvalue())
    damage = draw(st.sampled_from(["none", "cut", "flip", "flip"]))
    if damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "flip" and data:
        for _ in range(draw(st.integers(1, 4))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
    return bytes(data)


@fuzz(250)
@given(data=image_files())
def test_fuzz_image_files(data: bytes) -> None:
    try:
        prepare_digit(open_image(data))
    except GroundupError:
        pass


arrays = hnp.arrays(
    dtype=st.sampled_from(
        [np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64, np.bool_]
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40),
)


@fuzz(150)
@given(array=arrays)
def test_fuzz_prepare_digit_arrays(array: np.ndarray) -> None:
    try:
        out = prepare_digit(array)
    except GroundupError:
        return
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1


# -- model.json ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def saved_run(scratch: Path) -> Path:
    torch.manual_seed(0)
    history = [{"epoch": 1, "train_loss": 0.3, "valid_loss": 0.2, "accuracy": 0.9}]
    return save_model(scratch / "run", build_model(ModelSpec()), history=history)


@fuzz(80)
@given(
    where=st.sampled_from(
        ["model", "digits", "data", "history", "final", "seed", "config", "format_version",
         "format", "created", "model.name", "model.hidden", "model.n_in", "model.n_out",
         "model.init", "model.std", "data.source"]
    ),
    value=json_values,
    drop=st.booleans(),
)  # fmt: skip
def test_fuzz_model_json(saved_run: Path, scratch: Path, where: str, value, drop: bool) -> None:
    run = scratch / "edited"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(saved_run, run)
    meta = json.loads((run / META).read_text())
    *parents, key = where.split(".")
    target = meta
    for p in parents:
        target = target[p]
    if drop:
        target.pop(key, None)
    else:
        target[key] = value
    (run / META).write_text(json.dumps(meta))
    try:
        loaded = load_run(run)
    except GroundupError:
        return
    loaded.predict_proba(torch.zeros(1, 784))  # what loads must also work
    loaded._repr_html_()


# -- the web page's JSON endpoints ---------------------------------------------------------------


@pytest.fixture(scope="module")
def web(scratch: Path) -> Iterator[TestClient]:
    from groundup.web import create_app

    app = create_app("sample", scratch / "runs", phase_pause=0.0)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


SETTING_NAMES = ["digits", "model", "init", "opt", "lr", "batch_size", "epochs", "seed",
                 "hidden", "delay", "name", "image"]  # fmt: skip
bodies = st.dictionaries(
    st.sampled_from(SETTING_NAMES) | st.text(max_size=5), json_values, max_size=4
)
PATHS = ["/api/train/start", "/api/train/step", "/api/train/reset", "/api/train/lr",
         "/api/train/speed", "/api/train/pause", "/api/predict", "/api/save"]  # fmt: skip


@fuzz(150)
@given(
    path=st.sampled_from(PATHS),
    body=bodies | json_values,
    raw=st.none() | st.binary(max_size=64),
)
def test_fuzz_web_json_endpoints(web: TestClient, path: str, body, raw: bytes | None) -> None:
    content = raw if raw is not None else json.dumps(body).encode()
    r = web.post(path, content=content, headers={"content-type": "application/json"})
    assert r.status_code < 500, (path, body, r.text)
    answer = r.json()
    assert r.status_code == 200 or set(answer) == {"error"}
    web.post("/api/train/stop", json={})  # keep the machine free for the next example


@fuzz(60)
@given(
    split=st.text(max_size=6) | st.sampled_from(["train", "valid"]),
    offset=st.text(max_size=6) | st.integers(-5, 10**8).map(str),
    limit=st.text(max_size=4) | st.integers(-5, 300).map(str),
)
def test_fuzz_web_data_browser(web: TestClient, split: str, offset: str, limit: str) -> None:
    r = web.get("/api/data", params={"split": split, "offset": offset, "limit": limit})
    assert r.status_code < 500, r.text
    assert r.status_code == 200 or set(r.json()) == {"error"}
