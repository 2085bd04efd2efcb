//! A local stand-in for Aliyun IoT: the test broker of `broker.rs` in its password mode (TLS,
//! server authentication only, user name and password from a `password_file`, no anonymous
//! clients, its log also on `$SYS/broker/log/#`) plus `tests/responders/aliyun.py`, a
//! separate Python process (paho-mqtt) that plays the platform's side of dynamic registration
//! and "activates" devices by rewriting their password entries.
//!
//! Used by `tests/aliyun.rs` and, through `#[path]`, by the `aliyun_*` examples; both must
//! also have `broker.rs` as `crate::broker`. Tools that are missing are reported as errors that
//! name the Debian package, not as panics.
#![allow(dead_code)]

use std::ffi::OsString;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::broker::{Broker, BrokerOptions, Responder, START_TIMEOUT};

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
}

/// The running broker and responder (the responder is stopped first on drop).
pub struct AliyunCloud {
    responder: Responder,
    broker: Broker,
}

fn tool_missing(tool: &str, package: &str) -> Option<String> {
    let found = Command::new(tool)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    (!found).then(|| format!("cannot run `{tool}`: install the Debian package `{package}`"))
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    u64::from_le_bytes(b) ^ u64::from(std::process::id())
}

impl AliyunCloud {
    /// Starts the broker on a free port of 127.0.0.1 and the responder; returns once the
    /// responder has written the registration password entries and the broker reloaded them.
    pub fn start(o: &CloudOptions) -> Result<AliyunCloud, String> {
        for (tool, package) in [
            ("mosquitto", "mosquitto"),
            ("mosquitto_passwd", "mosquitto"),
        ] {
            if let Some(e) = tool_missing(tool, package) {
                return Err(e);
            }
        }
        Responder::check_python("paho.mqtt.client", "python3-paho-mqtt")?;
        let cloud_password = format!("cloud-{:x}", rand_u64());
        let broker = Broker::start(BrokerOptions {
            passwords: Some(vec![("aliyun-cloud".into(), cloud_password.clone())]),
            log_topic: true,
            ..BrokerOptions::default()
        });
        let pid = broker.pid().ok_or("the broker is not running")?;
        let mut args: Vec<OsString> = vec![
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            broker.port().to_string().into(),
            "--cafile".into(),
            broker.ca_file().into(),
            "--user".into(),
            "aliyun-cloud".into(),
            "--password".into(),
            cloud_password.into(),
            "--pwfile".into(),
            broker.passwords_path().into(),
            "--broker-pid".into(),
            pid.to_string().into(),
            "--product-key".into(),
            o.product_key.clone().into(),
            "--product-secret".into(),
            o.product_secret.clone().into(),
            "--random".into(),
            o.random.clone().into(),
            "--sign-method".into(),
            o.sign_method.clone().into(),
        ];
        for dn in &o.devices {
            args.extend(["--device".into(), dn.into()]);
        }
        for (dn, secret, client_id, method) in &o.flashed {
            args.extend([
                "--flashed".into(),
                format!("{dn},{secret},{client_id},{method}").into(),
            ]);
        }
        // Its stderr goes into the lines too, so that a traceback shows in assertion output.
        let responder = Responder::start(
            "aliyun",
            "aliyun.py",
            &args,
            true,
            |l| l == "ready",
            2 * START_TIMEOUT,
        )?;
        Ok(AliyunCloud { responder, broker })
    }

    /// The broker's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.broker.port()
    }

    /// The CA certificate (PEM) the devices must trust.
    pub fn ca_pem(&self) -> String {
        self.broker.pki().ca_pem.clone()
    }

    /// Everything the responder printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.responder.lines()
    }

    /// How many lines start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    /// Waits until a line satisfies `pred`; false on timeout.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        self.responder.wait_line(pred, timeout).is_some()
    }

    /// Waits for a message on `topic` (printed by the responder) and returns its payload.
    pub fn wait_message(&self, topic: &str, timeout: Duration) -> Option<Vec<u8>> {
        let prefix = format!("message {topic} ");
        let line = self
            .responder
            .wait_line(|l| l.starts_with(&prefix), timeout)?;
        let hex = &line[prefix.len()..];
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect()
    }

    /// The broker log.
    pub fn broker_log(&self) -> String {
        self.broker.log()
    }
}
