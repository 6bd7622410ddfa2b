"""Learning-rate schedules as functions of the (fractional) epoch e >= 0.

e = steps done / steps per epoch, so e = 2.5 is half-way through the third epoch.

- ``ConstantLR(lr)``:                       lr
- ``StepDecay(lr, factor, every_epochs)``:  lr * factor ** floor(e / every_epochs)
  (seed 000: x0.95 after every epoch)
- ``WarmupExpDecay(lr, warmup_epochs, factor, start_factor)``: linear warmup from
  lr * start_factor to lr over the first ``warmup_epochs``, then lr * factor ** (e - warmup)
  (continuous; seed 001: 1 epoch warmup, then x0.9 per epoch)
"""

from __future__ import annotations

import math

from core.errors import ConfigError
from core.names import SCHEDULES


def _check_lr(lr: float) -> float:
    lr = float(lr)
    if not (lr > 0.0 and math.isfinite(lr)):
        raise ConfigError(f"learning rate {lr} must be a positive number")
    return lr


def _check_factor(factor: float) -> float:
    factor = float(factor)
    if not 0.0 < factor <= 1.0:
        raise ConfigError(f"decay factor {factor} must be in (0, 1]")
    return factor


class ConstantLR:
    """lr at every epoch."""

    name = "constant"

    def __init__(self, lr: float):
        self.lr = _check_lr(lr)

    def __call__(self, epoch: float) -> float:
        return self.lr


class StepDecay:
    """lr * factor ** floor(epoch / every_epochs)."""

    name = "step"

    def __init__(self, lr: float, factor: float = 0.95, every_epochs: float = 1):
        self.lr = _check_lr(lr)
        self.factor = _check_factor(factor)
        if not float(every_epochs) > 0:
            raise ConfigError(f"decay period {every_epochs} epochs must be positive")
        self.every_epochs = float(every_epochs)

    def __call__(self, epoch: float) -> float:
        k = math.floor(max(0.0, float(epoch)) / self.every_epochs + 1e-9)
        return self.lr * self.factor ** k


class WarmupExpDecay:
    """Linear warmup to lr over ``warmup_epochs``, then x``factor`` per epoch (continuous)."""

    name = "warmup-exp"

    def __init__(self, lr: float, warmup_epochs: float = 1.0, factor: float = 0.9,
                 start_factor: float = 0.01):
        self.lr = _check_lr(lr)
        self.factor = _check_factor(factor)
        if not float(warmup_epochs) >= 0:
            raise ConfigError(f"warmup of {warmup_epochs} epochs must be >= 0")
        if not 0.0 < float(start_factor) <= 1.0:
            raise ConfigError(f"warmup start factor {start_factor} must be in (0, 1]")
        self.warmup_epochs = float(warmup_epochs)
        self.start_factor = float(start_factor)

    def __call__(self, epoch: float) -> float:
        e = max(0.0, float(epoch))
        w = self.warmup_epochs
        if e < w:
            frac = e / w
            return self.lr * (self.start_factor + (1.0 - self.start_factor) * frac)
        return self.lr * self.factor ** (e - w)


def make_schedule(name: str, lr: float, **kw):
    """Build a schedule by name: 'constant' | 'step' | 'warmup-exp'.

    Keywords: ``factor`` (step, warmup-exp), ``every_epochs`` (step), ``warmup_epochs`` and
    ``start_factor`` (warmup-exp); keywords the schedule does not take are ignored.
    """
    if name == "constant":
        return ConstantLR(lr)
    if name == "step":
        return StepDecay(lr, factor=kw.get("factor", 0.95), every_epochs=kw.get("every_epochs", 1))
    if name == "warmup-exp":
        return WarmupExpDecay(lr, warmup_epochs=kw.get("warmup_epochs", 1.0),
                              factor=kw.get("factor", 0.9),
                              start_factor=kw.get("start_factor", 0.01))
    raise ConfigError(f"schedule {name!r} is unknown; use one of {', '.join(SCHEDULES)}")
