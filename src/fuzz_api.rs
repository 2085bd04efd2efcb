//! Entry points for the cargo-fuzz targets in `fuzz/` (not part of the public API).

use crate::at::Digester;
use crate::at::expect::Event;
use crate::at::expect::{Expect, ExpectCell};
use crate::at::feed::UrcFn;
use crate::command::{self, Command};

const EXPECTS: [Expect; 6] = [
    Expect::NONE,
    Expect::BARE,
    Expect::PROMPT,
    Expect::prefixed(b"+CSQ:"),
    Expect::prefixed(b"+CEREG:"),
    Expect::payload(b"+QIRD:"),
];

/// Feeds arbitrary bytes through the digester in arbitrary chunks with an arbitrary command in
/// flight. The first byte picks the command, the second the chunk size. Panics only if the
/// digester breaks its contract (hands out a line it was not given, a line with a line break,
/// or a payload piece longer than announced).
pub fn digest_bytes(data: &[u8]) {
    let (sel, rest) = match data {
        [a, b, rest @ ..] => ((*a, *b), rest),
        _ => return,
    };
    let shared = ExpectCell::new();
    let expect = EXPECTS[usize::from(sel.0) % EXPECTS.len()];
    let total = core::cell::Cell::new(0usize);
    let on = |ev: Event<'_>| match ev {
        Event::Line(l) => {
            assert!(!l.contains(&b'\n'), "a line with a line break");
            total.set(total.get() + l.len());
            // Every line must parse as a view without panicking.
            let r = crate::at::Response::new(l, expect);
            let _ = r.lines().count();
            let _ = r.first();
        }
        Event::Payload(p) => total.set(total.get() + p.len()),
        Event::End(_) => {}
    };
    let _guard = shared.listen(&on);
    shared.begin(expect);
    let mut buf = [0u8; 256];
    let mut d = Digester::new(
        &shared,
        &mut buf,
        UrcFn(|line: &[u8]| {
            assert!(!line.contains(&b'\n'), "a URC with a line break");
            total.set(total.get() + line.len());
            let _ = crate::at::Urc::parse_line(line);
        }),
    );
    let chunk = usize::from(sel.1 % 64) + 1;
    for piece in rest.chunks(chunk) {
        let _ = d.feed(piece);
        if expect != EXPECTS[0] && shared.current().is_none() {
            shared.begin(expect);
        }
    }
    assert!(
        total.get() <= rest.len(),
        "the digester handed out more bytes than it was given"
    );
}

fn parse_as<C: Command>(cmd: &C, body: &[u8]) {
    let _ = command::run_wire_in::<C, 256>(cmd, body, 64);
}

/// Parses arbitrary bytes as the response of every command that takes no arguments (the first
/// byte picks which). Must never panic.
pub fn parse_responses(data: &[u8]) {
    use crate::command::{general, network, pdp, sim};
    let Some((sel, body)) = data.split_first() else {
        return;
    };
    match sel % 14 {
        0 => parse_as(&general::Identify, body),
        1 => parse_as(&general::Imei, body),
        2 => parse_as(&general::GetLastTcpipError, body),
        3 => parse_as(&sim::GetPinStatus, body),
        4 => parse_as(&sim::Iccid, body),
        5 => parse_as(&sim::Imsi, body),
        6 => parse_as(&network::GetCereg, body),
        7 => parse_as(&network::GetOperator, body),
        8 => parse_as(&network::SignalQuality, body),
        9 => parse_as(&network::ExtendedSignalQuality, body),
        10 => parse_as(&network::NetworkInfo, body),
        11 => parse_as(&pdp::GetActiveContexts, body),
        12 => parse_as(&pdp::GetPdpContexts, body),
        _ => parse_as(&general::GetFunctionality, body),
    }
    let _ = crate::at::Urc::parse_line(body);
}

/// The URC counter of [`DigestBench`].
type CountUrc<'a> = &'a dyn Fn(&[u8]);

/// The digester alone, for the instruction-count benchmark (`benches/cpu.rs`): the same
/// digester the runner runs, with a 2 KiB line buffer, and a listener that counts events.
#[allow(missing_debug_implementations)] // a benchmark harness, never logged
pub struct DigestBench<'a> {
    shared: &'a ExpectCell,
    digester: Digester<'a, UrcFn<CountUrc<'a>>>,
    events: &'a core::cell::Cell<usize>,
}

impl DigestBench<'_> {
    /// Runs `f` with a fresh digester (2 KiB line buffer, no command in flight).
    pub fn with<R>(f: impl FnOnce(&mut DigestBench<'_>) -> R) -> R {
        let shared = ExpectCell::new();
        let events = core::cell::Cell::new(0usize);
        let on = |_: Event<'_>| events.set(events.get() + 1);
        let urc = |_: &[u8]| events.set(events.get() + 1);
        let _guard = shared.listen(&on);
        let mut buf = [0u8; 2048];
        let mut bench = DigestBench {
            shared: &shared,
            digester: Digester::new(&shared, &mut buf, UrcFn(&urc)),
            events: &events,
        };
        f(&mut bench)
    }

    /// The command side: `expect` is in flight from now on.
    pub fn begin(&mut self, expect: Expect) {
        self.shared.begin(expect);
    }

    /// Feeds `bytes` (events are counted, nothing else is done with them).
    #[inline(never)]
    pub fn feed(&mut self, bytes: &[u8]) {
        let _ = self.digester.feed(bytes);
    }

    /// Events delivered so far (URCs, lines, payload pieces, ends).
    pub fn events(&self) -> usize {
        self.events.get()
    }
}

/// The runner's intake path (what `Runner::ingest` runs: digester, URCs into the state and the
/// socket slots, payloads into the socket ring, lines to the command's listener), with the
/// command side emulated around it, for the instruction-count benchmark (`benches/cpu.rs`).
#[allow(missing_debug_implementations)] // a benchmark harness, never logged
pub struct IntakeBench<'a> {
    parts: crate::asynch::RunnerParts<'a>,
    modem: crate::asynch::Modem<'a>,
    responses: usize,
}

/// The resources [`IntakeBench`] runs on (the defaults: 256-byte ingress, 2 sockets, 2 KiB
/// rings).
pub type BenchResources = crate::asynch::Resources;

impl<'a> IntakeBench<'a> {
    /// An intake over `resources`, with socket slot 0 open (its payloads land in its ring).
    pub fn new(resources: &'a mut BenchResources) -> Self {
        use crate::socket::{Kind, Phase};
        let (parts, modem) = crate::asynch::split(resources, crate::asynch::Config::DEFAULT);
        if let Some(i) = modem.pool.claim(Kind::Tcp, 1) {
            modem.pool.update(i, &mut |s| s.phase = Phase::Open);
        }
        Self {
            parts,
            modem,
            responses: 0,
        }
    }

    /// The command side before a command is written: publish what the command expects
    /// (payloads go to socket slot 0).
    pub fn begin(&mut self, expect: Expect) {
        self.modem.core.shared.begin(expect.to_slot(0));
    }

    /// Feeds received bytes exactly as `Runner::ingest` does.
    #[inline(never)]
    pub fn ingest(&mut self, bytes: &[u8]) {
        self.parts.ingest(bytes);
    }

    /// The command side after the reply: count the completed response, and the application
    /// reads what arrived in socket slot 0's ring.
    pub fn finish(&mut self) {
        if self.modem.core.shared.current().is_none() {
            self.responses += 1;
        }
        let mut buf = [0u8; 512];
        while self.modem.pool.read(0, &mut buf) > 0 {}
    }

    /// Responses the command side took so far.
    pub fn responses(&self) -> usize {
        self.responses
    }

    /// Bytes received into socket slot 0 so far.
    pub fn received(&self) -> u64 {
        self.modem.pool.state(0).received
    }

    /// What the driver's state counted (URC-driven), for sanity checks.
    pub fn state(&self) -> crate::state::State {
        self.modem.state()
    }
}
