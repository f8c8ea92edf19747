//! What can go wrong talking to Redis, in the categories the Python side raises as typed
//! exceptions (see `python.rs` and `jobpool.exceptions`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Redis could not be reached, or the connection dropped or timed out, after retries.
    Unavailable(String),
    /// Redis answered with an error (a script error, a wrong-type key, ...).
    Command(String),
    /// Redis answered with a reply of a shape jobpool does not expect.
    Reply(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable(m) => write!(f, "Redis is unavailable: {m}"),
            Error::Command(m) => write!(f, "Redis refused a command: {m}"),
            Error::Reply(m) => write!(f, "unexpected reply from Redis: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Whether a redis-rs error means the connection is unusable (so reconnecting may help).
pub fn is_connection_failure(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}

impl From<redis::RedisError> for Error {
    fn from(error: redis::RedisError) -> Self {
        if is_connection_failure(&error) {
            Error::Unavailable(error.to_string())
        } else {
            Error::Command(error.to_string())
        }
    }
}
