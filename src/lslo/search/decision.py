"""The decision: per layer, the side with the larger learned weight; and its plot."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from lslo.search.config import SOURCE, TARGET
from lslo.tuner.model import SHARED


def decide(weights: dict[str, float], default: str | None = None) -> str:
    """The choice with the largest weight; an exact tie goes to ``default`` when it is among the tied."""
    best = max(weights.values())
    tied = [c for c, w in weights.items() if w == best]
    return default if default in tied else tied[0]


def _route_of(weights: dict[str, float], default: str) -> str:
    """source/target for the training config: the larger of the two (a shared winner maps to the closer)."""
    return decide({SOURCE: weights[SOURCE], TARGET: weights[TARGET]}, default)


def routing_decision(
    raw: dict[str, dict[int, dict[str, dict[str, float]]]],
    choices: tuple[str, ...],
    defaults: dict[str, list[str]],
    per_position: bool,
    temperature: float = 1.0,
    logits: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """Per-layer (and per-position) winners and the source/target routing for ``lslo train``.

    ``raw[side][layer][position]`` = {choice: weight}. Without per_position every position of a layer
    carries the same weights. The layer's weights are the mean over its positions (with per_position:
    summed weights decide the layer; the per-position majority is reported too). The layer's
    ``winner`` may be ``shared``; its ``route`` is then the larger of source/target. Exact ties go to
    the default routing of the config (the paper's setting).
    """
    out: dict[str, Any] = {"choices": list(choices), "per_position": per_position, "temperature": temperature}
    per_pos_routing: dict[str, dict[str, list[str]]] = {}
    for side in ("encoder", "decoder"):
        layers = []
        routes = []
        positions_seen: list[str] = []
        for layer in sorted(raw[side]):
            by_pos = raw[side][layer]
            default = defaults[side][layer]
            mean = {c: sum(w[c] for w in by_pos.values()) / len(by_pos) for c in choices}
            winner = decide(mean, default)
            route = _route_of(mean, default)
            ws, wt = mean[SOURCE], mean[TARGET]
            if round(ws, 2) == round(wt, 2):  # equal as printed (0.50/0.50): say which way it went
                out.setdefault("ties", []).append(
                    f"{side} layer {layer + 1}: source {ws:.4f} vs target {wt:.4f} (equal at the printed precision); "
                    f"routed {route}" + (" (the config's default)" if route == default else " (the larger weight)"))
            entry: dict[str, Any] = {"layer": layer, "weights": mean, "winner": winner, "route": route}
            if winner == SHARED:
                entry["shared_won"] = True
            if per_position:
                pos_entries = {}
                for pos, w in by_pos.items():
                    if pos not in positions_seen:
                        positions_seen.append(pos)
                    pos_entries[pos] = {"weights": w, "winner": decide(w, default), "route": _route_of(w, default)}
                votes = Counter(e["winner"] for e in pos_entries.values())
                entry["majority"] = decide({c: float(votes.get(c, 0)) for c in choices}, winner)
                entry["positions"] = pos_entries
            layers.append(entry)
            routes.append(route)
        out[side] = layers
        out[f"{side}_routing"] = routes
        if per_position:
            per_pos_routing[side] = {
                pos: [e["positions"][pos]["winner"] if pos in e["positions"] else None for e in layers]
                for pos in positions_seen
            }
    out["shared_won"] = {
        side: [e["layer"] for e in out[side] if e["winner"] == SHARED] for side in ("encoder", "decoder")
    }
    if per_position:
        out["per_position_routing"] = per_pos_routing
    if logits is not None:
        out["logits"] = logits
    return out


_COLORS = {SOURCE: "#4C72B0", TARGET: "#DD8452", SHARED: "#8C8C8C"}


def plot_routing_weights(result: dict[str, Any], path: str | Path) -> Path:
    """Stacked bars of the mixing weights: encoder and decoder, per layer (per layer x position)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    choices = result["choices"]
    per_pos = result["per_position"]
    sides = [s for s in ("encoder", "decoder") if result[s]]
    fig, axes = plt.subplots(len(sides), 1, figsize=(10, 2.8 * len(sides)), squeeze=False)
    for ax, side in zip(axes[:, 0], sides):
        labels, bars, edges = [], [], []
        for e in result[side]:
            if per_pos:
                for pos, p in e["positions"].items():
                    labels.append(f"{e['layer'] + 1}.{pos}")
                    bars.append(p["weights"])
                edges.append(len(labels))
            else:
                labels.append(str(e["layer"] + 1))
                bars.append(e["weights"])
        x = list(range(len(labels)))
        bottom = [0.0] * len(labels)
        for c in choices:
            h = [b[c] for b in bars]
            ax.bar(x, h, bottom=bottom, color=_COLORS[c], label=c, width=0.85)
            bottom = [b + v for b, v in zip(bottom, h)]
        ax.axhline(0.5, color="k", lw=0.6, ls="--")
        for edge in edges[:-1]:
            ax.axvline(edge - 0.5, color="k", lw=0.4)
        ax.set_xticks(x, labels, rotation=90 if per_pos else 0, fontsize=6 if per_pos else 9)
        ax.set_ylim(0, 1)
        ax.set_xlim(-0.5, len(labels) - 0.5)
        routes = "".join(r[0].upper() for r in result[f"{side}_routing"])
        ax.set_title(f"{side}: learned mixing weights per layer{' x position' if per_pos else ''}  (routing {routes})",
                     fontsize=10)
        ax.set_ylabel("weight")
        ax.set_xlabel("layer" + (".position" if per_pos else ""))
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=len(choices))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
