"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019), closed form."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from baselines import Baseline
from harness.api import Bounds


def ease_weights(matrix, regularization: float) -> np.ndarray:
    """B = I - P / diag(P) with P = (X^T X + lambda I)^-1, diagonal forced to 0 (float32).

    The inverse goes through a Cholesky factorisation (the Gram matrix is symmetric positive
    definite for lambda > 0), in place, so peak memory is about two items x items float32 arrays.
    """
    gram = (matrix.T @ matrix).astype(np.float32).toarray()
    gram[np.diag_indices_from(gram)] += regularization
    factor, _ = scipy.linalg.lapack.spotrf(gram, lower=True, overwrite_a=True, clean=False)
    del gram
    p, info = scipy.linalg.lapack.spotri(factor, lower=True, overwrite_c=True)
    if info != 0:
        raise ValueError(f"EASE: Gram matrix is not positive definite (LAPACK info {info})")
    # LAPACK returns Fortran order; P is symmetric, so its transpose is the same matrix in C order
    # (scipy's sparse @ dense would copy a Fortran array on every batch). spotri filled the lower
    # triangle, which is the upper one of the transpose: mirror it.
    p = p.T
    n = p.shape[0]
    for start in range(0, n, 1024):  # blockwise: no n^2 index arrays
        stop = min(start + 1024, n)
        block = p[start:stop, start:stop]
        p[start:stop, start:stop] = np.triu(block) + np.triu(block, 1).T
        p[stop:, start:stop] = p[start:stop, stop:].T
    diag = np.diag(p).copy()
    p /= -diag[None, :]
    p[np.diag_indices_from(p)] = 0.0
    return p


class EASERecommender(Baseline):
    """EASE closed form (Steck 2019): item-item weights from one regularised inverse."""

    description = "EASE closed-form item-item autoencoder (Steck 2019); float32, batched scoring"

    def __init__(
        self, regularization: Annotated[float, Bounds(gt=0)] = 500.0, exclude_seen: bool = True
    ) -> None:
        if regularization <= 0:
            raise ValueError(f"regularization must be positive, got {regularization}")
        self.regularization = regularization
        self.exclude_seen = exclude_seen

    def _fit(self, data) -> None:
        # one BLAS thread, whatever data.n_threads allows: OpenBLAS's parallel Cholesky rounds
        # differently with each thread count (weights up to 8e-8 apart on ml-latest-small), which
        # reorders near-tied items, so the lists (and the two-stage submission built on them)
        # depended on the number of cores. Measured 39 s instead of 18 s at 15,706 items (load 4-6).
        with threadpool_limits(1, "blas"):
            self.weights = ease_weights(data.matrix, self.regularization)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return self.data.matrix[rows] @ self.weights
