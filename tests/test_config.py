"""TrainConfig validation, presets and dict round trips."""

import json

import pytest

from core.config import PRESETS, TrainConfig
from core.errors import ConfigError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate_and_round_trip(name):
    cfg = TrainConfig.from_preset(name)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert TrainConfig.from_dict(d) == cfg
    assert cfg.preset == name


def test_seed_presets_hold_the_seed_settings():
    s0 = TrainConfig.from_preset("seed000")
    assert (s0.model, s0.hidden_dim, s0.optimizer, s0.lr, s0.reg) == (
        "row-rnn", 256, "sgd", 2e-3, 1e-4)
    assert (s0.batch_size, s0.epochs, s0.patience, s0.decay, s0.schedule) == (
        128, 200, 40, 0.95, "step")
    assert (s0.clip, s0.clip_threshold, s0.normalization, s0.scheme) == (
        "value", 5.0, "per-pixel", "seed000")
    s1 = TrainConfig.from_preset("seed001")
    assert (s1.model, s1.channels, s1.hidden_dim, s1.reg, s1.lr, s1.batch_size) == (
        "cnn-rnn", (64, 64), 128, 5e-4, 0.02, 256)
    assert (s1.epochs, s1.schedule, s1.warmup_epochs, s1.decay, s1.clip) == (
        15, "warmup-exp", 1.0, 0.9, "norm")
    assert (s1.normalization, s1.augment, s1.scheme) == ("unit", True, "seed001")


def test_overrides_apply():
    cfg = TrainConfig.from_preset("seed000", lr=0.01, epochs=3)
    assert cfg.lr == 0.01 and cfg.epochs == 3 and cfg.hidden == 256


def test_hidden_default_depends_on_model():
    assert TrainConfig(model="row-rnn").hidden_dim == 256
    assert TrainConfig(model="cnn-rnn").hidden_dim == 128
    assert TrainConfig(model="cnn-rnn").timesteps == 8


@pytest.mark.parametrize("kw, match", [
    ({"lr": 0.0}, "lr = 0.0 is invalid"),
    ({"lr": -1e-3}, "lr = -0.001"),
    ({"model": "lstm"}, "model = 'lstm'"),
    ({"bptt_window": 0}, "bptt_window = 0 .*1..32"),
    ({"bptt_window": 33}, "bptt_window = 33"),
    ({"model": "cnn-rnn", "bptt_window": 9}, "1..8"),
    ({"clip": "global"}, "clip = 'global'"),
    ({"clip_threshold": 0}, "clip_threshold"),
    ({"batch_size": 0}, "batch_size"),
    ({"epochs": 2.5}, "epochs"),
    ({"momentum": 1.0}, "momentum"),
    ({"subset": 1.5}, "subset"),
    ({"subset": 0}, "subset"),
    ({"max_minutes": 0}, "max_minutes"),
    ({"channels": (64,)}, "channels"),
    ({"dtype": "float16"}, "dtype"),
    ({"gain": -1}, "gain"),
    ({"decay": 0}, "decay"),
    ({"augment": "yes"}, "augment"),
    ({"hidden": 0}, "hidden"),
])
def test_invalid_values_give_one_line_errors(kw, match):
    with pytest.raises(ConfigError, match=match) as info:
        TrainConfig(**kw).validate()
    assert "\n" not in str(info.value)


def test_valid_edge_values():
    TrainConfig(bptt_window=32, subset=1.0).validate()
    TrainConfig(model="cnn-rnn", bptt_window=1, subset=500).validate()


def test_identity_init_with_tanh_is_allowed_but_warned():
    cfg = TrainConfig(init="identity", activation="tanh").validate()
    assert any("identity" in w for w in cfg.warnings())
    assert TrainConfig(init="identity", activation="relu").warnings() == []


def test_unknown_keys_and_presets():
    with pytest.raises(ConfigError, match="unknown training option.*learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ConfigError, match="preset 'best'"):
        TrainConfig.from_preset("best")
