"""The tests' helpers: processes a test starts (a pool, a worker, RQ's worker), and tools they use.

Fixtures stay in conftest.py; the job modules (``jobs``, ``misbehaving_jobs``) stay in tests/ itself,
since their dotted names (``jobs.add``) are the function names stored in the jobs the tests compare.
"""
