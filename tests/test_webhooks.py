"""RQ 3.0's webhooks (``rq.Webhook``), side by side: a real HTTP server on 127.0.0.1 receives the
requests that RQ's SimpleWorker (burst mode), jobpool's Worker (burst mode), a ``jobpool start``
pool and both libraries' synchronous queues make when jobs end, and the tests compare them: which
statuses send, the method, headers and JSON payload, and that a webhook that cannot be sent
leaves the job's outcome as it was."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
import redis
import rq
import rq.job
import rq.registry

import jobpool
import jobs
from conftest import run_rq_worker, wait_for
from jobpool import Queue, Webhook
from jobpool.exceptions import InvalidWebhook
from jobpool.job import Job, JobStatus
from jobpool.redis_target import connect_core
from jobpool.registry import StartedJobRegistry
from support.pool_process import Pool, lapse_executions
from support.side_by_side import library


class Received:
    """The requests a test's HTTP server got: (method, path, headers, JSON body or None)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.lock = threading.Lock()

    def add(self, request: tuple[str, str, dict[str, str], Any]) -> None:
        with self.lock:
            self.requests.append(request)

    def take(self) -> list[tuple[str, str, dict[str, str], Any]]:
        with self.lock:
            taken, self.requests = self.requests, []
        return taken


@pytest.fixture
def server() -> Iterator[tuple[str, Received]]:
    """An HTTP server on 127.0.0.1 (its base URL): 200 for any path but ``/error`` (500) and
    ``/slow`` (no answer until the test ends)."""
    received = Received()
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            received.add((self.command, self.path, dict(self.headers.items()), body))
            if self.path == "/slow":
                release.wait(60)
            self.send_response(500 if self.path == "/error" else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    release.set()
    httpd.shutdown()
    httpd.server_close()


def unreachable_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/nobody"


def hooks(name: str, base: str) -> list[Any]:
    webhook = library(name).Webhook
    return [
        webhook(f"{base}/done", "finished", method="POST", headers={"X-Token": "t"}),
        webhook(f"{base}/done-get", "finished"),
        webhook(f"{base}/failed", "failed", method="POST", timeout=5),
    ]


def seen(requests: list[tuple[str, str, dict[str, str], Any]]) -> list[tuple[Any, ...]]:
    """What a request says, less what differs between two runs (times are checked, not compared;
    a traceback to its last line)."""
    out = []
    for method, path, headers, body in requests:
        shown = dict(body) if body else body
        if shown:
            for field in ("enqueued_at", "ended_at"):
                text = shown.pop(field)
                if text is None:
                    shown[field] = None
                    continue
                stamp = datetime.fromisoformat(text)
                assert stamp.tzinfo is not None and stamp <= datetime.now(timezone.utc), stamp
            if shown.get("exc_info"):
                shown["exc_info"] = shown["exc_info"].strip().splitlines()[-1]
        wanted = {k: headers.get(k) for k in ("Content-Type", "X-Token")}
        out.append((method, path, wanted, shown))
    return sorted(out, key=repr)


def run(name: str, connection: redis.Redis, runner: str, pool: Callable[..., Pool]) -> None:
    if name == "rq":
        run_rq_worker(connection, "q")
    elif runner == "worker":
        jobpool.Worker(["q"], connection=connection).work(burst=True)
    else:
        assert pool("-n", "2", "--burst", "q").wait() == 0


def both(connection: redis.Redis, received: Received, scenario: Callable[[str], Any]) -> tuple[Any, Any]:
    theirs = scenario("rq"), seen(received.take())
    connection.flushdb()
    ours = scenario("jobpool"), seen(received.take())
    return theirs, ours


@pytest.mark.parametrize("runner", ["worker", "pool"])
def test_finished_and_failed_jobs_send_rqs_requests(
    connection: redis.Redis, server: tuple[str, Received], pool: Callable[..., Pool], runner: str
) -> None:
    base, received = server

    def scenario(name: str) -> list[str]:
        queue = library(name).Queue("q", connection=connection)
        queue.enqueue(jobs.add, 1, 2, job_id="ok", webhooks=hooks(name, base))
        queue.enqueue(jobs.fail, "broken", job_id="bad", webhooks=hooks(name, base))
        queue.enqueue(jobs.add, 3, 4, job_id="plain")  # no webhook
        run(name, connection, runner, pool)
        return [
            cast(JobStatus, Job.fetch(i, connection=connection).get_status()).value
            for i in ("ok", "bad", "plain")
        ]

    theirs, ours = both(connection, received, scenario)
    assert ours == theirs
    statuses, requests = ours
    assert statuses == ["finished", "failed", "finished"]
    assert requests == [
        ("GET", "/done-get", {"Content-Type": None, "X-Token": None}, None),
        (
            "POST",
            "/done",
            {"Content-Type": "application/json", "X-Token": "t"},
            {"job_id": "ok", "func_name": "jobs.add", "status": "finished"},
        ),
        (
            "POST",
            "/failed",
            {"Content-Type": "application/json", "X-Token": None},
            {"job_id": "bad", "func_name": "jobs.fail", "status": "failed", "exc_info": "ValueError: broken"},
        ),
    ]


def test_webhooks_are_stored_in_the_job_hash_as_rqs(
    connection: redis.Redis, server: tuple[str, Received]
) -> None:
    base, _ = server
    stored = {}
    for name in ("rq", "jobpool"):
        library(name).Queue("q", connection=connection).enqueue(
            jobs.add, 1, 2, job_id=name, webhooks=hooks(name, base)
        )
        stored[name] = connection.hget(f"rq:job:{name}", "webhooks")
    assert stored["jobpool"] == stored["rq"] and stored["rq"] is not None
    # each library reads the other's
    theirs = rq.job.Job.fetch("jobpool", connection=connection).webhooks
    ours = Job.fetch("rq", connection=connection).webhooks
    assert (
        [w.to_dict() for w in theirs]
        == [w.to_dict() for w in ours]
        == [w.to_dict() for w in hooks("jobpool", base)]
    )
    assert not connection.hexists(
        f"rq:job:{Queue('q', connection=connection).enqueue(jobs.add, 1, 2).id}", "webhooks"
    )


def test_a_webhook_that_cannot_be_sent_leaves_the_job_finished(
    connection: redis.Redis, server: tuple[str, Received], caplog: pytest.LogCaptureFixture
) -> None:
    base, received = server
    webhooks = [Webhook(unreachable_url(), "finished", method="POST"), Webhook(f"{base}/error", "finished")]
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 2, webhooks=webhooks)
    with caplog.at_level(logging.WARNING, logger="jobpool.webhook"):
        jobpool.Worker(["q"], connection=connection).work(burst=True)
    assert job.get_status() == "finished" and job.return_value() == 3
    assert [(method, path) for method, path, _, _ in received.take()] == [("GET", "/error")]
    failures = [r.getMessage() for r in caplog.records if r.name == "jobpool.webhook"]
    assert len(failures) == 2 and all(f"for job {job.id}" in message for message in failures)


def test_only_the_final_failure_of_a_retried_job_sends(
    connection: redis.Redis, server: tuple[str, Received], pool: Callable[..., Pool]
) -> None:
    base, received = server

    def scenario(name: str) -> list[Any]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection)
        queue.enqueue(jobs.fail, "again", job_id="r", retry=lib.Retry(max=1), webhooks=hooks(name, base))
        run(name, connection, "worker", pool)  # runs it twice: it is requeued at once
        return [cast(JobStatus, Job.fetch("r", connection=connection).get_status()).value]

    theirs, ours = both(connection, received, scenario)
    assert ours == theirs
    assert [request[1] for request in ours[1]] == ["/failed"]


def test_a_synchronous_queue_sends_them_as_the_job_runs(
    connection: redis.Redis, server: tuple[str, Received]
) -> None:
    base, received = server

    def scenario(name: str) -> list[str]:
        queue = library(name).Queue("q", connection=connection, is_async=False)
        done = queue.enqueue(jobs.add, 1, 2, job_id="ok", webhooks=hooks(name, base))
        assert len(received.requests) == 2  # sent before enqueue returns
        failed = queue.enqueue(jobs.fail, "inline", job_id="bad", webhooks=hooks(name, base))
        return [done.get_status().value, failed.get_status().value]

    theirs, ours = both(connection, received, scenario)
    assert theirs[1][2][3].pop("ended_at") is None
    assert ours == theirs
    assert ours[0] == ["finished", "failed"] and len(ours[1]) == 3


def test_bad_webhooks_are_refused_as_rq_refuses_them(connection: redis.Redis) -> None:
    cases: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (("ftp://example.com", "finished"), {}),
        (("http://", "finished"), {}),
        ((42, "finished"), {}),
        (("http://example.com", "started"), {}),
        (("http://example.com", "failed"), {"method": "PUT"}),
        (("http://example.com", "failed"), {"headers": ["x"]}),
        (("http://example.com", "failed"), {"timeout": 0}),
        (("http://example.com", "failed"), {"timeout": 1.5}),
    ]
    for args, kwargs in cases:
        with pytest.raises((ValueError, TypeError)) as theirs:
            rq.Webhook(*args, **kwargs)
        with pytest.raises(InvalidWebhook) as ours:
            Webhook(*args, **kwargs)
        assert isinstance(ours.value, type(theirs.value)), (args, kwargs)
    with pytest.raises(TypeError):
        Queue("q", connection=connection).enqueue(jobs.add, 1, 2, webhooks=["http://example.com"])
    assert connection.keys("*") == []


def test_payload_and_round_trip_match_rqs(connection: redis.Redis) -> None:
    webhook = Webhook("https://example.com/x", "failed", method="POST", headers={"A": "b"}, timeout=3)
    assert (
        webhook.to_dict()
        == rq.Webhook(
            "https://example.com/x", "failed", method="POST", headers={"A": "b"}, timeout=3
        ).to_dict()
    )
    assert Webhook.from_dict(webhook.to_dict()) == webhook
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 2, webhooks=[webhook])
    theirs = rq.job.Job.fetch(job.id, connection=connection)
    ours = Job.fetch(job.id, connection=connection)
    assert webhook.get_payload(ours, exc_string="E") == rq.Webhook.from_dict(webhook.to_dict()).get_payload(
        theirs, exc_string="E"
    )


def _abandon(name: str, connection: redis.Redis, base: str, **options: Any) -> None:
    """Enqueues a job and leaves it as a worker that died running it leaves it: started, its
    execution lapsed."""
    queue = library(name).Queue("q", connection=connection)
    queue.enqueue(jobs.add, 1, 2, job_id="gone", webhooks=hooks(name, base), **options)
    taken = connect_core(connection).take(["q"], "dead-worker", "e1", 30)
    assert taken is not None and taken.job_id == "gone"
    lapse_executions(connection, "q")


@pytest.mark.parametrize("retried", [False, True], ids=["failed", "retried"])
def test_an_abandoned_job_sends_its_failed_webhooks_as_with_rq(
    connection: redis.Redis, server: tuple[str, Received], retried: bool
) -> None:
    base, received = server

    def scenario(name: str) -> str:
        _abandon(name, connection, base, **({"retry": library(name).Retry(1)} if retried else {}))
        registry = rq.registry.StartedJobRegistry if name == "rq" else StartedJobRegistry
        registry("q", connection=connection).cleanup()
        return cast(JobStatus, Job.fetch("gone", connection=connection).get_status()).value

    theirs, ours = both(connection, received, scenario)
    for _, requests in (theirs, ours):  # its reason ends with the time
        for request in requests:
            request[3]["exc_info"] = request[3]["exc_info"].split(", at ")[0]
    assert ours == theirs
    if retried:
        assert ours == ("queued", [])
    else:
        assert ours[1] == [
            (
                "POST",
                "/failed",
                {"Content-Type": "application/json", "X-Token": None},
                {
                    "job_id": "gone",
                    "func_name": "jobs.add",
                    "status": "failed",
                    "exc_info": "Moved to FailedJobRegistry, due to AbandonedJobError",
                    "ended_at": None,
                },
            )
        ]


def test_a_pool_sends_the_webhooks_of_jobs_another_pool_abandoned(
    connection: redis.Redis, server: tuple[str, Received], pool: Callable[..., Pool]
) -> None:
    base, received = server
    _abandon("jobpool", connection, base)
    pool("-n", "1", "q").wait_for_message("READY=1")
    wait_for(lambda: received.requests)
    ((method, path, _, body),) = received.take()
    assert (method, path, body["job_id"], body["status"]) == ("POST", "/failed", "gone", "failed")
    assert body["exc_info"].startswith("Moved to FailedJobRegistry, due to AbandonedJobError, at ")
    assert Job.fetch("gone", connection=connection).get_status() == "failed"


def test_a_pool_sends_the_failed_webhooks_of_a_job_whose_worker_died(
    connection: redis.Redis, server: tuple[str, Received], pool: Callable[..., Pool]
) -> None:
    """As RQ's worker sends them for a job whose work horse died."""
    base, received = server
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    job = Queue("q", connection=connection).enqueue(jobs.sleep_for, 60, webhooks=hooks("jobpool", base))
    running.busy_worker(job.id).kill()
    wait_for(lambda: received.requests)
    ((method, path, _, body),) = received.take()
    assert (method, path, body["job_id"], body["status"]) == ("POST", "/failed", job.id, "failed")
    assert "terminated unexpectedly" in body["exc_info"] and body["exc_info"] == job.exc_info
    assert job.get_status() == "failed"


def test_the_sender_thread_starts_only_with_a_job_that_has_webhooks(
    connection: redis.Redis, server: tuple[str, Received]
) -> None:
    base, _ = server
    queue = Queue("q", connection=connection)
    plain = queue.enqueue(jobs.thread_names)
    jobpool.SimpleWorker(["q"], connection=connection).work(burst=True)
    assert "jobpool-webhooks" not in plain.return_value()
    queue.enqueue(jobs.add, 1, 2, webhooks=[Webhook(f"{base}/done", "finished")])
    after = queue.enqueue(jobs.thread_names)
    jobpool.SimpleWorker(["q"], connection=connection).work(burst=True)
    assert "jobpool-webhooks" in after.return_value()


def test_a_worker_killed_while_its_webhook_is_in_flight_leaves_the_job_finished(
    connection: redis.Redis, server: tuple[str, Received], pool: Callable[..., Pool]
) -> None:
    """SIGKILL between the record and the webhook's answer: the webhook is lost (at most once,
    as with RQ), the job's outcome stands, and the pool runs on."""
    base, received = server
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.add, 1, 2, webhooks=[Webhook(f"{base}/slow", "finished", method="POST")])
    wait_for(lambda: received.requests)  # in flight: the endpoint does not answer
    (worker,) = running.workers()
    worker.kill()
    worker.wait(10)
    after = queue.enqueue(jobs.add, 3, 4)
    wait_for(lambda: after.get_status() == "finished")  # a new worker took it
    assert job.get_status() == "finished" and job.return_value() == 3
    assert len(job.results()) == 1 and not connection.zcard("rq:failed:q")
    assert [request[3]["job_id"] for request in received.take()] == [job.id]
