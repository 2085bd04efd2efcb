//! In-memory duplex transport between the driver (host) and the simulated modem.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Maximum number of bytes buffered in one direction before writes are refused.
pub const PIPE_CAPACITY: usize = 1 << 20;
/// Maximum number of bytes kept in each transcript.
pub const TRANSCRIPT_CAPACITY: usize = 1 << 20;

#[derive(Default)]
struct PipeState {
    buf: VecDeque<u8>,
    writer_closed: bool,
    reader_closed: bool,
    waker: Option<Waker>,
    total: u64,
    transcript: Vec<u8>,
}

/// One direction of the duplex: a bounded byte queue with a transcript.
#[derive(Default)]
pub(crate) struct Pipe {
    state: Mutex<PipeState>,
    cond: Condvar,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        // A panic while holding the lock cannot leave the queue inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append bytes; fails if the reader is gone or the queue is full.
    pub(crate) fn push(&self, data: &[u8]) -> Result<usize, PipeError> {
        let mut st = self.lock();
        if st.reader_closed || st.writer_closed {
            return Err(PipeError::BrokenPipe);
        }
        let room = PIPE_CAPACITY.saturating_sub(st.buf.len());
        if room == 0 && !data.is_empty() {
            return Err(PipeError::Full);
        }
        let n = data.len().min(room);
        st.buf.extend(&data[..n]);
        st.total += n as u64;
        let keep = TRANSCRIPT_CAPACITY
            .saturating_sub(st.transcript.len())
            .min(n);
        st.transcript.extend_from_slice(&data[..keep]);
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        drop(st);
        self.cond.notify_all();
        Ok(n)
    }

    fn take_into(st: &mut PipeState, buf: &mut [u8]) -> usize {
        let n = buf.len().min(st.buf.len());
        for (dst, src) in buf.iter_mut().zip(st.buf.drain(..n)) {
            *dst = src;
        }
        n
    }

    /// Non-blocking poll used by the async reader.
    fn poll_read(&self, buf: &mut [u8], waker: &Waker) -> Poll<usize> {
        let mut st = self.lock();
        if buf.is_empty() {
            return Poll::Ready(0);
        }
        if !st.buf.is_empty() {
            return Poll::Ready(Self::take_into(&mut st, buf));
        }
        if st.writer_closed {
            return Poll::Ready(0);
        }
        match &st.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => st.waker = Some(waker.clone()),
        }
        Poll::Pending
    }

    /// Blocking read; waits forever (or until the writer closes) for at least one byte.
    fn read_blocking(&self, buf: &mut [u8]) -> usize {
        if buf.is_empty() {
            return 0;
        }
        let mut st = self.lock();
        loop {
            if !st.buf.is_empty() {
                return Self::take_into(&mut st, buf);
            }
            if st.writer_closed {
                return 0;
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Read with a timeout: `Ok(Some(n))` data, `Ok(None)` timeout, `Err` closed.
    pub(crate) fn read_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<Option<usize>, PipeError> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if !st.buf.is_empty() {
                return Ok(Some(Self::take_into(&mut st, buf)));
            }
            if st.writer_closed {
                return Err(PipeError::BrokenPipe);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            st = self
                .cond
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn available(&self) -> usize {
        self.lock().buf.len()
    }

    fn is_writer_closed(&self) -> bool {
        self.lock().writer_closed
    }

    pub(crate) fn close_writer(&self) {
        let mut st = self.lock();
        st.writer_closed = true;
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        drop(st);
        self.cond.notify_all();
    }

    fn close_reader(&self) {
        let mut st = self.lock();
        st.reader_closed = true;
        st.buf.clear();
        drop(st);
        self.cond.notify_all();
    }

    pub(crate) fn total(&self) -> u64 {
        self.lock().total
    }

    pub(crate) fn transcript(&self) -> Vec<u8> {
        self.lock().transcript.clone()
    }

    pub(crate) fn clear_transcript(&self) {
        self.lock().transcript.clear();
    }
}

/// Error returned by the in-memory transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeError {
    /// The other side has been dropped (modem thread ended or host endpoint dropped).
    BrokenPipe,
    /// The direction already holds [`PIPE_CAPACITY`] unread bytes.
    Full,
}

impl fmt::Display for PipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipeError::BrokenPipe => f.write_str("the other end of the mock link is gone"),
            PipeError::Full => f.write_str("mock link buffer full"),
        }
    }
}

impl std::error::Error for PipeError {}

impl embedded_io::Error for PipeError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            PipeError::BrokenPipe => embedded_io::ErrorKind::BrokenPipe,
            PipeError::Full => embedded_io::ErrorKind::OutOfMemory,
        }
    }
}

/// Both directions of a link plus accessors shared by every endpoint.
#[derive(Clone, Default)]
pub struct Wire {
    pub(crate) to_modem: Arc<Pipe>,
    pub(crate) to_host: Arc<Pipe>,
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wire")
            .field("host_bytes", &self.host_bytes())
            .field("modem_bytes", &self.modem_bytes())
            .finish()
    }
}

impl Wire {
    /// Total number of bytes the host has written so far.
    pub fn host_bytes(&self) -> u64 {
        self.to_modem.total()
    }
    /// Total number of bytes the modem has written so far.
    pub fn modem_bytes(&self) -> u64 {
        self.to_host.total()
    }
    /// Everything the host has sent (first [`TRANSCRIPT_CAPACITY`] bytes since the last clear).
    pub fn host_transcript(&self) -> Vec<u8> {
        self.to_modem.transcript()
    }
    /// Everything the modem has sent (first [`TRANSCRIPT_CAPACITY`] bytes since the last clear).
    pub fn modem_transcript(&self) -> Vec<u8> {
        self.to_host.transcript()
    }
    /// Forget both transcripts (counters keep counting).
    pub fn clear_transcripts(&self) {
        self.to_modem.clear_transcript();
        self.to_host.clear_transcript();
    }
}

/// Create a connected set of endpoints: the host's receive side, the host's
/// transmit side, and the modem's end.
///
/// The mock modem threads use [`ModemEnd`]; tests normally obtain the host
/// endpoints from `MockModem::spawn` or `Script::spawn` instead of calling this.
pub fn duplex() -> (HostRx, HostTx, ModemEnd) {
    let wire = Wire::default();
    (
        HostRx { wire: wire.clone() },
        HostTx { wire: wire.clone() },
        ModemEnd { wire },
    )
}

/// Host receive endpoint: the bytes the modem sends (driver's UART RX).
///
/// Implements `embedded_io::{Read, ReadReady}` (blocking) and
/// `embedded_io_async::Read` (waker based). Reads return `Ok(0)` once the
/// modem side is gone and everything buffered has been read.
pub struct HostRx {
    wire: Wire,
}

/// Host transmit endpoint: the bytes the driver sends (driver's UART TX).
///
/// Writes never block; they fail with [`PipeError::BrokenPipe`] when the modem
/// side is gone. `flush` is a no-op.
pub struct HostTx {
    wire: Wire,
}

impl fmt::Debug for HostRx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostRx")
            .field("available", &self.available())
            .finish()
    }
}

impl fmt::Debug for HostTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostTx").finish_non_exhaustive()
    }
}

impl HostRx {
    /// Number of bytes buffered and ready to be read.
    pub fn available(&self) -> usize {
        self.wire.to_host.available()
    }
    /// Counters and transcripts of this link.
    pub fn wire(&self) -> &Wire {
        &self.wire
    }
    /// Read whatever arrives within `timeout` (blocking helper for tests):
    /// returns once `quiet` has passed without new bytes, or `timeout` expires.
    pub fn read_for(&mut self, quiet: Duration, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return out;
            }
            match self
                .wire
                .to_host
                .read_timeout(&mut buf, quiet.min(deadline - now))
            {
                Ok(Some(n)) => out.extend_from_slice(&buf[..n]),
                Ok(None) | Err(_) => return out,
            }
        }
    }
    /// Read until the received bytes end with `suffix` or `timeout` expires;
    /// returns everything read.
    pub fn read_until(&mut self, suffix: &[u8], timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while !out.ends_with(suffix) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match self.wire.to_host.read_timeout(&mut b, deadline - now) {
                Ok(Some(1)) => out.push(b[0]),
                Ok(_) | Err(_) => break,
            }
        }
        out
    }
}

impl HostTx {
    /// Counters and transcripts of this link.
    pub fn wire(&self) -> &Wire {
        &self.wire
    }
    /// Convenience: write `s` completely (panics only if the modem side is gone).
    pub fn send(&mut self, s: impl AsRef<[u8]>) {
        self.wire
            .to_modem
            .push(s.as_ref())
            .expect("mock modem side is gone");
    }
}

impl Drop for HostRx {
    fn drop(&mut self) {
        self.wire.to_host.close_reader();
    }
}

impl Drop for HostTx {
    fn drop(&mut self) {
        self.wire.to_modem.close_writer();
    }
}

impl embedded_io::ErrorType for HostRx {
    type Error = PipeError;
}
impl embedded_io::ErrorType for HostTx {
    type Error = PipeError;
}

impl embedded_io::Read for HostRx {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, PipeError> {
        Ok(self.wire.to_host.read_blocking(buf))
    }
}

impl embedded_io::ReadReady for HostRx {
    fn read_ready(&mut self) -> Result<bool, PipeError> {
        // Also "ready" at EOF so that a following read returns Ok(0) immediately.
        Ok(self.available() > 0 || self.wire.to_host.is_writer_closed())
    }
}

impl embedded_io_async::Read for HostRx {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, PipeError> {
        let pipe = self.wire.to_host.clone();
        Ok(core::future::poll_fn(|cx| pipe.poll_read(buf, cx.waker())).await)
    }
}

impl embedded_io::Write for HostTx {
    fn write(&mut self, buf: &[u8]) -> Result<usize, PipeError> {
        self.wire.to_modem.push(buf)
    }
    fn flush(&mut self) -> Result<(), PipeError> {
        Ok(())
    }
}

impl embedded_io_async::Write for HostTx {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, PipeError> {
        self.wire.to_modem.push(buf)
    }
    async fn flush(&mut self) -> Result<(), PipeError> {
        Ok(())
    }
}

/// The modem's end of an in-memory duplex (used by the simulator threads).
pub struct ModemEnd {
    wire: Wire,
}

impl fmt::Debug for ModemEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModemEnd").finish_non_exhaustive()
    }
}

impl ModemEnd {
    /// Counters and transcripts of this link.
    pub fn wire(&self) -> &Wire {
        &self.wire
    }
}

impl Drop for ModemEnd {
    fn drop(&mut self) {
        self.wire.to_host.close_writer();
        self.wire.to_modem.close_reader();
    }
}

impl crate::link::Link for ModemEnd {
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> crate::link::Recv {
        match self.wire.to_modem.read_timeout(buf, timeout) {
            Ok(Some(n)) => crate::link::Recv::Data(n),
            Ok(None) => crate::link::Recv::Timeout,
            Err(_) => crate::link::Recv::Closed,
        }
    }
    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut rest = data;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !rest.is_empty() {
            match self.wire.to_host.push(rest) {
                Ok(n) => rest = &rest[n..],
                Err(PipeError::Full) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(PipeError::Full) => {
                    return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
                }
                Err(PipeError::BrokenPipe) => {
                    return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
                }
            }
        }
        Ok(())
    }
}
