"""Optimizers with per-parameter state, updating ``params`` in place.

Letters: p = one parameter array, g = its gradient (same shape), lr = learning rate,
mu = momentum, t = number of updates done so far.

- ``SGD``:       p -= lr * g
- ``Momentum``:  v = mu * v + g;  p -= lr * v            (heavy ball, PyTorch form)
                 Nesterov: v = mu * v + g;  p -= lr * (g + mu * v)
  The velocity holds gradients, not steps, so a learning-rate schedule acts at once.
- ``Adam``:      m = b1 m + (1 - b1) g;  s = b2 s + (1 - b2) g^2;  t += 1;
                 p -= lr * (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps)

``state_dict()`` is a flat dict: scalars (``'name'``, ``'lr'``, ...) and arrays keyed
``'<slot>/<param name>'`` (e.g. ``'v/W_hh'``), so a checkpoint can store the arrays as
``opt/<key>`` and the scalars as JSON. ``load_state_dict`` takes the same dict back and refuses
(CheckpointError) a state that would not continue exactly: scalars of the wrong type or out of
range, and, given the parameters, slot arrays of another shape or dtype, NaN/inf, for unknown
parameters or covering only some of them. A slot whose shape does not fit its parameter is
never replaced by zeros behind the caller's back.
"""

from __future__ import annotations

import math

import numpy as np

from core.errors import CheckpointError, ConfigError
from core.names import OPTIMIZERS


class Optimizer:
    """Base class: holds lr and per-parameter slot arrays ``self.slots[slot][name]``."""

    name = "base"
    slot_names: tuple[str, ...] = ()

    def __init__(self, lr: float):
        lr = float(lr)
        if not (lr > 0.0 and math.isfinite(lr)):
            raise ConfigError(f"learning rate {lr} must be a positive number")
        self.lr = lr
        self.slots: dict[str, dict[str, np.ndarray]] = {s: {} for s in self.slot_names}

    def _slot(self, slot: str, name: str, p: np.ndarray) -> np.ndarray:
        buf = self.slots[slot].get(name)
        if buf is None:
            buf = np.zeros_like(p)
            self.slots[slot][name] = buf
        elif buf.shape != p.shape or buf.dtype != p.dtype:
            raise CheckpointError(
                f"optimizer state {slot}/{name} is {buf.dtype} {buf.shape} but the parameter is "
                f"{p.dtype} {p.shape}; the optimizer state belongs to another model")
        return buf

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
             lr: float | None = None) -> None:
        """Update every ``params[name]`` in place from ``grads[name]`` (same shapes)."""
        raise NotImplementedError

    def _scalars(self) -> dict:
        return {}

    def _load_scalars(self, state: dict) -> None:
        pass

    @staticmethod
    def _number(state: dict, key: str, lo: float, hi: float | None = None,
                lo_open: bool = False) -> float:
        """state[key] as a float in [lo, hi) (or (lo, ...) if lo_open); CheckpointError if not."""
        value = state.get(key)
        ok = isinstance(value, (int, float, np.integer, np.floating)) \
            and not isinstance(value, (bool, np.bool_)) and math.isfinite(float(value))
        if ok:
            v = float(value)
            ok = (v > lo if lo_open else v >= lo) and (hi is None or v < hi)
        if not ok:
            where = f"({'(' if lo_open else '['}{lo:g}, {'inf' if hi is None else f'{hi:g}'})"
            got = "missing" if key not in state else f"{value!r}"
            raise CheckpointError(f"optimizer state {key} is {got}, expected a number in {where}")
        return float(value)

    @staticmethod
    def _flag(state: dict, key: str) -> bool:
        value = state.get(key)
        if not isinstance(value, (bool, np.bool_)):
            got = "missing" if key not in state else f"{value!r}"
            raise CheckpointError(f"optimizer state {key} is {got}, expected true or false")
        return bool(value)

    def state_dict(self) -> dict:
        """Flat dict: 'name', 'lr', hyperparameters, counters, and '<slot>/<param>' arrays."""
        state: dict = {"name": self.name, "lr": self.lr, **self._scalars()}
        for slot, arrays in self.slots.items():
            for pname, arr in arrays.items():
                state[f"{slot}/{pname}"] = arr.copy()
        return state

    def load_state_dict(self, state: dict,
                        params: dict[str, np.ndarray] | None = None) -> None:
        """Restore from :meth:`state_dict` output (arrays are copied); CheckpointError if the
        state is unusable. ``params`` (name -> array): the parameters the state must fit; when
        given, every slot array must match its parameter's shape and dtype and be finite, and a
        slot that holds any array must hold one for every parameter. Nothing changes on error.
        """
        if not isinstance(state, dict):
            raise CheckpointError(f"optimizer state is a {type(state).__name__}, not a dict")
        if state.get("name") != self.name:
            raise CheckpointError(
                f"optimizer state is for {state.get('name')!r}, not {self.name!r}; "
                "resume with the optimizer the run was started with")
        slots: dict[str, dict[str, np.ndarray]] = {s: {} for s in self.slot_names}
        for key, value in state.items():
            if "/" not in key:
                continue
            slot, pname = key.split("/", 1)
            if slot not in slots:
                raise CheckpointError(f"optimizer state has unknown slot {slot!r} ({key}) for "
                                      f"{self.name}")
            if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                what = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                raise CheckpointError(f"optimizer state {key} is {what}, not a float array")
            if params is not None:
                p = params.get(pname)
                if p is None:
                    raise CheckpointError(f"optimizer state {key} is for {pname!r}, which is no "
                                          "parameter of the model")
                if value.shape != p.shape or value.dtype != p.dtype:
                    raise CheckpointError(f"optimizer state {key} has shape {value.shape} "
                                          f"({value.dtype}), the parameter {pname} needs "
                                          f"{p.shape} ({p.dtype})")
                if not np.all(np.isfinite(value)):
                    raise CheckpointError(f"optimizer state {key} holds NaN/inf")
            slots[slot][pname] = np.array(value, copy=True)
        if params is not None and any(slots.values()):
            for slot, arrays in slots.items():
                missing = [n for n in params if n not in arrays]
                if missing:
                    raise CheckpointError(f"optimizer state lacks {slot}/{missing[0]} (it holds "
                                          f"{len(arrays)} of the {len(params)} '{slot}' arrays)")
        previous = self.__dict__.copy()
        try:
            self.lr = self._number(state, "lr", 0.0, lo_open=True)
            self._load_scalars(state)
        except CheckpointError:
            self.__dict__.update(previous)
            raise
        self.slots = slots


class SGD(Optimizer):
    """Plain stochastic gradient descent: p -= lr * g."""

    name = "sgd"

    def step(self, params, grads, lr=None):
        lr = self.lr if lr is None else float(lr)
        for name, p in params.items():
            g = grads[name]
            p -= p.dtype.type(lr) * g


class Momentum(Optimizer):
    """SGD with (optionally Nesterov) momentum; velocity v per parameter."""

    slot_names = ("v",)

    def __init__(self, lr: float, momentum: float = 0.9, nesterov: bool = False):
        super().__init__(lr)
        momentum = float(momentum)
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"momentum {momentum} must be in [0, 1)")
        self.momentum = momentum
        self.nesterov = bool(nesterov)

    @property
    def name(self):  # noqa: D401 - the state name says which variant
        return "nesterov" if self.nesterov else "momentum"

    def step(self, params, grads, lr=None):
        lr = self.lr if lr is None else float(lr)
        for name, p in params.items():
            g = grads[name]
            v = self._slot("v", name, p)
            mu = p.dtype.type(self.momentum)
            v *= mu
            v += g
            if self.nesterov:
                p -= p.dtype.type(lr) * (g + mu * v)
            else:
                p -= p.dtype.type(lr) * v

    def _scalars(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def _load_scalars(self, state):
        self.momentum = self._number(state, "momentum", 0.0, 1.0)
        nesterov = self._flag(state, "nesterov")
        if nesterov != self.nesterov:
            raise CheckpointError(f"optimizer state nesterov={nesterov} contradicts its name "
                                  f"{state.get('name')!r}")


class Adam(Optimizer):
    """Adam with bias correction; first moment m and second moment s per parameter."""

    name = "adam"
    slot_names = ("m", "s")

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        for label, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= float(b) < 1.0:
                raise ConfigError(f"Adam {label} {b} must be in [0, 1)")
        if not float(eps) > 0.0:
            raise ConfigError(f"Adam eps {eps} must be positive")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.t = 0

    def step(self, params, grads, lr=None):
        lr = self.lr if lr is None else float(lr)
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        corr1 = 1.0 - b1 ** self.t
        corr2 = 1.0 - b2 ** self.t
        # p -= lr/corr1 * m / (sqrt(s)/sqrt(corr2) + eps)
        step_size = lr / corr1
        for name, p in params.items():
            g = grads[name]
            m = self._slot("m", name, p)
            s = self._slot("s", name, p)
            dt = p.dtype.type
            m *= dt(b1)
            m += dt(1.0 - b1) * g
            s *= dt(b2)
            s += dt(1.0 - b2) * (g * g)
            denom = np.sqrt(s)
            denom *= dt(1.0 / math.sqrt(corr2))
            denom += dt(self.eps)
            p -= dt(step_size) * (m / denom)

    def _scalars(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "t": self.t}

    def _load_scalars(self, state):
        self.beta1 = self._number(state, "beta1", 0.0, 1.0)
        self.beta2 = self._number(state, "beta2", 0.0, 1.0)
        self.eps = self._number(state, "eps", 0.0, lo_open=True)
        t = state.get("t")
        if not isinstance(t, (int, np.integer)) or isinstance(t, (bool, np.bool_)) or t < 0:
            got = "missing" if "t" not in state else f"{t!r}"
            raise CheckpointError(f"optimizer state t (Adam's update count) is {got}, expected "
                                  "an integer >= 0")
        self.t = int(t)


def make_optimizer(name: str, lr: float, **kw) -> Optimizer:
    """Build an optimizer by name: 'sgd' | 'momentum' | 'nesterov' | 'adam'.

    Keyword arguments the chosen optimizer does not take (e.g. ``momentum`` for Adam) are
    ignored, so a TrainConfig can pass all of its fields.
    """
    if name == "sgd":
        return SGD(lr)
    if name in ("momentum", "nesterov"):
        return Momentum(lr, momentum=kw.get("momentum", 0.9),
                        nesterov=kw.get("nesterov", name == "nesterov"))
    if name == "adam":
        return Adam(lr, beta1=kw.get("beta1", 0.9), beta2=kw.get("beta2", 0.999),
                    eps=kw.get("eps", 1e-8))
    raise ConfigError(f"optimizer {name!r} is unknown; use one of {', '.join(OPTIMIZERS)}")
