"""Centred-difference gradient checks shared by the engine tests.

Everything here is float64: perturbations of h = 1e-5 are meaningless in float32.
"""

import numpy as np


def numeric_grad(f, x, h=1e-5, idx=None):
    """Centred difference of the scalar ``f()`` with respect to the array ``x`` (changed in place).

    ``f`` takes no arguments, reads ``x`` and returns a real scalar; ``idx`` is an iterable of
    index tuples to check (None = every entry). Returns an array shaped like ``x`` holding the
    numeric gradient at the checked entries and NaN elsewhere. ``x`` is restored exactly
    afterwards.
    """
    grad = np.full(x.shape, np.nan)
    indices = np.ndindex(*x.shape) if idx is None else idx
    for ix in indices:
        old = x[ix]
        x[ix] = old + h
        fp = f()
        x[ix] = old - h
        fm = f()
        x[ix] = old
        # the difference in f's own precision: an extended-precision f (np.longdouble) keeps
        # the bits a float64 rounding would lose
        grad[ix] = (fp - fm) / (2.0 * h)
    return grad


def numeric_grad_array(f, x, df, h=1e-5, idx=None):
    """Numeric gradient of ``sum(f() * df)`` w.r.t. ``x`` (checks a backward given ``df``)."""
    return numeric_grad(lambda: np.sum(f() * df), x, h=h, idx=idx)


def assert_backward_matches(forward, backward, inputs, rng, tol=1e-6):
    """``forward(*inputs) -> (out, cache)``, ``backward(dout, cache)`` -> one gradient per input:
    each within ``tol`` of the centred difference of sum(out * dout) for a random ``dout``.
    Returns ``out``."""
    out, cache = forward(*inputs)
    dout = rng.standard_normal(out.shape)
    grads = backward(dout, cache)
    assert len(grads) == len(inputs)
    for g, x in zip(grads, inputs):
        assert rel_error(g, numeric_grad_array(lambda: forward(*inputs)[0], x, dout)) < tol
    return out


def random_indices(shape, count, rng):
    """Up to ``count`` distinct random index tuples into an array of ``shape``."""
    size = int(np.prod(shape))
    flat = rng.choice(size, size=min(count, size), replace=False)
    return [np.unravel_index(i, shape) for i in flat]


def rel_error(a, b, floor=1e-8):
    """Largest elementwise relative error |a-b| / max(|a|+|b|, floor), ignoring NaNs in ``b``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mask = ~np.isnan(b)
    if not mask.any():
        raise ValueError("no entries to compare")
    a, b = a[mask], b[mask]
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)))
