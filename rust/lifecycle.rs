//! The end of an execution: the commands that record it finished (`lua/finish.lua`), or
//! failed, stopped or abandoned (`lua/fail.lua`, which also retries), or ended by returning a
//! `Retry` (`lua/fail.lua` too). `step` sends them, with the worker's next take in the same
//! script run.
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
    /// heartbeat has lapsed and its job is still started.
    Abandoned,
    /// Taken and held, but never started (the worker is stopping): back to its queue's front.
    Released,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Failed => "failed",
            Failure::Stopped => "stopped",
            Failure::Abandoned => "abandoned",
            Failure::Released => "released",
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
pub fn finish_call(
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
pub fn retry_call(
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
mod tests {
    use super::*;
    use crate::conn::Redis;
    use crate::error::Result;
    use crate::step::{self, Ended, Ending, Step, TakeSpec, Transition};
    use crate::take::{take, TakeRequest, Taken};
    use crate::testing::{enqueue, RedisServer};
    use redis::Commands;

    fn ended(execution: &Execution<'_>, ending: Ending) -> Ended {
        Ended {
            job_id: execution.job_id.into(),
            execution_id: execution.execution_id.into(),
            queue: execution.queue.into(),
            worker: execution.worker.map(String::from),
            started_at: execution.started_at,
            working_seconds: execution.working_seconds,
            marks_start: execution.marks_start,
            ending,
        }
    }

    fn finish(
        redis: &mut Redis,
        keys: &KeySchema,
        execution: &Execution<'_>,
        return_value: Option<&[u8]>,
        default_result_ttl: i64,
        next: Option<&TakeRequest<'_>>,
    ) -> Result<Transition> {
        let ending = Ending::Finished {
            return_value: return_value.map(<[u8]>::to_vec),
            default_result_ttl,
        };
        let take = next.map(|n| TakeSpec {
            queues: n.queues.to_vec(),
            worker: n.worker.into(),
            execution_id: n.execution_id.into(),
            heartbeat_ttl: n.heartbeat_ttl,
            held: n.held,
            marked_held: false,
            repeat: false,
        });
        step::run(
            redis,
            keys,
            &Step {
                running: false,
                records: vec![ended(execution, ending)],
                takes: take.into_iter().collect(),
            },
        )
    }

    /// Records `taken` as ended by `failure`, with the tests' one traceback, taking nothing next.
    fn fail(
        redis: &mut Redis,
        keys: &KeySchema,
        taken: &Taken,
        failure: Failure,
    ) -> Result<Transition> {
        let ending = Ending::Failed {
            failure,
            exc_info: TRACEBACK.exc_info.to_vec(),
            exc_string: TRACEBACK.exc_string.to_vec(),
        };
        step::run(
            redis,
            keys,
            &Step {
                running: false,
                records: vec![ended(&execution(taken), ending)],
                takes: Vec::new(),
            },
        )
    }

    /// Records `taken` as having returned a Retry, taking nothing next.
    fn returned(
        redis: &mut Redis,
        keys: &KeySchema,
        taken: &Taken,
        again: Option<Again>,
    ) -> Option<String> {
        let ending = Ending::Retry(RetryReturned {
            retry: b"UkVUUlk=".to_vec(),
            again,
        });
        let record = Step {
            running: false,
            records: vec![ended(&execution(taken), ending)],
            takes: Vec::new(),
        };
        outcome_of(step::run(redis, keys, &record))
    }

    /// The (type, return_value, exc_string) of each entry of `job_id`'s results stream.
    fn results_of(
        con: &mut redis::Connection,
        job_id: &str,
    ) -> Vec<(String, Option<String>, Option<String>)> {
        let entries: Vec<(String, std::collections::HashMap<String, String>)> =
            redis::cmd("XRANGE")
                .arg(format!("rq:results:{job_id}"))
                .arg("-")
                .arg("+")
                .query(con)
                .unwrap_or_default();
        entries
            .into_iter()
            .map(|(_, fields)| {
                (
                    fields.get("type").cloned().unwrap_or_default(),
                    fields.get("return_value").cloned(),
                    fields.get("exc_string").cloned(),
                )
            })
            .collect()
    }

    fn job_field(con: &mut redis::Connection, job_id: &str, field: &str) -> Option<String> {
        let value: redis::RedisResult<Option<String>> = con.hget(format!("rq:job:{job_id}"), field);
        value.ok().flatten()
    }

    #[test]
    fn a_returned_retry_runs_again_then_fails_past_its_max_whatever_retries_left() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        enqueue(&mut con, "q", "a");
        enqueue(&mut con, "q", "b");
        set_job_fields(&mut con, "a", &[("retries_left", "3")]);
        let queues = vec!["q".to_string()];
        let retried = Some(Again {
            number_of_retries: 1,
            interval: 0,
            at_front: true,
        });
        let taken = start(&mut redis, &keys, &queues, "e1");
        assert_eq!(
            returned(&mut redis, &keys, &taken, retried),
            Some("retried".to_string())
        );
        let queued: Vec<String> = con.lrange("rq:queue:q", 0, -1).unwrap_or_default();
        assert_eq!(queued, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(
            job_field(&mut con, "a", "status").as_deref(),
            Some("queued")
        );
        assert_eq!(
            job_field(&mut con, "a", "number_of_retries").as_deref(),
            Some("1")
        );
        assert_eq!(
            job_field(&mut con, "a", "enqueue_at_front_on_retry").as_deref(),
            Some("1")
        );
        assert_eq!(
            job_field(&mut con, "a", "retries_left").as_deref(),
            Some("3")
        );

        let taken = start(&mut redis, &keys, &queues, "e2");
        let later = Some(Again {
            number_of_retries: 2,
            interval: 5,
            at_front: false,
        });
        assert_eq!(
            returned(&mut redis, &keys, &taken, later),
            Some("scheduled".to_string())
        );
        assert_eq!(places_of(&mut con, "a"), vec!["scheduled"]);
        let due: Option<f64> = con.zscore("rq:scheduled:q", "a").ok();
        let now = Now::read().epoch;
        assert!(
            due.is_some_and(|d| d > now + 3.0 && d < now + 6.0),
            "{due:?}"
        );

        let taken = start(&mut redis, &keys, &queues, "e3"); // b
        assert_eq!(taken.job_id, "b");
        set_job_fields(&mut con, "b", &[("retries_left", "2")]);
        assert_eq!(
            returned(&mut redis, &keys, &taken, None),
            Some("failed".to_string())
        );
        assert_eq!(places_of(&mut con, "b"), vec!["failed"]);
        assert_eq!(
            job_field(&mut con, "b", "status").as_deref(),
            Some("failed")
        );
        assert_eq!(job_field(&mut con, "b", "exc_info"), None);
        assert_eq!(
            job_field(&mut con, "b", "retries_left").as_deref(),
            Some("2")
        );
        let retried: (String, Option<String>, Option<String>) =
            ("4".into(), Some("UkVUUlk=".into()), None);
        let exceeded: (String, Option<String>, Option<String>) =
            ("5".into(), Some("UkVUUlk=".into()), None);
        assert_eq!(results_of(&mut con, "a"), vec![retried.clone(), retried]);
        assert_eq!(results_of(&mut con, "b"), vec![exceeded]);
    }

    fn outcome_of(transition: Result<Transition>) -> Option<String> {
        transition.ok().and_then(|t| t.outcomes.into_iter().next())
    }

    const TRACEBACK: Traceback<'static> = Traceback {
        exc_info: b"zlib-bytes",
        exc_string: b"YmFzZTY0",
    };

    fn start(redis: &mut Redis, keys: &KeySchema, queues: &[String], execution_id: &str) -> Taken {
        let request = TakeRequest {
            queues,
            worker: "w1",
            execution_id,
            heartbeat_ttl: 30,
            held: false,
            marked_held: false,
        };
        match take(redis, keys, &request, None) {
            Ok(Some(taken)) => taken,
            other => panic!("nothing taken: {other:?}"),
        }
    }

    fn execution(taken: &Taken) -> Execution<'_> {
        Execution {
            job_id: &taken.job_id,
            execution_id: &taken.execution_id,
            queue: &taken.queue,
            worker: Some("w1"),
            started_at: Some(1.5),
            working_seconds: 0.25,
            marks_start: false,
        }
    }

    #[test]
    fn finish_records_once_and_hands_back_the_next_job() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        let _: () = con
            .hset_multiple("rq:worker:w1", &[("state", "idle")])
            .unwrap_or(());
        enqueue(&mut con, "q", "a");
        enqueue(&mut con, "q", "b");
        let queues = vec!["q".to_string()];
        let taken = start(&mut redis, &keys, &queues, "e1");
        let next = TakeRequest {
            queues: &queues,
            worker: "w1",
            execution_id: "e2",
            heartbeat_ttl: 30,
            held: false,
            marked_held: false,
        };
        let done = finish(
            &mut redis,
            &keys,
            &execution(&taken),
            Some(b"NDI="),
            500,
            Some(&next),
        );
        let Ok(done) = done else { panic!("{done:?}") };
        assert_eq!(done.outcomes.first().map(String::as_str), Some("finished"));
        assert_eq!(
            done.taken.first().map(|t| t.job_id.clone()),
            Some("b".to_string())
        );
        let status: Option<String> = con.hget("rq:job:a", "status").ok();
        assert_eq!(status.as_deref(), Some("finished"));
        let finished: Vec<String> = con.zrange("rq:finished:q", 0, -1).unwrap_or_default();
        assert_eq!(finished, vec!["a".to_string()]);
        let results: usize = redis::cmd("XLEN")
            .arg("rq:results:a")
            .query(&mut con)
            .unwrap_or(0);
        assert_eq!(results, 1);
        let count: Option<String> = con.hget("rq:worker:w1", "successful_job_count").ok();
        assert_eq!(count.as_deref(), Some("1"));
        let wip: Vec<String> = con.zrange("rq:wip:q", 0, -1).unwrap_or_default();
        assert_eq!(wip, vec!["b:e2".to_string()]);
        // A repeat of the same finish (a lost reply, say) changes nothing.
        let again = finish(
            &mut redis,
            &keys,
            &execution(&taken),
            Some(b"NDI="),
            500,
            None,
        );
        assert_eq!(outcome_of(again), Some("stale".to_string()));
        let results: usize = redis::cmd("XLEN")
            .arg("rq:results:a")
            .query(&mut con)
            .unwrap_or(0);
        assert_eq!(results, 1);
    }

    #[test]
    fn fail_retries_then_records_the_failure() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        enqueue(&mut con, "q", "a");
        let _: () = con
            .hset_multiple(
                "rq:job:a",
                &[("retries_left", "1"), ("retry_intervals", "[0]")],
            )
            .unwrap_or(());
        let queues = vec!["q".to_string()];
        let taken = start(&mut redis, &keys, &queues, "e1");
        let first = fail(&mut redis, &keys, &taken, Failure::Failed);
        assert_eq!(outcome_of(first), Some("retried".to_string()));
        let queued: Vec<String> = con.lrange("rq:queue:q", 0, -1).unwrap_or_default();
        assert_eq!(queued, vec!["a".to_string()]);
        let taken = start(&mut redis, &keys, &queues, "e2");
        let second = fail(&mut redis, &keys, &taken, Failure::Failed);
        assert_eq!(outcome_of(second), Some("failed".to_string()));
        let failed: Vec<String> = con.zrange("rq:failed:q", 0, -1).unwrap_or_default();
        assert_eq!(failed, vec!["a".to_string()]);
        let exc_info: Option<Vec<u8>> = con.hget("rq:job:a", "exc_info").ok();
        assert_eq!(exc_info.as_deref(), Some(&b"zlib-bytes"[..]));
    }

    #[test]
    fn stopped_jobs_are_never_retried_and_intervals_schedule() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        enqueue(&mut con, "q", "stopme");
        enqueue(&mut con, "q", "later");
        for id in ["stopme", "later"] {
            let _: () = con
                .hset_multiple(
                    format!("rq:job:{id}"),
                    &[("retries_left", "2"), ("retry_intervals", "[5, 9]")],
                )
                .unwrap_or(());
        }
        let queues = vec!["q".to_string()];
        let stopped = start(&mut redis, &keys, &queues, "e1");
        let outcome = fail(&mut redis, &keys, &stopped, Failure::Stopped);
        assert_eq!(outcome_of(outcome), Some("stopped".to_string()));
        let later = start(&mut redis, &keys, &queues, "e2");
        let outcome = fail(&mut redis, &keys, &later, Failure::Failed);
        assert_eq!(outcome_of(outcome), Some("scheduled".to_string()));
        let due: Option<f64> = con.zscore("rq:scheduled:q", "later").ok();
        let now = Now::read().epoch;
        assert!(
            due.is_some_and(|d| d > now + 3.0 && d < now + 6.0),
            "{due:?}"
        );
    }

    /// The queue and registries of queue `q` that hold `job_id`.
    fn places_of(con: &mut redis::Connection, job_id: &str) -> Vec<String> {
        let mut places = Vec::new();
        let queued: Vec<String> = con.lrange("rq:queue:q", 0, -1).unwrap_or_default();
        if queued.iter().any(|id| id == job_id) {
            places.push("queue".to_string());
        }
        for kind in ["wip", "finished", "failed", "scheduled"] {
            let members: Vec<String> = con
                .zrange(format!("rq:{kind}:q"), 0, -1)
                .unwrap_or_default();
            if members.iter().any(|m| m.split(':').next() == Some(job_id)) {
                places.push(kind.to_string());
            }
        }
        places
    }

    fn set_job_fields(con: &mut redis::Connection, job_id: &str, fields: &[(&str, &str)]) {
        let set: redis::RedisResult<()> = con.hset_multiple(format!("rq:job:{job_id}"), fields);
        assert!(set.is_ok(), "{set:?}");
    }

    #[test]
    fn unusable_retry_intervals_retry_at_once_and_lose_nothing() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        let queues = vec!["q".to_string()];
        let corrupt = [
            "not json",
            "[1,",
            "5",
            "{\"a\": 1}",
            "[\"soon\"]",
            "[[1]]",
            "[-5]",
            "[1e400]",
        ];
        for (n, intervals) in corrupt.iter().enumerate() {
            let job_id = format!("j{n}");
            enqueue(&mut con, "q", &job_id);
            set_job_fields(
                &mut con,
                &job_id,
                &[("retries_left", "1"), ("retry_intervals", intervals)],
            );
            let taken = start(&mut redis, &keys, &queues, &format!("e{n}a"));
            let first = fail(&mut redis, &keys, &taken, Failure::Failed);
            assert_eq!(
                outcome_of(first),
                Some("retried".to_string()),
                "{intervals}"
            );
            assert_eq!(places_of(&mut con, &job_id), vec!["queue"], "{intervals}");
            let taken = start(&mut redis, &keys, &queues, &format!("e{n}b"));
            let second = fail(&mut redis, &keys, &taken, Failure::Failed);
            assert_eq!(
                outcome_of(second),
                Some("failed".to_string()),
                "{intervals}"
            );
            assert_eq!(places_of(&mut con, &job_id), vec!["failed"], "{intervals}");
        }
    }

    #[test]
    fn a_repeat_goes_round_once_per_success_whatever_its_stored_intervals() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        let queues = vec!["q".to_string()];
        // (repeat_intervals, where the job goes, its intervals after)
        let cases = [
            ("[0, 30]", vec!["queue", "finished"], Some("[30]")),
            (
                "[20,30, 40]",
                vec!["finished", "scheduled"],
                Some("[30, 40]"),
            ),
            ("[7]", vec!["finished", "scheduled"], Some("[7]")),
            ("not json", vec!["queue", "finished"], Some("not json")),
            ("[[1], 5]", vec!["queue", "finished"], Some("[[1], 5]")),
            ("[-5, 5]", vec!["queue", "finished"], Some("[-5, 5]")),
        ];
        for (n, (intervals, places, after)) in cases.iter().enumerate() {
            let job_id = format!("j{n}");
            enqueue(&mut con, "q", &job_id);
            set_job_fields(
                &mut con,
                &job_id,
                &[("repeats_left", "2"), ("repeat_intervals", intervals)],
            );
            let taken = start(&mut redis, &keys, &queues, &format!("e{n}"));
            let done = finish(&mut redis, &keys, &execution(&taken), None, 500, None);
            assert_eq!(
                outcome_of(done),
                Some("finished".to_string()),
                "{intervals}"
            );
            assert_eq!(&places_of(&mut con, &job_id), places, "{intervals}");
            assert_eq!(
                job_field(&mut con, &job_id, "repeats_left").as_deref(),
                Some("1"),
                "{intervals}"
            );
            assert_eq!(
                job_field(&mut con, &job_id, "repeat_intervals").as_deref(),
                *after,
                "{intervals}"
            );
            let left: i64 = con.ttl(format!("rq:job:{job_id}")).unwrap_or(0);
            assert_eq!(left, -1, "{intervals}: a repeated job keeps its hash");
            let _: redis::RedisResult<()> = con.del("rq:queue:q");
            let _: redis::RedisResult<()> = con.del("rq:scheduled:q");
        }
    }

    #[test]
    fn an_ending_frees_a_rate_limit_slot_and_promotes_unless_the_job_is_back_on_its_queue() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        let queues = vec!["q".to_string()];
        let limited = [("rate_limit_key", "k"), ("rate_limit_concurrency", "1")];
        let _: redis::RedisResult<()> = con.hset("rq:rl:k", "concurrency", "1");
        enqueue(&mut con, "q", "a");
        set_job_fields(
            &mut con,
            "a",
            &[&limited[..], &[("retries_left", "1")]].concat(),
        );
        let _: redis::RedisResult<()> = con.zadd("rq:rl:k:allowed", "a", 1);
        for waiting in ["b", "c"] {
            set_job_fields(
                &mut con,
                waiting,
                &[&limited[..], &[("status", "rate_limited"), ("origin", "q")]].concat(),
            );
        }
        let _: redis::RedisResult<()> =
            con.zadd_multiple("rq:rl:k:rate_limited", &[(1, "b"), (2, "c")]);
        let allowed = |con: &mut redis::Connection| -> Vec<String> {
            con.zrange("rq:rl:k:allowed", 0, -1).unwrap_or_default()
        };

        // A failure retried at once: back on its queue, it keeps its slot.
        let taken = start(&mut redis, &keys, &queues, "e1");
        let retried = fail(&mut redis, &keys, &taken, Failure::Failed);
        assert_eq!(outcome_of(retried), Some("retried".to_string()));
        assert_eq!(allowed(&mut con), vec!["a"]);
        // Abandoned with no retries left: failed, its slot goes to the oldest waiting job.
        let taken = start(&mut redis, &keys, &queues, "e2");
        let lapsed: redis::RedisResult<()> =
            con.zadd("rq:wip:q", format!("a:{}", taken.execution_id), 0);
        assert!(lapsed.is_ok());
        let abandoned = fail(&mut redis, &keys, &taken, Failure::Abandoned);
        assert_eq!(outcome_of(abandoned), Some("failed".to_string()));
        assert_eq!(allowed(&mut con), vec!["b"]);
        assert_eq!(
            job_field(&mut con, "b", "status").as_deref(),
            Some("queued")
        );
        let queued: Vec<String> = con.lrange("rq:queue:q", 0, -1).unwrap_or_default();
        assert_eq!(queued, vec!["b"]);
        // A success: its slot goes to the next.
        let taken = start(&mut redis, &keys, &queues, "e3");
        let done = finish(&mut redis, &keys, &execution(&taken), None, 500, None);
        assert_eq!(outcome_of(done), Some("finished".to_string()));
        assert_eq!(allowed(&mut con), vec!["c"]);
        let waiting: Vec<String> = con
            .zrange("rq:rl:k:rate_limited", 0, -1)
            .unwrap_or_default();
        assert!(waiting.is_empty(), "{waiting:?}");
    }

    #[test]
    fn unusable_stored_ttls_fall_back_to_the_defaults() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        let queues = vec!["q".to_string()];
        for (n, ttl) in ["10000000000000000", "1e16", "1.5", "-7"]
            .iter()
            .enumerate()
        {
            let finishing = format!("f{n}");
            enqueue(&mut con, "q", &finishing);
            set_job_fields(&mut con, &finishing, &[("result_ttl", ttl)]);
            let taken = start(&mut redis, &keys, &queues, &format!("e{n}f"));
            let done = finish(&mut redis, &keys, &execution(&taken), None, 500, None);
            assert_eq!(outcome_of(done), Some("finished".to_string()), "{ttl}");
            assert_eq!(places_of(&mut con, &finishing), vec!["finished"], "{ttl}");
            let left: i64 = con.ttl(format!("rq:job:{finishing}")).unwrap_or(0);
            assert!(left > 0 && left <= 500, "{ttl}: {left}");

            let failing = format!("x{n}");
            enqueue(&mut con, "q", &failing);
            set_job_fields(&mut con, &failing, &[("failure_ttl", ttl)]);
            let taken = start(&mut redis, &keys, &queues, &format!("e{n}x"));
            let done = fail(&mut redis, &keys, &taken, Failure::Failed);
            assert_eq!(outcome_of(done), Some("failed".to_string()), "{ttl}");
            assert_eq!(places_of(&mut con, &failing), vec!["failed"], "{ttl}");
            let left: i64 = con.ttl(format!("rq:job:{failing}")).unwrap_or(0);
            assert!(left > 31_535_000 && left <= 31_536_000, "{ttl}: {left}");
        }
    }

    #[test]
    fn corrupt_worker_counters_start_again() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        let set: redis::RedisResult<()> = con.hset_multiple(
            "rq:worker:w1",
            &[
                ("successful_job_count", "many"),
                ("failed_job_count", "007"),
                ("total_working_time", "long"),
            ],
        );
        assert!(set.is_ok(), "{set:?}");
        enqueue(&mut con, "q", "a");
        enqueue(&mut con, "q", "b");
        let queues = vec!["q".to_string()];
        let taken = start(&mut redis, &keys, &queues, "e1");
        let done = finish(&mut redis, &keys, &execution(&taken), None, 500, None);
        assert_eq!(outcome_of(done), Some("finished".to_string()));
        let taken = start(&mut redis, &keys, &queues, "e2");
        assert_eq!(
            outcome_of(fail(&mut redis, &keys, &taken, Failure::Failed)),
            Some("failed".to_string())
        );
        let counters: Vec<Option<String>> = redis::cmd("HMGET")
            .arg("rq:worker:w1")
            .arg(&[
                "successful_job_count",
                "failed_job_count",
                "total_working_time",
            ])
            .query(&mut con)
            .unwrap_or_default();
        assert_eq!(
            counters,
            vec![
                Some("1".to_string()),
                Some("1".to_string()),
                Some("0.5".to_string())
            ]
        );
    }

    #[test]
    fn a_job_deleted_while_it_ran_is_not_brought_back() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        let queues = vec!["q".to_string()];
        for (n, failure) in [None, Some(Failure::Failed), Some(Failure::Released)]
            .into_iter()
            .enumerate()
        {
            let job_id = format!("d{n}");
            enqueue(&mut con, "q", &job_id);
            set_job_fields(&mut con, &job_id, &[("retries_left", "1")]);
            let taken = start(&mut redis, &keys, &queues, &format!("e{n}"));
            let deleted: redis::RedisResult<()> = con.del(format!("rq:job:{job_id}"));
            assert!(deleted.is_ok());
            let recorded = match failure {
                None => finish(&mut redis, &keys, &execution(&taken), None, 500, None),
                Some(failure) => fail(&mut redis, &keys, &taken, failure),
            };
            assert_eq!(outcome_of(recorded), Some("deleted".to_string()));
            let left: Vec<String> = con.keys(format!("*{job_id}*")).unwrap_or_default();
            assert!(left.is_empty(), "{failure:?}: {left:?}");
            assert!(places_of(&mut con, &job_id).is_empty(), "{failure:?}");
        }
    }

    #[test]
    fn the_record_of_an_execution_taken_out_of_the_registry_only_forgets_it() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        let queues = vec!["q".to_string()];
        enqueue(&mut con, "q", "a");
        let taken = start(&mut redis, &keys, &queues, "e1");
        // As a cancel does: status canceled, the execution out of the started registry.
        let canceled: redis::RedisResult<()> = redis::pipe()
            .hset("rq:job:a", "status", "canceled")
            .zrem("rq:wip:q", "a:e1")
            .query(&mut con);
        assert!(canceled.is_ok());
        let done = finish(&mut redis, &keys, &execution(&taken), None, 500, None);
        assert_eq!(outcome_of(done), Some("stale".to_string()));
        let status: Option<String> = con.hget("rq:job:a", "status").ok();
        assert_eq!(status.as_deref(), Some("canceled"));
        assert!(places_of(&mut con, "a").is_empty());
        let executions: Vec<String> = con.keys("rq:execution*").unwrap_or_default();
        assert!(executions.is_empty(), "{executions:?}");
        let owned: Vec<String> = con.smembers("rq:worker:w1:executions").unwrap_or_default();
        assert!(owned.is_empty(), "{owned:?}");
    }
}
