"""Architecture learning (SPEC 4): dual-routing layers, the search model and trainer, the decision."""

from lslo.search.search import (
    DualLSLoLinear,
    SearchConfig,
    SearchModel,
    SearchTrainer,
    decide,
    load_search_config,
    plot_routing_weights,
    routing_decision,
    run_search,
)

__all__ = [
    "DualLSLoLinear",
    "SearchConfig",
    "SearchModel",
    "SearchTrainer",
    "decide",
    "load_search_config",
    "plot_routing_weights",
    "routing_decision",
    "run_search",
]
