//! The pool's ledger for Python (see `rust/ledger.rs`): conversions only.

use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use super::records::PyEnding;
use crate::ledger::{format_execution_id, parse_execution_id, Ledger, LedgerError};

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
pub struct PyLedger {
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

    /// Worker: appends `ending` (a job that ended, its record not sent yet) to its log of
    /// ended jobs; False when it does not fit (send the record before starting another job).
    fn note_ended(&self, slot: usize, ending: PyRef<'_, PyEnding>) -> PyResult<bool> {
        self.ledger
            .note_ended(slot, &ending.encode())
            .map_err(ledger_error)
    }

    /// Worker: forgets the first `count` entries of its log (their records are written).
    fn forget_ended(&self, slot: usize, count: usize) -> PyResult<()> {
        self.ledger.forget_ended(slot, count).map_err(ledger_error)
    }

    /// Supervisor, once the worker in `slot` is gone: the endings in its log of ended jobs.
    fn ended(&self, slot: usize) -> PyResult<Vec<PyEnding>> {
        self.ledger
            .ended(slot)
            .map_err(ledger_error)?
            .iter()
            .map(|entry| {
                PyEnding::decode(entry).ok_or_else(|| {
                    PyValueError::new_err(format!("slot {slot}: an unreadable ended job"))
                })
            })
            .collect()
    }

    /// Supervisor: empties the slot of a worker that is gone.
    fn clear(&self, slot: usize) -> PyResult<()> {
        self.ledger.clear(slot).map_err(ledger_error)
    }
}
