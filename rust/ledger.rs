//! The pool's ledger: what each worker holds and runs, in memory shared by the supervisor and
//! its forked workers (an anonymous `MAP_SHARED` mapping made before the fork), one slot per
//! worker, written with atomics only: no lock a dying process could leave held.
//!
//! A worker one step ahead has taken a job it has not started (it is *held*). Exactly one of
//! two things may happen to a held job, and the ledger arbitrates which with one
//! compare-and-swap on the slot's `hold` word:
//!
//! * the worker starts it (`start_held`: HELD -> STARTED), or
//! * the supervisor takes it back (`reclaim`: HELD -> RECLAIMED), when it has been held longer
//!   than the holding bound (the job before it is slow, or the worker is stopped), or the worker
//!   has died; it then puts the job back at the front of its queue (`lua/reclaim.lua`).
//!
//! The `hold` word packs a sequence number with the state, so a supervisor that read one hold
//! cannot reclaim a later one (no ABA).
//!
//! A slot also carries the execution its supervisor last asked the worker to stop (a stop-job
//! command): the supervisor writes it (`request_stop`), then signals the worker, which compares
//! it with the execution it runs or is about to start (`stop_requested`).

use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const EMPTY: u64 = 0;
const HELD: u64 = 1;
const STARTED: u64 = 2;
const RECLAIMED: u64 = 3;
const STATE_BITS: u64 = 2;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;

/// One worker's slot, on its own cache line.
#[repr(C, align(64))]
struct Slot {
    hold: AtomicU64,
    /// The held execution id (16 bytes, the 32 hex digits the worker chose), valid while
    /// `hold` says HELD with the sequence number it was written under.
    held_execution: [AtomicU64; 2],
    /// When the hold began (epoch microseconds), under the same rule as `held_execution`.
    held_since: AtomicU64,
    /// Counts the supervisor's writes of `stop_execution`: odd while one is under way.
    stop_sequence: AtomicU64,
    /// The execution id the supervisor last asked the worker to stop.
    stop_execution: [AtomicU64; 2],
}

/// A held job as the supervisor reads it: `token` identifies this very hold for `reclaim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub token: u64,
    pub execution_id: [u8; 16],
    /// When the hold began, epoch microseconds.
    pub since: u64,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as u64)
        .unwrap_or(0)
}

/// The shared mapping of `slots` slots; unmapped when dropped.
pub struct Ledger {
    slots: NonNull<Slot>,
    count: usize,
}

// SAFETY: the mapping is only ever accessed through atomics, from any thread or process.
unsafe impl Send for Ledger {}
// SAFETY: as above; `&Ledger` hands out no non-atomic access.
unsafe impl Sync for Ledger {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerError {
    /// The mapping could not be made (the OS error).
    Map(String),
    /// A slot index past the ledger's size.
    NoSuchSlot(usize),
    /// An execution id that is not 32 hex digits.
    BadExecutionId(String),
    /// `hold` while the slot already holds a job.
    AlreadyHolding(usize),
}

impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerError::Map(e) => write!(f, "cannot map the pool's ledger: {e}"),
            LedgerError::NoSuchSlot(i) => write!(f, "the ledger has no slot {i}"),
            LedgerError::BadExecutionId(id) => {
                write!(f, "execution id {id:?} is not 32 hex digits")
            }
            LedgerError::AlreadyHolding(i) => write!(f, "slot {i} holds a job already"),
        }
    }
}

impl std::error::Error for LedgerError {}

fn state(word: u64) -> u64 {
    word & STATE_MASK
}

fn next_hold(word: u64) -> u64 {
    ((word >> STATE_BITS).wrapping_add(1) << STATE_BITS) | HELD
}

/// The 16 bytes of a 32-hex-digit execution id.
pub fn parse_execution_id(text: &str) -> Result<[u8; 16], LedgerError> {
    let bad = || LedgerError::BadExecutionId(text.to_string());
    if text.len() != 32 {
        return Err(bad());
    }
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        let pair = text.get(2 * i..2 * i + 2).ok_or_else(bad)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(bytes)
}

fn halves(execution_id: &[u8; 16]) -> [u64; 2] {
    let (high, low) = execution_id.split_at(8);
    let as_u64 = |half: &[u8]| {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(half);
        u64::from_be_bytes(eight)
    };
    [as_u64(high), as_u64(low)]
}

/// The 32 hex digits of an execution id.
pub fn format_execution_id(bytes: &[u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Ledger {
    /// Maps a ledger of `count` empty slots, shared with the processes this one forks.
    pub fn new(count: usize) -> Result<Ledger, LedgerError> {
        let length = count.max(1) * std::mem::size_of::<Slot>();
        // SAFETY: an anonymous shared mapping; the kernel zero-fills it, and all-zero bytes
        // are valid (EMPTY) slots of atomics.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                length,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(LedgerError::Map(
                std::io::Error::last_os_error().to_string(),
            ));
        }
        let slots = NonNull::new(address.cast::<Slot>())
            .ok_or_else(|| LedgerError::Map("mmap returned null".into()))?;
        Ok(Ledger { slots, count })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn slot(&self, index: usize) -> Result<&Slot, LedgerError> {
        if index >= self.count {
            return Err(LedgerError::NoSuchSlot(index));
        }
        // SAFETY: index < count, within the mapping, which lives as long as `self`.
        Ok(unsafe { &*self.slots.as_ptr().add(index) })
    }

    /// Worker: it is about to take `execution_id` ahead, to hold until its current job ends.
    pub fn hold(&self, index: usize, execution_id: &[u8; 16]) -> Result<(), LedgerError> {
        let slot = self.slot(index)?;
        let word = slot.hold.load(Ordering::Acquire);
        if state(word) == HELD {
            return Err(LedgerError::AlreadyHolding(index));
        }
        let [high, low] = halves(execution_id);
        slot.held_execution[0].store(high, Ordering::Relaxed);
        slot.held_execution[1].store(low, Ordering::Relaxed);
        slot.held_since.store(now_micros(), Ordering::Relaxed);
        // Only this worker moves its slot out of a non-HELD state, so a plain store is safe;
        // Release publishes the execution id with it.
        slot.hold.store(next_hold(word), Ordering::Release);
        Ok(())
    }

    /// Worker: starts the job it holds. False when the supervisor took it back first.
    pub fn start_held(&self, index: usize) -> Result<bool, LedgerError> {
        self.settle_hold(index, STARTED)
    }

    /// Worker: its held take brought no job, or it puts the job back itself (it is stopping).
    /// False when the supervisor took it back first.
    pub fn drop_held(&self, index: usize) -> Result<bool, LedgerError> {
        self.settle_hold(index, EMPTY)
    }

    fn settle_hold(&self, index: usize, to: u64) -> Result<bool, LedgerError> {
        let slot = self.slot(index)?;
        let word = slot.hold.load(Ordering::Acquire);
        if state(word) != HELD {
            return Ok(false);
        }
        Ok(slot
            .hold
            .compare_exchange(
                word,
                (word & !STATE_MASK) | to,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok())
    }

    /// Supervisor: the job the worker in `index` holds, if any.
    pub fn held(&self, index: usize) -> Result<Option<Held>, LedgerError> {
        let slot = self.slot(index)?;
        let word = slot.hold.load(Ordering::Acquire);
        if state(word) != HELD {
            return Ok(None);
        }
        let mut execution_id = [0u8; 16];
        execution_id[..8]
            .copy_from_slice(&slot.held_execution[0].load(Ordering::Relaxed).to_be_bytes());
        execution_id[8..]
            .copy_from_slice(&slot.held_execution[1].load(Ordering::Relaxed).to_be_bytes());
        let since = slot.held_since.load(Ordering::Relaxed);
        // The id is that hold's only if the word did not move while it was read.
        if slot.hold.load(Ordering::Acquire) != word {
            return Ok(None);
        }
        Ok(Some(Held {
            token: word,
            execution_id,
            since,
        }))
    }

    /// Supervisor: takes back the hold `token` (from `held`). False when the worker started
    /// or dropped it first, or it is another hold by now.
    pub fn reclaim(&self, index: usize, token: u64) -> Result<bool, LedgerError> {
        let slot = self.slot(index)?;
        if state(token) != HELD {
            return Ok(false);
        }
        Ok(slot
            .hold
            .compare_exchange(
                token,
                (token & !STATE_MASK) | RECLAIMED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok())
    }

    /// Supervisor (the only writer): asks the worker in `index` to stop `execution_id`, whether
    /// it runs it or has yet to start it. It replaces any earlier request; the supervisor then
    /// signals the worker.
    pub fn request_stop(&self, index: usize, execution_id: &[u8; 16]) -> Result<(), LedgerError> {
        let slot = self.slot(index)?;
        let sequence = slot.stop_sequence.load(Ordering::Relaxed);
        slot.stop_sequence
            .store(sequence.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        let [high, low] = halves(execution_id);
        slot.stop_execution[0].store(high, Ordering::Relaxed);
        slot.stop_execution[1].store(low, Ordering::Relaxed);
        slot.stop_sequence
            .store(sequence.wrapping_add(2), Ordering::Release);
        Ok(())
    }

    /// Worker: whether its supervisor asked it to stop `execution_id`. A request being written
    /// at that instant reads as no request: the signal that follows it makes the worker look
    /// again, so nothing waits on a writer (which may have died).
    pub fn stop_requested(
        &self,
        index: usize,
        execution_id: &[u8; 16],
    ) -> Result<bool, LedgerError> {
        let slot = self.slot(index)?;
        let before = slot.stop_sequence.load(Ordering::Acquire);
        if before == 0 || before % 2 == 1 {
            return Ok(false);
        }
        let requested = [
            slot.stop_execution[0].load(Ordering::Relaxed),
            slot.stop_execution[1].load(Ordering::Relaxed),
        ];
        fence(Ordering::Acquire);
        let unchanged = slot.stop_sequence.load(Ordering::Relaxed) == before;
        Ok(unchanged && requested == halves(execution_id))
    }

    /// Supervisor: empties a slot whose worker is gone, before another worker takes it.
    pub fn clear(&self, index: usize) -> Result<(), LedgerError> {
        let slot = self.slot(index)?;
        let word = slot.hold.load(Ordering::Acquire);
        slot.hold.store(word & !STATE_MASK, Ordering::Release);
        Ok(())
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let length = self.count.max(1) * std::mem::size_of::<Slot>();
        // SAFETY: the mapping made in `new`, with its length; not used after this.
        unsafe {
            libc::munmap(self.slots.as_ptr().cast(), length);
        }
    }
}

#[cfg(test)]
mod tests {
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
        ledger.hold(0, &id()).expect("hold");
        assert_eq!(ledger.hold(0, &id()), Err(LedgerError::AlreadyHolding(0)));
        let held = ledger.held(0).expect("read").expect("held");
        assert_eq!(held.execution_id, id());
        assert_eq!(ledger.held(1), Ok(None));
        // The worker starts it: the supervisor's reclaim of that hold then fails.
        assert_eq!(ledger.start_held(0), Ok(true));
        assert_eq!(ledger.reclaim(0, held.token), Ok(false));
        assert_eq!(ledger.held(0), Ok(None));
        // The next hold is reclaimed first: the worker cannot start it, nor drop it.
        ledger.hold(0, &id()).expect("hold again");
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
        ledger.hold(0, &id()).expect("hold after a reclaim");
        let third = ledger.held(0).expect("read").expect("held");
        assert_eq!(ledger.drop_held(0), Ok(true));
        assert_eq!(ledger.reclaim(0, third.token), Ok(false));
        assert_eq!(ledger.start_held(9), Err(LedgerError::NoSuchSlot(9)));
    }

    #[test]
    fn a_hold_knows_when_it_began_and_a_cleared_slot_holds_nothing() {
        let ledger = Ledger::new(1).expect("map");
        let before = now_micros();
        ledger.hold(0, &id()).expect("hold");
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
        ledger.hold(0, &id()).expect("hold");
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
}
