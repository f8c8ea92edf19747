//! Taking a worker's next job (see `lua/take.lua`): one round trip when work is waiting;
//! otherwise a bounded block on the queues' wake-up lists, then one more look.

use std::time::Duration;

use redis::Value;

use crate::clock::Now;
use crate::conn::Redis;
use crate::error::{Error, Result};
use crate::keys::{KeySchema, ID_MARK};
use crate::reply;
use crate::scripts::ScriptCall;

/// One take: who is taking, from which queues (in priority order), under which execution id.
/// A worker's take alone (`take`) or a part of its step (`step::Step::takes`).
#[derive(Debug, Clone)]
pub struct TakeRequest {
    pub queues: Vec<String>,
    pub worker: String,
    /// Chosen by the caller, once per take: retrying with it returns the same job.
    pub execution_id: String,
    /// Seconds an execution lives without a heartbeat; 0 derives it from the job's timeout.
    pub heartbeat_ttl: u64,
    /// A take ahead: a pool worker takes the job while another one runs, and holds it until
    /// it starts (see `ledger`); the job is marked held, and the worker's state left alone.
    pub held: bool,
    /// The job is marked held even if it is not taken ahead: a worker that works in batches
    /// marks a job started only with its record (see `lua/take.lua`).
    pub marked_held: bool,
}

/// The job timeout (seconds) of a job that sets none, as RQ's.
pub const DEFAULT_JOB_TIMEOUT: u64 = 180;

/// A job marked started for the taker.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    pub queue: String,
    pub job_id: String,
    pub execution_id: String,
    pub heartbeat_ttl: u64,
    /// The job hash, as stored.
    pub fields: Vec<(String, Vec<u8>)>,
}

/// A call of `take.lua` for `request`; `repeat` when an earlier attempt's reply was lost,
/// `after_record` when it follows the worker's record of a job (its state stays busy if it
/// takes one, and becomes idle if not).
pub fn take_call(
    keys: &KeySchema,
    request: &TakeRequest,
    now: &Now,
    repeat: bool,
    after_record: bool,
) -> ScriptCall {
    let mut script_keys = vec![
        keys.worker_executions(&request.worker),
        keys.worker(&request.worker),
        keys.suspended(),
        keys.reclaimed(&request.execution_id),
    ];
    script_keys.extend(request.queues.iter().map(|q| keys.queue(q)));
    script_keys.extend(request.queues.iter().map(|q| keys.registry("started", q)));
    let state_rule = match (request.held, after_record) {
        (true, _) => "2",
        (false, true) => "1",
        (false, false) => "0",
    };
    let mut args: Vec<Vec<u8>> = vec![
        request.execution_id.clone().into_bytes(),
        request.worker.clone().into_bytes(),
        now.timestamp.clone().into(),
        now.epoch_text().into(),
        request.heartbeat_ttl.to_string().into(),
        keys.job(ID_MARK).into(),
        keys.execution(ID_MARK, &request.execution_id).into(),
        keys.executions(ID_MARK).into(),
        if repeat { "1" } else { "0" }.into(),
        state_rule.into(),
        DEFAULT_JOB_TIMEOUT.to_string().into(),
        if request.marked_held { "1" } else { "0" }.into(),
        request.queues.len().to_string().into(),
    ];
    args.extend(request.queues.iter().map(|q| q.clone().into_bytes()));
    ScriptCall {
        name: "take",
        keys: script_keys,
        args,
    }
}

/// The job in a `take.lua` reply, if it took one.
pub fn parse_taken(value: &Value) -> Result<Option<Taken>> {
    if matches!(value, Value::Nil) {
        return Ok(None);
    }
    let items = reply::items(value)?;
    let [queue, job_id, execution_id, heartbeat_ttl, hash] = items else {
        return Err(Error::Reply(format!("take returned {} items", items.len())));
    };
    let heartbeat_ttl = reply::text(heartbeat_ttl)?
        .parse()
        .map_err(|e| Error::Reply(format!("heartbeat ttl: {e}")))?;
    let hash = reply::items(hash)?;
    if hash.len() % 2 != 0 {
        return Err(Error::Reply(
            "a job hash with an odd number of items".into(),
        ));
    }
    let fields = hash
        .chunks(2)
        .map(|pair| Ok((reply::text(&pair[0])?, reply::bytes(&pair[1])?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Taken {
        queue: reply::text(queue)?,
        job_id: reply::text(job_id)?,
        execution_id: reply::text(execution_id)?,
        heartbeat_ttl,
        fields,
    }))
}

fn take_once(redis: &mut Redis, keys: &KeySchema, request: &TakeRequest) -> Result<Option<Taken>> {
    let mut attempts = 0;
    let reply = redis.run(|session| {
        attempts += 1;
        session.query(&session.call(&take_call(keys, request, &Now::read(), attempts > 1, false)))
    })?;
    parse_taken(&reply)
}

/// Takes the next job. With `wait`, when every queue is empty, blocks up to `wait` on the
/// queues' wake-up lists (a marker is not a job: popping one loses nothing), then looks once
/// more; jobs pushed by plain RQ clients, which leave no marker, are found by that second look.
pub fn take(
    redis: &mut Redis,
    keys: &KeySchema,
    request: &TakeRequest,
    wait: Option<Duration>,
) -> Result<Option<Taken>> {
    if let Some(taken) = take_once(redis, keys, request)? {
        return Ok(Some(taken));
    }
    let Some(wait) = wait else {
        return Ok(None);
    };
    let mut block = redis::cmd("BLPOP");
    for queue in &request.queues {
        block.arg(keys.wakeup(queue));
    }
    block.arg(wait.as_secs_f64());
    redis.run(|session| session.blocking_query(&block, wait))?;
    take_once(redis, keys, request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{enqueue, server_with_jobs, take_request as request, RedisServer};
    use redis::Commands;
    use std::time::Instant;

    #[test]
    fn a_stored_timeout_expire_would_refuse_takes_the_default_and_loses_nothing() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
        let queues = vec!["q".to_string()];
        for (id, timeout) in [("huge", "1e16"), ("half", "1.5"), ("word", "soon")] {
            enqueue(&mut con, "q", id);
            let _: () = con
                .hset(format!("rq:job:{id}"), "timeout", timeout)
                .unwrap_or(());
            let mut lone = request(&queues, id);
            lone.heartbeat_ttl = 0; // derived from the job's timeout, as a lone worker takes
            let taken = take(&mut redis, &keys, &lone, None);
            let Ok(Some(taken)) = taken else {
                panic!("{timeout}: {taken:?}")
            };
            assert_eq!(taken.heartbeat_ttl, DEFAULT_JOB_TIMEOUT + 60, "{timeout}");
            let score: Option<f64> = con.zscore("rq:wip:q", format!("{id}:{id}")).unwrap_or(None);
            assert!(
                score.is_some(),
                "{timeout}: the job is in the started registry"
            );
        }
    }

    #[test]
    fn takes_by_priority_and_marks_started() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
        enqueue(&mut con, "low", "a");
        enqueue(&mut con, "high", "b");
        let queues = vec!["high".to_string(), "low".to_string()];
        let first = take(&mut redis, &keys, &request(&queues, "e1"), None);
        let Ok(Some(first)) = first else {
            panic!("no job: {first:?}")
        };
        assert_eq!((first.queue.as_str(), first.job_id.as_str()), ("high", "b"));
        let status: Option<String> = con.hget("rq:job:b", "status").ok();
        assert_eq!(status.as_deref(), Some("started"));
        let score: Option<f64> = con.zscore("rq:wip:high", "b:e1").ok();
        assert!(score.is_some());
        // A pool worker's take (a heartbeat ttl given) leaves RQ's execution records to its
        // supervisor's heartbeat.
        let recorded: bool = con.exists("rq:execution:b:e1").unwrap_or(true);
        assert!(!recorded);
        // A repeat of a take whose reply was lost returns the same job.
        let repeated = redis.run(|session| {
            session.query(&session.call(&take_call(
                &keys,
                &request(&queues, "e1"),
                &Now::read(),
                true,
                false,
            )))
        });
        let repeated = repeated.and_then(|reply| parse_taken(&reply));
        assert_eq!(
            repeated.map(|t| t.map(|t| t.job_id)),
            Ok(Some("b".to_string()))
        );
        // A lone worker's take (ttl 0: nothing heartbeats its executions) writes them.
        let mut lone = request(&queues, "e2");
        lone.heartbeat_ttl = 0;
        let second = take(&mut redis, &keys, &lone, None);
        assert_eq!(
            second.map(|t| t.map(|t| t.job_id)),
            Ok(Some("a".to_string()))
        );
        let members: Vec<String> = con.smembers("rq:worker:w1:executions").unwrap_or_default();
        assert_eq!(members, vec!["a:e2".to_string()]);
        let worker_name: Option<String> = con.hget("rq:execution:a:e2", "worker_name").ok();
        assert_eq!(worker_name.as_deref(), Some("w1"));
        let indexed: Option<f64> = con.zscore("rq:executions:a", "e2").unwrap_or(None);
        assert!(indexed.is_some());
        let none = take(&mut redis, &keys, &request(&queues, "e3"), None);
        assert_eq!(none, Ok(None));
    }

    #[test]
    fn ids_without_a_job_hash_are_dropped() {
        let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
        let _: () = con.rpush("rq:queue:q", "ghost").unwrap_or(());
        enqueue(&mut con, "q", "real");
        let queues = vec!["q".to_string()];
        let taken = take(&mut redis, &keys, &request(&queues, "e1"), None);
        assert_eq!(
            taken.map(|t| t.map(|t| t.job_id)),
            Ok(Some("real".to_string()))
        );
    }

    #[test]
    fn blocked_take_wakes_on_a_marker_and_finds_plain_pushes_after_the_wait() {
        let server = RedisServer::start();
        let keys = KeySchema::new("rq");
        let mut redis = Redis::new(server.target());
        let queues = vec!["q".to_string()];
        let mut con = server.connection();
        // A plain RQ push leaves no marker: found by the look after the bounded wait.
        enqueue(&mut con, "q", "plain");
        let _: () = con.del("rq:jobpool:wakeup:q").unwrap_or(());
        let _: () = con.lpop("rq:queue:q", None).unwrap_or(());
        let started = Instant::now();
        let empty = take(
            &mut redis,
            &keys,
            &request(&queues, "e1"),
            Some(Duration::from_millis(300)),
        );
        assert_eq!(empty, Ok(None));
        assert!(started.elapsed() >= Duration::from_millis(250));
        let _: () = con.rpush("rq:queue:q", "plain").unwrap_or(());
        let found = take(
            &mut redis,
            &keys,
            &request(&queues, "e2"),
            Some(Duration::from_secs(1)),
        );
        assert_eq!(
            found.map(|t| t.map(|t| t.job_id)),
            Ok(Some("plain".to_string()))
        );
    }
}
