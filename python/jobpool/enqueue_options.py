"""What an enqueue is given besides the call: RQ's enqueue keywords, as one record.

``Queue.enqueue(f, *args, **kwargs)`` and ``enqueue_at`` take the options out of ``kwargs`` by
RQ's names (``EnqueueOptions.pop_from``); ``enqueue_call`` and ``create_job`` have them in RQ's
explicit signatures (``from_signature``), and ``enqueue_many`` in RQ's ``EnqueueData`` (``of``).
Each builds one ``EnqueueOptions``, which the queue passes down to the job's creation and
placement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, NamedTuple

from .callbacks import Callback
from .rate_limit import RateLimit
from .repeat import Repeat
from .retry import Retry
from .webhook import Webhook

if TYPE_CHECKING:
    from redis.client import Pipeline


class EnqueueData(NamedTuple):
    """One job for ``enqueue_many``, RQ's: ``Queue.prepare_data`` is this constructor."""

    func: Any
    args: tuple[Any, ...] | list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    timeout: int | str | None = None
    result_ttl: int | str | None = None
    ttl: int | str | None = None
    failure_ttl: int | str | None = None
    description: str | None = None
    depends_on: Any = None
    job_id: str | None = None
    at_front: bool = False
    meta: dict[str, Any] | None = None
    retry: Retry | None = None
    on_success: Callback | None = None
    on_failure: Callback | None = None
    on_stopped: Callback | None = None
    repeat: Repeat | None = None
    webhooks: Sequence[Webhook] | None = None


@dataclass(frozen=True)
class EnqueueOptions:
    """RQ's enqueue keywords (``timeout`` is ``job_timeout`` in ``enqueue``'s keywords): how the
    job is made (all but the last three) and where and how it is saved (``at_front``,
    ``pipeline``, ``unique``)."""

    timeout: int | str | None = None
    result_ttl: int | str | None = None
    ttl: int | str | None = None
    failure_ttl: int | str | None = None
    description: str | None = None
    depends_on: Any = None
    job_id: str | None = None
    meta: dict[str, Any] | None = None
    retry: Retry | None = None
    repeat: Repeat | None = None
    on_success: Callback | None = None
    on_failure: Callback | None = None
    on_stopped: Callback | None = None
    webhooks: Sequence[Webhook] | None = None
    rate_limit: RateLimit | None = None
    at_front: bool = False
    pipeline: Pipeline | None = field(default=None, compare=False)
    unique: bool = False

    @classmethod
    def pop_from(
        cls, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> tuple[EnqueueOptions, tuple[Any, ...] | list[Any] | None, dict[str, Any] | None]:
        """(options, call args, call kwargs) from what ``enqueue(f, *args, **kwargs)`` got: RQ's
        keywords are taken out of ``kwargs``; explicit ``args=``/``kwargs=`` are the call's."""
        options = cls(
            **{option: kwargs.pop(keyword) for keyword, option in _KEYWORDS.items() if keyword in kwargs}
        )
        if "args" in kwargs or "kwargs" in kwargs:
            if args:
                raise TypeError("Extra positional arguments cannot be used with explicit args= and kwargs=")
            return options, kwargs.pop("args", None), kwargs.pop("kwargs", None)
        return options, tuple(args), kwargs

    @classmethod
    def from_signature(cls, arguments: dict[str, Any]) -> EnqueueOptions:
        """The options among the arguments of a signature that names its parameters as the
        options are named (``locals()`` first thing in ``enqueue_call`` or ``create_job``)."""
        return cls(**{name: value for name, value in arguments.items() if name in _OPTIONS})

    @classmethod
    def of(cls, data: EnqueueData) -> EnqueueOptions:
        """The options of one of ``enqueue_many``'s jobs."""
        return cls(**{name: getattr(data, name) for name in EnqueueData._fields if name in _OPTIONS})


_OPTIONS = frozenset(option.name for option in fields(EnqueueOptions))
_KEYWORDS = {"job_timeout" if name == "timeout" else name: name for name in sorted(_OPTIONS)}
"""``enqueue``'s keyword for each option."""
