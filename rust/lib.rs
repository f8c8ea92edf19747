//! jobpool's native core: the worker's whole conversation with Redis. The modules below carry
//! no PyO3 and are tested with `cargo test` (against a real redis-server where they touch
//! Redis); `python` is the one boundary module, built only with the `python` feature.

pub mod clock;
pub mod conn;
pub mod error;
pub mod heartbeat;
pub mod keys;
pub mod ledger;
pub mod lifecycle;
pub mod put_back;
pub mod recovery;
pub mod reply;
pub mod scripts;
pub mod step;
pub mod take;

#[cfg(test)]
mod testing;

#[cfg(feature = "python")]
mod python;
