//! A throwaway `redis-server` per test, on a free loopback port, with no
//! persistence: started, killed (SIGKILL) and restarted on the same port by
//! the test that owns it, and killed when dropped.
//!
//! Redis is not vendored: `.ci/setup-redis.sh` installs Debian's
//! `redis-server`. When it is missing the tests fail (never skip) saying so.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `redis-server` binary, or a panic naming the setup script.
pub fn redis_server_bin() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("redis-server"))
        .chain([PathBuf::from("/usr/bin/redis-server")]);
    for c in candidates {
        if c.is_file() {
            return c;
        }
    }
    panic!(
        "redis-server is not installed, and the Redis tests need one: run `bash .ci/setup-redis.sh` \
         (installs Debian's redis-server package; .ci/run does this before the tests)"
    );
}

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `PING` over a raw socket: true on `+PONG`.
fn pong(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl RedisServer {
    /// Start one on a free port (≤ 10 s until it answers `PING`).
    pub fn start() -> RedisServer {
        for _ in 0..5 {
            let mut r = RedisServer {
                child: None,
                port: free_port(),
                dir: tempfile::tempdir().unwrap(),
            };
            if r.spawn() {
                return r;
            }
        }
        panic!("redis-server did not start on a free port (5 attempts)");
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new(redis_server_bin())
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir.path().to_str().unwrap(),
                "--loglevel",
                "warning",
                // DEBUG SLEEP makes a slow Redis for the timeout tests.
                "--enable-debug-command",
                "local",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if pong(self.port) {
                return true;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return false; // exited (port taken?)
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kill it with SIGKILL and wait until it is gone (data is lost: no persistence).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port (after [`RedisServer::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    /// Run one command over a raw connection; the reply as text (integers
    /// as digits, nil as `(nil)`, arrays one element a line).
    pub fn command(&self, args: &[&str]) -> String {
        Self::command_on(self.port, args)
    }

    /// [`RedisServer::command`] on the server at `port` (from another thread).
    pub fn command_on(port: u16, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut r = std::io::BufReader::new(s);
        read_reply(&mut r)
    }

    /// True while it answers `PING`.
    pub fn is_up(&self) -> bool {
        pong(self.port)
    }
}

fn read_line(r: &mut impl std::io::BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line.trim_end_matches(['\r', '\n']).to_string()
}

fn read_reply(r: &mut impl std::io::BufRead) -> String {
    let line = read_line(r);
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" | ":" => rest.to_string(),
        "-" => format!("ERR {rest}"),
        "$" => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                return "(nil)".into();
            }
            let mut buf = vec![0u8; n as usize + 2];
            r.read_exact(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n as usize]).into_owned()
        }
        "*" => {
            let n: i64 = rest.parse().unwrap();
            (0..n.max(0))
                .map(|_| read_reply(r))
                .collect::<Vec<_>>()
                .join("\n")
        }
        _ => panic!("unexpected reply {line:?}"),
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
