//! A private redis-server for the Rust tests, on a free loopback port, stopped on drop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::conn::{Address, Redis, Target};
use crate::keys::KeySchema;
use crate::take::TakeRequest;

pub struct RedisServer {
    child: Child,
    pub port: u16,
    directory: std::path::PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

impl RedisServer {
    pub fn start() -> RedisServer {
        for _ in 0..3 {
            let port = free_port();
            let directory = std::env::temp_dir().join(format!("jobpool-rust-test-{port}"));
            std::fs::create_dir_all(&directory).expect("a temporary directory");
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .args(["--appendonly", "no", "--dir"])
                .arg(&directory)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server on the PATH");
            let mut server = RedisServer {
                child,
                port,
                directory,
            };
            if server.wait_until_ready() {
                return server;
            }
        }
        panic!("redis-server would not start");
    }

    fn wait_until_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut connection) = self.client().get_connection() {
                if redis::cmd("PING").query::<String>(&mut connection).is_ok() {
                    // Another server may hold the port (ours then exits, failing to bind): the
                    // one that answers must be ours, or a test would write into a stranger's.
                    return self.answering_pid(&mut connection) == Some(self.child.id());
                }
            }
            sleep(Duration::from_millis(20));
        }
        false
    }

    /// The process id of the server `connection` talks to (`INFO server`'s `process_id`).
    fn answering_pid(&self, connection: &mut redis::Connection) -> Option<u32> {
        let info: String = redis::cmd("INFO").arg("server").query(connection).ok()?;
        info.lines()
            .find_map(|line| line.strip_prefix("process_id:"))
            .and_then(|pid| pid.trim().parse().ok())
    }

    pub fn target(&self) -> Target {
        Target {
            address: Address::Tcp {
                host: "127.0.0.1".into(),
                port: self.port,
            },
            db: 0,
            username: None,
            password: None,
        }
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/0", self.port)).expect("a client")
    }

    pub fn connection(&self) -> redis::Connection {
        self.client().get_connection().expect("a connection")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// A minimal job hash and its id on the queue, as an enqueue leaves them (with the marker).
pub fn enqueue(connection: &mut redis::Connection, queue: &str, job_id: &str) {
    let job_key = format!("rq:job:{job_id}");
    let done: redis::RedisResult<()> = redis::pipe()
        .hset_multiple(
            &job_key,
            &[
                ("status", "queued"),
                ("origin", queue),
                ("data", "x"),
                ("timeout", "180"),
            ],
        )
        .rpush(format!("rq:queue:{queue}"), job_id)
        .lpush(format!("rq:jobpool:wakeup:{queue}"), "1")
        .query(connection);
    assert!(done.is_ok(), "{done:?}");
}

/// The first job a step took, if it ran and took one.
pub fn first_taken(
    transition: &crate::error::Result<crate::step::Transition>,
) -> Option<crate::take::Taken> {
    transition
        .as_ref()
        .ok()
        .and_then(|t| t.taken.first().cloned())
}

/// A private server with the jobs `ids` enqueued on queue `q`: (the server, which stops when
/// dropped; the key schema under `rq`; a core connection; a plain one).
pub fn server_with_jobs(ids: &[&str]) -> (RedisServer, KeySchema, Redis, redis::Connection) {
    let server = RedisServer::start();
    let mut con = server.connection();
    for id in ids {
        enqueue(&mut con, "q", id);
    }
    let redis = Redis::new(server.target());
    (server, KeySchema::new("rq"), redis, con)
}

/// A lone take by worker `w1` from `queues`, its execution living 30 s without a heartbeat.
pub fn take_request(queues: &[String], execution_id: &str) -> TakeRequest {
    TakeRequest {
        queues: queues.to_vec(),
        worker: "w1".into(),
        execution_id: execution_id.into(),
        heartbeat_ttl: 30,
        held: false,
        marked_held: false,
    }
}
