"""The local web page: train live, watch the seven steps, draw a digit.

`groundup serve` runs `create_app()` with uvicorn. The app (`app.py`) serves a
plain HTML/JS/CSS page from `static/` (nothing from elsewhere, so it works
offline) and one background training job (`jobs.py`: the state machine and its
thread) that every open page watches through Server-Sent Events (`events.py`),
fed by a Learner callback (`live.py`: the live view). `pictures.py` turns weights
and digits into small PNGs. `form.py` says which of TrainConfig's settings the
page's form may set; they are checked by TrainConfig.

Importing this package imports Starlette, so the rest of groundup never does.
"""

from __future__ import annotations

from groundup.web.app import create_app

__all__ = ["create_app"]
