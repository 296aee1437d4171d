"""The offline testbed: corpus and base-model builders and the demo.

Nothing in the library imports this package; only the CLI, the benchmarks and the tests
reach it, and every data path is an argument.
"""
