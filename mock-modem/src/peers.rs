//! Loopback test peers for socket tests: a TCP echo server, a TLS echo server
//! and a throw-away PKI.
//!
//! Everything binds to `127.0.0.1` on an ephemeral port; nothing here ever
//! contacts another address. Servers run in threads and stop (joining every
//! thread) on [`EchoHandle::stop`] or when the handle is dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const POLL: Duration = Duration::from_millis(20);

#[derive(Default)]
struct Counters {
    stop: AtomicBool,
    echoed: AtomicU64,
    connections: AtomicU64,
    handshakes: AtomicU64,
    handshake_errors: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Handle of a running echo server ([`TcpEchoServer`] or [`TlsEchoServer`]).
///
/// Dropping it stops the server, like [`stop`](Self::stop).
pub struct EchoHandle {
    addr: SocketAddr,
    c: Arc<Counters>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EchoHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoHandle")
            .field("addr", &self.addr)
            .field("bytes_echoed", &self.bytes_echoed())
            .finish()
    }
}

impl EchoHandle {
    /// The address the server listens on (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Payload bytes echoed so far (plaintext bytes for TLS), over all connections.
    pub fn bytes_echoed(&self) -> u64 {
        self.c.echoed.load(Ordering::SeqCst)
    }
    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.c.connections.load(Ordering::SeqCst)
    }
    /// TLS handshakes completed (always 0 for the TCP server).
    pub fn handshakes(&self) -> u64 {
        self.c.handshakes.load(Ordering::SeqCst)
    }
    /// TLS handshakes that failed (bad client certificate, wrong CA on the client …).
    pub fn handshake_errors(&self) -> u64 {
        self.c.handshake_errors.load(Ordering::SeqCst)
    }
    /// Stop accepting, close every connection and join all threads.
    pub fn stop(mut self) {
        self.stop_inner();
    }
    fn stop_inner(&mut self) {
        self.c.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let threads =
            std::mem::take(&mut *self.c.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for EchoHandle {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

fn accept_loop(
    listener: TcpListener,
    c: Arc<Counters>,
    conn: impl Fn(TcpStream, Arc<Counters>) + Send + Sync + 'static,
) -> JoinHandle<()> {
    let conn = Arc::new(conn);
    std::thread::spawn(move || {
        let _ = listener.set_nonblocking(true);
        while !c.stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(POLL));
                    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
                    let _ = s.set_nodelay(true);
                    c.connections.fetch_add(1, Ordering::SeqCst);
                    let c2 = c.clone();
                    let f = conn.clone();
                    let t = std::thread::spawn(move || f(s, c2));
                    let mut ts = c.threads.lock().unwrap_or_else(|e| e.into_inner());
                    ts.retain(|t| !t.is_finished());
                    ts.push(t);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    })
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// A plain TCP echo server on `127.0.0.1`.
#[derive(Debug, Clone, Copy)]
pub struct TcpEchoServer;

impl TcpEchoServer {
    /// Start a server that echoes every byte on every connection.
    pub fn start() -> (SocketAddr, EchoHandle) {
        Self::start_with(None)
    }

    /// Like [`start`](Self::start); with `Some(n)` each connection is closed by
    /// the server after it has echoed `n` bytes (the bytes are echoed first).
    pub fn start_with(close_after: Option<u64>) -> (SocketAddr, EchoHandle) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let c = Arc::new(Counters::default());
        let accept = accept_loop(listener, c.clone(), move |mut s, c| {
            let mut buf = [0u8; 4096];
            let mut done = 0u64;
            while !c.stop.load(Ordering::SeqCst) {
                let want = match close_after {
                    Some(n) if done >= n => break,
                    Some(n) => buf.len().min((n - done) as usize),
                    None => buf.len(),
                };
                match s.read(&mut buf[..want]) {
                    Ok(0) => break,
                    Ok(k) => {
                        if s.write_all(&buf[..k]).is_err() {
                            break;
                        }
                        done += k as u64;
                        c.echoed.fetch_add(k as u64, Ordering::SeqCst);
                    }
                    Err(e) if is_timeout(&e) => {}
                    Err(_) => break,
                }
            }
            let _ = s.shutdown(Shutdown::Both);
        });
        (
            addr,
            EchoHandle {
                addr,
                c,
                accept: Some(accept),
            },
        )
    }
}

/// A throw-away PKI for TLS tests (P-256 keys everywhere).
#[derive(Debug, Clone)]
pub struct TestPki {
    /// CA certificate (PEM) that signed the server and client certificates.
    pub ca_pem: String,
    /// CA certificate (DER).
    pub ca_der: Vec<u8>,
    /// Server certificate (PEM) for DNS name `localhost` and IP `127.0.0.1`.
    pub server_cert_pem: String,
    /// Server private key (PKCS#8 PEM).
    pub server_key_pem: String,
    /// Client certificate (PEM), CN [`TestPki::CLIENT_CN`].
    pub client_cert_pem: String,
    /// Client certificate (DER).
    pub client_cert_der: Vec<u8>,
    /// Client private key (PKCS#8 PEM, `-----BEGIN PRIVATE KEY-----`).
    pub client_key_pem: String,
    /// Client private key (SEC1 PEM, `-----BEGIN EC PRIVATE KEY-----`).
    pub client_key_sec1_pem: String,
    /// A second, unrelated CA (PEM) — for "wrong CA" tests.
    pub other_ca_pem: String,
    /// A client certificate (PEM) signed by the unrelated CA, and its key (PKCS#8 PEM).
    pub other_client_cert_pem: String,
    /// Key of [`other_client_cert_pem`](Self::other_client_cert_pem) (PKCS#8 PEM).
    pub other_client_key_pem: String,
    server_key_der: Vec<u8>,
    server_cert_der: Vec<u8>,
}

fn ca(cn: &str) -> (CertificateParams, KeyPair, rcgen::Certificate) {
    let key = KeyPair::generate().expect("generate key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).expect("self-sign CA");
    (p, key, cert)
}

fn leaf(
    sans: &[&str],
    cn: &str,
    server: bool,
    issuer: &Issuer<'_, &KeyPair>,
) -> (KeyPair, rcgen::Certificate) {
    let key = KeyPair::generate().expect("generate key");
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).expect("params");
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

/// A server leaf valid from 2020-01-01 to `last_year`-12-31.
fn leaf_dated(
    sans: &[&str],
    cn: &str,
    last_year: i32,
    issuer: &Issuer<'_, &KeyPair>,
) -> (KeyPair, rcgen::Certificate) {
    let key = KeyPair::generate().expect("generate key");
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(last_year, 12, 31);
    let cert = p.signed_by(&key, issuer).expect("sign leaf");
    (key, cert)
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

/// Convert a P-256 PKCS#8 key to SEC1 (`ECPrivateKey` with the curve OID as parameters).
fn pkcs8_to_sec1(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (_, outer, _) = der_next(pkcs8)?;
    let (_, _version, rest) = der_next(outer)?;
    let (_, _alg, rest) = der_next(rest)?;
    let (tag, ec_key, _) = der_next(rest)?;
    if tag != 0x04 {
        return None;
    }
    // ECPrivateKey ::= SEQUENCE { version, privateKey, [0] params OPTIONAL, [1] publicKey OPTIONAL }
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
        // prime256v1 OID 1.2.840.10045.3.1.7
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
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

impl TestPki {
    /// Common name of the client certificate.
    pub const CLIENT_CN: &'static str = "device-1";

    /// Generate a fresh CA, a server certificate for `localhost` and
    /// `127.0.0.1`, a client certificate (CN `device-1`), and an unrelated CA
    /// with its own client certificate.
    pub fn generate() -> TestPki {
        Self::generate_inner(None)
    }

    /// Like [`generate`](Self::generate), with the server certificate valid only from
    /// 2020-01-01 to the last day of `last_year` (to test date checks against a clock).
    pub fn generate_server_valid_until(last_year: i32) -> TestPki {
        Self::generate_inner(Some(last_year))
    }

    fn generate_inner(server_last_year: Option<i32>) -> TestPki {
        let (ca_params, ca_key, ca_cert) = ca("mock-modem test CA");
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let (server_key, server_cert) = match server_last_year {
            None => leaf(&["localhost", "127.0.0.1"], "localhost", true, &issuer),
            Some(y) => leaf_dated(&["localhost", "127.0.0.1"], "localhost", y, &issuer),
        };
        let (client_key, client_cert) = leaf(&[], Self::CLIENT_CN, false, &issuer);
        let (o_params, o_key, o_cert) = ca("unrelated test CA");
        let o_issuer = Issuer::from_params(&o_params, &o_key);
        let (oc_key, oc_cert) = leaf(&[], "intruder", false, &o_issuer);
        let sec1 = pkcs8_to_sec1(&client_key.serialize_der()).expect("P-256 PKCS#8 to SEC1");
        TestPki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_cert_der: client_cert.der().to_vec(),
            client_key_pem: client_key.serialize_pem(),
            client_key_sec1_pem: pem("EC PRIVATE KEY", &sec1),
            other_ca_pem: o_cert.pem(),
            other_client_cert_pem: oc_cert.pem(),
            other_client_key_pem: oc_key.serialize_pem(),
            server_key_der: server_key.serialize_der(),
            server_cert_der: server_cert.der().to_vec(),
        }
    }
}

/// A TLS (1.2 and 1.3) echo server on `127.0.0.1` using [`TestPki`]'s server certificate.
#[derive(Debug, Clone, Copy)]
pub struct TlsEchoServer;

impl TlsEchoServer {
    /// Start the server; with `require_client_cert` a client certificate
    /// signed by the PKI's CA is mandatory.
    pub fn start(pki: &TestPki, require_client_cert: bool) -> (SocketAddr, EchoHandle) {
        Self::start_inner(pki, require_client_cert, false)
    }

    /// [`TlsEchoServer::start`], but with TLS 1.3 the server sends a `KeyUpdate` (a
    /// post-handshake message, RFC 8446 §4.6.3) before every echo.
    pub fn start_with_key_update(pki: &TestPki) -> (SocketAddr, EchoHandle) {
        Self::start_inner(pki, false, true)
    }

    fn start_inner(
        pki: &TestPki,
        require_client_cert: bool,
        key_update: bool,
    ) -> (SocketAddr, EchoHandle) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
            .expect("protocol versions");
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(pki.ca_der.clone()))
                .expect("CA cert");
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(v)
        } else {
            builder.with_no_client_auth()
        };
        let config = Arc::new(
            builder
                .with_single_cert(
                    vec![CertificateDer::from(pki.server_cert_der.clone())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key_der.clone())),
                )
                .expect("server cert"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let c = Arc::new(Counters::default());
        let accept = accept_loop(listener, c.clone(), move |s, c| {
            tls_echo(s, config.clone(), &c, key_update)
        });
        (
            addr,
            EchoHandle {
                addr,
                c,
                accept: Some(accept),
            },
        )
    }
}

fn tls_echo(mut s: TcpStream, config: Arc<rustls::ServerConfig>, c: &Counters, key_update: bool) {
    let Ok(mut conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut handshaken = false;
    let mut buf = [0u8; 4096];
    'outer: while !c.stop.load(Ordering::SeqCst) {
        while conn.wants_write() {
            if conn.write_tls(&mut s).is_err() {
                break 'outer;
            }
        }
        match conn.read_tls(&mut s) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => continue,
            Err(_) => break,
        }
        if conn.process_new_packets().is_err() {
            if !handshaken {
                c.handshake_errors.fetch_add(1, Ordering::SeqCst);
            }
            // Send the alert.
            while conn.wants_write() {
                if conn.write_tls(&mut s).is_err() {
                    break;
                }
            }
            break;
        }
        if !handshaken && !conn.is_handshaking() {
            handshaken = true;
            c.handshakes.fetch_add(1, Ordering::SeqCst);
        }
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => {
                    conn.send_close_notify();
                    while conn.wants_write() {
                        if conn.write_tls(&mut s).is_err() {
                            break;
                        }
                    }
                    break 'outer;
                }
                Ok(n) => {
                    if key_update && conn.refresh_traffic_keys().is_err() {
                        break 'outer;
                    }
                    if conn.writer().write_all(&buf[..n]).is_err() {
                        break 'outer;
                    }
                    c.echoed.fetch_add(n as u64, Ordering::SeqCst);
                }
                Err(_) => break,
            }
        }
    }
    let _ = s.shutdown(Shutdown::Both);
}
