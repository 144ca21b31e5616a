"""Matrix factorisation baselines from `implicit`: ALS (Hu, Koren, Volinsky 2008) and BPR."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from threadpoolctl import threadpool_limits

from baselines import Baseline
from harness.api import Bounds


class _ImplicitMF(Baseline):
    """Fits an implicit model on the train matrix; warm users scored by implicit's own top-k."""

    def _make(self, data):  # pragma: no cover - overridden
        raise NotImplementedError

    def _fit(self, data) -> None:
        # implicit parallelises itself and warns when BLAS has a pool of its own. threadpoolctl
        # limits only the libraries loaded when it is called, so implicit (and the BLAS it links)
        # is imported before the limit, not inside it (that left the warning in every ALS run).
        import implicit.cpu.als  # noqa: F401
        import implicit.cpu.bpr  # noqa: F401

        with threadpool_limits(1, "blas"):
            self.model = self._make(data)
            self.model.fit(data.matrix, show_progress=False)

    def _batch_size(self) -> int:
        return 1 << 15  # output is batch x k only; implicit tiles the scoring internally

    def _recommend_rows(self, users, rows, k):
        k = min(k, self.data.n_items)
        with threadpool_limits(1, "blas"):
            ids, scores = self.model.recommend(
                rows, self.data.matrix[rows], N=k, filter_already_liked_items=self.exclude_seen
            )
        ids = np.asarray(ids, dtype=np.int64).reshape(len(rows), -1)
        scores = np.asarray(scores, dtype=np.float64).reshape(len(rows), -1)
        valid = (ids >= 0) & np.isfinite(scores) & (scores > -np.finfo(np.float32).max)
        return np.where(valid, ids, -1), np.where(valid, scores, -np.inf)


class ALSRecommender(_ImplicitMF):
    """Implicit ALS (Hu, Koren, Volinsky 2008): confidence 1 + alpha * weight, via implicit."""

    description = "Implicit-feedback ALS (Hu, Koren, Volinsky 2008) via implicit"

    def __init__(
        self,
        factors: Annotated[int, Bounds(ge=1)] = 64,
        regularization: Annotated[float, Bounds(ge=0)] = 0.01,
        alpha: Annotated[float, Bounds(ge=0)] = 1.0,
        iterations: Annotated[int, Bounds(ge=1)] = 15,
        use_cg: bool = True,
        exclude_seen: bool = True,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.use_cg = use_cg
        self.exclude_seen = exclude_seen

    def _make(self, data):
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            use_cg=self.use_cg,
            num_threads=data.n_threads,
            random_state=data.seed,
        )


class BPRRecommender(_ImplicitMF):
    """Bayesian personalised ranking (Rendle et al. 2009) via implicit."""

    description = "Bayesian personalised ranking (Rendle et al. 2009) via implicit"

    def __init__(
        self,
        factors: Annotated[int, Bounds(ge=1)] = 64,
        learning_rate: Annotated[float, Bounds(gt=0)] = 0.05,
        regularization: Annotated[float, Bounds(ge=0)] = 0.01,
        iterations: Annotated[int, Bounds(ge=1)] = 50,
        exclude_seen: bool = True,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.exclude_seen = exclude_seen

    def _make(self, data):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=data.n_threads,
            random_state=data.seed,
        )
