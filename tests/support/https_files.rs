//! An HTTPS file server on 127.0.0.1 for the Aliyun OTA tests: the stand-in for the OSS object
//! an upgrade message's `url` names. TLS 1.2 only (Aliyun's limit; rustls with
//! [`TestPki`]'s server certificate for `localhost`/`127.0.0.1`), HTTP/1.1 with keep-alive,
//! `GET` of one file with `Range: bytes=a-b` (`206` with `Content-Range`), `404` for other
//! paths. It counts the body bytes it sent and records every range asked for.
//!
//! Faults, each armed by the test and used once:
//! - [`Faults::drop_after`]: after this many body bytes in total, the connection is cut
//!   mid-body (a link loss);
//! - [`Faults::corrupt_at`]: the byte at this file offset is served inverted;
//! - [`Faults::short_body`]: the next response sends this many body bytes fewer than its
//!   `Content-Length`, then closes;
//! - [`Faults::ignore_range`]: every response is `200 OK` with the whole file.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quectel_mock::TestPki;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Faults to inject (see the module documentation).
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Cut the connection once this many body bytes were sent in total (once).
    pub drop_after: Option<u64>,
    /// Serve the byte at this offset inverted (every time it is served).
    pub corrupt_at: Option<u64>,
    /// The next response's body is this many bytes short, then the connection closes (once).
    pub short_body: Option<u64>,
    /// Answer `200 OK` with the whole file to every request.
    pub ignore_range: bool,
    /// Headers of this many bytes more in every response (an `x-oss-request-id`-like header),
    /// to measure with a head as long as a real server's.
    pub head_padding: usize,
}

#[derive(Default)]
struct Shared {
    faults: Mutex<Faults>,
    file: Mutex<Vec<u8>>,
    body_bytes: AtomicU64,
    connections: AtomicU64,
    ranges: Mutex<Vec<(u64, u64)>>,
    stop: AtomicBool,
}

/// The running server; stops on drop.
pub struct FileServer {
    port: u16,
    path: String,
    shared: Arc<Shared>,
}

impl FileServer {
    /// Serves `file` at `path` (e.g. `/fw/app.bin`) with `pki`'s server certificate.
    pub fn start(pki: &TestPki, path: &str, file: Vec<u8>) -> FileServer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = vec![
            CertificateDer::from_pem_slice(pki.server_cert_pem.as_bytes()).expect("server cert"),
        ];
        let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).expect("key");
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS12])
                .expect("TLS 1.2")
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("server certificate"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new(Shared::default());
        *shared.file.lock().unwrap() = file;
        let (s, p) = (shared.clone(), path.to_string());
        std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        s.connections.fetch_add(1, Ordering::SeqCst);
                        let (s, p, c) = (s.clone(), p.clone(), config.clone());
                        std::thread::spawn(move || serve(conn, c, &s, &p));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FileServer {
            port,
            path: path.to_string(),
            shared,
        }
    }

    /// The `https://localhost:<port><path>` URL of the file.
    pub fn url(&self) -> String {
        format!("https://localhost:{}{}", self.port, self.path)
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Arms faults (replacing those armed before).
    pub fn set_faults(&self, f: Faults) {
        *self.shared.faults.lock().unwrap() = f;
    }

    /// Replaces the file served.
    pub fn set_file(&self, file: Vec<u8>) {
        *self.shared.file.lock().unwrap() = file;
    }

    /// Body bytes sent so far (all connections).
    pub fn body_bytes(&self) -> u64 {
        self.shared.body_bytes.load(Ordering::SeqCst)
    }

    /// TLS connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Every range asked for, in order (`(first, last)` as requested).
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        self.shared.ranges.lock().unwrap().clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

fn parse_range(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.trim().strip_prefix("bytes=")?.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn serve(tcp: TcpStream, config: Arc<rustls::ServerConfig>, s: &Shared, path: &str) {
    tcp.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let raw = tcp.try_clone().unwrap();
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let tls = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(tls);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            head.push(line);
        }
        let target = head
            .first()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("")
            // The query of a signed OSS URL (`?Expires=…&Signature=…`) is not checked here.
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        let range = head.iter().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("range").then(|| parse_range(v))?
        });
        let file = s.file.lock().unwrap().clone();
        let mut faults = s.faults.lock().unwrap();
        let out = reader.get_mut();
        if target != path {
            let _ = out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        let total = file.len() as u64;
        let (status, first, last) = match range {
            Some((a, b)) if !faults.ignore_range => {
                s.ranges.lock().unwrap().push((a, b));
                if a >= total || b < a {
                    let _ = write!(
                        out,
                        "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\n\r\n"
                    );
                    continue;
                }
                (206, a, b.min(total - 1))
            }
            _ => (200, 0, total.saturating_sub(1)),
        };
        let len = if total == 0 { 0 } else { last - first + 1 };
        let mut body: Vec<u8> = file[first as usize..(first + len) as usize].to_vec();
        if let Some(c) = faults.corrupt_at
            && (first..first + len).contains(&c)
        {
            body[(c - first) as usize] ^= 0xff;
        }
        let mut close = false;
        if let Some(k) = faults.short_body.take() {
            body.truncate(body.len().saturating_sub(k as usize));
            close = true;
        }
        let sent_before = s.body_bytes.load(Ordering::SeqCst);
        if let Some(n) = faults.drop_after
            && sent_before + body.len() as u64 > n
        {
            faults.drop_after = None;
            body.truncate((n - sent_before.min(n)) as usize);
            close = true;
        }
        let pad = if faults.head_padding > 0 {
            format!(
                "x-oss-pad: {}\r\n",
                "p".repeat(faults.head_padding.saturating_sub(13))
            )
        } else {
            String::new()
        };
        drop(faults);
        let head = if status == 206 {
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nContent-Range: bytes {first}-{last}/{total}\r\nETag: \"img\"\r\n{pad}\r\n"
            )
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n"
            )
        };
        // Head and body in one write (one TLS record stream, as a web server sends them), not
        // a record for the head alone.
        let mut response = head.into_bytes();
        response.extend_from_slice(&body);
        if out.write_all(&response).is_err() {
            return;
        }
        let _ = out.flush();
        s.body_bytes.fetch_add(body.len() as u64, Ordering::SeqCst);
        if close {
            // A cut link: no close_notify, the TCP connection just ends.
            std::thread::sleep(Duration::from_millis(20));
            let _ = raw.shutdown(Shutdown::Both);
            return;
        }
    }
}
