//! Endings of jobs whose hashes or workers hold values another client stored that the
//! scripts cannot use: each falls back to a default, and nothing is lost.

use super::*;

#[test]
fn unusable_retry_intervals_retry_at_once_and_lose_nothing() {
    let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
    let queues = vec!["q".to_string()];
    let corrupt = [
        "not json",
        "[1,",
        "5",
        "{\"a\": 1}",
        "[\"soon\"]",
        "[[1]]",
        "[-5]",
        "[1e400]",
    ];
    for (n, intervals) in corrupt.iter().enumerate() {
        let job_id = format!("j{n}");
        enqueue(&mut con, "q", &job_id);
        set_job_fields(
            &mut con,
            &job_id,
            &[("retries_left", "1"), ("retry_intervals", intervals)],
        );
        let taken = start(&mut redis, &keys, &queues, &format!("e{n}a"));
        let first = fail(&mut redis, &keys, &taken, Failure::Failed);
        assert_eq!(
            outcome_of(first),
            Some("retried".to_string()),
            "{intervals}"
        );
        assert_eq!(places_of(&mut con, &job_id), vec!["queue"], "{intervals}");
        let taken = start(&mut redis, &keys, &queues, &format!("e{n}b"));
        let second = fail(&mut redis, &keys, &taken, Failure::Failed);
        assert_eq!(
            outcome_of(second),
            Some("failed".to_string()),
            "{intervals}"
        );
        assert_eq!(places_of(&mut con, &job_id), vec!["failed"], "{intervals}");
    }
}

#[test]
fn a_repeat_goes_round_once_per_success_whatever_its_stored_intervals() {
    let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
    let queues = vec!["q".to_string()];
    // (repeat_intervals, where the job goes, its intervals after)
    let cases = [
        ("[0, 30]", vec!["queue", "finished"], Some("[30]")),
        (
            "[20,30, 40]",
            vec!["finished", "scheduled"],
            Some("[30, 40]"),
        ),
        ("[7]", vec!["finished", "scheduled"], Some("[7]")),
        ("not json", vec!["queue", "finished"], Some("not json")),
        ("[[1], 5]", vec!["queue", "finished"], Some("[[1], 5]")),
        ("[-5, 5]", vec!["queue", "finished"], Some("[-5, 5]")),
    ];
    for (n, (intervals, places, after)) in cases.iter().enumerate() {
        let job_id = format!("j{n}");
        enqueue(&mut con, "q", &job_id);
        set_job_fields(
            &mut con,
            &job_id,
            &[("repeats_left", "2"), ("repeat_intervals", intervals)],
        );
        let taken = start(&mut redis, &keys, &queues, &format!("e{n}"));
        let done = finish(&mut redis, &keys, &execution(&taken), None, 500, None);
        assert_eq!(
            outcome_of(done),
            Some("finished".to_string()),
            "{intervals}"
        );
        assert_eq!(&places_of(&mut con, &job_id), places, "{intervals}");
        assert_eq!(
            job_field(&mut con, &job_id, "repeats_left").as_deref(),
            Some("1"),
            "{intervals}"
        );
        assert_eq!(
            job_field(&mut con, &job_id, "repeat_intervals").as_deref(),
            *after,
            "{intervals}"
        );
        let left: i64 = con.ttl(format!("rq:job:{job_id}")).unwrap_or(0);
        assert_eq!(left, -1, "{intervals}: a repeated job keeps its hash");
        let _: redis::RedisResult<()> = con.del("rq:queue:q");
        let _: redis::RedisResult<()> = con.del("rq:scheduled:q");
    }
}

#[test]
fn unusable_stored_ttls_fall_back_to_the_defaults() {
    let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
    let queues = vec!["q".to_string()];
    for (n, ttl) in ["10000000000000000", "1e16", "1.5", "-7"]
        .iter()
        .enumerate()
    {
        let finishing = format!("f{n}");
        enqueue(&mut con, "q", &finishing);
        set_job_fields(&mut con, &finishing, &[("result_ttl", ttl)]);
        let taken = start(&mut redis, &keys, &queues, &format!("e{n}f"));
        let done = finish(&mut redis, &keys, &execution(&taken), None, 500, None);
        assert_eq!(outcome_of(done), Some("finished".to_string()), "{ttl}");
        assert_eq!(places_of(&mut con, &finishing), vec!["finished"], "{ttl}");
        let left: i64 = con.ttl(format!("rq:job:{finishing}")).unwrap_or(0);
        assert!(left > 0 && left <= 500, "{ttl}: {left}");

        let failing = format!("x{n}");
        enqueue(&mut con, "q", &failing);
        set_job_fields(&mut con, &failing, &[("failure_ttl", ttl)]);
        let taken = start(&mut redis, &keys, &queues, &format!("e{n}x"));
        let done = fail(&mut redis, &keys, &taken, Failure::Failed);
        assert_eq!(outcome_of(done), Some("failed".to_string()), "{ttl}");
        assert_eq!(places_of(&mut con, &failing), vec!["failed"], "{ttl}");
        let left: i64 = con.ttl(format!("rq:job:{failing}")).unwrap_or(0);
        assert!(left > 31_535_000 && left <= 31_536_000, "{ttl}: {left}");
    }
}

#[test]
fn corrupt_worker_counters_start_again() {
    let (_server, keys, mut redis, mut con) = server_with_jobs(&[]);
    let set: redis::RedisResult<()> = con.hset_multiple(
        "rq:worker:w1",
        &[
            ("successful_job_count", "many"),
            ("failed_job_count", "007"),
            ("total_working_time", "long"),
        ],
    );
    assert!(set.is_ok(), "{set:?}");
    enqueue(&mut con, "q", "a");
    enqueue(&mut con, "q", "b");
    let queues = vec!["q".to_string()];
    let taken = start(&mut redis, &keys, &queues, "e1");
    let done = finish(&mut redis, &keys, &execution(&taken), None, 500, None);
    assert_eq!(outcome_of(done), Some("finished".to_string()));
    let taken = start(&mut redis, &keys, &queues, "e2");
    assert_eq!(
        outcome_of(fail(&mut redis, &keys, &taken, Failure::Failed)),
        Some("failed".to_string())
    );
    let counters: Vec<Option<String>> = redis::cmd("HMGET")
        .arg("rq:worker:w1")
        .arg(&[
            "successful_job_count",
            "failed_job_count",
            "total_working_time",
        ])
        .query(&mut con)
        .unwrap_or_default();
    assert_eq!(
        counters,
        vec![
            Some("1".to_string()),
            Some("1".to_string()),
            Some("0.5".to_string())
        ]
    );
}
