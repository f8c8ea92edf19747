//! The typed records that cross the boundary: a taken job, an ending to record, a step's takes
//! and what a step did. Frozen classes with read-only attributes; conversions only.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::lifecycle::{Again, Ended, Ending, Failure, RetryReturned};
use crate::step::Transition;
use crate::take::{TakeRequest, Taken};

/// A job a take took: its queue, ids, heartbeat ttl and job hash (field name to bytes).
#[pyclass(module = "jobpool._native", name = "TakenJob", frozen, get_all)]
pub struct PyTakenJob {
    queue: String,
    job_id: String,
    execution_id: String,
    heartbeat_ttl: u64,
    fields: Py<PyDict>,
}

#[pymethods]
impl PyTakenJob {
    fn __repr__(&self) -> String {
        format!(
            "TakenJob(queue={:?}, job_id={:?}, execution_id={:?})",
            self.queue, self.job_id, self.execution_id
        )
    }
}

pub fn taken_job(py: Python<'_>, taken: Taken) -> PyResult<Py<PyTakenJob>> {
    let fields = PyDict::new(py);
    for (name, value) in &taken.fields {
        fields.set_item(name, PyBytes::new(py, value))?;
    }
    Py::new(
        py,
        PyTakenJob {
            queue: taken.queue,
            job_id: taken.job_id,
            execution_id: taken.execution_id,
            heartbeat_ttl: taken.heartbeat_ttl,
            fields: fields.unbind(),
        },
    )
}

/// Why an ending did not finish: a failure, or a `Retry` the job returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Failure(Failure),
    /// It runs again (the ending's `retry` says how).
    Retry,
    /// Its Retry's max was reached: it fails.
    MaxRetriesExceeded,
}

impl Kind {
    fn parse(failure: &str) -> PyResult<Kind> {
        match failure {
            "failed" => Ok(Kind::Failure(Failure::Failed)),
            "stopped" => Ok(Kind::Failure(Failure::Stopped)),
            "abandoned" => Ok(Kind::Failure(Failure::Abandoned)),
            "retry" => Ok(Kind::Retry),
            "max_retries_exceeded" => Ok(Kind::MaxRetriesExceeded),
            other => Err(PyValueError::new_err(format!(
                "failure must be failed, stopped, abandoned, retry or max_retries_exceeded, \
                 not {other:?}"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Failure(failure) => failure.as_str(),
            Kind::Retry => "retry",
            Kind::MaxRetriesExceeded => "max_retries_exceeded",
        }
    }
}

/// (number_of_retries, interval, at_front): how a job that returned a Retry runs again.
type RetryTuple = (u32, u64, bool);

/// How an execution ended, to record: finished (`failure` None, with its `return_value`:
/// base64 of the serialized value, None for None), or failed, stopped or abandoned, with its
/// traceback as RQ stores it; or a `Retry` the job
/// returned (in `return_value`): "retry", run again as `retry` says, or
/// "max_retries_exceeded". A pool worker keeps the endings it has not recorded yet in its
/// ledger (`encode`, `decode`).
#[pyclass(module = "jobpool._native", name = "Ending", frozen)]
pub struct PyEnding {
    #[pyo3(get)]
    job_id: String,
    #[pyo3(get)]
    execution_id: String,
    #[pyo3(get)]
    queue: String,
    #[pyo3(get)]
    started_at: Option<f64>,
    #[pyo3(get)]
    working_seconds: f64,
    failure: Option<Kind>,
    return_value: Option<Vec<u8>>,
    exc_info: Vec<u8>,
    exc_string: Vec<u8>,
    #[pyo3(get)]
    retry: Option<RetryTuple>,
}

impl PyEnding {
    /// The execution as the core records it; `default_result_ttl` applies if it finished.
    pub fn ended(
        &self,
        worker: Option<String>,
        marks_start: bool,
        default_result_ttl: i64,
    ) -> Ended {
        let ending = match self.failure {
            None => Ending::Finished {
                return_value: self.return_value.clone(),
                default_result_ttl,
            },
            Some(Kind::Failure(failure)) => Ending::Failed {
                failure,
                exc_info: self.exc_info.clone(),
                exc_string: self.exc_string.clone(),
            },
            Some(Kind::Retry | Kind::MaxRetriesExceeded) => Ending::Retry(RetryReturned {
                retry: self.return_value.clone().unwrap_or_default(),
                again: self
                    .retry
                    .map(|(number_of_retries, interval, at_front)| Again {
                        number_of_retries,
                        interval,
                        at_front,
                    }),
            }),
        };
        Ended {
            job_id: self.job_id.clone(),
            execution_id: self.execution_id.clone(),
            queue: self.queue.clone(),
            worker,
            started_at: self.started_at,
            working_seconds: self.working_seconds,
            marks_start,
            ending,
        }
    }

    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// The ending as bytes for the ledger's log of ended jobs (read back by `decode`): each
    /// text and byte string length-prefixed (u32, little-endian), the times as f64, the kind as
    /// one byte (0: finished), the retry's numbers little-endian, a byte for each optional part.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(
            64 + self.job_id.len()
                + self.execution_id.len()
                + self.queue.len()
                + self.return_value.as_ref().map_or(0, Vec::len)
                + self.exc_info.len()
                + self.exc_string.len(),
        );
        for text in [&self.job_id, &self.execution_id, &self.queue] {
            put_bytes(&mut bytes, text.as_bytes());
        }
        bytes.push(u8::from(self.started_at.is_some()));
        bytes.extend(self.started_at.unwrap_or(0.0).to_le_bytes());
        bytes.extend(self.working_seconds.to_le_bytes());
        bytes.push(match self.failure {
            None => 0,
            Some(Kind::Failure(Failure::Failed)) => 1,
            Some(Kind::Failure(Failure::Stopped)) => 2,
            Some(Kind::Failure(Failure::Abandoned)) => 3,
            Some(Kind::Retry) => 4,
            Some(Kind::MaxRetriesExceeded) => 5,
        });
        let (retries, interval, at_front) = self.retry.unwrap_or_default();
        bytes.push(u8::from(self.retry.is_some()));
        bytes.extend(retries.to_le_bytes());
        bytes.extend(interval.to_le_bytes());
        bytes.push(u8::from(at_front));
        bytes.push(u8::from(self.return_value.is_some()));
        put_bytes(&mut bytes, self.return_value.as_deref().unwrap_or_default());
        put_bytes(&mut bytes, &self.exc_info);
        put_bytes(&mut bytes, &self.exc_string);
        bytes
    }

    /// An ending from `encode`'s bytes; None when they are not such bytes.
    pub fn decode(bytes: &[u8]) -> Option<PyEnding> {
        let mut reader = Reader(bytes);
        let job_id = reader.text()?;
        let execution_id = reader.text()?;
        let queue = reader.text()?;
        let started = reader.byte()? == 1;
        let started_at = reader.number()?;
        let working_seconds = reader.number()?;
        let failure = match reader.byte()? {
            0 => None,
            1 => Some(Kind::Failure(Failure::Failed)),
            2 => Some(Kind::Failure(Failure::Stopped)),
            3 => Some(Kind::Failure(Failure::Abandoned)),
            4 => Some(Kind::Retry),
            5 => Some(Kind::MaxRetriesExceeded),
            _ => return None,
        };
        let has_retry = reader.byte()? == 1;
        let retries = u32::from_le_bytes(reader.take(4)?.try_into().ok()?);
        let interval = u64::from_le_bytes(reader.take(8)?.try_into().ok()?);
        let at_front = reader.byte()? == 1;
        let has_value = reader.byte()? == 1;
        let return_value = reader.bytes()?;
        let exc_info = reader.bytes()?;
        let exc_string = reader.bytes()?;
        reader.0.is_empty().then_some(PyEnding {
            job_id,
            execution_id,
            queue,
            started_at: started.then_some(started_at),
            working_seconds,
            failure,
            return_value: has_value.then_some(return_value),
            exc_info,
            exc_string,
            retry: has_retry.then_some((retries, interval, at_front)),
        })
    }
}

#[pymethods]
impl PyEnding {
    #[new]
    #[pyo3(signature = (job_id, execution_id, queue, started_at, working_seconds, failure=None, return_value=None, exc_info=None, exc_string=None, retry=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        job_id: String,
        execution_id: String,
        queue: String,
        started_at: Option<f64>,
        working_seconds: f64,
        failure: Option<&str>,
        return_value: Option<Vec<u8>>,
        exc_info: Option<Vec<u8>>,
        exc_string: Option<Vec<u8>>,
        retry: Option<RetryTuple>,
    ) -> PyResult<PyEnding> {
        let failure = failure.map(Kind::parse).transpose()?;
        let returned = matches!(failure, Some(Kind::Retry | Kind::MaxRetriesExceeded));
        if returned && return_value.is_none() {
            return Err(PyValueError::new_err(
                "an ending of a returned Retry needs the Retry as its return_value",
            ));
        }
        if (failure == Some(Kind::Retry)) != retry.is_some() {
            return Err(PyValueError::new_err(
                "retry (number_of_retries, interval, at_front) goes with a \"retry\" ending, \
                 and only with one",
            ));
        }
        Ok(PyEnding {
            job_id,
            execution_id,
            queue,
            started_at,
            working_seconds,
            failure,
            return_value,
            exc_info: exc_info.unwrap_or_default(),
            exc_string: exc_string.unwrap_or_default(),
            retry,
        })
    }

    /// None when the job finished, else "failed", "stopped", "abandoned", "retry" or
    /// "max_retries_exceeded".
    #[getter]
    fn failure(&self) -> Option<&'static str> {
        self.failure.map(Kind::as_str)
    }

    #[getter]
    fn return_value<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.return_value
            .as_deref()
            .map(|value| PyBytes::new(py, value))
    }

    #[getter]
    fn exc_info<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.exc_info)
    }

    #[getter]
    fn exc_string<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.exc_string)
    }

    fn __repr__(&self) -> String {
        format!(
            "Ending(job_id={:?}, execution_id={:?}, queue={:?}, failure={:?})",
            self.job_id,
            self.execution_id,
            self.queue,
            self.failure()
        )
    }
}

fn put_bytes(bytes: &mut Vec<u8>, part: &[u8]) {
    let length = u32::try_from(part.len()).unwrap_or(u32::MAX);
    bytes.extend(length.to_le_bytes());
    bytes.extend(&part[..length as usize]);
}

/// Reads what `PyEnding::encode` wrote, front to back.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Option<&[u8]> {
        if self.0.len() < count {
            return None;
        }
        let (part, rest) = self.0.split_at(count);
        self.0 = rest;
        Some(part)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|part| part[0])
    }

    fn number(&mut self) -> Option<f64> {
        let part = self.take(8)?;
        Some(f64::from_le_bytes(part.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let length = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        self.take(length as usize).map(<[u8]>::to_vec)
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
}

/// A step's takes: a job from `queues` (priority order) for each of `execution_ids`, by
/// `worker`, with `heartbeat_ttl` (0: from the job's timeout). `held`: taken ahead, held until
/// each starts. `marked_held`: each stays marked held until a later step records it with its
/// start (a worker that works in batches).
#[pyclass(module = "jobpool._native", name = "Takes", frozen, get_all)]
pub struct PyTakes {
    queues: Vec<String>,
    worker: String,
    execution_ids: Vec<String>,
    heartbeat_ttl: u64,
    held: bool,
    marked_held: bool,
}

impl PyTakes {
    pub fn requests(&self) -> Vec<TakeRequest> {
        self.execution_ids
            .iter()
            .map(|execution_id| TakeRequest {
                queues: self.queues.clone(),
                worker: self.worker.clone(),
                execution_id: execution_id.clone(),
                heartbeat_ttl: self.heartbeat_ttl,
                held: self.held,
                marked_held: self.held || self.marked_held,
            })
            .collect()
    }
}

#[pymethods]
impl PyTakes {
    #[new]
    #[pyo3(signature = (queues, worker, execution_ids, heartbeat_ttl, held=false, marked_held=false))]
    fn new(
        queues: Vec<String>,
        worker: String,
        execution_ids: Vec<String>,
        heartbeat_ttl: u64,
        held: bool,
        marked_held: bool,
    ) -> PyTakes {
        PyTakes {
            queues,
            worker,
            execution_ids,
            heartbeat_ttl,
            held,
            marked_held,
        }
    }
}

/// What a step did: the outcome of each ending it recorded, in order, and the jobs it took.
#[pyclass(module = "jobpool._native", name = "StepResult", frozen, get_all)]
pub struct PyStepResult {
    outcomes: Vec<String>,
    taken: Vec<Py<PyTakenJob>>,
}

pub fn step_result(py: Python<'_>, transition: Transition) -> PyResult<PyStepResult> {
    let taken = transition
        .taken
        .into_iter()
        .map(|taken| taken_job(py, taken))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyStepResult {
        outcomes: transition.outcomes,
        taken,
    })
}
