//! Heartbeats for many executions and workers in one round trip (`lua/heartbeat.lua`): the
//! supervisor sends one batch per interval for all of its workers.

use crate::clock::Now;
use crate::conn::Redis;
use crate::error::Result;
use crate::keys::KeySchema;
use crate::reply;

/// One running execution to keep alive for `ttl` more seconds.
#[derive(Debug, Clone)]
pub struct Beat<'a> {
    pub job_id: &'a str,
    pub execution_id: &'a str,
    pub queue: &'a str,
    pub ttl: u64,
}

/// Refreshes the executions in `beats` and the workers in `workers` (name, ttl). Returns the
/// `<job_id>:<execution_id>` of the executions that are no longer running.
pub fn heartbeat(
    redis: &mut Redis,
    keys: &KeySchema,
    beats: &[Beat<'_>],
    workers: &[(&str, u64)],
) -> Result<Vec<String>> {
    if beats.is_empty() && workers.is_empty() {
        return Ok(Vec::new());
    }
    let mut script_keys = Vec::with_capacity(beats.len() * 4 + workers.len() * 2);
    for beat in beats {
        script_keys.push(keys.registry("started", beat.queue));
        script_keys.push(keys.execution(beat.job_id, beat.execution_id));
        script_keys.push(keys.executions(beat.job_id));
        script_keys.push(keys.job(beat.job_id));
    }
    for (worker, _) in workers {
        script_keys.push(keys.worker(worker));
        script_keys.push(keys.worker_executions(worker));
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
        }
        args.extend(workers.iter().map(|(_, ttl)| ttl.to_string().into_bytes()));
        session.query(&session.script("heartbeat", &script_keys, &args))
    })?;
    reply::texts(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::take::{take, TakeRequest};
    use crate::testing::{enqueue, RedisServer};
    use redis::Commands;

    #[test]
    fn refreshes_live_executions_and_reports_the_rest() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let mut con = server.connection();
        let _: () = con
            .hset_multiple("rq:worker:w1", &[("state", "busy")])
            .unwrap_or(());
        enqueue(&mut con, "q", "a");
        let queues = vec!["q".to_string()];
        let request = TakeRequest {
            queues: &queues,
            worker: "w1",
            execution_id: "e1",
            heartbeat_ttl: 5,
            held: false,
        };
        assert!(matches!(
            take(&mut redis, &keys, &request, None),
            Ok(Some(_))
        ));
        let before: f64 = con.zscore("rq:wip:q", "a:e1").unwrap_or(0.0);
        let beats = [
            Beat {
                job_id: "a",
                execution_id: "e1",
                queue: "q",
                ttl: 100,
            },
            Beat {
                job_id: "gone",
                execution_id: "e9",
                queue: "q",
                ttl: 100,
            },
        ];
        let stale = heartbeat(&mut redis, &keys, &beats, &[("w1", 90), ("nobody", 90)]);
        assert_eq!(stale, Ok(vec!["gone:e9".to_string()]));
        let after: f64 = con.zscore("rq:wip:q", "a:e1").unwrap_or(0.0);
        assert!(after >= before + 90.0, "{before} -> {after}");
        let ttl: i64 = con.ttl("rq:worker:w1").unwrap_or(-2);
        assert!(ttl > 80 && ttl <= 90, "{ttl}");
        let gone_job: bool = con.exists("rq:job:gone").unwrap_or(true);
        let nobody: bool = con.exists("rq:worker:nobody").unwrap_or(true);
        assert!(!gone_job && !nobody);
    }
}
