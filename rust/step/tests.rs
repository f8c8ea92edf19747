use super::*;
use crate::lifecycle::Ending;
use crate::testing::{self, first_taken, server_with_jobs};
use redis::Commands;

fn take_request(execution_id: &str) -> TakeRequest {
    testing::take_request(&["q".into()], execution_id)
}

/// A take ahead, held until it starts.
fn held_request(execution_id: &str) -> TakeRequest {
    TakeRequest {
        held: true,
        ..take_request(execution_id)
    }
}

/// Takes ahead a batch of jobs, one for each of `execution_ids`, while a job runs.
fn take_held_batch(
    redis: &mut Redis,
    keys: &KeySchema,
    execution_ids: &[&str],
) -> Result<Transition> {
    let step = Step {
        takes: execution_ids.iter().map(|id| held_request(id)).collect(),
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
            takes: vec![take_request("e1")],
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
            takes: vec![take_request("e2")],
        },
        false,
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
            takes: vec![take_request("e3")],
        },
        false,
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
    let held = |execution_id: &str| TakeRequest {
        held: true,
        marked_held: true,
        ..take_request(execution_id)
    };
    let plain = |take: TakeRequest| Step {
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
    let held = held_request;
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
    let again = run_repeating(&mut redis, &keys, &second, true);
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
    let takes = ["e1", "e2", "e3"].map(take_request).to_vec();
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
        takes: vec![take_request(execution_id)],
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
