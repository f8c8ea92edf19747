//! The end of an execution: how it ended (`Ended`), and the commands that record it finished
//! (`lua/finish.lua`), or failed, stopped or abandoned (`lua/fail.lua`, which also retries), or
//! ended by returning a `Retry` (`lua/fail.lua` too). `step` sends them, with the worker's next
//! take in the same script run. A job taken ahead and never started did not end: it is put
//! back (`put_back`).
//!
//! Every transition first checks that the execution is still in the started registry, so a
//! call repeated after a lost reply, or racing the recovery of an abandoned job, is applied once.

use crate::clock::{format_timestamp, Now};
use crate::keys::KeySchema;
use crate::scripts::ScriptCall;

/// A running execution, as its worker knows it.
#[derive(Debug, Clone)]
pub struct Execution<'a> {
    pub job_id: &'a str,
    pub execution_id: &'a str,
    pub queue: &'a str,
    /// None when the worker is not known (an abandoned execution found by recovery).
    pub worker: Option<&'a str>,
    /// When it started (epoch seconds), and how long it ran.
    pub started_at: Option<f64>,
    pub working_seconds: f64,
    /// Its start is written with its record (a worker that works in batches took its job
    /// marked held: see `lua/take.lua`).
    pub marks_start: bool,
}

/// Why an execution did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The job raised (or timed out): retried if it has retries left.
    Failed,
    /// Stopped on request: never retried.
    Stopped,
    /// Its worker died: retried if it has retries left. Applies only if the execution's
    /// heartbeat has lapsed and its job is still started (a job still held, which never
    /// started, is put back at its queue's front instead: "released").
    Abandoned,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Failed => "failed",
            Failure::Stopped => "stopped",
            Failure::Abandoned => "abandoned",
        }
    }
}

/// How a job that returned a `Retry` runs again, as RQ 3.0's worker decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Again {
    /// The job's `number_of_retries` once this retry is counted.
    pub number_of_retries: u32,
    /// Seconds until it runs again (in the scheduled registry); 0: onto its queue at once.
    pub interval: u64,
    /// Onto the head of its queue.
    pub at_front: bool,
}

/// A job that returned a `Retry`: it runs `again`, or (None) its Retry's max was reached and
/// it fails. `retry` is the value, as its result stores it (base64 of the serialized value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryReturned {
    pub retry: Vec<u8>,
    pub again: Option<Again>,
}

/// The traceback, encoded as RQ stores it: zlib for the job hash, base64 of zlib for results.
#[derive(Debug, Clone)]
pub struct Traceback<'a> {
    pub exc_info: &'a [u8],
    pub exc_string: &'a [u8],
}

/// How a job ended.
#[derive(Debug, Clone)]
pub enum Ending {
    /// `return_value`: base64 of the serialized value, None for None.
    Finished {
        return_value: Option<Vec<u8>>,
        default_result_ttl: i64,
    },
    Failed {
        failure: Failure,
        exc_info: Vec<u8>,
        exc_string: Vec<u8>,
    },
    /// It returned a `Retry`.
    Retry(RetryReturned),
}

/// An execution that ended, with owned parts (a deferred step outlives the call that sent it).
#[derive(Debug, Clone)]
pub struct Ended {
    pub job_id: String,
    pub execution_id: String,
    pub queue: String,
    pub worker: Option<String>,
    pub started_at: Option<f64>,
    pub working_seconds: f64,
    /// Its start is written with its record (see `Execution::marks_start`).
    pub marks_start: bool,
    pub ending: Ending,
}

impl Ended {
    fn execution(&self) -> Execution<'_> {
        Execution {
            job_id: &self.job_id,
            execution_id: &self.execution_id,
            queue: &self.queue,
            worker: self.worker.as_deref(),
            started_at: self.started_at,
            working_seconds: self.working_seconds,
            marks_start: self.marks_start,
        }
    }

    /// The call of `lua/finish.lua` or `lua/fail.lua` that records it; `takes_next` when the
    /// worker stays busy (it takes its next job in the same round trip, or runs one).
    pub fn record_call(&self, keys: &KeySchema, now: &Now, takes_next: bool) -> ScriptCall {
        let execution = self.execution();
        match &self.ending {
            Ending::Finished {
                return_value,
                default_result_ttl,
            } => finish_call(
                keys,
                &execution,
                return_value.as_deref(),
                *default_result_ttl,
                now,
                takes_next,
            ),
            Ending::Failed {
                failure,
                exc_info,
                exc_string,
            } => {
                let traceback = Traceback {
                    exc_info,
                    exc_string,
                };
                fail_call(keys, &execution, *failure, &traceback, now, takes_next)
            }
            Ending::Retry(returned) => retry_call(keys, &execution, returned, now, takes_next),
        }
    }
}

fn common_args(execution: &Execution<'_>, now: &Now) -> Vec<Vec<u8>> {
    vec![
        execution.job_id.into(),
        execution.execution_id.into(),
        execution.worker.unwrap_or("").into(),
        now.timestamp.clone().into(),
        now.epoch_text().into(),
    ]
}

fn started_at(execution: &Execution<'_>) -> Vec<u8> {
    execution
        .started_at
        .map(|t| format!("{t:.6}").into_bytes())
        .unwrap_or_default()
}

/// The start to write with the record (`lua/finish.lua`'s last argument), or nothing.
fn start_mark(execution: &Execution<'_>) -> Vec<u8> {
    match (execution.marks_start, execution.started_at) {
        (true, Some(epoch)) => format_timestamp((epoch * 1e6) as i64).into_bytes(),
        _ => Vec::new(),
    }
}

fn common_keys(keys: &KeySchema, execution: &Execution<'_>, registry: &str) -> Vec<String> {
    let job_id = execution.job_id;
    vec![
        keys.job(job_id),
        keys.registry("started", execution.queue),
        keys.execution(job_id, execution.execution_id),
        keys.executions(job_id),
        keys.results(job_id),
        keys.registry(registry, execution.queue),
        keys.job_dependents(job_id),
        keys.job_dependencies(job_id),
        keys.queues(),
    ]
}

fn worker_keys(keys: &KeySchema, execution: &Execution<'_>) -> Vec<String> {
    execution
        .worker
        .map(|w| vec![keys.worker(w), keys.worker_executions(w)])
        .unwrap_or_default()
}

/// A call of `finish.lua`.
fn finish_call(
    keys: &KeySchema,
    execution: &Execution<'_>,
    return_value: Option<&[u8]>,
    default_result_ttl: i64,
    now: &Now,
    takes_next: bool,
) -> ScriptCall {
    let mut script_keys = common_keys(keys, execution, "finished");
    script_keys.extend(worker_keys(keys, execution));
    let mut args = common_args(execution, now);
    args.push(default_result_ttl.to_string().into());
    args.push(return_value.unwrap_or_default().to_vec());
    args.push(started_at(execution));
    args.push(format!("{:.6}", execution.working_seconds).into());
    args.push(if takes_next { "1" } else { "0" }.into());
    args.push(start_mark(execution));
    ScriptCall {
        name: "finish",
        keys: script_keys,
        args,
    }
}

/// A call of `fail.lua`.
pub fn fail_call(
    keys: &KeySchema,
    execution: &Execution<'_>,
    failure: Failure,
    traceback: &Traceback<'_>,
    now: &Now,
    takes_next: bool,
) -> ScriptCall {
    fail_script_call(
        keys,
        execution,
        failure.as_str(),
        traceback,
        now,
        takes_next,
    )
}

/// A call of `fail.lua` for a job that returned a `Retry`: "retry", or
/// "max_retries_exceeded" once its retries are used up.
fn retry_call(
    keys: &KeySchema,
    execution: &Execution<'_>,
    returned: &RetryReturned,
    now: &Now,
    takes_next: bool,
) -> ScriptCall {
    let none = Traceback {
        exc_info: b"",
        exc_string: b"",
    };
    let outcome = match returned.again {
        Some(_) => "retry",
        None => "max_retries_exceeded",
    };
    let mut call = fail_script_call(keys, execution, outcome, &none, now, takes_next);
    call.args.push(returned.retry.clone());
    if let Some(again) = returned.again {
        call.args.push(again.number_of_retries.to_string().into());
        call.args.push(again.interval.to_string().into());
        call.args
            .push(if again.at_front { "1" } else { "0" }.into());
    }
    call
}

fn fail_script_call(
    keys: &KeySchema,
    execution: &Execution<'_>,
    outcome: &str,
    traceback: &Traceback<'_>,
    now: &Now,
    takes_next: bool,
) -> ScriptCall {
    let mut script_keys = common_keys(keys, execution, "failed");
    script_keys.push(keys.queue(execution.queue));
    script_keys.push(keys.registry("scheduled", execution.queue));
    script_keys.push(keys.wakeup(execution.queue));
    script_keys.extend(worker_keys(keys, execution));
    let mut args = common_args(execution, now);
    args.push(outcome.into());
    args.push(traceback.exc_info.to_vec());
    args.push(traceback.exc_string.to_vec());
    args.push(started_at(execution));
    args.push(format!("{:.6}", execution.working_seconds).into());
    args.push(if takes_next { "1" } else { "0" }.into());
    args.push(start_mark(execution));
    ScriptCall {
        name: "fail",
        keys: script_keys,
        args,
    }
}

#[cfg(test)]
mod tests;
