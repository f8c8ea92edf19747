"""Job functions that do what jobs should not (importable by workers as ``misbehaving_jobs.<name>``)."""

from __future__ import annotations


def corrupt_worker_counters() -> None:
    """Writes into its worker's hash counters that HINCRBY and HINCRBYFLOAT refuse."""
    from jobpool import get_current_job, keys

    job = get_current_job()
    assert job is not None and job.worker_name
    job.connection.hset(
        keys.worker(job.worker_name),
        mapping={"successful_job_count": "many", "failed_job_count": "1.5", "total_working_time": "long"},
    )
