//! One process's connection to Redis: opened lazily, reopened after a fork or a failure, with
//! every script loaded at connect.
//!
//! Fork safety: a connection records the pid that opened it. A child that inherited one never
//! uses it, and never closes it either (closing could send a TLS close-notify on the parent's
//! stream): it is leaked and a new one is opened. No thread is ever started.
//!
//! Timeouts: the read timeout always exceeds the longest server-side block plus a margin, and a
//! connection that timed out is dropped, never reused: redis-rs would otherwise skip the late
//! reply, which after a popping command would be a job.

use std::collections::HashMap;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, Value};

use crate::error::{is_connection_failure, Error, Result};
use crate::scripts::{ScriptCall, SCRIPTS};

/// Where Redis is, as parsed (once, in Python, with redis-py's rules) from a URL or client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub address: Address,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp {
        host: String,
        port: u16,
    },
    /// rediss://: TLS over TCP.
    Tls {
        host: String,
        port: u16,
        tls: TlsOptions,
    },
    Unix(PathBuf),
}

/// How a TLS connection checks the server and presents itself (PEM bytes, as redis-py reads
/// them from its ssl_ca_certs, ssl_certfile and ssl_keyfile files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// False when the server's certificate is not to be verified (ssl_cert_reqs=none).
    pub verify: bool,
    /// The certificate authority to trust instead of the system's.
    pub ca_certificate: Option<Vec<u8>>,
    /// A client certificate and its key, for servers that require one.
    pub client_certificate: Option<(Vec<u8>, Vec<u8>)>,
}

/// How long to wait for a connection and for an ordinary reply.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra time allowed beyond a blocking command's own timeout before the reply is given up on.
const BLOCK_MARGIN: Duration = Duration::from_secs(2);
/// Attempts of one operation when the connection fails, and the first back-off (doubling).
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

struct Live {
    pid: u32,
    connection: redis::Connection,
    shas: HashMap<&'static str, String>,
}

pub struct Redis {
    target: Target,
    live: Option<Live>,
    /// Requests sent and answered (a pipeline is one), for the benchmarks.
    round_trips: u64,
    /// Replies owed for commands written by `send` and not yet read by `receive`.
    owed_replies: usize,
}

impl Redis {
    pub fn new(target: Target) -> Redis {
        Redis {
            target,
            live: None,
            round_trips: 0,
            owed_replies: 0,
        }
    }

    /// The live connection of this process, opened if there is none.
    fn live<'a>(slot: &'a mut Option<Live>, target: &Target) -> Result<&'a mut Live> {
        let pid = std::process::id();
        if let Some(live) = slot.take() {
            if live.pid == pid {
                *slot = Some(live);
            } else {
                std::mem::forget(live); // inherited across fork(): not ours to use or close
            }
        }
        if slot.is_none() {
            *slot = Some(open(target)?);
        }
        slot.as_mut()
            .ok_or_else(|| Error::Unavailable("no connection".into()))
    }

    /// Requests sent and answered since this client was made (a pipeline counts once;
    /// connecting and loading scripts do not count).
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }

    /// Runs `operation` on the connection, reconnecting with back-off when the connection fails
    /// and reloading the scripts when Redis lost them (NOSCRIPT). Every operation given here
    /// must be safe to repeat: jobpool's scripts check state before they change it.
    pub fn run<T>(
        &mut self,
        mut operation: impl FnMut(&mut Session<'_>) -> redis::RedisResult<T>,
    ) -> Result<T> {
        if self.owed_replies > 0 {
            // Replies of a deferred request are still on the wire: their reader (`receive`)
            // finds the connection gone and repeats the request, which is safe to repeat.
            self.drop_connection();
        }
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let outcome = match Redis::live(&mut self.live, &self.target) {
                Ok(live) => {
                    let mut session = Session {
                        live,
                        round_trips: &mut self.round_trips,
                    };
                    operation(&mut session)
                        .map_err(|e| (is_connection_failure(&e) || is_noscript(&e), Error::from(e)))
                }
                Err(error) => Err((true, error)),
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err((retry, error)) => {
                    self.drop_connection(); // never reuse a connection that failed or timed out
                    if !retry || attempt >= ATTEMPTS {
                        return Err(error);
                    }
                }
            }
            sleep(backoff);
            backoff *= 2;
            attempt += 1;
        }
    }
}

impl Redis {
    /// Opens this process's connection (loading the scripts) now, rather than at its first call.
    pub fn connect(&mut self) -> Result<()> {
        self.run(|_| Ok(()))
    }

    fn drop_connection(&mut self) {
        self.live = None;
        self.owed_replies = 0;
    }

    /// Writes the commands `build` makes as one pipeline, without waiting for the replies (read
    /// them with `receive`). Returns false when the write failed (the connection is dropped).
    pub fn send(&mut self, build: impl FnOnce(&Session<'_>) -> Vec<redis::Cmd>) -> bool {
        if self.owed_replies > 0 {
            self.drop_connection();
        }
        let Ok(live) = Redis::live(&mut self.live, &self.target) else {
            return false;
        };
        let session = Session {
            live,
            round_trips: &mut self.round_trips,
        };
        let commands = build(&session);
        let mut pipe = redis::pipe();
        for command in &commands {
            pipe.add_command(command.clone());
        }
        let written = live_connection(session).send_packed_command(&pipe.get_packed_pipeline());
        match written {
            Ok(()) => {
                self.owed_replies = commands.len();
                true
            }
            Err(_) => {
                self.drop_connection();
                false
            }
        }
    }

    /// Reads the replies of the last `send`. An error means the request may or may not have
    /// been applied: the connection is dropped, and the caller repeats the request.
    pub fn receive(&mut self) -> Result<Vec<Value>> {
        let owed = std::mem::take(&mut self.owed_replies);
        let (Some(live), true) = (self.live.as_mut(), owed > 0) else {
            return Err(Error::Unavailable(
                "the replies were lost with the connection".into(),
            ));
        };
        let mut replies = Vec::with_capacity(owed);
        for _ in 0..owed {
            match live.connection.recv_response() {
                Ok(Value::ServerError(error)) => {
                    replies.push(Err(Error::Command(error.to_string())))
                }
                Ok(value) => replies.push(Ok(value)),
                Err(error) => {
                    self.drop_connection();
                    return Err(Error::from(error));
                }
            }
        }
        self.round_trips += 1;
        replies.into_iter().collect()
    }
}

fn live_connection<'a>(session: Session<'a>) -> &'a mut redis::Connection {
    &mut session.live.connection
}

fn connection_info(target: &Target) -> Result<ConnectionInfo> {
    let address = match &target.address {
        Address::Tcp { host, port } => ConnectionAddr::Tcp(host.clone(), *port),
        Address::Tls { host, port, tls } => ConnectionAddr::TcpTls {
            host: host.clone(),
            port: *port,
            insecure: !tls.verify,
            tls_params: None,
        },
        Address::Unix(path) => ConnectionAddr::Unix(path.clone()),
    };
    let mut settings = RedisConnectionInfo::default().set_db(target.db);
    if let Some(username) = &target.username {
        settings = settings.set_username(username);
    }
    if let Some(password) = &target.password {
        settings = settings.set_password(password);
    }
    Ok(address.into_connection_info()?.set_redis_settings(settings))
}

/// A redis-rs client for `target` (with its certificates, for TLS).
fn client(target: &Target) -> Result<redis::Client> {
    let info = connection_info(target)?;
    let Address::Tls { tls, .. } = &target.address else {
        return Ok(redis::Client::open(info)?);
    };
    // rustls needs a process-wide cryptography provider; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if tls.ca_certificate.is_none() && tls.client_certificate.is_none() {
        return Ok(redis::Client::open(info)?);
    }
    let certificates = redis::TlsCertificates {
        client_tls: tls
            .client_certificate
            .as_ref()
            .map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.clone(),
            }),
        root_cert: tls.ca_certificate.clone(),
    };
    Ok(redis::Client::build_with_tls(info, certificates)?)
}

/// A new connection to `target`, with every script loaded.
fn open(target: &Target) -> Result<Live> {
    let client = client(target)?;
    let mut connection = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    connection.set_read_timeout(Some(REPLY_TIMEOUT))?;
    connection.set_write_timeout(Some(REPLY_TIMEOUT))?;
    let mut shas = HashMap::new();
    for (name, source) in SCRIPTS {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(*source)
            .query(&mut connection)?;
        shas.insert(*name, sha);
    }
    Ok(Live {
        pid: std::process::id(),
        connection,
        shas,
    })
}

fn is_noscript(error: &redis::RedisError) -> bool {
    error.code() == Some("NOSCRIPT")
}

/// The connection while an operation runs on it.
pub struct Session<'a> {
    live: &'a mut Live,
    round_trips: &'a mut u64,
}

impl Session<'_> {
    /// An EVALSHA of script `name` (loaded at connect).
    pub fn script(&self, name: &str, keys: &[String], args: &[Vec<u8>]) -> redis::Cmd {
        let sha = self.live.shas.get(name).map(String::as_str).unwrap_or(name);
        let mut command = redis::cmd("EVALSHA");
        command.arg(sha).arg(keys.len()).arg(keys).arg(args);
        command
    }

    /// The EVALSHA of `call`.
    pub fn call(&self, call: &ScriptCall) -> redis::Cmd {
        self.script(call.name, &call.keys, &call.args)
    }

    pub fn query(&mut self, command: &redis::Cmd) -> redis::RedisResult<Value> {
        *self.round_trips += 1;
        command.query(&mut self.live.connection)
    }

    /// Sends the commands in one round trip and returns each reply (or its error).
    pub fn pipeline(&mut self, commands: &[redis::Cmd]) -> redis::RedisResult<Vec<Value>> {
        *self.round_trips += 1;
        let mut pipe = redis::pipe();
        for command in commands {
            pipe.add_command(command.clone());
        }
        let replies: Vec<redis::RedisResult<Value>> =
            pipe.ignore_errors().query(&mut self.live.connection)?;
        replies.into_iter().collect()
    }

    /// Runs a command that blocks up to `block` on the server, with the read timeout raised to
    /// cover it (and restored after).
    pub fn blocking_query(
        &mut self,
        command: &redis::Cmd,
        block: Duration,
    ) -> redis::RedisResult<Value> {
        self.live
            .connection
            .set_read_timeout(Some(block + BLOCK_MARGIN))?;
        *self.round_trips += 1;
        let reply = command.query(&mut self.live.connection);
        self.live.connection.set_read_timeout(Some(REPLY_TIMEOUT))?;
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RedisServer;

    #[test]
    fn connects_loads_scripts_and_reconnects_after_a_kill() {
        let server = RedisServer::start();
        let mut redis = Redis::new(server.target());
        let pong = redis.run(|s| s.query(&redis::cmd("PING")));
        assert_eq!(pong, Ok(Value::SimpleString("PONG".into())));
        // Kill our own connection from the server side: the next call reconnects.
        let killed =
            redis.run(|s| s.query(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal")));
        assert!(killed.is_ok() || matches!(killed, Err(Error::Unavailable(_))));
        let again = redis.run(|s| s.query(&redis::cmd("PING")));
        assert_eq!(again, Ok(Value::SimpleString("PONG".into())));
    }

    #[test]
    fn reloads_scripts_after_script_flush() {
        let server = RedisServer::start();
        let mut redis = Redis::new(server.target());
        let flushed = redis.run(|s| s.query(redis::cmd("SCRIPT").arg("FLUSH")));
        assert!(flushed.is_ok());
        let keys = vec!["rq:queue:x".to_string()];
        let emptied = redis.run(|s| {
            let command = s.script(
                "empty_queue",
                &keys,
                &[b"a\0".to_vec(), b"b\0".to_vec(), b"c\0".to_vec()],
            );
            s.query(&command)
        });
        assert_eq!(emptied, Ok(Value::Int(0)));
    }

    #[test]
    fn unreachable_redis_is_unavailable() {
        let mut redis = Redis::new(Target {
            address: Address::Tcp {
                host: "127.0.0.1".into(),
                port: 1,
            },
            db: 0,
            username: None,
            password: None,
        });
        assert!(matches!(
            redis.run(|s| s.query(&redis::cmd("PING"))),
            Err(Error::Unavailable(_))
        ));
    }
}
