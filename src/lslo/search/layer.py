"""A linear map with both a source- and a target-indexed LSLo (optionally a shared LoRA), mixed by softmax weights."""

from __future__ import annotations

import torch
from torch import nn

from lslo.search.config import SOURCE, TARGET
from lslo.tuner.layer import LSLoLinear, Router, WrapsLinear
from lslo.tuner.model import SHARED


class DualLSLoLinear(WrapsLinear):
    """A frozen linear map with a source-indexed and a target-indexed LSLo (and optionally a shared
    LoRA), whose updates are mixed by ``softmax(logits / temperature)``.

    The adapters are ordinary ``LSLoLinear`` modules sharing this module's frozen ``base`` (so
    pruning, saving and reporting find them); only their ``_delta`` is used, and ``base(x)`` is
    added once. ``logits`` (one entry per choice) may be shared with the other positions of a layer.
    """

    def __init__(
        self,
        base: nn.Linear,
        ranks: list[int],
        scales: list[float],
        languages: tuple[str, ...],
        router: Router,
        logits: nn.Parameter,
        *,
        side: str,
        layer: int,
        position: str,
        name: str,
        choices: tuple[str, ...] = (SOURCE, TARGET),
        shared_rank: int | None = None,
        shared_scale: float = 1.0,
        temperature: float = 1.0,
        dropout: float = 0.0,
        init: str = "kaiming",
    ) -> None:
        super().__init__()
        if tuple(choices[:2]) != (SOURCE, TARGET) or not set(choices[2:]) <= {SHARED} or len(choices) > 3:
            raise ValueError(f"choices must be (source, target) or (source, target, shared), got {choices!r}")
        if logits.shape != (len(choices),):
            raise ValueError(f"logits must have shape ({len(choices)},), got {tuple(logits.shape)}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.router = router
        self.choices = tuple(choices)
        self.side, self.layer, self.position, self.name = side, layer, position, name
        self.temperature = float(temperature)
        self.logits = logits
        adapters = {}
        for choice in self.choices:
            if choice == SHARED:
                r = int(shared_rank if shared_rank is not None else max(ranks))
                langs, rk, sc, routing = (SHARED,), [r], [float(shared_scale)], SOURCE
            else:
                langs, rk, sc, routing = tuple(languages), list(ranks), list(scales), choice
            adapters[choice] = LSLoLinear(
                base, rk, sc, langs, router, routing=routing, side=side, layer=layer, position=position,
                name=f"{name}.{choice}", dropout=dropout, init=init,
            )
        self.adapters = nn.ModuleDict(adapters)

    def mixing_weights(self) -> torch.Tensor:
        """softmax(logits / temperature), float32, one entry per choice."""
        return torch.softmax(self.logits.float() / self.temperature, dim=-1)

    def _indices(self, choice: str, n_rows: int, device: torch.device) -> torch.Tensor:
        """One language index per sentence (beam rows of a sentence are contiguous and share it)."""
        route = SOURCE if choice == SHARED else choice
        groups = getattr(self.router, "groups", None)
        if groups is not None:
            idx, _ = groups(route, n_rows, device)
        else:
            idx = self.router.index(route, n_rows, device)
        return torch.zeros_like(idx) if choice == SHARED else idx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        w = self.mixing_weights()
        mix = None
        for i, choice in enumerate(self.choices):
            idx = self._indices(choice, x.shape[0], x.device)
            h = x.reshape(idx.shape[0], -1, self.in_features)
            d = self.adapters[choice]._delta(h, idx)
            term = w[i].to(d.dtype) * d
            mix = term if mix is None else mix + term
        return out + mix.reshape(out.shape).to(out.dtype)

    def extra_repr(self) -> str:
        return f"{self.name}, mixing {'/'.join(self.choices)}"
