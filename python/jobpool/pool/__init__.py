"""The pool (``jobpool start``): a supervisor over forked workers.

- ``supervisor``: the process table and signals, hard kills, heartbeats for all its workers, the
  command relay, settling a dead worker's jobs, maintenance and the scheduler's tick.
- ``pool_worker``: the worker a supervisor forks (a ``SimpleWorker`` that reports to it and holds
  jobs ahead in the shared ledger).
- ``scheduler``: due scheduled jobs onto their queues, under RQ's per-queue locks.
- ``settled_webhooks``: the webhooks of the endings the supervisor writes itself.
- ``pool_metrics``, ``burst_summary``, ``pool_banner``: what the pool counts, sums up and says as it
  starts. ``systemd``: the notify protocol.

RQ has no names here to keep: nothing in this package is public API.
"""
