//! The workload of the instruction-count benchmark (`scripts/cpu-bench.sh` runs it under
//! callgrind and writes the `cpu` section of `docs/perf.md`).
//!
//! ```text
//! cpu <digester|intake> <qird|control> <chunk bytes> <stream bytes>
//! ```
//!
//! generates a Quectel-like stream of about `<stream bytes>` and feeds it, `<chunk bytes>` at a
//! time, either through the digester alone (its feeder, as tests and fuzz targets drive it) or
//! through the runner's intake path (`Runner::ingest`: digester, URCs applied to the state and
//! the socket slots, payloads copied into the socket ring, responses into the response slot).
//! Callgrind counts only inside the feeding function (`--toggle-collect`), so stream generation
//! and the emulated command side (publishing what a command expects, taking its response,
//! reading the socket ring) are not counted.
//!
//! The stream is a sequence of exchanges: URCs, then one command's reply (sometimes with URCs
//! inside it). A chunk never runs past the end of a reply, because the modem cannot answer the
//! next command before the driver has sent it.
//!
//! Without arguments (`cargo bench`, `cargo test --benches`) it checks, natively and quickly,
//! that every configuration delivers every reply and every payload byte.
//!
//! Built by `scripts/cpu-bench.sh` (with `--cfg quectel_cpu_bench_cs`), it runs with a model of
//! a Cortex-M's critical section, not the host's (see `cortex_m_like`).

// `quectel_cpu_bench_cs` is set by scripts/cpu-bench.sh only (RUSTFLAGS).
#![allow(unexpected_cfgs)]

use quectel::__fuzz::{BenchResources, DigestBench, IntakeBench};
use quectel::at::Expect;

/// The critical section this benchmark runs with: a model of a single-core Cortex-M's, for which
/// the driver is written, instead of the host implementation the tests use
/// (`critical-section`'s `std` feature: a thread-local flag and a global `std` mutex, about 100
/// x86 instructions per section, which would make every section the driver takes cost what a
/// dozen lines of parsing cost, a cost no firmware pays).
///
/// On a Cortex-M, `cortex-m`'s implementation reads PRIMASK and masks interrupts on entry
/// (`mrs`, `cpsid i`) and unmasks them on exit unless they were masked before (a test and
/// `cpsie i`). Here: a flag read and set on entry, restored on exit (a nested section leaves it
/// set). Sound only because this benchmark is single-threaded (nothing here spawns a thread,
/// and the driver's intake path starts no timer); the library and its tests are unchanged.
///
/// `set_impl!` defines the two symbols `critical-section` calls. The `std` implementation that
/// the dev-dependency also defines is then not linked in (the linker takes the definitions from
/// this binary's own object first) in the release build the script makes; a debug build does
/// link it (a duplicate symbol), so the model is compiled only with `--cfg
/// quectel_cpu_bench_cs`, which the script sets, and [`critical_section_is_this_one`] checks at
/// start-up that it is the one in use. Without it (`cargo test --benches`, the sanity check),
/// the host implementation is used.
#[cfg(quectel_cpu_bench_cs)]
mod cortex_m_like {
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Whether a critical section is active ("interrupts masked").
    pub(crate) static MASKED: AtomicBool = AtomicBool::new(false);

    struct CortexMLike;
    critical_section::set_impl!(CortexMLike);

    // SAFETY: single-threaded (see the module documentation): a flag models PRIMASK.
    unsafe impl critical_section::Impl for CortexMLike {
        unsafe fn acquire() -> critical_section::RawRestoreState {
            let was = MASKED.load(Ordering::Relaxed);
            MASKED.store(true, Ordering::Relaxed);
            was
        }

        unsafe fn release(was: critical_section::RawRestoreState) {
            if !was {
                MASKED.store(false, Ordering::Relaxed);
            }
        }
    }
}

/// Fails unless the critical sections taken are [`cortex_m_like`]'s (and not the host
/// implementation's, which the figures must not include).
#[cfg(quectel_cpu_bench_cs)]
fn critical_section_is_this_one() {
    use std::sync::atomic::Ordering;
    critical_section::with(|_| {
        assert!(
            cortex_m_like::MASKED.load(Ordering::Relaxed),
            "the benchmark must run with its own critical section (cortex_m_like)"
        )
    });
    assert!(!cortex_m_like::MASKED.load(Ordering::Relaxed));
}

/// One command's exchange: what it expects and the bytes the modem sends for it.
struct Exchange {
    expect: Expect,
    bytes: Vec<u8>,
}

struct Stream {
    exchanges: Vec<Exchange>,
    len: usize,
    payload: u64,
}

/// xorshift32: a fixed, dependency-free sequence.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

/// URCs a connected module sends, with their framing.
const URCS: &[&[u8]] = &[
    b"\r\n+QIURC: \"recv\",0\r\n",
    b"\r\n+QIND: \"csq\",20,99\r\n",
    b"\r\n+CEREG: 1,\"1A2B\",\"01A2D102\",8\r\n",
    b"\r\n+QSSLURC: \"recv\",1\r\n",
    b"\r\n+QIURC: \"closed\",3\r\n",
    b"\r\n+CPIN: READY\r\n",
    b"\r\n+QUSIM: 1\r\n",
    b"\r\n+QIOPEN: 1,0\r\n",
    b"\r\n+QIND: SMS DONE\r\n",
];

fn urc(rng: &mut Rng, out: &mut Vec<u8>) {
    out.extend_from_slice(URCS[rng.below(URCS.len() as u32) as usize]);
}

/// `+QIURC: "recv"` then the `AT+QIRD=0,1500` reply with a binary payload (random bytes, as
/// TLS records or compressed data are, with `\r\nOK\r\n` and `> ` planted in it), now and
/// then a URC around or inside it.
fn qird_exchange(rng: &mut Rng) -> (Exchange, u64) {
    let mut b = Vec::new();
    b.extend_from_slice(b"\r\n+QIURC: \"recv\",0\r\n");
    if rng.below(4) == 0 {
        urc(rng, &mut b);
    }
    let n = 64 + rng.below(1460 - 64 + 1) as usize;
    b.extend_from_slice(format!("\r\n+QIRD: {n}\r\n").as_bytes());
    let start = b.len();
    for _ in 0..n {
        b.push((rng.next() >> 8) as u8);
    }
    // What a text digester would take for a final result code and a prompt.
    let at = start + rng.below(n as u32 - 8) as usize;
    b[at..at + 6].copy_from_slice(b"\r\nOK\r\n");
    b[at + 6..at + 8].copy_from_slice(b"> ");
    b.extend_from_slice(b"\r\n");
    if rng.below(8) == 0 {
        urc(rng, &mut b);
    }
    b.extend_from_slice(b"\r\nOK\r\n");
    let expect = Expect::payload(b"+QIRD:");
    (Exchange { expect, bytes: b }, n as u64)
}

/// A control command's reply (no payload read), with URCs before and sometimes inside it.
fn control_exchange(rng: &mut Rng) -> Exchange {
    let mut b = Vec::new();
    for _ in 0..rng.below(3) {
        urc(rng, &mut b);
    }
    let (expect, reply): (Expect, &[u8]) = match rng.below(8) {
        0 => (Expect::prefixed(b"+CSQ:"), b"\r\n+CSQ: 20,99\r\n"),
        1 => (
            Expect::prefixed(b"+CEREG:"),
            b"\r\n+CEREG: 2,1,\"1A2B\",\"01A2D102\",8\r\n",
        ),
        2 => (
            Expect::prefixed(b"+QIACT:"),
            b"\r\n+QIACT: 1,1,1,\"10.68.122.37\"\r\n",
        ),
        3 => (Expect::BARE, b"\r\n866425030000001\r\n"),
        4 => (
            Expect::prefixed(b"+QISTATE:"),
            b"\r\n+QISTATE: 0,\"TCP\",\"127.0.0.1\",1883,50712,2,1,0,0,\"uart1\"\r\n",
        ),
        5 => (Expect::prefixed(b"+CPIN:"), b"\r\n+CPIN: READY\r\n"),
        6 => (Expect::NONE, b""),
        _ => (Expect::prefixed(b"+QIRD:"), b"\r\n+QIRD: 0,0,0\r\n"),
    };
    b.extend_from_slice(reply);
    if rng.below(8) == 0 {
        urc(rng, &mut b);
    }
    if rng.below(16) == 0 {
        b.extend_from_slice(b"\r\n+CME ERROR: operation not allowed\r\n");
    } else {
        b.extend_from_slice(b"\r\nOK\r\n");
    }
    Exchange { expect, bytes: b }
}

fn generate(kind: &str, size: usize) -> Stream {
    let mut rng = Rng(0x9e37_79b9);
    let mut s = Stream {
        exchanges: Vec::new(),
        len: 0,
        payload: 0,
    };
    while s.len < size {
        let ex = match kind {
            "qird" => {
                let (ex, n) = qird_exchange(&mut rng);
                s.payload += n;
                ex
            }
            "control" => control_exchange(&mut rng),
            _ => panic!("stream kind: qird or control"),
        };
        s.len += ex.bytes.len();
        s.exchanges.push(ex);
    }
    s
}

/// What the feeding delivered (for the sanity checks).
struct Outcome {
    replies: usize,
    received: u64,
}

fn run(path: &str, stream: &Stream, chunk: usize) -> Outcome {
    match path {
        "digester" => DigestBench::with(|d| {
            for ex in &stream.exchanges {
                d.begin(ex.expect);
                for piece in ex.bytes.chunks(chunk) {
                    d.feed(piece);
                }
            }
            Outcome {
                replies: d.events(),
                received: 0,
            }
        }),
        "intake" => {
            let resources = Box::leak(Box::new(BenchResources::new()));
            let mut i = IntakeBench::new(resources);
            for ex in &stream.exchanges {
                i.begin(ex.expect);
                for piece in ex.bytes.chunks(chunk) {
                    i.ingest(piece);
                }
                i.finish();
            }
            Outcome {
                replies: i.responses(),
                received: i.received(),
            }
        }
        _ => panic!("path: digester or intake"),
    }
}

fn main() {
    #[cfg(quectel_cpu_bench_cs)]
    critical_section_is_this_one();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [path, kind, chunk, size] = args.as_slice() {
        let chunk: usize = chunk.parse().expect("chunk size");
        let size: usize = size.parse().expect("stream size");
        let stream = generate(kind, size);
        let out = run(path, &stream, chunk);
        println!(
            "bytes={} exchanges={} delivered={} payload={} received={}",
            stream.len,
            stream.exchanges.len(),
            out.replies,
            stream.payload,
            out.received
        );
        return;
    }
    // Sanity: every reply is taken, every payload byte lands in the ring, for every chunking.
    for kind in ["qird", "control"] {
        let stream = generate(kind, 64 * 1024);
        for chunk in [1, 7, 64, 1024] {
            let d = run("digester", &stream, chunk);
            assert!(
                d.replies >= stream.exchanges.len(),
                "{kind}/{chunk}: digester delivered {} events for {} replies",
                d.replies,
                stream.exchanges.len()
            );
            let i = run("intake", &stream, chunk);
            assert_eq!(i.replies, stream.exchanges.len(), "{kind}/{chunk}: replies");
            assert_eq!(i.received, stream.payload, "{kind}/{chunk}: payload bytes");
        }
    }
    println!("cpu workload: every configuration delivers every reply and payload byte");
    println!("instruction counts: scripts/cpu-bench.sh (callgrind)");
}
