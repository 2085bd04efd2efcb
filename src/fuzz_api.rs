//! Entry points for the cargo-fuzz targets in `fuzz/` (not part of the public API).
//!
//! Each target in `fuzz/fuzz_targets/` is a thin `fuzz_target!` calling one function here: the
//! functions live inside the crate so that they reach the crate-private parsers the driver
//! runs (digester, command folds, URC application, MQTT receive guard, cloud answers).

// A fuzz harness reports a finding by panicking: its asserts, indexing and arithmetic are the
// point, not input handling of the driver.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

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

fn parse_as<C>(cmd: &C, body: &[u8])
where
    C: Command,
    C::Response: PartialEq + core::fmt::Debug,
{
    let _ = command::run_wire_in::<C, 256>(cmd, body, 64);
    parse_chunked(cmd, body, body.len() as u8);
}

/// Parses arbitrary bytes as the response of every command that takes no arguments (the first
/// byte picks which), whole and in random pieces (both results must be the same). Must never
/// panic otherwise.
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

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// Draws typed values from the front of a fuzz input (zeros once it is used up).
struct Src<'a>(&'a [u8]);

impl<'a> Src<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    /// A string argument of up to 63 bytes (the valid UTF-8 prefix of what is there).
    fn str(&mut self) -> &'a str {
        let n = usize::from(self.u8() % 64);
        let b = self.bytes(n);
        match core::str::from_utf8(b) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or(""),
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.0
    }
}

/// A small deterministic generator for chunk sizes (xorshift32).
struct Chunks(u32);

impl Chunks {
    fn new(seed: u8) -> Self {
        Self(0x9e37_79b9 ^ u32::from(seed).wrapping_mul(0x0101_0101) | 1)
    }

    /// The next piece size, 1..=max.
    fn next(&mut self, max: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        (x as usize % max.max(1)) + 1
    }
}

/// `cmd`'s result for the reply `wire`, fed through a digester with a `N`-byte line buffer in
/// pieces of the sizes `chunks` gives (`None`: no final result code came). The driver's path:
/// [`command::Listen`] on the events of the digester, as `Modem::send` runs it.
fn run_chunked<C: Command, const N: usize>(
    cmd: &C,
    wire: &[u8],
    chunks: &mut Chunks,
    max: usize,
) -> Option<Result<C::Response, crate::Error>> {
    let shared = ExpectCell::new();
    let mut acc = command::Acc::<C::Response>::new(cmd);
    let fold = command::Listen::new(&mut acc, cmd.expect());
    let ends = core::cell::Cell::new(0u32);
    let on = |ev: Event<'_>| {
        if let Event::End(_) = ev {
            ends.set(ends.get() + 1);
        }
        fold.on(ev)
    };
    {
        let _guard = shared.listen(&on);
        shared.begin(cmd.expect());
        let mut buf = [0u8; N];
        let mut d = Digester::new(&shared, &mut buf, UrcFn(|_: &[u8]| {}));
        let mut rest = wire;
        while !rest.is_empty() {
            let (piece, tail) = rest.split_at(chunks.next(max).min(rest.len()));
            rest = tail;
            let _ = d.feed(piece);
            if shared.current().is_none() {
                break;
            }
        }
        // One response, one end: the command is done exactly when its final result code came.
        assert_eq!(
            ends.get(),
            u32::from(shared.current().is_none()),
            "a response ended more than once, or the command completed without its end"
        );
    }
    let done = fold.done();
    acc.result(done)
}

/// Parses `wire` as `cmd`'s response whole and in random pieces: the result must not depend
/// on how the UART chunked the bytes.
fn parse_chunked<C>(cmd: &C, wire: &[u8], seed: u8)
where
    C: Command,
    C::Response: PartialEq + core::fmt::Debug,
{
    let whole = run_chunked::<C, 256>(cmd, wire, &mut Chunks::new(0), usize::MAX);
    let max = [1, 3, 7, 16, 64, 300][usize::from(seed % 6)];
    let pieces = run_chunked::<C, 256>(cmd, wire, &mut Chunks::new(seed), max);
    assert_eq!(whole, pieces, "the result depends on the chunking");
}

// ---------------------------------------------------------------------------------------------
// Commands with arguments
// ---------------------------------------------------------------------------------------------

/// Writes `cmd` into a command-line buffer; a line it accepts must be one printable-ASCII
/// `AT` line (no `\r` or `\n` inside: those would end the command early and let an argument
/// inject another one).
fn write_checked<C: Command>(cmd: &C) {
    let mut buf = [0u8; 600];
    let mut w = command::CmdWriter::new(&mut buf);
    if cmd.write(&mut w).is_ok() {
        let line = w.as_bytes();
        assert!(
            line.iter().all(|b| (0x20..0x7f).contains(b)),
            "a command line with a control or non-ASCII byte"
        );
        let upload_data = line.is_empty();
        assert!(
            upload_data || line.get(..2).is_some_and(|p| p.eq_ignore_ascii_case(b"AT")),
            "a command line that does not start with AT"
        );
    }
}

fn reply_of<C>(cmd: &C, src: &Src<'_>, seed: u8)
where
    C: Command,
    C::Response: PartialEq + core::fmt::Debug,
{
    write_checked(cmd);
    parse_chunked(cmd, src.rest(), seed);
}

/// Builds a command with arguments from the input (first byte: which command), writes it
/// (the line must stay one printable `AT` line), and parses the rest of the input as its reply,
/// whole and in random pieces (both results must be the same). Must never panic otherwise.
pub fn command_replies(data: &[u8]) {
    use crate::command::{dns, file, general, network, pdp, power, sim, socket, time};
    let mut s = Src(data);
    let which = s.u8();
    let seed = s.u8();
    match which % 40 {
        0 => {
            let (id, tls, len) = (s.u8() % 13, s.bool(), s.u16() % 1600);
            reply_of(&socket::Read { id, tls, len }, &s, seed)
        }
        1 => reply_of(&socket::ReadQuery { id: s.u8() % 13 }, &s, seed),
        2 => reply_of(&pdp::GetActiveContext { cid: s.u8() % 18 }, &s, seed),
        3 => reply_of(&pdp::GetPdpAddress { cid: s.u8() % 18 }, &s, seed),
        4 => reply_of(&pdp::GetDnsConfig { cid: s.u8() % 18 }, &s, seed),
        5 => reply_of(&pdp::GetContextConfig { cid: s.u8() % 18 }, &s, seed),
        6 => reply_of(&sim::PinCounter, &s, seed),
        7 => reply_of(&file::List { pattern: s.str() }, &s, seed),
        8 => reply_of(&power::GetPsm, &s, seed),
        9 => reply_of(&power::GetEdrxGrant, &s, seed),
        10 => reply_of(&time::GetClock, &s, seed),
        11 => {
            let cmd = file::UploadData {
                size: s.u32() % 70_000,
                checksum: s.u16(),
                timeout_s: s.u16(),
            };
            reply_of(&cmd, &s, seed)
        }
        12 => {
            let cmd = file::Upload {
                name: s.str(),
                size: s.u32(),
                timeout_s: s.u16(),
            };
            reply_of(&cmd, &s, seed)
        }
        13 => reply_of(&file::Delete { name: s.str() }, &s, seed),
        14 => {
            let cmd = socket::OpenTcp {
                cid: s.u8() % 18,
                id: s.u8() % 13,
                host: s.str(),
                port: s.u16(),
                push: s.bool(),
            };
            reply_of(&cmd, &s, seed)
        }
        15 => {
            let cmd = socket::OpenTls {
                cid: s.u8() % 18,
                ssl_ctx: s.u8() % 7,
                id: s.u8() % 13,
                host: s.str(),
                port: s.u16(),
                push: s.bool(),
            };
            reply_of(&cmd, &s, seed)
        }
        16 => {
            let cmd = socket::Close {
                id: s.u8() % 13,
                tls: s.bool(),
                timeout_s: s.u8() % 12,
            };
            reply_of(&cmd, &s, seed)
        }
        17 => {
            let option = match s.u8() % 9 {
                0 => socket::SslOption::Version(s.u8() % 6),
                1 => socket::SslOption::CipherSuite(s.u16()),
                2 => socket::SslOption::SecLevel(s.u8() % 4),
                3 => socket::SslOption::CaCert(s.str()),
                4 => socket::SslOption::ClientCert(s.str()),
                5 => socket::SslOption::ClientKey(s.str()),
                6 => socket::SslOption::IgnoreLocalTime(s.bool()),
                7 => socket::SslOption::NegotiateTime(s.u16() % 400),
                _ => socket::SslOption::Sni(s.bool()),
            };
            let cmd = socket::SslConfigure {
                ctx: s.u8() % 7,
                option,
            };
            reply_of(&cmd, &s, seed)
        }
        18 => {
            let cmd = pdp::DefinePdpContext {
                cid: s.u8() % 18,
                pdp_type: [
                    pdp::PdpType::Ip,
                    pdp::PdpType::Ipv6,
                    pdp::PdpType::Ipv4v6,
                    pdp::PdpType::Ppp,
                    pdp::PdpType::NonIp,
                ][usize::from(s.u8() % 5)],
                apn: s.str(),
            };
            reply_of(&cmd, &s, seed)
        }
        19 => {
            let cmd = pdp::ConfigureContext {
                cid: s.u8() % 18,
                context_type: pdp::ContextType::from_code(u32::from(s.u8() % 3) + 1)
                    .unwrap_or(pdp::ContextType::Ipv4),
                apn: s.str(),
                username: s.str(),
                password: s.str(),
                auth: pdp::Auth::from_code(u32::from(s.u8() % 4)).unwrap_or(pdp::Auth::None),
            };
            reply_of(&cmd, &s, seed)
        }
        20 => {
            let cmd = pdp::SetDnsConfig {
                cid: s.u8() % 18,
                primary: s.str(),
                secondary: if s.bool() { Some(s.str()) } else { None },
            };
            reply_of(&cmd, &s, seed)
        }
        21 => reply_of(&pdp::ActivateContext { cid: s.u8() % 18 }, &s, seed),
        22 => reply_of(&pdp::DeactivateContext { cid: s.u8() % 18 }, &s, seed),
        23 => {
            let cmd = pdp::SetPdpActive {
                state: s.bool(),
                cid: s.u8() % 18,
            };
            reply_of(&cmd, &s, seed)
        }
        24 => reply_of(&sim::EnterPin { pin: s.str() }, &s, seed),
        25 => {
            let cmd = sim::EnterPuk {
                puk: s.str(),
                new_pin: s.str(),
            };
            reply_of(&cmd, &s, seed)
        }
        26 => {
            let cmd = dns::ResolveHost {
                cid: s.u8() % 18,
                host: s.str(),
            };
            reply_of(&cmd, &s, seed)
        }
        27 => {
            let cmd = power::SetPsm {
                periodic_tau: crate::Duration::from_secs(u64::from(s.u32())),
                active_time: crate::Duration::from_secs(u64::from(s.u32())),
            };
            reply_of(&cmd, &s, seed)
        }
        28 => {
            let act = if s.bool() {
                power::EdrxAct::LteM
            } else {
                power::EdrxAct::NbIot
            };
            let cmd = power::SetEdrx {
                enable: s.bool(),
                act,
                value: s.u8(),
            };
            reply_of(&cmd, &s, seed)
        }
        29 => {
            let act = if s.bool() {
                power::EdrxAct::LteM
            } else {
                power::EdrxAct::NbIot
            };
            let cmd = power::SetEdrxWithWindow {
                enable: s.bool(),
                act,
                paging_window: s.u8(),
                value: s.u8(),
            };
            reply_of(&cmd, &s, seed)
        }
        30 => {
            let cmd = general::SetFunctionality {
                fun: s.u8(),
                reset: s.bool(),
            };
            reply_of(&cmd, &s, seed)
        }
        31 => reply_of(&general::SetCmee(s.u8() % 4), &s, seed),
        32 => {
            let cmd = network::SetRegistrationUrc {
                domain: [
                    crate::at::urc::RegDomain::Cs,
                    crate::at::urc::RegDomain::Ps,
                    crate::at::urc::RegDomain::Eps,
                ][usize::from(s.u8() % 3)],
                mode: s.u8() % 4,
            };
            reply_of(&cmd, &s, seed)
        }
        33 => reply_of(&pdp::SetPsAttach(s.bool()), &s, seed),
        34 => reply_of(&general::FirmwareRevision, &s, seed),
        35 => reply_of(&general::QuectelFirmwareRevision, &s, seed),
        36 => reply_of(&network::GetCreg, &s, seed),
        37 => reply_of(&network::GetCgreg, &s, seed),
        38 => reply_of(&pdp::GetPsAttach, &s, seed),
        _ => reply_of(&pdp::GetPdpActive, &s, seed),
    }
}

// ---------------------------------------------------------------------------------------------
// The runner's intake path into the socket rings
// ---------------------------------------------------------------------------------------------

/// What the harness expects of socket slot `i` (reset when the slot is claimed or freed).
#[derive(Clone, Copy, Default)]
struct SlotBook {
    /// Payload bytes announced by `+QIRD: <n>` / `+QSSLRECV: <n>` headers for this slot.
    announced: u64,
    /// Bytes the application read out of the ring.
    read_out: u64,
}

/// The runner's receive path (`RunnerParts::ingest`: digester, URCs into the state and the
/// socket slots, payloads into the socket rings, lines to the command in flight) on resources
/// of `N` ingress bytes, `S` slots and `R`-byte rings, driven by a script drawn from `data`:
/// commands (socket reads into a slot, and others) answered by arbitrary bytes in arbitrary
/// pieces, bytes with no command in flight, the application reading the rings, sockets opened
/// and freed.
///
/// Checked after every step: a ring never holds more than was announced for its slot, nothing
/// goes missing between ring and reader (`read + buffered == received`), a read that succeeded
/// with `n` bytes put all `n` into the ring (or failed the socket with `Overflow`), and the
/// command bookkeeping is consistent (one end per command, the command is in flight exactly
/// until its end, no line reaches a command that is not in flight).
fn intake_with<const N: usize, const S: usize, const R: usize>(data: &[u8]) {
    use crate::socket::{Kind, Phase, SocketPool};
    let mut resources = crate::asynch::Resources::<N, S, R>::new();
    let (mut parts, modem) = crate::asynch::split(&mut resources, crate::asynch::Config::DEFAULT);
    let pool: &dyn SocketPool = modem.pool;
    let shared = &modem.core.shared;
    let mut book = [SlotBook::default(); S];
    let mut s = Src(data);
    let mut chunks = Chunks::new(s.u8());
    let mut fed = 0u64;
    // A command abandoned in the middle of its reply may leave the rest of a payload to come
    // (into its slot): after that, freeing a slot or attributing ring bytes to one read is no
    // longer exact, and those steps are left out.
    let mut clean = true;

    let check = |book: &[SlotBook; S], fed: u64| {
        for (i, b) in book.iter().enumerate() {
            let st = pool.state(i);
            let buffered = (R - pool.rx_free(i)) as u64;
            assert!(
                st.received <= b.announced,
                "slot {i}: {} bytes in the ring, {} announced",
                st.received,
                b.announced
            );
            assert!(st.received <= fed, "slot {i}: more bytes received than fed");
            // Bytes of a payload that lost bytes on the UART are dropped on purpose.
            assert_eq!(
                b.read_out
                    .saturating_add(buffered)
                    .saturating_add(st.discarded),
                st.received,
                "slot {i}: bytes lost between the ring and its reader"
            );
        }
    };

    for _ in 0..64 {
        if s.rest().is_empty() {
            break;
        }
        match s.u8() % 8 {
            // A command exchange: the command side begins a command, its reply streams in.
            0..=3 => {
                let slot = s.u8() % (S as u8 + 1); // S: a slot the pool does not have
                let kind = s.u8();
                let len = s.u16() % 1600 + 1;
                let read = crate::command::socket::Read {
                    id: slot,
                    tls: kind & 1 == 1,
                    len,
                };
                let expect = match kind % 6 {
                    0 | 1 => read.expect(),
                    2 => Expect::prefixed(b"+QIRD:"),
                    3 => Expect::BARE,
                    4 => Expect::PROMPT,
                    _ => Expect::NONE.with_call(),
                };
                let is_read = kind % 6 < 2;
                let mut acc = command::Acc::<usize>::new(&read);
                let fold = command::Listen::new(&mut acc, read.expect());
                let ends = core::cell::Cell::new(0u32);
                let announced = core::cell::Cell::new(0u64);
                let before = (slot < S as u8).then(|| pool.state(usize::from(slot)).received);
                let on = |ev: Event<'_>| {
                    assert_eq!(ends.get(), 0, "an event after the command's end");
                    match ev {
                        Event::Line(l) => {
                            assert!(!l.contains(&b'\n'), "a line with a line break");
                            if let Some(n) = crate::at::line::payload_len(l, &expect) {
                                announced.set(announced.get() + n as u64);
                            }
                        }
                        Event::Payload(_) => {
                            assert!(
                                expect.target == Expect::NO_TARGET,
                                "a payload for a socket slot went to the command"
                            )
                        }
                        Event::End(_) => ends.set(1),
                    }
                    if is_read {
                        fold.on(ev);
                    }
                };
                {
                    let _guard = shared.listen(&on);
                    shared.begin(expect);
                    let pieces = usize::from(s.u8() % 16) + 1;
                    for _ in 0..pieces {
                        let n = chunks.next(usize::from(s.u8()) + 1);
                        let piece = s.bytes(n);
                        fed += piece.len() as u64;
                        // Announced bytes count as soon as their header is out.
                        if let Some(b) = book.get_mut(usize::from(slot)) {
                            b.announced += announced.replace(0);
                        }
                        parts.ingest(piece);
                        if let Some(b) = book.get_mut(usize::from(slot)) {
                            b.announced += announced.replace(0);
                        }
                        check(&book, fed);
                        if shared.current().is_none() {
                            break;
                        }
                    }
                    assert_eq!(
                        ends.get(),
                        u32::from(shared.current().is_none()),
                        "the command completed without its end, or ended twice"
                    );
                    if shared.current().is_some() {
                        // The command side gives up (as after a reboot).
                        shared.complete();
                        clean = false;
                    }
                }
                let done = fold.done();
                if is_read
                    && clean
                    && let Some(Ok(n)) = acc.result(done)
                    && let Some(before) = before
                {
                    let i = usize::from(slot);
                    let st = pool.state(i);
                    assert!(n <= usize::from(len), "a read returned more than it asked");
                    assert!(
                        st.received - before >= n as u64
                            || st.phase == Phase::Failed(crate::Error::Overflow),
                        "slot {i}: a read of {n} bytes succeeded but {} reached the ring",
                        st.received - before
                    );
                }
            }
            // Bytes with no command in flight (URCs, noise, stale finals).
            4 | 5 => {
                let n = chunks.next(usize::from(s.u8()) + 1);
                let piece = s.bytes(n);
                fed += piece.len() as u64;
                parts.ingest(piece);
                assert!(shared.current().is_none(), "a command began by itself");
                check(&book, fed);
            }
            // The application reads a ring.
            6 => {
                let i = usize::from(s.u8()) % S;
                let mut out = [0u8; 300];
                let want = usize::from(s.u8()) % out.len() + 1;
                let n = pool.read(i, &mut out[..want]);
                book[i].read_out += n as u64;
                check(&book, fed);
            }
            // Sockets come and go.
            _ => {
                let i = usize::from(s.u8()) % S;
                match s.u8() % 3 {
                    0 if clean => {
                        if let Some(j) = pool.claim(Kind::Tcp, 1) {
                            pool.update(j, &mut |st| st.phase = Phase::Open);
                            book[j] = SlotBook::default();
                        }
                    }
                    1 if clean => {
                        pool.release(i);
                        book[i] = SlotBook::default();
                    }
                    _ => pool.update(i, &mut |st| st.phase = Phase::Open),
                }
                check(&book, fed);
            }
        }
    }
}

/// The runner's intake path with payloads into socket rings (see `intake_with`); the first
/// byte picks the resource sizes (the defaults, or small buffers that overflow often).
pub fn intake(data: &[u8]) {
    let Some((sel, rest)) = data.split_first() else {
        return;
    };
    if sel & 1 == 0 {
        intake_with::<256, 2, 2048>(rest);
    } else {
        intake_with::<48, 3, 100>(rest);
    }
}

// ---------------------------------------------------------------------------------------------
// URCs into the driver's state and the socket slots
// ---------------------------------------------------------------------------------------------

/// Feeds each line of `data` (after a few set-up bytes that open sockets in a 3-slot pool) to
/// `Urc::parse_line`, applies what parses to the driver state (`StateCell::apply`) and the
/// socket slots (`socket::apply_urc`), as the runner does, and checks what a user relies on:
/// a reboot (`RDY`) ends every socket and counts one boot; `pdpdeact` ends every socket on that
/// context and marks it; `closed` turns an open socket into a closed one with its rest to
/// read (nothing to read in push mode); `recv` marks that socket for a read; a URC about one socket leaves the others alone;
/// an unknown URC is counted. Also formats every URC with `Debug`. Must never panic otherwise.
pub fn urc_state(data: &[u8]) {
    use crate::at::urc::{QiUrc, QsslUrc};
    use crate::socket::{Kind, Phase, SlotState, SocketPool, Sockets};
    const S: usize = 3;
    let state = crate::state::StateCell::new();
    let pool = Sockets::<S, 16>::new();
    let pool_dyn: &dyn SocketPool = &pool;
    let mut s = Src(data);
    for _ in 0..S {
        let setup = s.u8();
        if setup & 3 == 0 {
            continue;
        }
        let kind = if setup & 4 == 0 { Kind::Tcp } else { Kind::Tls };
        let cid = (setup >> 3) % 4 + 1;
        if let Some(j) = pool.claim(kind, cid) {
            let phase = match setup & 3 {
                1 => Phase::Opening,
                2 => Phase::Open,
                _ => Phase::Abandoned,
            };
            // Some sockets in direct-push mode: `recv` URCs with a length carry their data.
            let push = setup & 0x40 != 0;
            pool.update(j, &mut |st| {
                st.phase = phase;
                st.push = push;
            });
        }
    }
    let slots = |p: &dyn SocketPool| -> [SlotState; S] { core::array::from_fn(|i| p.state(i)) };
    for line in s.rest().split(|&b| b == b'\n') {
        let line = crate::error::trim_ascii(line);
        if line.is_empty() {
            continue;
        }
        let Some(urc) = crate::at::Urc::parse_line(line) else {
            continue;
        };
        let mut text = heapless::String::<512>::new();
        let _ = core::fmt::write(&mut text, format_args!("{urc:?}"));
        let before = state.get();
        let old = slots(pool_dyn);
        state.apply(&urc);
        crate::socket::apply_urc(pool_dyn, &urc);
        let after = state.get();
        let new = slots(pool_dyn);
        assert_ne!(
            before.generation, after.generation,
            "a URC changed no generation"
        );
        let others_untouched = |id: u8| {
            for i in 0..S {
                if i != usize::from(id) {
                    assert_eq!(old[i], new[i], "a URC about socket {id} changed socket {i}");
                }
            }
        };
        match &urc {
            crate::at::Urc::Ready => {
                assert_eq!(after.starts(), before.starts().wrapping_add(1));
                if before.psm_asleep {
                    // A PSM wake: registration and contexts kept.
                    assert_eq!(after.wakes, before.wakes.wrapping_add(1));
                    assert_eq!(after.registration, before.registration);
                } else {
                    assert_eq!(after.boots, before.boots.wrapping_add(1));
                    assert_eq!(after.pdp_deactivated, 0);
                }
                for st in &new {
                    assert!(
                        !st.is_live() && st.phase != Phase::Opening,
                        "a socket survived a reboot: {:?}",
                        st.phase
                    );
                }
            }
            crate::at::Urc::QiUrc(QiUrc::PdpDeact(cid)) => {
                if *cid < 32 {
                    assert!(after.pdp_deactivated & (1 << cid) != 0);
                }
                for st in &new {
                    if st.cid == *cid {
                        assert!(
                            !st.is_live() && st.phase != Phase::Opening,
                            "a socket survived its context's deactivation"
                        );
                    }
                }
            }
            crate::at::Urc::QiUrc(QiUrc::Closed(id))
            | crate::at::Urc::QsslUrc(QsslUrc::Closed(id)) => {
                others_untouched(*id);
                if let (Some(o), Some(n)) = (old.get(usize::from(*id)), new.get(usize::from(*id)))
                    && o.phase == Phase::Open
                {
                    assert_eq!(n.phase, Phase::PeerClosed);
                    // In push mode the module holds nothing more: no read.
                    assert_eq!(
                        n.recv_pending, !n.push,
                        "a closed socket's rest is not read (or is, in push mode)"
                    );
                }
            }
            crate::at::Urc::QiUrc(QiUrc::Recv(id)) | crate::at::Urc::QsslUrc(QsslUrc::Recv(id)) => {
                others_untouched(*id);
                if let Some(n) = new.get(usize::from(*id)) {
                    assert!(n.recv_pending, "a recv URC did not mark its socket");
                }
            }
            crate::at::Urc::QiOpen { id, err } | crate::at::Urc::QsslOpen { id, err } => {
                others_untouched(*id);
                if let (Some(o), Some(n)) = (old.get(usize::from(*id)), new.get(usize::from(*id)))
                    && matches!(o.phase, Phase::Opening | Phase::Abandoned)
                {
                    assert_eq!(n.open_result, Some(*err));
                }
            }
            crate::at::Urc::Unknown(_) => {
                assert_eq!(after.unknown_urcs, before.unknown_urcs.wrapping_add(1));
                assert_eq!(old, new, "an unknown URC changed a socket");
            }
            _ => assert_eq!(old, new, "a URC about no socket changed a socket"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A byte stream from the network, and a small executor
// ---------------------------------------------------------------------------------------------

/// Polls `f` with a no-op waker up to `polls` times (`None`: still pending then). Nothing in
/// the fuzzed paths waits for anything but the transport, which never blocks, or a timer,
/// which the bound cuts short.
#[cfg(feature = "mqtt")] // the transports fuzzed here are MQTT ones (cloud features imply it)
fn drive<F: core::future::Future>(f: F, polls: usize) -> Option<F::Output> {
    let mut f = core::pin::pin!(f);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    for _ in 0..polls {
        if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

/// A transport whose peer sends `input` in pieces of arbitrary sizes; a read sometimes
/// waits once before it completes (so that a caller can drop it half-way), the end of the input
/// is the end of the stream (`Ok(0)`), or a closed connection when `eof_error` is set. Writes
/// are taken whole and counted.
#[cfg(feature = "mqtt")]
struct FuzzIo<'a> {
    input: &'a [u8],
    chunks: Chunks,
    max: usize,
    stall: u8,
    stalled: bool,
    eof_error: bool,
    written: usize,
}

#[cfg(feature = "mqtt")]
impl<'a> FuzzIo<'a> {
    fn new(input: &'a [u8], seed: u8, max: usize, stall: u8, eof_error: bool) -> Self {
        Self {
            input,
            chunks: Chunks::new(seed),
            max,
            stall,
            stalled: false,
            eof_error,
            written: 0,
        }
    }
}

#[cfg(feature = "mqtt")]
impl embedded_io_async::ErrorType for FuzzIo<'_> {
    type Error = crate::Error;
}

#[cfg(feature = "mqtt")]
impl embedded_io_async::Read for FuzzIo<'_> {
    async fn read(&mut self, out: &mut [u8]) -> Result<usize, crate::Error> {
        // Wait once (nothing consumed yet: a dropped read loses nothing), unless the last read
        // waited already.
        if !self.stalled && self.stall != 0 && self.chunks.next(256) <= usize::from(self.stall) {
            self.stalled = true;
            let mut first = true;
            core::future::poll_fn(|_| {
                if core::mem::take(&mut first) {
                    core::task::Poll::Pending
                } else {
                    core::task::Poll::Ready(())
                }
            })
            .await;
        }
        self.stalled = false;
        if self.input.is_empty() {
            return if self.eof_error {
                Err(crate::Error::ConnectionClosed)
            } else {
                Ok(0)
            };
        }
        let n = self
            .chunks
            .next(self.max)
            .min(out.len())
            .min(self.input.len());
        let (now, rest) = self.input.split_at(n);
        out[..n].copy_from_slice(now);
        self.input = rest;
        Ok(n)
    }
}

#[cfg(feature = "mqtt")]
impl embedded_io_async::Write for FuzzIo<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, crate::Error> {
        self.written += buf.len();
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), crate::Error> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// MQTT: the receive guard and the serve/outbox loop
// ---------------------------------------------------------------------------------------------

/// What the MQTT receive guard must do with `input` for a receive buffer of `limit` bytes:
/// (bytes passed to minimq, packets skipped, topic of the last skipped one).
#[cfg(feature = "mqtt")]
fn guard_model(
    input: &[u8],
    limit: usize,
    passed: &mut heapless::Vec<u8, 4096>,
) -> (
    u32,
    Option<Option<heapless::String<{ crate::mqtt::MAX_STORED_TOPIC_LEN }>>>,
) {
    let mut pos = 0;
    let mut skipped = 0u32;
    let mut last = None;
    while pos < input.len() {
        // The fixed header: the first byte, then a varint of up to four bytes.
        let mut value = 0usize;
        let mut hdr = 1;
        let mut done = None;
        while pos + hdr < input.len() {
            let b = input[pos + hdr];
            value |= usize::from(b & 0x7f) << (7 * (hdr - 1));
            hdr += 1;
            if b & 0x80 == 0 {
                done = Some(true);
                break;
            }
            if hdr == 5 {
                done = Some(false);
                break;
            }
        }
        let end = |n: usize| (pos + n).min(input.len());
        match done {
            // The stream ends inside the header: minimq sees what there is.
            None => {
                passed.extend_from_slice(&input[pos..]).unwrap();
                break;
            }
            // Not a valid length: minimq sees the header and reports the malformed packet.
            Some(false) => {
                passed.extend_from_slice(&input[pos..end(hdr)]).unwrap();
                pos = end(hdr);
            }
            Some(true) if hdr + value <= limit => {
                passed
                    .extend_from_slice(&input[pos..end(hdr + value)])
                    .unwrap();
                pos = end(hdr + value);
            }
            Some(true) => {
                // Counted once its header is read (also when the stream ends inside it); its
                // topic is known once read whole.
                let body = &input[end(hdr)..end(hdr + value)];
                let publish = input[pos] >> 4 == 3;
                pos = end(hdr + value);
                skipped += 1;
                let topic = (publish && body.len() >= 2)
                    .then(|| {
                        let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                        (len <= crate::mqtt::MAX_DROPPED_TOPIC_LEN)
                            .then(|| body.get(2..2 + len))
                            .flatten()
                            .and_then(|t| core::str::from_utf8(t).ok())
                            .and_then(|t| heapless::String::try_from(t).ok())
                    })
                    .flatten();
                last = Some(topic);
            }
        }
    }
    (skipped, last)
}

/// The MQTT receive guard (which keeps packets larger than minimq's receive buffer away from
/// it) over a stream of arbitrary bytes in arbitrary pieces, read in arbitrary sizes, with
/// reads dropped half-way: what it passes and skips must be exactly what the packet framing
/// says (compared with a model), whatever the pieces and the dropped reads.
#[cfg(feature = "mqtt")]
pub fn mqtt_guard(data: &[u8]) {
    use embedded_io_async::Read;
    let mut s = Src(data);
    let limit = usize::from(s.u16() % 600) + 2;
    let seed = s.u8();
    let max = usize::from(s.u8()) + 1;
    let stall = s.u8();
    let input = s.rest();
    if input.len() > 4096 {
        return;
    }
    let log = crate::mqtt::DropCell::new(core::cell::RefCell::new(crate::mqtt::DropLog::default()));
    let io = FuzzIo::new(input, seed, max, stall, false);
    let mut guard = crate::mqtt::Guard::new(io, limit, &log);
    let mut out: heapless::Vec<u8, 4096> = heapless::Vec::new();
    let mut sizes = Chunks::new(seed ^ 0x5a);
    let mut pending_reads = 0usize;
    loop {
        let mut buf = [0u8; 64];
        let k = sizes.next(buf.len());
        // One poll: a read that waits is dropped (as `select` drops it in `serve`).
        match drive(guard.read(&mut buf[..k]), 1) {
            Some(Ok(0)) => break,
            Some(Ok(n)) => out.extend_from_slice(&buf[..n]).unwrap(),
            Some(Err(e)) => panic!("the transport never fails here: {e:?}"),
            None => {
                pending_reads += 1;
                assert!(pending_reads < 100_000, "the guard makes no progress");
            }
        }
    }
    let mut expected = heapless::Vec::new();
    let (skipped, last) = guard_model(input, limit, &mut expected);
    assert!(
        out == expected,
        "the guard passed other bytes than the packets that fit"
    );
    log.lock(|l| {
        let l = l.borrow();
        assert_eq!(l.count, skipped, "skipped packets miscounted");
        assert_eq!(l.last().map(|d| d.topic), last);
        if let Some(d) = &l.last() {
            assert!(d.size > limit && d.capacity == limit);
        }
    });
}

/// An MQTT session against a broker that sends arbitrary bytes: `CONNECT` (minimq parses
/// `CONNACK`), the re-subscription, then [`MqttConnection::serve`] publishing from an
/// [`Outbox`] while messages, acknowledgements and garbage arrive in arbitrary pieces, with
/// reads dropped half-way; then a second connection on the same session and outbox. The outbox
/// never holds more messages than were queued (nothing is duplicated by the retry logic), and
/// every run ends. Must never panic otherwise.
///
/// [`MqttConnection::serve`]: crate::mqtt::MqttConnection::serve
/// [`Outbox`]: crate::mqtt::Outbox
#[cfg(feature = "mqtt")]
pub fn mqtt_session(data: &[u8]) {
    use crate::mqtt::{Mqtt, MqttConfig, Outbox, QoS, Transport};
    let mut s = Src(data);
    let rx_size = [64, 128, 300, 1024][usize::from(s.u8() % 4)];
    let config = MqttConfig::new(
        "broker",
        1883,
        "fuzz",
        Transport::Tcp,
        crate::asynch::Apn::new("internet"),
    );
    let mut buffer = [0u8; 3072];
    let Ok(mut mqtt) = Mqtt::new(config, &mut buffer, rx_size) else {
        return;
    };
    if s.bool() {
        let _ = mqtt.subscribe_on_connect("down/+", QoS::AtLeastOnce);
    }
    let outbox: Outbox<4, 32> = Outbox::new();
    for k in 0..(s.u8() % 6) {
        let qos = match s.u8() % 3 {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        let payload = [k; 8];
        let _ = outbox.try_publish("up/fuzz", &payload, qos);
    }
    let queued = outbox.len();
    let first = usize::from(s.u16());
    for round in 0..2 {
        let seed = s.u8();
        let max = usize::from(s.u8()) + 1;
        let stall = s.u8();
        let input = if round == 0 { s.bytes(first) } else { s.rest() };
        let io = FuzzIo::new(input, seed, max, stall, true);
        let run = async {
            let Ok(mut conn) = mqtt.establish(io).await else {
                return;
            };
            let _why = conn
                .serve(&outbox, |topic, payload| {
                    assert!(payload.len() <= rx_size, "a message larger than the buffer");
                    let _ = topic.len();
                })
                .await;
        };
        let _ = drive(run, 20_000);
        assert!(
            outbox.len() <= queued,
            "the outbox holds more than was queued"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// MQTT 3.1.1: the codec and the session
// ---------------------------------------------------------------------------------------------

/// The MQTT 3.1.1 client against a broker that sends arbitrary bytes.
///
/// First the decoder alone: each packet framed in the input (fixed header by
/// `codec::parse_header`) is decoded; a PUBLISH that decodes must encode back to the same body.
/// Then a [`Session`](crate::mqtt::v311::Session) (receive buffer of arbitrary size, clean
/// session on or off): CONNECT (the input often starts with a CONNACK), a subscribe and
/// publishes of QoS 0 and 1, then `poll` until the input ends, with reads that wait and polls
/// dropped half-way; then a second connection on the same session with the rest of the input.
/// Inbound messages never exceed the receive buffer, the session's bookkeeping stays
/// consistent, and every operation is exactly one of pending, complete or invalidated. Must
/// never panic otherwise.
#[cfg(feature = "mqtt311")]
pub fn mqtt311(data: &[u8]) {
    use crate::mqtt::v311::{Options, QoS, Session, codec};
    // The decoder over the raw bytes.
    let mut rest = data;
    while let Ok(Some((first, len, h))) = codec::parse_header(rest) {
        let Some(body) = rest.get(h..h + len) else {
            break;
        };
        if let Ok(codec::Packet::Publish(p)) = codec::decode(first, body) {
            assert!(p.qos <= 2 && !p.topic.is_empty());
            let mut out = [0u8; 4096];
            if let Ok(n) =
                codec::encode_publish(&mut out, p.topic, p.payload, p.qos, p.retain, p.dup, p.id)
            {
                let (_, _, h2) = codec::parse_header(&out[..n]).unwrap().unwrap();
                assert_eq!(
                    &out[h2..n],
                    body,
                    "a PUBLISH does not encode back to itself"
                );
            }
        }
        rest = &rest[h + len..];
    }

    let mut s = Src(data);
    let mode = s.u8();
    let rx_size = [4, 16, 64, 200][usize::from(mode % 4)];
    let clean_session = mode & 4 != 0;
    let options = Options {
        client_id: "fuzz-311",
        keepalive_s: 60,
        clean_session,
        auth: Some(("user", b"password")),
        will: None,
    };
    let mut buffer = [0u8; 1024];
    let Ok(mut session) = Session::new(options, &mut buffer, rx_size) else {
        return;
    };
    let first = usize::from(s.u16() % 2048);
    let mut ops: heapless::Vec<crate::mqtt::v311::Op, 32> = heapless::Vec::new();
    for round in 0..2 {
        let seed = s.u8();
        let max = usize::from(s.u8()) + 1;
        let stall = s.u8();
        let actions = s.u8();
        let input = if round == 0 { s.bytes(first) } else { s.rest() };
        let io = FuzzIo::new(input, seed, max, stall, round == 1);
        let run = async {
            let Ok(mut conn) = session.connect(io).await else {
                return;
            };
            if actions & 1 != 0
                && let Ok(op) = conn.subscribe(&[("down/+", QoS::AtLeastOnce)]).await
            {
                let _ = ops.push(op);
            }
            for k in 0..(actions >> 1) % 8 {
                let qos = if k % 2 == 0 {
                    QoS::AtLeastOnce
                } else {
                    QoS::AtMostOnce
                };
                match conn.publish("up/fuzz", &[k; 40], qos).await {
                    Ok(Some(op)) => {
                        let _ = ops.push(op);
                    }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
            let mut polls = 0;
            loop {
                polls += 1;
                if polls > 2_000 {
                    break;
                }
                // A poll that waits is dropped and started again (as `select` does).
                match drive(conn.poll(), 3) {
                    Some(Ok(Some(m))) => {
                        assert!(
                            m.payload().len() <= rx_size,
                            "a message larger than the buffer"
                        );
                        assert!(m.topic().len() <= rx_size);
                    }
                    Some(Ok(None)) | None => {}
                    Some(Err(crate::mqtt::v311::Error::SubscribeRefused)) => {}
                    Some(Err(_)) => break,
                }
                assert!(conn.session().is_consistent());
            }
        };
        let _ = drive(run, 50_000);
        assert!(session.is_consistent(), "the session's bookkeeping broke");
        for op in &ops {
            let states = [
                session.is_pending(op),
                session.is_complete(op),
                session.is_invalidated(op),
            ];
            assert_eq!(
                states.iter().filter(|b| **b).count(),
                1,
                "an operation in {states:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cloud answers
// ---------------------------------------------------------------------------------------------

/// Aliyun dynamic registration against a platform that answers arbitrary bytes: the MQTT 3.1.1
/// exchange (`CONNACK`, `SUBACK`, `PINGRESP`, `PUBLISH` QoS 0/1 on any topic) and the JSON
/// answer. The first byte picks the mode: a raw byte stream, or a valid `CONNACK` and one
/// `PUBLISH` on the result topic whose payload is the rest (to reach the JSON parser). Credentials
/// it returns must be well-formed; stored credentials (`DeviceCredentials::decode`) that parse
/// must encode back to the same bytes. Must never panic otherwise.
#[cfg(feature = "aliyun")]
pub fn aliyun_register(data: &[u8]) {
    use crate::cloud::aliyun::{
        Device, DeviceCredentials, Random, Registration, RegistrationKind, SECRET_MAX,
    };
    let mut s = Src(data);
    let mode = s.u8();
    let kind = if mode & 2 == 0 {
        RegistrationKind::Register
    } else {
        RegistrationKind::Regnwl
    };
    let Ok(device) = Device::new("a1X2bEnP82z", "example1") else {
        return;
    };
    let Ok(random) = Random::new("8Ygb7ULYh53B6OA") else {
        return;
    };
    let reg = Registration::new(device, "7jluWm1zql7bt8qK", kind, random)
        .subscribe_to_result(mode & 4 != 0);
    let buf_len = [32, 128, 512, 1024][usize::from((mode >> 3) % 4)];
    let seed = s.u8();
    let max = usize::from(s.u8()) + 1;
    let stall = s.u8();
    // A CONNACK, then one PUBLISH (QoS 0 or 1) on the result topic carrying the rest.
    let mut framed: heapless::Vec<u8, 2048> = heapless::Vec::new();
    let input: &[u8] = if mode & 1 == 1 {
        let payload = s.rest();
        let topic = kind.result_topic().as_bytes();
        let qos1 = mode & 0x20 != 0;
        let body = 2 + topic.len() + if qos1 { 2 } else { 0 } + payload.len();
        if body >= 16384 {
            return;
        }
        let mut put = |b: &[u8]| framed.extend_from_slice(b).is_ok();
        let mut ok = put(&[0x20, 0x02, 0x00, 0x00]);
        ok &= put(&[if qos1 { 0x32 } else { 0x30 }]);
        ok &= if body < 128 {
            put(&[body as u8])
        } else {
            put(&[(body % 128) as u8 | 0x80, (body / 128) as u8])
        };
        ok &= put(&(topic.len() as u16).to_be_bytes());
        ok &= put(topic);
        if qos1 {
            ok &= put(&[0x12, 0x34]);
        }
        ok &= put(payload);
        if !ok {
            return;
        }
        &framed
    } else {
        s.rest()
    };
    let mut io = FuzzIo::new(input, seed, max, stall, false);
    let mut buf = [0u8; 1024];
    let r = drive(
        crate::cloud::aliyun::register(&mut io, &reg, &mut buf[..buf_len]),
        10_000,
    );
    match r {
        Some(Ok(DeviceCredentials::DeviceSecret(secret))) => {
            assert_eq!(kind, RegistrationKind::Register);
            assert!(secret.expose().len() <= SECRET_MAX);
        }
        Some(Ok(DeviceCredentials::Token { client_id, .. })) => {
            assert_eq!(kind, RegistrationKind::Regnwl);
            assert!(!client_id.is_empty() && client_id.bytes().all(|b| b.is_ascii_graphic()));
        }
        _ => {}
    }
    // The same bytes as a stored record.
    if let Ok(creds) = DeviceCredentials::decode(data) {
        let mut out = [0u8; crate::cloud::aliyun::ENCODED_MAX];
        let n = creds.encode(&mut out).expect("a decoded record encodes");
        assert_eq!(
            &out[..n],
            data,
            "a stored record does not encode back to itself"
        );
    }
}

/// Aliyun OTA against a platform and a file server that send arbitrary bytes. The first byte
/// picks the target: an upgrade message (`parse_upgrade`: what parses must be within its
/// bounds, carry a signature and an `https://` URL that parses), a response head
/// (`parse_head` and `check_range`), a URL, or a whole range fetch (`get_range`) over a stream
/// that delivers the rest in arbitrary pieces into a head buffer and a body buffer of arbitrary
/// sizes (what it returns must fit the range asked for). Must never panic.
#[cfg(all(feature = "aliyun", feature = "ota"))]
pub fn aliyun_ota(data: &[u8]) {
    use crate::cloud::aliyun::ota::{SIGNATURE_MAX, URL_MAX, parse_upgrade};
    use crate::ota::http::{Url, check_range, get_range, parse_head};
    let mut s = Src(data);
    let mode = s.u8();
    match mode % 4 {
        0 => {
            if let Ok(u) = parse_upgrade(s.rest()) {
                assert!(u.size > 0 && u.url.len() <= URL_MAX);
                assert!(!u.signature.is_empty() && u.signature.len() <= SIGNATURE_MAX);
                assert!(Url::parse(&u.url).is_ok());
            }
        }
        1 => {
            if let Ok(h) = parse_head(s.rest()) {
                let first = u64::from(mode);
                if let Ok(len) = check_range(&h, first, first.saturating_add(4095)) {
                    assert!((1..=4096).contains(&len));
                }
            }
        }
        2 => {
            if let Ok(text) = core::str::from_utf8(s.rest())
                && let Ok(u) = Url::parse(text)
            {
                assert!(!u.host.is_empty() && u.port != 0 && u.path.starts_with('/'));
            }
        }
        _ => {
            let head_len = [16, 64, 256, 512][usize::from((mode >> 2) % 4)];
            let want = u64::from(s.u8()).saturating_mul(16).saturating_add(1);
            let first = u64::from(s.u8()).saturating_mul(1000);
            let seed = s.u8();
            let max = usize::from(s.u8()) + 1;
            let stall = s.u8();
            let mut io = FuzzIo::new(s.rest(), seed, max, stall, mode & 0x40 != 0);
            let Ok(url) = Url::parse("https://ota.example.com/fw.bin?Signature=x") else {
                return;
            };
            let mut head = [0u8; 512];
            let mut body = [0u8; 4096];
            let r = drive(
                get_range(
                    &mut io,
                    &url,
                    first,
                    first.saturating_add(want - 1),
                    &mut head[..head_len],
                    &mut body,
                    crate::Duration::from_secs(5),
                ),
                10_000,
            );
            if let Some(Ok(f)) = r {
                assert!(f.len as u64 <= want && f.len > 0);
            }
        }
    }
}

/// AWS IoT fleet provisioning answers: the `accepted` answers of `CreateCertificateFromCsr`,
/// `CreateKeysAndCertificate` and `RegisterThing`, and `rejected` answers, parsed from arbitrary
/// JSON into a buffer of arbitrary size (first byte: which answer, second: buffer size). What
/// parses must be well-formed and lie in the buffer; identity records
/// (`DeviceIdentity::decode`) that parse must encode back to the same bytes. Must never panic
/// otherwise.
#[cfg(feature = "aws")]
pub fn aws_fleet(data: &[u8]) {
    use crate::cloud::aws::fleet;
    let mut s = Src(data);
    let which = s.u8();
    let cap = usize::from(s.u16() % 4097);
    let payload = s.rest();
    let mut buf = [0u8; 4096];
    let start = buf.as_ptr() as usize;
    let within = |t: &str| {
        let p = t.as_ptr() as usize;
        t.is_empty() || (p >= start && p + t.len() <= start + cap)
    };
    match which % 4 {
        0 | 1 => {
            let with_key = which % 4 == 1;
            if let Ok((cert, rest)) = fleet::parse_certificate(payload, &mut buf[..cap], with_key) {
                assert!(
                    cert.certificate_pem
                        .starts_with("-----BEGIN CERTIFICATE-----")
                );
                assert!(!cert.certificate_id.is_empty() && !cert.ownership_token.is_empty());
                assert_eq!(cert.private_key_pem.is_some(), with_key);
                let used = cert.certificate_id.len()
                    + cert.certificate_pem.len()
                    + cert.ownership_token.len()
                    + cert.private_key_pem.map_or(0, str::len);
                assert_eq!(used + rest.len(), cap, "the answer overlaps the rest");
                assert!(within(cert.certificate_id) && within(cert.certificate_pem));
                assert!(within(cert.ownership_token));
                assert!(cert.private_key_pem.is_none_or(within));
            }
        }
        2 => {
            if let Ok((thing, rest)) = fleet::parse_thing(payload, &mut buf[..cap]) {
                assert!(!thing.thing_name.is_empty() && within(thing.thing_name));
                let mut used = thing.thing_name.len();
                assert!(
                    thing.device_configuration.len() <= crate::cloud::aws::MAX_DEVICE_CONFIGURATION
                );
                for (k, v) in thing.device_configuration.iter() {
                    assert!(within(k) && within(v));
                    assert!(thing.device_configuration.get(k).is_some());
                    used += k.len() + v.len();
                }
                assert_eq!(used + rest.len(), cap, "the answer overlaps the rest");
            }
        }
        _ => {
            let op = crate::cloud::aws::Operation::RegisterThing;
            if let Ok(r) = fleet::parse_rejection(op, payload) {
                assert!(r.error_code.len() <= crate::cloud::aws::MAX_ERROR_CODE);
                assert!(r.error_message.len() <= crate::cloud::aws::MAX_ERROR_MESSAGE);
            }
        }
    }
    if let Ok(id) = crate::cloud::aws::DeviceIdentity::decode(data) {
        let mut out = [0u8; 4096];
        let n = id.encode(&mut out).expect("a decoded record encodes");
        assert_eq!(
            &out[..n],
            &data[..n],
            "a stored identity does not encode back to itself"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// PEM and keys
// ---------------------------------------------------------------------------------------------

/// PEM text (certificates, keys) and key bytes from the user or a store: `pem::check` for both
/// kinds, `pem::decode` with and without a label into a buffer of arbitrary size, and (feature
/// `aws`) P-256 keys from SEC1 DER and from a scalar. A decode into a buffer of 3/4 of the text
/// length never runs out of room; what decodes is one DER `SEQUENCE`; a key that parses writes
/// back as a key that parses to the same public key. Must never panic otherwise.
pub fn pem_keys(data: &[u8]) {
    use crate::pem::{PemError, PemKind};
    let Some((&sel, text)) = data.split_first() else {
        return;
    };
    let mut out = [0u8; 4096];
    let cert = crate::pem::check(text, PemKind::Certificate);
    let key = crate::pem::check(text, PemKind::PrivateKey);
    let label = match sel % 4 {
        0 => None,
        1 => Some("CERTIFICATE"),
        2 => Some("EC PRIVATE KEY"),
        _ => Some("PRIVATE KEY"),
    };
    const CAP: usize = 4096;
    let room = (text.len() * 3 / 4 + 3).min(CAP);
    match crate::pem::decode(text, label, &mut out[..room]) {
        Ok(der) => {
            assert_eq!(
                der.first(),
                Some(&0x30),
                "a decoded block that is not a SEQUENCE"
            );
            assert!(der.len() <= room);
        }
        Err(PemError::BufferTooSmall) if room < CAP => {
            panic!("3/4 of the text was not enough room for its DER")
        }
        Err(_) => {}
    }
    if cert.is_ok() || key.is_ok() {
        let r = crate::pem::decode(text, None, &mut out[..room]);
        assert!(
            r.is_ok() || room == CAP,
            "a PEM that checks does not decode: {r:?}"
        );
    }
    // A smaller buffer: running out of room is an error, never a panic or a cut DER.
    let small = usize::from(sel) % 300;
    if let Ok(der) = crate::pem::decode(text, label, &mut out[..small]) {
        assert!(der.len() <= small);
    }
    #[cfg(feature = "aws")]
    {
        use crate::cloud::aws::DeviceKey;
        for der in [text, data] {
            if let Ok(k) = DeviceKey::from_sec1_der(der) {
                let mut again = [0u8; crate::cloud::aws::SEC1_DER_LEN];
                let n = k.to_sec1_der(&mut again).expect("a parsed key writes back");
                let k2 = DeviceKey::from_sec1_der(&again[..n]).expect("a written key parses");
                assert_eq!(k.public_key_uncompressed(), k2.public_key_uncompressed());
            }
        }
        // A scalar makes a public key (slow): one input in 16.
        if sel & 0xf0 == 0
            && let Some(scalar) = text.get(..32)
        {
            let _ = DeviceKey::from_scalar_bytes(scalar);
        }
    }
}

/// AWS OTA: a data block (CBOR `f,i,l,p`), a `$next/get` / `notify-next` message (job
/// document JSON), a stream rejection (CBOR), a GetStream request encoded into a buffer of any
/// size, a code-signing certificate (DER walked to the public key), and the JSON stream
/// format: a data block (base64 `p` decoded into a block buffer of any size), a rejection, a
/// GetStream request (hex bitmap). Must never panic; what parses must be consistent.
#[cfg(all(feature = "aws", feature = "ota"))]
pub fn aws_ota(data: &[u8]) {
    use crate::cloud::aws::ota::{
        Job, MAX_JOB_ID, MAX_STREAM, decode_block, decode_block_json, decode_rejection,
        decode_rejection_json, encode_get_stream, encode_get_stream_json, parse_job,
    };
    let mut s = Src(data);
    let which = s.u8();
    match which % 8 {
        0 => {
            let payload = s.rest();
            if let Ok(b) = decode_block(payload) {
                assert_eq!(b.len as usize, b.payload.len());
                let start = payload.as_ptr() as usize;
                let p = b.payload.as_ptr() as usize;
                assert!(
                    b.payload.is_empty()
                        || (p >= start && p + b.payload.len() <= start + payload.len())
                );
            }
        }
        1 => {
            if let Ok(Job::Ota(j)) = parse_job(s.rest()) {
                assert!(!j.job_id.is_empty() && j.job_id.len() <= MAX_JOB_ID);
                assert!(!j.stream.is_empty() && j.stream.len() <= MAX_STREAM);
                assert!(j.size > 0 && !j.signature.is_empty());
            }
        }
        2 => {
            if let Ok(r) = decode_rejection(s.rest()) {
                let _ = r.code();
            }
        }
        3 => {
            let cap = usize::from(s.u16() % 512);
            let file_id = s.u8();
            let block = s.u32();
            let offset = s.u32();
            let n = s.u32();
            let bitmap_len = usize::from(s.u8() % 64);
            let rest = s.rest();
            let (bitmap, token) = rest.split_at(bitmap_len.min(rest.len()));
            let token = core::str::from_utf8(token).unwrap_or("t");
            let mut out = [0u8; 512];
            if let Ok(len) =
                encode_get_stream(&mut out[..cap], token, file_id, block, offset, bitmap, n)
            {
                assert!(len <= cap);
                // What is encoded decodes: a map of six keys, the bitmap as a byte string.
                let mut d = minicbor::Decoder::new(&out[..len]);
                assert_eq!(d.map().unwrap(), Some(6));
                assert_eq!(d.str().unwrap(), "c");
                assert_eq!(d.str().unwrap(), token);
                assert_eq!(d.str().unwrap(), "f");
                assert_eq!(d.u8().unwrap(), file_id);
                assert_eq!(d.str().unwrap(), "l");
                assert_eq!(d.u32().unwrap(), block);
                assert_eq!(d.str().unwrap(), "o");
                assert_eq!(d.u32().unwrap(), offset);
                assert_eq!(d.str().unwrap(), "b");
                assert_eq!(d.bytes().unwrap(), bitmap);
                assert_eq!(d.str().unwrap(), "n");
                assert_eq!(d.u32().unwrap(), n);
            }
        }
        4 => {
            let _ = crate::ota::CodeSigningKey::from_certificate_der(s.rest());
            let mut out = [0u8; 80];
            let _ = crate::ota::decode_base64(data, &mut out);
        }
        5 => {
            let cap = usize::from(s.u16() % 4097);
            let mut buf = [0u8; 4096];
            let buf = &mut buf[..cap];
            let start = buf.as_ptr() as usize;
            if let Ok(b) = decode_block_json(s.rest(), buf) {
                assert_eq!(b.len as usize, b.payload.len());
                assert!(b.payload.len() <= cap);
                assert!(b.payload.is_empty() || b.payload.as_ptr() as usize == start);
            }
        }
        6 => {
            if let Ok(r) = decode_rejection_json(s.rest()) {
                let _ = r.code();
            }
        }
        _ => {
            let cap = usize::from(s.u16() % 512);
            let file_id = s.u8();
            let block = s.u32();
            let offset = s.u32();
            let n = s.u32();
            let bitmap_len = usize::from(s.u8() % 64);
            let rest = s.rest();
            let (bitmap, token) = rest.split_at(bitmap_len.min(rest.len()));
            let token = core::str::from_utf8(token).unwrap_or("t");
            let mut out = [0u8; 512];
            if let Ok(len) =
                encode_get_stream_json(&mut out[..cap], token, file_id, block, offset, bitmap, n)
            {
                assert!(len <= cap);
                // What is encoded parses back: the same values, the bitmap in hex, byte 0 first.
                #[derive(serde::Deserialize)]
                struct Req<'a> {
                    c: &'a str,
                    f: u8,
                    l: u32,
                    o: u32,
                    b: &'a str,
                    n: u32,
                }
                let (r, used) = serde_json_core::from_slice::<Req<'_>>(&out[..len]).unwrap();
                assert_eq!(used, len);
                assert_eq!(
                    (r.c, r.f, r.l, r.o, r.n),
                    (token, file_id, block, offset, n)
                );
                let hex = r.b.strip_prefix("0x").unwrap();
                assert_eq!(hex.len(), 2 * bitmap.len());
                for (i, byte) in bitmap.iter().enumerate() {
                    assert_eq!(u8::from_str_radix(&hex[2 * i..2 * i + 2], 16), Ok(*byte));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    /// Every seed of `fuzz/seeds/<target>/` passes its target (the harness's checks hold on
    /// well-formed exchanges), and so do the inputs the targets once failed on (kept in
    /// `fuzz/seeds/` as regressions).
    /// A target's name and its entry point.
    type Target = (&'static str, fn(&[u8]));

    #[test]
    fn seeds_pass_their_targets() {
        let entries: &[Target] = &[
            ("digester", super::digest_bytes),
            ("responses", super::parse_responses),
            ("commands", super::command_replies),
            ("intake", super::intake),
            ("urc_state", super::urc_state),
            #[cfg(feature = "mqtt")]
            ("mqtt_guard", super::mqtt_guard),
            #[cfg(feature = "mqtt")]
            ("mqtt_session", super::mqtt_session),
            #[cfg(feature = "mqtt311")]
            ("mqtt311", super::mqtt311),
            #[cfg(feature = "aliyun")]
            ("aliyun_register", super::aliyun_register),
            #[cfg(feature = "aws")]
            ("aws_fleet", super::aws_fleet),
            #[cfg(all(feature = "aws", feature = "ota"))]
            ("aws_ota", super::aws_ota),
            #[cfg(all(feature = "aliyun", feature = "ota"))]
            ("aliyun_ota", super::aliyun_ota),
            ("pem_keys", super::pem_keys),
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
        let mut ran = 0;
        for (target, entry) in entries {
            let dir = root.join(target);
            for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
                let path = file.unwrap().path();
                entry(&std::fs::read(&path).unwrap());
                ran += 1;
            }
        }
        assert!(ran >= entries.len());
    }
}
