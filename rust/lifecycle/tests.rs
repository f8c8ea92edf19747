use super::*;
use crate::conn::Redis;
use crate::error::Result;
use crate::step::{self, Step, Transition};
use crate::take::{take, TakeRequest, Taken};
use crate::testing::{enqueue, server_with_jobs, take_request};
use redis::Commands;

mod stored_values;

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
    next: Option<&TakeRequest>,
) -> Result<Transition> {
    let ending = Ending::Finished {
        return_value: return_value.map(<[u8]>::to_vec),
        default_result_ttl,
    };
    let take = next.cloned();
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
    let entries: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
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
    let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
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
    let request = take_request(queues, execution_id);
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
    let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
    let _: () = con
        .hset_multiple("rq:worker:w1", &[("state", "idle")])
        .unwrap_or(());
    enqueue(&mut con, "q", "a");
    enqueue(&mut con, "q", "b");
    let queues = vec!["q".to_string()];
    let taken = start(&mut redis, &keys, &queues, "e1");
    let next = take_request(&queues, "e2");
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
    let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
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
    let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
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
fn an_ending_frees_a_rate_limit_slot_and_promotes_unless_the_job_is_back_on_its_queue() {
    let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
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
fn a_job_deleted_while_it_ran_is_not_brought_back() {
    let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
    let queues = vec!["q".to_string()];
    for (n, failure) in [None, Some(Failure::Failed)].into_iter().enumerate() {
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
    let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
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
