//! The digester: turns the modem's byte stream into information lines, payloads, final result
//! codes, prompts and URCs, **as they stream in**.
//!
//! Nothing buffers a whole response. The digester owns one line buffer (the ingress buffer of
//! the driver's `Resources`); each line is dealt with the moment its `\n`
//! arrives:
//!
//! * an **information line** of the command in flight goes to the command's listener
//!   ([`ExpectCell::notify`], [`Event::Line`]), which parses it into the command's result;
//! * a **URC** goes to the [`UrcSink`] at once, also between two lines of a long response, so
//!   URCs are delivered in the order they arrived and none waits for a final result code;
//! * after a `+QIRD: <n>` / `+QSSLRECV: <n>` header, exactly `n` raw bytes (whatever they
//!   contain: `\r\nOK\r\n`, NUL, `> `) go straight from the received bytes to the socket's
//!   receive ring ([`PayloadSink`]), in pieces, without passing through the line buffer;
//! * after a direct-push `recv` URC (`+QIURC: "recv",<id>,<n>`, `+QSSLURC: "recv",<id>,<n>`),
//!   the same for the `n` bytes that follow it, to the socket in push mode (bytes for a socket
//!   that is not are dropped and counted);
//! * the **final result code** ends the command ([`Event::End`], then
//!   [`ExpectCell::end_with`]).
//!
//! So any response length works with a buffer that holds one line, and how the UART chunked
//! the bytes changes nothing. A line longer than the buffer is dropped and counted
//! ([`DigestStats::long_lines`](super::DigestStats)); if it was an information line of the
//! command in flight, the command ends with [`Error::Overflow`](crate::Error::Overflow) when
//! its final result code arrives. The digester **never panics** and **never accepts noise** as
//! a result code (`ERrOR` is not `ERROR`): noise lines are counted and skipped.
//!
//! It is **incremental**: bytes already scanned for a `\n` are not scanned again, so a byte
//! arriving alone costs about what a byte in a 1 KiB chunk costs.

use super::expect::{Event, Expect, ExpectCell, PayloadSink, Stat, UrcSink};
use super::line::{self, LineClass};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Reading lines.
    Line,
    /// Inside a binary payload: this many bytes still belong to it, and where they go.
    Raw { left: usize, target: u8 },
    /// Skipping the rest of a line that did not fit the buffer.
    Skip,
    /// Right after a payload for `target`: its `\r\n` must follow (`seen` bytes of it so far).
    Trailer { target: u8, seen: u8 },
}

/// How many bytes of blank lines (`\r\n`) `rest` starts with: the usual one taken at once (a
/// line follows it), any other count in one tight loop over the bytes left
/// ([`blank_len_loop`]).
#[inline(always)]
pub(super) fn blank_len(rest: &[u8]) -> usize {
    match rest {
        [b'\r', b'\n', f, ..] if *f != b'\r' => 2,
        _ => blank_len_loop(rest),
    }
}

/// [`blank_len`] without its shortcut (its reference in the tests).
#[inline(always)]
pub(super) fn blank_len_loop(rest: &[u8]) -> usize {
    rest.as_chunks::<2>()
        .0
        .iter()
        .take_while(|c| *c == b"\r\n")
        .count()
        .wrapping_mul(2)
}

/// The target of payload bytes nobody takes (a push for a socket not in push mode).
const DISCARD: u8 = 0xfe;

/// Payload bytes that a byte-by-byte feed collects before it hands them on (the ring copies
/// them in pieces of at most 64 bytes per critical section).
const CS_PIECE: usize = 128;

/// Quectel digester. See the [module documentation](self).
pub(crate) struct Digester<'a, U: UrcSink> {
    shared: &'a ExpectCell,
    payloads: Option<&'a dyn PayloadSink>,
    urcs: U,
    /// The line buffer.
    buf: &'a mut [u8],
    /// The end of the bytes in `buf` (`buf[start..len]` is not yet dealt with: the start of
    /// the next line).
    len: usize,
    /// Bytes of `buf` already searched for a `\n`.
    scan: usize,
    /// Where the unfinished line starts in `buf` (kept in place after a piece, and moved to
    /// the front only when the room after it is needed; 0 when `len` is).
    start: usize,
    mode: Mode,
    /// Information lines of the command in flight were seen (an echo can only come before).
    in_response: bool,
    /// A line of the command in flight was dropped (longer than the buffer).
    lost_line: bool,
    /// The command in flight as last read, and [`ExpectCell::changes`] when it was read.
    expect: Option<Expect>,
    /// [`ExpectCell::changes`] when `expect` was read (at first, one less than its count when
    /// the digester was made: not read yet. An `Option` would take 4 more bytes of RAM; a
    /// count that came round to it is as unlikely as one that came round to a count read,
    /// which the cache assumes anyway.)
    expect_seen: u32,
    /// Which command (the count of [`ExpectCell::begin`] calls) `in_response` and `lost_line`
    /// are about.
    generation: u32,
}

impl<'a, U: UrcSink> Digester<'a, U> {
    /// A digester over the line buffer `buf`, reading the command in flight from `shared` and
    /// handing every URC to `urcs`.
    pub(crate) fn new(shared: &'a ExpectCell, buf: &'a mut [u8], urcs: U) -> Self {
        Self {
            shared,
            payloads: None,
            urcs,
            buf,
            len: 0,
            scan: 0,
            start: 0,
            mode: Mode::Line,
            in_response: false,
            lost_line: false,
            expect: None,
            expect_seen: shared.changes().wrapping_sub(1),
            generation: 0,
        }
    }

    /// Copies payloads of commands with a socket target ([`Expect::target`]) into `sink`.
    pub(crate) fn with_payloads(mut self, sink: &'a dyn PayloadSink) -> Self {
        self.payloads = Some(sink);
        self
    }

    /// Brings `expect`, the command in flight, up to date: the critical section is taken only
    /// after it changed. (Read where it is kept, not copied.)
    #[inline]
    fn refresh(&mut self) {
        let changes = self.shared.changes();
        if self.expect_seen != changes {
            self.reread(changes);
        }
    }

    /// [`Digester::refresh`] after the command bookkeeping changed (`changes`: its count now).
    /// (`#[inline]`: in the host build in line in `refresh`, once per command; out of line, it
    /// cost a call and the saving of four registers.)
    #[inline]
    fn reread(&mut self, changes: u32) {
        let generation = self.shared.current_into(&mut self.expect);
        if generation != self.generation {
            // Another command: it starts afresh.
            self.generation = generation;
            self.in_response = false;
            self.lost_line = false;
        }
        self.expect_seen = changes;
    }

    /// Where the next received bytes may be written (then call [`Digester::advance`]). Never
    /// empty: a full buffer is resolved by `advance`.
    pub(crate) fn write_buf(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.compact();
        }
        self.buf.get_mut(self.len..).unwrap_or(&mut [])
    }

    /// Moves the unfinished line to the front of the buffer (for the room after it).
    #[cold]
    fn compact(&mut self) {
        let start = self.start;
        if start < self.len {
            self.buf.copy_within(start..self.len, 0);
        }
        self.len = self.len.saturating_sub(start);
        self.scan = self.scan.saturating_sub(start);
        self.start = 0;
    }

    /// Deals with `n` bytes written into [`Digester::write_buf`].
    pub(crate) fn advance(&mut self, n: usize) {
        let end = self.len.saturating_add(n).min(self.buf.len());
        let pos = self.process(end);
        if pos == end && end > 0 {
            // All dealt with (the usual case: a read or piece that ends with a line's `\n`):
            // nothing to keep, and a buffer that held something is not full now.
            self.len = 0;
            self.scan = 0;
            self.start = 0;
        } else {
            self.settle(pos, end);
        }
    }

    /// Processes `buf[..end]` (not empty) and keeps what is left of it.
    #[inline(always)]
    fn process_all(&mut self, end: usize) {
        let pos = self.process(end);
        if pos == end {
            // All dealt with (the usual case: a piece that ends with a line's `\n`).
            self.len = 0;
            self.scan = 0;
            self.start = 0;
        } else {
            self.settle(pos, end);
        }
    }

    /// After [`Digester::process`] dealt with `buf[..pos]` of `buf[..end]`.
    fn settle(&mut self, pos: usize, end: usize) {
        // The unfinished line stays where it is (moved to the front only when the buffer is
        // full, or by `write_buf`).
        if pos < end {
            self.start = pos;
            self.len = end;
        } else {
            self.start = 0;
            self.len = 0;
            self.scan = 0;
        }
        if self.len == self.buf.len() {
            if self.start > 0 {
                self.compact();
            } else {
                self.overlong();
            }
        }
    }

    /// Feeds `bytes` (copied into the line buffer piece by piece; payload bytes only pass
    /// through it).
    /// Returns whether the bytes were processed (`false`: only appended, nothing completed).
    #[inline]
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> bool {
        !self.feed_one(bytes) && self.feed_rest(bytes)
    }

    /// The path of a byte arriving alone in a line (returns whether it took `bytes`): appended,
    /// or, for the `\n` of a blank line (the `\r\n` that frames every line), the line buffer
    /// emptied. Inlined where bytes are fed, with [`Digester::feed_rest`] out of line for
    /// everything else, so that this path saves no registers.
    #[inline]
    pub(crate) fn feed_one(&mut self, bytes: &[u8]) -> bool {
        // Inside a payload: appended while it stays short of the payload's end and of a piece
        // for the ring (as in `feed_rest`).
        if let ([b], Mode::Raw { left, .. }) = (bytes, self.mode) {
            let end = self.len.wrapping_add(1);
            if end < left.min(CS_PIECE)
                && end < self.buf.len()
                && let Some(d) = self.buf.get_mut(self.len)
            {
                *d = *b;
                self.len = end;
                return true;
            }
            return false;
        }
        if let ([b], Mode::Line) = (bytes, self.mode) {
            let len = self.len;
            if *b != b'\n' && *b != b'>' {
                // (`len < buf.len() - 1`: the store needs no other bounds check.)
                if len < self.buf.len().saturating_sub(1)
                    && let Some(d) = self.buf.get_mut(len)
                {
                    *d = *b;
                    self.len = len.wrapping_add(1);
                    return true;
                }
            } else if *b == b'\n' && len == 1 && self.scan == 0 && self.buf.first() == Some(&b'\r')
            {
                self.len = 0;
                return true;
            }
        }
        false
    }

    /// [`Digester::feed`] for what [`Digester::feed_one`] did not take.
    #[inline(never)]
    pub(crate) fn feed_rest(&mut self, bytes: &[u8]) -> bool {
        // A byte arriving alone that `feed_one` did not take completes something (a line's
        // `\n`, a `>`, a payload's end or a piece of it), or fills the buffer: stored and dealt
        // with at once (what `feed_slow` does with it, without its loop and copy call).
        if let [b] = bytes
            && let Some(d) = self.buf.get_mut(self.len)
        {
            *d = *b;
            // (`len < buf.len()`: no wrap.)
            let end = self.len.wrapping_add(1);
            // The `\n` of a line none of which was searched yet (the bytes before it arrived
            // alone): no blank line to skip (they hold no `\n`) and no prompt (not a `>`
            // first), so the line is dealt with without the line loop.
            if *b == b'\n'
                && self.mode == Mode::Line
                && self.scan == 0
                && self.buf.first() != Some(&b'>')
                && let Some((nl, clean)) = line::find_lf_printable(self.buf, 0, end)
                && nl == self.len
            {
                self.line_alone(0, nl, clean);
                // (`line` may start a payload: none of it is here yet.)
                self.len = 0;
                self.scan = 0;
                return true;
            }
            self.process_all(end);
            return true;
        }
        // A short piece that completes nothing is only appended (a byte arriving alone from an
        // interrupt, say): a copy and a comparison per byte. In a line, that is a piece without
        // `\n` or `>`; in a payload, one that leaves it short of its end and of a 64-byte piece
        // (payload bytes go to the ring in pieces, each copy in its own critical section).
        let n = bytes.len();
        // `len <= buf.len()` and `n` is a slice length: the sum fits (an add without the
        // saturation check on the path every byte takes).
        #[allow(clippy::arithmetic_side_effects)]
        let end = self.len + n;
        // (Looked at only for short pieces: a long one is processed anyway.)
        let completes = || match self.mode {
            Mode::Line => bytes.iter().any(|&b| b == b'\n' || b == b'>'),
            Mode::Raw { left, .. } => end >= left.min(CS_PIECE),
            Mode::Skip | Mode::Trailer { .. } => true,
        };
        if n <= 16
            && !completes()
            && end < self.buf.len()
            && let Some(dst) = self.buf.get_mut(self.len..end)
        {
            // A lone byte without a call to `memcpy`.
            match (dst, bytes) {
                ([d], [b]) => *d = *b,
                (dst, bytes) => dst.copy_from_slice(bytes),
            }
            self.len = end;
            return false;
        }
        // A piece that fits the room left (the usual case): copied and dealt with at once
        // (what `feed_slow` does with it, without its loop and the call to `advance`).
        if n > 0
            && let Some(dst) = self.buf.get_mut(self.len..end)
        {
            dst.copy_from_slice(bytes);
            self.process_all(end);
            return true;
        }
        self.feed_slow(bytes);
        true
    }

    fn feed_slow(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = self.write_buf();
            if room.is_empty() {
                // Only with a zero-sized buffer: nothing can be read.
                self.shared.add(Stat::LongLines, 1);
                return;
            }
            let n = room.len().min(bytes.len());
            let (now, rest) = bytes.split_at(n);
            if let Some(dst) = room.get_mut(..n) {
                dst.copy_from_slice(now);
            }
            bytes = rest;
            self.advance(n);
        }
    }

    /// The buffer is full and holds no `\n`: the line is longer than the buffer. Drop it, and
    /// skip the rest of it.
    #[cold]
    fn overlong(&mut self) {
        // (`start` is 0: the buffer was compacted before it was found full.)
        let n = self.len;
        self.refresh();
        let head = self.buf.get(..n).unwrap_or(&[]);
        let head = crate::error::trim_ascii(head);
        // Whose line was it? The start of it tells (an information line carries the command's
        // prefix; a bare command takes any printable line).
        let class = line::classify(head, self.expect.as_ref(), self.in_response);
        if class == LineClass::Info {
            warn!(
                "information line longer than the ingress buffer ({} bytes)",
                n
            );
            self.lost_line = true;
            self.in_response = true;
        } else {
            warn!("line longer than the ingress buffer; skipping it");
        }
        self.shared.add(Stat::LongLines, 1);
        self.shared
            .add(Stat::DiscardedBytes, u32::try_from(n).unwrap_or(u32::MAX));
        self.len = 0;
        self.scan = 0;
        self.start = 0;
        self.mode = Mode::Skip;
    }

    /// Deals with `buf[..end]`; returns how much of it is done with (the rest is an
    /// unfinished line).
    #[inline(never)]
    fn process(&mut self, end: usize) -> usize {
        let mut pos = self.start;
        loop {
            match self.mode {
                Mode::Raw { left, target } => {
                    let k = left.min(end.saturating_sub(pos));
                    if k > 0 {
                        let data = self.buf.get(pos..).and_then(|b| b.get(..k)).unwrap_or(&[]);
                        match self.payloads {
                            _ if target == DISCARD => self
                                .shared
                                .add(Stat::DiscardedBytes, u32::try_from(k).unwrap_or(u32::MAX)),
                            Some(sink) if target != Expect::NO_TARGET => sink.deliver(target, data),
                            _ => self.shared.notify(Event::Payload(data)),
                        }
                    }
                    pos = pos.saturating_add(k);
                    self.scan = pos;
                    if k < left {
                        self.mode = Mode::Raw {
                            left: left.saturating_sub(k),
                            target,
                        };
                        return pos;
                    }
                    if let Some(sink) = self.payloads
                        && target != Expect::NO_TARGET
                        && target != DISCARD
                    {
                        sink.delivered(target);
                    }
                    self.mode = Mode::Trailer { target, seen: 0 };
                }
                Mode::Trailer { target, seen } => {
                    let Some(&b) = self.buf.get(pos).filter(|_| pos < end) else {
                        return pos;
                    };
                    let want = if seen == 0 { b'\r' } else { b'\n' };
                    if b == want {
                        pos = pos.saturating_add(1);
                        self.scan = pos;
                        self.mode = if seen == 0 {
                            Mode::Trailer { target, seen: 1 }
                        } else {
                            Mode::Line
                        };
                    } else {
                        // The payload took bytes that were not its own: some were lost.
                        self.payload_corrupted(target);
                        self.mode = Mode::Line;
                    }
                }
                Mode::Skip => {
                    // (Rare, after a line longer than the buffer: a plain byte search.)
                    let Some(nl) = self
                        .buf
                        .get(pos..end)
                        .and_then(|b| b.iter().position(|&c| c == b'\n'))
                        // `pos + i < end <= buf.len()`: no wrap.
                        .map(|i| pos.wrapping_add(i))
                    else {
                        let n = end.saturating_sub(pos);
                        self.shared
                            .add(Stat::DiscardedBytes, u32::try_from(n).unwrap_or(u32::MAX));
                        self.scan = end;
                        return end;
                    };
                    let n = nl.saturating_add(1).saturating_sub(pos);
                    self.shared
                        .add(Stat::DiscardedBytes, u32::try_from(n).unwrap_or(u32::MAX));
                    pos = nl.saturating_add(1);
                    self.scan = pos;
                    self.mode = Mode::Line;
                }
                Mode::Line => {
                    // Where the search for the line's `\n` starts: the line's start, or where
                    // the search in an earlier piece stopped.
                    let from;
                    if self.scan == pos
                        && let Some(rest) = self.buf.get(pos..end)
                    {
                        // Blank lines (the `\r\n` that frames every line) need no search.
                        let blank = blank_len(rest);
                        // `pos + blank <= end`: no wrap (wrapping ops on the per-line path, as
                        // `+` is in release).
                        pos = pos.wrapping_add(blank);
                        self.scan = pos;
                        let first = rest.get(blank);
                        if first.is_none() {
                            return pos;
                        }
                        // The data prompt is a partial line: `>` (usually followed by a
                        // space) at a line start, while a command that asked for it is in
                        // flight.
                        if first == Some(&b'>') && !self.in_response && {
                            self.refresh();
                            self.expect.is_some_and(|e| e.prompt)
                        } {
                            pos = pos.saturating_add(1);
                            if pos < end && self.buf.get(pos) == Some(&b' ') {
                                pos = pos.saturating_add(1);
                            }
                            self.scan = pos;
                            self.shared.prompt();
                            continue;
                        }
                        from = pos;
                    } else if pos >= end {
                        return pos;
                    } else {
                        from = self.scan.max(pos);
                    }
                    let Some((nl, clean)) = line::find_lf_printable(self.buf, from, end) else {
                        self.scan = end;
                        return pos;
                    };
                    // `nl < end <= buf.len()`: no wrap.
                    let next = nl.wrapping_add(1);
                    self.scan = next;
                    // (`clean` is about the whole line only when the scan started with it.)
                    self.line(pos, nl, clean && from == pos);
                    pos = next;
                }
            }
        }
    }

    /// A payload did not end where its header said (bytes were lost on the UART).
    #[cold]
    fn payload_corrupted(&mut self, target: u8) {
        warn!("socket payload corrupted on the UART");
        self.shared.add(Stat::CorruptedPayloads, 1);
        if let Some(sink) = self.payloads
            && target != Expect::NO_TARGET
            && target != DISCARD
        {
            sink.corrupted(target);
        }
    }

    /// A direct-push `recv` URC for socket `id`: its `n` bytes follow (then, on the modules
    /// seen, a `\r\n`, which [`Mode::Trailer`] takes; without it, the next line's leading
    /// `\r\n` is taken instead, which changes nothing).
    fn pushed(&mut self, id: u8, n: usize) {
        let target = match self.payloads {
            Some(sink) if sink.pushes(id) => id,
            _ => {
                warn!("{} pushed bytes for socket {}, not in push mode", n, id);
                DISCARD
            }
        };
        if n > 0 {
            self.mode = Mode::Raw { left: n, target };
        }
    }

    /// [`Digester::line`] out of line, for the `\n` of a line that arrived alone
    /// ([`Digester::feed_rest`]), so that `line` is only in line in the line loop.
    #[inline(never)]
    fn line_alone(&mut self, start: usize, nl: usize, clean: bool) {
        self.line(start, nl, clean);
    }

    /// A complete line `buf[start..nl]` (without its `\n`); `clean`: its bytes before the last
    /// one are known to be printable. In line in the line loop ([`Digester::process`]), as the
    /// firmware's build has it anyway (its only caller there: the runner's reads do not go
    /// through `feed_rest`); out of line, the host build paid a call and the saving of six
    /// registers per line that the firmware does not.
    #[inline(always)]
    fn line(&mut self, start: usize, nl: usize, clean: bool) {
        self.refresh();
        let expect = self.expect.as_ref();
        // (Never out of bounds: `start <= nl < buf.len()`; a branch, not a select.)
        let Some(raw) = self.buf.get(start..nl) else {
            return;
        };
        // `OK`, a third of all lines, is a final result code whatever is in flight: taken as
        // it usually comes (`OK\r`) before the trimming and the classification.
        if raw == b"OK\r" {
            self.final_code(line::Final::Ok);
            return;
        }
        // The usual line ends with `\r` and has no other white space around it.
        let (text, printable) = match raw {
            // (A byte up to `0x20` at either end takes the trimming, which answers the same
            // for one that is not white space: nothing trimmed, and the line is not printable.)
            [first, .., last, b'\r'] if *first > b' ' && *last > b' ' => {
                (raw.split_last().map_or(raw, |(_, t)| t), clean)
            }
            _ => (crate::error::trim_ascii(raw), false),
        };
        if text.is_empty() {
            return;
        }
        // (An `OK` in another form than `OK\r`, rare, is left to the classification.)
        let class = if let Some(e) = expect
            && (e.info == super::expect::Info::Prefixed && line::info_by_prefix(text, e.prefix)
                // A bare line that starts with a digit (an IMEI, an ICCID, a number): no final
                // result code, bare URC or echo does.
                || e.info == super::expect::Info::Bare
                    && text.first().is_some_and(u8::is_ascii_digit))
            // (A line split between two pieces was not checked by the word pass.)
            && (printable || line::printable(text))
        {
            // An information line of the command in flight, by its plain prefix or its first
            // digit: what the classification would answer (see `line::info_by_prefix`).
            LineClass::Info
        } else {
            // A URC is dealt with here, where its split is (the one class that needs it: no
            // split moved out of the classification's answer for the other classes).
            match line::classify_split(text, expect, self.in_response, printable) {
                (LineClass::Urc, split) => {
                    // (A push header starts `+QIURC: ` or `+QSSLURC: `.)
                    // (A push header is at least `<name>: "recv",0,0`, with the `r` of `recv`
                    // after the name's `: "`: a buffer-mode `recv` or a `closed` is told from
                    // one without the header parse.)
                    if let Some(s) = split
                        && text.get(s.name.len().wrapping_add(3)) == Some(&b'r')
                        && text.len() >= s.name.len().wrapping_add(12)
                        && matches!(s.name, b"+QIURC" | b"+QSSLURC")
                        && let Some((id, n)) = line::push_header(text)
                    {
                        self.pushed(id, n);
                        return;
                    }
                    if self.in_response {
                        self.shared.add(Stat::DeferredUrcs, 1);
                    }
                    if self.urcs.urc(text, split) {
                        self.shared.add(Stat::UnknownUrcs, 1);
                    }
                    return;
                }
                (class, _) => class,
            }
        };
        match class {
            // (A URC was dealt with above.)
            LineClass::Blank | LineClass::Urc => {}
            LineClass::Echo => self.shared.add(Stat::EchoLines, 1),
            LineClass::Garbage => {
                debug!("skipping a noise line ({} bytes)", text.len());
                self.shared.add(Stat::GarbageLines, 1);
            }
            LineClass::Info => {
                self.in_response = true;
                // (Only a command that reads a payload has a header to look at.)
                let payload = match expect {
                    Some(e) if e.payload == super::expect::Payload::LengthPrefixed => {
                        line::payload_len(text, e).map(|n| (n, e.target))
                    }
                    _ => None,
                };
                self.shared.notify(Event::Line(text));
                if let Some((n, target)) = payload
                    && n > 0
                {
                    self.mode = Mode::Raw { left: n, target };
                }
            }
            LineClass::Final(f) => self.final_code(f),
        }
    }

    /// A final result code `f` while the command in `expect` is in flight. (`#[inline]`, not
    /// `always`: the host build inlines it at both places, `OK\r` and the classified finals;
    /// the firmware's, built for size, keeps one copy and calls it once per command, 72 B
    /// less in row 3.)
    #[inline]
    fn final_code(&mut self, f: line::Final) {
        let stale = match self.expect {
            None => true,
            // A success before the line the command always answers: the late answer
            // of an abandoned command.
            Some(e) => e.answers_line && !self.in_response && f.is_success(),
        };
        if stale {
            self.shared.add(Stat::UnsolicitedFinals, 1);
            return;
        }
        let outcome = if self.lost_line {
            self.shared.add(Stat::Overflows, 1);
            Err(crate::Error::Overflow)
        } else {
            Ok(f)
        };
        // The listener's `End` and the completion in one critical section; no command
        // is in flight after it (cached, so the next line takes no critical section to
        // learn it; a command begun meanwhile moves the change count).
        let changes = self.shared.end_with(outcome, f);
        self.expect = None;
        self.expect_seen = changes;
        self.in_response = false;
        self.lost_line = false;
    }
}
