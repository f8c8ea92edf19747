//! Heartbeats for many executions and workers in one round trip (`lua/heartbeat.lua`): the
//! supervisor sends one batch per interval for all of its workers.

use crate::clock::Now;
use crate::conn::Redis;
use crate::error::Result;
use crate::keys::KeySchema;
use crate::reply;

/// One running execution to keep alive for `ttl` more seconds. Its first beat writes RQ's
/// records of it (a pool's worker takes without them), with `started_at` (epoch seconds) as
/// their `created_at` and `worker` as their `worker_name`.
#[derive(Debug, Clone)]
pub struct Beat<'a> {
    pub job_id: &'a str,
    pub execution_id: &'a str,
    pub queue: &'a str,
    pub ttl: u64,
    pub worker: &'a str,
    pub started_at: f64,
}

/// A worker to keep registered for `ttl` more seconds.
#[derive(Debug, Clone)]
pub struct WorkerBeat<'a> {
    pub name: &'a str,
    pub ttl: u64,
    /// What to write again if its registration is gone; `None`: refresh it only.
    pub registration: Option<Registration<'a>>,
}

/// A worker's registration, as its birth writes it: the queues whose worker sets hold it, and
/// the fields of its hash but `birth` and `last_heartbeat` (the script sets both to now).
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub queues: &'a [String],
    pub fields: &'a [(String, String)],
}

/// Refreshes the executions in `beats` and the workers in `workers`, in one round trip.
/// A worker given with its registration is registered again when its hash has neither `birth`
/// nor `death` (Redis restarted without persistence, or the hash expired while no heartbeat got
/// through), and is put back in the worker sets on every beat until it dies. Returns the
/// `<job_id>:<execution_id>` of the executions that are no longer running.
pub fn heartbeat(
    redis: &mut Redis,
    keys: &KeySchema,
    beats: &[Beat<'_>],
    workers: &[WorkerBeat<'_>],
) -> Result<Vec<String>> {
    if beats.is_empty() && workers.is_empty() {
        return Ok(Vec::new());
    }
    let mut script_keys = Vec::with_capacity(beats.len() * 5 + workers.len() * 2);
    for beat in beats {
        script_keys.push(keys.registry("started", beat.queue));
        script_keys.push(keys.execution(beat.job_id, beat.execution_id));
        script_keys.push(keys.executions(beat.job_id));
        script_keys.push(keys.job(beat.job_id));
        script_keys.push(keys.worker_executions(beat.worker));
    }
    for worker in workers {
        script_keys.push(keys.worker(worker.name));
        script_keys.push(keys.worker_executions(worker.name));
        if let Some(registration) = &worker.registration {
            script_keys.push(keys.workers());
            script_keys.extend(registration.queues.iter().map(|q| keys.queue_workers(q)));
        }
    }
    let reply = redis.run(|session| {
        let now = Now::read();
        let mut args: Vec<Vec<u8>> = vec![
            now.timestamp.clone().into(),
            now.epoch_text().into(),
            beats.len().to_string().into(),
            workers.len().to_string().into(),
        ];
        for beat in beats {
            args.push(format!("{}:{}", beat.job_id, beat.execution_id).into());
            args.push(beat.execution_id.into());
            args.push(beat.ttl.to_string().into());
            args.push(beat.job_id.into());
            args.push(format!("{:.6}", beat.started_at).into());
            args.push(beat.worker.into());
        }
        for worker in workers {
            args.push(worker.ttl.to_string().into());
            match &worker.registration {
                None => args.push("-1".into()),
                Some(registration) => {
                    args.push(registration.queues.len().to_string().into());
                    args.push(registration.fields.len().to_string().into());
                    for (field, value) in registration.fields {
                        args.push(field.clone().into());
                        args.push(value.clone().into());
                    }
                }
            }
        }
        session.query(&session.script("heartbeat", &script_keys, &args))
    })?;
    reply::texts(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::take::{take, TakeRequest};
    use crate::testing::{enqueue, server_with_jobs, take_request};
    use redis::Commands;
    use std::collections::HashMap;

    #[test]
    fn refreshes_live_executions_and_reports_the_rest() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
        let _: () = con
            .hset_multiple("rq:worker:w1", &[("state", "busy")])
            .unwrap_or(());
        enqueue(&mut con, "q", "a");
        let queues = vec!["q".to_string()];
        let request = TakeRequest {
            heartbeat_ttl: 5,
            ..take_request(&queues, "e1")
        };
        assert!(matches!(
            take(&mut redis, &keys, &request, None),
            Ok(Some(_))
        ));
        let before: f64 = con.zscore("rq:wip:q", "a:e1").unwrap_or(0.0);
        // A pool worker's take leaves RQ's execution records to the heartbeat.
        let recorded: bool = con.exists("rq:execution:a:e1").unwrap_or(true);
        assert!(!recorded);
        let beats = [
            Beat {
                job_id: "a",
                execution_id: "e1",
                queue: "q",
                ttl: 100,
                worker: "w1",
                started_at: 1234.5,
            },
            Beat {
                job_id: "gone",
                execution_id: "e9",
                queue: "q",
                ttl: 100,
                worker: "w1",
                started_at: 1234.5,
            },
        ];
        let workers = ["w1", "nobody"].map(|name| WorkerBeat {
            name,
            ttl: 90,
            registration: None,
        });
        let stale = heartbeat(&mut redis, &keys, &beats, &workers);
        assert_eq!(stale, Ok(vec!["gone:e9".to_string()]));
        let after: f64 = con.zscore("rq:wip:q", "a:e1").unwrap_or(0.0);
        assert!(after >= before + 90.0, "{before} -> {after}");
        let ttl: i64 = con.ttl("rq:worker:w1").unwrap_or(-2);
        assert!(ttl > 80 && ttl <= 90, "{ttl}");
        let execution: HashMap<String, String> =
            con.hgetall("rq:execution:a:e1").unwrap_or_default();
        assert_eq!(
            execution.get("created_at").map(String::as_str),
            Some("1234.500000")
        );
        assert_eq!(execution.get("worker_name").map(String::as_str), Some("w1"));
        assert_eq!(execution.get("job_id").map(String::as_str), Some("a"));
        let indexed: Option<f64> = con.zscore("rq:executions:a", "e1").unwrap_or(None);
        let listed: bool = con
            .sismember("rq:worker:w1:executions", "a:e1")
            .unwrap_or(false);
        assert!(indexed.is_some() && listed);
        let gone_job: bool = con.exists("rq:job:gone").unwrap_or(true);
        let nobody: bool = con.exists("rq:worker:nobody").unwrap_or(true);
        assert!(!gone_job && !nobody);
    }

    #[test]
    fn registers_again_a_worker_whose_registration_is_gone() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
        // "alive" is registered but was dropped from the worker sets; "dead" registered its
        // death; "lost" has nothing left (Redis restarted without persistence, say).
        let setup: redis::RedisResult<()> = redis::pipe()
            .hset_multiple("rq:worker:alive", &[("birth", "b0"), ("state", "busy")])
            .hset_multiple("rq:worker:dead", &[("death", "d0"), ("state", "dead")])
            .query(&mut con);
        assert!(setup.is_ok(), "{setup:?}");
        let queues = ["q1".to_string(), "q2".to_string()];
        let fields = [("queues", "q1,q2"), ("pid", "42"), ("state", "idle")]
            .map(|(field, value)| (field.to_string(), value.to_string()));
        let beat = |name, registered: bool| WorkerBeat {
            name,
            ttl: 60,
            registration: registered.then_some(Registration {
                queues: &queues,
                fields: &fields,
            }),
        };
        let workers = [
            beat("lost", true),
            beat("alive", true),
            beat("dead", true),
            beat("unknown", false),
        ];
        assert_eq!(heartbeat(&mut redis, &keys, &[], &workers), Ok(vec![]));

        let lost: HashMap<String, String> = con.hgetall("rq:worker:lost").unwrap_or_default();
        let field = |name: &str| lost.get(name).map(String::as_str);
        assert_eq!(
            (field("queues"), field("pid"), field("state")),
            (Some("q1,q2"), Some("42"), Some("idle"))
        );
        assert!(field("birth").is_some_and(|birth| birth.ends_with('Z')));
        assert_eq!(field("birth"), field("last_heartbeat"));
        let ttl: i64 = con.ttl("rq:worker:lost").unwrap_or(-2);
        assert!(ttl > 50 && ttl <= 60, "{ttl}");
        let alive: HashMap<String, String> = con.hgetall("rq:worker:alive").unwrap_or_default();
        assert_eq!(alive.get("birth").map(String::as_str), Some("b0"));
        assert_eq!(alive.get("state").map(String::as_str), Some("busy"));
        let dead: HashMap<String, String> = con.hgetall("rq:worker:dead").unwrap_or_default();
        assert!(!dead.contains_key("birth") && !dead.contains_key("queues"));
        let unknown: bool = con.exists("rq:worker:unknown").unwrap_or(true);
        assert!(!unknown);
        for set in ["rq:workers", "rq:workers:q1", "rq:workers:q2"] {
            let mut members: Vec<String> = con.smembers(set).unwrap_or_default();
            members.sort();
            assert_eq!(members, ["rq:worker:alive", "rq:worker:lost"], "{set}");
        }
    }
}
