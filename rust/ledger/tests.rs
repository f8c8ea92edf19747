use super::*;

const ID: &str = "00112233445566778899aabbccddeeff";

fn id() -> [u8; 16] {
    parse_execution_id(ID).unwrap_or_default()
}

#[test]
fn execution_ids_round_trip_and_bad_ones_are_refused() {
    assert_eq!(format_execution_id(&id()), ID);
    for bad in [
        "",
        "00",
        &ID[..31],
        &format!("{}g", &ID[..31]),
        "é0112233445566778899aabbccddeef",
    ] {
        assert!(parse_execution_id(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_hold_is_started_or_reclaimed_never_both() {
    let ledger = Ledger::new(2).expect("map");
    assert_eq!(ledger.held(0), Ok(None));
    ledger.hold(0, &[id()]).expect("hold");
    assert_eq!(ledger.hold(0, &[id()]), Err(LedgerError::AlreadyHolding(0)));
    let held = ledger.held(0).expect("read").expect("held");
    assert_eq!(held.execution_ids, vec![id()]);
    assert_eq!(ledger.held(1), Ok(None));
    // The worker starts it: the supervisor's reclaim of that hold then fails.
    assert_eq!(ledger.start_held(0), Ok(true));
    assert_eq!(ledger.reclaim(0, held.token), Ok(false));
    assert_eq!(ledger.held(0), Ok(None));
    // The next hold is reclaimed first: the worker cannot start it, nor drop it.
    ledger.hold(0, &[id()]).expect("hold again");
    let again = ledger.held(0).expect("read").expect("held");
    assert_ne!(again.token, held.token);
    assert_eq!(
        ledger.reclaim(0, held.token),
        Ok(false),
        "an old token is refused"
    );
    assert_eq!(ledger.reclaim(0, again.token), Ok(true));
    assert_eq!(ledger.start_held(0), Ok(false));
    assert_eq!(ledger.drop_held(0), Ok(false));
    // After a reclaim the worker may hold again; a dropped hold is not reclaimable.
    ledger.hold(0, &[id()]).expect("hold after a reclaim");
    let third = ledger.held(0).expect("read").expect("held");
    assert_eq!(ledger.drop_held(0), Ok(true));
    assert_eq!(ledger.reclaim(0, third.token), Ok(false));
    assert_eq!(ledger.start_held(9), Err(LedgerError::NoSuchSlot(9)));
}

#[test]
fn a_batch_starts_in_order_and_what_is_not_started_is_reclaimed_whole() {
    let ledger = Ledger::new(1).expect("map");
    let ids: Vec<[u8; 16]> = (0u8..3).map(|i| [i; 16]).collect();
    assert_eq!(ledger.hold(0, &[]), Err(LedgerError::BadBatch(0)));
    let too_many = vec![id(); MAX_HELD + 1];
    assert_eq!(
        ledger.hold(0, &too_many),
        Err(LedgerError::BadBatch(MAX_HELD + 1))
    );
    ledger.hold(0, &ids).expect("hold three");
    assert_eq!(ledger.start_held(0), Ok(true));
    let rest = ledger.held(0).expect("read").expect("held");
    assert_eq!(rest.execution_ids, ids[1..].to_vec());
    // The worker starts the second: the token read before no longer reclaims anything.
    assert_eq!(ledger.start_held(0), Ok(true));
    assert_eq!(ledger.reclaim(0, rest.token), Ok(false));
    let last = ledger.held(0).expect("read").expect("held");
    assert_eq!(last.execution_ids, ids[2..].to_vec());
    assert_eq!(ledger.reclaim(0, last.token), Ok(true));
    assert_eq!(ledger.start_held(0), Ok(false), "taken back: never started");
    // A batch the queues could fill only in part shrinks; one they could not fill ends.
    ledger.hold(0, &ids).expect("hold again");
    assert_eq!(ledger.shrink_held(0, 2), Ok(true));
    let shrunk = ledger.held(0).expect("read").expect("held");
    assert_eq!(shrunk.execution_ids, ids[..2].to_vec());
    assert_eq!(ledger.start_held(0), Ok(true));
    assert_eq!(ledger.start_held(0), Ok(true));
    assert_eq!(ledger.start_held(0), Ok(false), "none is left");
    assert_eq!(ledger.held(0), Ok(None));
    ledger.hold(0, &ids).expect("hold once more");
    assert_eq!(ledger.shrink_held(0, 0), Ok(true));
    assert_eq!(ledger.held(0), Ok(None));
    assert_eq!(ledger.start_held(0), Ok(false));
}

#[test]
fn the_log_of_ended_jobs_keeps_what_was_not_recorded_and_survives_its_writer() {
    let ledger = Ledger::new(2).expect("map");
    assert_eq!(ledger.ended(0), Ok(Vec::new()));
    for entry in [&b"first"[..], b"", b"third"] {
        assert_eq!(ledger.note_ended(0, entry), Ok(true));
    }
    assert_eq!(ledger.ended(1), Ok(Vec::new()), "another slot's");
    ledger.forget_ended(0, 2).expect("forget two");
    assert_eq!(ledger.ended(0), Ok(vec![b"third".to_vec()]));
    let too_big = vec![7u8; ENDED_LOG_BYTES];
    assert_eq!(ledger.note_ended(0, &too_big), Ok(false));
    assert_eq!(ledger.ended(0), Ok(vec![b"third".to_vec()]));
    // SAFETY: the child only appends to the shared log and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let noted = ledger.note_ended(0, b"from the child").unwrap_or(false);
        unsafe { libc::_exit(if noted { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(
        ledger.ended(0),
        Ok(vec![b"third".to_vec(), b"from the child".to_vec()])
    );
    ledger.forget_ended(0, 5).expect("forget all");
    assert_eq!(ledger.ended(0), Ok(Vec::new()));
    ledger.note_ended(1, b"x").expect("note");
    ledger.clear(1).expect("clear");
    assert_eq!(ledger.ended(1), Ok(Vec::new()));
}

#[test]
fn a_hold_knows_when_it_began_and_a_cleared_slot_holds_nothing() {
    let ledger = Ledger::new(1).expect("map");
    let before = now_micros();
    ledger.hold(0, &[id()]).expect("hold");
    let held = ledger.held(0).expect("read").expect("held");
    assert!(held.since >= before && held.since <= now_micros());
    ledger.clear(0).expect("clear");
    assert_eq!(ledger.held(0), Ok(None));
    assert_eq!(ledger.reclaim(0, held.token), Ok(false));
}

#[test]
fn a_stop_request_names_one_execution_and_the_next_replaces_it() {
    let ledger = Ledger::new(2).expect("map");
    let other = parse_execution_id("ffeeddccbbaa99887766554433221100").expect("id");
    assert_eq!(ledger.stop_requested(0, &id()), Ok(false), "none yet");
    ledger.request_stop(0, &id()).expect("request");
    assert_eq!(ledger.stop_requested(0, &id()), Ok(true));
    assert_eq!(ledger.stop_requested(0, &other), Ok(false));
    assert_eq!(ledger.stop_requested(1, &id()), Ok(false), "another slot's");
    ledger.request_stop(0, &other).expect("request another");
    assert_eq!(ledger.stop_requested(0, &id()), Ok(false));
    assert_eq!(ledger.stop_requested(0, &other), Ok(true));
    assert_eq!(
        ledger.request_stop(2, &id()),
        Err(LedgerError::NoSuchSlot(2))
    );
}

#[test]
fn a_request_written_half_way_reads_as_none() {
    let ledger = Ledger::new(1).expect("map");
    ledger.request_stop(0, &id()).expect("request");
    let slot = ledger.slot(0).expect("slot");
    slot.stop_sequence.fetch_add(1, Ordering::AcqRel); // a writer stopped in the middle
    assert_eq!(ledger.stop_requested(0, &id()), Ok(false));
}

#[test]
fn a_forked_child_and_its_parent_share_the_slots() {
    let ledger = Ledger::new(1).expect("map");
    ledger.hold(0, &[id()]).expect("hold");
    // SAFETY: the child only touches atomics in the shared mapping and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let started = ledger.start_held(0).unwrap_or(false);
        unsafe { libc::_exit(if started { 0 } else { 1 }) };
    }
    assert!(pid > 0);
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(
        ledger.held(0),
        Ok(None),
        "the child's start is seen by the parent"
    );
}
