//! The worker's step: record how its last jobs ended and/or take its next ones, in one round
//! trip and one script run (`lua/step.lua`), either waiting for the
//! reply (`run`) or not (`send`, then `collect` once the next job has run: the worker's Python
//! time then overlaps Redis's work and the network).
//!
//! A step is safe to repeat: recording checks the execution is still started, and a repeated
//! take returns the job its execution id already took. So a step whose reply is lost, for any
//! reason, is sent again.

use crate::clock::Now;
use crate::conn::{Redis, Session};
use crate::error::{Error, Result};
use crate::keys::KeySchema;
use crate::lifecycle::{
    fail_call, finish_call, retry_call, Execution, Failure, RetryReturned, Traceback,
};
use crate::reply;
use crate::scripts::{steps, ScriptCall};
use crate::take::{parse_taken, take_call, TakeRequest, Taken};

/// A take, with owned parts (a deferred step outlives the call that sent it).
#[derive(Debug, Clone)]
pub struct TakeSpec {
    pub queues: Vec<String>,
    pub worker: String,
    pub execution_id: String,
    pub heartbeat_ttl: u64,
    /// A take ahead, held until it starts (see `take::TakeRequest::held`).
    pub held: bool,
    /// Marked held until a later step marks it started (see `take::TakeRequest::marked_held`).
    pub marked_held: bool,
    /// This execution id was sent before (the caller is retrying): return what it took.
    pub repeat: bool,
}

impl TakeSpec {
    fn request(&self) -> TakeRequest<'_> {
        TakeRequest {
            queues: &self.queues,
            worker: &self.worker,
            execution_id: &self.execution_id,
            heartbeat_ttl: self.heartbeat_ttl,
            held: self.held,
            marked_held: self.marked_held,
        }
    }
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

/// An execution that ended, with owned parts.
#[derive(Debug, Clone)]
pub struct Ended {
    pub job_id: String,
    pub execution_id: String,
    pub queue: String,
    pub worker: Option<String>,
    pub started_at: Option<f64>,
    pub working_seconds: f64,
    /// Its start is written with its record (see `lifecycle::Execution::marks_start`).
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
}

/// What a worker's step does, in this order: record the jobs that ended (`records`), take the
/// next jobs (`takes`: one job each, the same queues, in order).
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub records: Vec<Ended>,
    pub takes: Vec<TakeSpec>,
    /// A job runs while this step is in flight (the worker's state stays busy whatever the
    /// step records or takes).
    pub running: bool,
}

/// What a step did: the outcome of each record ("finished", "failed", "stopped", "retried",
/// "scheduled", "stale", ...), in order, and the jobs taken (the takes that found one: the
/// first ones, since a take finds nothing only when every queue is empty).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transition {
    pub outcomes: Vec<String>,
    pub taken: Vec<Taken>,
}

fn parts(keys: &KeySchema, step: &Step, repeat: bool) -> Vec<ScriptCall> {
    let now = Now::read();
    let mut parts = Vec::with_capacity(step.records.len() + step.takes.len());
    let stays_busy = step.running || !step.takes.is_empty();
    for ended in &step.records {
        let execution = ended.execution();
        parts.push(match &ended.ending {
            Ending::Finished {
                return_value,
                default_result_ttl,
            } => finish_call(
                keys,
                &execution,
                return_value.as_deref(),
                *default_result_ttl,
                &now,
                stays_busy,
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
                fail_call(keys, &execution, *failure, &traceback, &now, stays_busy)
            }
            Ending::Retry(returned) => retry_call(keys, &execution, returned, &now, stays_busy),
        });
    }
    let after_record = !step.records.is_empty() && !step.running;
    for take in &step.takes {
        parts.push(take_call(
            keys,
            &take.request(),
            &now,
            repeat || take.repeat,
            after_record,
        ));
    }
    parts
}

/// The step as one command: a lone take is sent as its own script, anything else as
/// `lua/step.lua` (which a record needs: see `scripts::ScriptCall`).
fn command(session: &Session<'_>, keys: &KeySchema, step: &Step, repeat: bool) -> redis::Cmd {
    let mut parts = parts(keys, step, repeat);
    if step.records.is_empty() && parts.len() == 1 {
        if let Some(part) = parts.pop() {
            return session.call(&part);
        }
    }
    session.call(&steps(keys, parts))
}

fn transition(step: &Step, reply: &redis::Value) -> Result<Transition> {
    let lone = [reply.clone()];
    let replies = if step.records.is_empty() && step.takes.len() == 1 {
        &lone[..]
    } else {
        reply::items(reply)?
    };
    let mut replies = replies.iter();
    let mut transition = Transition::default();
    for _ in &step.records {
        transition
            .outcomes
            .push(reply::text(next_reply(&mut replies)?)?);
    }
    for _ in &step.takes {
        if let Some(taken) = parse_taken(next_reply(&mut replies)?)? {
            transition.taken.push(taken);
        }
    }
    Ok(transition)
}

fn next_reply<'a>(
    replies: &mut impl Iterator<Item = &'a redis::Value>,
) -> Result<&'a redis::Value> {
    replies
        .next()
        .ok_or_else(|| Error::Reply("a step got fewer replies than it has parts".into()))
}

/// Runs `step` and waits for its reply.
pub fn run(redis: &mut Redis, keys: &KeySchema, step: &Step) -> Result<Transition> {
    let mut attempts = 0;
    let reply = redis.run(|session| {
        attempts += 1;
        session.query(&command(session, keys, step, attempts > 1))
    })?;
    transition(step, &reply)
}

/// A step sent without waiting for its reply.
#[derive(Debug)]
struct InFlight {
    step: Step,
    sent: bool,
}

/// Sends `step`; read what it did with `collect`.
fn send(redis: &mut Redis, keys: &KeySchema, step: Step) -> InFlight {
    let sent = redis.send(|session| vec![command(session, keys, &step, false)]);
    InFlight { step, sent }
}

/// What the step sent by `send` did. If its reply cannot be read, the step is repeated.
fn collect(redis: &mut Redis, keys: &KeySchema, in_flight: &InFlight) -> Result<Transition> {
    if in_flight.sent {
        if let Ok(replies) = redis.receive() {
            if let [reply] = &replies[..] {
                return transition(&in_flight.step, reply);
            }
        }
    }
    let reply =
        redis.run(|session| session.query(&command(session, keys, &in_flight.step, true)))?;
    transition(&in_flight.step, &reply)
}

/// One worker's steps over its connection: at most one deferred step in flight, and the
/// execution id of its last take, so that a take its caller repeats (after an error it could
/// not tell from a lost reply) returns what the first one took rather than another job.
#[derive(Debug, Default)]
pub struct Stepper {
    /// A step sent by `send`, until `collect` reads what it did.
    in_flight: Option<InFlight>,
    /// The execution id of the last take sent.
    last_take: Option<String>,
}

impl Stepper {
    /// Runs `step` and waits for its reply.
    pub fn run(
        &mut self,
        redis: &mut Redis,
        keys: &KeySchema,
        mut step: Step,
    ) -> Result<Transition> {
        self.note_take(&mut step);
        run(redis, keys, &step)
    }

    /// Sends `step` without waiting; `collect` reads what it did. One at a time.
    pub fn send(&mut self, redis: &mut Redis, keys: &KeySchema, mut step: Step) -> Result<()> {
        if self.in_flight.is_some() {
            return Err(Error::Command(
                "a deferred step is in flight: collect it first".into(),
            ));
        }
        self.note_take(&mut step);
        self.in_flight = Some(send(redis, keys, step));
        Ok(())
    }

    /// What the step sent by `send` did; on an error it stays in flight, to collect again.
    pub fn collect(&mut self, redis: &mut Redis, keys: &KeySchema) -> Result<Transition> {
        let Some(in_flight) = self.in_flight.take() else {
            return Err(Error::Command("no deferred step to collect".into()));
        };
        let collected = collect(redis, keys, &in_flight);
        if collected.is_err() {
            self.in_flight = Some(in_flight);
        }
        collected
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{first_taken, server_with_jobs};
    use redis::Commands;

    fn take_spec(execution_id: &str) -> TakeSpec {
        TakeSpec {
            queues: vec!["q".into()],
            worker: "w1".into(),
            execution_id: execution_id.into(),
            heartbeat_ttl: 30,
            held: false,
            marked_held: false,
            repeat: false,
        }
    }

    /// A take ahead, held until it starts.
    fn held_spec(execution_id: &str) -> TakeSpec {
        TakeSpec {
            held: true,
            ..take_spec(execution_id)
        }
    }

    /// Takes ahead a batch of jobs, one for each of `execution_ids`, while a job runs.
    fn take_held_batch(
        redis: &mut Redis,
        keys: &KeySchema,
        execution_ids: &[&str],
    ) -> Result<Transition> {
        let step = Step {
            takes: execution_ids.iter().map(|id| held_spec(id)).collect(),
            running: true,
            ..Step::default()
        };
        run(redis, keys, &step)
    }

    fn finished(taken: &Taken) -> Ended {
        Ended {
            job_id: taken.job_id.clone(),
            execution_id: taken.execution_id.clone(),
            queue: taken.queue.clone(),
            worker: Some("w1".into()),
            started_at: Some(1.0),
            working_seconds: 0.1,
            marks_start: false,
            ending: Ending::Finished {
                return_value: None,
                default_result_ttl: 500,
            },
        }
    }

    #[test]
    fn deferred_steps_overlap_and_survive_an_interruption() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&["a", "b", "c"]);
        let first = run(
            &mut redis,
            &keys,
            &Step {
                running: false,
                records: Vec::new(),
                takes: vec![take_spec("e1")],
            },
        );
        let Some(a) = first_taken(&first) else {
            panic!("{first:?}")
        };
        // Take b while a "runs".
        let in_flight = send(
            &mut redis,
            &keys,
            Step {
                running: false,
                records: Vec::new(),
                takes: vec![take_spec("e2")],
            },
        );
        let got_b = collect(&mut redis, &keys, &in_flight);
        let Some(b) = first_taken(&got_b) else {
            panic!("{got_b:?}")
        };
        assert_eq!((a.job_id.as_str(), b.job_id.as_str()), ("a", "b"));
        // Record a and take c, deferred; a synchronous call in between drops the connection:
        // collecting repeats the step, which applies once.
        let in_flight = send(
            &mut redis,
            &keys,
            Step {
                running: false,
                records: vec![finished(&a)],
                takes: vec![take_spec("e3")],
            },
        );
        let pong = redis.run(|session| session.query(&redis::cmd("PING")));
        assert!(pong.is_ok());
        let step = collect(&mut redis, &keys, &in_flight);
        let Ok(step) = step else { panic!("{step:?}") };
        assert!(matches!(
            step.outcomes.first().map(String::as_str),
            Some("finished") | Some("stale")
        ));
        assert_eq!(
            step.taken.first().map(|t| t.job_id.clone()),
            Some("c".to_string())
        );
        let finished_ids: Vec<String> = con.zrange("rq:finished:q", 0, -1).unwrap_or_default();
        assert_eq!(finished_ids, vec!["a".to_string()]);
        let results: usize = redis::cmd("XLEN")
            .arg("rq:results:a")
            .query(&mut con)
            .unwrap_or(0);
        assert_eq!(results, 1);
        let wip: Vec<String> = con.zrange("rq:wip:q", 0, -1).unwrap_or_default();
        assert_eq!(wip, vec!["b:e2".to_string(), "c:e3".to_string()]);
    }

    #[test]
    fn a_step_records_a_held_job_with_its_start_and_takes_ahead_in_one_script_run() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&["a", "b"]);
        let held = |execution_id: &str| TakeSpec {
            held: true,
            marked_held: true,
            ..take_spec(execution_id)
        };
        let plain = |take: TakeSpec| Step {
            running: false,
            records: Vec::new(),
            takes: vec![take],
        };
        let Some(a) = first_taken(&run(&mut redis, &keys, &plain(held("e1")))) else {
            panic!("a not taken")
        };
        let marked: Option<String> = con.hget("rq:job:a", "jobpool_held").unwrap_or(None);
        assert_eq!(marked.as_deref(), Some("e1"));
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut con)
            .unwrap_or(());
        let record = Ended {
            marks_start: true,
            started_at: Some(86_400.5),
            ..finished(&a)
        };
        let step = run(
            &mut redis,
            &keys,
            &Step {
                running: true,
                records: vec![record],
                takes: vec![held("e2")],
            },
        );
        let Ok(step) = step else { panic!("{step:?}") };
        assert_eq!(step.outcomes, ["finished"]);
        assert_eq!(
            step.taken.first().map(|t| t.job_id.clone()),
            Some("b".to_string())
        );
        let a_fields: Vec<Option<String>> = con
            .hmget("rq:job:a", &["status", "jobpool_held", "started_at"])
            .unwrap_or_default();
        assert_eq!(
            a_fields,
            [
                Some("finished".to_string()),
                None,
                Some("1970-01-02T00:00:00.500000Z".to_string())
            ]
        );
        let b_held: Option<String> = con.hget("rq:job:b", "jobpool_held").unwrap_or(None);
        assert_eq!(b_held.as_deref(), Some("e2"));
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut con)
            .unwrap_or_default();
        let script_runs: Vec<&str> = stats
            .lines()
            .filter(|line| line.starts_with("cmdstat_evalsha:"))
            .collect();
        assert_eq!(script_runs.len(), 1, "{stats}");
        assert!(
            script_runs[0].starts_with("cmdstat_evalsha:calls=1,"),
            "{stats}"
        );
    }

    #[test]
    fn a_batch_is_taken_started_and_recorded_in_one_script_run_each_and_repeats_safely() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&["a", "b", "c", "d", "e"]);
        let held = held_spec;
        let first = take_held_batch(&mut redis, &keys, &["e1", "e2", "e3"]);
        let Ok(first) = first else {
            panic!("{first:?}")
        };
        let ids: Vec<&str> = first.taken.iter().map(|t| t.job_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let with_start = |taken: &Taken| Ended {
            marks_start: true,
            ..finished(taken)
        };
        let second = Step {
            records: first.taken[..2].iter().map(with_start).collect(),
            takes: vec![held("e4"), held("e5"), held("e6")],
            running: true,
        };
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut con)
            .unwrap_or(());
        let done = run(&mut redis, &keys, &second);
        let Ok(done) = done else { panic!("{done:?}") };
        assert_eq!(done.outcomes, ["finished", "finished"]);
        let ids: Vec<&str> = done.taken.iter().map(|t| t.job_id.as_str()).collect();
        assert_eq!(ids, ["d", "e"], "the queue ran dry: two of three");
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut con)
            .unwrap_or_default();
        assert!(stats.contains("cmdstat_evalsha:calls=1,"), "{stats}");
        let c_held: Option<String> = con.hget("rq:job:c", "jobpool_held").unwrap_or(None);
        assert_eq!(c_held.as_deref(), Some("e3"), "c is still held");
        // The same step again (its reply lost): nothing is recorded twice, the same jobs come back.
        let mut second = second;
        for take in &mut second.takes {
            take.repeat = true;
        }
        let again = run(&mut redis, &keys, &second);
        let Ok(again) = again else {
            panic!("{again:?}")
        };
        assert_eq!(again.outcomes, ["stale", "stale"]);
        let ids: Vec<&str> = again.taken.iter().map(|t| t.job_id.as_str()).collect();
        assert_eq!(ids, ["d", "e"]);
        let finished_ids: Vec<String> = con.zrange("rq:finished:q", 0, -1).unwrap_or_default();
        assert_eq!(finished_ids, ["a", "b"]);
        let wip: Vec<String> = con.zrange("rq:wip:q", 0, -1).unwrap_or_default();
        assert_eq!(wip, ["c:e3", "d:e4", "e:e5"]);
    }

    #[test]
    fn a_batchs_records_add_to_the_workers_counters_in_one_write_each() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&["a", "b", "c"]);
        let _: () = con
            .hset_multiple(
                "rq:worker:w1",
                &[("successful_job_count", "5"), ("total_working_time", "1.5")],
            )
            .unwrap_or(());
        let takes = ["e1", "e2", "e3"].map(take_spec).to_vec();
        let taken = run(
            &mut redis,
            &keys,
            &Step {
                takes,
                running: true,
                ..Step::default()
            },
        );
        let Ok(taken) = taken else {
            panic!("{taken:?}")
        };
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut con)
            .unwrap_or(());
        let records = Step {
            records: taken.taken.iter().map(finished).collect(),
            ..Step::default()
        };
        let done = run(&mut redis, &keys, &records);
        assert_eq!(
            done.map(|t| t.outcomes),
            Ok(vec!["finished".to_string(); 3])
        );
        let counters: Vec<Option<String>> = con
            .hmget(
                "rq:worker:w1",
                &["successful_job_count", "total_working_time"],
            )
            .unwrap_or_default();
        assert_eq!(
            counters,
            [Some("8".to_string()), Some("1.8".to_string())],
            "three jobs of 0.1 s each"
        );
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut con)
            .unwrap_or_default();
        assert!(stats.contains("cmdstat_hincrby:calls=1,"), "{stats}");
        assert!(stats.contains("cmdstat_hincrbyfloat:calls=1,"), "{stats}");
    }

    #[test]
    fn a_stepper_repeats_a_retried_take_and_keeps_one_deferred_step_in_flight() {
        let (_server, keys, mut redis, _con) = server_with_jobs(&["a", "b"]);
        let mut stepper = Stepper::default();
        let take = |execution_id: &str| Step {
            takes: vec![take_spec(execution_id)],
            ..Step::default()
        };
        let no_step = stepper.collect(&mut redis, &keys);
        assert!(matches!(no_step, Err(Error::Command(_))), "{no_step:?}");
        let first = stepper.run(&mut redis, &keys, take("e1"));
        // The caller saw an error it could not tell from a lost reply, and asks again.
        let again = stepper.run(&mut redis, &keys, take("e1"));
        let ids = |t: &Result<Transition>| first_taken(t).map(|taken| taken.job_id.clone());
        assert_eq!(ids(&first), Some("a".to_string()));
        assert_eq!(ids(&again), Some("a".to_string()), "the same job, not b");
        let sent = stepper.send(&mut redis, &keys, take("e2"));
        assert!(sent.is_ok(), "{sent:?}");
        let second = stepper.send(&mut redis, &keys, take("e3"));
        assert!(matches!(second, Err(Error::Command(_))), "{second:?}");
        let collected = stepper.collect(&mut redis, &keys);
        assert_eq!(ids(&collected), Some("b".to_string()));
    }

    fn calls_of(stats: &str, command: &str) -> usize {
        let prefix = format!("cmdstat_{command}:calls=");
        stats
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.split(',').next())
            .and_then(|calls| calls.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn a_batch_looks_up_the_suspension_once_and_its_records_delete_no_execution_records() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&["a", "b", "c"]);
        let reset = |con: &mut redis::Connection| {
            let _: () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query(con)
                .unwrap_or(());
        };
        let stats = |con: &mut redis::Connection| -> String {
            redis::cmd("INFO")
                .arg("commandstats")
                .query(con)
                .unwrap_or_default()
        };
        reset(&mut con);
        let taken = take_held_batch(&mut redis, &keys, &["e1", "e2", "e3"]);
        let Ok(taken) = taken else {
            panic!("{taken:?}")
        };
        assert_eq!(taken.taken.len(), 3);
        let after_take = stats(&mut con);
        assert_eq!(calls_of(&after_take, "exists"), 1, "{after_take}");
        reset(&mut con);
        let records = Step {
            records: taken
                .taken
                .iter()
                .map(|t| Ended {
                    marks_start: true,
                    ..finished(t)
                })
                .collect(),
            ..Step::default()
        };
        let done = run(&mut redis, &keys, &records);
        assert_eq!(
            done.map(|t| t.outcomes),
            Ok(vec!["finished".to_string(); 3])
        );
        let after_records = stats(&mut con);
        assert_eq!(calls_of(&after_records, "del"), 0, "{after_records}");
        // Jobs without repeats or rate limits pay nothing for them but fields of the first read.
        for command in ["hget", "zcard", "zpopmin", "zrange"] {
            assert_eq!(
                calls_of(&after_records, command),
                0,
                "{command}: {after_records}"
            );
        }
        let left: Vec<String> = con.keys("rq:execution*").unwrap_or_default();
        assert_eq!(left, Vec::<String>::new());
    }
}
