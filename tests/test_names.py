"""core.names: one NumPy-free source of every named choice, read by the command line, the
engine and the app, and never written again elsewhere."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import names

ROOT = Path(__file__).resolve().parents[1]
CONSTANTS = sorted(k for k in vars(names) if k.isupper())


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print(' '.join(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_names_import_no_numpy():
    loaded = _modules_after("import core.names")
    assert "numpy" not in loaded and "core.names" in loaded


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["overfit", "--help"]])
def test_command_line_help_imports_no_numpy(argv):
    code = ("import contextlib, io, runpy, sys\n"
            f"sys.argv = ['main.py', *{argv!r}]\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n"
            "        runpy.run_path('main.py', run_name='__main__')\n"
            "    except SystemExit as exc:\n"
            "        assert not exc.code, exc.code\n"
            "assert 'usage:' in out.getvalue()")
    loaded = _modules_after(code)
    assert "numpy" not in loaded and "cli.main" in loaded


def test_no_constant_is_written_twice():
    """No module of core, cli or app assigns a name that core.names defines."""
    again = []
    for package in ("core", "cli", "app"):
        for path in sorted((ROOT / package).glob("*.py")):
            if path.name == "names.py" and package == "core":
                continue
            for node in ast.parse(path.read_text()).body:
                targets = node.targets if isinstance(node, ast.Assign) else (
                    [node.target] if isinstance(node, ast.AnnAssign) else [])
                again += [f"{path.relative_to(ROOT)}:{node.lineno} {t.id}" for t in targets
                          if isinstance(t, ast.Name) and t.id in CONSTANTS]
    assert again == []


def test_every_name_is_accepted_by_the_code_it_names():
    from core import optim, schedules
    from core.clipping import clip_gradients
    from core.config import TrainConfig
    from core.init import recurrent_weights
    from core.models import MODELS
    from core.normalize import Normalizer
    from core.splits import split_indices

    assert tuple(MODELS) == tuple(names.MODEL_KINDS)
    for kind, cls in MODELS.items():
        m = cls(hidden_dim=4)
        assert m.T == names.TIMESTEPS[kind]
        assert cls().params["W_hh"].shape[0] == names.DEFAULT_HIDDEN[kind]
        assert TrainConfig(model=kind).validate().timesteps == names.TIMESTEPS[kind]
    rng = np.random.default_rng(0)
    for init in names.INITS:
        assert recurrent_weights(rng, 3, init).shape == (3, 3)
    for name in names.OPTIMIZERS:
        assert optim.make_optimizer(name, lr=0.1).name == name
    for mode in names.CLIP_MODES:
        clip_gradients({"W": np.ones(2)}, mode, 1.0)
    for name in names.SCHEDULES:
        assert schedules.make_schedule(name, 0.1).name == name
    for kind in names.NORMALIZATIONS:
        assert Normalizer(kind).kind == kind
    for scheme in names.SPLIT_SCHEMES:
        assert set(split_indices(np.arange(100) % 10, 20, scheme, seed=0)) == {
            "train", "val", "test"}
    for act in names.ACTIVATIONS:
        for dtype in names.DTYPES:
            assert TrainConfig(activation=act, dtype=dtype).validate()
    for preset in names.PRESETS:
        assert TrainConfig.from_preset(preset).preset == preset
    from core.cells import CELLS

    assert tuple(CELLS) == tuple(names.CELL_KINDS)
    for cell in names.CELL_KINDS:
        assert TrainConfig(cell=cell).validate().model_kwargs()["cell"] == cell
    for seq in names.SEQUENCES:
        m = MODELS["cnn-rnn"](channels=(2, 3), hidden_dim=4, sequence=seq)
        assert m.T == names.timesteps_of("cnn-rnn", seq) == names.SEQUENCE_TIMESTEPS[seq]
        assert TrainConfig(model="cnn-rnn", sequence=seq).validate().timesteps == m.T


def test_command_line_offers_exactly_the_names():
    from cli.main import build_parser

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    choices = {a.dest: a.choices for a in train._actions if a.choices}
    assert list(choices["model"]) == list(names.MODEL_KINDS)
    assert list(choices["preset"]) == list(names.PRESETS)
    assert list(choices["optimizer"]) == list(names.OPTIMIZERS)
    assert list(choices["clip"]) == list(names.CLIP_MODES)
    assert list(choices["activation"]) == list(names.ACTIVATIONS)
    assert list(choices["cell"]) == list(names.CELL_KINDS)
    assert list(choices["sequence"]) == list(names.SEQUENCES)
