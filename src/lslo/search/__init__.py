"""Architecture learning (the paper's weight learning for routing): learn, per layer, whether LSLo is source- or target-indexed.

``config`` (the ``search:`` section) <- ``layer`` (dual-routing linear), ``decision``
(winners, plot) <- ``model`` <- ``run`` (the search trainer and ``run_search``).
"""

from lslo.search.config import SearchConfig, load_search_config
from lslo.search.decision import decide, plot_routing_weights, routing_decision
from lslo.search.layer import DualLSLoLinear
from lslo.search.model import SearchModel
from lslo.search.run import SearchTrainer, run_search

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
