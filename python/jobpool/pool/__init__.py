"""The pool (``jobpool start``): a supervisor over forked workers.

- ``supervisor``: the loop, the process table and signals, hard kills, the nudges of idle workers;
  ``children`` (a worker in the table, and what is sent to one) and ``respawns`` (when a slot gets
  its next worker: the crash-loop back-off).
- ``reports``: the ledger of what each worker owns: the report lines a worker writes and the
  supervisor reads back (one definition for both), ``Owned``, ``Reported`` and ``job_deadline()``.
- ``pool_worker``: the worker a supervisor forks (a ``SimpleWorker`` whose hooks report to it and
  hold jobs ahead in the shared ``Ledger``).
- The supervisor's Redis duties, each an object given what it needs: ``wakeup_wait`` (the one wait
  for the idle workers), ``heartbeat`` (heartbeats and RQ's per-execution records),
  ``held_jobs`` (jobs taken ahead, taken back), ``command_relay`` (workers' commands),
  ``settling`` (a dead worker's jobs), ``maintenance`` (abandoned jobs, registries, groups);
  ``helper_process`` forks what must not hold up the loop, ``tally`` counts what they record.
- ``scheduler``: due scheduled jobs onto their queues, under RQ's per-queue locks.
- ``settled_webhooks``: the webhooks of the endings the supervisor writes itself.
- ``pool_metrics``, ``burst_summary``, ``pool_banner``: what the pool counts, sums up and says as it
  starts. ``systemd``: the notify protocol.

RQ has no names here to keep: nothing in this package is public API.
"""
