"""DSSM: a two-tower retrieval model (Huang et al. 2013; the in-batch softmax of Yi et al. 2019).

User tower: the mean embedding of the user's last ``max_len`` train items, plus learned embeddings
of every categorical field in ``data.users`` (numeric fields bucketed by quantile). Item tower: an
item id embedding plus embeddings of ``data.items`` fields (the ``categories`` list pooled, numeric
fields such as a year bucketed, categorical fields embedded). Each tower: LayerNorm, dropout, a
residual two-layer MLP, L2 normalisation; a user-item score is the cosine of the two.

Training pairs are the train interactions. The history fed to the user tower leaves out the
target item (otherwise the tower learns to find the item in its own input). ``loss=softmax``:
in-batch sampled softmax at temperature ``temperature`` with the logQ correction (subtract the log
of each item's share of the pairs, so popular items are not over-penalised as negatives);
``loss=triplet``: margin loss against another item of the batch.

Cold users are served from their features when ``data.users`` describes them (training drops the
whole history with probability ``history_dropout`` so the tower learns to work without one), and
from popularity otherwise.
"""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
import polars as pl
import torch
from torch import nn
from torch.nn import functional as F

from baselines import Baseline
from baselines._torch import (
    FeatureCodes,
    FieldEmbedding,
    gather,
    ordered_interactions,
    padded_history,
    positions,
    setup,
    to_tensors,
)
from harness.api import Bounds, Columns, TrainData, report_progress, top_k


class _Tower(nn.Module):
    """LayerNorm -> dropout -> residual MLP -> L2 normalisation."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.norm(x))
        return F.normalize(x + self.mlp(x), dim=-1)


class _Net(nn.Module):
    def __init__(
        self, n_items: int, dim: int, item_levels: list[int], user_levels: list[int], dropout: float
    ) -> None:
        super().__init__()
        self.item_id = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.history = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.item_fields = FieldEmbedding(item_levels, dim) if item_levels else None
        self.user_fields = FieldEmbedding(user_levels, dim) if user_levels else None
        self.item_tower = _Tower(dim, dropout)
        self.user_tower = _Tower(dim, dropout)

    def items(self, index: torch.Tensor, codes: list[torch.Tensor]) -> torch.Tensor:
        """Item vectors for 0-based item columns; ``codes``: their feature codes."""
        x = self.item_id(index + 1)
        if self.item_fields is not None:
            x = x + self.item_fields(codes)
        return self.item_tower(x)

    def users(self, history: torch.Tensor, codes: list[torch.Tensor]) -> torch.Tensor:
        """User vectors from padded histories (1-based items, 0 = padding) and feature codes."""
        present = (history > 0).float().unsqueeze(-1)
        x = (self.history(history) * present).sum(1) / present.sum(1).clamp(min=1)
        if self.user_fields is not None:
            x = x + self.user_fields(codes)
        return self.user_tower(x)


class DSSMRecommender(Baseline):
    """Two-tower DSSM over user history and features and item id and features."""

    description = "DSSM two-tower model: user history + features vs item id + features (torch)"

    def __init__(
        self,
        epochs: Annotated[int, Bounds(ge=1)] = 10,
        dim: Annotated[int, Bounds(ge=1)] = 64,
        lr: Annotated[float, Bounds(gt=0)] = 0.003,
        batch_size: Annotated[int, Bounds(ge=1)] = 1024,
        max_len: Annotated[int, Bounds(ge=1)] = 100,
        dropout: Annotated[float, Bounds(ge=0, lt=1)] = 0.1,
        temperature: Annotated[float, Bounds(gt=0)] = 0.1,
        loss: str = "softmax",
        margin: Annotated[float, Bounds(ge=0)] = 0.2,
        logq: bool = True,
        history_dropout: Annotated[float, Bounds(ge=0, lt=1)] = 0.1,
        history: str = "others",
        weight_decay: Annotated[float, Bounds(ge=0)] = 0.0,
        # training pairs drawn (seeded, without replacement) per epoch: every pair of a dataset
        # up to this size (ml-latest-small: 39,100), a sample above it (synthetic-kion: 5.0M), so
        # that 10 epochs stay within minutes on one core (about 150 ms per step of 1,024 pairs)
        epoch_pairs: Annotated[int, Bounds(ge=0)] = 300_000,
        threads: Annotated[int, Bounds(ge=0)] = 1,
        exclude_seen: bool = True,
        device: str = "auto",
    ) -> None:
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0: every core the run allows), got {threads}")
        self.threads = threads
        if epoch_pairs < 0:
            raise ValueError(f"epoch_pairs must be >= 0 (0: every pair), got {epoch_pairs}")
        for name, value in (
            ("epochs", epochs),
            ("dim", dim),
            ("batch_size", batch_size),
            ("max_len", max_len),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if loss not in ("softmax", "triplet"):
            raise ValueError(f"loss must be softmax or triplet, got {loss!r}")
        if history not in ("others", "before"):
            raise ValueError(f"history must be 'others' or 'before', got {history!r}")
        if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.epochs, self.dim, self.lr, self.batch_size = epochs, dim, lr, batch_size
        self.max_len, self.dropout, self.temperature = max_len, dropout, temperature
        self.loss, self.margin, self.logq = loss, margin, logq
        self.history_dropout, self.history, self.weight_decay = (
            history_dropout,
            history,
            weight_decay,
        )
        self.exclude_seen, self.device, self.epoch_pairs = exclude_seen, device, epoch_pairs

    def _fit(self, data: TrainData) -> None:
        device = self._device = setup(data, self.device, self.threads)
        rows, items = ordered_interactions(data)
        history = torch.as_tensor(padded_history(rows, items, data.n_users, self.max_len))
        self._users = FeatureCodes(data.users, Columns.USER)
        item_codes = FeatureCodes(data.items, Columns.ITEM)
        self._item_codes = to_tensors(item_codes.encode(data.item_ids), device)
        user_codes = to_tensors(self._users.encode(data.user_ids), device)
        net = _Net(data.n_items, self.dim, item_codes.levels, self._users.levels, self.dropout)
        net.to(device)
        self._history = history.to(device)
        pairs_u = torch.as_tensor(rows, device=device)
        pairs_i = torch.as_tensor(items - 1, device=device)
        history_of = self._pair_history(rows, items, data.n_users, device)
        share = np.bincount(items - 1, minlength=data.n_items) / max(len(items), 1)
        log_q = torch.as_tensor(
            np.log(np.maximum(share, 1e-12)), dtype=torch.float32, device=device
        )
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(data.seed)
        drop_history = self.history_dropout if self._users.fields else 0.0
        net.train()
        started = time.perf_counter()
        for epoch in range(1, (self.epochs if len(rows) else 0) + 1):
            total, steps = 0.0, 0
            order = torch.randperm(len(rows), generator=gen)[: self.epoch_pairs or len(rows)]
            for idx in order.split(self.batch_size):
                idx = idx.to(device)
                u, i = pairs_u[idx], pairs_i[idx]
                hist = history_of(idx)
                if drop_history:
                    keep = torch.rand(len(u), generator=gen).to(device) >= drop_history
                    hist = hist * keep.unsqueeze(1)
                uvec = net.users(hist, gather(user_codes, u))
                ivec = net.items(i, gather(self._item_codes, i))
                loss = self._loss(uvec, ivec, i, log_q)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, steps = total + float(loss.detach()), steps + 1
            elapsed = time.perf_counter() - started
            report_progress(
                "fit",
                epoch=epoch,
                epochs=self.epochs,
                loss=total / max(steps, 1),
                eta_seconds=elapsed / epoch * (self.epochs - epoch),
            )
        net.eval()
        self._net = net
        with torch.no_grad():
            every = torch.arange(data.n_items, device=device)
            self._item_vecs = net.items(every, self._item_codes)
            self._user_codes = user_codes

    def _pair_history(self, rows: np.ndarray, items: np.ndarray, n_users: int, device):
        """Pair indices -> the user-tower input of those training pairs. ``others``: the user's
        last ``max_len`` items without the target; ``before``: the ``max_len`` items the user took
        before the target (causal, like serving, which looks at everything before the cutoff)."""
        flat = torch.as_tensor(items, device=device)
        if self.history == "others":
            pairs_u = torch.as_tensor(rows, device=device)

            def others(idx: torch.Tensor) -> torch.Tensor:
                hist = self._history[pairs_u[idx]]
                return hist.masked_fill(hist == flat[idx].unsqueeze(1), 0)

            return others
        pos, _ = positions(rows, n_users)
        first = torch.as_tensor(np.arange(len(rows)) - pos, device=device)  # the user's first pair
        offsets = torch.arange(-self.max_len, 0, device=device)

        def before(idx: torch.Tensor) -> torch.Tensor:
            cols = idx.unsqueeze(1) + offsets
            return torch.where(cols >= first[idx].unsqueeze(1), flat[cols.clamp(min=0)], 0)

        return before

    def _loss(
        self, uvec: torch.Tensor, ivec: torch.Tensor, items: torch.Tensor, log_q: torch.Tensor
    ) -> torch.Tensor:
        sims = uvec @ ivec.T
        same = items.unsqueeze(0) == items.unsqueeze(1)
        eye = torch.eye(len(items), dtype=torch.bool, device=items.device)
        if self.loss == "triplet":
            # the hardest other item of the batch (not the positive's own item) is the negative
            hardest = sims.masked_fill(same, float("-inf")).max(1).values
            ok = torch.isfinite(hardest)
            gap = self.margin - sims.diagonal() + hardest
            return F.relu(gap[ok]).mean() if ok.any() else sims.sum() * 0
        logits = sims / self.temperature
        if self.logq:
            logits = logits - log_q[items].unsqueeze(0)
        logits = logits.masked_fill(same & ~eye, float("-inf"))
        return F.cross_entropy(logits, torch.arange(len(items), device=items.device))

    @torch.no_grad()
    def _score(self, rows: np.ndarray) -> np.ndarray:
        index = torch.as_tensor(rows, device=self._device)
        uvec = self._net.users(self._history[index], gather(self._user_codes, index))
        return (uvec @ self._item_vecs.T).float().cpu().numpy()

    @torch.no_grad()
    def _recommend_cold(self, users: pl.Series, k: int):
        """Cold users with a row in ``data.users``: the user tower on features alone."""
        idx, scores = super()._recommend_cold(users, k)
        if not self._users.fields:
            return idx, scores
        codes = self._users.encode(users)
        known = np.flatnonzero(np.any(np.concatenate(codes, axis=1) > 0, axis=1))
        if known.size == 0:
            return idx, scores
        sel = to_tensors([c[known] for c in codes], self._device)
        empty = torch.zeros((known.size, 1), dtype=torch.long, device=self._device)
        uvec = self._net.users(empty, sel)
        top_idx, top_scores = top_k((uvec @ self._item_vecs.T).float().cpu().numpy(), k)
        idx, scores = idx.copy(), scores.copy()
        width = top_idx.shape[1]
        idx[known, :width], scores[known, :width] = top_idx, top_scores
        idx[known, width:], scores[known, width:] = -1, -np.inf
        return idx, scores
