"""Every error jobpool raises on purpose derives from JobpoolError.

Names follow RQ's (``rq.exceptions``) so ``except`` clauses carry over; where RQ raises a bare
ValueError or TypeError, jobpool raises a typed subclass of both JobpoolError and that builtin,
so code written against RQ still catches it.
"""

from __future__ import annotations


class JobpoolError(Exception):
    """Base class of jobpool's errors."""


class NoSuchJobError(JobpoolError):
    """No job hash exists for this id."""


class DeserializationError(JobpoolError):
    """A job hash, or the data in it, cannot be decoded."""


class SerializationError(JobpoolError, TypeError):
    """The chosen serializer cannot encode a job's arguments, meta or result."""


class InvalidJobId(JobpoolError, ValueError, TypeError):
    """A job id is not a string of the characters RQ allows (letters, digits, '_' and '-')."""


class TimeoutFormatError(JobpoolError, ValueError):
    """A timeout or TTL is neither a positive number of seconds (at most ten years), -1, nor a
    string like '1h'."""


class InvalidRetry(JobpoolError, ValueError, TypeError):
    """A Retry's max or intervals are not whole numbers in range (RQ raises ValueError, or a
    TypeError for values it cannot compare)."""


class InvalidJobDependency(JobpoolError, ValueError):
    """A job cannot depend on what was given."""


class InvalidWebhook(JobpoolError, ValueError, TypeError):
    """A Webhook's url, job_status, method, headers or timeout is not one RQ accepts (RQ raises
    ValueError, or TypeError for headers)."""


class NoSuchGroupError(JobpoolError):
    """No group with this id has jobs (``Group.fetch``)."""


class DuplicateJobError(JobpoolError):
    """A unique job's id already exists."""


class InvalidJobOperation(JobpoolError):
    """The operation does not apply to the job in its current state."""


InvalidJobOperationError = InvalidJobOperation


class FunctionReferenceError(JobpoolError, TypeError, ValueError):
    """A job's function is neither a callable nor an importable dotted path."""


class InvalidSerializer(JobpoolError, NotImplementedError, TypeError):
    """A serializer has no ``dumps`` and ``loads`` methods (RQ raises NotImplementedError)."""


class InvalidKeyPrefix(JobpoolError, ValueError):
    """RQ_KEY_PREFIX holds characters RQ refuses."""


class InvalidCronJob(JobpoolError, ValueError, TypeError):
    """A cron job's registration is refused: no schedule or two, a cron string croniter cannot
    read, an interval that is not a positive number of seconds, or a job that could not be
    enqueued (RQ raises ValueError or TypeError, or croniter's error, which is a ValueError)."""


class SchedulerNotFound(JobpoolError):
    """No cron scheduler with the given name is registered."""


class DuplicateSchedulerError(JobpoolError):
    """A cron scheduler with this name is registered already."""


class DequeueTimeout(JobpoolError):
    """No job arrived within the wait."""


class AbandonedJobError(JobpoolError):
    """A job's execution stopped heartbeating: its worker died."""


class StopRequested(JobpoolError):
    """A worker was asked to stop."""


class BaseTimeoutException(JobpoolError):
    """Base of the timeouts a death penalty raises (RQ's ``rq.timeouts.BaseTimeoutException``)."""


class JobTimeoutException(BaseTimeoutException):
    """Raised inside a job that ran past its timeout (RQ's ``rq.timeouts.JobTimeoutException``)."""


class HorseMonitorTimeoutException(BaseTimeoutException):
    """RQ's ``rq.timeouts.HorseMonitorTimeoutException``, for code that catches it (jobpool's
    worker waits for its work horse without one)."""


class InvalidRedisUrl(JobpoolError, ValueError):
    """A Redis URL or connection jobpool's worker cannot use."""


class RedisUnavailable(JobpoolError, ConnectionError):
    """Redis could not be reached, or the connection dropped or timed out, after retries."""


class RedisCommandError(JobpoolError):
    """Redis refused a command of jobpool's (a script error, a key of the wrong type, ...)."""


class UnexpectedReply(JobpoolError):
    """Redis answered with a reply of a shape jobpool does not expect."""


class InvalidSettings(JobpoolError, ValueError, TypeError):
    """A settings module (``jobpool start -c MODULE``) that cannot be imported, or a setting in
    it of the wrong type or out of range."""
