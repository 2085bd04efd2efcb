//! An MQTT broker configured like AWS IoT Core (or, with [`BrokerOptions::passwords`], like
//! Aliyun IoT), for end-to-end tests, independent command-line MQTT clients to make assertions
//! with, and the cloud stand-ins ([`Responder`]: MQTT clients of the test process, rumqttc,
//! that share no code with the `quectel` crate).
//!
//! The broker is Mosquitto (Debian package `mosquitto`, 2.0.x) started by the
//! test itself on `127.0.0.1` and a free port (`cargo xtask test` installs the package when
//! it is missing; without it every broker test fails, naming the install line), with:
//!
//! - mutual TLS, **TLS 1.3 only** (`tls_version tlsv1.3` is the *minimum* in 2.0),
//!   a client certificate from the test CA is required;
//! - the client certificate's **CN becomes the MQTT user name**
//!   (`use_identity_as_username`), which the ACL uses as the thing name (`%u`),
//!   like an AWS IoT policy written with `${iot:Connection.Thing.ThingName}`;
//! - `max_qos 1` (MQTT 5 clients learn Maximum QoS = 1 from CONNACK),
//!   `max_packet_size 131200` (~128 KB payload), `max_keepalive 1200`,
//!   `max_inflight_messages 100`, `max_topic_alias 8`, no anonymous clients.
//!
//! Everything (config, ACL, PKI files, client key files, log, persistence
//! database) lives in a fresh directory under [`std::env::temp_dir`] that is
//! removed when the [`Broker`] is dropped (set `BROKER_KEEP_DIR=1` to keep it).
//! If the test is panicking when the broker is dropped, the tail of the broker
//! log is printed to stderr.
//!
//! Privileges: the config says `user root`, so a broker started as root (CI)
//! does **not** drop to the `mosquitto` user and can read the 0600 key files
//! in the 0700 directory; for a non-root user the option is ignored and the
//! broker runs as that user, who owns the files anyway.
//!
//! The assertion clients are `mosquitto_sub` / `mosquitto_pub` /
//! `openssl s_client` processes: they share no code with the `quectel` crate.
//!
//! Mosquitto differences from AWS IoT Core that tests must keep in mind:
//! - a SUBSCRIBE to a topic the ACL does not allow is *granted* (SUBACK QoS 1);
//!   the ACL is applied per message on delivery, so nothing arrives (AWS
//!   answers SUBACK 0x80/0x87);
//! - a PUBLISH that the ACL denies gets PUBACK 0x87 (MQTT 5) like AWS; an
//!   MQTT 3.1.1 client gets a plain PUBACK and the message is dropped;
//! - `$aws/...` topics are ordinary topics (no Shadow/Jobs/provisioning
//!   services behind them), and `#` in an ACL does not match topics starting
//!   with `$` (grant `$aws/#` explicitly);
//! - `sensor/#` also matches `sensor` (MQTT spec; AWS says it does not);
//! - no ALPN on the listener, no 100 publishes/s or 512 KiB/s throttles,
//!   no topic length/level limits;
//! - with `persistence: false` (the default) sessions, subscriptions and queued
//!   QoS 1 messages live in memory while the broker runs — across *client*
//!   reconnects — but **nothing survives a broker restart**. With
//!   `persistence: true` the database (in the temp dir) is written on a
//!   graceful stop ([`Broker::stop`], [`Broker::restart`]) and every second
//!   (`autosave_interval 1`), so persistent sessions and their queued QoS 1
//!   messages survive a restart; after [`Broker::kill`] only what the last
//!   autosave wrote survives.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The only address anything here binds to or connects to.
pub const HOST: &str = "127.0.0.1";

/// How long [`Broker::start`] waits for the broker to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a `mosquitto_pub` / `openssl s_client` run may take before it is killed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The external programs the tests run, and the Debian package of each. `cargo xtask test`
/// installs the packages that are missing before it runs the tests.
pub const TOOLS: [(&str, &str); 5] = [
    ("mosquitto", "mosquitto"),
    ("mosquitto_passwd", "mosquitto"),
    ("mosquitto_pub", "mosquitto-clients"),
    ("mosquitto_sub", "mosquitto-clients"),
    ("openssl", "openssl"),
];

/// Whether `tool` is an executable file in a directory of `PATH`.
pub fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Panics, naming the install line, if one of `tools` (from [`TOOLS`]) is not on `PATH`: a
/// test that needs the broker fails loudly instead of skipping.
pub fn require(tools: &[&str]) {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !on_path(t)).collect();
    if missing.is_empty() {
        return;
    }
    let mut packages: Vec<&str> = TOOLS
        .iter()
        .filter(|(t, _)| missing.contains(t))
        .map(|(_, p)| *p)
        .collect();
    packages.dedup();
    panic!(
        "{} not found on PATH ({}). Install with `apt-get install -y {}` (as root), or run \
         `cargo xtask test`, which installs what is missing and then runs the tests. \
         (Debian puts `mosquitto` in /usr/sbin: add it to PATH if you are not root.)",
        missing.join(", "),
        std::env::var("PATH").unwrap_or_default(),
        packages.join(" ")
    );
}

fn next_id() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

// ------------------------------------------------------------------------------------------------
// PKI
// ------------------------------------------------------------------------------------------------

/// A throw-away PKI generated at test time (ECDSA P-256 everywhere): a CA, a
/// server certificate for `localhost` and `127.0.0.1`, client certificates on
/// demand, and an unrelated CA for "wrong CA" tests.
pub struct Pki {
    ca: Issuer<'static, KeyPair>,
    other_ca: Issuer<'static, KeyPair>,
    /// CA certificate (PEM) that signs the server and [`Pki::client`] certificates.
    pub ca_pem: String,
    /// CA certificate (DER).
    pub ca_der: Vec<u8>,
    /// Server certificate (PEM), SAN `DNS:localhost`, `IP:127.0.0.1`.
    pub server_cert_pem: String,
    /// Server certificate (DER).
    pub server_cert_der: Vec<u8>,
    /// Server key (PKCS#8 PEM).
    pub server_key_pem: String,
    /// The unrelated CA (PEM) that signs [`Pki::foreign_client`] certificates.
    pub other_ca_pem: String,
    /// The unrelated CA (DER).
    pub other_ca_der: Vec<u8>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

/// A client identity: a certificate whose CN is the thing name, and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientId {
    /// Common name = thing name = MQTT user name on the broker.
    pub cn: String,
    /// Certificate (PEM).
    pub cert_pem: String,
    /// Certificate (DER).
    pub cert_der: Vec<u8>,
    /// Private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
    /// Private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// Private key, SEC1 PEM (`-----BEGIN EC PRIVATE KEY-----`), as Quectel modems like it.
    pub key_sec1_pem: String,
    /// Private key, SEC1 DER.
    pub key_sec1_der: Vec<u8>,
}

fn make_ca(cn: &str) -> (Issuer<'static, KeyPair>, rcgen::Certificate) {
    let key = KeyPair::generate().expect("generate CA key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).expect("self-sign CA");
    (Issuer::new(p, key), cert)
}

fn make_leaf(
    issuer: &Issuer<'static, KeyPair>,
    cn: &str,
    sans: &[&str],
    server: bool,
) -> (KeyPair, rcgen::Certificate) {
    let key = KeyPair::generate().expect("generate key");
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).expect("leaf params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let cert = p.signed_by(&key, issuer).expect("sign leaf");
    (key, cert)
}

fn client_of(issuer: &Issuer<'static, KeyPair>, cn: &str) -> ClientId {
    let (key, cert) = make_leaf(issuer, cn, &[], false);
    let key_der = key.serialize_der();
    let key_sec1_der = pkcs8_to_sec1(&key_der).expect("P-256 PKCS#8 to SEC1");
    ClientId {
        cn: cn.to_string(),
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key_pem: key.serialize_pem(),
        key_der,
        key_sec1_pem: pem("EC PRIVATE KEY", &key_sec1_der),
        key_sec1_der,
    }
}

impl Pki {
    /// Generates the CA, the server certificate and the unrelated CA.
    pub fn generate() -> Pki {
        let (ca, ca_cert) = make_ca("Test IoT Root CA");
        let (server_key, server_cert) =
            make_leaf(&ca, "localhost", &["localhost", "127.0.0.1"], true);
        let (other_ca, other_cert) = make_ca("Unrelated Test CA");
        Pki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            server_cert_pem: server_cert.pem(),
            server_cert_der: server_cert.der().to_vec(),
            server_key_pem: server_key.serialize_pem(),
            other_ca_pem: other_cert.pem(),
            other_ca_der: other_cert.der().to_vec(),
            ca,
            other_ca,
        }
    }

    /// A new client certificate (and key) with common name `cn`, signed by the CA.
    pub fn client(&self, cn: &str) -> ClientId {
        client_of(&self.ca, cn)
    }

    /// A new client certificate with common name `cn` signed by the *unrelated* CA.
    pub fn foreign_client(&self, cn: &str) -> ClientId {
        client_of(&self.other_ca, cn)
    }
}

/// Minimal DER reader: (tag, content, rest).
fn der_next(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *d.first()?;
    let l0 = *d.get(1)? as usize;
    let (len, hdr) = if l0 < 0x80 {
        (l0, 2)
    } else {
        let n = l0 & 0x7f;
        if n == 0 || n > 3 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *d.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let content = d.get(hdr..hdr + len)?;
    Some((tag, content, &d[hdr + len..]))
}

fn der_wrap(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend_from_slice(&[0x81, n as u8]);
    } else {
        v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(content);
    v
}

/// Converts a P-256 PKCS#8 key to SEC1 (`ECPrivateKey` with the curve OID as parameters).
fn pkcs8_to_sec1(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (_, outer, _) = der_next(pkcs8)?;
    let (_, _version, rest) = der_next(outer)?;
    let (_, _alg, rest) = der_next(rest)?;
    let (tag, ec_key, _) = der_next(rest)?;
    if tag != 0x04 {
        return None;
    }
    let (_, inner, _) = der_next(ec_key)?;
    let (_, ver, rest) = der_next(inner)?;
    let (_, prv, mut rest) = der_next(rest)?;
    let mut body = der_wrap(0x02, ver);
    body.extend(der_wrap(0x04, prv));
    let mut has_params = false;
    let mut tail = Vec::new();
    while !rest.is_empty() {
        let (t, c, r) = der_next(rest)?;
        if t == 0xa0 {
            has_params = true;
        }
        tail.extend(der_wrap(t, c));
        rest = r;
    }
    if !has_params {
        // prime256v1, OID 1.2.840.10045.3.1.7
        let oid = der_wrap(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
        body.extend(der_wrap(0xa0, &oid));
    }
    body.extend(tail);
    Some(der_wrap(0x30, &body))
}

fn pem(label: &str, der: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for ch in der.chunks(3) {
        let n = (u32::from(ch[0]) << 16)
            | (u32::from(*ch.get(1).unwrap_or(&0)) << 8)
            | u32::from(*ch.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= ch.len() {
                b64.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut s = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap_or(""));
        s.push('\n');
    }
    let _ = writeln!(s, "-----END {label}-----");
    s
}

// ------------------------------------------------------------------------------------------------
// ACL
// ------------------------------------------------------------------------------------------------

/// Access in an ACL line (Mosquitto `acl_file` keywords).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
    /// Explicitly denies what a broader rule would grant (checked first).
    Deny,
}

impl Access {
    fn keyword(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::ReadWrite => "readwrite",
            Access::Deny => "deny",
        }
    }
}

/// A Mosquitto ACL file. User names are certificate CNs (thing names).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    /// `pattern` lines: apply to every client; `%u` = user name (CN), `%c` = client id.
    patterns: Vec<(Access, String)>,
    /// `user` blocks, in insertion order.
    users: Vec<(String, Vec<(Access, String)>)>,
}

impl Acl {
    /// Common name of the full-access identity the default ACL grants (see [`Broker::observer`]).
    pub const OBSERVER: &'static str = "test-observer";

    /// Nothing allowed.
    pub fn empty() -> Acl {
        Acl::default()
    }

    /// The default: per-thing isolation like an AWS IoT policy written with
    /// `${iot:Connection.Thing.ThingName}`:
    ///
    /// - every thing may publish/subscribe `<thing>` and `<thing>/#`
    ///   (Mosquitto's `<thing>/#` covers `<thing>` itself) and
    ///   `$aws/things/<thing>/#` (Shadow, Jobs, streams topics);
    /// - [`Acl::OBSERVER`] may do anything (the "MQTT test client" of the
    ///   AWS console; `#` and `$aws/#`).
    ///
    /// Add [`grant`](Self::grant)s for extra topics, e.g. the device's IMEI.
    pub fn aws_like() -> Acl {
        Acl::empty()
            .pattern(Access::ReadWrite, "%u/#")
            .pattern(Access::ReadWrite, "$aws/things/%u/#")
            .full_access(Self::OBSERVER)
    }

    /// Adds a `pattern` rule for every client.
    pub fn pattern(mut self, access: Access, topic: &str) -> Acl {
        self.patterns.push((access, topic.to_string()));
        self
    }

    /// Grants `access` to `topic` (a filter: `+`, `#` allowed) to the thing with common name `cn`.
    pub fn grant(mut self, cn: &str, access: Access, topic: &str) -> Acl {
        assert!(
            !cn.contains(['\n', ' ']),
            "CN {cn:?} cannot be used in an ACL file"
        );
        match self.users.iter_mut().find(|(u, _)| u == cn) {
            Some((_, rules)) => rules.push((access, topic.to_string())),
            None => self
                .users
                .push((cn.to_string(), vec![(access, topic.to_string())])),
        }
        self
    }

    /// Grants an Aliyun device (user name `{dn}&{pk}`) what its product's default topic
    /// classes allow: its own `/sys/{pk}/{dn}/#` (thing model, RRPC), `/{pk}/{dn}/user/#`
    /// (custom topics), `/ota/device/+/{pk}/{dn}` (OTA), the registration topics
    /// `/ext/register` and `/ext/regnwl`, and reading `/broadcast/{pk}/#`.
    pub fn aliyun_device(self, pk: &str, dn: &str) -> Acl {
        let user = format!("{dn}&{pk}");
        self.grant(&user, Access::ReadWrite, &format!("/sys/{pk}/{dn}/#"))
            .grant(&user, Access::ReadWrite, &format!("/{pk}/{dn}/user/#"))
            .grant(
                &user,
                Access::ReadWrite,
                &format!("/ota/device/+/{pk}/{dn}"),
            )
            .grant(&user, Access::ReadWrite, "/ext/register")
            .grant(&user, Access::ReadWrite, "/ext/regnwl")
            .grant(&user, Access::Read, &format!("/broadcast/{pk}/#"))
    }

    /// Grants everything (`#` and `$aws/#`) to `cn`.
    pub fn full_access(self, cn: &str) -> Acl {
        self.grant(cn, Access::ReadWrite, "#")
            .grant(cn, Access::ReadWrite, "$aws/#")
    }

    /// Grants the AWS fleet-provisioning-by-claim topics (§2 of the cloud notes)
    /// for `template` to the claim certificate `claim_cn`: `CreateKeysAndCertificate`,
    /// `CreateCertificateFromCsr` and `RegisterThing`, JSON and CBOR, with their
    /// `accepted`/`rejected` replies. The service side has to be played by a test
    /// client with [`full_access`](Self::full_access) (e.g. [`Acl::OBSERVER`]).
    pub fn fleet_provisioning(self, claim_cn: &str, template: &str) -> Acl {
        self.grant(claim_cn, Access::ReadWrite, "$aws/certificates/create/#")
            .grant(
                claim_cn,
                Access::ReadWrite,
                "$aws/certificates/create-from-csr/#",
            )
            .grant(
                claim_cn,
                Access::ReadWrite,
                &format!("$aws/provisioning-templates/{template}/provision/#"),
            )
    }

    /// The ACL file text.
    pub fn render(&self) -> String {
        let mut s = String::from("# Generated by tests/support/broker.rs\n");
        for (a, t) in &self.patterns {
            let _ = writeln!(s, "pattern {} {t}", a.keyword());
        }
        for (user, rules) in &self.users {
            let _ = writeln!(s, "\nuser {user}");
            for (a, t) in rules {
                let _ = writeln!(s, "topic {} {t}", a.keyword());
            }
        }
        s
    }
}

// ------------------------------------------------------------------------------------------------
// Broker
// ------------------------------------------------------------------------------------------------

/// Options of [`Broker::start`]. `BrokerOptions::default()` is the AWS-like broker.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// Access control (default [`Acl::aws_like`]).
    pub acl: Acl,
    /// Keep sessions, subscriptions and queued messages on disk (in the temp dir)
    /// so that they survive [`Broker::restart`]. Default `false`.
    pub persistence: bool,
    /// `max_qos` (default 1, like AWS).
    pub max_qos: u8,
    /// `max_packet_size` in bytes (default 131200: a 128 KB payload plus headers).
    pub max_packet_size: u32,
    /// `max_keepalive` in seconds (default 1200, like AWS).
    pub max_keepalive: u16,
    /// Use this PKI instead of generating one (share it between brokers, or
    /// give the device its certificates before the broker starts).
    pub pki: Option<Arc<Pki>>,
    /// Extra lines appended to the listener section of the config.
    pub extra_config: Vec<String>,
    /// User names and passwords instead of client certificates (an Aliyun-like broker):
    /// server authentication only, a `password_file` ([`Broker::passwords_path`]) holding
    /// these entries, and no ACL. `None` (the default): mutual TLS, CN as user name, the ACL.
    pub passwords: Option<Vec<(String, String)>>,
    /// Also publish the broker's log on `$SYS/broker/log/#` (`log_dest topic`).
    pub log_topic: bool,
    /// Speak TLS 1.2 at most, like an Aliyun IoT public instance (mosquitto has no maximum
    /// version option: the broker runs with an `OPENSSL_CONF` whose `MaxProtocol` is
    /// `TLSv1.2`, so a TLS 1.3-only client gets a `protocol_version` alert). Default `false`:
    /// TLS 1.3 only.
    pub tls_max_1_2: bool,
    /// With [`passwords`](Self::passwords): apply [`acl`](Self::acl) too (user names are the
    /// password file's). Default `false`: no ACL in password mode.
    pub password_acl: bool,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            acl: Acl::aws_like(),
            persistence: false,
            max_qos: 1,
            max_packet_size: 131_200,
            max_keepalive: 1200,
            pki: None,
            extra_config: Vec::new(),
            passwords: None,
            log_topic: false,
            tls_max_1_2: false,
            password_acl: false,
        }
    }
}

impl BrokerOptions {
    /// Adds an ACL grant (see [`Acl::grant`]), e.g. `.grant("thing-0001", Access::ReadWrite, IMEI)`.
    pub fn grant(mut self, cn: &str, access: Access, topic: &str) -> Self {
        self.acl = self.acl.grant(cn, access, topic);
        self
    }

    /// Replaces the ACL.
    pub fn acl(mut self, acl: Acl) -> Self {
        self.acl = acl;
        self
    }

    /// Turns on-disk persistence on or off.
    pub fn persistence(mut self, on: bool) -> Self {
        self.persistence = on;
        self
    }

    /// Uses a given PKI.
    pub fn pki(mut self, pki: Arc<Pki>) -> Self {
        self.pki = Some(pki);
        self
    }
}

struct Proc {
    child: Option<Child>,
    starts: u32,
}

/// A running Mosquitto broker (see the module docs). Killed on drop; its
/// directory is removed.
pub struct Broker {
    dir: PathBuf,
    conf: PathBuf,
    log: PathBuf,
    port: std::sync::atomic::AtomicU16,
    options: BrokerOptions,
    pki: Arc<Pki>,
    proc: Mutex<Proc>,
    client_files: Mutex<HashMap<Vec<u8>, (PathBuf, PathBuf)>>,
    observer: OnceLock<ClientId>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("port", &self.port())
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn write_file(path: &Path, contents: &[u8]) {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(contents)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn free_port() -> u16 {
    TcpListener::bind((HOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Broker {
    /// Writes the files, starts `mosquitto` on a free port of 127.0.0.1 and
    /// waits (at most [`START_TIMEOUT`]) until it accepts TCP connections.
    /// Panics with the log tail if it does not.
    pub fn start(options: BrokerOptions) -> Broker {
        require(&[
            "mosquitto",
            "mosquitto_passwd",
            "mosquitto_pub",
            "mosquitto_sub",
        ]);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "quectel-broker-{}-{}-{nanos:08x}",
            std::process::id(),
            next_id()
        ));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.join("clients"))
            .expect("create clients dir");
        if options.persistence {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dir.join("db"))
                .expect("create db dir");
        }
        let pki = options
            .pki
            .clone()
            .unwrap_or_else(|| Arc::new(Pki::generate()));
        write_file(&dir.join("ca.crt"), pki.ca_pem.as_bytes());
        write_file(&dir.join("server.crt"), pki.server_cert_pem.as_bytes());
        write_file(&dir.join("server.key"), pki.server_key_pem.as_bytes());
        write_file(&dir.join("acl"), options.acl.render().as_bytes());
        write_file(
            &dir.join("openssl.cnf"),
            b"openssl_conf = default_conf\n[default_conf]\nssl_conf = ssl_sect\n[ssl_sect]\n\
              system_default = system_default_sect\n[system_default_sect]\nMaxProtocol = TLSv1.2\n",
        );
        if let Some(users) = &options.passwords {
            let file = dir.join("passwords");
            write_file(&file, b"");
            for (user, password) in users {
                let status = Command::new("mosquitto_passwd")
                    .arg("-b")
                    .arg(&file)
                    .args([user, password])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap_or_else(|e| {
                        panic!(
                            "cannot run `mosquitto_passwd` ({e}); install the `mosquitto` package"
                        )
                    });
                assert!(status.success(), "mosquitto_passwd failed: {status}");
            }
        }
        let broker = Broker {
            conf: dir.join("mosquitto.conf"),
            log: dir.join("mosquitto.log"),
            dir,
            port: std::sync::atomic::AtomicU16::new(0),
            options,
            pki,
            proc: Mutex::new(Proc {
                child: None,
                starts: 0,
            }),
            client_files: Mutex::new(HashMap::new()),
            observer: OnceLock::new(),
        };
        // The port is free when probed but another process could take it before
        // mosquitto binds it: then try another one.
        let mut attempt = 0;
        loop {
            attempt += 1;
            broker.port.store(free_port(), Ordering::Relaxed);
            write_file(&broker.conf, broker.config_text().as_bytes());
            let mut p = broker.proc.lock().unwrap();
            match broker.spawn(&mut p) {
                Ok(()) => break,
                Err(log) if attempt < 5 && log.contains("Address already in use") => continue,
                Err(log) => {
                    drop(p);
                    panic!(
                        "mosquitto did not start on {HOST}:{} (dir {}):\n{}",
                        broker.port(),
                        broker.dir.display(),
                        tail(&log, 30)
                    );
                }
            }
        }
        broker
    }

    /// The generated `mosquitto.conf`.
    pub fn config_text(&self) -> String {
        let d = self.dir.display();
        let o = &self.options;
        let mut c = String::new();
        let _ = writeln!(
            c,
            "# Generated by tests/support/broker.rs: imitates AWS IoT Core (mTLS, TLS 1.3 only, QoS <= 1)"
        );
        c.push_str("per_listener_settings true\n");
        c.push_str(
            "# started as root (CI): keep running as root, do not drop to user `mosquitto`\n",
        );
        c.push_str("user root\n");
        c.push_str("log_dest stderr\nlog_type all\nlog_timestamp_format %H:%M:%S\n");
        if o.log_topic {
            c.push_str("log_dest topic\n");
        }
        c.push_str("connection_messages true\n");
        if o.persistence {
            let _ = writeln!(
                c,
                "persistence true\npersistence_location {d}/db/\nautosave_interval 1\nautosave_on_changes false"
            );
        } else {
            c.push_str("persistence false\n");
        }
        c.push_str("persistent_client_expiration 1h\n");
        let _ = writeln!(c, "max_keepalive {}", o.max_keepalive);
        let _ = writeln!(c, "max_packet_size {}", o.max_packet_size);
        c.push_str("max_inflight_messages 100\nretain_available true\nset_tcp_nodelay true\n\n");
        let _ = writeln!(c, "listener {} {HOST}", self.port());
        c.push_str("protocol mqtt\n");
        let _ = writeln!(
            c,
            "cafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key"
        );
        if o.passwords.is_some() {
            let _ = writeln!(c, "require_certificate false\npassword_file {d}/passwords");
        } else {
            c.push_str("require_certificate true\nuse_identity_as_username true\n");
        }
        if o.tls_max_1_2 {
            // The minimum; the maximum (1.2) comes from the OPENSSL_CONF the broker runs with.
            c.push_str("tls_version tlsv1.2\n");
        } else {
            c.push_str("tls_version tlsv1.3\n");
            c.push_str(
                "ciphers_tls1.3 TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\n",
            );
        }
        let _ = writeln!(c, "max_qos {}", o.max_qos);
        c.push_str("max_topic_alias 8\nallow_anonymous false\n");
        if o.passwords.is_none() || o.password_acl {
            let _ = writeln!(c, "acl_file {d}/acl");
        }
        for line in &o.extra_config {
            let _ = writeln!(c, "{line}");
        }
        c
    }

    /// Starts the process and waits until it is ready. On failure the process is
    /// reaped and the log returned.
    fn spawn(&self, p: &mut Proc) -> Result<(), String> {
        assert!(p.child.is_none(), "broker already running");
        let offset = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.log)
            .expect("open broker log");
        let log2 = log.try_clone().expect("dup broker log");
        // stdout and stderr go straight to a file: no pipe can fill up or close.
        let mut command = Command::new("mosquitto");
        if self.options.tls_max_1_2 {
            command.env("OPENSSL_CONF", self.dir.join("openssl.cnf"));
        }
        let mut child = command
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `mosquitto` ({e}); install the `mosquitto` package")
            });
        p.starts += 1;
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = self.addr();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "{}\n(mosquitto exited: {status})",
                    self.log_since(offset)
                ));
            }
            let running = self.log_since(offset).contains(" running");
            if running && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                p.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{}\n(not accepting connections after {START_TIMEOUT:?})",
                    self.log_since(offset)
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_since(&self, offset: u64) -> String {
        let bytes = fs::read(&self.log).unwrap_or_default();
        let start = (offset as usize).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// The TCP port on 127.0.0.1 (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port()))
    }

    /// The broker's private directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it was started with.
    pub fn options(&self) -> &BrokerOptions {
        &self.options
    }

    /// The PKI whose CA the broker trusts and whose server certificate it presents.
    pub fn pki(&self) -> &Arc<Pki> {
        &self.pki
    }

    /// A new client identity with common name `cn` from the broker's CA.
    pub fn client(&self, cn: &str) -> ClientId {
        self.pki.client(cn)
    }

    /// The full-access identity of the default ACL ([`Acl::OBSERVER`]).
    pub fn observer(&self) -> ClientId {
        self.observer
            .get_or_init(|| self.pki.client(Acl::OBSERVER))
            .clone()
    }

    /// Path of the CA certificate file (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Writes (once) `client`'s certificate and PKCS#8 key to files in the
    /// broker's directory and returns their paths.
    pub fn client_files(&self, client: &ClientId) -> (PathBuf, PathBuf) {
        let mut files = self.client_files.lock().unwrap();
        files
            .entry(client.cert_der.clone())
            .or_insert_with(|| {
                let safe: String = client
                    .cn
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .take(40)
                    .collect();
                let base = self
                    .dir
                    .join("clients")
                    .join(format!("{}-{safe}", next_id()));
                let (cert, key) = (base.with_extension("crt"), base.with_extension("key"));
                write_file(&cert, client.cert_pem.as_bytes());
                write_file(&key, client.key_pem.as_bytes());
                (cert, key)
            })
            .clone()
    }

    /// The whole broker log (all runs).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log(), lines)
    }

    /// Whether the process is alive.
    pub fn is_running(&self) -> bool {
        let mut p = self.proc.lock().unwrap();
        match p.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                p.child = None;
                false
            }
            None => false,
        }
    }

    /// The `password_file` of a broker started with [`BrokerOptions::passwords`].
    pub fn passwords_path(&self) -> PathBuf {
        self.dir.join("passwords")
    }

    /// The process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.proc.lock().unwrap().child.as_ref().map(|c| c.id())
    }

    /// How many times the process was started (1 after [`Broker::start`]).
    pub fn starts(&self) -> u32 {
        self.proc.lock().unwrap().starts
    }

    /// Stops the broker gracefully (SIGTERM: clients' connections are closed, the
    /// persistence database is written); SIGKILL after 5 s. No-op if stopped.
    pub fn stop(&self) {
        let mut p = self.proc.lock().unwrap();
        if let Some(mut child) = p.child.take() {
            // SAFETY: plain kill(2) on the pid of our own child, not yet reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                thread::sleep(Duration::from_millis(5));
            }
            let _ = child.wait();
        }
    }

    /// Freezes the broker (SIGSTOP): its connections stay open, what clients send waits
    /// unread in the kernel. [`kill`](Self::kill) then loses it all, deterministically.
    /// No-op if stopped.
    pub fn freeze(&self) {
        let p = self.proc.lock().unwrap();
        if let Some(child) = p.child.as_ref() {
            // SAFETY: plain kill(2) on the pid of our own child, not yet reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGSTOP);
            }
        }
    }

    /// Kills the broker (SIGKILL, like a crash). No-op if stopped.
    pub fn kill(&self) {
        let mut p = self.proc.lock().unwrap();
        if let Some(mut child) = p.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped broker again with the same files on the same port.
    /// Panics if it is running or does not come up.
    pub fn start_again(&self) {
        let mut p = self.proc.lock().unwrap();
        if let Err(log) = self.spawn(&mut p) {
            drop(p);
            panic!(
                "mosquitto did not restart on {HOST}:{} (dir {}):\n{}",
                self.port(),
                self.dir.display(),
                tail(&log, 30)
            );
        }
    }

    /// [`stop`](Self::stop) then [`start_again`](Self::start_again): same port, same files.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// Runs `mosquitto_pub` once (see [`publish`]).
    pub fn publish(
        &self,
        client: &ClientId,
        topic: &str,
        payload: impl AsRef<[u8]>,
        qos: u8,
    ) -> Published {
        publish(self, client, topic, payload, qos)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        let keep = std::env::var_os("BROKER_KEEP_DIR").is_some();
        if thread::panicking() {
            eprintln!(
                "--- broker log tail ({}) ---\n{}\n---",
                self.log.display(),
                self.log_tail(40)
            );
        }
        if keep {
            eprintln!("broker dir kept: {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Independent clients
// ------------------------------------------------------------------------------------------------

fn tls_args(broker: &Broker, client: Option<&ClientId>) -> Vec<String> {
    let mut a = vec![
        "-h".to_string(),
        HOST.to_string(),
        "-p".to_string(),
        broker.port().to_string(),
        "--cafile".to_string(),
        broker.ca_file().display().to_string(),
    ];
    if let Some(client) = client {
        let (cert, key) = broker.client_files(client);
        a.extend([
            "--cert".to_string(),
            cert.display().to_string(),
            "--key".to_string(),
            key.display().to_string(),
        ]);
    }
    a
}

fn spawn_reader<R: Read + Send + 'static>(
    r: R,
    mut f: impl FnMut(Vec<u8>) + Send + 'static,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut r = BufReader::new(r);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => f(line),
            }
        }
    })
}

/// Output of a one-shot client process.
#[derive(Debug)]
pub struct Run {
    /// Exit status (`None` if it was killed after [`CLIENT_TIMEOUT`]).
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with `stdin` fed in, collecting stdout/stderr, killed after `timeout`.
fn run(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Run {
    let prog = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    let out = Arc::new(Mutex::new(Vec::new()));
    let err = Arc::new(Mutex::new(Vec::new()));
    let (o, e) = (out.clone(), err.clone());
    let t1 = spawn_reader(child.stdout.take().unwrap(), move |l| {
        o.lock().unwrap().extend(l)
    });
    let t2 = spawn_reader(child.stderr.take().unwrap(), move |l| {
        e.lock().unwrap().extend(l)
    });
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let t3 = thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let _ = (t1.join(), t2.join(), t3.join());
    let stdout = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
    Run {
        status,
        stdout,
        stderr,
    }
}

/// Options of [`publish_with`].
#[derive(Clone, Debug)]
pub struct PubOptions {
    /// QoS (0, 1 or 2; 2 is refused by the AWS-like broker).
    pub qos: u8,
    /// MQTT client id; default `<cn>-pub-<n>` (unique, so that it never takes
    /// over the session of a device using its thing name as client id).
    pub client_id: Option<String>,
    /// Set the RETAIN flag.
    pub retain: bool,
    /// Present the client certificate (default true). `false`: TLS without a
    /// client certificate, which the broker must refuse.
    pub with_cert: bool,
    /// `-V` value: `mqttv5` (default), `mqttv311`.
    pub protocol: String,
    /// More `mosquitto_pub` arguments.
    pub extra_args: Vec<String>,
}

impl Default for PubOptions {
    fn default() -> Self {
        PubOptions {
            qos: 1,
            client_id: None,
            retain: false,
            with_cert: true,
            protocol: "mqttv5".to_string(),
            extra_args: Vec::new(),
        }
    }
}

/// Result of one `mosquitto_pub` run.
#[derive(Debug)]
pub struct Published {
    /// The process result and its `-d` transcript.
    pub run: Run,
    /// CONNACK reason code, if a CONNACK arrived.
    pub connack: Option<u8>,
    /// PUBACK reason code (MQTT 5; 0 or 16 = success, 0x87 = not authorized), if one arrived.
    pub puback: Option<u8>,
}

impl Published {
    /// Exit code 0, CONNACK 0, and for QoS 1 a PUBACK with a success code
    /// (mosquitto_pub exits 0 even on PUBACK 0x87: check this instead).
    pub fn ok(&self) -> bool {
        let exit_ok = self.run.status.is_some_and(|s| s.success());
        let puback_ok = match self.puback {
            Some(rc) => rc < 0x80,
            None => !self.run.stdout.contains("sending PUBLISH (d0, q1"),
        };
        exit_ok && self.connack == Some(0) && puback_ok && self.run.stderr.trim().is_empty()
    }
}

fn parse_code(text: &str, marker: &str) -> Option<u8> {
    let i = text.find(marker)? + marker.len();
    let digits: String = text[i..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Publishes one message with `mosquitto_pub -V mqttv5 -q <qos>` as `client`
/// (default options; see [`publish_with`]).
pub fn publish(
    broker: &Broker,
    client: &ClientId,
    topic: &str,
    payload: impl AsRef<[u8]>,
    qos: u8,
) -> Published {
    publish_with(
        broker,
        client,
        topic,
        payload,
        &PubOptions {
            qos,
            ..PubOptions::default()
        },
    )
}

/// Publishes one message with `mosquitto_pub` (payload from stdin, binary-safe;
/// an empty payload is sent with `-n`). Never panics on MQTT/TLS failures:
/// inspect [`Published`].
pub fn publish_with(
    broker: &Broker,
    client: &ClientId,
    topic: &str,
    payload: impl AsRef<[u8]>,
    opts: &PubOptions,
) -> Published {
    let payload = payload.as_ref();
    let id = opts
        .client_id
        .clone()
        .unwrap_or_else(|| format!("{}-pub-{}", client.cn, next_id()));
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(tls_args(broker, opts.with_cert.then_some(client)))
        .args(["-V", &opts.protocol, "-q", &opts.qos.to_string(), "-i", &id])
        .args(["-t", topic, "-d"]);
    if opts.retain {
        cmd.arg("-r");
    }
    if payload.is_empty() {
        cmd.arg("-n");
    } else {
        cmd.arg("-s");
    }
    cmd.args(&opts.extra_args);
    let run = run(cmd, payload, CLIENT_TIMEOUT);
    Published {
        connack: parse_code(&run.stdout, "received CONNACK ("),
        puback: parse_code(&run.stdout, "received PUBACK (Mid: 1, RC:")
            .or_else(|| run.stdout.contains("received PUBACK").then_some(0)),
        run,
    }
}

/// Runs `openssl s_client -connect 127.0.0.1:<port> -CAfile <ca>` with `args`
/// (e.g. `-tls1_2`), presenting `client`'s certificate if given; stdin is
/// empty so it ends after the handshake.
pub fn s_client(broker: &Broker, client: Option<&ClientId>, args: &[&str]) -> Run {
    require(&["openssl"]);
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &broker.addr().to_string(),
        "-CAfile",
    ])
    .arg(broker.ca_file())
    .args(["-servername", "localhost"]);
    if let Some(client) = client {
        let (cert, key) = broker.client_files(client);
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    cmd.args(args);
    run(cmd, b"", CLIENT_TIMEOUT)
}

/// Options of [`Subscriber::start_with`].
#[derive(Clone, Debug)]
pub struct SubOptions {
    /// MQTT client id; default `<cn>-sub-<n>` (unique). Two live clients with the
    /// same id take the session from each other in a loop (mosquitto_sub reconnects).
    pub client_id: Option<String>,
    /// Persistent session (`-c`: Clean Start = 0, Session Expiry = never), so
    /// QoS 1 messages published while it is away are queued for it. Needs a fixed `client_id`.
    pub persistent: bool,
    /// Requested QoS (default 1).
    pub qos: u8,
    /// `-V` value (default `mqttv5`).
    pub protocol: String,
    /// More `mosquitto_sub` arguments.
    pub extra_args: Vec<String>,
}

impl Default for SubOptions {
    fn default() -> Self {
        SubOptions {
            client_id: None,
            persistent: false,
            qos: 1,
            protocol: "mqttv5".to_string(),
            extra_args: Vec::new(),
        }
    }
}

#[derive(Default)]
struct SubState {
    messages: Vec<(String, Vec<u8>)>,
    /// Granted QoS list of each SUBACK ("Subscribed (mid: n): q, q").
    subacks: Vec<Vec<u8>>,
    transcript: String,
    stderr: String,
    stdout_closed: bool,
}

/// A `mosquitto_sub` process collecting messages in the background.
pub struct Subscriber {
    child: Option<Child>,
    state: Arc<(Mutex<SubState>, Condvar)>,
    readers: Vec<JoinHandle<()>>,
    client_id: String,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Line prefix of a message in the `-F` output format.
const MSG_PREFIX: &str = "MSG ";

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Parses "Subscribed (mid: 1): 1, 135".
fn parse_suback(line: &str) -> Option<Vec<u8>> {
    let rest = line.strip_prefix("Subscribed (mid: ")?;
    let (_, codes) = rest.split_once("): ")?;
    codes.split(',').map(|c| c.trim().parse().ok()).collect()
}

impl Subscriber {
    /// Subscribes `client` to `topic` at QoS 1 with a fresh client id, and
    /// returns once the SUBACK arrived. Panics if it does not within 10 s.
    pub fn start(broker: &Broker, client: &ClientId, topic: &str) -> Subscriber {
        Self::start_with(broker, client, &[topic], SubOptions::default())
    }

    /// Like [`start`](Self::start) with several topics and options. Panics if not subscribed.
    pub fn start_with(
        broker: &Broker,
        client: &ClientId,
        topics: &[&str],
        opts: SubOptions,
    ) -> Subscriber {
        Self::try_start_with(broker, client, topics, opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`start_with`](Self::start_with) but returns the transcript on failure
    /// (no SUBACK, or every subscription refused).
    pub fn try_start_with(
        broker: &Broker,
        client: &ClientId,
        topics: &[&str],
        opts: SubOptions,
    ) -> Result<Subscriber, String> {
        let client_id = opts
            .client_id
            .clone()
            .unwrap_or_else(|| format!("{}-sub-{}", client.cn, next_id()));
        // stdbuf: mosquitto_sub's stdout is block-buffered on a pipe; -oL makes
        // every line (SUBACK, messages) visible at once.
        let mut cmd = Command::new("stdbuf");
        cmd.args(["-oL", "-eL", "mosquitto_sub"])
            .args(tls_args(broker, Some(client)))
            .args(["-V", &opts.protocol, "-q", &opts.qos.to_string()])
            .args(["-i", &client_id, "-d", "-F", "MSG %x %t\\n"]);
        if opts.persistent {
            cmd.arg("-c");
        }
        for t in topics {
            cmd.args(["-t", t]);
        }
        cmd.args(&opts.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run mosquitto_sub via stdbuf: {e}"));
        let state: Arc<(Mutex<SubState>, Condvar)> = Arc::default();
        let s = state.clone();
        let out = spawn_reader(child.stdout.take().unwrap(), move |raw| {
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            let (lock, cv) = &*s;
            let mut st = lock.lock().unwrap();
            if let Some(m) = line.strip_prefix(MSG_PREFIX) {
                let (hex, topic) = m.split_once(' ').unwrap_or((m, ""));
                let payload = unhex(hex).unwrap_or_else(|| hex.as_bytes().to_vec());
                st.messages.push((topic.to_string(), payload));
            } else if let Some(codes) = parse_suback(line) {
                st.subacks.push(codes);
            }
            if !line.is_empty() {
                st.transcript.push_str(line);
                st.transcript.push('\n');
            }
            cv.notify_all();
        });
        let s = state.clone();
        let done = state.clone();
        let err = spawn_reader(child.stderr.take().unwrap(), move |raw| {
            let (lock, cv) = &*s;
            lock.lock()
                .unwrap()
                .stderr
                .push_str(&String::from_utf8_lossy(&raw));
            cv.notify_all();
        });
        // Mark stdout closure (process gone) from a small watcher on the stdout thread's end.
        let watcher = thread::spawn(move || {
            let _ = out.join();
            let (lock, cv) = &*done;
            lock.lock().unwrap().stdout_closed = true;
            cv.notify_all();
        });
        let sub = Subscriber {
            child: Some(child),
            state,
            readers: vec![watcher, err],
            client_id,
        };
        let (lock, cv) = &*sub.state;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut st = lock.lock().unwrap();
        loop {
            if let Some(codes) = st.subacks.first() {
                if codes.iter().all(|&c| c >= 0x80) {
                    let msg = format!(
                        "{}: every subscription refused ({codes:?}):\n{}{}",
                        sub.client_id, st.transcript, st.stderr
                    );
                    drop(st);
                    return Err(msg);
                }
                break;
            }
            let now = Instant::now();
            if st.stdout_closed || now >= deadline {
                let msg = format!(
                    "mosquitto_sub {} not subscribed to {topics:?} on {HOST}:{} ({}):\n{}{}\n\
                     --- broker log tail ---\n{}",
                    sub.client_id,
                    broker.port(),
                    if st.stdout_closed {
                        "exited"
                    } else {
                        "timeout"
                    },
                    st.transcript,
                    st.stderr,
                    broker.log_tail(20)
                );
                drop(st);
                return Err(msg);
            }
            st = cv.wait_timeout(st, deadline - now).unwrap().0;
        }
        drop(st);
        Ok(sub)
    }

    /// The MQTT client id in use.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Granted QoS per topic of the first SUBACK (0x80+ = refused).
    pub fn granted(&self) -> Vec<u8> {
        let st = self.state.0.lock().unwrap();
        st.subacks.first().cloned().unwrap_or_default()
    }

    /// How many SUBACKs arrived (mosquitto_sub reconnects and subscribes again
    /// after a broker restart).
    pub fn subscriptions(&self) -> usize {
        self.state.0.lock().unwrap().subacks.len()
    }

    /// Waits until at least `n` SUBACKs arrived; false on timeout.
    pub fn wait_subscriptions(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.subacks.len() >= n)
    }

    /// Messages received so far: (topic, payload).
    pub fn messages(&self) -> Vec<(String, Vec<u8>)> {
        self.state.0.lock().unwrap().messages.clone()
    }

    /// Waits until at least `n` messages arrived and returns all of them.
    /// Panics on timeout with the transcript.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<(String, Vec<u8>)> {
        if !self.wait_until(timeout, |st| st.messages.len() >= n) {
            panic!(
                "{}: expected {n} message(s) within {timeout:?}, got {}:\n{}",
                self.client_id,
                self.messages().len(),
                self.transcript()
            );
        }
        self.messages()
    }

    fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&SubState) -> bool) -> bool {
        let (lock, cv) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().unwrap();
        loop {
            if done(&st) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// The `-d` transcript (stdout, without message lines' decoding) and stderr.
    pub fn transcript(&self) -> String {
        let st = self.state.0.lock().unwrap();
        format!("{}{}", st.transcript, st.stderr)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the client (its connection drops without DISCONNECT; a persistent
    /// session stays on the broker) and returns the messages it received.
    pub fn stop(mut self) -> Vec<(String, Vec<u8>)> {
        self.shutdown();
        self.messages()
    }

    fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for t in self.readers.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ------------------------------------------------------------------------------------------------
// Cloud stand-ins: in-process MQTT services (rumqttc), used by the AWS and Aliyun stand-ins
// ------------------------------------------------------------------------------------------------

/// The lines a cloud stand-in "says" (what it did, for tests to assert on), with waiting.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.all()).finish()
    }
}

impl Lines {
    /// Adds a line and wakes the waiters.
    pub fn say(&self, line: impl Into<String>) {
        let (v, c) = &*self.0;
        v.lock().unwrap().push(line.into());
        c.notify_all();
    }

    /// The lines so far.
    pub fn all(&self) -> Vec<String> {
        self.0.0.lock().unwrap().clone()
    }

    /// Waits for a line for which `pred` holds; returns it (`None` after `timeout`).
    pub fn wait(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let (v, c) = &*self.0;
        let deadline = Instant::now() + timeout;
        let mut guard = v.lock().unwrap();
        loop {
            if let Some(l) = guard.iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = c.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }
}

/// What a stand-in's MQTT connection hands to its handler.
pub struct Ctx<'a> {
    /// Publishes (a clone can be moved to another thread).
    pub client: &'a rumqttc::Client,
    /// The stand-in's output lines.
    pub lines: &'a Lines,
    /// Diagnostics (printed if a test panics while the stand-in runs).
    pub diag: &'a Lines,
}

/// A cloud stand-in: one MQTT connection (rumqttc, MQTT 3.1.1) of the test process to the
/// broker, its event loop on a thread that calls a handler for every message; nothing of the
/// `quectel` crate is involved. It subscribes (again after every CONNACK) to its topics, says
/// `ready_line` after the first SUBACK, and is disconnected and joined on drop.
pub struct Responder {
    name: &'static str,
    client: rumqttc::Client,
    lines: Lines,
    diag: Lines,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The largest packet a stand-in sends or accepts (the broker's own limit is 131200).
const RESPONDER_MAX_PACKET: usize = 131_200;

impl Responder {
    /// Connects to the broker on [`HOST`]`:port` with `tls`, subscribes to `topics`, and
    /// returns once subscribed (at most `timeout`), having said `ready_line` if given;
    /// `handler` gets every PUBLISH. What it says goes to `lines`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        name: &'static str,
        port: u16,
        client_id: String,
        tls: rumqttc::TlsConfiguration,
        credentials: Option<(String, String)>,
        topics: Vec<(String, rumqttc::QoS)>,
        lines: Lines,
        ready_line: Option<&'static str>,
        mut handler: impl FnMut(&Ctx<'_>, rumqttc::Publish) + Send + 'static,
        timeout: Duration,
    ) -> Result<Responder, String> {
        use rumqttc::{Event, Packet};
        let mut options = rumqttc::MqttOptions::new(client_id, HOST, port);
        options
            .set_keep_alive(Duration::from_secs(60))
            .set_max_packet_size(RESPONDER_MAX_PACKET, RESPONDER_MAX_PACKET)
            .set_transport(rumqttc::Transport::Tls(tls));
        if let Some((user, password)) = credentials {
            options.set_credentials(user, password);
        }
        let (client, mut connection) = rumqttc::Client::new(options, 64);
        let diag = Lines::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (client, lines, diag, stop) =
                (client.clone(), lines.clone(), diag.clone(), stop.clone());
            thread::Builder::new()
                .name(format!("{name}-responder"))
                .spawn(move || {
                    let ctx = Ctx {
                        client: &client,
                        lines: &lines,
                        diag: &diag,
                    };
                    let mut subscribed = false;
                    while !stop.load(Ordering::Relaxed) {
                        match connection.recv_timeout(Duration::from_millis(100)) {
                            Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                                diag.say(format!("connected: {:?}", ack.code));
                                let filters = topics
                                    .iter()
                                    .map(|(t, q)| rumqttc::SubscribeFilter::new(t.clone(), *q));
                                if let Err(e) = client.try_subscribe_many(filters) {
                                    diag.say(format!("subscribe failed: {e}"));
                                }
                            }
                            Ok(Ok(Event::Incoming(Packet::SubAck(ack)))) => {
                                diag.say(format!("subscribed: {:?}", ack.return_codes));
                                if !subscribed {
                                    subscribed = true;
                                    if let Some(line) = ready_line {
                                        lines.say(line);
                                    }
                                }
                            }
                            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => handler(&ctx, p),
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => {
                                if stop.load(Ordering::Relaxed) {
                                    break;
                                }
                                if let rumqttc::ConnectionError::ConnectionRefused(code) = &e {
                                    lines.say(format!("error responder CONNACK {code:?}"));
                                }
                                diag.say(format!("connection error: {e}"));
                                thread::sleep(Duration::from_millis(200));
                            }
                            Err(rumqttc::RecvTimeoutError::Timeout) => {}
                            Err(rumqttc::RecvTimeoutError::Disconnected) => break,
                        }
                    }
                })
                .expect("spawn the responder thread")
        };
        let r = Responder {
            name,
            client,
            lines,
            diag,
            stop,
            thread: Some(thread),
        };
        match r.diag.wait(|l| l.starts_with("subscribed: "), timeout) {
            Some(_) => Ok(r),
            None => Err(format!(
                "the {name} responder did not subscribe within {timeout:?}:\n{}",
                r.diag.all().join("\n")
            )),
        }
    }

    /// A TLS configuration that trusts `ca_pem`, with a client certificate if given.
    pub fn tls(ca_pem: &str, client: Option<&ClientId>) -> rumqttc::TlsConfiguration {
        rumqttc::TlsConfiguration::Simple {
            ca: ca_pem.as_bytes().to_vec(),
            alpn: None,
            client_auth: client.map(|c| {
                (
                    c.cert_pem.as_bytes().to_vec(),
                    c.key_pem.as_bytes().to_vec(),
                )
            }),
        }
    }

    /// The output lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.all()
    }

    /// Waits for a line for which `pred` holds; returns it (`None` after `timeout`).
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        self.lines.wait(pred, timeout)
    }

    /// Its MQTT client (publishing from another thread).
    pub fn client(&self) -> &rumqttc::Client {
        &self.client
    }

    /// Its diagnostics so far (connection events, handler failures).
    pub fn diagnostics(&self) -> String {
        self.diag.all().join("\n")
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if thread::panicking() {
            eprintln!(
                "--- {} responder diagnostics ---\n{}\n---",
                self.name,
                self.diagnostics()
            );
        }
    }
}

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Sends SIGHUP to the broker `pid` (mosquitto then reloads its configuration, ACL and
/// password file).
pub fn sighup(pid: u32) {
    // SAFETY: plain kill(2) on the pid of a broker this process started.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGHUP);
    }
}

// ------------------------------------------------------------------------------------------------
// AWS fleet provisioning stand-in (tests/aws_fleet.rs, examples/aws_fleet_provisioning.rs)
// ------------------------------------------------------------------------------------------------

impl Broker {
    /// Path of the broker's ACL file (mosquitto reads it again on SIGHUP).
    pub fn acl_path(&self) -> PathBuf {
        self.dir.join("acl")
    }

    /// Path of the broker's log file.
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }
}

const FLEET_CREATE: &str = "$aws/certificates/create/json";
const FLEET_CREATE_FROM_CSR: &str = "$aws/certificates/create-from-csr/json";
const FLEET_PROVISION_PREFIX: &str = "$aws/provisioning-templates/";
const FLEET_PROVISION_SUFFIX: &str = "/provision/json";
const FLEET_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A stand-in for AWS IoT fleet provisioning: the MQTT API of `CreateCertificateFromCsr`,
/// `CreateKeysAndCertificate` and `RegisterThing` (JSON payloads), connected to the broker with
/// a service certificate that may use every topic. It answers:
///
/// - `$aws/certificates/create-from-csr/json`: checks the CSR's signature and key (P-256, P-384
///   or RSA >= 2048), issues a certificate signed by the broker's CA whose CN is the new
///   certificate id (64 hex digits), and a one-hour `certificateOwnershipToken`;
/// - `$aws/certificates/create/json`: makes an RSA 2048 key and certificate (like AWS) and
///   also returns `privateKey` (PKCS#1 PEM);
/// - `$aws/provisioning-templates/<template>/provision/json`: checks the ownership token
///   (unknown, used or expired: 400 `InvalidCertificateOwnershipToken`, an error code of this
///   stand-in's choosing) and the `SerialNumber` parameter (missing or not `[A-Za-z0-9_-]+`:
///   400 `InvalidParameters`), names the thing `thing-<SerialNumber>`, and *activates* the
///   certificate: it appends `user <certificateId>` / `topic readwrite dt/<thing>/#` to the
///   broker's ACL file and sends the broker SIGHUP, so that the new certificate may publish
///   only after `RegisterThing`, as on AWS. It answers once the broker logged the reload.
///   Another template: 404 `ResourceNotFoundException`.
///
/// Answers go to `<request topic>/accepted` or `/rejected` with QoS 1; a request that is not
/// JSON (or lacks its field) gets 400 `InvalidPayload`. Its [`lines`](Self::lines): `READY`
/// once subscribed, then `ISSUED <id> csr|keys`, `REGISTERED <thing> <id>`,
/// `REJECTED <operation> <status> <errorCode>`.
#[derive(Debug)]
pub struct FleetResponder(Responder);

struct Fleet {
    pki: Arc<Pki>,
    template: String,
    thing_prefix: String,
    acl: PathBuf,
    broker_pid: u32,
    broker_log: PathBuf,
    /// Ownership token -> (certificate id, issued at).
    tokens: HashMap<String, (String, Instant)>,
}

impl FleetResponder {
    /// Starts the stand-in for `template` with `service` (an identity the ACL gives full
    /// access) and waits (at most [`START_TIMEOUT`]) until it has subscribed. Thing names are
    /// `thing-<SerialNumber>`.
    pub fn start(
        broker: &Broker,
        service: &ClientId,
        template: &str,
    ) -> Result<FleetResponder, String> {
        let broker_pid = broker.pid().ok_or("the broker is not running")?;
        let mut fleet = Fleet {
            pki: broker.pki().clone(),
            template: template.to_string(),
            thing_prefix: "thing-".to_string(),
            acl: broker.acl_path(),
            broker_pid,
            broker_log: broker.log_path(),
            tokens: HashMap::new(),
        };
        let topics = [
            FLEET_CREATE.to_string(),
            FLEET_CREATE_FROM_CSR.to_string(),
            format!("{FLEET_PROVISION_PREFIX}+{FLEET_PROVISION_SUFFIX}"),
        ]
        .into_iter()
        .map(|t| (t, rumqttc::QoS::AtLeastOnce))
        .collect();
        Responder::start(
            "fleet",
            broker.port(),
            format!("aws-fleet-responder-{}", next_id()),
            Responder::tls(&broker.pki().ca_pem, Some(service)),
            None,
            topics,
            Lines::default(),
            Some("READY"),
            move |ctx, p| fleet.handle(ctx, &p.topic, &p.payload),
            START_TIMEOUT,
        )
        .map(FleetResponder)
    }

    /// The lines so far (`READY`, `ISSUED <id> csr|keys`, `REGISTERED <thing> <id>`,
    /// `REJECTED <operation> <status> <code>`).
    pub fn lines(&self) -> Vec<String> {
        self.0.lines()
    }
}

impl Fleet {
    fn handle(&mut self, ctx: &Ctx<'_>, topic: &str, payload: &[u8]) {
        if topic == FLEET_CREATE_FROM_CSR {
            self.create_from_csr(ctx, topic, payload);
        } else if topic == FLEET_CREATE {
            self.create_keys(ctx, topic);
        } else if let Some(template) = topic
            .strip_prefix(FLEET_PROVISION_PREFIX)
            .and_then(|t| t.strip_suffix(FLEET_PROVISION_SUFFIX))
        {
            self.register_thing(ctx, topic, template, payload);
        } else {
            ctx.diag.say(format!("ignoring {topic}"));
        }
    }

    fn answer(&self, ctx: &Ctx<'_>, request_topic: &str, accepted: bool, body: String) {
        let topic = format!(
            "{request_topic}/{}",
            if accepted { "accepted" } else { "rejected" }
        );
        if let Err(e) = ctx
            .client
            .try_publish(topic, rumqttc::QoS::AtLeastOnce, false, body)
        {
            ctx.diag.say(format!("publish failed: {e}"));
        }
    }

    fn reject(
        &self,
        ctx: &Ctx<'_>,
        topic: &str,
        operation: &str,
        status: u16,
        code: &str,
        message: &str,
    ) {
        ctx.lines
            .say(format!("REJECTED {operation} {status} {code}"));
        self.answer(
            ctx,
            topic,
            false,
            format!(
                "{{\"statusCode\": {status}, \"errorCode\": {}, \"errorMessage\": {}}}",
                json_str(code),
                json_str(message)
            ),
        );
    }

    /// Issues a certificate for `public_key` (SubjectPublicKeyInfo DER) and an ownership
    /// token: (certificate id, certificate PEM, token).
    fn issue(
        &mut self,
        ctx: &Ctx<'_>,
        public_key: &[u8],
        how: &str,
    ) -> Result<(String, String, String), String> {
        let spki = rcgen::SubjectPublicKeyInfo::from_der(public_key).map_err(|e| e.to_string())?;
        let cert_id = hex(&random_bytes(32));
        let now = time::OffsetDateTime::now_utc();
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::CommonName, cert_id.as_str());
        let mut serial = random_bytes(20);
        serial[0] &= 0x7f;
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::days(365);
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p
            .signed_by(&spki, &self.pki.ca)
            .map_err(|e| e.to_string())?;
        // 48 random bytes, URL-safe base64 without padding: 64 characters.
        let token = base64url(&random_bytes(48));
        self.tokens
            .insert(token.clone(), (cert_id.clone(), Instant::now()));
        ctx.lines.say(format!("ISSUED {cert_id} {how}"));
        Ok((cert_id, cert.pem(), token))
    }

    fn create_from_csr(&mut self, ctx: &Ctx<'_>, topic: &str, payload: &[u8]) {
        use x509_parser::prelude::FromDer;
        use x509_parser::public_key::PublicKey;
        const OP: &str = "CreateCertificateFromCsr";
        let request: serde_json::Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(e) => {
                return self.reject(
                    ctx,
                    topic,
                    OP,
                    400,
                    "InvalidPayload",
                    &format!("bad request: {e}"),
                );
            }
        };
        let Some(pem) = request
            .get("certificateSigningRequest")
            .and_then(|v| v.as_str())
        else {
            return self.reject(
                ctx,
                topic,
                OP,
                400,
                "InvalidPayload",
                "bad request: no certificateSigningRequest string",
            );
        };
        let der = match x509_parser::pem::parse_x509_pem(pem.as_bytes()) {
            Ok((_, p)) if p.label.ends_with("CERTIFICATE REQUEST") => p.contents,
            Ok((_, p)) => {
                let m = format!("bad request: a PEM {} block, not a CSR", p.label);
                return self.reject(ctx, topic, OP, 400, "InvalidPayload", &m);
            }
            Err(e) => {
                let m = format!("bad request: {e}");
                return self.reject(ctx, topic, OP, 400, "InvalidPayload", &m);
            }
        };
        let csr = match x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        {
            Ok((_, csr)) => csr,
            Err(e) => {
                let m = format!("bad request: {e}");
                return self.reject(ctx, topic, OP, 400, "InvalidPayload", &m);
            }
        };
        if csr.verify_signature().is_err() {
            return self.reject(
                ctx,
                topic,
                OP,
                400,
                "InvalidCsr",
                "CSR signature does not verify",
            );
        }
        let spki = &csr.certification_request_info.subject_pki;
        const P256: &str = "1.2.840.10045.3.1.7";
        const P384: &str = "1.3.132.0.34";
        let ok = match spki.parsed() {
            Ok(PublicKey::EC(_)) => spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .is_some_and(|oid| [P256, P384].contains(&oid.to_id_string().as_str())),
            Ok(PublicKey::RSA(k)) => k.key_size() >= 2048,
            _ => false,
        };
        if !ok {
            return self.reject(ctx, topic, OP, 400, "InvalidCsr", "key type not accepted");
        }
        match self.issue(ctx, spki.raw, "csr") {
            Ok((cert_id, pem, token)) => self.answer(
                ctx,
                topic,
                true,
                format!(
                    "{{\"certificateOwnershipToken\": {}, \"certificateId\": {}, \"certificatePem\": {}}}",
                    json_str(&token),
                    json_str(&cert_id),
                    json_str(&pem)
                ),
            ),
            Err(e) => ctx.diag.say(format!("CreateCertificateFromCsr failed: {e}")),
        }
    }

    fn create_keys(&mut self, ctx: &Ctx<'_>, topic: &str) {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::EncodePublicKey;
        let made = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
            .map_err(|e| e.to_string())
            .and_then(|key| {
                let public = key
                    .to_public_key()
                    .to_public_key_der()
                    .map_err(|e| e.to_string())?;
                let private = key
                    .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                    .map_err(|e| e.to_string())?;
                Ok((public, private))
            });
        let (public, private) = match made {
            Ok(k) => k,
            Err(e) => return ctx.diag.say(format!("RSA key generation failed: {e}")),
        };
        match self.issue(ctx, public.as_bytes(), "keys") {
            Ok((cert_id, pem, token)) => self.answer(
                ctx,
                topic,
                true,
                format!(
                    "{{\"certificateId\": {}, \"certificatePem\": {}, \"privateKey\": {}, \
                     \"certificateOwnershipToken\": {}}}",
                    json_str(&cert_id),
                    json_str(&pem),
                    json_str(private.as_str()),
                    json_str(&token)
                ),
            ),
            Err(e) => ctx
                .diag
                .say(format!("CreateKeysAndCertificate failed: {e}")),
        }
    }

    fn register_thing(&mut self, ctx: &Ctx<'_>, topic: &str, template: &str, payload: &[u8]) {
        const OP: &str = "RegisterThing";
        if template != self.template {
            let m = format!("no template {template}");
            return self.reject(ctx, topic, OP, 404, "ResourceNotFoundException", &m);
        }
        let request: serde_json::Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(e) => {
                let m = format!("bad request: {e}");
                return self.reject(ctx, topic, OP, 400, "InvalidPayload", &m);
            }
        };
        let Some(token) = request.get("certificateOwnershipToken") else {
            let m = "bad request: no certificateOwnershipToken";
            return self.reject(ctx, topic, OP, 400, "InvalidPayload", m);
        };
        let entry = token.as_str().and_then(|t| self.tokens.remove(t));
        let Some((cert_id, issued)) = entry.filter(|(_, at)| at.elapsed() <= FLEET_TOKEN_LIFETIME)
        else {
            return self.reject(
                ctx,
                topic,
                OP,
                400,
                "InvalidCertificateOwnershipToken",
                "unknown, used or expired ownership token",
            );
        };
        let _ = issued;
        let serial = request
            .get("parameters")
            .and_then(|p| p.get("SerialNumber"))
            .and_then(|s| s.as_str())
            .unwrap_or("");
        if serial.is_empty()
            || !serial
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return self.reject(
                ctx,
                topic,
                OP,
                400,
                "InvalidParameters",
                "SerialNumber missing or invalid",
            );
        }
        let thing = format!("{}{serial}", self.thing_prefix);
        self.activate(ctx, &cert_id, &thing);
        ctx.lines.say(format!("REGISTERED {thing} {cert_id}"));
        self.answer(
            ctx,
            topic,
            true,
            format!(
                "{{\"deviceConfiguration\": {{\"telemetryTopic\": {}}}, \"thingName\": {}}}",
                json_str(&format!("dt/{thing}/telemetry")),
                json_str(&thing)
            ),
        );
    }

    /// Grants the new certificate its thing's topics, then makes mosquitto reload the ACL and
    /// waits (at most 10 s) until it logged the reload.
    fn activate(&self, ctx: &Ctx<'_>, cert_id: &str, thing: &str) {
        let appended = OpenOptions::new()
            .append(true)
            .open(&self.acl)
            .and_then(|mut f| {
                write!(
                    f,
                    "\n# activated by the fleet responder\nuser {cert_id}\ntopic readwrite dt/{thing}/#\n"
                )
            });
        if let Err(e) = appended {
            return ctx
                .diag
                .say(format!("cannot append to {}: {e}", self.acl.display()));
        }
        let start = fs::metadata(&self.broker_log).map(|m| m.len()).unwrap_or(0);
        sighup(self.broker_pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let log = fs::read(&self.broker_log).unwrap_or_default();
            let new = log.get(start as usize..).unwrap_or_default();
            if new.windows(16).any(|w| w == b"Reloading config") {
                // The reload runs right after that line, in the broker's only thread, before
                // it reads our next packet.
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        ctx.diag.say("the broker did not log a reload within 10 s");
    }
}

/// URL-safe base64 without padding (as Python's `secrets.token_urlsafe`).
fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::new();
    for ch in bytes.chunks(3) {
        let n = (u32::from(ch[0]) << 16)
            | (u32::from(*ch.get(1).unwrap_or(&0)) << 8)
            | u32::from(*ch.get(2).unwrap_or(&0));
        for i in 0..=ch.len() {
            s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    s
}
