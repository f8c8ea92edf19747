//! Abandoned-job recovery: executions whose heartbeat lapsed (their worker died, or the whole
//! pool vanished) are failed, or retried, with AbandonedJobError, as RQ's StartedJobRegistry
//! cleanup records them. Two round trips for any number of queues and executions.

use crate::clock::Now;
use crate::conn::Redis;
use crate::error::Result;
use crate::keys::KeySchema;
use crate::lifecycle::{fail_call, Execution, Failure, Traceback};
use crate::reply;
use crate::scripts::steps;

/// One recovered execution and what became of its job ("failed", "retried", "scheduled", or
/// "cleared" when the job was no longer started).
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    pub queue: String,
    pub job_id: String,
    pub execution_id: String,
    pub outcome: String,
}

/// Finds the lapsed executions in the started registries of `queues` and fails or retries
/// them with `traceback`. An execution whose heartbeat comes back meanwhile is left alone.
///
/// `lapsed_by` (epoch seconds; now if None) is RQ's `StartedJobRegistry.cleanup(timestamp)`:
/// the executions whose heartbeat lapses by then count as lapsed. Those lapsing later than now
/// have their registry score brought down to now first, so that `fail.lua` (which leaves alone
/// an execution whose heartbeat has not lapsed) records them.
pub fn recover_abandoned(
    redis: &mut Redis,
    keys: &KeySchema,
    queues: &[String],
    traceback: &Traceback<'_>,
    lapsed_by: Option<f64>,
) -> Result<Vec<Recovered>> {
    let now = Now::read();
    let cutoff = lapsed_by.unwrap_or(now.epoch).floor() as i64;
    let mut lapsed: Vec<(String, String, String)> = Vec::new();
    let listed = redis.run(|session| {
        let commands: Vec<redis::Cmd> = queues
            .iter()
            .map(|queue| {
                let mut command = redis::cmd("ZRANGEBYSCORE");
                command
                    .arg(keys.registry("started", queue))
                    .arg("-inf")
                    .arg(cutoff);
                command
            })
            .collect();
        session.pipeline(&commands)
    })?;
    for (queue, members) in queues.iter().zip(listed.iter()) {
        for member in reply::texts(members)? {
            let (job_id, execution_id) = split_member(&member);
            lapsed.push((queue.clone(), job_id.to_string(), execution_id.to_string()));
        }
    }
    if lapsed.is_empty() {
        return Ok(Vec::new());
    }
    if cutoff as f64 > now.epoch.floor() {
        lapse_now(redis, keys, &lapsed, now.epoch.floor() as i64)?;
    }
    // One step of a `fail` part for each: one script run however many executions lapsed.
    let parts: Vec<_> = lapsed
        .iter()
        .map(|(queue, job_id, execution_id)| {
            let execution = Execution {
                job_id,
                execution_id,
                queue,
                worker: None,
                started_at: None,
                working_seconds: 0.0,
                marks_start: false,
            };
            fail_call(keys, &execution, Failure::Abandoned, traceback, &now, false)
        })
        .collect();
    let reply = redis.run(|session| session.query(&session.call(&steps(keys, parts.clone()))))?;
    let outcomes = reply::items(&reply)?;
    lapsed
        .into_iter()
        .zip(outcomes.iter())
        .map(|((queue, job_id, execution_id), outcome)| {
            Ok(Recovered {
                queue,
                job_id,
                execution_id,
                outcome: reply::text(outcome)?,
            })
        })
        .filter(|recovered| !matches!(recovered, Ok(r) if r.outcome == "stale"))
        .collect()
}

/// Brings the started-registry score of each of `lapsed` down to `now`, whole seconds, no
/// later than the time `fail.lua` is given (`ZADD XX LT`: a member gone or already lapsed is
/// left as it is).
fn lapse_now(
    redis: &mut Redis,
    keys: &KeySchema,
    lapsed: &[(String, String, String)],
    now: i64,
) -> Result<()> {
    redis.run(|session| {
        let commands: Vec<redis::Cmd> = lapsed
            .iter()
            .map(|(queue, job_id, execution_id)| {
                let member = if execution_id.is_empty() {
                    job_id.clone()
                } else {
                    format!("{job_id}:{execution_id}")
                };
                let mut command = redis::cmd("ZADD");
                command
                    .arg(keys.registry("started", queue))
                    .arg("XX")
                    .arg("LT")
                    .arg(now)
                    .arg(member);
                command
            })
            .collect();
        session.pipeline(&commands).map(|_| ())
    })
}

/// A started-registry member's job id and execution id. RQ before 2.0 wrote bare job ids;
/// RQ reads one as a job with no execution id (`""`), and so does jobpool: `fail.lua` then
/// removes the bare member, and a lapsed one is recovered like any other.
fn split_member(member: &str) -> (&str, &str) {
    member.split_once(':').unwrap_or((member, ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::take::{take, TakeRequest};
    use crate::testing::{enqueue, server_with_jobs, take_request};
    use redis::Commands;

    #[test]
    fn lapsed_executions_are_failed_or_retried_and_live_ones_kept() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
        for id in ["dead", "retry", "alive"] {
            enqueue(&mut con, "q", id);
        }
        let _: () = con.hset("rq:job:retry", "retries_left", "1").unwrap_or(());
        let queues = vec!["q".to_string()];
        for execution_id in ["e1", "e2", "e3"] {
            let request = TakeRequest {
                heartbeat_ttl: 60,
                ..take_request(&queues, execution_id)
            };
            assert!(matches!(
                take(&mut redis, &keys, &request, None),
                Ok(Some(_))
            ));
        }
        // The first two executions' heartbeats lapsed long ago.
        let _: () = con.zadd("rq:wip:q", "dead:e1", 10).unwrap_or(());
        let _: () = con.zadd("rq:wip:q", "retry:e2", 10).unwrap_or(());
        let traceback = Traceback {
            exc_info: b"x",
            exc_string: b"eA==",
        };
        let recovered = recover_abandoned(&mut redis, &keys, &queues, &traceback, None);
        let Ok(mut recovered) = recovered else {
            panic!("{recovered:?}")
        };
        recovered.sort_by(|a, b| a.job_id.cmp(&b.job_id));
        let outcomes: Vec<(&str, &str)> = recovered
            .iter()
            .map(|r| (r.job_id.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(outcomes, vec![("dead", "failed"), ("retry", "retried")]);
        let wip: Vec<String> = con.zrange("rq:wip:q", 0, -1).unwrap_or_default();
        assert_eq!(wip, vec!["alive:e3".to_string()]);
        let again = recover_abandoned(&mut redis, &keys, &queues, &traceback, None);
        assert_eq!(again, Ok(vec![]));
        // RQ's cleanup(timestamp): a live execution whose heartbeat lapses by then is failed.
        let far_ahead = Some(Now::read().epoch + 86_400.0);
        let ahead = recover_abandoned(&mut redis, &keys, &queues, &traceback, far_ahead);
        let outcomes: Vec<(String, String)> = ahead
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.job_id, r.outcome))
            .collect();
        assert_eq!(outcomes, vec![("alive".to_string(), "failed".to_string())]);
        let wip: Vec<String> = con.zrange("rq:wip:q", 0, -1).unwrap_or_default();
        assert!(wip.is_empty(), "{wip:?}");
    }

    #[test]
    fn bare_job_ids_of_rq_before_2_are_recovered_with_the_rest() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
        for id in ["bare", "done", "modern"] {
            enqueue(&mut con, "q", id);
        }
        // Taken as RQ before 2.0 took them (a bare id in the started registry), but for
        // "modern"; "done" has finished since, and "gone" no longer exists.
        let setup: redis::RedisResult<()> = redis::pipe()
            .del("rq:queue:q")
            .hset("rq:job:bare", "status", "started")
            .hset("rq:job:modern", "status", "started")
            .hset("rq:job:done", "status", "finished")
            .zadd_multiple(
                "rq:wip:q",
                &[(10, "bare"), (10, "done"), (10, "gone"), (10, "modern:e1")],
            )
            .zadd("rq:wip:q", "live", 4_000_000_000_i64)
            .query(&mut con);
        assert!(setup.is_ok(), "{setup:?}");
        let traceback = Traceback {
            exc_info: b"x",
            exc_string: b"eA==",
        };
        let queues = vec!["q".to_string()];
        let recovered = recover_abandoned(&mut redis, &keys, &queues, &traceback, None);
        let Ok(mut recovered) = recovered else {
            panic!("{recovered:?}")
        };
        recovered.sort_by(|a, b| a.job_id.cmp(&b.job_id));
        let outcomes: Vec<(&str, &str, &str)> = recovered
            .iter()
            .map(|r| (&*r.job_id, &*r.execution_id, &*r.outcome))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("bare", "", "failed"),
                ("done", "", "cleared"),
                ("gone", "", "cleared"),
                ("modern", "e1", "failed"),
            ]
        );
        let wip: Vec<String> = con.zrange("rq:wip:q", 0, -1).unwrap_or_default();
        assert_eq!(wip, vec!["live".to_string()]);
        let failed: Vec<String> = con.zrange("rq:failed:q", 0, -1).unwrap_or_default();
        assert_eq!(failed, vec!["bare".to_string(), "modern".to_string()]);
    }
}
