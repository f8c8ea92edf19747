//! The Python boundary: exposes the pure modules as `jobpool._native`. Network waits run with
//! the GIL released (`Python::detach`); errors become `jobpool.exceptions` classes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::conn::{Address, Redis, Target, TlsOptions};
use crate::error::Error;
use crate::heartbeat::{heartbeat, Beat, Registration, WorkerBeat};
use crate::keys::KeySchema;
use crate::ledger::{format_execution_id, parse_execution_id, Ledger, LedgerError, MAX_HELD};
use crate::lifecycle::{Failure, Traceback};
use crate::reclaim::{reclaim, Reclaimed};
use crate::recovery::recover_abandoned;
use crate::step::{self, Ended, Ending, InFlight, Step, TakeSpec, Transition};
use crate::take::{take, TakeRequest, Taken};
use crate::{keys, scripts};

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

/// Every Lua script, as (name, source) pairs.
#[pyfunction]
fn lua_scripts() -> Vec<(&'static str, &'static str)> {
    scripts::SCRIPTS.to_vec()
}

/// A Rust error as the `jobpool.exceptions` class for its kind.
fn to_python(py: Python<'_>, error: Error) -> PyErr {
    let class_name = match error {
        Error::Unavailable(_) => "RedisUnavailable",
        Error::Command(_) => "RedisCommandError",
        Error::Reply(_) => "UnexpectedReply",
    };
    let message = error.to_string();
    match py
        .import("jobpool.exceptions")
        .and_then(|module| module.getattr(class_name))
    {
        Ok(class) => match class.call1((message.clone(),)) {
            Ok(instance) => PyErr::from_value(instance),
            Err(e) => e,
        },
        Err(_) => PyRuntimeError::new_err(message),
    }
}

/// (queue, job id, execution id, heartbeat ttl, job hash as dict of str to bytes).
type PyTaken = (String, String, String, u64, Py<PyDict>);

fn taken_to_python(py: Python<'_>, taken: Taken) -> PyResult<PyTaken> {
    let fields = PyDict::new(py);
    for (name, value) in &taken.fields {
        fields.set_item(name, PyBytes::new(py, value))?;
    }
    Ok((
        taken.queue,
        taken.job_id,
        taken.execution_id,
        taken.heartbeat_ttl,
        fields.unbind(),
    ))
}

/// The takes of a step: (queues, worker, an execution id for each job to take, heartbeat ttl,
/// whether they are taken ahead, held until each starts; whether they are marked held until a
/// later step marks them started, as a worker that works in batches takes).
type BatchTake = (Vec<String>, String, Vec<String>, u64, bool, bool);

/// An ended execution to record: (job id, execution id, queue, started at, working seconds,
/// failure: None when it finished, else "failed", "stopped" or "released"; return value (base64
/// of the serialized value, None for None), exc_info, exc_string).
type Record = (
    String,
    String,
    String,
    Option<f64>,
    f64,
    Option<String>,
    Option<Vec<u8>>,
    Vec<u8>,
    Vec<u8>,
);

fn failure_of(failure: &str) -> PyResult<Failure> {
    match failure {
        "failed" => Ok(Failure::Failed),
        "stopped" => Ok(Failure::Stopped),
        "abandoned" => Ok(Failure::Abandoned),
        "released" => Ok(Failure::Released),
        other => Err(PyValueError::new_err(format!(
            "failure must be failed, stopped, abandoned or released, not {other:?}"
        ))),
    }
}

struct State {
    redis: Redis,
    keys: KeySchema,
    /// A step sent with `defer=True`, until `collect` reads what it did.
    in_flight: Option<InFlight>,
    /// The execution id of the last take sent: a take that reuses it is the caller's retry.
    last_take: Option<String>,
}

impl State {
    /// Marks `step`'s takes as a repeat when they reuse the last take's execution id.
    fn note_take(&mut self, step: &mut Step) {
        let Some(first) = step.takes.first() else {
            return;
        };
        let repeat = self.last_take.as_deref() == Some(first.execution_id.as_str());
        self.last_take = Some(first.execution_id.clone());
        for take in &mut step.takes {
            take.repeat = repeat;
        }
    }
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
        outcome.map_err(|error| to_python(py, error))
    }

    /// Runs `step`, or with `defer` sends it for `collect` to read (returning None).
    fn run_step(
        &self,
        py: Python<'_>,
        mut step: Step,
        defer: bool,
    ) -> PyResult<Option<Transition>> {
        if defer {
            self.with_state(py, |state| {
                if state.in_flight.is_some() {
                    return Err(Error::Command(
                        "a deferred step is in flight: collect it first".into(),
                    ));
                }
                state.note_take(&mut step);
                state.in_flight = Some(step::send(&mut state.redis, &state.keys, step));
                Ok(())
            })?;
            return Ok(None);
        }
        self.with_state(py, |state| {
            state.note_take(&mut step);
            step::run(&mut state.redis, &state.keys, &step)
        })
        .map(Some)
    }
}

/// (the outcome of each record, the jobs taken).
type PyBatch = (Vec<String>, Vec<PyTaken>);

/// A worker's registration, for `heartbeat`: its queues, and its hash's fields (but `birth` and
/// `last_heartbeat`) as (field, value) pairs.
type PyRegistration = (Vec<String>, Vec<(String, String)>);

fn batch_to_python(py: Python<'_>, transition: Transition) -> PyResult<PyBatch> {
    let taken = transition
        .taken
        .into_iter()
        .map(|taken| taken_to_python(py, taken))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((transition.outcomes, taken))
}

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
                in_flight: None,
                last_take: None,
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
    ) -> PyResult<Option<PyTaken>> {
        let wait = wait.map(|seconds| Duration::from_secs_f64(seconds.max(0.0)));
        let taken = self.with_state(py, |state| {
            let request = TakeRequest {
                queues: &queues,
                worker: &worker,
                execution_id: &execution_id,
                heartbeat_ttl,
                held: false,
                marked_held,
            };
            take(&mut state.redis, &state.keys, &request, wait)
        })?;
        taken.map(|taken| taken_to_python(py, taken)).transpose()
    }

    /// Records a failed, stopped or abandoned execution (`failure`), retrying it when it has
    /// retries left, or puts back a held job that never started ("released"). Returns the
    /// outcome. `running`: the worker runs another job meanwhile (its state stays busy).
    #[pyo3(signature = (job_id, execution_id, queue, worker, started_at, working_seconds, failure, exc_info, exc_string, running=false))]
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &self,
        py: Python<'_>,
        job_id: String,
        execution_id: String,
        queue: String,
        worker: Option<String>,
        started_at: Option<f64>,
        working_seconds: f64,
        failure: &str,
        exc_info: Vec<u8>,
        exc_string: Vec<u8>,
        running: bool,
    ) -> PyResult<String> {
        let ending = Ending::Failed {
            failure: failure_of(failure)?,
            exc_info,
            exc_string,
        };
        let ended = Ended {
            job_id,
            execution_id,
            queue,
            worker,
            started_at,
            working_seconds,
            marks_start: false,
            ending,
        };
        let step = Step {
            records: vec![ended],
            running,
            ..Step::default()
        };
        let transition = self.run_step(py, step, false)?;
        transition
            .and_then(|transition| transition.outcomes.into_iter().next())
            .ok_or_else(|| PyRuntimeError::new_err("a record returned no outcome"))
    }

    /// A worker's step, in one round trip and one script run: records the ended executions of
    /// `records` (with `mark_started`, each marked started first, at its start: a worker that
    /// works in batches takes its jobs marked held and writes their start with their record),
    /// and takes a job for each execution id of `take`. `running`: a job runs while the step is
    /// in flight (the worker stays busy). Returns (the outcome of each record, the jobs taken);
    /// with `defer`, sends the step and returns None: `collect` returns them.
    #[pyo3(signature = (worker, records, take, default_result_ttl, running=false, defer=false, mark_started=false))]
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        py: Python<'_>,
        worker: String,
        records: Vec<Record>,
        take: Option<BatchTake>,
        default_result_ttl: i64,
        running: bool,
        defer: bool,
        mark_started: bool,
    ) -> PyResult<Option<PyBatch>> {
        let records = records
            .into_iter()
            .map(|record| {
                let (
                    job_id,
                    execution_id,
                    queue,
                    started_at,
                    working_seconds,
                    failure,
                    value,
                    exc_info,
                    exc_string,
                ) = record;
                let ending = match failure {
                    None => Ending::Finished {
                        return_value: value,
                        default_result_ttl,
                    },
                    Some(failure) => Ending::Failed {
                        failure: failure_of(&failure)?,
                        exc_info,
                        exc_string,
                    },
                };
                Ok(Ended {
                    job_id,
                    execution_id,
                    queue,
                    worker: Some(worker.clone()),
                    started_at,
                    working_seconds,
                    marks_start: mark_started,
                    ending,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let takes = match take {
            None => Vec::new(),
            Some((queues, taker, execution_ids, heartbeat_ttl, held, marked_held)) => execution_ids
                .into_iter()
                .map(|execution_id| TakeSpec {
                    queues: queues.clone(),
                    worker: taker.clone(),
                    execution_id,
                    heartbeat_ttl,
                    held,
                    marked_held: held || marked_held,
                    repeat: false,
                })
                .collect(),
        };
        let step = Step {
            records,
            takes,
            running,
        };
        self.run_step(py, step, defer)?
            .map(|transition| batch_to_python(py, transition))
            .transpose()
    }

    /// What the step sent with `defer=True` did: (the outcome of each record, the jobs taken).
    /// If its reply was lost, the step is sent again (it is safe to repeat).
    fn collect(&self, py: Python<'_>) -> PyResult<PyBatch> {
        let transition = self.with_state(py, |state| {
            let Some(in_flight) = state.in_flight.take() else {
                return Err(Error::Command("no deferred step to collect".into()));
            };
            let collected = step::collect(&mut state.redis, &state.keys, &in_flight);
            if collected.is_err() {
                state.in_flight = Some(in_flight); // collect again later
            }
            collected
        })?;
        batch_to_python(py, transition)
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

    /// Fails or retries the executions of `queues` whose heartbeat lapsed; returns (queue,
    /// job id, execution id, outcome) for each.
    fn recover_abandoned(
        &self,
        py: Python<'_>,
        queues: Vec<String>,
        exc_info: Vec<u8>,
        exc_string: Vec<u8>,
    ) -> PyResult<Vec<(String, String, String, String)>> {
        let recovered = self.with_state(py, |state| {
            let traceback = Traceback {
                exc_info: &exc_info,
                exc_string: &exc_string,
            };
            recover_abandoned(&mut state.redis, &state.keys, &queues, &traceback)
        })?;
        Ok(recovered
            .into_iter()
            .map(|r| (r.queue, r.job_id, r.execution_id, r.outcome))
            .collect())
    }
}

fn ledger_error(error: LedgerError) -> PyErr {
    match error {
        LedgerError::NoSuchSlot(_) => PyKeyError::new_err(error.to_string()),
        LedgerError::BadExecutionId(_)
        | LedgerError::AlreadyHolding(_)
        | LedgerError::BadBatch(_) => PyValueError::new_err(error.to_string()),
        LedgerError::Map(_) => PyRuntimeError::new_err(error.to_string()),
    }
}

/// The pool's ledger (see `rust/ledger.rs`): what each worker holds and runs, in memory the
/// supervisor shares with the workers it forks. Make it before forking.
#[pyclass(module = "jobpool._native", name = "Ledger", frozen)]
struct PyLedger {
    ledger: Ledger,
}

#[pymethods]
impl PyLedger {
    #[new]
    fn new(slots: usize) -> PyResult<PyLedger> {
        Ledger::new(slots)
            .map(|ledger| PyLedger { ledger })
            .map_err(ledger_error)
    }

    fn __len__(&self) -> usize {
        self.ledger.len()
    }

    /// Worker: it is about to take the jobs of `execution_ids` (32 hex digits each) ahead, to
    /// start in that order.
    fn hold(&self, slot: usize, execution_ids: Vec<String>) -> PyResult<()> {
        let ids = execution_ids
            .iter()
            .map(|id| parse_execution_id(id))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ledger_error)?;
        self.ledger.hold(slot, &ids).map_err(ledger_error)
    }

    /// Worker: starts the next job it holds; False when the supervisor took it back first.
    fn start_held(&self, slot: usize) -> PyResult<bool> {
        self.ledger.start_held(slot).map_err(ledger_error)
    }

    /// Worker: its take ahead brought `taken` jobs, fewer than it held places for; False when
    /// the supervisor took the hold back first.
    fn shrink_held(&self, slot: usize, taken: usize) -> PyResult<bool> {
        self.ledger.shrink_held(slot, taken).map_err(ledger_error)
    }

    /// Worker: gives up the jobs it holds (it puts them back itself); False when the supervisor
    /// took them back first.
    fn drop_held(&self, slot: usize) -> PyResult<bool> {
        self.ledger.drop_held(slot).map_err(ledger_error)
    }

    /// Supervisor: (token, execution ids not started, epoch seconds the running job began) of
    /// the jobs the worker in `slot` holds, or None.
    fn held(&self, slot: usize) -> PyResult<Option<(u64, Vec<String>, f64)>> {
        Ok(self.ledger.held(slot).map_err(ledger_error)?.map(|held| {
            (
                held.token,
                held.execution_ids.iter().map(format_execution_id).collect(),
                held.since as f64 / 1e6,
            )
        }))
    }

    /// Supervisor: takes back the jobs of the hold `token` not started; False when the worker
    /// started one or dropped them first.
    fn reclaim(&self, slot: usize, token: u64) -> PyResult<bool> {
        self.ledger.reclaim(slot, token).map_err(ledger_error)
    }

    /// Supervisor: asks the worker in `slot` to stop `execution_id` (then signal it).
    fn request_stop(&self, slot: usize, execution_id: &str) -> PyResult<()> {
        let id = parse_execution_id(execution_id).map_err(ledger_error)?;
        self.ledger.request_stop(slot, &id).map_err(ledger_error)
    }

    /// Worker: whether its supervisor asked it to stop `execution_id`.
    fn stop_requested(&self, slot: usize, execution_id: &str) -> PyResult<bool> {
        let id = parse_execution_id(execution_id).map_err(ledger_error)?;
        self.ledger.stop_requested(slot, &id).map_err(ledger_error)
    }

    /// Worker: appends `entry` (a job that ended, its record not sent yet) to its log of ended
    /// jobs; False when it does not fit (send the record before starting another job).
    fn note_ended(&self, slot: usize, entry: &[u8]) -> PyResult<bool> {
        self.ledger.note_ended(slot, entry).map_err(ledger_error)
    }

    /// Worker: forgets the first `count` entries of its log (their records are written).
    fn forget_ended(&self, slot: usize, count: usize) -> PyResult<()> {
        self.ledger.forget_ended(slot, count).map_err(ledger_error)
    }

    /// Supervisor, once the worker in `slot` is gone: the entries of its log of ended jobs.
    fn ended<'py>(&self, py: Python<'py>, slot: usize) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        Ok(self
            .ledger
            .ended(slot)
            .map_err(ledger_error)?
            .iter()
            .map(|entry| PyBytes::new(py, entry))
            .collect())
    }

    /// Supervisor: empties the slot of a worker that is gone.
    fn clear(&self, slot: usize) -> PyResult<()> {
        self.ledger.clear(slot).map_err(ledger_error)
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_HELD", MAX_HELD)?;
    m.add_function(wrap_pyfunction!(key_templates, m)?)?;
    m.add_function(wrap_pyfunction!(render_key, m)?)?;
    m.add_function(wrap_pyfunction!(lua_scripts, m)?)?;
    m.add_class::<Core>()?;
    m.add_class::<PyLedger>()?;
    Ok(())
}
