//! The digester: turns the modem's byte stream into responses, URCs and prompts.
//!
//! It implements [`atat::digest::Digester`], so atat's `Ingress` feeds it and delivers the
//! responses it finds to atat's `ResponseSlot`; URCs go to its [`UrcSink`] (the runner applies
//! them to its state at once) or, without one, back to its caller. Unlike atat's default
//! digester it
//!
//! * is **incremental**: it remembers how far it has scanned, so a byte arriving alone costs the
//!   same as a byte arriving in a 1 KiB chunk;
//! * is **binary-safe**: after a `+QIRD: <n>` / `+QSSLRECV: <n>` header it takes exactly `n` raw
//!   bytes, whatever they contain (`\r\nOK\r\n`, NUL, `> `);
//! * delivers **URCs anywhere**, also between a command's information lines and its final result
//!   code (those are delivered right after the response, in the same ingress pass);
//! * **never panics** and **never accepts noise** as a result code (`ERrOR` is not `ERROR`): noise
//!   lines are skipped, counted in [`DigestStats`](super::expect::DigestStats), and parsing
//!   resumes at the next line;
//! * is **bounded**: a response that cannot fit the ingress buffer is delivered as an overflow
//!   error and the rest of it is discarded up to its final result code.
//!
//! What each response contains: the bytes from its first information line up to and including
//! its final result code (see [`Response`](super::response::Response)).

use atat::InternalError;
use atat::digest::DigestResult;

use super::expect::{Expect, ExpectCell, NoUrcSink, PayloadSink, UrcSink};
use super::line::{self, LineClass};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Reading lines.
    Line,
    /// Inside a binary payload: this many bytes still belong to it.
    Raw(usize),
    /// Skipping the rest of an over-long noise line.
    SkipLine,
    /// A response was delivered while URCs were deferred inside it: the first `end` bytes of the
    /// buffer are the rest of that response; deliver its URCs and drop the rest.
    Drain { end: usize },
    /// A response overflowed: drop its lines (delivering URCs) up to its final result code;
    /// `raw` bytes of payload are still to be skipped first.
    Discard { raw: usize },
}

/// Quectel digester. See the [module documentation](self).
///
/// `U` receives the URCs when it applies them ([`UrcSink::APPLIES`]); otherwise the digester
/// returns them to its caller.
pub struct Digester<'a, U: UrcSink = NoUrcSink> {
    shared: &'a ExpectCell,
    sink: Option<&'a dyn PayloadSink>,
    urcs: U,
    capacity: usize,
    mode: Mode,
    /// Bytes of the buffer already examined.
    scan: usize,
    /// Start of the line being read.
    line_start: usize,
    /// Start of the response being collected.
    resp_start: Option<usize>,
    /// What the response being collected (or drained) was for.
    resp_expect: Option<Expect>,
    /// Start of the first URC line that arrived inside the response being collected.
    deferred: Option<usize>,
    /// Payload of the response being collected or drained, as buffer offsets.
    payload: Option<(usize, usize)>,
    /// The command in flight as last read, and [`ExpectCell::changes`] when it was read.
    expect_cache: Option<(u32, Option<Expect>)>,
}

impl<'a> Digester<'a> {
    /// A digester for an ingress buffer of `capacity` bytes, reading the command in flight from
    /// `shared`.
    ///
    /// `capacity` must equal the ingress buffer's size: when the buffer is full and nothing in it
    /// can be delivered, the digester reports an overflow instead of stalling.
    pub fn new(shared: &'a ExpectCell, capacity: usize) -> Self {
        Self::with_urc_sink(shared, capacity, NoUrcSink)
    }
}

impl<'a, U: UrcSink> Digester<'a, U> {
    /// [`Digester::new`], handing every URC to `urcs`.
    pub fn with_urc_sink(shared: &'a ExpectCell, capacity: usize, urcs: U) -> Self {
        Self {
            shared,
            sink: None,
            urcs,
            capacity,
            mode: Mode::Line,
            scan: 0,
            line_start: 0,
            resp_start: None,
            resp_expect: None,
            deferred: None,
            payload: None,
            expect_cache: None,
        }
    }

    /// The command in flight; the critical section is taken only after it changed.
    fn current(&mut self) -> Option<Expect> {
        let changes = self.shared.changes();
        if let Some((seen, expect)) = self.expect_cache
            && seen == changes
        {
            return expect;
        }
        let expect = self.shared.current();
        self.expect_cache = Some((changes, expect));
        expect
    }

    /// Copies payloads of commands with a socket target ([`Expect::target`]) into `sink` when
    /// their response completes successfully.
    pub fn with_sink(mut self, sink: &'a dyn PayloadSink) -> Self {
        self.sink = Some(sink);
        self
    }

    fn reset_positions(&mut self) {
        self.scan = 0;
        self.line_start = 0;
        self.resp_start = None;
        self.deferred = None;
        self.payload = None;
    }

    /// Forgets everything and starts over (e.g. after the ingress buffer was cleared).
    pub fn reset(&mut self) {
        self.mode = Mode::Line;
        self.resp_expect = None;
        self.reset_positions();
    }

    /// Removes `n` consumed bytes from the front of the tracked positions.
    fn consumed(&mut self, n: usize) {
        self.scan = self.scan.saturating_sub(n);
        self.line_start = self.line_start.saturating_sub(n);
        self.resp_start = self.resp_start.map(|s| s.saturating_sub(n));
        self.deferred = self.deferred.map(|s| s.saturating_sub(n));
        self.payload = self
            .payload
            .map(|(s, e)| (s.saturating_sub(n), e.saturating_sub(n)));
    }

    /// Nothing to deliver: consume what is already dealt with, or resolve a full buffer.
    fn idle<'b>(&mut self, buf: &'b [u8]) -> (DigestResult<'b>, usize) {
        if self.resp_start.is_none() && self.mode == Mode::Line {
            let n = self.line_start;
            if n > 0 {
                self.consumed(n);
                return (DigestResult::None, n);
            }
        }
        if buf.len() < self.capacity {
            return (DigestResult::None, 0);
        }
        // The buffer is full and nothing in it can be delivered.
        let n = buf.len();
        self.shared
            .count(|s| s.discarded_bytes = s.discarded_bytes.saturating_add(n as u32));
        if self.resp_start.is_some() {
            warn!("response larger than the ingress buffer ({} bytes)", n);
            let raw = match self.mode {
                Mode::Raw(r) => r,
                _ => 0,
            };
            self.shared.count(|s| s.overflows += 1);
            // The partial line being read belongs to the response and is dropped with it.
            self.mode = Mode::Discard { raw };
            self.reset_positions();
            (DigestResult::Response(Err(InternalError::Capacity)), n)
        } else {
            warn!("line longer than the ingress buffer; skipping it");
            self.shared.count(|s| s.garbage_lines += 1);
            self.mode = Mode::SkipLine;
            self.reset_positions();
            (DigestResult::None, n)
        }
    }

    fn find_newline(buf: &[u8], from: usize, to: usize) -> Option<usize> {
        buf.get(from..to)
            .and_then(super::line::find_lf)
            .map(|i| from + i)
    }

    /// A URC line (trimmed, not empty) was read: apply it through the sink, or hand it out.
    /// `consumed` bytes end with it.
    fn urc<'b>(&mut self, text: &'b [u8], consumed: usize) -> (DigestResult<'b>, usize) {
        if U::APPLIES {
            if self.urcs.urc(text) {
                self.shared.count(|s| s.unknown_urcs += 1);
            }
            (DigestResult::None, consumed)
        } else {
            if super::urc::is_unknown(text) {
                self.shared.count(|s| s.unknown_urcs += 1);
            }
            (DigestResult::Urc(text), consumed)
        }
    }

    /// Trims a raw line; returns the text and its offsets in the buffer.
    fn text_of(buf: &[u8], start: usize, end: usize) -> (usize, usize) {
        let mut s = start;
        let mut e = end;
        while s < e && buf[s].is_ascii_whitespace() {
            s += 1;
        }
        while e > s && buf[e - 1].is_ascii_whitespace() {
            e -= 1;
        }
        (s, e)
    }

    fn digest_line_mode<'b>(&mut self, buf: &'b [u8]) -> Option<(DigestResult<'b>, usize)> {
        // Blank lines (the `\r\n` that frames every line) need no search.
        while self.scan == self.line_start && buf.get(self.scan..self.scan + 2) == Some(b"\r\n") {
            self.scan += 2;
            self.line_start = self.scan;
        }
        // The data prompt is a partial line: `>` (usually followed by a space) at a line start.
        // (The command in flight is read only when it matters: a critical section on firmware.)
        if self.scan == self.line_start
            && self.resp_start.is_none()
            && buf.get(self.line_start) == Some(&b'>')
            && self.current().is_some_and(|e| e.prompt)
        {
            let mut end = self.line_start + 1;
            if buf.get(end) == Some(&b' ') {
                end += 1;
            }
            self.reset_positions();
            self.shared.prompt();
            return Some((DigestResult::Prompt(b'>'), end));
        }
        let Some(nl) = Self::find_newline(buf, self.scan, buf.len()) else {
            self.scan = buf.len();
            return Some(self.idle(buf));
        };
        let next_line = nl + 1;
        let (ts, te) = Self::text_of(buf, self.line_start, nl);
        let text = &buf[ts..te];
        self.scan = next_line;
        if text.is_empty() {
            self.line_start = next_line;
            return None;
        }
        let expect = self.current();
        let in_response = self.resp_start.is_some();
        let class = line::classify(text, expect.as_ref(), in_response);
        match class {
            LineClass::Blank => {}
            LineClass::Echo => self.shared.count(|s| s.echo_lines += 1),
            LineClass::Garbage => {
                debug!("skipping a noise line ({} bytes)", text.len());
                self.shared.count(|s| s.garbage_lines += 1);
            }
            LineClass::Urc => {
                if in_response {
                    if self.deferred.is_none() {
                        self.deferred = Some(self.line_start);
                    }
                    self.shared.count(|s| s.deferred_urcs += 1);
                } else {
                    self.reset_positions();
                    return Some(self.urc(text, next_line));
                }
            }
            LineClass::Info => {
                if self.resp_start.is_none() {
                    self.resp_start = Some(ts);
                    self.resp_expect = expect;
                }
                if let Some(n) = expect.and_then(|e| line::payload_len(text, &e))
                    && n > 0
                {
                    self.payload = Some((next_line, next_line + n));
                    self.line_start = next_line;
                    self.mode = Mode::Raw(n);
                    return None;
                }
            }
            LineClass::Final(f) => {
                let start = self.resp_start.unwrap_or(ts);
                let body = &buf[start..te];
                if expect.is_none() {
                    self.shared.count(|s| s.unsolicited_finals += 1);
                }
                if f.is_success()
                    && let (Some(sink), Some(e), Some((ps, pe))) =
                        (self.sink, self.resp_expect, self.payload)
                    && e.target != Expect::NO_TARGET
                    && pe <= buf.len()
                {
                    sink.deliver(e.target, &buf[ps..pe]);
                }
                self.shared.complete_with(f);
                let result = if f.is_success() {
                    Ok(body)
                } else {
                    Err(InternalError::Custom(body))
                };
                if let Some(d) = self.deferred {
                    let payload = self.payload;
                    self.reset_positions();
                    self.payload = payload;
                    self.consumed(d);
                    self.mode = Mode::Drain { end: next_line - d };
                    return Some((DigestResult::Response(result), d));
                }
                self.resp_expect = None;
                self.reset_positions();
                return Some((DigestResult::Response(result), next_line));
            }
        }
        self.line_start = next_line;
        None
    }

    fn digest_drain<'b>(&mut self, buf: &'b [u8], end: usize) -> Option<(DigestResult<'b>, usize)> {
        let end = end.min(buf.len());
        loop {
            if let Some((ps, pe)) = self.payload
                && self.line_start >= ps
                && self.line_start < pe
            {
                self.line_start = pe.min(end);
                self.scan = self.line_start;
                continue;
            }
            if self.line_start >= end {
                self.mode = Mode::Line;
                self.resp_expect = None;
                self.reset_positions();
                return Some((DigestResult::None, end));
            }
            let Some(nl) = Self::find_newline(buf, self.line_start, end) else {
                // Cannot happen (the drained region ends with a newline); drop it all.
                self.mode = Mode::Line;
                self.resp_expect = None;
                self.reset_positions();
                return Some((DigestResult::None, end));
            };
            let (ts, te) = Self::text_of(buf, self.line_start, nl);
            let text = &buf[ts..te];
            self.line_start = nl + 1;
            self.scan = self.line_start;
            if line::classify(text, self.resp_expect.as_ref(), true) == LineClass::Urc {
                let n = nl + 1;
                self.consumed(n);
                self.mode = Mode::Drain { end: end - n };
                return Some(self.urc(text, n));
            }
        }
    }

    fn digest_discard<'b>(
        &mut self,
        buf: &'b [u8],
        raw: usize,
    ) -> Option<(DigestResult<'b>, usize)> {
        if raw > 0 {
            let n = raw.min(buf.len());
            self.mode = Mode::Discard { raw: raw - n };
            self.shared
                .count(|s| s.discarded_bytes = s.discarded_bytes.saturating_add(n as u32));
            return Some((DigestResult::None, n));
        }
        let Some(nl) = Self::find_newline(buf, 0, buf.len()) else {
            if buf.len() >= self.capacity {
                let n = buf.len();
                self.shared
                    .count(|s| s.discarded_bytes = s.discarded_bytes.saturating_add(n as u32));
                return Some((DigestResult::None, n));
            }
            return Some((DigestResult::None, 0));
        };
        let (ts, te) = Self::text_of(buf, 0, nl);
        let text = &buf[ts..te];
        let expect = match self.resp_expect {
            Some(e) => Some(e),
            None => self.current(),
        };
        match line::classify(text, expect.as_ref(), true) {
            LineClass::Urc => return Some(self.urc(text, nl + 1)),
            LineClass::Final(f) => {
                self.shared.complete_with(f);
                self.mode = Mode::Line;
                self.resp_expect = None;
            }
            _ => {
                if let Some(n) = expect.and_then(|e| line::payload_len(text, &e)) {
                    self.mode = Mode::Discard { raw: n };
                }
            }
        }
        self.shared
            .count(|s| s.discarded_bytes = s.discarded_bytes.saturating_add((nl + 1) as u32));
        Some((DigestResult::None, nl + 1))
    }
}

impl<U: UrcSink> atat::digest::Digester for Digester<'_, U> {
    fn digest<'b>(&mut self, buf: &'b [u8]) -> (DigestResult<'b>, usize) {
        if buf.len() < self.scan {
            // The ingress dropped bytes under us (its buffer was cleared): start over.
            warn!("ingress buffer was cleared; resynchronising");
            self.reset();
        }
        loop {
            let step = match self.mode {
                Mode::Line => self.digest_line_mode(buf),
                Mode::Raw(remaining) => {
                    let avail = buf.len() - self.scan;
                    let k = remaining.min(avail);
                    self.scan += k;
                    if k < remaining {
                        self.mode = Mode::Raw(remaining - k);
                        Some(self.idle(buf))
                    } else {
                        self.mode = Mode::Line;
                        self.line_start = self.scan;
                        None
                    }
                }
                Mode::SkipLine => match Self::find_newline(buf, 0, buf.len()) {
                    Some(nl) => {
                        self.mode = Mode::Line;
                        self.shared.count(|s| {
                            s.discarded_bytes = s.discarded_bytes.saturating_add((nl + 1) as u32)
                        });
                        Some((DigestResult::None, nl + 1))
                    }
                    None => {
                        let n = buf.len();
                        self.shared.count(|s| {
                            s.discarded_bytes = s.discarded_bytes.saturating_add(n as u32)
                        });
                        Some((DigestResult::None, n))
                    }
                },
                Mode::Drain { end } => self.digest_drain(buf, end),
                Mode::Discard { raw } => self.digest_discard(buf, raw),
            };
            if let Some(result) = step {
                return result;
            }
        }
    }
}
