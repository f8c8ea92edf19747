"""Webhook: an HTTP request made when a job ends finished or failed, as RQ 3.0's ``rq.Webhook``.

A job's webhooks are data, not code: stored in its hash as RQ stores them (the ``webhooks`` field,
a JSON list of ``Webhook.to_dict()``), so a job enqueued by either library has its webhooks sent
by the other's workers. A ``GET`` webhook sends no body; a ``POST`` one sends the JSON payload
``{"job_id", "func_name", "status", "enqueued_at", "ended_at"}`` (and ``"exc_info"``, the
traceback text, for ``failed``). Sending never raises: a failure (an unreachable URL, an error
status, a timeout) is logged as a warning and changes nothing about the job.

A webhook is sent once its job's ending is written to Redis, as RQ sends it: a worker hands it
to ``WebhookSender``, a thread of its own started with the first job that has webhooks, so a
slow endpoint holds up no job (see docs/architecture.md).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlparse
from urllib.request import Request, urlopen

from .exceptions import InvalidWebhook

logger = logging.getLogger("jobpool.webhook")

JOB_STATUSES = ("finished", "failed")
METHODS = ("GET", "POST")


class WebhookJob(Protocol):
    """What a webhook reads of its job (a ``Job``, which sits above webhooks: its hash holds them)."""

    @property
    def id(self) -> str: ...
    @property
    def func_name(self) -> str | None: ...
    @property
    def enqueued_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def webhooks(self) -> list[Webhook]: ...


@dataclass
class Webhook:
    """``Webhook(url, job_status, *, method="GET", headers=None, timeout=10)``: a request to
    ``url`` when the job ends with ``job_status`` (``finished`` or ``failed``)."""

    url: str
    job_status: Literal["finished", "failed"]
    method: Literal["GET", "POST"]
    headers: dict[str, str] | None
    timeout: int

    def __init__(
        self,
        url: str,
        job_status: Literal["finished", "failed"],
        *,
        method: Literal["GET", "POST"] = "GET",
        headers: dict[str, str] | None = None,
        timeout: int = 10,
    ) -> None:
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidWebhook(f"url must be an http:// or https:// URL, got {url!r}")
        if job_status not in JOB_STATUSES:
            raise InvalidWebhook(f"job_status must be 'finished' or 'failed', got {job_status!r}")
        if method not in METHODS:
            raise InvalidWebhook(f"method must be 'GET' or 'POST', got {method!r}")
        if headers and not isinstance(headers, dict):
            raise InvalidWebhook(f"headers must be a dict or None, got {type(headers).__name__}")
        if not isinstance(timeout, int) or timeout <= 0:
            raise InvalidWebhook(f"timeout must be a positive integer, got {timeout!r}")
        self.url = url
        self.job_status = job_status
        self.method = method
        self.headers = headers
        self.timeout = timeout

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Webhook:
        return cls(
            data["url"],
            data["job_status"],
            method=data.get("method", "GET"),
            headers=data.get("headers"),
            timeout=data.get("timeout", 10),
        )

    def get_payload(self, job: WebhookJob, *, exc_string: str | None = None) -> dict[str, Any]:
        """The body of a POST: the job's id, function, status and times, and for ``failed``
        the traceback text (``exc_info``)."""
        payload: dict[str, Any] = {
            "job_id": job.id,
            "func_name": job.func_name,
            "status": self.job_status,
            "enqueued_at": job.enqueued_at.isoformat() if job.enqueued_at else None,
            "ended_at": job.ended_at.isoformat() if job.ended_at else None,
        }
        if self.job_status == "failed":
            payload["exc_info"] = exc_string
        return payload

    def send(self, job: WebhookJob, *, exc_string: str | None = None) -> None:
        """Makes the request now; a failure is logged, never raised."""
        self.deliver(job.id, self.get_payload(job, exc_string=exc_string))

    def deliver(self, job_id: str, payload: dict[str, Any]) -> None:
        """Makes the request with ``payload`` (its body, for POST); a failure is logged, never
        raised."""
        try:
            if self.method == "GET":
                request = Request(self.url, headers=self.headers or {}, method="GET")
            else:
                body = json.dumps(payload).encode()
                headers = {"Content-Type": "application/json", **(self.headers or {})}
                request = Request(self.url, data=body, headers=headers, method="POST")
            with urlopen(request, timeout=self.timeout):
                pass
        except Exception:
            logger.warning("Failed to send webhook to %s for job %s", self.url, job_id, exc_info=True)


def encode_webhooks(webhooks: list[Webhook]) -> str:
    """The ``webhooks`` hash field, as RQ writes it."""
    return json.dumps([webhook.to_dict() for webhook in webhooks])


def decode_webhooks(job_id: str, text: str) -> list[Webhook]:
    """The webhooks of a ``webhooks`` hash field; none (and a warning) when it is not one RQ or
    jobpool could have written, as RQ reads it."""
    try:
        return [Webhook.from_dict(data) for data in json.loads(text)]
    except Exception:
        logger.warning("Job %s: failed to deserialize webhooks", job_id, exc_info=True)
        return []


def check_webhooks(webhooks: Any) -> list[Webhook]:
    """``webhooks`` as given to ``enqueue`` or ``Job.create``, as a list; TypeError unless it is
    a sequence of Webhook objects."""
    if not webhooks:
        return []
    if not isinstance(webhooks, Sequence) or not all(isinstance(each, Webhook) for each in webhooks):
        raise TypeError("webhooks must be a sequence of Webhook instances")
    return list(webhooks)


Delivery = tuple[Webhook, str, dict[str, Any]]
"""A webhook to send: (the webhook, its job's id, its payload)."""


class WebhookSender:
    """Sends webhooks in order from a daemon thread, started with the first one (a process
    whose jobs have none never starts it), so that the job loop never waits on an endpoint."""

    def __init__(self) -> None:
        self._deliveries: queue.Queue[Delivery | None] | None = None
        self._thread: threading.Thread | None = None

    def send(self, job: WebhookJob, status: str, exc_string: str | None = None) -> None:
        """Queues ``job``'s webhooks for ``status`` (their payloads are made now)."""
        for webhook in job.webhooks:
            if webhook.job_status == status:
                self._queue().put((webhook, job.id, webhook.get_payload(job, exc_string=exc_string)))

    def _queue(self) -> queue.Queue[Delivery | None]:
        if self._deliveries is None:
            self._deliveries = queue.Queue()
            self._thread = threading.Thread(
                target=_deliver_all, args=(self._deliveries,), name="jobpool-webhooks", daemon=True
            )
            self._thread.start()
        return self._deliveries

    def drain(self, wait_seconds: float) -> None:
        """Sends what is queued, waiting at most ``wait_seconds``, then stops the thread (the
        next webhook starts another). What is left unsent is logged."""
        deliveries, thread = self._deliveries, self._thread
        self._deliveries = self._thread = None
        if deliveries is None or thread is None:
            return
        deliveries.put(None)
        thread.join(wait_seconds)
        if thread.is_alive():
            logger.warning(
                "Gave up waiting for webhooks after %.0f s; about %d left unsent",
                wait_seconds,
                deliveries.qsize(),
            )


def _deliver_all(deliveries: queue.Queue[Delivery | None]) -> None:
    """The sender thread: delivers until it meets None."""
    while (delivery := deliveries.get()) is not None:
        webhook, job_id, payload = delivery
        webhook.deliver(job_id, payload)
