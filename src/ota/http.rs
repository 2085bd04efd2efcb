//! A small HTTP/1.1 client for downloading a firmware image in byte ranges over any
//! `embedded_io_async` stream, in practice a modem TLS socket
//! ([`Remote::Tls`](crate::asynch::Remote::Tls)).
//!
//! Aliyun OTA hands the device an `https://` URL (an OSS object) and allows TLS 1.2 at most, so
//! the download runs through the modem's TLS (`AT+QSSLOPEN`), not through the MCU's TLS 1.3.
//! Each request asks for one chunk, `Range: bytes=<a>-<b>`, so that after a link loss or a reset
//! the download goes on from the first byte not yet written: nothing received before is
//! fetched again, and a chunk that did not arrive whole is discarded and asked for again.
//!
//! # Why not reqwless
//!
//! reqwless (the ecosystem's embedded HTTP client, used by `tests/dns.rs`) can send a `Range`
//! header, but its `Response` does not parse `Content-Range`, so a `206` for another range than
//! the one asked for (a proxy, a server bug) would go into flash at the wrong offset; it
//! accepts `chunked` bodies, which a range download never needs; and it reports a head too long
//! for its buffer only as a generic buffer error. A range download needs a fraction of HTTP: one
//! request line and two headers out (`Host`, `Range`; HTTP/1.1 keeps the connection open without
//! a `Connection` header), one status line and four headers in. This module is that fraction,
//! and every answer it does not expect is a typed [`HttpError`].
//!
//! It is also smaller. Measured like `scripts/footprint.sh` (`examples/footprint`'s row 2,
//! thumbv7em, opt-level "z", fat LTO), a firmware that adds 16 range requests of 4 KiB over a
//! modem TLS socket to row 2 grows by 9 908 B of flash with this module ([`HttpsSource`]: URL
//! parsing, the TLS socket open, request, head parsing and range checks) and by 14 644 B with
//! reqwless 0.14 (`Request::get(…).host(…).headers(&[("Range", …)])`, `write_header`,
//! `Response::read`, `body().reader().read_to_end`, without any `Content-Range` check); 68 820 B
//! for row 2 alone (2026-12-02).
//!
//! # What is refused
//!
//! - `http://` URLs and URLs with user info ([`HttpError::InvalidUrl`]): the image travels
//!   only over TLS.
//! - Redirects (`301`, `302`, `303`, `307`, `308`): [`HttpError::Redirect`]. Aliyun's URLs are
//!   signed OSS URLs that answer directly; following a `Location` would also move the TLS
//!   name check to a host the platform never named.
//! - A `200 OK` to a range request ([`HttpError::RangeIgnored`]): the server ignored `Range`.
//!   Restarting from 0 would throw away what was downloaded and, on a link that drops every few
//!   hundred KiB, never finish; OSS honours `Range`, so this is an error to report, not a mode.
//! - A `206` whose `Content-Range` is not the range asked for, or whose `Content-Length`
//!   disagrees with it ([`HttpError::RangeMismatch`]).
//! - `Transfer-Encoding` of any kind ([`HttpError::Chunked`]) and a body without
//!   `Content-Length` ([`HttpError::NoLength`]).
//! - A head longer than the caller's buffer ([`HttpError::HeadTooLong`]), a body that ends
//!   early ([`HttpError::ShortBody`]), and any other status ([`HttpError::Status`]).
//!
//! Every wait (writing the request, each read) is bounded by the caller's timeout
//! ([`HttpError::Timeout`]).

use core::fmt;

use embassy_time::{Duration, with_timeout};
use embedded_io_async::{Read, Write};

use crate::Error;

/// The default HTTPS port.
pub const HTTPS_PORT: u16 = 443;

/// Longest request line plus headers this client writes (path and host included).
pub const MAX_REQUEST: usize = 1024;

/// A download failed: the URL, the server's answer, or the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HttpError {
    /// Not an `https://host[:port]/path` URL this client can use.
    InvalidUrl,
    /// The request (path and host) does not fit [`MAX_REQUEST`].
    RequestTooLong,
    /// The response head (status line and headers) does not fit the caller's head buffer.
    HeadTooLong,
    /// The response head is not HTTP/1.x as expected (status line, header syntax, numbers).
    Malformed,
    /// A redirect (3xx): refused, see the module documentation.
    Redirect(u16),
    /// Any other status than `206 Partial Content`.
    Status(u16),
    /// `200 OK` to a range request: the server ignores `Range`.
    RangeIgnored,
    /// `Content-Range` or `Content-Length` of a `206` does not match the range asked for.
    RangeMismatch,
    /// `Transfer-Encoding` (chunked or other): refused.
    Chunked,
    /// No `Content-Length`.
    NoLength,
    /// The connection ended before the body was complete.
    ShortBody,
    /// The caller's body buffer is smaller than the range asked for.
    BufferTooSmall,
    /// No byte for the caller's timeout.
    Timeout,
    /// The link failed (socket error).
    Transport(Error),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl => f.write_str("not an https://host[:port]/path URL"),
            HttpError::RequestTooLong => f.write_str("HTTP request too long"),
            HttpError::HeadTooLong => f.write_str("HTTP response head too long"),
            HttpError::Malformed => f.write_str("malformed HTTP response head"),
            HttpError::Redirect(s) => write!(f, "HTTP redirect {s} refused"),
            HttpError::Status(s) => write!(f, "HTTP status {s}"),
            HttpError::RangeIgnored => f.write_str("server ignored the Range header (200 OK)"),
            HttpError::RangeMismatch => f.write_str("Content-Range is not the range asked for"),
            HttpError::Chunked => f.write_str("Transfer-Encoding refused"),
            HttpError::NoLength => f.write_str("no Content-Length"),
            HttpError::ShortBody => f.write_str("connection ended before the body was complete"),
            HttpError::BufferTooSmall => f.write_str("body buffer smaller than the range"),
            HttpError::Timeout => f.write_str("HTTP timeout"),
            HttpError::Transport(e) => write!(f, "link: {e}"),
        }
    }
}

impl core::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            HttpError::Transport(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for HttpError {
    fn from(e: Error) -> Self {
        match e {
            Error::Timeout => HttpError::Timeout,
            e => HttpError::Transport(e),
        }
    }
}

/// An `https://` URL split into what the connection and the request need. `Debug` leaves the
/// query out: the query of a signed OSS URL (`Signature=…`, `security-token=…`) is a credential.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Url<'u> {
    /// Host name (or address): the TLS server name (SNI and certificate check) and `Host`.
    pub host: &'u str,
    /// Port (443 unless the URL names one).
    pub port: u16,
    /// Path with query (`/` if the URL has none); the fragment is dropped.
    pub path: &'u str,
}

impl fmt::Debug for Url<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.split('?').next().unwrap_or("");
        f.debug_struct("Url")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &path)
            .field("query", &self.path.contains('?'))
            .finish()
    }
}

impl<'u> Url<'u> {
    /// Parses `https://host[:port][/path][?query][#fragment]`. The scheme is
    /// case-insensitive; `http`, user info (`user@`), an empty host, bracketed IPv6 literals,
    /// control characters and spaces are [`HttpError::InvalidUrl`].
    pub fn parse(url: &'u str) -> Result<Self, HttpError> {
        let scheme = url.get(..8).ok_or(HttpError::InvalidUrl)?;
        if !scheme.eq_ignore_ascii_case("https://") {
            return Err(HttpError::InvalidUrl);
        }
        let rest = url.get(8..).ok_or(HttpError::InvalidUrl)?;
        if rest.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(HttpError::InvalidUrl);
        }
        let rest = rest.split('#').next().unwrap_or("");
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at_checked(split).ok_or(HttpError::InvalidUrl)?;
        if authority.contains('@') || authority.starts_with('[') {
            return Err(HttpError::InvalidUrl);
        }
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HttpError::InvalidUrl);
                }
                let port: u16 = p.parse().map_err(|_| HttpError::InvalidUrl)?;
                if port == 0 {
                    return Err(HttpError::InvalidUrl);
                }
                (h, port)
            }
            None => (authority, HTTPS_PORT),
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return Err(HttpError::InvalidUrl);
        }
        // `?query` without a path: the request target still starts with `/`, which a `&str`
        // slice of the URL cannot add; such URLs are refused rather than rewritten.
        let path = match path {
            "" => "/",
            p if p.starts_with('/') => p,
            _ => return Err(HttpError::InvalidUrl),
        };
        Ok(Url { host, port, path })
    }
}

/// What the head of a response said (the parts a range download uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// `Content-Length`, if present.
    pub content_length: Option<u64>,
    /// `Content-Range: bytes <first>-<last>/<total>`: `(first, last, total)`, `total` `None`
    /// for `*`.
    pub content_range: Option<(u64, u64, Option<u64>)>,
    /// A `Transfer-Encoding` header was present.
    pub transfer_encoding: bool,
    /// `Connection: close` was present (HTTP/1.0 without `keep-alive` counts as close).
    pub close: bool,
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(a), Some(b)) => s.get(a..=b).unwrap_or(&[]),
        _ => &[],
    }
}

fn number(s: &[u8]) -> Result<u64, HttpError> {
    let s = trim(s);
    if s.is_empty() || s.len() > 19 {
        return Err(HttpError::Malformed);
    }
    s.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return Err(HttpError::Malformed);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b.wrapping_sub(b'0'))))
            .ok_or(HttpError::Malformed)
    })
}

/// `bytes <first>-<last>/<total|*>`.
fn content_range(v: &[u8]) -> Result<(u64, u64, Option<u64>), HttpError> {
    let v = trim(v);
    let unit = v.get(..6).ok_or(HttpError::Malformed)?;
    if !unit.eq_ignore_ascii_case(b"bytes ") {
        return Err(HttpError::Malformed);
    }
    let v = v.get(6..).ok_or(HttpError::Malformed)?;
    let mut parts = v.splitn(2, |&b| b == b'/');
    let range = parts.next().ok_or(HttpError::Malformed)?;
    let total = parts.next().ok_or(HttpError::Malformed)?;
    let mut ends = range.splitn(2, |&b| b == b'-');
    let first = number(ends.next().ok_or(HttpError::Malformed)?)?;
    let last = number(ends.next().ok_or(HttpError::Malformed)?)?;
    let total = if trim(total) == b"*" {
        None
    } else {
        Some(number(total)?)
    };
    if last < first || total.is_some_and(|t| last >= t) {
        return Err(HttpError::Malformed);
    }
    Ok((first, last, total))
}

/// Parses a response head: the bytes up to and without the empty line that ends it (lines end
/// in `\r\n`; a bare `\n` is accepted). Never panics; anything it cannot read is
/// [`HttpError::Malformed`].
pub fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().ok_or(HttpError::Malformed)?;
    let version = status_line.get(..7).ok_or(HttpError::Malformed)?;
    if version != b"HTTP/1." {
        return Err(HttpError::Malformed);
    }
    let minor = status_line.get(7).copied().ok_or(HttpError::Malformed)?;
    if !matches!(minor, b'0' | b'1') || status_line.get(8) != Some(&b' ') {
        return Err(HttpError::Malformed);
    }
    let code = status_line.get(9..12).ok_or(HttpError::Malformed)?;
    if !code.iter().all(u8::is_ascii_digit) || status_line.get(12).is_some_and(|&b| b != b' ') {
        return Err(HttpError::Malformed);
    }
    let status = u16::try_from(number(code)?).map_err(|_| HttpError::Malformed)?;
    let mut out = Head {
        status,
        content_length: None,
        content_range: None,
        transfer_encoding: false,
        close: minor == b'0',
    };
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpError::Malformed)?;
        let (name, value) = line.split_at_checked(colon).ok_or(HttpError::Malformed)?;
        let value = value.get(1..).ok_or(HttpError::Malformed)?;
        if name.is_empty() || name.iter().any(|b| matches!(b, b' ' | b'\t')) {
            return Err(HttpError::Malformed);
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = number(value)?;
            // Two different lengths: a smuggling classic, refused.
            if out.content_length.is_some_and(|m| m != n) {
                return Err(HttpError::Malformed);
            }
            out.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"content-range") {
            out.content_range = Some(content_range(value)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            out.transfer_encoding = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            let v = trim(value);
            if v.eq_ignore_ascii_case(b"close") {
                out.close = true;
            } else if v.eq_ignore_ascii_case(b"keep-alive") {
                out.close = false;
            }
        }
    }
    Ok(out)
}

/// Checks a parsed head against the range `first..=last` that was asked for; returns the
/// body length.
pub fn check_range(head: &Head, first: u64, last: u64) -> Result<u64, HttpError> {
    match head.status {
        206 => {}
        200 => return Err(HttpError::RangeIgnored),
        s @ (301 | 302 | 303 | 307 | 308) => return Err(HttpError::Redirect(s)),
        s => return Err(HttpError::Status(s)),
    }
    if head.transfer_encoding {
        return Err(HttpError::Chunked);
    }
    let len = head.content_length.ok_or(HttpError::NoLength)?;
    let (a, b, _) = head.content_range.ok_or(HttpError::RangeMismatch)?;
    // A server may shorten the last range to the end of the file (`last` past the end),
    // never move its start or lengthen it.
    if a != first || b > last || b.checked_sub(a).and_then(|d| d.checked_add(1)) != Some(len) {
        return Err(HttpError::RangeMismatch);
    }
    Ok(len)
}

/// One range of a file, fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Body bytes now at the start of the caller's body buffer.
    pub len: usize,
    /// The file's total size from `Content-Range`, if the server said it.
    pub total: Option<u64>,
    /// The server will close the connection (`Connection: close`): open a new one for the
    /// next range.
    pub close: bool,
}

struct Req<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl fmt::Write for Req<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes the `GET` request for `first..=last` into `buf`; returns its length.
pub fn write_request(
    buf: &mut [u8],
    url: &Url<'_>,
    first: u64,
    last: u64,
) -> Result<usize, HttpError> {
    use fmt::Write as _;
    let mut req = Req { buf, len: 0 };
    let r = if url.port == HTTPS_PORT {
        write!(
            req,
            "GET {} HTTP/1.1\r\nHost: {}\r\nRange: bytes={}-{}\r\n\r\n",
            url.path, url.host, first, last
        )
    } else {
        write!(
            req,
            "GET {} HTTP/1.1\r\nHost: {}:{}\r\nRange: bytes={}-{}\r\n\r\n",
            url.path, url.host, url.port, first, last
        )
    };
    r.map_err(|_| HttpError::RequestTooLong)?;
    Ok(req.len)
}

/// Where the empty line that ends a head is in `buf`: `(head_len, body_start)`.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0usize;
    while let Some(rel) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i.checked_add(rel)?;
        let next = nl.checked_add(1)?;
        match buf.get(next) {
            Some(b'\n') => return Some((nl, next.checked_add(1)?)),
            Some(b'\r') if buf.get(next.checked_add(1)?) == Some(&b'\n') => {
                return Some((nl, next.checked_add(2)?));
            }
            _ => {}
        }
        i = next;
    }
    None
}

async fn read_some<S>(s: &mut S, buf: &mut [u8], timeout: Duration) -> Result<usize, HttpError>
where
    S: Read,
    Error: From<S::Error>,
{
    match with_timeout(timeout, s.read(buf)).await {
        Err(_) => Err(HttpError::Timeout),
        Ok(Ok(n)) => Ok(n),
        // A peer that closed is the end of the stream, whatever the stream calls it.
        Ok(Err(e)) => match Error::from(e) {
            Error::ConnectionClosed => Ok(0),
            e => Err(e.into()),
        },
    }
}

/// Fetches `first..=last` of `url` over `stream` (an open connection to `url.host`):
/// writes the request, reads the head into `head_buf` (its size bounds the head; 512 bytes
/// hold what OSS sends), checks it ([`check_range`]) and reads the body into the start of
/// `body`. Every write and read waits at most `timeout`.
///
/// On any error the connection is in an unknown state: close it and open a new one. The bytes
/// in `body` are then not a valid range and must not be used.
pub async fn get_range<S>(
    stream: &mut S,
    url: &Url<'_>,
    first: u64,
    last: u64,
    head_buf: &mut [u8],
    body: &mut [u8],
    timeout: Duration,
) -> Result<Fetched, HttpError>
where
    S: Read + Write,
    Error: From<S::Error>,
{
    let want = last
        .checked_sub(first)
        .and_then(|d| d.checked_add(1))
        .ok_or(HttpError::RangeMismatch)?;
    if u64::try_from(body.len()).is_ok_and(|n| n < want) {
        return Err(HttpError::BufferTooSmall);
    }
    let mut req = [0u8; MAX_REQUEST];
    let n = write_request(&mut req, url, first, last)?;
    let out = req.get(..n).ok_or(HttpError::RequestTooLong)?;
    match with_timeout(timeout, async {
        stream.write_all(out).await?;
        stream.flush().await
    })
    .await
    {
        Err(_) => return Err(HttpError::Timeout),
        Ok(Err(e)) => return Err(Error::from(e).into()),
        Ok(Ok(())) => {}
    }
    // The head, and whatever of the body came with it.
    let mut filled = 0usize;
    let (head_len, body_start) = loop {
        if let Some(end) = head_buf.get(..filled).and_then(head_end) {
            break end;
        }
        let free = head_buf.get_mut(filled..).ok_or(HttpError::HeadTooLong)?;
        if free.is_empty() {
            return Err(HttpError::HeadTooLong);
        }
        let got = read_some(stream, free, timeout).await?;
        if got == 0 {
            return Err(if filled == 0 {
                HttpError::Transport(Error::ConnectionClosed)
            } else {
                HttpError::Malformed
            });
        }
        filled = filled.checked_add(got).ok_or(HttpError::HeadTooLong)?;
    };
    let head = parse_head(head_buf.get(..head_len).ok_or(HttpError::Malformed)?)?;
    let len = check_range(&head, first, last)?;
    let len = usize::try_from(len).map_err(|_| HttpError::BufferTooSmall)?;
    let body = body.get_mut(..len).ok_or(HttpError::BufferTooSmall)?;
    let early = head_buf.get(body_start..filled).unwrap_or(&[]);
    if early.len() > len {
        // More bytes than the body: the server sent something we did not ask for.
        return Err(HttpError::RangeMismatch);
    }
    let mut have = early.len();
    body.get_mut(..have)
        .ok_or(HttpError::BufferTooSmall)?
        .copy_from_slice(early);
    while have < len {
        let free = body.get_mut(have..).ok_or(HttpError::BufferTooSmall)?;
        let got = read_some(stream, free, timeout).await?;
        if got == 0 {
            return Err(HttpError::ShortBody);
        }
        have = have.checked_add(got).ok_or(HttpError::BufferTooSmall)?;
    }
    Ok(Fetched {
        len,
        total: head.content_range.and_then(|(_, _, t)| t),
        close: head.close,
    })
}

/// Range requests to one `https://` URL over modem TLS sockets
/// ([`Remote::Tls`](crate::asynch::Remote::Tls) on SSL context `ssl_ctx`, which the caller
/// configured with [`Modem::configure_tls`](crate::asynch::Modem::configure_tls), TLS 1.2 for
/// Aliyun). The connection is opened at the first [`fetch`](Self::fetch), kept for the next
/// ones (keep-alive), and closed after any error or a `Connection: close`; the next fetch opens
/// a new one. Retrying is the caller's choice: it knows which byte it needs next.
pub struct HttpsSource<'m, 'u> {
    modem: crate::asynch::Modem<'m>,
    socket: Option<crate::asynch::Socket<'m>>,
    cid: u8,
    ssl_ctx: u8,
    url: Url<'u>,
    timeout: Duration,
    connections: u32,
}

impl fmt::Debug for HttpsSource<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path of a signed URL carries its signature: only the host is shown.
        f.debug_struct("HttpsSource")
            .field("host", &self.url.host)
            .field("port", &self.url.port)
            .field("open", &self.socket.is_some())
            .field("connections", &self.connections)
            .finish()
    }
}

impl<'m, 'u> HttpsSource<'m, 'u> {
    /// Downloads from `url` over PDP context `cid` and SSL context `ssl_ctx`; every wait (the
    /// socket open excepted, which has the modem's own limit) is bounded by `timeout`.
    pub fn new(
        modem: crate::asynch::Modem<'m>,
        cid: u8,
        ssl_ctx: u8,
        url: Url<'u>,
        timeout: Duration,
    ) -> Self {
        HttpsSource {
            modem,
            socket: None,
            cid,
            ssl_ctx,
            url,
            timeout,
            connections: 0,
        }
    }

    /// TLS connections opened so far.
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// Fetches `first..=last` into the start of `body` (see [`get_range`]), opening a
    /// connection first if none is open.
    pub async fn fetch(
        &mut self,
        first: u64,
        last: u64,
        head_buf: &mut [u8],
        body: &mut [u8],
    ) -> Result<Fetched, HttpError> {
        let mut socket = match self.socket.take() {
            Some(s) => s,
            None => {
                let s = self
                    .modem
                    .connect(
                        self.cid,
                        crate::asynch::Remote::Tls {
                            ssl_ctx: self.ssl_ctx,
                            host: self.url.host,
                            port: self.url.port,
                        },
                    )
                    .await?;
                self.connections = self.connections.saturating_add(1);
                s
            }
        };
        let r = get_range(
            &mut socket,
            &self.url,
            first,
            last,
            head_buf,
            body,
            self.timeout,
        )
        .await;
        match r {
            Ok(f) if !f.close => self.socket = Some(socket),
            _ => {
                let _ = with_timeout(self.timeout, socket.close()).await;
            }
        }
        r
    }

    /// Closes the connection, if one is open.
    pub async fn close(&mut self) {
        if let Some(s) = self.socket.take() {
            let _ = with_timeout(self.timeout, s.close()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("https://ota.example.com/fw/app.bin?Expires=1&Signature=a%2Bb").unwrap();
        assert_eq!(u.host, "ota.example.com");
        assert_eq!(u.port, 443);
        assert_eq!(u.path, "/fw/app.bin?Expires=1&Signature=a%2Bb");
        let u = Url::parse("HTTPS://localhost:8443").unwrap();
        assert_eq!((u.host, u.port, u.path), ("localhost", 8443, "/"));
        let u = Url::parse("https://h/p#frag").unwrap();
        assert_eq!(u.path, "/p");
        let u = Url::parse("https://h/p?Signature=secret").unwrap();
        let shown = std::format!("{u:?}");
        assert!(
            !shown.contains("secret") && shown.contains("\"/p\""),
            "{shown}"
        );
        for bad in [
            "http://h/p",
            "https://",
            "https:///p",
            "https://u:p@h/p",
            "https://h:/p",
            "https://h:0/p",
            "https://h:65536/p",
            "https://h:8x/p",
            "https://[::1]/p",
            "https://h /p",
            "https://h?q",
            "ftp://h/p",
            "",
            "https:/",
        ] {
            assert_eq!(Url::parse(bad), Err(HttpError::InvalidUrl), "{bad}");
        }
    }

    #[test]
    fn requests() {
        let mut buf = [0u8; 256];
        let u = Url::parse("https://h.example/a.bin").unwrap();
        let n = write_request(&mut buf, &u, 4096, 8191).unwrap();
        assert_eq!(
            core::str::from_utf8(&buf[..n]).unwrap(),
            "GET /a.bin HTTP/1.1\r\nHost: h.example\r\nRange: bytes=4096-8191\r\n\r\n"
        );
        let u = Url::parse("https://127.0.0.1:8443/a").unwrap();
        let n = write_request(&mut buf, &u, 0, 0).unwrap();
        assert!(
            core::str::from_utf8(&buf[..n])
                .unwrap()
                .contains("Host: 127.0.0.1:8443\r\n")
        );
        let mut small = [0u8; 20];
        assert_eq!(
            write_request(&mut small, &u, 0, 1),
            Err(HttpError::RequestTooLong)
        );
    }

    #[test]
    fn heads() {
        let h = parse_head(b"HTTP/1.1 206 Partial Content\r\nContent-Length: 4\r\ncontent-range: bytes 4-7/100\r\nConnection: close\r\n").unwrap();
        assert_eq!(h.status, 206);
        assert_eq!(h.content_length, Some(4));
        assert_eq!(h.content_range, Some((4, 7, Some(100))));
        assert!(h.close);
        assert_eq!(check_range(&h, 4, 7), Ok(4));
        // The last range, cut to the end of the file.
        assert_eq!(check_range(&h, 4, 1000), Ok(4));
        assert_eq!(check_range(&h, 3, 7), Err(HttpError::RangeMismatch));
        let h =
            parse_head(b"HTTP/1.1 206 X\nContent-Length: 5\nContent-Range: bytes 4-7/*\n").unwrap();
        assert_eq!(check_range(&h, 4, 7), Err(HttpError::RangeMismatch));
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n").unwrap();
        assert_eq!(check_range(&h, 0, 4), Err(HttpError::RangeIgnored));
        let h = parse_head(b"HTTP/1.1 302 Found\r\nLocation: https://x/\r\n").unwrap();
        assert_eq!(check_range(&h, 0, 4), Err(HttpError::Redirect(302)));
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\n").unwrap();
        assert_eq!(check_range(&h, 0, 4), Err(HttpError::Status(404)));
        let h = parse_head(
            b"HTTP/1.1 206 P\r\nTransfer-Encoding: chunked\r\nContent-Range: bytes 0-4/5\r\n",
        )
        .unwrap();
        assert_eq!(check_range(&h, 0, 4), Err(HttpError::Chunked));
        let h = parse_head(b"HTTP/1.1 206 P\r\nContent-Range: bytes 0-4/5\r\n").unwrap();
        assert_eq!(check_range(&h, 0, 4), Err(HttpError::NoLength));
        for bad in [
            &b""[..],
            b"HTTP/2 200 OK",
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 206 P\r\nContent-Length: 99999999999999999999\r\n",
            b"HTTP/1.1 206 P\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
            b"HTTP/1.1 206 P\r\nContent-Range: bytes 7-4/100\r\n",
            b"HTTP/1.1 206 P\r\nContent-Range: bytes 0-100/100\r\n",
            b"HTTP/1.1 206 P\r\nno colon\r\n",
            b"HTTP/1.1 206 P\r\nBad Name: x\r\n",
        ] {
            assert_eq!(
                parse_head(bad),
                Err(HttpError::Malformed),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn head_ends() {
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nbody"), Some((16, 19)));
        assert_eq!(head_end(b"A\n\nb"), Some((1, 3)));
        assert_eq!(head_end(b"A\r\nB\r\n"), None);
        assert_eq!(head_end(b""), None);
    }
}
