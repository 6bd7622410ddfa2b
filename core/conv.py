"""3x3 convolutions (zero padding 1, stride 1) and 2x2 max-pooling, channels-last, via im2col.

Letters: N = batch size, H / W = image height / width (even where pooling is used),
C = channels of a pooled map, Cin / Cout = input / output channels of a convolution,
C1 / C2 = output channels of the two blocks of the conv stack.

Layouts: images and feature maps are NHWC. Conv weights are ``(3, 3, Cin, Cout)`` — kernel row,
kernel column, input channel, output channel — so ``w.reshape(9 * Cin, Cout)`` matches the
im2col column order (kernel row, kernel column, channel):

    out[n, i, j, o] = b[o] + sum_{p, q, c} xpad[n, i + p, j + q, c] * w[p, q, c, o]

where xpad is x zero-padded by one pixel. im2col is one ``as_strided`` view of the padded
input copied once into an (N*H*W, 9*Cin) matrix. The input gradient is *gathered*: it is the
same convolution applied to the zero-padded output gradient with the kernel flipped in space
and its channel axes swapped — no scatter-add.

``conv_stack_forward`` / ``conv_stack_backward`` are the fused fast path of the CNN+RNN:
two blocks of conv3x3 -> maxpool2x2 -> +b -> ReLU (pooling before bias and ReLU gives the same
result as the textbook conv -> +b -> ReLU -> pool, since both are monotone per channel), run
over chunks of a few images so the buffers stay in cache; im2col is recomputed in backward
rather than stored. Max-pool keeps which element of each window won as two boolean masks
(first maximum in row-major window order on ties).

Workers: ``set_conv_workers(n)`` (default 1) lets the fused stack run its chunks on n Python
threads (NumPy and BLAS release the GIL), with BLAS limited to one thread meanwhile, so the
elementwise work (im2col, pooling, ReLU) uses several cores too. Results then differ from one
worker only by the order of the partial weight-gradient sums. Leave it at 1 where a core must
stay free (the app's training worker). ``core.threads.run_parts`` runs the chunks; inside a
batch-parallel part (``core.batch_parallel``) they run serially in that part's thread.

The naive loop twins are in ``core.naive``.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from core.threads import run_parts

CHUNK = 16  # images per chunk in the fused conv stack

_workers = 1


def set_conv_workers(n):
    """Run the fused conv stack's chunks on ``n`` >= 1 threads (1 = in the caller's thread)."""
    global _workers
    n = int(n)
    if n < 1:
        raise ValueError(f"conv workers must be >= 1, got {n}")
    _workers = n


def pad1(x):
    """Zero-pad the two spatial axes by one pixel.  x (N, H, W, C) -> (N, H+2, W+2, C)."""
    N, H, W, C = x.shape
    xp = np.zeros((N, H + 2, W + 2, C), dtype=x.dtype)
    xp[:, 1:-1, 1:-1, :] = x
    return xp


def im2col3x3(xpad, out=None):
    """xpad (N, H+2, W+2, C) -> cols (N*H*W, 9*C), one strided copy (into ``out`` if given).

    ``xpad`` may be any view whose last axis is contiguous (e.g. a slice of a larger padded
    buffer); ``out`` must be a C-contiguous float array of the right shape.
    """
    N, Hp, Wp, C = xpad.shape
    H, W = Hp - 2, Wp - 2
    s0, s1, s2, s3 = xpad.strides
    view = as_strided(xpad, (N, H, W, 3, 3, C), (s0, s1, s2, s1, s2, s3), writeable=False)
    if out is None:
        return view.reshape(N * H * W, 9 * C)
    np.copyto(out.reshape(N, H, W, 3, 3, C), view)
    return out


def flip_kernel(w):
    """w (3, 3, Cin, Cout) -> (3, 3, Cout, Cin): spatially flipped, channel axes swapped."""
    return np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))


def conv3x3_forward(x, w, b):
    """x (N, H, W, Cin), w (3, 3, Cin, Cout), b (Cout,) -> out (N, H, W, Cout), cache."""
    N, H, W, Cin = x.shape
    Cout = w.shape[3]
    out = im2col3x3(pad1(x)) @ w.reshape(9 * Cin, Cout)
    out += b
    return out.reshape(N, H, W, Cout), (x, w)


def conv3x3_backward(dout, cache):
    """dout (N, H, W, Cout) -> dx (N, H, W, Cin), dw (3, 3, Cin, Cout), db (Cout,)."""
    x, w = cache
    N, H, W, Cin = x.shape
    Cout = w.shape[3]
    d2 = dout.reshape(-1, Cout)
    dw = (im2col3x3(pad1(x)).T @ d2).reshape(w.shape)
    db = d2.sum(axis=0)
    dx = im2col3x3(pad1(dout)) @ flip_kernel(w).reshape(9 * Cout, Cin)
    return dx.reshape(N, H, W, Cin), dw, db


def _maxpool(y, out=None):
    """y (N, H, W, C) -> max (N, H/2, W/2, C) (written into ``out`` if given), cache.

    Two passes over contiguous halves: the max of each horizontal pair, then of each vertical
    pair of those. The cache is the two choices as booleans: ``right`` (N, H, W/2, C) — the
    right element of the pair won — and ``bottom`` (N, H/2, W/2, C) — the bottom row won.
    Ties keep the left / top element, i.e. the first maximum in row-major window order.
    """
    N, H, W, C = y.shape
    pairs = y.reshape(N, H, W // 2, 2 * C)
    left, right = pairs[..., :C], pairs[..., C:]
    colmax = np.maximum(left, right)  # (N, H, W/2, C)
    right_won = right > left
    rows = colmax.reshape(N, H // 2, 2, W // 2, C)
    top, bot = rows[:, :, 0], rows[:, :, 1]
    m = np.maximum(top, bot, out=out)
    bottom_won = bot > top
    return m, (right_won, bottom_won)


def _unpool(dm, cache, out=None):
    """dm (N, H/2, W/2, C), cache of ``_maxpool`` -> dy (N, H, W, C): dm routed to each max.

    ``out`` may be any (N, H, W, C) view, e.g. the interior of a zero-bordered buffer.
    """
    right_won, bottom_won = cache
    N, Ho, Wo, C = dm.shape
    if out is None:
        out = np.empty((N, 2 * Ho, 2 * Wo, C), dtype=dm.dtype)
    for r, drow in enumerate((dm * ~bottom_won, dm * bottom_won)):  # top / bottom row won
        right = right_won[:, r::2]
        np.multiply(drow, ~right, out=out[:, r::2, 0::2])
        np.multiply(drow, right, out=out[:, r::2, 1::2])
    return out


def maxpool2x2_forward(x):
    """x (N, H, W, C) -> out (N, H/2, W/2, C), cache (which element of each window won)."""
    return _maxpool(x)


def maxpool2x2_backward(dout, cache):
    """dout (N, H/2, W/2, C) -> dx (N, H, W, C)."""
    return _unpool(dout, cache)


# ---------------------------------------------------------------------------------------------
# Fused conv stack of the CNN+RNN
# ---------------------------------------------------------------------------------------------


def conv_stack_forward(x, w1, b1, w2, b2, chunk=CHUNK, workers=None):
    """Two blocks conv3x3 -> maxpool2x2 -> +b -> ReLU.

    x (N, H, W, Cin), w1 (3, 3, Cin, C1), b1 (C1,), w2 (3, 3, C1, C2), b2 (C2,)
    -> out (N, H/4, W/4, C2), cache. The cache holds the padded input, the padded block-1
    output (N, H/2+2, W/2+2, C1), the block-2 output and the max-pool choices per chunk.
    Per-chunk buffers (im2col matrices, conv outputs) are allocated once per worker and reused.
    ``workers``: threads over chunks (None = the ``set_conv_workers`` setting).
    """
    N, H, W, Cin = x.shape
    C1, C2 = w1.shape[3], w2.shape[3]
    H2, W2, H4, W4 = H // 2, W // 2, H // 4, W // 4
    dt = w1.dtype
    xp = pad1(x.astype(dt, copy=False))
    p1 = np.zeros((N, H2 + 2, W2 + 2, C1), dtype=dt)  # block-1 output, padded for conv 2
    out = np.empty((N, H4, W4, C2), dtype=dt)
    starts = list(range(0, N, chunk))
    pool1, pool2 = [None] * len(starts), [None] * len(starts)  # max-pool caches per chunk
    w1m = w1.reshape(9 * Cin, C1)
    w2m = w2.reshape(9 * C1, C2)
    parts = max(1, min(_workers if workers is None else int(workers), len(starts)))

    def run(part):
        c = min(chunk, N)
        cols1 = np.empty((c * H * W, 9 * Cin), dtype=dt)
        y1 = np.empty((c * H * W, C1), dtype=dt)
        cols2 = np.empty((c * H2 * W2, 9 * C1), dtype=dt)
        y2 = np.empty((c * H2 * W2, C2), dtype=dt)
        for k in range(part, len(starts), parts):
            n0 = starts[k]
            n1 = min(n0 + chunk, N)
            n = n1 - n0
            r1, r2 = n * H * W, n * H2 * W2
            im2col3x3(xp[n0:n1], out=cols1[:r1])
            np.matmul(cols1[:r1], w1m, out=y1[:r1])
            z1 = p1[n0:n1, 1:-1, 1:-1, :]
            pool1[k] = _maxpool(y1[:r1].reshape(n, H, W, C1), out=z1)[1]
            z1 += b1
            np.maximum(z1, 0, out=z1)
            im2col3x3(p1[n0:n1], out=cols2[:r2])
            np.matmul(cols2[:r2], w2m, out=y2[:r2])
            z2 = out[n0:n1]
            pool2[k] = _maxpool(y2[:r2].reshape(n, H2, W2, C2), out=z2)[1]
            z2 += b2
            np.maximum(z2, 0, out=z2)

    run_parts(run, parts)
    cache = {"xp": xp, "p1": p1, "out": out, "pool1": pool1, "pool2": pool2,
             "w1": w1, "w2": w2, "chunk": chunk, "parts": parts}
    return out, cache


def conv_stack_block1(cache):
    """Block-1 output (N, H/2, W/2, C1) from a ``conv_stack_forward`` cache (a view)."""
    return cache["p1"][:, 1:-1, 1:-1, :]


def conv_stack_backward(dout, cache):
    """dout (N, H/4, W/4, C2) -> dw1 (3, 3, Cin, C1), db1 (C1,), dw2 (3, 3, C1, C2), db2 (C2,).

    No gradient is returned for the input images (the models never need it). im2col of the
    inputs is recomputed per chunk; the block-1 gradient is gathered from the zero-padded
    block-2 gradient (unpooled straight into the padded buffer) with the flipped kernel.
    Runs on as many threads as the forward pass did.
    """
    xp, p1, out = cache["xp"], cache["p1"], cache["out"]
    pool1, pool2 = cache["pool1"], cache["pool2"]
    w1, w2, chunk, parts = cache["w1"], cache["w2"], cache["chunk"], cache["parts"]
    N, Hp, Wp, Cin = xp.shape
    H, W = Hp - 2, Wp - 2
    H2, W2 = H // 2, W // 2
    C1, C2 = w1.shape[3], w2.shape[3]
    dt = w1.dtype
    dz2 = dout * (out > 0)  # through ReLU of block 2
    db2 = dz2.sum(axis=(0, 1, 2))
    w2f = flip_kernel(w2).reshape(9 * C2, C1)
    starts = list(range(0, N, chunk))

    def run(part):
        dw1 = np.zeros((9 * Cin, C1), dtype=dt)
        dw2 = np.zeros((9 * C1, C2), dtype=dt)
        db1 = np.zeros(C1, dtype=dt)
        c = min(chunk, N)
        dpad = np.zeros((c, H2 + 2, W2 + 2, C2), dtype=dt)  # block-2 conv grad, zero border
        cols2 = np.empty((c * H2 * W2, 9 * C1), dtype=dt)  # im2col of p1, then of dpad
        dcols = cols2 if C1 == C2 else np.empty((c * H2 * W2, 9 * C2), dtype=dt)
        dz1 = np.empty((c * H2 * W2, C1), dtype=dt)
        dy1 = np.empty((c, H, W, C1), dtype=dt)
        cols1 = np.empty((c * H * W, 9 * Cin), dtype=dt)
        for k in range(part, len(starts), parts):
            n0 = starts[k]
            n1 = min(n0 + chunk, N)
            n = n1 - n0
            r1, r2 = n * H * W, n * H2 * W2
            dy2 = _unpool(dz2[n0:n1], pool2[k], out=dpad[:n, 1:-1, 1:-1, :])  # (n,H2,W2,C2)
            dw2 += im2col3x3(p1[n0:n1], out=cols2[:r2]).T @ dy2.reshape(r2, C2)
            im2col3x3(dpad[:n], out=dcols[:r2])
            np.matmul(dcols[:r2], w2f, out=dz1[:r2])  # gathered input gradient of block 2
            g1 = dz1[:r2].reshape(n, H2, W2, C1)
            g1 *= p1[n0:n1, 1:-1, 1:-1, :] > 0  # through ReLU of block 1
            db1 += g1.sum(axis=(0, 1, 2))
            _unpool(g1, pool1[k], out=dy1[:n])
            dw1 += im2col3x3(xp[n0:n1], out=cols1[:r1]).T @ dy1[:n].reshape(r1, C1)
        return dw1, db1, dw2

    partial = run_parts(run, parts)
    dw1, db1, dw2 = partial[0]
    for pdw1, pdb1, pdw2 in partial[1:]:
        dw1 += pdw1
        db1 += pdb1
        dw2 += pdw2
    return dw1.reshape(w1.shape), db1, dw2.reshape(w2.shape), db2
