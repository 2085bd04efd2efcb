//! Entry points for the cargo-fuzz targets in `fuzz/` (not part of the public API).

use crate::at::expect::{Expect, ExpectCell};
use crate::at::feed::{Event, Feeder};
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
/// digester breaks its contract (stalls on a full buffer or hands out bytes it was not given).
pub fn digest_bytes(data: &[u8]) {
    let (sel, rest) = match data {
        [a, b, rest @ ..] => ((*a, *b), rest),
        _ => return,
    };
    let shared = ExpectCell::new();
    let expect = EXPECTS[usize::from(sel.0) % EXPECTS.len()];
    shared.begin(expect);
    let mut feeder = Feeder::<'_, 512>::new(&shared);
    let chunk = usize::from(sel.1 % 64) + 1;
    for piece in rest.chunks(chunk) {
        let fed = feeder.feed(piece, |ev| {
            // Every response body must parse as a view without panicking.
            if let Event::Response(Ok(body)) = ev {
                let r = crate::at::Response::new(body, expect);
                let _ = r.final_code();
                let _ = r.lines().count();
                let _ = r.payload();
            }
            if let Event::Urc(line) = ev {
                let _ = crate::at::Urc::parse_line(line);
            }
        });
        assert!(fed.is_ok(), "digester stalled with a full buffer");
        if expect != EXPECTS[0] && shared.current().is_none() {
            shared.begin(expect);
        }
    }
}

fn parse_as<C: Command>(cmd: &C, body: &[u8]) {
    let _ = command::complete(cmd, Ok(body));
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

/// The digester alone behind its feeder, for the instruction-count benchmark
/// (`benches/cpu.rs`): the same loop tests and fuzz targets drive.
#[allow(missing_debug_implementations)] // a benchmark harness, never logged
pub struct DigestBench<'a> {
    shared: &'a ExpectCell,
    feeder: Feeder<'a, 2048>,
    events: usize,
}

impl DigestBench<'_> {
    /// Runs `f` with a fresh digester (2 KiB ingress buffer, no command in flight).
    pub fn with<R>(f: impl FnOnce(&mut DigestBench<'_>) -> R) -> R {
        let shared = ExpectCell::new();
        let mut bench = DigestBench {
            shared: &shared,
            feeder: Feeder::new(&shared),
            events: 0,
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
        let events = &mut self.events;
        let fed = self.feeder.feed(bytes, |_| *events += 1);
        assert!(fed.is_ok(), "digester stalled with a full buffer");
    }

    /// Events delivered so far (URCs, responses, prompts).
    pub fn events(&self) -> usize {
        self.events
    }
}

/// The runner's intake path (what `Runner::ingest` runs: digester, URCs into the state and the
/// socket slots, payloads into the socket ring, responses into the response slot), with the
/// command side emulated around it, for the instruction-count benchmark (`benches/cpu.rs`).
#[allow(missing_debug_implementations)] // a benchmark harness, never logged
pub struct IntakeBench<'a> {
    parts: crate::asynch::RunnerParts<'a, 2048>,
    modem: crate::asynch::Modem<'a>,
    responses: usize,
}

/// The resources [`IntakeBench`] runs on (defaults: 2 KiB ingress, 2 sockets, 2 KiB rings).
pub type BenchResources = crate::asynch::Resources<2048, 2, 2048>;

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

    /// The command side before a command is written: forget an old response, publish what
    /// the command expects (payloads go to socket slot 0).
    pub fn begin(&mut self, expect: Expect) {
        self.modem.slot.reset();
        self.modem.core.shared.begin(expect.to_slot(0));
    }

    /// Feeds received bytes exactly as `Runner::ingest` does.
    #[inline(never)]
    pub fn ingest(&mut self, bytes: &[u8]) {
        self.parts.ingest(bytes);
    }

    /// The command side after the reply: take the response, and the application reads what
    /// arrived in socket slot 0's ring.
    pub fn finish(&mut self) {
        if self.modem.slot.take(&mut |_| {}) {
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
