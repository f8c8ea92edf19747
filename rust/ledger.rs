//! The pool's ledger: what each worker holds and runs, in memory shared by the supervisor and
//! its forked workers (an anonymous `MAP_SHARED` mapping made before the fork), one slot per
//! worker, written with atomics only: no lock a dying process could leave held.
//!
//! A worker working ahead has taken jobs it has not started (they are *held*): a batch of up to
//! `MAX_HELD`, started one after another in the order they were taken. Exactly one of two things
//! may happen to each held job, and the ledger arbitrates which with one compare-and-swap on the
//! slot's `hold` word:
//!
//! * the worker starts the next one (`start_held`), or
//! * the supervisor takes back all it has not started (`reclaim`: HELD -> RECLAIMED), when the
//!   job that runs has run longer than the holding bound (it is slow, or the worker is stopped),
//!   or the worker has died; it then puts them back at the front of their queues
//!   (`lua/reclaim.lua`).
//!
//! The `hold` word packs a sequence number, the index of the next job to start, the batch's
//! size and the state, so a supervisor that read one hold cannot reclaim a later one (no ABA),
//! nor one job more or less than the worker left unstarted.
//!
//! A slot also carries the execution its supervisor last asked the worker to stop (a stop-job
//! command): the supervisor writes it (`request_stop`), then signals the worker, which compares
//! it with the execution it runs or is about to start (`stop_requested`).
//!
//! And each worker has a log of the jobs that ended and whose records it has not sent yet (a
//! batch's: they go to Redis together, with the take of the next batch). The worker appends each
//! one as it ends (`note_ended`), before it starts the next, and forgets them once their records
//! are written (`forget_ended`); if it dies meanwhile, its supervisor reads them (`ended`) and
//! writes the records itself: a job that ran is recorded, never run again nor failed. The log is
//! the worker's alone while it lives: the supervisor reads it only once the worker is gone.

use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The most jobs a worker holds at once (`jobpool start --prefetch` is capped to it).
pub const MAX_HELD: usize = 16;
/// The bytes of a worker's log of ended jobs (its length word included). A record that does not
/// fit is sent at once instead.
const ENDED_LOG_BYTES: usize = 64 * 1024;
const ENTRY_HEADER: usize = 4;

const EMPTY: u64 = 0;
const HELD: u64 = 1;
const STARTED: u64 = 2;
const RECLAIMED: u64 = 3;
const STATE_MASK: u64 = 0b11;
// The hold word: state in bits 0-1, the batch's size in bits 2-6, the index of the next job to
// start in bits 7-11, the sequence number above.
const SIZE_SHIFT: u64 = 2;
const NEXT_SHIFT: u64 = 7;
const SEQUENCE_SHIFT: u64 = 12;
const FIELD_MASK: u64 = 0b1_1111;

/// One worker's slot, on cache lines of its own.
#[repr(C, align(64))]
struct Slot {
    hold: AtomicU64,
    /// When the job that runs began (epoch microseconds): the held jobs have waited since.
    held_since: AtomicU64,
    /// Counts the supervisor's writes of `stop_execution`: odd while one is under way.
    stop_sequence: AtomicU64,
    /// The execution id the supervisor last asked the worker to stop.
    stop_execution: [AtomicU64; 2],
    /// The bytes used in the worker's log of ended jobs (see `note_ended`).
    ended_length: AtomicU64,
    /// The held execution ids (16 bytes each, the 32 hex digits the worker chose), in the order
    /// they start; valid while `hold` says HELD with the sequence number they were written under.
    held_executions: [[AtomicU64; 2]; MAX_HELD],
}

/// The jobs a worker holds, as the supervisor reads them: `token` identifies this very hold (and
/// how far the worker got) for `reclaim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub token: u64,
    /// The execution ids not started yet, in order.
    pub execution_ids: Vec<[u8; 16]>,
    /// When the job that runs began, epoch microseconds.
    pub since: u64,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as u64)
        .unwrap_or(0)
}

/// The shared mapping of `slots` slots, then a log of ended jobs for each; unmapped when dropped.
pub struct Ledger {
    slots: NonNull<Slot>,
    count: usize,
}

fn mapping_length(count: usize) -> usize {
    count.max(1) * (std::mem::size_of::<Slot>() + ENDED_LOG_BYTES)
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
    /// A batch of no job, or of more than `MAX_HELD`.
    BadBatch(usize),
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
            LedgerError::BadBatch(n) => {
                write!(f, "a worker holds 1 to {MAX_HELD} jobs at once, not {n}")
            }
        }
    }
}

impl std::error::Error for LedgerError {}

fn state(word: u64) -> u64 {
    word & STATE_MASK
}

fn size(word: u64) -> usize {
    ((word >> SIZE_SHIFT) & FIELD_MASK) as usize
}

fn next(word: u64) -> usize {
    ((word >> NEXT_SHIFT) & FIELD_MASK) as usize
}

/// `word` with its next index, size and state replaced (its sequence number kept).
fn with(word: u64, next: usize, size: usize, state: u64) -> u64 {
    (word >> SEQUENCE_SHIFT << SEQUENCE_SHIFT)
        | ((next as u64 & FIELD_MASK) << NEXT_SHIFT)
        | ((size as u64 & FIELD_MASK) << SIZE_SHIFT)
        | state
}

fn next_sequence(word: u64) -> u64 {
    (word >> SEQUENCE_SHIFT).wrapping_add(1) << SEQUENCE_SHIFT
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
        let length = mapping_length(count);
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

    /// Worker: it is about to take the jobs of `execution_ids` ahead (in that order), to hold
    /// until each starts in turn, after the job it starts now.
    pub fn hold(&self, index: usize, execution_ids: &[[u8; 16]]) -> Result<(), LedgerError> {
        let slot = self.slot(index)?;
        if execution_ids.is_empty() || execution_ids.len() > MAX_HELD {
            return Err(LedgerError::BadBatch(execution_ids.len()));
        }
        let word = slot.hold.load(Ordering::Acquire);
        if state(word) == HELD {
            return Err(LedgerError::AlreadyHolding(index));
        }
        for (place, execution_id) in slot.held_executions.iter().zip(execution_ids) {
            let [high, low] = halves(execution_id);
            place[0].store(high, Ordering::Relaxed);
            place[1].store(low, Ordering::Relaxed);
        }
        slot.held_since.store(now_micros(), Ordering::Relaxed);
        // Only this worker moves its slot out of a non-HELD state, so a plain store is safe;
        // Release publishes the execution ids with it.
        let held = with(next_sequence(word), 0, execution_ids.len(), HELD);
        slot.hold.store(held, Ordering::Release);
        Ok(())
    }

    /// Worker: starts the next job it holds. False when the supervisor took it back first (with
    /// every other one not started).
    pub fn start_held(&self, index: usize) -> Result<bool, LedgerError> {
        let slot = self.slot(index)?;
        let word = slot.hold.load(Ordering::Acquire);
        let (started, size) = (next(word) + 1, size(word));
        if state(word) != HELD || started > size {
            return Ok(false);
        }
        // Before the swap: a supervisor that sees the new `since` with the old word waits longer
        // to take back the rest, never less long.
        slot.held_since.store(now_micros(), Ordering::Relaxed);
        let to = if started == size { STARTED } else { HELD };
        Ok(slot
            .hold
            .compare_exchange(
                word,
                with(word, started, size, to),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok())
    }

    /// Worker: its take ahead brought `taken` jobs, fewer than it held a place for (the queues
    /// ran dry): the hold shrinks to them, or ends if none is left to start. False when the
    /// supervisor took the hold back first.
    pub fn shrink_held(&self, index: usize, taken: usize) -> Result<bool, LedgerError> {
        let slot = self.slot(index)?;
        let word = slot.hold.load(Ordering::Acquire);
        if state(word) != HELD {
            return Ok(false);
        }
        let shrunk = if taken <= next(word) {
            with(word, 0, 0, EMPTY)
        } else {
            with(word, next(word), taken.min(size(word)), HELD)
        };
        Ok(slot
            .hold
            .compare_exchange(word, shrunk, Ordering::AcqRel, Ordering::Acquire)
            .is_ok())
    }

    /// Worker: it puts back the jobs it holds itself (it is stopping). False when the
    /// supervisor took them back first.
    pub fn drop_held(&self, index: usize) -> Result<bool, LedgerError> {
        let slot = self.slot(index)?;
        let word = slot.hold.load(Ordering::Acquire);
        if state(word) != HELD {
            return Ok(false);
        }
        Ok(slot
            .hold
            .compare_exchange(
                word,
                with(word, 0, 0, EMPTY),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok())
    }

    /// Supervisor: the jobs the worker in `index` holds and has not started, if any.
    pub fn held(&self, index: usize) -> Result<Option<Held>, LedgerError> {
        let slot = self.slot(index)?;
        let word = slot.hold.load(Ordering::Acquire);
        if state(word) != HELD {
            return Ok(None);
        }
        let execution_ids = slot
            .held_executions
            .iter()
            .take(size(word).min(MAX_HELD))
            .skip(next(word))
            .map(|place| {
                let mut execution_id = [0u8; 16];
                execution_id[..8].copy_from_slice(&place[0].load(Ordering::Relaxed).to_be_bytes());
                execution_id[8..].copy_from_slice(&place[1].load(Ordering::Relaxed).to_be_bytes());
                execution_id
            })
            .collect();
        let since = slot.held_since.load(Ordering::Relaxed);
        // The ids are that hold's only if the word did not move while they were read.
        if slot.hold.load(Ordering::Acquire) != word {
            return Ok(None);
        }
        Ok(Some(Held {
            token: word,
            execution_ids,
            since,
        }))
    }

    /// Supervisor: takes back the jobs of the hold `token` (from `held`) not started. False when
    /// the worker started one or dropped them first, or it is another hold by now.
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
        slot.ended_length.store(0, Ordering::Release);
        Ok(())
    }

    /// The bytes of the log of ended jobs of slot `index` (its length word is in the slot).
    fn ended_log(&self, index: usize) -> Result<*mut u8, LedgerError> {
        self.slot(index)?;
        let logs = self.count * std::mem::size_of::<Slot>();
        // SAFETY: within the mapping (`mapping_length`): the slots, then one log per slot.
        Ok(unsafe {
            self.slots
                .as_ptr()
                .cast::<u8>()
                .add(logs + index * ENDED_LOG_BYTES)
        })
    }

    /// Worker: appends `entry` (a job that ended, whose record it has not sent) to its log.
    /// False when it does not fit: the worker sends the record before it starts another job.
    pub fn note_ended(&self, index: usize, entry: &[u8]) -> Result<bool, LedgerError> {
        let slot = self.slot(index)?;
        let log = self.ended_log(index)?;
        let used = slot.ended_length.load(Ordering::Relaxed) as usize;
        let Ok(size) = u32::try_from(entry.len()) else {
            return Ok(false);
        };
        if used + ENTRY_HEADER + entry.len() > ENDED_LOG_BYTES {
            return Ok(false);
        }
        // SAFETY: the bytes from `used` on are this log's and unused (checked above); only this
        // worker writes its log, and the supervisor reads only what the length below publishes.
        unsafe {
            std::ptr::copy_nonoverlapping(size.to_le_bytes().as_ptr(), log.add(used), ENTRY_HEADER);
            std::ptr::copy_nonoverlapping(
                entry.as_ptr(),
                log.add(used + ENTRY_HEADER),
                entry.len(),
            );
        }
        let length = (used + ENTRY_HEADER + entry.len()) as u64;
        slot.ended_length.store(length, Ordering::Release);
        Ok(true)
    }

    /// Worker: the first `count` entries of its log are recorded in Redis: it forgets them.
    pub fn forget_ended(&self, index: usize, count: usize) -> Result<(), LedgerError> {
        let slot = self.slot(index)?;
        let log = self.ended_log(index)?;
        let used = slot.ended_length.load(Ordering::Relaxed) as usize;
        let entries = self.ended_bounds(log, used);
        let cut = entries
            .get(count)
            .map_or(used, |(start, _)| start - ENTRY_HEADER);
        // SAFETY: moves the log's remaining used bytes to its front, within the log.
        unsafe { std::ptr::copy(log.add(cut), log, used - cut) };
        slot.ended_length
            .store((used - cut) as u64, Ordering::Release);
        Ok(())
    }

    /// Supervisor, once the worker is gone: the entries of its log of ended jobs, in order.
    pub fn ended(&self, index: usize) -> Result<Vec<Vec<u8>>, LedgerError> {
        let slot = self.slot(index)?;
        let log = self.ended_log(index)?;
        let used = (slot.ended_length.load(Ordering::Acquire) as usize).min(ENDED_LOG_BYTES);
        Ok(self
            .ended_bounds(log, used)
            .into_iter()
            // SAFETY: each entry lies within the log's published length (`ended_bounds`).
            .map(|(start, end)| {
                unsafe { std::slice::from_raw_parts(log.add(start), end - start) }.to_vec()
            })
            .collect())
    }

    /// (start, end) of each entry's bytes within the first `used` bytes of `log`.
    fn ended_bounds(&self, log: *const u8, used: usize) -> Vec<(usize, usize)> {
        let mut bounds = Vec::new();
        let mut at = 0;
        while at + ENTRY_HEADER <= used {
            let mut header = [0u8; ENTRY_HEADER];
            // SAFETY: `at + ENTRY_HEADER <= used`, within the log.
            unsafe {
                std::ptr::copy_nonoverlapping(log.add(at), header.as_mut_ptr(), ENTRY_HEADER)
            };
            let end = at + ENTRY_HEADER + u32::from_le_bytes(header) as usize;
            if end > used {
                break; // a torn entry: never published, or a corrupt log
            }
            bounds.push((at + ENTRY_HEADER, end));
            at = end;
        }
        bounds
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let length = mapping_length(self.count);
        // SAFETY: the mapping made in `new`, with its length; not used after this.
        unsafe {
            libc::munmap(self.slots.as_ptr().cast(), length);
        }
    }
}

#[cfg(test)]
mod tests;
