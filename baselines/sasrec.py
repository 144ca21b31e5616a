"""SASRec: self-attentive sequential recommendation (Kang and McAuley, ICDM 2018).

As in the paper and its reference implementations: each user's train history, ordered by time,
goes through item embeddings (scaled by sqrt(dim)) plus learned position embeddings and ``blocks``
causal transformer blocks; the hidden state at *every* position is trained to predict the next
item. Histories longer than ``max_len`` are cut into consecutive windows so that no interaction is
wasted. The output layer is tied with the item embeddings.

Loss: ``loss=softmax`` (default), cross-entropy over the whole catalogue; ``loss=gbce``, the
generalised binary cross-entropy of gSASRec (Petrov and Macdonald, RecSys 2023) against
``negatives`` uniformly sampled items per position, calibrated by ``gbce_t`` (t = 0 is the
original SASRec's binary cross-entropy, t = 1 fully calibrated); ``loss=sampled``, softmax against
``negatives`` sampled items shared by the batch. ``target=future`` trains each position on an item
drawn uniformly from all later ones instead of the next one (for splits whose truth is a set of
later items rather than the next one; choose it on validation).

Early stopping (``patience`` epochs without improvement, best epoch kept): before training, the
last ``valid_ratio`` of the history of up to ``valid_users`` seeded users is held out of train as an
inner temporal validation, scored by NDCG@10 after every epoch. The split's truth is never
involved. Recommendations come from the hidden state after the user's last ``max_len`` items of
the *whole* train history. Cold users get the most popular items.
"""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from baselines import Baseline
from baselines._torch import (
    inner_validation,
    ordered_interactions,
    padded_history,
    positions,
    setup,
    valid_ndcg,
)
from harness.api import Bounds, TrainData, report_progress

#: softmax work of one epoch, (target positions) x (items): above it an epoch is a seeded sample of
#: the windows (ml-latest-small's whole train is 3.8e8, so every window every epoch there)
EPOCH_WORK = 5e8


class _Net(nn.Module):
    def __init__(
        self, n_items: int, dim: int, max_len: int, blocks: int, heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.heads = heads
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.pos = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=dim,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
            activation="gelu",
        )
        self.encoder = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.item.weight, std=dim**-0.5)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """(B x L) right-aligned item sequences -> (B x L x dim) hidden states."""
        length = seq.shape[1]
        real = seq > 0
        x = self.item(seq) * self.item.embedding_dim**0.5 + self.pos.weight[-length:]
        x = self.drop(x) * real.unsqueeze(-1)
        eye = torch.eye(length, dtype=torch.bool, device=seq.device)
        causal = torch.ones(length, length, dtype=torch.bool, device=seq.device).tril()
        # position i sees real items j <= i; padding sees only itself (a row never fully masked)
        allowed = causal & (real.unsqueeze(1) | eye)
        mask = ~allowed.repeat_interleave(self.heads, dim=0)
        return self.norm(self.encoder(x, mask=mask))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item.weight[1:].T


def training_windows(rows: np.ndarray, items: np.ndarray, n_rows: int, max_len: int) -> np.ndarray:
    """Cut each row's time-ordered items into windows of ``max_len + 1`` items (right-aligned,
    0-padded), consecutive windows overlapping by one item, so every item is a target once."""
    pos, counts = positions(rows, n_rows)
    from_end = counts[rows] - 1 - pos
    n_windows = np.where(counts > 0, (counts - 1) // max_len + 1, 0)
    base = np.concatenate([[0], np.cumsum(n_windows)[:-1]])
    out = np.zeros((int(n_windows.sum()), max_len + 1), dtype=np.int64)
    chunk = from_end // max_len
    out[base[rows] + chunk, max_len - (from_end - chunk * max_len)] = items
    seam = (from_end % max_len == 0) & (from_end > 0)
    out[base[rows[seam]] + chunk[seam] - 1, 0] = items[seam]
    return out[(out > 0).sum(1) >= 2]


class SASRecRecommender(Baseline):
    """Self-attentive sequential recommender (causal transformer over the user's history)."""

    description = (
        "SASRec: causal transformer, next-item loss at every position, early stopping (torch)"
    )

    def __init__(
        self,
        epochs: Annotated[int, Bounds(ge=1)] = 100,
        patience: Annotated[int, Bounds(ge=1)] = 5,
        dim: Annotated[int, Bounds(ge=1)] = 64,
        lr: Annotated[float, Bounds(gt=0)] = 0.003,
        batch_size: Annotated[int, Bounds(ge=1)] = 64,
        max_len: Annotated[int, Bounds(ge=1)] = 50,
        blocks: Annotated[int, Bounds(ge=1)] = 2,
        heads: Annotated[int, Bounds(ge=1)] = 1,
        dropout: Annotated[float, Bounds(ge=0, lt=1)] = 0.5,
        loss: str = "softmax",
        negatives: Annotated[int, Bounds(ge=1)] = 256,
        gbce_t: Annotated[float, Bounds(ge=0, le=1)] = 0.75,
        target: str = "next",
        weight_decay: Annotated[float, Bounds(ge=0)] = 0.0,
        valid_users: Annotated[int, Bounds(ge=0)] = 512,
        valid_ratio: Annotated[float, Bounds(gt=0, lt=1)] = 0.2,
        refit: bool = False,
        epoch_windows: Annotated[int, Bounds(ge=0)] = 0,
        # bound on the whole training's softmax work: caps the number of epochs on large data
        work_budget: Annotated[float, Bounds(ge=0)] = 1.5e10,
        threads: Annotated[int, Bounds(ge=0)] = 1,
        exclude_seen: bool = True,
        device: str = "auto",
    ) -> None:
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0: every core the run allows), got {threads}")
        self.threads = threads
        if epoch_windows < 0 or work_budget < 0:
            raise ValueError(
                "epoch_windows and work_budget must be >= 0 (0: automatic / no budget), "
                f"got {epoch_windows} and {work_budget}"
            )
        for name, value in (
            ("epochs", epochs),
            ("dim", dim),
            ("batch_size", batch_size),
            ("max_len", max_len),
            ("blocks", blocks),
            ("heads", heads),
            ("negatives", negatives),
            ("patience", patience),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if loss not in ("softmax", "gbce", "sampled"):
            raise ValueError(f"loss must be softmax, gbce or sampled, got {loss!r}")
        if target not in ("next", "future"):
            raise ValueError(f"target must be 'next' or 'future', got {target!r}")
        if not 0 <= gbce_t <= 1:
            raise ValueError(f"gbce_t must be in [0, 1], got {gbce_t}")
        if valid_users < 0 or not 0 < valid_ratio < 1:
            raise ValueError(
                "valid_users must be >= 0 (0: no early stopping) and valid_ratio in (0, 1)"
            )
        if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
        self.epochs, self.patience, self.dim, self.lr = epochs, patience, dim, lr
        self.batch_size, self.max_len, self.blocks, self.heads = batch_size, max_len, blocks, heads
        self.dropout, self.loss, self.negatives, self.gbce_t = dropout, loss, negatives, gbce_t
        self.target, self.weight_decay = target, weight_decay
        self.valid_users, self.valid_ratio, self.refit = valid_users, valid_ratio, refit
        self.epoch_windows, self.work_budget = epoch_windows, work_budget
        self.exclude_seen, self.device = exclude_seen, device

    def _fit(self, data: TrainData) -> None:
        self._device = setup(data, self.device, self.threads)
        rows, items = ordered_interactions(data)
        self._history = padded_history(rows, items, data.n_users, self.max_len)
        fit_rows, fit_items, valid = inner_validation(
            rows, items, data.n_users, self.valid_users, self.valid_ratio, data.seed
        )
        popular = None
        if valid is not None:  # the bar to clear: item popularity on the same validation
            valid = (
                padded_history(fit_rows, fit_items, data.n_users, self.max_len)[valid[0]],
                valid[1],
                valid[2],
            )
            counts = np.bincount(fit_items - 1, minlength=data.n_items).astype(np.float32)
            popular = valid_ndcg(
                lambda h: np.broadcast_to(counts, (len(h), len(counts))).copy(), *valid
            )
        self.valid_popular_ = popular
        self.history_: list[dict] = []
        self.best_epoch_ = self._train(data, fit_rows, fit_items, self.epochs, valid, popular)
        if self.refit and valid is not None and len(fit_rows) < len(rows):
            # the held-out latest items are the most telling ones: train again on everything for
            # the number of epochs validation chose
            torch.manual_seed(data.seed)
            self._train(data, rows, items, self.best_epoch_, None, None)

    def _train(
        self,
        data: TrainData,
        rows: np.ndarray,
        items: np.ndarray,
        epochs: int,
        valid,
        popular: float | None,
    ) -> int:
        """Train a fresh network on the windows of (rows, items) for up to ``epochs``; with
        ``valid``, stop ``patience`` epochs after the best validation NDCG@10 and keep that
        epoch's weights. Returns the epoch kept."""
        device = self._device
        windows = torch.as_tensor(training_windows(rows, items, data.n_users, self.max_len))
        per_epoch, epochs = self._epoch_plan(windows, data.n_items, epochs)
        net = _Net(data.n_items, self.dim, self.max_len, self.blocks, self.heads, self.dropout)
        net.to(device)
        self._net = net
        opt = torch.optim.Adam(
            net.parameters(), lr=self.lr, betas=(0.9, 0.98), weight_decay=self.weight_decay
        )
        gen = torch.Generator().manual_seed(data.seed)
        best, best_state, best_epoch, started = -1.0, None, 0, time.perf_counter()
        phase = "fit" if valid is not None or not self.history_ else "refit"
        epoch = 0
        for epoch in range(1, (epochs if len(windows) else 0) + 1):
            net.train()
            total, steps = 0.0, 0
            order = torch.randperm(len(windows), generator=gen)[:per_epoch]
            for idx in order.split(self.batch_size):
                batch = windows[idx].to(device)
                # trim the all-padding left columns this batch shares
                first = int((batch > 0).float().argmax(1).min())
                batch = batch[:, min(first, batch.shape[1] - 2) :]
                seq, target = batch[:, :-1], self._targets(batch, gen)
                hidden = net(seq)
                valid_pos = (seq > 0) & (target > 0)
                loss = self._loss(net, hidden[valid_pos], target[valid_pos] - 1, data.n_items, gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, steps = total + float(loss.detach()), steps + 1
            score = None
            if valid is not None:
                net.eval()
                score = valid_ndcg(self._scores, *valid)
                if score > best:
                    best, best_epoch = score, epoch
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            elapsed = time.perf_counter() - started
            self.history_.append(
                {"epoch": epoch, "loss": total / max(steps, 1), "valid_ndcg": score, "phase": phase}
            )
            report_progress(
                phase,
                epoch=epoch,
                epochs=epochs,
                loss=total / max(steps, 1),
                valid_ndcg=score,
                valid_popular=popular,
                best_epoch=best_epoch or None,
                eta_seconds=elapsed / epoch * (epochs - epoch),
            )
            if valid is not None and epoch - best_epoch >= self.patience:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        return best_epoch or epoch

    def _epoch_plan(self, windows: torch.Tensor, n_items: int, epochs: int) -> tuple[int, int]:
        """(windows per epoch, epochs at most). ``epoch_windows`` 0: every window while an
        epoch's full-softmax work (target positions x items) stays under ``EPOCH_WORK``, else a
        seeded sample of that much; ``work_budget`` caps the epochs so that the whole training
        does at most that much work (on large data; 0: no cap)."""
        n = len(windows)
        targets = max(int((windows > 0).sum()) - n, 1)
        per_window = targets / max(n, 1) * n_items
        per_epoch = self.epoch_windows or max(self.batch_size, int(EPOCH_WORK / per_window))
        per_epoch = min(per_epoch, n)
        if self.work_budget:
            epochs = min(epochs, max(1, int(self.work_budget / (per_epoch * per_window))))
        return per_epoch, epochs

    def _targets(self, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Per position of ``batch[:, :-1]``: the next item, or (``target=future``) an item drawn
        uniformly from all later ones in the window. Windows are right-aligned, so every column
        after a real item is real too."""
        if self.target == "next":
            return batch[:, 1:]
        length = batch.shape[1] - 1
        col = torch.arange(length, device=batch.device)
        draw = torch.rand(batch.shape[0], length, generator=gen).to(batch.device)
        later = col + 1 + (draw * (length - col)).long().clamp(max=length - 1 - col)
        return batch.gather(1, later)

    def _loss(
        self,
        net: _Net,
        hidden: torch.Tensor,
        target: torch.Tensor,
        n_items: int,
        gen: torch.Generator,
    ) -> torch.Tensor:
        """Full softmax; gSASRec's gBCE against per-position uniform negatives; or a softmax
        against negatives shared by the batch (a negative equal to the target is masked)."""
        if self.loss == "softmax" or self.negatives >= n_items:
            return F.cross_entropy(net.logits(hidden), target)
        weight = net.item.weight[1:]
        pos = (hidden * weight[target]).sum(-1)
        if self.loss == "gbce":
            neg = torch.randint(0, n_items, (len(target), self.negatives), generator=gen).to(
                hidden.device
            )
            other = torch.einsum("nd,nkd->nk", hidden, weight[neg])
            other = other.masked_fill(neg == target.unsqueeze(1), -1e9)
            alpha = self.negatives / max(n_items - 1, 1)
            beta = alpha * (self.gbce_t * (1 - 1 / alpha) + 1 / alpha)
            return -(beta * F.logsigmoid(pos) + F.logsigmoid(-other).sum(-1)).mean()
        neg = torch.randint(0, n_items, (self.negatives,), generator=gen).to(hidden.device)
        other = hidden @ weight[neg].T
        other = other.masked_fill(neg.unsqueeze(0) == target.unsqueeze(1), float("-inf"))
        logits = torch.cat([pos.unsqueeze(1), other], dim=1)
        return F.cross_entropy(
            logits, torch.zeros(len(target), dtype=torch.long, device=hidden.device)
        )

    def _batch_size(self) -> int:
        return max(1, min(super()._batch_size(), 1024))

    @torch.no_grad()
    def _scores(self, history: np.ndarray) -> np.ndarray:
        """Scores of every item after each padded history (rows of ``history``)."""
        seq = torch.as_tensor(history, device=self._device)
        first = int((seq > 0).float().argmax(1).min()) if len(seq) else 0
        first = min(first, seq.shape[1] - 1)
        hidden = self._net(seq[:, first:])[:, -1]
        return self._net.logits(hidden).float().cpu().numpy()

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return self._scores(self._history[rows])


__all__ = ["SASRecRecommender", "training_windows"]
