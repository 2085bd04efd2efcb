//! Byte-stream abstraction the simulators run on, plus output pacing.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Result of [`Link::recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// This many bytes were stored at the start of the buffer.
    Data(usize),
    /// Nothing arrived within the timeout.
    Timeout,
    /// The host side is gone.
    Closed,
}

/// The modem's view of a serial line: receive with a timeout, send everything.
///
/// Implemented by the in-memory [`ModemEnd`](crate::ModemEnd) and by
/// [`StreamLink`] (any `std::io::Read + Write` pair, e.g. a TCP stream or a PTY).
pub trait Link: Send {
    /// Wait up to `timeout` for host bytes.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Recv;
    /// Send all of `data` to the host.
    fn send(&mut self, data: &[u8]) -> std::io::Result<()>;
}

/// A [`Link`] over a blocking `std::io::Read` and a `std::io::Write`.
///
/// A helper thread pumps the reader into a channel so that the simulator can
/// use timeouts on any reader.
pub struct StreamLink<W: Write + Send> {
    rx: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
    writer: W,
    closed: bool,
}

impl<W: Write + Send> std::fmt::Debug for StreamLink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLink").finish_non_exhaustive()
    }
}

impl<W: Write + Send> StreamLink<W> {
    /// Wrap a reader/writer pair. The reader is moved to a helper thread that
    /// ends when the reader reports EOF or an error.
    pub fn new<R: Read + Send + 'static>(mut reader: R, writer: W) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(64);
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break,
                }
            }
        });
        StreamLink {
            rx,
            pending: Vec::new(),
            writer,
            closed: false,
        }
    }
}

impl<W: Write + Send> Link for StreamLink<W> {
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Recv {
        if self.pending.is_empty() {
            if self.closed {
                return Recv::Closed;
            }
            match self.rx.recv_timeout(timeout) {
                Ok(v) => self.pending = v,
                Err(mpsc::RecvTimeoutError::Timeout) => return Recv::Timeout,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.closed = true;
                    return Recv::Closed;
                }
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Recv::Data(n)
    }

    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(data)?;
        self.writer.flush()
    }
}

/// How the modem paces its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pacing {
    /// Maximum bytes per write; 0 means "whole response in one write".
    pub chunk: usize,
    /// Pause between two chunks.
    pub delay: Duration,
}

/// Bits per byte on the simulated UART (start bit, 8 data bits, stop bit).
pub const UART_BITS_PER_BYTE: u32 = 10;

/// How far behind schedule a UART direction may fall and still keep its
/// schedule (compensates sleep overshoot); beyond that the line counts as idle.
const UART_SLACK: Duration = Duration::from_millis(10);

/// Transmission time of `n` bytes at `baud`.
pub(crate) fn uart_time(baud: u32, n: usize) -> Duration {
    Duration::from_secs_f64(f64::from(UART_BITS_PER_BYTE) * n as f64 / f64::from(baud.max(1)))
}

/// Bytes that fit in about 2 ms at `baud` (at least 1): the batch size of the pacers.
fn uart_batch(baud: u32) -> usize {
    ((u64::from(baud) / u64::from(UART_BITS_PER_BYTE) / 500) as usize).max(1)
}

/// One direction of a simulated UART: schedules bytes against the time the
/// line becomes free, so long transfers keep the exact rate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UartClock {
    pub(crate) baud: Option<u32>,
    free_at: Instant,
}

impl UartClock {
    pub(crate) fn new(baud: Option<u32>) -> UartClock {
        UartClock {
            baud: baud.filter(|&b| b > 0),
            free_at: Instant::now(),
        }
    }
    pub(crate) fn set_baud(&mut self, baud: Option<u32>) {
        self.baud = baud.filter(|&b| b > 0);
    }
    /// Reserve the line for `n` bytes handed over at `now`: returns (start, end)
    /// of their transmission.
    fn reserve(&mut self, baud: u32, n: usize, now: Instant) -> (Instant, Instant) {
        let start = if self.free_at + UART_SLACK < now {
            now
        } else {
            self.free_at
        };
        let end = start + uart_time(baud, n);
        self.free_at = end;
        (start, end)
    }
}

/// Writes to a link honouring a [`Pacing`] and the UART rate; remembers whether the link broke.
pub(crate) struct Output<'a> {
    pub(crate) link: &'a mut dyn Link,
    pub(crate) pacing: Pacing,
    pub(crate) clock: &'a mut UartClock,
    pub(crate) broken: bool,
}

impl Output<'_> {
    pub(crate) fn raw(&mut self, data: &[u8]) {
        if self.broken || data.is_empty() {
            return;
        }
        let chunk = if self.pacing.chunk == 0 {
            data.len()
        } else {
            self.pacing.chunk
        };
        for (i, part) in data.chunks(chunk).enumerate() {
            if i > 0 && !self.pacing.delay.is_zero() {
                std::thread::sleep(self.pacing.delay);
            }
            if !self.paced(part) {
                self.broken = true;
                return;
            }
        }
    }

    /// Send `part`, each ~2 ms batch no earlier than the moment its last byte
    /// would have left a real UART.
    fn paced(&mut self, part: &[u8]) -> bool {
        let Some(baud) = self.clock.baud else {
            return self.link.send(part).is_ok();
        };
        for batch in part.chunks(uart_batch(baud)) {
            let (_, end) = self.clock.reserve(baud, batch.len(), Instant::now());
            let now = Instant::now();
            if end > now {
                std::thread::sleep(end - now);
            }
            if self.link.send(batch).is_err() {
                return false;
            }
        }
        true
    }
}

struct Segment {
    data: Vec<u8>,
    pos: usize,
    /// When the bytes were taken from the link.
    seen: Instant,
    /// Start of the segment's transmission and the byte time (`None`: unpaced).
    start: Instant,
    baud: Option<u32>,
}

/// Host bytes taken from the link, released to the modem no faster than the
/// UART rate (each byte becomes available when its last bit would have arrived).
pub(crate) struct InputQueue {
    segs: VecDeque<Segment>,
    len: usize,
    pub(crate) clock: UartClock,
}

/// Maximum number of host bytes staged inside the modem; more stay in the link.
pub(crate) const INPUT_STAGING: usize = 8 * 1024;

impl InputQueue {
    pub(crate) fn new(baud: Option<u32>) -> InputQueue {
        InputQueue {
            segs: VecDeque::new(),
            len: 0,
            clock: UartClock::new(baud),
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    pub(crate) fn clear(&mut self) {
        self.segs.clear();
        self.len = 0;
    }
    pub(crate) fn push(&mut self, data: &[u8], now: Instant) {
        if data.is_empty() {
            return;
        }
        let baud = self.clock.baud;
        let start = match baud {
            Some(b) => self.clock.reserve(b, data.len(), now).0,
            None => now,
        };
        self.len += data.len();
        self.segs.push_back(Segment {
            data: data.to_vec(),
            pos: 0,
            seen: now,
            start,
            baud,
        });
    }
    /// When the next byte becomes available (`None`: nothing staged).
    pub(crate) fn next_release(&self) -> Option<Instant> {
        let s = self.segs.front()?;
        Some(match s.baud {
            Some(b) => s.start + uart_time(b, s.pos + 1),
            None => s.seen,
        })
    }
    /// Take the next byte if it has arrived by `now`; also returns when it was
    /// taken from the link.
    pub(crate) fn pop(&mut self, now: Instant) -> Option<(u8, Instant)> {
        if self.next_release()? > now {
            return None;
        }
        let s = self.segs.front_mut()?;
        let b = s.data[s.pos];
        let seen = s.seen;
        s.pos += 1;
        if s.pos >= s.data.len() {
            self.segs.pop_front();
        }
        self.len -= 1;
        Some((b, seen))
    }
}

/// Frame one information line / result code / URC: `\r\n<text>\r\n`.
pub fn frame(text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(text.len() + 4);
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(text.as_bytes());
    v.extend_from_slice(b"\r\n");
    v
}

/// Frame a response: information lines separated by single `\r\n`, then an
/// empty line and the final result code (`\r\nL1\r\nL2\r\n\r\nOK\r\n`).
pub fn frame_response(lines: &[String], result: &str) -> Vec<u8> {
    let mut v = Vec::new();
    if !lines.is_empty() {
        v.extend_from_slice(b"\r\n");
        for l in lines {
            v.extend_from_slice(l.as_bytes());
            v.extend_from_slice(b"\r\n");
        }
    }
    v.extend_from_slice(&frame(result));
    v
}

/// Maximum length of one command line the simulators accept.
pub const MAX_LINE: usize = 1024;

/// Splits host bytes into command lines terminated by `\r`.
///
/// A `\n` directly after the `\r` (or alone) is dropped. Over-long lines are
/// reported as `Line::TooLong` once their terminator arrives.
#[derive(Debug, Default)]
pub(crate) struct LineAssembler {
    cur: Vec<u8>,
    overflow: bool,
}

/// A completed host line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostLine {
    /// The bytes before `\r` (without terminator).
    Line(Vec<u8>),
    /// The line exceeded [`MAX_LINE`].
    TooLong,
}

impl LineAssembler {
    /// Feed one byte; returns a completed line when `\r` arrives.
    pub(crate) fn push(&mut self, b: u8) -> Option<HostLine> {
        match b {
            b'\r' => {
                let line = std::mem::take(&mut self.cur);
                if std::mem::take(&mut self.overflow) {
                    Some(HostLine::TooLong)
                } else {
                    Some(HostLine::Line(line))
                }
            }
            b'\n' if self.cur.is_empty() && !self.overflow => None,
            _ => {
                if self.cur.len() >= MAX_LINE {
                    self.overflow = true;
                } else {
                    self.cur.push(b);
                }
                None
            }
        }
    }
}
