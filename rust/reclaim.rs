//! Taking back a job a worker holds (see `ledger` and `lua/reclaim.lua`): once the ledger has
//! given the supervisor the hold, the job goes back to the front of its queue, found by its
//! execution id alone. One round trip.

use crate::conn::Redis;
use crate::error::{Error, Result};
use crate::keys::{KeySchema, ID_MARK};
use crate::reply;

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

/// Puts back the job `worker` took under `execution_id` from one of `queues`.
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
    use crate::step::{self, Step, TakeSpec};
    use crate::testing::{first_taken, server_with_jobs};
    use redis::Commands;

    const WORKER: &str = "w1";

    fn held_take(execution_id: &str) -> Step {
        Step {
            running: true,
            records: Vec::new(),
            takes: vec![TakeSpec {
                queues: vec!["q".into()],
                worker: WORKER.into(),
                execution_id: execution_id.into(),
                heartbeat_ttl: 30,
                held: true,
                marked_held: false,
                repeat: false,
            }],
        }
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
