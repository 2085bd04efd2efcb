//! The soak (issue 11, item 4): QoS 1 messages up (device → broker) and down (broker → device)
//! through the behavioural mock modem (modem TLS) and mosquitto, with faults of the fault matrix
//! (`docs/reliability.md`) injected at seeded random points of the uplink stream, counted by
//! independent clients: **0 lost**, duplicates counted and reported.
//!
//! * **Up**: the device publishes `up-<seq>` on `thing-0001/up` through an [`Outbox`] served by
//!   the user's loop (`connect`, then `serve`, again on every error). The watcher is a
//!   `mosquitto_sub` process with a persistent session (fixed client id, `-c`) on a broker with
//!   persistence, so its session survives every broker restart (the process is started again
//!   when it exits); it counts by sequence number.
//! * **Down**: a separate client (`mosquitto_pub`, one process per message, tried again until the
//!   broker acknowledges it to a subscriber) publishes `down-<seq>` with QoS 1 on
//!   `thing-0001/down`; the device counts what its `serve` hands it, by sequence number.
//! * **Faults**, one thread, at uplink sequence numbers drawn from a seeded PRNG, kinds in
//!   shuffled rounds (every kind once per round): broker SIGKILL, broker SIGTERM (restart),
//!   connection closed by the network (`closed` URC), `pdpdeact`, garbage bytes on the UART,
//!   modem reboot, `SEND FAIL` (1–6 in a row: up to 4 are retried inside the driver, 5 and more
//!   fail the write), silence (1–3 s without a single answer), a lost `recv` URC.
//!
//! A broker killed with SIGKILL loses what it acknowledged but neither delivered nor saved (it
//! saves every second): that is mosquitto's contract, not the device's. So the kill is done the
//! way a crash can be counted: the downlink publisher is held, the watcher is connected, the
//! broker gets a second to save, is frozen (SIGSTOP: what it already wrote still reaches its
//! peers; what the device sends now is never read nor acknowledged), and killed 300 ms later.
//! Everything the broker acknowledged is then either delivered or saved, and every loss
//! counted is the device's.
//!
//! Sizes: 500 up and 50 down by default (the CI smoke); `QUECTEL_SOAK=full`: 10 000 up and
//! 1 000 down. `QUECTEL_SOAK_SEED=<n>` replays a schedule (the seed is printed; timing still
//! varies). `QUECTEL_SOAK_REPORT=<file>` writes the result as Markdown (`scripts/soak.sh` puts it
//! into `docs/reliability.md`).
//!
//! On a failure the last chunks that crossed the simulated UART are printed (all of them, up to
//! 3000, go to a file in the temp directory); `BROKER_KEEP_DIR=1` keeps the broker's log.
//!
//! Memory: the driver allocates nothing (fixed-size `Resources`, `Outbox` and MQTT buffer,
//! printed). The test counts the heap allocations made on the device's thread (driver, MQTT
//! client, executor and the test's own device-side code, which is written not to allocate)
//! after warm-up and asserts there are none; the process's RSS is printed, not asserted (the
//! watcher's records, the mock modem and the broker helpers grow with the run).
#![cfg(feature = "mqtt")]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use embassy_futures::select::{Either, select, select3};
use embassy_time::{Duration, Timer};
use quectel::asynch::{self, Apn, Resources, TlsConfig};
use quectel::mqtt::{Mqtt, MqttConfig, MqttError, Outbox, QoS, Transport};
use quectel_mock::{Link, MockModem, Model as MockModel, ModemEnd, ModemHandle, Recv};
use support::broker::{Broker, BrokerOptions, ClientId, SubOptions, Subscriber};

const THING: &str = "thing-0001";
const UP: &str = "thing-0001/up";
const DOWN: &str = "thing-0001/down";

// ------------------------------------------------------------------------------------------------
// Allocation counting on the device's thread
// ------------------------------------------------------------------------------------------------

/// The system allocator, counting what the thread marked by [`COUNTING`] allocates.
struct CountingAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static IN_UART: Cell<bool> = const { Cell::new(false) };
}

/// Allocations made inside the simulated UART (the mock modem's in-memory pipe, which keeps a
/// transcript of what crossed it), counted apart from the device's.
static UART_ALLOCS: AtomicU64 = AtomicU64::new(0);

static DEVICE_ALLOCS: AtomicU64 = AtomicU64::new(0);
/// `QUECTEL_SOAK_TRACE_ALLOC=1`: print a backtrace for every counted allocation.
static TRACE_ALLOCS: AtomicBool = AtomicBool::new(false);

thread_local! {
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}
static DEVICE_ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

fn count(size: usize) {
    if !COUNTING.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    if IN_UART.try_with(Cell::get).unwrap_or(false) {
        UART_ALLOCS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    {
        DEVICE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        DEVICE_ALLOC_BYTES.fetch_add(size as u64, Ordering::Relaxed);
        if TRACE_ALLOCS.load(Ordering::Relaxed) && !IN_TRACE.with(|t| t.replace(true)) {
            eprintln!(
                "device-thread allocation of {size} bytes:\n{}",
                std::backtrace::Backtrace::force_capture()
            );
            IN_TRACE.with(|t| t.set(false));
        }
    }
}

// SAFETY: every call is forwarded to `System` unchanged; counting touches only atomics and a
// const-initialised thread-local without destructor (no allocation, no re-entry).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The simulated UART's ends, marking the time spent inside them (see [`UART_ALLOCS`]).
struct Uart<T>(T);

impl<T: embedded_io_async::ErrorType> embedded_io_async::ErrorType for Uart<T> {
    type Error = T::Error;
}

/// Polls `fut` with [`IN_UART`] set.
async fn in_uart<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        IN_UART.with(|u| u.set(true));
        let r = fut.as_mut().poll(cx);
        IN_UART.with(|u| u.set(false));
        r
    })
    .await
}

impl<T: embedded_io_async::Read> embedded_io_async::Read for Uart<T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, T::Error> {
        in_uart(self.0.read(buf)).await
    }
}

impl<T: embedded_io_async::Write> embedded_io_async::Write for Uart<T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, T::Error> {
        in_uart(self.0.write(buf)).await
    }
    async fn flush(&mut self) -> Result<(), T::Error> {
        in_uart(self.0.flush()).await
    }
}

/// Resident set size of this process, in bytes (Linux).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

// ------------------------------------------------------------------------------------------------
// Seeded PRNG
// ------------------------------------------------------------------------------------------------

/// SplitMix64: small, seedable, good enough to place faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// ------------------------------------------------------------------------------------------------
// The UART's recent past, for the report of a failure
// ------------------------------------------------------------------------------------------------

/// The last chunks that crossed the UART: (when, from the host?, bytes).
type Trace = Arc<Mutex<VecDeque<(StdInstant, bool, Vec<u8>)>>>;

/// How many chunks [`Tap`] keeps.
const TRACE_CHUNKS: usize = 3000;

/// A [`Link`] that passes everything through and keeps the last [`TRACE_CHUNKS`] chunks.
struct Tap {
    inner: ModemEnd,
    trace: Trace,
}

impl Tap {
    fn keep(&self, from_host: bool, bytes: &[u8]) {
        let mut t = self.trace.lock().unwrap();
        if t.len() == TRACE_CHUNKS {
            t.pop_front();
        }
        t.push_back((StdInstant::now(), from_host, bytes.to_vec()));
    }
}

impl Link for Tap {
    fn recv(&mut self, buf: &mut [u8], timeout: StdDuration) -> Recv {
        let r = self.inner.recv(buf, timeout);
        if let Recv::Data(n) = r {
            self.keep(true, &buf[..n]);
        }
        r
    }
    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.keep(false, data);
        self.inner.send(data)
    }
}

/// The trace as text: one line per chunk, `>>` host to modem, `<<` modem to host.
fn render_trace(trace: &Trace, since: StdInstant) -> String {
    let mut out = String::new();
    for (at, from_host, bytes) in trace.lock().unwrap().iter() {
        let _ = writeln!(
            out,
            "{:>9.3} {} {}",
            at.saturating_duration_since(since).as_secs_f64(),
            if *from_host { ">>" } else { "<<" },
            bytes.escape_ascii()
        );
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Faults
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    /// mosquitto killed with SIGKILL (after a freeze, see the module docs) and started again.
    BrokerSigkill,
    /// mosquitto stopped with SIGTERM and started again.
    BrokerSigterm,
    /// The network closes the connection (`+QSSLURC: "closed"`).
    PeerClose,
    /// The network deactivates the data call (`+QIURC: "pdpdeact",1`).
    Pdpdeact,
    /// Lines of random bytes on the UART between replies.
    Garbage,
    /// Crash-style module reboot.
    ModemReboot,
    /// The next 1–6 sends answer `SEND FAIL`.
    SendFail,
    /// The module answers nothing for 1–3 s.
    Silence,
    /// The next `recv` URC is lost.
    LostRecvUrc,
}

const KINDS: [Fault; 9] = [
    Fault::BrokerSigkill,
    Fault::BrokerSigterm,
    Fault::PeerClose,
    Fault::Pdpdeact,
    Fault::Garbage,
    Fault::ModemReboot,
    Fault::SendFail,
    Fault::Silence,
    Fault::LostRecvUrc,
];

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::BrokerSigkill => "broker SIGKILL + restart",
            Fault::BrokerSigterm => "broker SIGTERM + restart",
            Fault::PeerClose => "connection closed by the network (`closed` URC)",
            Fault::Pdpdeact => "`pdpdeact`",
            Fault::Garbage => "garbage bytes on the UART",
            Fault::ModemReboot => "modem reboot",
            Fault::SendFail => "`SEND FAIL` (1–6 in a row)",
            Fault::Silence => "module silent (1–3 s)",
            Fault::LostRecvUrc => "`recv` URC lost",
        }
    }
}

/// The schedule: (uplink sequence number, fault), ascending; kinds in shuffled rounds, so the
/// first round has every kind. The last tenth of the stream has no fault, so that the end is
/// not a fault's recovery.
fn schedule(rng: &mut Rng, up: usize, gap: (u64, u64)) -> Vec<(usize, Fault)> {
    let mut out = Vec::new();
    let mut round: Vec<Fault> = Vec::new();
    let mut at = 0;
    loop {
        at += rng.range(gap.0, gap.1) as usize;
        if at >= up - up / 10 {
            break;
        }
        if round.is_empty() {
            round = KINDS.to_vec();
            // Fisher-Yates
            for i in (1..round.len()).rev() {
                let j = rng.range(0, i as u64) as usize;
                round.swap(i, j);
            }
        }
        out.push((at, round.pop().unwrap()));
    }
    out
}

/// Uplink messages between the end of one fault's injection and the next fault, at least.
const MIN_SPACING: usize = 10;

// ------------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------------

struct Size {
    name: &'static str,
    up: usize,
    down: usize,
    /// Uplink messages between two faults (uniform in this range).
    gap: (u64, u64),
    /// The whole run must end within this.
    limit: StdDuration,
    /// The device publishes one uplink message every this many milliseconds (when the outbox
    /// has room).
    period_ms: u64,
}

fn size() -> Size {
    match std::env::var("QUECTEL_SOAK").as_deref() {
        Ok("full") => Size {
            name: "full",
            up: 10_000,
            down: 1_000,
            gap: (40, 100),
            limit: StdDuration::from_secs(3 * 3600),
            period_ms: 50,
        },
        _ => Size {
            name: "smoke",
            up: 500,
            down: 50,
            // At most 45: at least nine faults before message 450, every kind once.
            gap: (25, 45),
            limit: StdDuration::from_secs(150),
            period_ms: 50,
        },
    }
}

/// State shared by the device thread, the fault thread, the downlink publisher and the test.
struct Shared {
    /// Uplink messages handed to the outbox.
    produced: AtomicUsize,
    /// The outbox is empty (every uplink acknowledged) after the last one was produced.
    up_settled: AtomicBool,
    /// Downlink messages received by the device, per sequence number.
    down_seen: Vec<AtomicU32>,
    /// Downlink messages with a payload that is not `down-<seq>` (must stay 0).
    down_strange: AtomicU32,
    /// Successful MQTT connections of the device.
    connections: AtomicU32,
    /// Failed connection attempts.
    connect_failures: AtomicU32,
    /// Ask the device thread to stop.
    stop: AtomicBool,
    /// Held by the downlink publisher while it publishes; the SIGKILL fault takes it.
    down_gate: Mutex<()>,
    /// Faults injected, in order: (uplink sequence number at injection, fault, detail).
    injected: Mutex<Vec<(usize, Fault, String)>>,
    /// Downlink publishes tried again (the broker did not acknowledge the first try).
    down_retries: AtomicU32,
    /// Downlink publishes tried again because the broker had no subscriber for them.
    down_unsubscribed: AtomicU32,
    /// Allocation counting started.
    counting_from: AtomicUsize,
    /// What went wrong in a helper thread (reported, fails the test).
    problems: Mutex<Vec<String>>,
}

/// How the device's connections ended (filled by the device thread without allocating).
struct Ends {
    serve: Vec<MqttError>,
    connect: Vec<MqttError>,
    /// The digester's counters at the end.
    stats: Option<quectel::at::DigestStats>,
}

fn mock() -> MockModem {
    MockModem::new(MockModel::Bg96).search_time(StdDuration::from_millis(20))
}

fn thing_config<'a>(ca: &'a str, device: &'a ClientId, port: u16) -> MqttConfig<'a> {
    let tls = TlsConfig::new(ca.as_bytes())
        .with_client_identity(device.cert_pem.as_bytes(), device.key_pem.as_bytes());
    let mut cfg = MqttConfig::new(
        "localhost",
        port,
        THING,
        Transport::ModemTls { ssl_ctx: 1, tls },
        Apn::new("internet"),
    );
    cfg.backoff_min = Duration::from_millis(100);
    cfg.backoff_max = Duration::from_secs(1);
    cfg.ack_timeout = Duration::from_secs(5);
    // Never expires, like the watcher's (`mosquitto_sub -c`): however long the broker is
    // down, it must not end the session. (See `chaos` for what else mosquitto needs to keep
    // a session across its restarts.)
    cfg.session_expiry_s = u32::MAX;
    cfg
}

/// Parses `<prefix><decimal>`.
fn seq_of(payload: &[u8], prefix: &str) -> Option<usize> {
    std::str::from_utf8(payload)
        .ok()?
        .strip_prefix(prefix)?
        .parse()
        .ok()
}

/// The device: the user's loop (connect, serve, again) plus a producer of `up` uplink
/// messages, until `shared.stop`. Runs on its own thread with a current-thread runtime.
fn device(
    shared: &Shared,
    ends: &mut Ends,
    mqtt_cfg: MqttConfig<'_>,
    rx: quectel_mock::HostRx,
    tx: quectel_mock::HostTx,
    up: usize,
    period_ms: u64,
) {
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let outbox: &'static Outbox<16, 64> = Box::leak(Box::new(Outbox::new()));
    let mut mqtt_buf = vec![0u8; 4096];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (runner, m) = asynch::new(res, Uart(rx), Uart(tx), support::fast_config());
        let body = async {
            m.init().await.expect("init");
            let mut mqtt = Mqtt::new(mqtt_cfg, &mut mqtt_buf, 2048).unwrap();
            mqtt.subscribe_on_connect(DOWN, QoS::AtLeastOnce).unwrap();
            let on_message = |topic: &str, payload: &[u8]| match seq_of(payload, "down-") {
                Some(seq) if topic == DOWN && seq < shared.down_seen.len() => {
                    shared.down_seen[seq].fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    shared.down_strange.fetch_add(1, Ordering::Relaxed);
                }
            };
            let device_loop = async {
                loop {
                    match mqtt.connect(&m).await {
                        Ok(mut conn) => {
                            shared.connections.fetch_add(1, Ordering::Relaxed);
                            let why = conn.serve(outbox, on_message).await;
                            if ends.serve.len() < ends.serve.capacity() {
                                ends.serve.push(why);
                            }
                        }
                        Err(e) => {
                            shared.connect_failures.fetch_add(1, Ordering::Relaxed);
                            if ends.connect.len() < ends.connect.capacity() {
                                ends.connect.push(e);
                            }
                        }
                    }
                }
            };
            let producer = async {
                let mut text = [0u8; 32];
                for seq in 0..up {
                    if seq == up / 10 {
                        // Warmed up (connected, several faults recovered): from here on the
                        // device's thread must not allocate.
                        shared.counting_from.store(seq, Ordering::Relaxed);
                        COUNTING.with(|c| c.set(true));
                    }
                    Timer::after_millis(period_ms).await;
                    let mut cur = &mut text[..];
                    write!(cur, "up-{seq}").unwrap();
                    let len = 32 - cur.len();
                    outbox
                        .publish(UP, &text[..len], QoS::AtLeastOnce)
                        .await
                        .unwrap();
                    shared.produced.store(seq + 1, Ordering::Relaxed);
                }
                while !outbox.is_empty() {
                    Timer::after_millis(20).await;
                }
                shared.up_settled.store(true, Ordering::Relaxed);
                core::future::pending::<()>().await
            };
            let stop = async {
                while !shared.stop.load(Ordering::Relaxed) {
                    Timer::after_millis(50).await;
                }
            };
            select3(device_loop, producer, stop).await;
            COUNTING.with(|c| c.set(false));
            ends.stats = Some(m.stats());
        };
        match select(runner.run(), body).await {
            Either::First(never) => never,
            Either::Second(()) => {}
        }
    });
}

/// A line of random bytes (no CR/LF) framed by CRLF, as noise on the UART looks.
fn garbage(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.range(1, 3) {
        out.extend_from_slice(b"\r\n");
        for _ in 0..rng.range(1, 40) {
            let b = rng.range(0, 255) as u8;
            out.push(if b == b'\r' || b == b'\n' { b'~' } else { b });
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The cloud-side watcher: `mosquitto_sub` with a persistent session (fixed client id, `-c`),
/// started again with the same id whenever it exits. (It reconnects by itself after a broker
/// restart, but exits on a TLS error, which is what a connection cut by SIGKILL can look like:
/// its session stays on the broker, and the next process resumes it.)
struct Watcher<'b> {
    broker: &'b Broker,
    observer: ClientId,
    inner: Mutex<WatcherInner>,
}

struct WatcherInner {
    /// Messages of the processes that exited.
    earlier: Vec<(String, Vec<u8>)>,
    current: Subscriber,
    /// SUBACKs `current` had when the broker was last stopped.
    subs_at_restart: usize,
    /// Processes started.
    processes: u32,
}

impl<'b> Watcher<'b> {
    fn start(broker: &'b Broker, observer: ClientId) -> Self {
        let current = Self::spawn(broker, &observer).expect("the watcher subscribes");
        Self {
            broker,
            observer,
            inner: Mutex::new(WatcherInner {
                earlier: Vec::new(),
                current,
                subs_at_restart: 0,
                processes: 1,
            }),
        }
    }

    fn spawn(broker: &Broker, observer: &ClientId) -> Result<Subscriber, String> {
        Subscriber::try_start_with(
            broker,
            observer,
            &[UP],
            SubOptions {
                client_id: Some("soak-watcher".into()),
                persistent: true,
                ..SubOptions::default()
            },
        )
    }

    /// Every message received so far.
    fn messages(&self) -> Vec<(String, Vec<u8>)> {
        let w = self.inner.lock().unwrap();
        let mut all = w.earlier.clone();
        all.extend(w.current.messages());
        all
    }

    /// Call before the broker is stopped or killed.
    fn broker_going_down(&self) {
        let mut w = self.inner.lock().unwrap();
        w.subs_at_restart = w.current.subscriptions();
    }

    /// Starts the watcher again if it exited (no-op while the broker is down).
    fn revive(&self) {
        let mut w = self.inner.lock().unwrap();
        if w.current.is_running() || !self.broker.is_running() {
            return;
        }
        if let Ok(next) = Self::spawn(self.broker, &self.observer) {
            let old = std::mem::replace(&mut w.current, next);
            let msgs = old.stop();
            w.earlier.extend(msgs);
            w.subs_at_restart = 0;
            w.processes += 1;
        }
    }

    /// Waits until the watcher is subscribed on the running broker.
    fn wait_connected(&self, timeout: StdDuration) -> bool {
        let deadline = StdInstant::now() + timeout;
        while StdInstant::now() < deadline {
            self.revive();
            {
                let w = self.inner.lock().unwrap();
                if w.current.subscriptions() > w.subs_at_restart {
                    return true;
                }
            }
            std::thread::sleep(StdDuration::from_millis(50));
        }
        false
    }

    fn processes(&self) -> u32 {
        self.inner.lock().unwrap().processes
    }
}

/// The fault thread: waits for each point of the schedule and injects its fault.
fn chaos(
    shared: &Shared,
    schedule: &[(usize, Fault)],
    rng: &mut Rng,
    h: &ModemHandle,
    broker: &Broker,
    watcher: &Watcher<'_>,
    up: usize,
) {
    // Warm-up, not a fault: mosquitto (2.0.11) saves a session only once its client has
    // connected with Clean Start 0, and the first connection of a device has Clean Start 1.
    // Without a second connection a broker restart would drop the device's session (its
    // subscription, the downlink messages queued for it): the broker's loss, not the device's.
    let wait_connections = |n: u32| {
        let deadline = StdInstant::now() + StdDuration::from_secs(60);
        while shared.connections.load(Ordering::Relaxed) < n {
            if shared.stop.load(Ordering::Relaxed) || StdInstant::now() > deadline {
                return false;
            }
            std::thread::sleep(StdDuration::from_millis(5));
        }
        true
    };
    if !wait_connections(1) {
        shared
            .problems
            .lock()
            .unwrap()
            .push("the device never connected".into());
        return;
    }
    if let Some(sock) = h.state().sockets.iter().find(|s| s.state == 2) {
        h.drop_socket(sock.id);
    }
    if !wait_connections(2) {
        shared
            .problems
            .lock()
            .unwrap()
            .push("the device did not connect again after the warm-up close".into());
        return;
    }
    let mut last = 0;
    for &(at, fault) in schedule {
        // Never beyond the last twentieth: the producer stops at `up`.
        let due = at.max(last + MIN_SPACING).min(up - up / 20);
        while shared.produced.load(Ordering::Relaxed) < due {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(StdDuration::from_millis(5));
        }
        let produced = shared.produced.load(Ordering::Relaxed);
        let detail = match fault {
            Fault::BrokerSigkill => {
                let _gate = shared.down_gate.lock().unwrap();
                // The watcher must be connected, so that what the broker acknowledges is
                // written to it at once.
                if !watcher.wait_connected(StdDuration::from_secs(30)) {
                    shared.problems.lock().unwrap().push(format!(
                        "at uplink {produced}: the watcher did not reconnect within 30 s; \
                         SIGKILL not injected"
                    ));
                    continue;
                }
                // A save (every second) covers what the broker queued so far.
                std::thread::sleep(StdDuration::from_millis(1200));
                watcher.broker_going_down();
                broker.freeze();
                std::thread::sleep(StdDuration::from_millis(300));
                broker.kill();
                std::thread::sleep(StdDuration::from_millis(rng.range(0, 500)));
                broker.start_again();
                String::new()
            }
            Fault::BrokerSigterm => {
                watcher.broker_going_down();
                broker.stop();
                std::thread::sleep(StdDuration::from_millis(rng.range(0, 500)));
                broker.start_again();
                String::new()
            }
            Fault::PeerClose => match h.state().sockets.iter().find(|s| s.state == 2) {
                Some(s) => {
                    h.drop_socket(s.id);
                    format!("socket {}", s.id)
                }
                None => "no socket open: nothing closed".to_string(),
            },
            Fault::Pdpdeact => {
                h.inject_urc("+QIURC: \"pdpdeact\",1");
                String::new()
            }
            Fault::Garbage => {
                let g = garbage(rng);
                h.inject_raw(&g);
                format!("{} bytes", g.len())
            }
            Fault::ModemReboot => {
                h.reboot();
                String::new()
            }
            Fault::SendFail => {
                let n = rng.range(1, 6) as u32;
                h.fail_next_sends(n);
                format!("{n}")
            }
            Fault::Silence => {
                let ms = rng.range(1000, 3000);
                h.set_silent(true);
                std::thread::sleep(StdDuration::from_millis(ms));
                h.set_silent(false);
                format!("{ms} ms")
            }
            Fault::LostRecvUrc => {
                h.drop_next_recv_urcs(1);
                String::new()
            }
        };
        shared
            .injected
            .lock()
            .unwrap()
            .push((produced, fault, detail));
        last = shared.produced.load(Ordering::Relaxed);
    }
}

/// The downlink publisher: `down-<seq>` with QoS 1 from a separate client, paced along the
/// uplink stream, each tried again until the broker acknowledges it.
fn downlink(shared: &Shared, broker: &Broker, observer: &ClientId, up: usize) {
    let down = shared.down_seen.len();
    // Not before the device subscribed (its first connection) and connected again (see
    // `chaos`): the broker drops a message nobody subscribed to.
    while shared.connections.load(Ordering::Relaxed) < 2 {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(StdDuration::from_millis(5));
    }
    for seq in 0..down {
        let due = seq * up / down;
        while shared.produced.load(Ordering::Relaxed) < due {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(StdDuration::from_millis(5));
        }
        let payload = format!("down-{seq}");
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            let r = {
                let _gate = shared.down_gate.lock().unwrap();
                broker.publish(observer, DOWN, &payload, 1)
            };
            // PUBACK 0x10, "no matching subscribers": the broker kept it for nobody (the device's
            // subscription was not there yet, e.g. its SUBSCRIBE was still on the way), so
            // publishing it again cannot duplicate it. A device that never subscribed again
            // would make this loop run out the test's time.
            if r.ok() && r.puback != Some(0x10) {
                break;
            }
            if r.puback == Some(0x10) {
                shared.down_unsubscribed.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.down_retries.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(StdDuration::from_millis(200));
        }
    }
}

/// Sequence numbers `0..n` in `payloads` (`<prefix><seq>`): (missing, duplicates, strange).
fn tally<'a>(
    n: usize,
    prefix: &str,
    payloads: impl Iterator<Item = &'a [u8]>,
) -> (Vec<usize>, usize, usize) {
    let mut seen = vec![0usize; n];
    let mut strange = 0;
    for p in payloads {
        match seq_of(p, prefix) {
            Some(s) if s < n => seen[s] += 1,
            _ => strange += 1,
        }
    }
    let missing = (0..n).filter(|&i| seen[i] == 0).collect();
    let duplicates = seen.iter().map(|&c| c.saturating_sub(1)).sum();
    (missing, duplicates, strange)
}

fn summarize_ends(errors: &[MqttError]) -> String {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for e in errors {
        *by.entry(format!("{e:?}")).or_default() += 1;
    }
    by.iter()
        .map(|(k, v)| format!("{v}× {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn qos1_up_and_down_through_faults_loses_nothing() {
    let size = size();
    TRACE_ALLOCS.store(
        std::env::var_os("QUECTEL_SOAK_TRACE_ALLOC").is_some(),
        Ordering::Relaxed,
    );
    let seed = std::env::var("QUECTEL_SOAK_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let mut rng = Rng(seed);
    let plan = schedule(&mut rng, size.up, size.gap);
    eprintln!(
        "soak ({}): {} up, {} down, {} faults, seed {seed} (replay: QUECTEL_SOAK_SEED={seed})",
        size.name,
        size.up,
        size.down,
        plan.len()
    );
    for k in KINDS {
        assert!(
            plan.iter().any(|&(_, f)| f == k),
            "the schedule misses {k:?}"
        );
    }

    let broker = Broker::start(BrokerOptions::default().persistence(true));
    let device_id = broker.client(THING);
    let observer = broker.observer();
    let watcher = Watcher::start(&broker, observer.clone());
    // Let the broker save the watcher's session before anything can kill it.
    std::thread::sleep(StdDuration::from_millis(1100));
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let shared = Shared {
        produced: AtomicUsize::new(0),
        up_settled: AtomicBool::new(false),
        down_seen: (0..size.down).map(|_| AtomicU32::new(0)).collect(),
        down_strange: AtomicU32::new(0),
        connections: AtomicU32::new(0),
        connect_failures: AtomicU32::new(0),
        stop: AtomicBool::new(false),
        down_gate: Mutex::new(()),
        injected: Mutex::new(Vec::new()),
        down_retries: AtomicU32::new(0),
        down_unsubscribed: AtomicU32::new(0),
        counting_from: AtomicUsize::new(0),
        problems: Mutex::new(Vec::new()),
    };
    let mut ends = Ends {
        serve: Vec::with_capacity(4096),
        connect: Vec::with_capacity(4096),
        stats: None,
    };
    let trace: Trace = Arc::default();
    let (rx, tx, end) = quectel_mock::duplex();
    let handle = mock().spawn_on(Tap {
        inner: end,
        trace: trace.clone(),
    });
    let started = StdInstant::now();
    let rss_start = rss_bytes();
    let mut rss_warm = 0;
    let mut timed_out = false;
    let mut fault_rng = Rng(rng.next());

    std::thread::scope(|s| {
        let mqtt_cfg = thing_config(&ca, &device_id, port);
        let (shared, ends) = (&shared, &mut ends);
        let dev = s.spawn(move || device(shared, ends, mqtt_cfg, rx, tx, size.up, size.period_ms));
        let (h, b, w, p) = (&handle, &broker, &watcher, &plan);
        let f = &mut fault_rng;
        let chaos_thread = s.spawn(move || chaos(shared, p, f, h, b, w, size.up));
        let obs = &observer;
        let down_thread = s.spawn(move || downlink(shared, b, obs, size.up));

        let deadline = started + size.limit;
        let mut last_report = StdInstant::now();
        loop {
            std::thread::sleep(StdDuration::from_millis(250));
            watcher.revive();
            if rss_warm == 0 && shared.counting_from.load(Ordering::Relaxed) > 0 {
                rss_warm = rss_bytes();
            }
            let up_seen = {
                let msgs = watcher.messages();
                tally(size.up, "up-", msgs.iter().map(|(_, p)| p.as_slice()))
                    .0
                    .is_empty()
            };
            let down_seen = shared
                .down_seen
                .iter()
                .all(|c| c.load(Ordering::Relaxed) > 0);
            let done = up_seen
                && down_seen
                && shared.up_settled.load(Ordering::Relaxed)
                && chaos_thread.is_finished()
                && down_thread.is_finished();
            if done {
                break;
            }
            if last_report.elapsed() > StdDuration::from_secs(30) {
                last_report = StdInstant::now();
                eprintln!(
                    "soak: {:?}: produced {}/{}, watcher {} messages, device {} downlinks, \
                     {} faults, {} connections",
                    started.elapsed(),
                    shared.produced.load(Ordering::Relaxed),
                    size.up,
                    watcher.messages().len(),
                    shared
                        .down_seen
                        .iter()
                        .filter(|c| c.load(Ordering::Relaxed) > 0)
                        .count(),
                    shared.injected.lock().unwrap().len(),
                    shared.connections.load(Ordering::Relaxed),
                );
            }
            if StdInstant::now() > deadline {
                timed_out = true;
                break;
            }
        }
        // Give late duplicates the chance to show up, then stop.
        if !timed_out {
            std::thread::sleep(StdDuration::from_millis(1500));
        }
        shared.stop.store(true, Ordering::Relaxed);
        dev.join().expect("device thread");
        chaos_thread.join().expect("fault thread");
        down_thread.join().expect("downlink thread");
    });
    let elapsed = started.elapsed();
    let rss_end = rss_bytes();
    let allocs = DEVICE_ALLOCS.load(Ordering::Relaxed);
    let alloc_bytes = DEVICE_ALLOC_BYTES.load(Ordering::Relaxed);

    let up_msgs = watcher.messages();
    let (up_missing, up_dups, up_strange) =
        tally(size.up, "up-", up_msgs.iter().map(|(_, p)| p.as_slice()));
    let down_missing: Vec<usize> = (0..size.down)
        .filter(|&i| shared.down_seen[i].load(Ordering::Relaxed) == 0)
        .collect();
    let down_dups: usize = shared
        .down_seen
        .iter()
        .map(|c| (c.load(Ordering::Relaxed) as usize).saturating_sub(1))
        .sum();
    let injected = shared.injected.lock().unwrap().clone();
    let mut by_kind: BTreeMap<Fault, usize> = BTreeMap::new();
    for (_, f, _) in &injected {
        *by_kind.entry(*f).or_default() += 1;
    }
    let stats = (
        shared.connections.load(Ordering::Relaxed),
        shared.connect_failures.load(Ordering::Relaxed),
    );

    let mut report = String::new();
    let _ = writeln!(
        report,
        "| | |\n|---|---|\n| Run | {}: {} up, {} down, one uplink message every {} ms while \
         the outbox has room, modem TLS; seed {seed} |",
        size.name, size.up, size.down, size.period_ms
    );
    let _ = writeln!(
        report,
        "| Duration | {:.0} s ({} broker starts, {} watcher processes) |",
        elapsed.as_secs_f64(),
        broker.starts(),
        watcher.processes()
    );
    let _ = writeln!(
        report,
        "| Up (device → watcher), QoS 1 | {} published, **{} lost**, {} duplicates{} |",
        size.up,
        up_missing.len(),
        up_dups,
        if up_strange > 0 {
            format!(", {up_strange} not ours")
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        report,
        "| Down (mosquitto_pub → device), QoS 1 | {} published ({} tried again: {} not \
         acknowledged, {} with no subscriber yet), **{} lost**, {} duplicates{} |",
        size.down,
        shared.down_retries.load(Ordering::Relaxed)
            + shared.down_unsubscribed.load(Ordering::Relaxed),
        shared.down_retries.load(Ordering::Relaxed),
        shared.down_unsubscribed.load(Ordering::Relaxed),
        down_missing.len(),
        down_dups,
        match shared.down_strange.load(Ordering::Relaxed) {
            0 => String::new(),
            n => format!(", {n} not ours"),
        }
    );
    let _ = writeln!(
        report,
        "| Faults injected | {} in all: {} |",
        injected.len(),
        by_kind
            .iter()
            .map(|(k, v)| format!("{v}× {}", k.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        report,
        "| Device connections | {} made, {} attempts failed |",
        stats.0, stats.1
    );
    let _ = writeln!(
        report,
        "| Why connections ended | {} |",
        summarize_ends(&ends.serve)
    );
    let _ = writeln!(
        report,
        "| Why attempts failed | {} |",
        if ends.connect.is_empty() {
            "—".to_string()
        } else {
            summarize_ends(&ends.connect)
        }
    );
    let _ = writeln!(
        report,
        "| Heap on the device's thread | {allocs} allocations ({alloc_bytes} bytes) from uplink \
         message {} to the end (the simulated UART, which keeps a transcript: {} more) |",
        shared.counting_from.load(Ordering::Relaxed),
        UART_ALLOCS.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        report,
        "| Static sizes | `Resources<2048, 2, 4096>` {} bytes, `Outbox<16, 64>` {} bytes, MQTT \
         buffer 4096 bytes |",
        std::mem::size_of::<Resources<2048, 2, 4096>>(),
        std::mem::size_of::<Outbox<16, 64>>()
    );
    let _ = writeln!(
        report,
        "| Process RSS (test, mock modem, watcher records; not asserted) | {:.1} MiB at start, \
         {:.1} MiB after warm-up, {:.1} MiB at the end |",
        rss_start as f64 / 1048576.0,
        rss_warm as f64 / 1048576.0,
        rss_end as f64 / 1048576.0
    );
    eprintln!("{report}");
    eprintln!("fault log (uplink seq: fault, detail):");
    for (at, f, d) in &injected {
        eprintln!("  {at}: {f:?} {d}");
    }
    if let Ok(path) = std::env::var("QUECTEL_SOAK_REPORT") {
        let mut f = std::fs::File::create(&path).expect("QUECTEL_SOAK_REPORT file");
        f.write_all(report.as_bytes()).unwrap();
        let mut log = String::from(
            "\n<details><summary>Faults in order (uplink messages handed to the outbox when \
             it was injected: fault, detail)</summary>\n\n",
        );
        for (at, fault, detail) in &injected {
            let _ = writeln!(
                log,
                "- {at}: {}{}{detail}",
                fault.name(),
                if detail.is_empty() { "" } else { ", " }
            );
        }
        log.push_str("\n</details>\n");
        f.write_all(log.as_bytes()).unwrap();
    }

    let problems = shared.problems.lock().unwrap().clone();
    for p in &problems {
        eprintln!("problem: {p}");
    }
    if timed_out || !up_missing.is_empty() || !down_missing.is_empty() || !problems.is_empty() {
        let text = render_trace(&trace, started);
        let file = std::env::temp_dir().join(format!("quectel-soak-{seed}.trace"));
        let _ = std::fs::write(&file, &text);
        let lines: Vec<&str> = text.lines().collect();
        eprintln!(
            "--- the UART's last chunks (s since the start; >> host to modem, << modem to \
             host; the last {TRACE_CHUNKS} in {}) ---\n{}\n---\nmodem: {:?}\ndriver: {:?}",
            file.display(),
            lines[lines.len().saturating_sub(150)..].join("\n"),
            handle.state().sockets,
            ends.stats,
        );
    }
    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        !timed_out,
        "the soak did not finish within {:?}: up missing {:?}, down missing {:?}",
        size.limit,
        &up_missing[..up_missing.len().min(50)],
        &down_missing[..down_missing.len().min(50)]
    );
    assert!(
        up_missing.is_empty(),
        "uplink QoS 1 messages lost: {up_missing:?}"
    );
    assert!(
        down_missing.is_empty(),
        "downlink QoS 1 messages lost: {down_missing:?}"
    );
    assert_eq!(up_strange, 0, "the watcher saw payloads that are not ours");
    assert_eq!(shared.down_strange.load(Ordering::Relaxed), 0);
    assert_eq!(injected.len(), plan.len(), "not every fault was injected");
    assert!(
        stats.0 as usize > plan.len() / 3,
        "the faults never broke the connection: {} connections",
        stats.0
    );
    assert_eq!(
        allocs, 0,
        "the device's thread allocated {allocs} times ({alloc_bytes} bytes) after warm-up"
    );
}
