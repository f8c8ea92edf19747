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
use crate::lifecycle::Ended;
use crate::reply;
use crate::scripts::{steps, ScriptCall};
use crate::take::{parse_taken, take_call, TakeRequest, Taken};

/// What a worker's step does, in this order: record the jobs that ended (`records`), take the
/// next jobs (`takes`: one job each, the same queues, in order). Its parts are owned: a
/// deferred step outlives the call that sent it.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub records: Vec<Ended>,
    pub takes: Vec<TakeRequest>,
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

/// The step's script calls; `repeats_takes` when its takes were sent before (their reply was
/// lost, or the caller is retrying them): each returns what its execution id took.
fn parts(keys: &KeySchema, step: &Step, repeats_takes: bool) -> Vec<ScriptCall> {
    let now = Now::read();
    let mut parts = Vec::with_capacity(step.records.len() + step.takes.len());
    let stays_busy = step.running || !step.takes.is_empty();
    for ended in &step.records {
        parts.push(ended.record_call(keys, &now, stays_busy));
    }
    let after_record = !step.records.is_empty() && !step.running;
    for take in &step.takes {
        parts.push(take_call(keys, take, &now, repeats_takes, after_record));
    }
    parts
}

/// The step as one command: a lone take is sent as its own script, anything else as
/// `lua/step.lua` (which a record needs: see `scripts::ScriptCall`).
fn command(
    session: &Session<'_>,
    keys: &KeySchema,
    step: &Step,
    repeats_takes: bool,
) -> redis::Cmd {
    let mut parts = parts(keys, step, repeats_takes);
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
    run_repeating(redis, keys, step, false)
}

/// Runs `step` and waits for its reply; `repeats_takes`: see `parts`.
fn run_repeating(
    redis: &mut Redis,
    keys: &KeySchema,
    step: &Step,
    repeats_takes: bool,
) -> Result<Transition> {
    let mut attempts = 0;
    let reply = redis.run(|session| {
        attempts += 1;
        session.query(&command(session, keys, step, repeats_takes || attempts > 1))
    })?;
    transition(step, &reply)
}

/// A step sent without waiting for its reply.
#[derive(Debug)]
struct InFlight {
    step: Step,
    sent: bool,
}

/// Sends `step`; read what it did with `collect`. `repeats_takes`: see `parts`.
fn send(redis: &mut Redis, keys: &KeySchema, step: Step, repeats_takes: bool) -> InFlight {
    let sent = redis.send(|session| vec![command(session, keys, &step, repeats_takes)]);
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
    pub fn run(&mut self, redis: &mut Redis, keys: &KeySchema, step: Step) -> Result<Transition> {
        let repeats_takes = self.note_take(&step);
        run_repeating(redis, keys, &step, repeats_takes)
    }

    /// Sends `step` without waiting; `collect` reads what it did. One at a time.
    pub fn send(&mut self, redis: &mut Redis, keys: &KeySchema, step: Step) -> Result<()> {
        if self.in_flight.is_some() {
            return Err(Error::Command(
                "a deferred step is in flight: collect it first".into(),
            ));
        }
        let repeats_takes = self.note_take(&step);
        self.in_flight = Some(send(redis, keys, step, repeats_takes));
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

    /// Whether `step`'s takes repeat the last ones sent (they reuse its execution id).
    fn note_take(&mut self, step: &Step) -> bool {
        let Some(first) = step.takes.first() else {
            return false;
        };
        let repeat = self.last_take.as_deref() == Some(first.execution_id.as_str());
        self.last_take = Some(first.execution_id.clone());
        repeat
    }
}

#[cfg(test)]
mod tests;
