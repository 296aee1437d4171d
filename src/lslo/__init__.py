"""lslo: language-specific LoRA for multilingual NMT."""

__version__ = "0.1.0"
