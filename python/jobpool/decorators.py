"""The ``@job`` decorator: ``f.delay(*args, **kwargs)`` enqueues a call of ``f``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from redis import Redis

from .callbacks import Callback
from .job import Job
from .queue import Queue
from .retry import Retry
from .webhook import Webhook


class job:
    def __init__(
        self,
        queue: Queue | str,
        connection: Redis | None = None,
        timeout: int | str | None = None,
        result_ttl: int | str | None = None,
        ttl: int | str | None = None,
        queue_class: type[Queue] | None = None,
        depends_on: Any = None,
        at_front: bool = False,
        meta: dict[str, Any] | None = None,
        description: str | None = None,
        failure_ttl: int | str | None = None,
        retry: Retry | None = None,
        on_failure: Callback | None = None,
        on_success: Callback | None = None,
        on_stopped: Callback | None = None,
        webhooks: Sequence[Webhook] | None = None,
    ):
        self.queue = queue
        self.connection = connection
        self.queue_class = queue_class or Queue
        self.options: dict[str, Any] = dict(
            timeout=timeout,
            result_ttl=result_ttl,
            ttl=ttl,
            meta=meta,
            description=description,
            failure_ttl=failure_ttl,
            retry=retry,
            on_failure=on_failure,
            on_success=on_success,
            on_stopped=on_stopped,
            webhooks=webhooks,
        )
        self.depends_on = depends_on
        self.at_front = at_front

    def _queue(self) -> Queue:
        if isinstance(self.queue, Queue):
            return self.queue
        return self.queue_class(self.queue, connection=self.connection)

    def __call__(self, f: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(f)
        def delay(*args: Any, **kwargs: Any) -> Job:
            depends_on = kwargs.pop("depends_on", self.depends_on)
            job_id = kwargs.pop("job_id", None)
            at_front = kwargs.pop("at_front", self.at_front)
            return self._queue().enqueue_call(
                f,
                args=args,
                kwargs=kwargs,
                depends_on=depends_on,
                job_id=job_id,
                at_front=at_front,
                **self.options,
            )

        f.delay = delay  # type: ignore[attr-defined]
        f.enqueue = delay  # type: ignore[attr-defined]
        return f
