//! The typed records that cross the boundary: a taken job, an ending to record, a step's takes
//! and what a step did. Frozen classes with read-only attributes; conversions only.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::lifecycle::{Again, Failure, RetryReturned};
use crate::step::{Ended, Ending, TakeSpec, Transition};
use crate::take::Taken;

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
            "released" => Ok(Kind::Failure(Failure::Released)),
            "retry" => Ok(Kind::Retry),
            "max_retries_exceeded" => Ok(Kind::MaxRetriesExceeded),
            other => Err(PyValueError::new_err(format!(
                "failure must be failed, stopped, abandoned, released, retry or \
                 max_retries_exceeded, not {other:?}"
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
/// base64 of the serialized value, None for None), or failed, stopped, abandoned or released
/// (a held job that never started), with its traceback as RQ stores it; or a `Retry` the job
/// returned (in `return_value`): "retry", run again as `retry` says, or
/// "max_retries_exceeded". Picklable: a pool worker keeps the endings it has not recorded yet
/// in its ledger.
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

    /// None when the job finished, else "failed", "stopped", "abandoned", "released", "retry"
    /// or "max_retries_exceeded".
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

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let this = slf.get();
        let arguments = (
            this.job_id.as_str(),
            this.execution_id.as_str(),
            this.queue.as_str(),
            this.started_at,
            this.working_seconds,
            this.failure(),
            this.return_value(py),
            this.exc_info(py),
            this.exc_string(py),
            this.retry,
        )
            .into_pyobject(py)?;
        Ok((slf.get_type().into_any(), arguments))
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
    pub fn specs(&self) -> Vec<TakeSpec> {
        self.execution_ids
            .iter()
            .map(|execution_id| TakeSpec {
                queues: self.queues.clone(),
                worker: self.worker.clone(),
                execution_id: execution_id.clone(),
                heartbeat_ttl: self.heartbeat_ttl,
                held: self.held,
                marked_held: self.held || self.marked_held,
                repeat: false,
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
