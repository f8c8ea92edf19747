//! The Python boundary: exposes the pure modules as `jobpool._native`. Network waits run with
//! the GIL released (`Python::detach`); errors become `jobpool.exceptions` classes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

mod ledger;
mod records;

use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::conn::{Address, Redis, Target, TlsOptions};
use crate::error::Error;
use crate::heartbeat::{heartbeat, Beat, Registration, WorkerBeat};
use crate::keys::KeySchema;
use crate::ledger::MAX_HELD;
use crate::lifecycle::Traceback;
use crate::put_back::{reclaim, release, Held, Reclaimed};
use crate::recovery::recover_abandoned;
use crate::step::{Step, Stepper, Transition};
use crate::take::{take, TakeRequest, DEFAULT_JOB_TIMEOUT};
use crate::{keys, scripts};
use ledger::PyLedger;
use records::{step_result, taken_job, PyEnding, PyStepResult, PyTakenJob, PyTakes};

/// Every key template, as a dict of name to template.
#[pyfunction]
fn key_templates() -> Vec<(&'static str, &'static str)> {
    keys::TEMPLATES.to_vec()
}

/// Renders the key `name` under `prefix` with the placeholder values in `values`.
#[pyfunction]
fn render_key(name: &str, prefix: &str, values: Vec<(String, String)>) -> PyResult<String> {
    let pairs: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    keys::render(name, prefix, &pairs).map_err(|e| PyKeyError::new_err(e.to_string()))
}

/// The templates the scripts that release dependents take, under `prefix` (the library's
/// `release_dependents`: job hash, dependencies set, queue list, deferred registry, wake-up list).
#[pyfunction]
fn dependents_templates(prefix: &str) -> [String; 5] {
    KeySchema::new(prefix).dependents_templates()
}

/// The rate-limit templates the scripts take, under `prefix` (config hash, allowed set,
/// rate_limited set, and the set of rate limits).
#[pyfunction]
fn rate_limit_templates(prefix: &str) -> [String; 4] {
    KeySchema::new(prefix).rate_limit_templates()
}

/// Every Lua script, as (name, source) pairs.
#[pyfunction]
fn lua_scripts() -> Vec<(&'static str, &'static str)> {
    scripts::SCRIPTS.to_vec()
}

pyo3::import_exception!(jobpool.exceptions, RedisUnavailable);
pyo3::import_exception!(jobpool.exceptions, RedisCommandError);
pyo3::import_exception!(jobpool.exceptions, UnexpectedReply);

/// A Rust error as the `jobpool.exceptions` class for its kind.
fn to_python(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::Unavailable(_) => RedisUnavailable::new_err(message),
        Error::Command(_) => RedisCommandError::new_err(message),
        Error::Reply(_) => UnexpectedReply::new_err(message),
    }
}

struct State {
    redis: Redis,
    keys: KeySchema,
    steps: Stepper,
}

/// One process's connection to Redis and the worker operations on it. Opened lazily, reopened
/// after a fork; safe to create before forking.
#[pyclass(module = "jobpool._native")]
struct Core {
    state: Mutex<State>,
}

impl Core {
    fn with_state<T: Send>(
        &self,
        py: Python<'_>,
        operation: impl FnOnce(&mut State) -> Result<T, Error> + Send,
    ) -> PyResult<T> {
        let outcome = py.detach(|| {
            let mut state = self
                .state
                .lock()
                .map_err(|_| Error::Unavailable("the connection's lock was poisoned".into()))?;
            operation(&mut state)
        });
        outcome.map_err(to_python)
    }

    /// Runs `step` and returns what it did.
    fn run_step(&self, py: Python<'_>, step: Step) -> PyResult<Transition> {
        self.with_state(py, |state| {
            state.steps.run(&mut state.redis, &state.keys, step)
        })
    }
}

/// A worker's registration, for `heartbeat`: its queues, and its hash's fields (but `birth` and
/// `last_heartbeat`) as (field, value) pairs.
type PyRegistration = (Vec<String>, Vec<(String, String)>);

#[pymethods]
impl Core {
    /// host/port for TCP (with `tls`: rediss://), or unix_path for a unix socket; the rest
    /// as redis-py parsed it. TLS certificates are PEM bytes.
    #[new]
    #[pyo3(signature = (prefix, host=None, port=6379, unix_path=None, db=0, username=None, password=None, tls=false, tls_verify=true, tls_ca_certificate=None, tls_client_certificate=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        prefix: String,
        host: Option<String>,
        port: u16,
        unix_path: Option<String>,
        db: i64,
        username: Option<String>,
        password: Option<String>,
        tls: bool,
        tls_verify: bool,
        tls_ca_certificate: Option<Vec<u8>>,
        tls_client_certificate: Option<(Vec<u8>, Vec<u8>)>,
    ) -> PyResult<Core> {
        let address = match (host, unix_path, tls) {
            (_, Some(path), _) => Address::Unix(PathBuf::from(path)),
            (Some(host), None, false) => Address::Tcp { host, port },
            (Some(host), None, true) => Address::Tls {
                host,
                port,
                tls: TlsOptions {
                    verify: tls_verify,
                    ca_certificate: tls_ca_certificate,
                    client_certificate: tls_client_certificate,
                },
            },
            (None, None, _) => return Err(PyValueError::new_err("give a host or a unix_path")),
        };
        let target = Target {
            address,
            db,
            username,
            password,
        };
        Ok(Core {
            state: Mutex::new(State {
                redis: Redis::new(target),
                keys: KeySchema::new(prefix),
                steps: Stepper::default(),
            }),
        })
    }

    /// Opens this process's connection and loads the scripts now, rather than at the first call
    /// (a pool worker does, before it says it is ready, so its first job waits for neither).
    fn connect(&self, py: Python<'_>) -> PyResult<()> {
        self.with_state(py, |state| state.redis.connect())
    }

    /// Requests sent to Redis and answered so far (a pipeline counts once).
    #[getter]
    fn round_trips(&self) -> PyResult<u64> {
        self.state
            .lock()
            .map(|state| state.redis.round_trips())
            .map_err(|_| PyRuntimeError::new_err("the connection's lock was poisoned"))
    }

    /// Takes the next job from `queues` (priority order), or returns None. With `wait`
    /// (seconds, about 1), blocks that long at most when every queue is empty. `marked_held`:
    /// the job stays marked held until its record marks it started (a worker that works in
    /// batches).
    #[pyo3(signature = (queues, worker, execution_id, heartbeat_ttl, wait=None, marked_held=false))]
    #[allow(clippy::too_many_arguments)]
    fn take(
        &self,
        py: Python<'_>,
        queues: Vec<String>,
        worker: String,
        execution_id: String,
        heartbeat_ttl: u64,
        wait: Option<f64>,
        marked_held: bool,
    ) -> PyResult<Option<Py<PyTakenJob>>> {
        let wait = wait.map(|seconds| Duration::from_secs_f64(seconds.max(0.0)));
        let taken = self.with_state(py, |state| {
            let request = TakeRequest {
                queues,
                worker,
                execution_id,
                heartbeat_ttl,
                held: false,
                marked_held,
            };
            take(&mut state.redis, &state.keys, &request, wait)
        })?;
        taken.map(|taken| taken_job(py, taken)).transpose()
    }

    /// Records a failed, stopped or abandoned execution (retried when it has retries left), or
    /// a returned Retry; returns the outcome. `running`: `worker` runs another job meanwhile
    /// (its state stays busy). A finished job is recorded by `step`.
    #[pyo3(signature = (worker, ending, running=false))]
    fn fail(
        &self,
        py: Python<'_>,
        worker: Option<String>,
        ending: PyRef<'_, PyEnding>,
        running: bool,
    ) -> PyResult<String> {
        if !ending.failed() {
            return Err(PyValueError::new_err(
                "fail records a failure: a finished job is recorded by step",
            ));
        }
        let step = Step {
            records: vec![ending.ended(worker, false, 0)],
            running,
            ..Step::default()
        };
        self.run_step(py, step)?
            .outcomes
            .into_iter()
            .next()
            .ok_or_else(|| UnexpectedReply::new_err("a record returned no outcome"))
    }

    /// A worker's step, in one round trip and one script run: records `endings` (with
    /// `mark_started`, each marked started first, at its start: a worker that works in batches
    /// takes its jobs marked held and writes their start with their record), then `takes`.
    /// `running`: a job runs while the step is in flight (the worker stays busy). With `defer`,
    /// sends the step and returns None: `collect` returns what it did.
    #[pyo3(signature = (worker, endings, takes, default_result_ttl, running=false, defer=false, mark_started=false))]
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        py: Python<'_>,
        worker: String,
        endings: Vec<PyRef<'_, PyEnding>>,
        takes: Option<PyRef<'_, PyTakes>>,
        default_result_ttl: i64,
        running: bool,
        defer: bool,
        mark_started: bool,
    ) -> PyResult<Option<PyStepResult>> {
        let step = Step {
            records: endings
                .iter()
                .map(|ending| ending.ended(Some(worker.clone()), mark_started, default_result_ttl))
                .collect(),
            takes: takes.map(|takes| takes.requests()).unwrap_or_default(),
            running,
        };
        if defer {
            self.with_state(py, |state| {
                state.steps.send(&mut state.redis, &state.keys, step)
            })?;
            return Ok(None);
        }
        step_result(py, self.run_step(py, step)?).map(Some)
    }

    /// What the step sent with `defer=True` did. If its reply was lost, the step is sent again
    /// (it is safe to repeat).
    fn collect(&self, py: Python<'_>) -> PyResult<PyStepResult> {
        let transition = self.with_state(py, |state| {
            state.steps.collect(&mut state.redis, &state.keys)
        })?;
        step_result(py, transition)
    }

    /// Refreshes executions (job id, execution id, queue, ttl, worker, started at) and workers
    /// (name, ttl) in one round trip, writing RQ's records of an execution at its first beat;
    /// returns the `<job_id>:<execution_id>` of executions no longer running. A
    /// worker named in `registrations` (name to queues and hash fields) is registered again if
    /// its registration is gone.
    #[pyo3(signature = (executions, workers, registrations=None))]
    fn heartbeat(
        &self,
        py: Python<'_>,
        executions: Vec<(String, String, String, u64, String, f64)>,
        workers: Vec<(String, u64)>,
        registrations: Option<HashMap<String, PyRegistration>>,
    ) -> PyResult<Vec<String>> {
        let registrations = registrations.unwrap_or_default();
        self.with_state(py, |state| {
            let beats: Vec<Beat<'_>> = executions
                .iter()
                .map(
                    |(job_id, execution_id, queue, ttl, worker, started_at)| Beat {
                        job_id,
                        execution_id,
                        queue,
                        ttl: *ttl,
                        worker,
                        started_at: *started_at,
                    },
                )
                .collect();
            let workers: Vec<WorkerBeat<'_>> = workers
                .iter()
                .map(|(name, ttl)| WorkerBeat {
                    name,
                    ttl: *ttl,
                    registration: registrations
                        .get(name)
                        .map(|(queues, fields)| Registration { queues, fields }),
                })
                .collect();
            heartbeat(&mut state.redis, &state.keys, &beats, &workers)
        })
    }

    /// Puts back `job_id`, which `worker` took ahead from `queue` under `execution_id` and never
    /// started (it is stopping, or died holding it): "released" (back at the front of its
    /// queue), "stale" (no longer started: put back or taken back already, or canceled) or
    /// "deleted" (its job hash is gone).
    fn release(
        &self,
        py: Python<'_>,
        worker: String,
        job_id: String,
        execution_id: String,
        queue: String,
    ) -> PyResult<String> {
        self.with_state(py, |state| {
            let held = Held {
                worker: &worker,
                job_id: &job_id,
                execution_id: &execution_id,
                queue: &queue,
            };
            release(&mut state.redis, &state.keys, &held)
        })
    }

    /// Puts back the job `worker` took ahead from `queues` under `execution_id` (the ledger gave
    /// the caller its hold): ("released", job id, queue), or ("absent", None, None) when no
    /// queue has it (the take will take nothing when it runs).
    fn reclaim(
        &self,
        py: Python<'_>,
        worker: String,
        queues: Vec<String>,
        execution_id: String,
    ) -> PyResult<(String, Option<String>, Option<String>)> {
        let reclaimed = self.with_state(py, |state| {
            reclaim(
                &mut state.redis,
                &state.keys,
                &worker,
                &queues,
                &execution_id,
            )
        })?;
        Ok(match reclaimed {
            Reclaimed::Released { job_id, queue } => ("released".into(), Some(job_id), Some(queue)),
            Reclaimed::Absent => ("absent".into(), None, None),
        })
    }

    /// Fails or retries the executions of `queues` whose heartbeat lapsed (or lapses by
    /// `lapsed_by`, epoch seconds); returns (queue, job id, execution id, outcome) for each.
    #[pyo3(signature = (queues, exc_info, exc_string, lapsed_by=None))]
    fn recover_abandoned(
        &self,
        py: Python<'_>,
        queues: Vec<String>,
        exc_info: Vec<u8>,
        exc_string: Vec<u8>,
        lapsed_by: Option<f64>,
    ) -> PyResult<Vec<(String, String, String, String)>> {
        let recovered = self.with_state(py, |state| {
            let traceback = Traceback {
                exc_info: &exc_info,
                exc_string: &exc_string,
            };
            recover_abandoned(
                &mut state.redis,
                &state.keys,
                &queues,
                &traceback,
                lapsed_by,
            )
        })?;
        Ok(recovered
            .into_iter()
            .map(|r| (r.queue, r.job_id, r.execution_id, r.outcome))
            .collect())
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_HELD", MAX_HELD)?;
    m.add("DEFAULT_JOB_TIMEOUT", DEFAULT_JOB_TIMEOUT)?;
    m.add_function(wrap_pyfunction!(key_templates, m)?)?;
    m.add_function(wrap_pyfunction!(render_key, m)?)?;
    m.add("ID_MARK", keys::ID_MARK)?;
    m.add_function(wrap_pyfunction!(dependents_templates, m)?)?;
    m.add_function(wrap_pyfunction!(rate_limit_templates, m)?)?;
    m.add_function(wrap_pyfunction!(lua_scripts, m)?)?;
    m.add_class::<Core>()?;
    m.add_class::<PyLedger>()?;
    m.add_class::<PyTakenJob>()?;
    m.add_class::<PyEnding>()?;
    m.add_class::<PyTakes>()?;
    m.add_class::<PyStepResult>()?;
    Ok(())
}
