//! jobpool's native core. The pure modules below carry no PyO3 and are tested with
//! `cargo test`; `python` is the one boundary module, built only with the `python` feature.

pub mod keys;
pub mod scripts;

#[cfg(feature = "python")]
mod python;
