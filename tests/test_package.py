"""The package around the library: lazy imports, the public names, the command entry points."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import groundup


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_import_groundup_does_not_import_torch():
    out = _python("import sys, groundup; print('torch' in sys.modules, groundup.__version__)")
    assert out.stdout.split() == ["False", groundup.__version__]


def test_help_needs_no_torch():
    code = (
        "import sys\n"
        "from groundup.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('torch' in sys.modules, code, file=sys.stderr)\n"
    )
    out = _python(code)
    assert out.stderr.split() == ["False", "0"]
    assert "train" in out.stdout


def test_python_dash_m_groundup_help():
    out = subprocess.run(
        [sys.executable, "-m", "groundup", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.startswith("usage: groundup")
    for command in ("data", "train", "evaluate", "predict"):
        assert command in out.stdout


def test_every_public_name_resolves():
    for name in groundup.__all__:
        assert getattr(groundup, name) is not None, name
    assert groundup.init_params is __import__("groundup.learn.steps").learn.steps.init_params
    assert set(dir(groundup)) == set(groundup.__all__)


def test_the_articles_names_are_public():
    for name in (
        "init_params", "linear1", "mnist_loss", "calc_grad", "train_epoch", "validate_epoch",
        "batch_accuracy", "BasicOptim", "Learner", "simple_net", "sigmoid", "train_model",
    ):  # fmt: skip
        assert name in groundup.__all__


def test_unknown_attribute_is_an_attribute_error():
    try:
        groundup.no_such_thing  # noqa: B018
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:
        raise AssertionError("groundup.no_such_thing resolved")


def test_console_script_is_installed():
    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="groundup")
    assert entry.value == "groundup.cli:main"
    assert entry.load() is groundup.cli.main
    script = Path(sys.executable).parent / "groundup"
    assert script.is_file()
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"groundup {groundup.__version__}"


def test_training_and_saving_never_import_torchs_compiler(tmp_path):
    # torch._dynamo costs 1-2 s of start-up; the FLOP count once pulled it in
    out = tmp_path / "run"
    code = (
        "import sys\n"
        "from groundup.cli import main\n"
        f"main(['train', '--model', 'cnn', '--epochs', '1', '--quiet', '--out', {str(out)!r}])\n"
        "print('torch._dynamo' in sys.modules, file=sys.stderr)\n"
    )
    assert _python(code).stderr.split()[-1] == "False"
    assert (out / "model.json").exists()
