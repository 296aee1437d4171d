"""Experiments over many runs: rank/position sweeps and resource levels."""
