"""The LSLo linear layer: a frozen ``nn.Linear`` plus one LoRA pair per language.

    h = W0 x + s_l * B_l A_l x,   l = the language this sentence is routed to

All languages' pairs are stacked into two parameters, padded to the largest rank:
``lora_A`` (L, r_max, d_in) and ``lora_B`` (L, d_out, r_max). Padding entries
(component j >= r_l) are zero and stay zero: they receive no gradient because
the matching entries of the other matrix are zero, and ``mask_A``/``mask_B`` mark
them as not kept. Routing gathers each row's pair by index and applies it with
batched matmuls, so there is no Python loop over languages and no host sync:
the cost does not grow with the number of languages.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Router:
    """Per-sentence language indices shared by every LSLo layer of one model.

    Layers ask for the source or target index of each row of their input. A row
    count that is a multiple of the batch size is a beam/sample expansion done by
    ``generate`` (``repeat_interleave``), so sentence i owns rows i*k .. i*k+k-1.
    """

    def __init__(self) -> None:
        self.src: torch.Tensor | None = None
        self.tgt: torch.Tensor | None = None
        self._expanded: dict[tuple[str, int, torch.device], torch.Tensor] = {}

    def set(self, src: torch.Tensor | None, tgt: torch.Tensor | None) -> None:
        self.src, self.tgt = src, tgt
        self._expanded = {}

    def clear(self) -> None:
        self.set(None, None)

    def index(self, route: str, n_rows: int, device: torch.device) -> torch.Tensor:
        ids = self.src if route == "source" else self.tgt
        if ids is None:
            raise RuntimeError(
                "LSLo layer called without languages: pass src_lang/tgt_lang to the LSLoModel "
                "forward/generate, or wrap the call in `with model.route(src, tgt):`"
            )
        key = (route, n_rows, device)
        cached = self._expanded.get(key)
        if cached is not None:
            return cached
        n = ids.shape[0]
        if n_rows == n:
            out = ids
        elif n_rows % n == 0:
            out = ids.repeat_interleave(n_rows // n)
        else:
            raise RuntimeError(f"LSLo routing: input has {n_rows} rows but the batch has {n} sentences")
        out = out.to(device)
        self._expanded[key] = out
        return out


class LSLoLinear(nn.Module):
    """A frozen linear map with per-language low-rank updates, hard-routed per row."""

    def __init__(
        self,
        base: nn.Linear,
        ranks: list[int],
        scales: list[float],
        languages: tuple[str, ...],
        router: Router,
        *,
        routing: str,
        side: str,
        layer: int,
        position: str,
        name: str,
        dropout: float = 0.0,
        init: str = "kaiming",
    ) -> None:
        super().__init__()
        if routing not in ("source", "target"):
            raise ValueError(f"routing must be 'source' or 'target', got {routing!r}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.languages = tuple(languages)
        self.router = router
        self.routing, self.side, self.layer, self.position, self.name = routing, side, layer, position, name
        n_lang, r_max = len(ranks), max(ranks)
        d_in, d_out = base.in_features, base.out_features
        dev = base.weight.device
        self.lora_A = nn.Parameter(torch.zeros(n_lang, r_max, d_in, device=dev, dtype=torch.float32))
        self.lora_B = nn.Parameter(torch.zeros(n_lang, d_out, r_max, device=dev, dtype=torch.float32))
        self.register_buffer("ranks", torch.tensor(ranks, dtype=torch.long, device=dev))
        self.register_buffer("scale", torch.tensor(scales, dtype=torch.float32, device=dev))
        valid = torch.arange(r_max, device=dev)[None, :] < self.ranks[:, None]  # (L, r_max)
        self.register_buffer("mask_A", valid[:, :, None].expand(n_lang, r_max, d_in).clone())
        self.register_buffer("mask_B", valid[:, None, :].expand(n_lang, d_out, r_max).clone())
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_parameters(init)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:  # some HF code reads .weight.dtype / .device
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def reset_parameters(self, init: str = "kaiming") -> None:
        with torch.no_grad():
            for lang, r in enumerate(self.ranks.tolist()):
                a = torch.empty(r, self.in_features, device=self.lora_A.device)
                if init == "kaiming":
                    nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # as nn.Linear / the paper
                else:
                    nn.init.normal_(a, std=1.0 / r)
                self.lora_A[lang].zero_()
                self.lora_A[lang, :r] = a
            self.lora_B.zero_()

    def valid_A(self) -> torch.Tensor:
        r_max = self.lora_A.shape[1]
        valid = torch.arange(r_max, device=self.ranks.device)[None, :] < self.ranks[:, None]
        return valid[:, :, None].expand_as(self.lora_A)

    def valid_B(self) -> torch.Tensor:
        r_max = self.lora_A.shape[1]
        valid = torch.arange(r_max, device=self.ranks.device)[None, :] < self.ranks[:, None]
        return valid[:, None, :].expand_as(self.lora_B)

    def delta_weight(self, lang: int) -> torch.Tensor:
        """s_l * B_l A_l as a (d_out, d_in) matrix (used by merge and tests)."""
        return self.scale[lang] * (self.lora_B[lang] @ self.lora_A[lang])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        idx = self.router.index(self.routing, x.shape[0], x.device)
        return out + self._delta(x, idx).view_as(out)

    def _delta(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        h = self.dropout(x).reshape(n, -1, self.in_features)
        dtype = h.dtype if not torch.is_autocast_enabled() else torch.get_autocast_dtype(h.device.type)
        a = self.lora_A[idx].to(dtype)  # (N, r_max, d_in): one gather, whatever the number of languages
        b = self.lora_B[idx].to(dtype)  # (N, d_out, r_max)
        xa = torch.bmm(h.to(dtype), a.transpose(1, 2)) * self.scale.to(dtype)[idx][:, None, None]
        return torch.bmm(xa, b.transpose(1, 2))

    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """Loop-over-languages implementation kept for tests and benchmarks."""
        out = self.base(x)
        idx = self.router.index(self.routing, x.shape[0], x.device)
        h = self.dropout(x)
        out = out.clone()
        for lang, r in enumerate(self.ranks.tolist()):
            rows = idx == lang
            if not bool(rows.any()):
                continue
            a = self.lora_A[lang, :r]
            b = self.lora_B[lang, :, :r]
            out[rows] = out[rows] + self.scale[lang] * ((h[rows] @ a.T) @ b.T).to(out.dtype)
        return out

    def extra_repr(self) -> str:
        ranks = ",".join(f"{lang}:{r}" for lang, r in zip(self.languages, self.ranks.tolist()))
        return f"{self.name}, {self.routing}-indexed, ranks=[{ranks}]"
