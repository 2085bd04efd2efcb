//! Scripted mode: replay a human-readable conversation and check what the host sends.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::link::{HostLine, LineAssembler, Link, Output, Pacing, Recv, UartClock, frame};
use crate::pipe::{HostRx, HostTx, Wire, duplex};

/// Default time a `>` step waits for the host's line.
pub const DEFAULT_EXPECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One parsed script step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `> TEXT`: the host's next command line must equal `TEXT` (a trailing
    /// `*` makes it a prefix match).
    Expect(String),
    /// `>raw "…"`: the host must send exactly these bytes next (payload after a prompt).
    ExpectRaw(Vec<u8>),
    /// `< TEXT`, `! TEXT` or `<raw "…"`: bytes to send to the host.
    Send(Vec<u8>),
    /// `~ 50ms`: pause.
    Delay(Duration),
    /// `frag N [DELAY]`: output pacing from now on.
    Frag(Pacing),
    /// `echo on|off`: echo the host's command lines.
    Echo(bool),
    /// `timeout 2s`: how long following `>` steps wait.
    Timeout(Duration),
    /// `close`: drop the link (the host reads EOF).
    Close,
}

/// A step with the script line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptStep {
    /// 1-based line number in the script source.
    pub line: usize,
    /// The step.
    pub step: Step,
}

impl fmt::Display for ScriptStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {:?}", self.line, self.step)
    }
}

/// A script syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "script line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ScriptError {}

/// A parsed conversation script (see the crate docs for the syntax).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// The steps in order.
    pub steps: Vec<ScriptStep>,
}

/// Remove a `#` comment that starts at the beginning or after whitespace,
/// outside double quotes.
fn strip_comment(s: &str) -> &str {
    let bytes = s.as_bytes();
    let mut in_quote = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quote => i += 1,
            b'"' => in_quote = !in_quote,
            b'#' if !in_quote && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => {
                return s[..i].trim_end();
            }
            _ => {}
        }
        i += 1;
    }
    s.trim_end()
}

/// Parse a duration like `50ms`, `2s`, `1.5s`, `250us`, or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "ms"),
    };
    let v: f64 = num.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" | "min" => v * 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// Decode a double-quoted string with C escapes (`\r \n \t \0 \xHH \" \\`).
pub fn unescape_quoted(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or_else(|| "expected a double-quoted string".to_string())?;
    let mut out = Vec::new();
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b.get(i + 1).ok_or("dangling backslash")?;
        i += 2;
        match c {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'"' => out.push(b'"'),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = inner.get(i..i + 2).ok_or("\\x needs two hex digits")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad \\x escape")?);
                i += 2;
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        }
    }
    Ok(out)
}

impl Script {
    /// Parse a script.
    pub fn parse(src: &str) -> Result<Script, ScriptError> {
        let mut steps = Vec::new();
        for (idx, raw) in src.lines().enumerate() {
            let line = idx + 1;
            let err = |message: String| ScriptError { line, message };
            let text = strip_comment(raw.trim_start());
            if text.is_empty() {
                continue;
            }
            let step = if let Some(rest) = text.strip_prefix(">raw") {
                Step::ExpectRaw(unescape_quoted(rest).map_err(err)?)
            } else if let Some(rest) = text.strip_prefix("<raw") {
                Step::Send(unescape_quoted(rest).map_err(err)?)
            } else if let Some(rest) = text.strip_prefix('>') {
                Step::Expect(rest.strip_prefix(' ').unwrap_or(rest).to_string())
            } else if let Some(rest) = text.strip_prefix('<').or_else(|| text.strip_prefix('!')) {
                Step::Send(frame(rest.strip_prefix(' ').unwrap_or(rest)))
            } else if let Some(rest) = text.strip_prefix('~') {
                Step::Delay(
                    parse_duration(rest).ok_or_else(|| err(format!("bad duration {rest:?}")))?,
                )
            } else {
                let mut words = text.split_whitespace();
                let kw = words.next().unwrap_or_default();
                let args: Vec<&str> = words.collect();
                match (kw, args.as_slice()) {
                    ("frag", [n, rest @ ..]) if rest.len() <= 1 => {
                        let chunk = n
                            .parse()
                            .map_err(|_| err(format!("bad chunk size {n:?}")))?;
                        let delay = match rest.first() {
                            Some(d) => parse_duration(d)
                                .ok_or_else(|| err(format!("bad duration {d:?}")))?,
                            None => Duration::ZERO,
                        };
                        Step::Frag(Pacing { chunk, delay })
                    }
                    ("echo", ["on"]) => Step::Echo(true),
                    ("echo", ["off"]) => Step::Echo(false),
                    ("timeout", [d]) => Step::Timeout(
                        parse_duration(d).ok_or_else(|| err(format!("bad duration {d:?}")))?,
                    ),
                    ("close", []) => Step::Close,
                    _ => return Err(err(format!("unknown step {text:?}"))),
                }
            };
            steps.push(ScriptStep { line, step });
        }
        Ok(Script { steps })
    }

    /// Run the script on a fresh in-memory link; returns the host endpoints and a handle.
    pub fn spawn(self) -> (HostRx, HostTx, ScriptHandle) {
        let (rx, tx, end) = duplex();
        let wire = end.wire().clone();
        let mut handle = self.spawn_on(end);
        handle.wire = Some(wire);
        (rx, tx, handle)
    }

    /// Run the script on any [`Link`] (TCP, PTY, …).
    pub fn spawn_on<L: Link + 'static>(self, link: L) -> ScriptHandle {
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("mock-modem-script".into())
            .spawn(move || Runner::new(link, sh).run(self.steps))
            .expect("spawn script thread");
        ScriptHandle {
            shared,
            thread: Some(thread),
            wire: None,
        }
    }
}

impl std::str::FromStr for Script {
    type Err = ScriptError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Script::parse(s)
    }
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    done: Mutex<bool>,
    done_cond: Condvar,
}

/// Handle to a running script.
pub struct ScriptHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Vec<String>>>,
    wire: Option<Wire>,
}

impl fmt::Debug for ScriptHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptHandle")
            .field("done", &self.is_done())
            .finish()
    }
}

impl ScriptHandle {
    /// True when every step has run (or the script was aborted by a timeout).
    pub fn is_done(&self) -> bool {
        *self.shared.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait up to `timeout` for the script to run to its end; true if it did.
    pub fn wait_done(&self, timeout: Duration) -> bool {
        let g = self.shared.done.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self
            .shared
            .done_cond
            .wait_timeout_while(g, timeout, |d| !*d)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }

    /// Counters and transcripts (only for scripts started with [`Script::spawn`]).
    pub fn wire(&self) -> Option<&Wire> {
        self.wire.as_ref()
    }

    /// Wait until the script has run to its end (each `>` step is bounded by
    /// its timeout), close the link and report mismatches, timeouts and
    /// unconsumed steps.
    pub fn finish(mut self) -> Result<(), Vec<String>> {
        {
            let g = self.shared.done.lock().unwrap_or_else(|e| e.into_inner());
            drop(
                self.shared
                    .done_cond
                    .wait_while(g, |d| !*d)
                    .unwrap_or_else(|e| e.into_inner()),
            );
        }
        self.stop()
    }

    /// Stop now: remaining steps are reported as unconsumed.
    pub fn abort(mut self) -> Result<(), Vec<String>> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), Vec<String>> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let errors = match self.thread.take().map(|t| t.join()) {
            Some(Ok(e)) => e,
            Some(Err(_)) => vec!["script thread panicked".to_string()],
            None => Vec::new(),
        };
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl Drop for ScriptHandle {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// Maximum host bytes buffered by the script runner.
const MAX_INBUF: usize = 64 * 1024;

struct Runner<L: Link> {
    link: Option<L>,
    shared: Arc<Shared>,
    inbuf: VecDeque<u8>,
    lines: LineAssembler,
    pacing: Pacing,
    echo: bool,
    timeout: Duration,
    errors: Vec<String>,
    closed: bool,
}

enum Got<T> {
    Yes(T),
    Timeout,
    Closed,
    Stopped,
}

impl<L: Link> Runner<L> {
    fn new(link: L, shared: Arc<Shared>) -> Self {
        Runner {
            link: Some(link),
            shared,
            inbuf: VecDeque::new(),
            lines: LineAssembler::default(),
            pacing: Pacing::default(),
            echo: false,
            timeout: DEFAULT_EXPECT_TIMEOUT,
            errors: Vec::new(),
            closed: false,
        }
    }

    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    /// Pull more host bytes into `inbuf`; false on timeout/closed/stop.
    fn fill(&mut self, deadline: Instant) -> Got<()> {
        let Some(link) = self.link.as_mut() else {
            return Got::Closed;
        };
        let mut buf = [0u8; 512];
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return Got::Stopped;
            }
            let now = Instant::now();
            if now >= deadline {
                return Got::Timeout;
            }
            let slice = (deadline - now).min(Duration::from_millis(20));
            match link.recv(&mut buf, slice) {
                Recv::Data(n) => {
                    let room = MAX_INBUF.saturating_sub(self.inbuf.len()).min(n);
                    self.inbuf.extend(&buf[..room]);
                    return Got::Yes(());
                }
                Recv::Timeout => {}
                Recv::Closed => return Got::Closed,
            }
        }
    }

    fn next_line(&mut self, deadline: Instant) -> Got<HostLine> {
        loop {
            while let Some(b) = self.inbuf.pop_front() {
                match self.lines.push(b) {
                    Some(HostLine::Line(l)) if l.is_empty() => {}
                    Some(l) => return Got::Yes(l),
                    None => {}
                }
            }
            match self.fill(deadline) {
                Got::Yes(()) => {}
                Got::Timeout => return Got::Timeout,
                Got::Closed => return Got::Closed,
                Got::Stopped => return Got::Stopped,
            }
        }
    }

    fn next_bytes(&mut self, n: usize, deadline: Instant) -> (Vec<u8>, Got<()>) {
        let mut out = Vec::new();
        loop {
            while out.len() < n {
                match self.inbuf.pop_front() {
                    Some(b) => out.push(b),
                    None => break,
                }
            }
            if out.len() == n {
                return (out, Got::Yes(()));
            }
            match self.fill(deadline) {
                Got::Yes(()) => {}
                other => return (out, other),
            }
        }
    }

    fn send(&mut self, data: &[u8]) {
        if let Some(link) = self.link.as_mut() {
            let mut clock = UartClock::new(None);
            let mut out = Output {
                link,
                pacing: self.pacing,
                clock: &mut clock,
                broken: false,
            };
            out.raw(data);
            if out.broken {
                self.closed = true;
            }
        }
    }

    fn run(mut self, steps: Vec<ScriptStep>) -> Vec<String> {
        let mut iter = steps.into_iter();
        let mut aborted_at: Option<ScriptStep> = None;
        for st in iter.by_ref() {
            if self.stopped() {
                aborted_at = Some(st);
                break;
            }
            let line = st.line;
            match &st.step {
                Step::Expect(want) => match self.next_line(Instant::now() + self.timeout) {
                    Got::Yes(HostLine::Line(got)) => {
                        if self.echo {
                            let mut e = got.clone();
                            e.push(b'\r');
                            self.send(&e);
                        }
                        let got = String::from_utf8_lossy(&got).into_owned();
                        let ok = match want.strip_suffix('*') {
                            Some(prefix) => got.starts_with(prefix),
                            None => got == *want,
                        };
                        if !ok {
                            self.errors.push(format!(
                                "line {line}: expected host to send {want:?}, got {got:?}"
                            ));
                        }
                    }
                    Got::Yes(HostLine::TooLong) => self.errors.push(format!(
                        "line {line}: expected {want:?}, got an over-long line"
                    )),
                    Got::Timeout => {
                        self.errors.push(format!(
                            "line {line}: timed out after {:?} waiting for host to send {want:?}",
                            self.timeout
                        ));
                        break;
                    }
                    Got::Closed => {
                        self.errors.push(format!(
                            "line {line}: host closed the link while expecting {want:?}"
                        ));
                        break;
                    }
                    Got::Stopped => {
                        aborted_at = Some(st);
                        break;
                    }
                },
                Step::ExpectRaw(want) => {
                    let (got, status) = self.next_bytes(want.len(), Instant::now() + self.timeout);
                    match status {
                        Got::Yes(()) => {
                            if got != *want {
                                self.errors.push(format!(
                                    "line {line}: expected raw bytes {:?}, got {:?}",
                                    String::from_utf8_lossy(want),
                                    String::from_utf8_lossy(&got)
                                ));
                            }
                        }
                        Got::Stopped => {
                            aborted_at = Some(st);
                            break;
                        }
                        _ => {
                            self.errors.push(format!(
                                "line {line}: timed out/closed waiting for raw bytes {:?} (got {:?})",
                                String::from_utf8_lossy(want),
                                String::from_utf8_lossy(&got)
                            ));
                            break;
                        }
                    }
                }
                Step::Send(bytes) => {
                    self.send(bytes);
                    if self.closed {
                        self.errors
                            .push(format!("line {line}: host side closed; could not send"));
                        break;
                    }
                }
                Step::Delay(d) => {
                    let end = Instant::now() + *d;
                    while Instant::now() < end && !self.stopped() {
                        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(10)));
                    }
                }
                Step::Frag(p) => self.pacing = *p,
                Step::Echo(on) => self.echo = *on,
                Step::Timeout(d) => self.timeout = *d,
                Step::Close => {
                    self.link = None;
                }
            }
        }
        let rest: Vec<ScriptStep> = aborted_at.into_iter().chain(iter).collect();
        for st in rest {
            self.errors.push(format!("unconsumed step: {st}"));
        }
        {
            let mut d = self.shared.done.lock().unwrap_or_else(|e| e.into_inner());
            *d = true;
            self.shared.done_cond.notify_all();
        }
        // Keep the link open (and drain input) until the test finishes.
        while !self.stopped() && self.link.is_some() {
            let far = Instant::now() + Duration::from_millis(50);
            match self.fill(far) {
                Got::Closed => break,
                _ => self.inbuf.clear(),
            }
        }
        self.errors
    }
}
