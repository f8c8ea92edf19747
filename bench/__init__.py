"""The benchmark suite (``python -m bench``, ``make bench``) and the idle soak (``python -m bench.soak``).

Run from the checkout's root, so that ``bench`` is importable: the pools it starts import their jobs
from ``bench.workload`` (and Dramatiq its actors from ``bench.dramatiq_workload``) the same way.
"""
