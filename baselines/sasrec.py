"""SASRec: self-attentive sequential recommendation (Kang and McAuley, ICDM 2018).

Each user's train history, ordered by time, goes through item + learned position embeddings and
causal transformer blocks; the hidden state at every position is trained to predict an item that
follows it: by default (``target=future``) one drawn uniformly from all later items of the window,
since the leaderboard asks for everything a user takes after the cutoff, not only the next item
(``target=next``: the paper's next item). The softmax runs over the whole catalogue
(``negatives=0``, the default) or against ``negatives`` uniformly sampled items; item embeddings
are tied with the output layer. A user's
recommendations come from the hidden state after their last ``max_len`` items. Histories longer
than ``max_len`` are cut into consecutive windows so that no interaction is wasted in training.
Cold users get the most popular items.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from baselines import Baseline
from baselines._torch import ordered_interactions, padded_history, positions, setup
from harness.api import TrainData


class _Net(nn.Module):
    def __init__(self, n_items: int, dim: int, max_len: int, blocks: int, heads: int,
                 dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.pos = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=dim * 2, dropout=dropout,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.item.weight, std=dim ** -0.5)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """(B x L) right-aligned item sequences -> (B x L x dim) hidden states."""
        length = seq.shape[1]
        real = seq > 0
        x = self.item(seq) * self.item.embedding_dim ** 0.5 + self.pos.weight[-length:]
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

    description = "SASRec: causal transformer over each user's time-ordered history (torch)"

    def __init__(self, epochs: int = 10, dim: int = 64, lr: float = 0.002, batch_size: int = 128,
                 max_len: int = 50, blocks: int = 2, heads: int = 2, dropout: float = 0.2,
                 negatives: int = 0, target: str = "future", weight_decay: float = 0.0,
                 exclude_seen: bool = True, device: str = "auto") -> None:
        for name, value in (("epochs", epochs), ("dim", dim), ("batch_size", batch_size),
                            ("max_len", max_len), ("blocks", blocks), ("heads", heads)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if target not in ("next", "future"):
            raise ValueError(f"target must be 'next' or 'future', got {target!r}")
        self.epochs, self.dim, self.lr, self.batch_size = epochs, dim, lr, batch_size
        self.max_len, self.blocks, self.heads, self.dropout = max_len, blocks, heads, dropout
        self.negatives, self.target = negatives, target
        self.weight_decay, self.exclude_seen, self.device = weight_decay, exclude_seen, device

    def _fit(self, data: TrainData) -> None:
        device = setup(data, self.device)
        self._device = device
        rows, items = ordered_interactions(data)
        self._history = padded_history(rows, items, data.n_users, self.max_len)
        windows = torch.as_tensor(training_windows(rows, items, data.n_users, self.max_len))
        net = _Net(data.n_items, self.dim, self.max_len, self.blocks, self.heads, self.dropout)
        net.to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(data.seed)
        net.train()
        for _ in range(self.epochs if len(windows) else 0):
            for idx in torch.randperm(len(windows), generator=gen).split(self.batch_size):
                batch = windows[idx].to(device)
                # trim the all-padding left columns this batch shares
                first = int((batch > 0).float().argmax(1).min())
                batch = batch[:, min(first, batch.shape[1] - 2):]
                seq, target = batch[:, :-1], self._targets(batch, gen)
                hidden = net(seq)
                valid = (seq > 0) & (target > 0)
                loss = self._loss(net, hidden[valid], target[valid] - 1, data.n_items, gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        self._net = net

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

    def _loss(self, net: _Net, hidden: torch.Tensor, target: torch.Tensor, n_items: int,
              gen: torch.Generator) -> torch.Tensor:
        """Full softmax over the catalogue, or sampled softmax against ``negatives`` items drawn
        uniformly per batch and shared by its positions (a sampled item equal to the target is
        masked out). Uniform sampling needs no logQ correction: the constant cancels."""
        if not self.negatives or self.negatives >= n_items:
            return F.cross_entropy(net.logits(hidden), target)
        neg = torch.randint(0, n_items, (self.negatives,), generator=gen).to(hidden.device)
        weight = net.item.weight[1:]
        pos = (hidden * weight[target]).sum(-1, keepdim=True)
        other = hidden @ weight[neg].T
        other = other.masked_fill(neg.unsqueeze(0) == target.unsqueeze(1), float("-inf"))
        logits = torch.cat([pos, other], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long, device=hidden.device))

    def _batch_size(self) -> int:
        return max(1, min(super()._batch_size(), 1024))

    @torch.no_grad()
    def _score(self, rows: np.ndarray) -> np.ndarray:
        seq = torch.as_tensor(self._history[rows], device=self._device)
        first = int((seq > 0).float().argmax(1).min()) if len(seq) else 0
        hidden = self._net(seq[:, first:])[:, -1]
        return self._net.logits(hidden).float().cpu().numpy()
