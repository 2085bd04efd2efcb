//! A local stand-in for Aliyun IoT: Mosquitto (TLS, server authentication only, user name and
//! password from a `password_file`, no anonymous clients) plus `tests/responders/aliyun.py`, a
//! separate Python process (paho-mqtt) that plays the platform's side of dynamic registration
//! and "activates" devices by rewriting their password entries.
//!
//! Used by `tests/aliyun.rs` and, through `#[path]`, by the `aliyun_*` examples, so it returns
//! errors instead of panicking and takes the PKI as PEM text.
//!
//! Mosquitto runs with `user root` (kept as root in CI, ignored otherwise), `log_dest topic`
//! (the responder follows `$SYS/broker/log/#`) and `log_dest file`. Everything lives in a fresh
//! directory under the temp dir, removed on drop (`BROKER_KEEP_DIR=1` keeps it). Every process
//! started here is killed on drop, by its own id.
#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The responder script.
pub const RESPONDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/responders/aliyun.py");
/// The interpreter (Debian's, which has python3-paho-mqtt).
pub const PYTHON: &str = "/usr/bin/python3";

/// What the stand-in serves.
#[derive(Clone, Debug)]
pub struct CloudOptions {
    /// ProductKey.
    pub product_key: String,
    /// ProductSecret.
    pub product_secret: String,
    /// DeviceNames allowed to register.
    pub devices: Vec<String>,
    /// One-device-one-secret devices: (DeviceName, DeviceSecret, client id, sign method); their
    /// password entries are written at start.
    pub flashed: Vec<(String, String, String, String)>,
    /// The `random` the devices will send (the password entry is computed with it).
    pub random: String,
    /// `hmacmd5`, `hmacsha1` or `hmacsha256`.
    pub sign_method: String,
    /// CA certificate (PEM) the devices trust.
    pub ca_pem: String,
    /// Server certificate (PEM) for `localhost` / `127.0.0.1`.
    pub server_cert_pem: String,
    /// Server key (PEM).
    pub server_key_pem: String,
}

#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    closed: bool,
}

/// The running broker and responder.
pub struct AliyunCloud {
    dir: PathBuf,
    port: u16,
    broker: Option<Child>,
    responder: Option<Child>,
    responder_stdin: Option<ChildStdin>,
    lines: Arc<(Mutex<Lines>, Condvar)>,
    keep: bool,
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("create {}: {e}", path.display()))?;
    f.write_all(contents)
        .map_err(|e| format!("write {}: {e}", path.display()))
}

fn tool_missing(tool: &str, package: &str, e: std::io::Error) -> String {
    format!("cannot run `{tool}` ({e}): install the Debian package `{package}`")
}

impl AliyunCloud {
    /// Starts Mosquitto on a free port of 127.0.0.1 and the responder; returns once the
    /// responder has written the registration password entries and the broker reloaded them.
    pub fn start(options: &CloudOptions) -> Result<AliyunCloud, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("quectel-aliyun-{}-{nanos:08x}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut cloud = AliyunCloud {
            dir,
            port: 0,
            broker: None,
            responder: None,
            responder_stdin: None,
            lines: Arc::default(),
            keep: std::env::var_os("BROKER_KEEP_DIR").is_some(),
        };
        cloud.start_broker(options)?;
        cloud.start_responder(options)?;
        Ok(cloud)
    }

    fn start_broker(&mut self, o: &CloudOptions) -> Result<(), String> {
        let d = self.dir.clone();
        write_private(&d.join("ca.crt"), o.ca_pem.as_bytes())?;
        write_private(&d.join("server.crt"), o.server_cert_pem.as_bytes())?;
        write_private(&d.join("server.key"), o.server_key_pem.as_bytes())?;
        let pwfile = d.join("passwords");
        write_private(&pwfile, b"")?;
        let cloud_password = format!("cloud-{:x}", rand_u64());
        let status = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg(&pwfile)
            .args(["aliyun-cloud", &cloud_password])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| tool_missing("mosquitto_passwd", "mosquitto", e))?;
        if !status.success() {
            return Err(format!("mosquitto_passwd failed: {status}"));
        }
        write_private(&d.join("cloud-password"), cloud_password.as_bytes())?;
        let log = d.join("mosquitto.log");
        for _attempt in 0..5 {
            self.port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
                .port();
            let conf = format!(
                "# Generated by tests/support/aliyun_broker.rs: an Aliyun IoT stand-in\n\
                 user root\n\
                 persistence false\n\
                 log_dest file {d}/mosquitto.log\n\
                 log_dest topic\n\
                 log_type all\n\
                 connection_messages true\n\
                 max_keepalive 1200\n\
                 listener {port} 127.0.0.1\n\
                 cafile {d}/ca.crt\n\
                 certfile {d}/server.crt\n\
                 keyfile {d}/server.key\n\
                 require_certificate false\n\
                 allow_anonymous false\n\
                 password_file {d}/passwords\n",
                d = d.display(),
                port = self.port
            );
            write_private(&d.join("mosquitto.conf"), conf.as_bytes())?;
            let _ = fs::remove_file(&log);
            let mut child = Command::new("mosquitto")
                .arg("-c")
                .arg(d.join("mosquitto.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| tool_missing("mosquitto", "mosquitto", e))?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let text = fs::read_to_string(&log).unwrap_or_default();
                    if text.contains("Address already in use") {
                        break;
                    }
                    return Err(format!("mosquitto exited ({status}):\n{text}"));
                }
                let running = fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains(" running");
                if running && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    self.broker = Some(child);
                    return Ok(());
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "mosquitto did not start:\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err("no free port for mosquitto after 5 attempts".into())
    }

    fn start_responder(&mut self, o: &CloudOptions) -> Result<(), String> {
        let d = &self.dir;
        let pid = self.broker.as_ref().map(Child::id).unwrap_or(0);
        let cloud_password = fs::read_to_string(d.join("cloud-password")).unwrap_or_default();
        let mut cmd = Command::new(PYTHON);
        cmd.arg(RESPONDER)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--cafile")
            .arg(d.join("ca.crt"))
            .args(["--user", "aliyun-cloud", "--password", &cloud_password])
            .arg("--pwfile")
            .arg(d.join("passwords"))
            .args(["--broker-pid", &pid.to_string()])
            .args(["--product-key", &o.product_key])
            .args(["--product-secret", &o.product_secret])
            .args(["--random", &o.random, "--sign-method", &o.sign_method]);
        for dn in &o.devices {
            cmd.args(["--device", dn]);
        }
        for (dn, secret, client_id, method) in &o.flashed {
            cmd.args(["--flashed", &format!("{dn},{secret},{client_id},{method}")]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!("cannot run {PYTHON} ({e}): install python3 and python3-paho-mqtt")
            })?;
        self.responder_stdin = child.stdin.take();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = self.lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let (lock, cv) = &*lines;
                    lock.lock().unwrap().lines.push(line);
                    cv.notify_all();
                }
                let (lock, cv) = &*lines;
                lock.lock().unwrap().closed = true;
                cv.notify_all();
            });
        }
        self.responder = Some(child);
        if !self.wait_line(|l| l == "ready", Duration::from_secs(20)) {
            return Err(format!(
                "the Aliyun responder did not get ready (needs {PYTHON} with paho-mqtt):\n{}",
                self.lines().join("\n")
            ));
        }
        Ok(())
    }

    /// The broker's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything the responder printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().lines.clone()
    }

    /// How many lines start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    /// Waits until a line satisfies `pred`; false on timeout or if the responder ended.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let (lock, cv) = &*self.lines;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().unwrap();
        loop {
            if st.lines.iter().any(|l| pred(l)) {
                return true;
            }
            let now = Instant::now();
            if st.closed || now >= deadline {
                return false;
            }
            st = cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// Waits for a message on `topic` (printed by the responder) and returns its payload.
    pub fn wait_message(&self, topic: &str, timeout: Duration) -> Option<Vec<u8>> {
        let prefix = format!("message {topic} ");
        if !self.wait_line(|l| l.starts_with(&prefix), timeout) {
            return None;
        }
        let line = self.lines().into_iter().find(|l| l.starts_with(&prefix))?;
        let hex = &line[prefix.len()..];
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect()
    }

    /// The broker log.
    pub fn broker_log(&self) -> String {
        fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    u64::from_le_bytes(b) ^ u64::from(std::process::id())
}

impl Drop for AliyunCloud {
    fn drop(&mut self) {
        // Closing stdin ends the responder; kill it anyway, by its id.
        drop(self.responder_stdin.take());
        for child in [self.responder.take(), self.broker.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- responder ---\n{}\n--- broker log tail ---\n{}",
                self.lines().join("\n"),
                self.broker_log()
                    .lines()
                    .filter(|l| !l.contains("$SYS/broker/log"))
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        if self.keep {
            eprintln!("aliyun stand-in dir kept: {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
