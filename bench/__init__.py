"""nnforge benchmarks: each case runs beside its peer in one process (``python -m bench``)."""
