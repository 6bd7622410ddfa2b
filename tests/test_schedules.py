"""Learning-rate schedules at integer and fractional epochs."""

import pytest

from core.errors import ConfigError
from core.schedules import ConstantLR, StepDecay, WarmupExpDecay, make_schedule


def test_constant():
    s = ConstantLR(0.1)
    assert s(0) == s(3.7) == 0.1


def test_step_decay_per_epoch_and_period():
    s = StepDecay(2e-3, factor=0.95)
    assert s(0.0) == 2e-3
    assert s(0.99) == 2e-3
    assert s(1.0) == pytest.approx(2e-3 * 0.95)
    assert s(3.5) == pytest.approx(2e-3 * 0.95**3)
    s2 = StepDecay(1.0, factor=0.5, every_epochs=2)
    assert [s2(e) for e in (0, 1.9, 2, 4.1)] == pytest.approx([1, 1, 0.5, 0.25])


def test_warmup_then_exponential_decay():
    s = WarmupExpDecay(0.02, warmup_epochs=1, factor=0.9, start_factor=0.01)
    assert s(0.0) == pytest.approx(0.0002)
    assert s(0.5) == pytest.approx(0.02 * (0.01 + 0.99 * 0.5))
    assert s(1.0) == pytest.approx(0.02)
    assert s(2.0) == pytest.approx(0.018)
    assert s(3.5) == pytest.approx(0.02 * 0.9**2.5)
    lrs = [s(k / 10) for k in range(11)]
    assert lrs == sorted(lrs)  # increasing during warmup
    assert WarmupExpDecay(1.0, warmup_epochs=0, factor=0.5)(1.0) == 0.5


def test_make_schedule_and_errors():
    assert isinstance(make_schedule("step", 0.1, factor=0.9), StepDecay)
    assert make_schedule("warmup-exp", 0.1, factor=0.9, warmup_epochs=2)(2) == pytest.approx(0.1)
    assert make_schedule("constant", 0.1, factor=0.5)(10) == 0.1
    with pytest.raises(ConfigError, match="schedule 'cosine'"):
        make_schedule("cosine", 0.1)
    with pytest.raises(ConfigError, match="decay factor"):
        StepDecay(0.1, factor=1.5)
