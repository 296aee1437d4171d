"""Generators of the documentation site's reference and results pages (``python -m tools.docs``)."""
