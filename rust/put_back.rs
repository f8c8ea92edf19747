//! Putting back a job taken ahead (held) that never started, at the front of its queue. Its
//! holder knows the job: a worker gives it up as it stops, or its supervisor settles a dead
//! worker's holds (`release`, `lua/release.lua`). The supervisor taking back a hold the ledger
//! gave it knows only the execution id, and its take may not have run yet (`reclaim`,
//! `lua/reclaim.lua`). One round trip each; the put-back itself is the library's
//! `put_back_held`, which recovery's put-back of an abandoned held job (`lua/fail.lua`) shares.

use crate::clock::Now;
use crate::conn::Redis;
use crate::error::{Error, Result};
use crate::keys::{KeySchema, ID_MARK};
use crate::reply;

/// A job taken ahead, as its holder knows it.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub worker: &'a str,
    pub job_id: &'a str,
    pub execution_id: &'a str,
    pub queue: &'a str,
}

/// Puts back `held`, which its worker never started: "released" (back at the front of its
/// queue), "stale" (no longer started: put back or taken back already, recovered, or its job
/// canceled) or "deleted" (its job hash is gone). Safe to repeat.
pub fn release(redis: &mut Redis, keys: &KeySchema, held: &Held<'_>) -> Result<String> {
    let now = Now::read();
    let script_keys = vec![
        keys.job(held.job_id),
        keys.registry("started", held.queue),
        keys.execution(held.job_id, held.execution_id),
        keys.executions(held.job_id),
        keys.queue(held.queue),
        keys.wakeup(held.queue),
        keys.worker(held.worker),
        keys.worker_executions(held.worker),
    ];
    let [limit, allowed, waiting, limits] = keys.rate_limit_templates();
    let args: Vec<Vec<u8>> = vec![
        held.job_id.into(),
        held.execution_id.into(),
        now.timestamp.clone().into(),
        now.epoch_text().into(),
        keys.job(ID_MARK).into(),
        keys.queue(ID_MARK).into(),
        keys.wakeup(ID_MARK).into(),
        limit.into(),
        allowed.into(),
        waiting.into(),
        limits.into(),
    ];
    let reply =
        redis.run(|session| session.query(&session.script("release", &script_keys, &args)))?;
    reply::text(&reply)
}

/// How long the marker of a take taken back before Redis ran it lives (seconds).
const MARKER_SECONDS: u64 = 600;

/// What became of a reclaimed execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reclaimed {
    /// Its job is back at the front of `queue`.
    Released { job_id: String, queue: String },
    /// No queue had it: the take had not run (it will take nothing) or took no job.
    Absent,
}

/// Puts back the job `worker` took ahead under `execution_id` from one of `queues`, found by
/// its execution id alone; when no queue has it, its take will take nothing when it runs.
pub fn reclaim(
    redis: &mut Redis,
    keys: &KeySchema,
    worker: &str,
    queues: &[String],
    execution_id: &str,
) -> Result<Reclaimed> {
    let mut script_keys = vec![keys.reclaimed(execution_id), keys.worker_executions(worker)];
    script_keys.extend(queues.iter().map(|q| keys.registry("started", q)));
    script_keys.extend(queues.iter().map(|q| keys.queue(q)));
    script_keys.extend(queues.iter().map(|q| keys.wakeup(q)));
    let mut args: Vec<Vec<u8>> = vec![
        execution_id.into(),
        queues.len().to_string().into(),
        keys.job(ID_MARK).into(),
        keys.execution(ID_MARK, execution_id).into(),
        keys.executions(ID_MARK).into(),
        MARKER_SECONDS.to_string().into(),
    ];
    args.extend(queues.iter().map(|q| q.clone().into_bytes()));
    let reply =
        redis.run(|session| session.query(&session.script("reclaim", &script_keys, &args)))?;
    let items = reply::items(&reply)?;
    match items {
        [outcome] if reply::text(outcome)? == "absent" => Ok(Reclaimed::Absent),
        [outcome, job_id, queue] if reply::text(outcome)? == "released" => {
            Ok(Reclaimed::Released {
                job_id: reply::text(job_id)?,
                queue: reply::text(queue)?,
            })
        }
        _ => Err(Error::Reply(format!("reclaim returned {items:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::{self, Step};
    use crate::take::TakeRequest;
    use crate::testing::{first_taken, server_with_jobs, take_request};
    use redis::Commands;

    const WORKER: &str = "w1";

    fn held_take(execution_id: &str) -> Step {
        Step {
            running: true,
            records: Vec::new(),
            takes: vec![TakeRequest {
                held: true,
                ..take_request(&["q".into()], execution_id)
            }],
        }
    }

    fn held<'a>(job_id: &'a str, execution_id: &'a str) -> Held<'a> {
        Held {
            worker: WORKER,
            job_id,
            execution_id,
            queue: "q",
        }
    }

    #[test]
    fn a_released_job_goes_back_to_the_front_of_its_queue_once() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&["a", "b"]);
        let _: () = con.hset("rq:worker:w1", "state", "busy").unwrap_or(());
        let taken = step::run(&mut redis, &keys, &held_take("e1"));
        assert!(first_taken(&taken).is_some(), "{taken:?}");
        let released = release(&mut redis, &keys, &held("a", "e1"));
        assert_eq!(released, Ok("released".to_string()));
        let queue: Vec<String> = con.lrange("rq:queue:q", 0, -1).unwrap_or_default();
        assert_eq!(queue, vec!["a".to_string(), "b".to_string()]);
        let (status, held_by, worker): (Option<String>, Option<String>, Option<String>) =
            redis::cmd("HMGET")
                .arg("rq:job:a")
                .arg("status")
                .arg("jobpool_held")
                .arg("worker_name")
                .query(&mut con)
                .unwrap_or((None, None, None));
        assert_eq!(
            (status.as_deref(), held_by, worker.as_deref()),
            (Some("queued"), None, Some(""))
        );
        let wip: usize = con.zcard("rq:wip:q").unwrap_or(99);
        assert_eq!(wip, 0);
        let state: Option<String> = con.hget("rq:worker:w1", "state").unwrap_or(None);
        assert_eq!(state.as_deref(), Some("idle"));
        // Again (a lost reply, or the supervisor settling after the worker did it): no change.
        let again = release(&mut redis, &keys, &held("a", "e1"));
        assert_eq!(again, Ok("stale".to_string()));
        let queue: Vec<String> = con.lrange("rq:queue:q", 0, -1).unwrap_or_default();
        assert_eq!(queue, vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn a_held_job_taken_back_canceled_or_deleted_is_not_put_back() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&["a", "b", "c"]);
        let queues = vec!["q".to_string()];
        for execution_id in ["e1", "e2", "e3"] {
            let taken = step::run(&mut redis, &keys, &held_take(execution_id));
            assert!(first_taken(&taken).is_some(), "{taken:?}");
        }
        // a: its supervisor took it back first.
        let reclaimed = reclaim(&mut redis, &keys, WORKER, &queues, "e1");
        assert!(matches!(reclaimed, Ok(Reclaimed::Released { .. })));
        assert_eq!(
            release(&mut redis, &keys, &held("a", "e1")),
            Ok("stale".to_string())
        );
        // b: canceled as it was held (out of the started registry, status canceled).
        let canceled: redis::RedisResult<()> = redis::pipe()
            .hset("rq:job:b", "status", "canceled")
            .zrem("rq:wip:q", "b:e2")
            .query(&mut con);
        assert!(canceled.is_ok());
        assert_eq!(
            release(&mut redis, &keys, &held("b", "e2")),
            Ok("stale".to_string())
        );
        let status: Option<String> = con.hget("rq:job:b", "status").unwrap_or(None);
        assert_eq!(status.as_deref(), Some("canceled"));
        // c: deleted as it was held.
        let deleted: redis::RedisResult<()> = con.del("rq:job:c");
        assert!(deleted.is_ok());
        assert_eq!(
            release(&mut redis, &keys, &held("c", "e3")),
            Ok("deleted".to_string())
        );
        let left: Vec<String> = con.keys("*c:e3*").unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
        let queue: Vec<String> = con.lrange("rq:queue:q", 0, -1).unwrap_or_default();
        assert_eq!(queue, vec!["a".to_string()]);
        let wip: usize = con.zcard("rq:wip:q").unwrap_or(99);
        assert_eq!(wip, 0);
    }

    #[test]
    fn a_held_job_goes_back_to_the_front_of_its_queue() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&["a", "b"]);
        let taken = step::run(&mut redis, &keys, &held_take("e1"));
        let Some(a) = first_taken(&taken) else {
            panic!("{taken:?}")
        };
        assert_eq!(a.job_id, "a");
        let held: Option<String> = con.hget("rq:job:a", "jobpool_held").unwrap_or(None);
        assert_eq!(held.as_deref(), Some("e1"));
        let queues = vec!["q".to_string()];
        let outcome = reclaim(&mut redis, &keys, WORKER, &queues, "e1");
        assert_eq!(
            outcome,
            Ok(Reclaimed::Released {
                job_id: "a".into(),
                queue: "q".into()
            })
        );
        let queue: Vec<String> = con.lrange("rq:queue:q", 0, -1).unwrap_or_default();
        assert_eq!(queue, vec!["a".to_string(), "b".to_string()]);
        let (status, held): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg("rq:job:a")
            .arg("status")
            .arg("jobpool_held")
            .query(&mut con)
            .unwrap_or((None, None));
        assert_eq!((status.as_deref(), held), (Some("queued"), None));
        let wip: usize = con.zcard("rq:wip:q").unwrap_or(99);
        let mine: usize = con.scard("rq:worker:w1:executions").unwrap_or(99);
        assert_eq!((wip, mine), (0, 0));
        // Reclaiming again finds nothing, and leaves a marker.
        assert_eq!(
            reclaim(&mut redis, &keys, WORKER, &queues, "e1"),
            Ok(Reclaimed::Absent)
        );
    }

    #[test]
    fn a_take_reclaimed_before_it_ran_takes_nothing() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&["a"]);
        let queues = vec!["q".to_string()];
        assert_eq!(
            reclaim(&mut redis, &keys, WORKER, &queues, "e1"),
            Ok(Reclaimed::Absent)
        );
        let late = step::run(&mut redis, &keys, &held_take("e1"));
        assert!(matches!(&late, Ok(t) if t.taken.is_empty()), "{late:?}");
        let queue: Vec<String> = con.lrange("rq:queue:q", 0, -1).unwrap_or_default();
        assert_eq!(queue, vec!["a".to_string()]);
        let marker: bool = con.exists("rq:jobpool:reclaimed:e1").unwrap_or(true);
        assert!(!marker, "the take consumed its marker");
        // A later held take under another id takes the job.
        let next = step::run(&mut redis, &keys, &held_take("e2"));
        assert!(matches!(&next, Ok(t) if t.taken.len() == 1), "{next:?}");
    }

    #[test]
    fn a_take_ahead_leaves_the_workers_state_alone() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&["a"]);
        let _: () = con.hset("rq:worker:w1", "state", "idle").unwrap_or(());
        let taken = step::run(&mut redis, &keys, &held_take("e1"));
        assert!(first_taken(&taken).is_some(), "{taken:?}");
        let state: Option<String> = con.hget("rq:worker:w1", "state").unwrap_or(None);
        assert_eq!(state.as_deref(), Some("idle"));
        let held: Option<String> = con.hget("rq:job:a", "jobpool_held").unwrap_or(None);
        assert_eq!(held.as_deref(), Some("e1"));
    }
}
