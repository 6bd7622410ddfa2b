"""Connectivity: which input rows (and pixels) a decision depends on.

Letters: N = images, R = image rows (32), W = image columns (32), C = channels (3),
K = classes, T = RNN steps (32 for the row-RNN, 8 for the CNN+RNN), D = RNN input features,
C1 / C2 = channels of the CNN+RNN's two conv blocks.

For image n and a chosen class k_n, the connectivity is the gradient of that class's logit
with respect to every value of the model's input,

    G_n = d scores[n, k_n] / d X_n        (R, W, C), X = the normalised image the model reads,

computed by hand-written backward passes through the model's own layers: the head's affine
backward with upstream e_k, the cell's BPTT with ``need_dx=True`` (full BPTT, whatever the
model's training window), and for the CNN+RNN the conv stack's backward down to the pixels
(:func:`conv_stack_input_backward`). Reductions:

- ``rows`` (N, R): ||G_n[r, :, :]||_2 per image row r (the row-RNN's timesteps; for the
  CNN+RNN the image rows, reached through the convolutions);
- ``steps`` (N, T): ||d logit / d x_t||_2 per RNN input step t (equal to ``rows`` for the
  row-RNN; the 8 feature-map rows for the CNN+RNN);
- ``pixels`` (N, R, W): ||G_n[r, w, :]||_2 over the channels.

The cue-band mass of an image is the share of its row connectivity that falls on the cue
rows: sum_{r in band} rows[r] / sum_r rows[r] (cue_height / 32 if every row counted alike).
"""

from __future__ import annotations

import numpy as np

from core.conv import conv3x3_backward, maxpool2x2_backward
from core.errors import ConfigError


def conv_stack_input_backward(dout, cache):
    """The image gradient of the fused conv stack (``core.conv.conv_stack_forward``).

    dout (N, R/4, W/4, C2), the forward's cache -> dx (N, R, W, Cin): back through ReLU,
    max-pool and conv of block 2, then of block 1, chunk by chunk with the forward's pool
    choices. The weight gradients the conv backward also computes are discarded.
    """
    xp, p1, out = cache["xp"], cache["p1"], cache["out"]
    pool1, pool2, w1, w2, chunk = (cache["pool1"], cache["pool2"], cache["w1"], cache["w2"],
                                   cache["chunk"])
    N, Rp, Wp, Cin = xp.shape
    dz2 = dout * (out > 0)  # through block 2's ReLU
    dx = np.empty((N, Rp - 2, Wp - 2, Cin), dtype=dz2.dtype)
    for k, n0 in enumerate(range(0, N, chunk)):
        n1 = min(n0 + chunk, N)
        block1_out = p1[n0:n1, 1:-1, 1:-1, :]
        dy2 = maxpool2x2_backward(dz2[n0:n1], pool2[k])
        dz1, _, _ = conv3x3_backward(dy2, (block1_out, w2))
        dz1 *= block1_out > 0  # through block 1's ReLU
        dy1 = maxpool2x2_backward(dz1, pool1[k])
        dx[n0:n1], _, _ = conv3x3_backward(dy1, (xp[n0:n1, 1:-1, 1:-1, :], w1))
    return dx


def input_gradient_images(model, images, classes):
    """G = d scores[n, classes[n]] / d images[n] for every image -> (G (N, R, W, C), scores
    (N, K), steps (N, T)).

    images: float (N, R, W, C), already normalised (what the model reads); classes int (N,).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3:
        raise ConfigError(f"connectivity needs images (N, rows, columns, 3), got {images.shape}")
    N = images.shape[0]
    K = int(model.params["b_q"].shape[0])
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if classes.shape[0] != N or np.any(classes < 0) or np.any(classes >= K):
        raise ConfigError(f"connectivity: give one class in 0..{K - 1} per image")
    dscores = np.zeros((N, K), dtype=model.dtype)
    dscores[np.arange(N), classes] = 1.0
    back = model.input_gradient(model.input_from_images(images), dscores)
    dseq = back["dseq"]  # (N, T, D)
    steps = np.sqrt(np.einsum("ntd,ntd->nt", dseq, dseq))
    if back["encoder"] is None:  # row-RNN: step t is image row t, its values in image order
        grad = dseq.reshape(images.shape)
    else:
        fmap = back["encoder"]["out"]  # (N, R/4, W/4, C2)
        grad = conv_stack_input_backward(dseq.reshape(fmap.shape), back["encoder"])
    return grad, back["scores"], steps


def connectivity(model, images, classes=None):
    """Connectivity of each image's decision (module docstring) -> dict of arrays.

    images float (N, R, W, C) normalised; classes int (N,) (None = each image's predicted
    class). Returns {'classes' (N,), 'scores' (N, K), 'grad' (N, R, W, C), 'rows' (N, R),
    'steps' (N, T), 'pixels' (N, R, W)}.
    """
    images = np.asarray(images)
    if classes is None:
        classes = np.argmax(model.scores(model.input_from_images(images)), axis=1)
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    grad, scores, steps = input_gradient_images(model, images, classes)
    g2 = grad * grad
    return {"classes": classes, "scores": scores, "grad": grad,
            "rows": np.sqrt(g2.sum(axis=(2, 3))), "steps": steps,
            "pixels": np.sqrt(g2.sum(axis=3))}


def band_mass(rows, first: int, height: int):
    """Share of each image's row connectivity on rows first..first+height-1 (0-based).

    rows (N, R) -> (N,) in [0, 1] (0 for an image whose gradient is zero everywhere)."""
    rows = np.asarray(rows, dtype=np.float64)
    total = rows.sum(axis=1)
    inside = rows[:, first:first + height].sum(axis=1)
    return np.divide(inside, total, out=np.zeros_like(total), where=total > 0)


def cue_band_summary(model, normalizer, imageset, cue_row: int, cue_height: int,
                     max_images: int = 200, batch: int = 100) -> dict:
    """Connectivity mass inside the cue band vs outside, averaged over test images.

    Uses the first ``max_images`` images of ``imageset`` (uint8), each for its true class.
    -> {'inside': mean share on the cue rows, 'outside': 1 - inside, 'uniform': the share
    if every row counted alike (cue_height / R), 'images': n, 'rows': mean row
    connectivity (R,) normalised per image to sum 1}.
    """
    n = min(int(max_images), len(imageset.labels))
    if n < 1:
        raise ConfigError("connectivity summary: no images")
    shares, profiles = [], []
    for i in range(0, n, batch):
        j = min(i + batch, n)
        x = normalizer.apply(imageset.images[i:j], dtype=model.dtype)
        rows = connectivity(model, x, imageset.labels[i:j])["rows"].astype(np.float64)
        shares.append(band_mass(rows, cue_row, cue_height))
        total = rows.sum(axis=1, keepdims=True)
        profiles.append(np.divide(rows, total, out=np.zeros_like(rows), where=total > 0))
    inside = float(np.concatenate(shares).mean())
    R = profiles[0].shape[1]
    return {"inside": inside, "outside": 1.0 - inside, "uniform": cue_height / R,
            "images": n, "rows": np.concatenate(profiles).mean(axis=0).tolist()}
