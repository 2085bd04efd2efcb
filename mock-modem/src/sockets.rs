//! Simulated TCP and SSL client sockets: real loopback connections driven by
//! worker threads, with a bounded modem-side receive buffer per socket.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// Default size of each socket's modem-side receive buffer.
pub const DEFAULT_SOCKET_BUFFER: usize = 64 * 1024;
/// How long after a completed TLS handshake the modem waits for an alert
/// (a TLS 1.3 server rejects a client certificate only after the client's
/// handshake has finished) before reporting `+QSSLOPEN: <id>,0`.
pub const TLS_ALERT_WAIT: Duration = Duration::from_millis(300);

const POLL: Duration = Duration::from_millis(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Resolve a host argument of `AT+QIOPEN`/`AT+QSSLOPEN` without touching the
/// network: loopback literals and `localhost` only.
///
/// `Err(565)`: a name other than `localhost` (DNS failure); `Err(566)`: an IP
/// literal outside loopback (never contacted; reported as connect failure).
pub(crate) fn resolve(host: &str, port: u16) -> Result<SocketAddr, u16> {
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        match host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return Err(565),
        }
    };
    if !ip.is_loopback() {
        return Err(566);
    }
    Ok(SocketAddr::new(ip, port))
}

pub(crate) struct SockBuf {
    pub(crate) buf: VecDeque<u8>,
    cap: usize,
    pub(crate) rx_total: u64,
    pub(crate) eof: bool,
    stop: bool,
    open: Option<Result<u16, (u16, String)>>,
    writer: Option<TcpStream>,
    ctl: Option<TcpStream>,
}

pub(crate) struct SockShared {
    st: Mutex<SockBuf>,
    cond: Condvar,
}

impl SockShared {
    fn new(cap: usize) -> Arc<SockShared> {
        Arc::new(SockShared {
            st: Mutex::new(SockBuf {
                buf: VecDeque::new(),
                cap: cap.max(1),
                rx_total: 0,
                eof: false,
                stop: false,
                open: None,
                writer: None,
                ctl: None,
            }),
            cond: Condvar::new(),
        })
    }
    pub(crate) fn lock(&self) -> MutexGuard<'_, SockBuf> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn stopped(&self) -> bool {
        self.lock().stop
    }
    fn set_open(&self, r: Result<u16, (u16, String)>) {
        self.lock().open = Some(r);
    }
    fn set_eof(&self) {
        self.lock().eof = true;
    }
    /// Free room in the receive buffer; waits (bounded) while it is full.
    fn wait_room(&self) -> Option<usize> {
        let mut st = self.lock();
        loop {
            if st.stop {
                return None;
            }
            let room = st.cap.saturating_sub(st.buf.len());
            if room > 0 {
                return Some(room);
            }
            st = self
                .cond
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
    fn room(&self) -> usize {
        let st = self.lock();
        st.cap.saturating_sub(st.buf.len())
    }
    fn push(&self, data: &[u8]) {
        let mut st = self.lock();
        st.buf.extend(data);
        st.rx_total += data.len() as u64;
    }
}

enum Tx {
    None,
    Tcp(TcpStream),
    Tls(SyncSender<Vec<u8>>),
}

/// One simulated client socket (TCP or SSL) as seen by the engine.
pub(crate) struct Socket {
    pub(crate) ssl_ctx: Option<u8>,
    pub(crate) cid: u8,
    pub(crate) ip: String,
    pub(crate) port: u16,
    pub(crate) local_port: u16,
    /// 1 opening, 2 connected, 4 closing.
    pub(crate) state: u8,
    /// A recv URC may be emitted when data is buffered.
    pub(crate) armed: bool,
    /// A `"recv"` URC is being held until an eDRX paging window (counted once).
    pub(crate) edrx_held: bool,
    /// Access mode 1 (direct push): data goes out inside `recv` URCs.
    pub(crate) push: bool,
    /// `closed` URC already emitted (or not wanted).
    pub(crate) closed_announced: bool,
    pub(crate) sent_total: u64,
    pub(crate) read_total: u64,
    shared: Arc<SockShared>,
    tx: Tx,
    thread: Option<JoinHandle<()>>,
}

impl Socket {
    fn new(ssl_ctx: Option<u8>, cid: u8, addr: SocketAddr, cap: usize) -> Socket {
        Socket {
            ssl_ctx,
            cid,
            ip: addr.ip().to_string(),
            port: addr.port(),
            local_port: 0,
            state: 1,
            armed: true,
            edrx_held: false,
            push: false,
            closed_announced: false,
            sent_total: 0,
            read_total: 0,
            shared: SockShared::new(cap),
            tx: Tx::None,
            thread: None,
        }
    }

    /// Start a TCP connection in a worker thread (state 1 until [`poll_open`](Self::poll_open)).
    pub(crate) fn open_tcp(cid: u8, addr: SocketAddr, cap: usize) -> Socket {
        let mut s = Socket::new(None, cid, addr, cap);
        let sh = s.shared.clone();
        s.thread = std::thread::Builder::new()
            .name("mock-modem-tcp".into())
            .spawn(move || tcp_worker(addr, sh))
            .ok();
        if s.thread.is_none() {
            s.shared.set_open(Err((554, "create socket failed".into())));
        }
        s
    }

    /// Start a TLS connection in a worker thread.
    pub(crate) fn open_tls(
        cid: u8,
        ctx: u8,
        addr: SocketAddr,
        host: String,
        config: Result<Arc<ClientConfig>, String>,
        timing: TlsTiming,
        cap: usize,
    ) -> Socket {
        let mut s = Socket::new(Some(ctx), cid, addr, cap);
        let sh = s.shared.clone();
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(32);
        s.tx = Tx::Tls(tx);
        s.thread = std::thread::Builder::new()
            .name("mock-modem-tls".into())
            .spawn(move || tls_worker(addr, host, config, timing, sh, rx))
            .ok();
        if s.thread.is_none() {
            s.shared.set_open(Err((554, "create socket failed".into())));
        }
        s
    }

    /// The result of the open, once known (taken once).
    pub(crate) fn poll_open(&mut self) -> Option<Result<(), (u16, String)>> {
        let mut st = self.shared.lock();
        let r = st.open.take()?;
        match r {
            Ok(port) => {
                self.local_port = port;
                if let Some(w) = st.writer.take() {
                    self.tx = Tx::Tcp(w);
                }
                self.state = 2;
                Some(Ok(()))
            }
            Err(e) => Some(Err(e)),
        }
    }

    pub(crate) fn unread(&self) -> usize {
        self.shared.lock().buf.len()
    }
    pub(crate) fn rx_total(&self) -> u64 {
        self.shared.lock().rx_total
    }
    /// (unread bytes, peer closed) read atomically.
    pub(crate) fn status(&self) -> (usize, bool) {
        let st = self.shared.lock();
        (st.buf.len(), st.eof)
    }
    /// Mark the connection as gone (after [`shutdown`](Self::shutdown)).
    pub(crate) fn force_eof(&self) {
        self.shared.set_eof();
    }

    /// Take up to `max` buffered bytes.
    pub(crate) fn read(&mut self, max: usize) -> Vec<u8> {
        let mut st = self.shared.lock();
        let n = max.min(st.buf.len());
        let v: Vec<u8> = st.buf.drain(..n).collect();
        drop(st);
        self.shared.cond.notify_all();
        self.read_total += v.len() as u64;
        v
    }

    /// Hand `data` to the network; false = `SEND FAIL`.
    pub(crate) fn send(&mut self, data: &[u8]) -> bool {
        let ok = match &mut self.tx {
            Tx::None => false,
            Tx::Tcp(s) => s.write_all(data).is_ok(),
            Tx::Tls(tx) => tx.try_send(data.to_vec()).is_ok(),
        };
        if ok {
            self.sent_total += data.len() as u64;
        }
        ok
    }

    /// Close the connection (FIN / close_notify) and stop the worker; the
    /// buffered data stays readable. Joins the worker thread.
    pub(crate) fn shutdown(&mut self) {
        let tls = self.ssl_ctx.is_some();
        {
            let mut st = self.shared.lock();
            st.stop = true;
            // TCP: FIN now (also unblocks the reader). TLS: the worker sends
            // close_notify first (it polls the stop flag every few ms).
            if !tls && let Some(c) = st.ctl.as_ref() {
                let _ = c.shutdown(Shutdown::Both);
            }
            st.writer = None;
        }
        self.shared.cond.notify_all();
        if let Tx::Tcp(s) = &self.tx {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.tx = Tx::None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(c) = self.shared.lock().ctl.take() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn connect(addr: SocketAddr, sh: &SockShared) -> Option<TcpStream> {
    match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
        Ok(s) => {
            let _ = s.set_nodelay(true);
            let _ = s.set_read_timeout(Some(POLL * 5));
            let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
            if let Ok(c) = s.try_clone() {
                sh.lock().ctl = Some(c);
            }
            Some(s)
        }
        Err(e) => {
            sh.set_open(Err((566, format!("socket connect failed: {e}"))));
            None
        }
    }
}

fn tcp_worker(addr: SocketAddr, sh: Arc<SockShared>) {
    let Some(mut s) = connect(addr, &sh) else {
        return;
    };
    let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
    match s.try_clone() {
        Ok(w) => {
            let mut st = sh.lock();
            if st.stop {
                return;
            }
            st.writer = Some(w);
            st.open = Some(Ok(port));
        }
        Err(e) => {
            sh.set_open(Err((554, format!("create socket failed: {e}"))));
            return;
        }
    }
    let mut buf = vec![0u8; 4096];
    while let Some(room) = sh.wait_room() {
        let want = room.min(buf.len());
        match s.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => sh.push(&buf[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    sh.set_eof();
}

fn flush_tls(conn: &mut rustls::ClientConnection, s: &mut TcpStream) -> std::io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(s)?;
    }
    Ok(())
}

/// Move decrypted bytes into the modem buffer as far as there is room.
/// Returns false when the peer sent close_notify.
fn drain_plain(conn: &mut rustls::ClientConnection, sh: &SockShared) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        let room = sh.room();
        if room == 0 {
            return true;
        }
        let want = room.min(buf.len());
        match conn.reader().read(&mut buf[..want]) {
            Ok(0) => return false,
            Ok(n) => sh.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

fn plain_pending(conn: &mut rustls::ClientConnection) -> bool {
    conn.process_new_packets()
        .map(|s| s.plaintext_bytes_to_read() > 0)
        .unwrap_or(false)
}

/// Time limits of one TLS open.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TlsTiming {
    /// `negotiatetime` of the SSL context.
    pub(crate) negotiate: Duration,
    /// How long to wait for a post-handshake alert ([`TLS_ALERT_WAIT`] by default).
    pub(crate) alert_wait: Duration,
}

fn tls_worker(
    addr: SocketAddr,
    host: String,
    config: Result<Arc<ClientConfig>, String>,
    timing: TlsTiming,
    sh: Arc<SockShared>,
    out: Receiver<Vec<u8>>,
) {
    let config = match config {
        Ok(c) => c,
        Err(e) => return sh.set_open(Err((566, e))),
    };
    let name = match ServerName::try_from(host.clone()) {
        Ok(n) => n,
        Err(_) => return sh.set_open(Err((566, format!("ssl: invalid server name {host:?}")))),
    };
    let mut conn = match rustls::ClientConnection::new(config, name) {
        Ok(c) => c,
        Err(e) => return sh.set_open(Err((566, format!("ssl handshake failed: {e}")))),
    };
    let Some(mut s) = connect(addr, &sh) else {
        return;
    };
    let _ = s.set_read_timeout(Some(POLL * 2));
    let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
    let fail = |why: String| sh.set_open(Err((566, why)));
    // Handshake.
    let deadline = Instant::now() + timing.negotiate;
    while conn.is_handshaking() {
        if sh.stopped() {
            return;
        }
        if Instant::now() >= deadline {
            return fail("ssl handshake failed: negotiation timeout".into());
        }
        if let Err(e) = flush_tls(&mut conn, &mut s) {
            return fail(format!("ssl handshake failed: {e}"));
        }
        if !conn.is_handshaking() {
            break;
        }
        match conn.read_tls(&mut s) {
            Ok(0) => return fail("ssl handshake failed: connection closed by peer".into()),
            Ok(_) => {
                if let Err(e) = conn.process_new_packets() {
                    let _ = flush_tls(&mut conn, &mut s);
                    return fail(format!("ssl handshake failed: {e}"));
                }
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => return fail(format!("ssl handshake failed: {e}")),
        }
    }
    if let Err(e) = flush_tls(&mut conn, &mut s) {
        return fail(format!("ssl handshake failed: {e}"));
    }
    // Wait a little for a post-handshake alert (TLS 1.3 client-cert rejection).
    let until = Instant::now() + timing.alert_wait;
    let mut peer_closed = false;
    while Instant::now() < until {
        match conn.read_tls(&mut s) {
            Ok(0) => {
                peer_closed = true;
                break;
            }
            Ok(_) => match conn.process_new_packets() {
                Ok(st) => {
                    if st.peer_has_closed() {
                        peer_closed = true;
                        break;
                    }
                    if st.plaintext_bytes_to_read() > 0 {
                        // Application data: the server accepted us.
                        break;
                    }
                }
                Err(e) => return fail(format!("ssl handshake failed: {e}")),
            },
            Err(e) if is_timeout(&e) => {}
            Err(e) => return fail(format!("ssl handshake failed: {e}")),
        }
    }
    if peer_closed && !plain_pending(&mut conn) {
        return fail("ssl handshake failed: connection closed by peer".into());
    }
    {
        let mut st = sh.lock();
        if st.stop {
            return;
        }
        st.open = Some(Ok(port));
    }
    let mut open = drain_plain(&mut conn, &sh) && !peer_closed;
    // Data phase.
    while open {
        if sh.stopped() {
            conn.send_close_notify();
            let _ = flush_tls(&mut conn, &mut s);
            let _ = s.shutdown(Shutdown::Both);
            return;
        }
        loop {
            match out.try_recv() {
                Ok(d) => {
                    if conn.writer().write_all(&d).is_err() {
                        open = false;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if flush_tls(&mut conn, &mut s).is_err() {
            break;
        }
        if !open {
            break;
        }
        if !drain_plain(&mut conn, &sh) {
            break;
        }
        if sh.room() == 0 {
            // Back-pressure: stop reading from the network while the buffer is full.
            std::thread::sleep(POLL);
            continue;
        }
        match conn.read_tls(&mut s) {
            Ok(0) => break,
            Ok(_) => match conn.process_new_packets() {
                Ok(_) => {
                    if !drain_plain(&mut conn, &sh) {
                        break;
                    }
                }
                Err(_) => {
                    let _ = flush_tls(&mut conn, &mut s);
                    break;
                }
            },
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    // Keep what was decrypted, then report EOF.
    let _ = drain_plain(&mut conn, &sh);
    sh.set_eof();
}

/// TLS settings of one SSL context (`AT+QSSLCFG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SslCfg {
    pub(crate) sslversion: u8,
    pub(crate) ciphersuite: String,
    pub(crate) seclevel: u8,
    pub(crate) cacert: String,
    pub(crate) clientcert: String,
    pub(crate) clientkey: String,
    pub(crate) ignorelocaltime: u8,
    pub(crate) negotiatetime: u16,
    pub(crate) sni: u8,
}

impl SslCfg {
    pub(crate) fn new(sni: u8) -> SslCfg {
        SslCfg {
            sslversion: 4,
            ciphersuite: "0XFFFF".into(),
            seclevel: 0,
            cacert: String::new(),
            clientcert: String::new(),
            clientkey: String::new(),
            ignorelocaltime: 1,
            negotiatetime: 300,
            sni,
        }
    }
}

#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// WebPKI verification that ignores validity dates (`ignorelocaltime` 1).
#[derive(Debug)]
struct IgnoreTime(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for IgnoreTime {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::Expired
                | CertificateError::NotValidYet
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYetContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Build the rustls client configuration of an SSL context; `Err` carries
/// the `+QIGETERROR` text (the open then fails with 566).
pub(crate) fn client_config(
    cfg: &SslCfg,
    file: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Arc<ClientConfig>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match cfg.sslversion {
        3 => vec![&rustls::version::TLS12],
        4 => vec![&rustls::version::TLS12, &rustls::version::TLS13],
        v => {
            return Err(format!(
                "ssl handshake failed: sslversion {v} (SSL 3.0/TLS 1.0/TLS 1.1) is not supported by the simulator"
            ));
        }
    };
    let mut versions = versions;
    let cs = cfg.ciphersuite.to_ascii_uppercase();
    if cs != "0XFFFF" {
        let code = u16::from_str_radix(cs.trim_start_matches("0X"), 16)
            .map_err(|_| format!("ssl handshake failed: bad ciphersuite {cs}"))?;
        provider
            .cipher_suites
            .retain(|s| u16::from(s.suite()) == code);
        let Some(suite) = provider.cipher_suites.first() else {
            return Err(format!(
                "ssl handshake failed: ciphersuite {cs} not supported by the simulator"
            ));
        };
        let v = suite.version();
        versions.retain(|x| x.version == v.version);
        if versions.is_empty() {
            return Err(format!(
                "ssl handshake failed: ciphersuite {cs} not allowed by sslversion {}",
                cfg.sslversion
            ));
        }
    }
    let provider = Arc::new(provider);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl handshake failed: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = if cfg.seclevel == 0 {
        Arc::new(AcceptAny(provider.clone()))
    } else {
        let pem = file(&cfg.cacert)
            .ok_or_else(|| format!("ssl: cacert file {:?} not found", cfg.cacert))?;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&pem) {
            let c = c.map_err(|e| format!("ssl: bad cacert PEM: {e}"))?;
            roots
                .add(c)
                .map_err(|e| format!("ssl: bad CA certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("ssl: no certificate in cacert file".into());
        }
        let v = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| format!("ssl: {e}"))?;
        if cfg.ignorelocaltime == 1 {
            Arc::new(IgnoreTime(v))
        } else {
            v
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = if cfg.seclevel >= 2 {
        let cert = file(&cfg.clientcert)
            .ok_or_else(|| format!("ssl: clientcert file {:?} not found", cfg.clientcert))?;
        let key = file(&cfg.clientkey)
            .ok_or_else(|| format!("ssl: clientkey file {:?} not found", cfg.clientkey))?;
        let certs = CertificateDer::pem_slice_iter(&cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("ssl: bad clientcert PEM: {e}"))?;
        if certs.is_empty() {
            return Err("ssl: no certificate in clientcert file".into());
        }
        let key = PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| format!("ssl: bad clientkey PEM: {e}"))?;
        builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("ssl: client certificate/key rejected: {e}"))?
    } else {
        builder.with_no_client_auth()
    };
    config.enable_sni = cfg.sni == 1;
    Ok(Arc::new(config))
}
