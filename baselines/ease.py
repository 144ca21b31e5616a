"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019), closed form."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from baselines import Baseline


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
    # spotri fills the lower triangle only: mirror it
    upper = np.triu_indices_from(p, k=1)
    p[upper] = p.T[upper]
    diag = np.diag(p).copy()
    p /= -diag[None, :]
    p[np.diag_indices_from(p)] = 0.0
    return p


class EASERecommender(Baseline):
    """EASE closed form (Steck 2019): item-item weights from one regularised inverse."""

    description = "EASE closed-form item-item autoencoder (Steck 2019); float32, batched scoring"

    def __init__(self, regularization: float = 500.0, exclude_seen: bool = True) -> None:
        if regularization <= 0:
            raise ValueError(f"regularization must be positive, got {regularization}")
        self.regularization = regularization
        self.exclude_seen = exclude_seen

    def _fit(self, data) -> None:
        with threadpool_limits(data.n_threads, "blas"):
            self.weights = ease_weights(data.matrix, self.regularization)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return self.data.matrix[rows] @ self.weights
