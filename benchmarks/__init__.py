"""Named benchmark workloads: `python -m benchmarks.<name>` prints JSON figures."""
