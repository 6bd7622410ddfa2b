"""Optimizers against hand-computed updates; state round trips."""

import math

import numpy as np
import pytest

from core.errors import CheckpointError, ConfigError
from core.optim import SGD, Adam, Momentum, make_optimizer


def _p():
    return {"w": np.array([1.0, -2.0]), "b": np.array([0.5])}


G1 = {"w": np.array([0.5, 1.0]), "b": np.array([-1.0])}
G2 = {"w": np.array([1.0, -1.0]), "b": np.array([2.0])}


def test_sgd():
    p = _p()
    SGD(0.1).step(p, G1)
    np.testing.assert_allclose(p["w"], [0.95, -2.1])
    np.testing.assert_allclose(p["b"], [0.6])
    SGD(0.1).step(p, G1, lr=1.0)
    np.testing.assert_allclose(p["w"], [0.45, -3.1])


def test_momentum_two_steps():
    p = _p()
    opt = Momentum(0.1, momentum=0.9)
    opt.step(p, G1)  # v = g1
    opt.step(p, G2)  # v = 0.9 g1 + g2
    v2 = 0.9 * G1["w"] + G2["w"]
    np.testing.assert_allclose(p["w"], _p()["w"] - 0.1 * G1["w"] - 0.1 * v2)


def test_nesterov_two_steps():
    p = _p()
    opt = Momentum(0.1, momentum=0.9, nesterov=True)
    opt.step(p, G1)
    opt.step(p, G2)
    v1 = G1["w"]
    v2 = 0.9 * v1 + G2["w"]
    expect = _p()["w"] - 0.1 * (G1["w"] + 0.9 * v1) - 0.1 * (G2["w"] + 0.9 * v2)
    np.testing.assert_allclose(p["w"], expect)


def test_adam_first_step_is_lr_times_sign_and_second_by_hand():
    p = _p()
    opt = Adam(0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    opt.step(p, G1)
    # bias-corrected m/sqrt(s) = g/|g| on the first step
    np.testing.assert_allclose(p["w"], _p()["w"] - 0.01 * np.sign(G1["w"]), rtol=1e-7)
    opt.step(p, G2)
    g1, g2 = G1["w"], G2["w"]
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    s = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    mh, sh = m / (1 - 0.9**2), s / (1 - 0.999**2)
    expect = _p()["w"] - 0.01 * np.sign(g1) - 0.01 * mh / (np.sqrt(sh) + 1e-8)
    np.testing.assert_allclose(p["w"], expect, rtol=1e-7)
    assert opt.t == 2


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_state_dict_round_trip_continues_identically(name):
    a = make_optimizer(name, 0.05, momentum=0.8)
    pa = _p()
    a.step(pa, G1)
    state = a.state_dict()
    assert all(isinstance(v, (np.ndarray, float, int, bool, str)) for v in state.values())
    b = make_optimizer(name, 0.05, momentum=0.8)
    b.load_state_dict(state)
    pb = {k: v.copy() for k, v in pa.items()}
    a.step(pa, G2)
    b.step(pb, G2)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])
    if name != "sgd":
        assert any("/" in k for k in state)


def test_float32_params_stay_float32():
    p = {"w": np.ones(3, np.float32)}
    for name in ("sgd", "momentum", "adam"):
        make_optimizer(name, 0.1).step(p, {"w": np.ones(3, np.float32)})
        assert p["w"].dtype == np.float32


def test_errors():
    with pytest.raises(ConfigError, match="learning rate"):
        SGD(0.0)
    with pytest.raises(ConfigError, match="learning rate"):
        Adam(math.nan)
    with pytest.raises(ConfigError, match="momentum"):
        Momentum(0.1, momentum=1.0)
    with pytest.raises(ConfigError, match="optimizer 'rmsprop'"):
        make_optimizer("rmsprop", 0.1)
    with pytest.raises(CheckpointError, match="adam"):
        SGD(0.1).load_state_dict(Adam(0.1).state_dict())


def _state_after_one_step(name):
    opt = make_optimizer(name, 0.05, momentum=0.8)
    opt.step(_p(), G1)
    return opt.state_dict()


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_state_that_does_not_fit_the_parameters_is_refused(name):
    params = _p()
    state = _state_after_one_step(name)
    slot = "v" if name == "momentum" else "m"
    good = make_optimizer(name, 0.05)
    good.load_state_dict(state, params=params)  # fits
    cases = {
        "shape": {**state, f"{slot}/w": np.zeros(7, state[f"{slot}/w"].dtype)},
        "dtype": {**state, f"{slot}/w": state[f"{slot}/w"].astype(np.float32)},
        "nan": {**state, f"{slot}/w": np.full_like(state[f"{slot}/w"], np.nan)},
        "unknown parameter": {**state, f"{slot}/zz": state[f"{slot}/w"]},
        "incomplete": {k: v for k, v in state.items() if k != f"{slot}/w"},
    }
    for what, bad in cases.items():
        opt = make_optimizer(name, 0.05)
        before = opt.state_dict()
        with pytest.raises(CheckpointError):
            opt.load_state_dict(bad, params=params)
        assert opt.state_dict().keys() == before.keys(), what  # nothing half-loaded


def test_a_loaded_slot_of_another_shape_is_never_reset_to_zeros():
    state = _state_after_one_step("momentum")
    opt = make_optimizer("momentum", 0.05, momentum=0.8)
    opt.load_state_dict({**state, "v/w": np.ones(7)})  # no parameters to check against
    with pytest.raises(CheckpointError, match="v/w"):
        opt.step(_p(), G2)


@pytest.mark.parametrize("key, value", [("lr", "fast"), ("lr", -1.0), ("t", 1.5), ("t", -2),
                                        ("beta1", 1.0), ("eps", 0.0), ("t", None)])
def test_scalars_of_the_wrong_type_or_range_are_refused(key, value):
    state = _state_after_one_step("adam")
    state = {**state, key: value} if value is not None else {
        k: v for k, v in state.items() if k != key}
    opt = Adam(0.1)
    with pytest.raises(CheckpointError, match=key):
        opt.load_state_dict(state)
    assert opt.lr == 0.1 and opt.t == 0  # unchanged
