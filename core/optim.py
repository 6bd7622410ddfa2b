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
``opt/<key>`` and the scalars as JSON. ``load_state_dict`` takes the same dict back.
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
        if buf is None or buf.shape != p.shape or buf.dtype != p.dtype:
            buf = np.zeros_like(p)
            self.slots[slot][name] = buf
        return buf

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
             lr: float | None = None) -> None:
        """Update every ``params[name]`` in place from ``grads[name]`` (same shapes)."""
        raise NotImplementedError

    def _scalars(self) -> dict:
        return {}

    def _load_scalars(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        """Flat dict: 'name', 'lr', hyperparameters, counters, and '<slot>/<param>' arrays."""
        state: dict = {"name": self.name, "lr": self.lr, **self._scalars()}
        for slot, arrays in self.slots.items():
            for pname, arr in arrays.items():
                state[f"{slot}/{pname}"] = arr.copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict` output (arrays are copied)."""
        if state.get("name") != self.name:
            raise CheckpointError(
                f"optimizer state is for {state.get('name')!r}, not {self.name!r}; "
                "resume with the optimizer the run was started with")
        self.lr = float(state["lr"])
        self._load_scalars(state)
        self.slots = {s: {} for s in self.slot_names}
        for key, value in state.items():
            if "/" in key:
                slot, pname = key.split("/", 1)
                if slot not in self.slots:
                    raise CheckpointError(f"optimizer state has unknown slot {slot!r}")
                self.slots[slot][pname] = np.array(value, copy=True)


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
        self.momentum = float(state["momentum"])
        self.nesterov = bool(state["nesterov"])


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
        self.beta1 = float(state["beta1"])
        self.beta2 = float(state["beta2"])
        self.eps = float(state["eps"])
        self.t = int(state["t"])


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
