//! Behavioural mode: a stateful simulated modem.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::edrx::{Edrx, EdrxPaging};
use crate::link::{
    HostLine, INPUT_STAGING, InputQueue, LineAssembler, Link, Output, Pacing, Recv, UartClock,
    frame, frame_response,
};
use crate::model::{Model, cme_text, ip_error_text};
use crate::pipe::{HostRx, HostTx, Wire, duplex};
use crate::sleep::{MockDtr, MockRi, SleepLine, UartSleepStats, UartSleepTiming};
use crate::sockets::{DEFAULT_SOCKET_BUFFER, Socket, SslCfg};

mod clock;
mod dns;
mod net;
mod power;

pub use clock::ctze_urc;

pub use net::{MAX_FILE_SIZE, MAX_FS_SIZE, qfupl_checksum};
pub use power::{CurrentTable, Ledger, PowerReport, PowerState, RRC_TAIL};

/// The simulated file system (UFS): name as the host gave it (with `UFS:` on EC2x/EC600N) → bytes.
type Files = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

/// SIM card condition at power-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimState {
    /// Unlocked (or no PIN set).
    Ready,
    /// Waiting for the PIN (`+CPIN: SIM PIN`).
    PinRequired,
    /// Waiting for PUK and new PIN (`+CPIN: SIM PUK`).
    PukRequired,
    /// No card (`+CME ERROR: 10`).
    NotInserted,
    /// Card broken (`+CME ERROR: 13`).
    Failure,
    /// Card still initialising (`+CME ERROR: 14`).
    Busy,
}

/// Network registration `<stat>` values.
pub mod reg {
    /// Not registered, not searching.
    pub const NOT_REGISTERED: u8 = 0;
    /// Registered, home network.
    pub const HOME: u8 = 1;
    /// Not registered, searching.
    pub const SEARCHING: u8 = 2;
    /// Registration denied.
    pub const DENIED: u8 = 3;
    /// Unknown.
    pub const UNKNOWN: u8 = 4;
    /// Registered, roaming.
    pub const ROAMING: u8 = 5;
}

/// Configuration / builder of a behavioural mock modem.
///
/// ```
/// use quectel_mock::{MockModem, Model};
/// let (_rx, _tx, handle) = MockModem::new(Model::Bg96).pin(Some("1234")).spawn();
/// handle.shutdown();
/// ```
#[derive(Debug, Clone)]
pub struct MockModem {
    model: Model,
    pin: Option<String>,
    puk: String,
    sim: SimState,
    sim_busy: Duration,
    imei: String,
    iccid: String,
    imsi: String,
    operator: String,
    mccmnc: String,
    tac: String,
    ci: String,
    rssi: u8,
    reg_outcome: u8,
    search_time: Duration,
    pdp_time: Duration,
    pdp_fail: Option<u16>,
    dns: (String, String),
    hosts: Vec<(String, Vec<std::net::IpAddr>)>,
    dns_delay: Duration,
    /// Offset of the local time `AT+CCLK?` reports from UTC, in quarter hours; `None`: the
    /// network never sent the time (the clock counts from `80/01/06,00:00:00`).
    time_zone: Option<i8>,
    pacing: Pacing,
    boot: Option<Duration>,
    reboot_pause: Duration,
    echo: bool,
    cmee: u8,
    garbage: Vec<u8>,
    drop_final: bool,
    silent: bool,
    baud: Option<u32>,
    socket_buffer: usize,
    send_fail: u32,
    open_fail: Option<u16>,
    drop_recv_urcs: u32,
    files: Vec<(String, Vec<u8>)>,
    psm_grant: Option<(Duration, Duration)>,
    tls_alert_wait: Duration,
    uart_sleep: UartSleepTiming,
    edrx_paging: Option<EdrxPaging>,
}

impl MockModem {
    /// A modem of the given model with a ready SIM and sensible defaults:
    /// echo on, CMEE=1, boot URCs emitted immediately, registration to the
    /// home network after 100 ms of searching, PDP activation immediate.
    pub fn new(model: Model) -> Self {
        MockModem {
            model,
            pin: None,
            puk: "12345678".into(),
            sim: SimState::Ready,
            sim_busy: Duration::ZERO,
            imei: "861234567890123".into(),
            iccid: "89860025128306012474".into(),
            imsi: "460023210226023".into(),
            operator: "Mock Telecom".into(),
            mccmnc: "46011".into(),
            tac: "1A2B".into(),
            ci: "1A2D101".into(),
            rssi: 20,
            reg_outcome: reg::HOME,
            search_time: Duration::from_millis(100),
            pdp_time: Duration::ZERO,
            pdp_fail: None,
            dns: ("8.8.8.8".into(), "8.8.4.4".into()),
            hosts: Vec::new(),
            dns_delay: Duration::ZERO,
            time_zone: Some(0),
            pacing: Pacing::default(),
            boot: Some(Duration::ZERO),
            reboot_pause: Duration::from_millis(100),
            echo: true,
            cmee: 1,
            garbage: Vec::new(),
            drop_final: false,
            silent: false,
            baud: None,
            socket_buffer: DEFAULT_SOCKET_BUFFER,
            send_fail: 0,
            open_fail: None,
            drop_recv_urcs: 0,
            files: Vec::new(),
            psm_grant: None,
            tls_alert_wait: crate::sockets::TLS_ALERT_WAIT,
            uart_sleep: UartSleepTiming::default(),
            edrx_paging: None,
        }
    }

    /// The paging schedule the network grants when the host turns eDRX on (`AT+CEDRXS=1|2`):
    /// downlink data is announced only in the window at the start of each cycle (see
    /// [`EdrxPaging`]). Default `None`: eDRX changes nothing.
    pub fn edrx_paging(mut self, paging: Option<EdrxPaging>) -> Self {
        self.edrx_paging = paging;
        self
    }

    /// How the module sleeps with `AT+QSCLK=1` (default: after 20 ms of quiet with DTR high;
    /// awake 20 ms after DTR falls).
    pub fn uart_sleep(mut self, timing: UartSleepTiming) -> Self {
        self.uart_sleep = timing;
        self
    }

    /// Lock the SIM with this PIN (`None`: no PIN, SIM ready at boot).
    pub fn pin(mut self, pin: Option<&str>) -> Self {
        self.pin = pin.map(str::to_string);
        if self.pin.is_some() && self.sim == SimState::Ready {
            self.sim = SimState::PinRequired;
        } else if self.pin.is_none() && self.sim == SimState::PinRequired {
            self.sim = SimState::Ready;
        }
        self
    }
    /// The PUK (default `12345678`).
    pub fn puk(mut self, puk: &str) -> Self {
        self.puk = puk.into();
        self
    }
    /// Start with the SIM in this state (`PinRequired` needs [`pin`](Self::pin); default PIN `1234`).
    pub fn sim(mut self, state: SimState) -> Self {
        self.sim = state;
        if state == SimState::PinRequired && self.pin.is_none() {
            self.pin = Some("1234".into());
        }
        if state == SimState::Busy && self.sim_busy.is_zero() {
            self.sim_busy = Duration::from_secs(1);
        }
        self
    }
    /// SIM answers `+CME ERROR: 14` for this long after every boot.
    pub fn sim_busy_for(mut self, d: Duration) -> Self {
        self.sim_busy = d;
        self
    }
    /// IMEI (`AT+CGSN`).
    pub fn imei(mut self, v: &str) -> Self {
        self.imei = v.into();
        self
    }
    /// ICCID (`AT+QCCID`).
    pub fn iccid(mut self, v: &str) -> Self {
        self.iccid = v.into();
        self
    }
    /// IMSI (`AT+CIMI`).
    pub fn imsi(mut self, v: &str) -> Self {
        self.imsi = v.into();
        self
    }
    /// Operator long name and numeric MCCMNC.
    pub fn operator(mut self, name: &str, mccmnc: &str) -> Self {
        self.operator = name.into();
        self.mccmnc = mccmnc.into();
        self
    }
    /// Tracking area code and cell id (hex, as shown in `+CEREG`).
    pub fn cell(mut self, tac: &str, ci: &str) -> Self {
        self.tac = tac.into();
        self.ci = ci.into();
        self
    }
    /// `+CSQ` rssi (0–31) while registered.
    pub fn rssi(mut self, rssi: u8) -> Self {
        self.rssi = rssi.min(31);
        self
    }
    /// Final registration state after searching ([`reg::HOME`], [`reg::ROAMING`], [`reg::DENIED`], …).
    pub fn registration(mut self, stat: u8) -> Self {
        self.reg_outcome = stat;
        self
    }
    /// How long the modem searches (stat 2) before reaching the final state.
    pub fn search_time(mut self, d: Duration) -> Self {
        self.search_time = d;
        self
    }
    /// How long `AT+QIACT`/`AT+CGACT=1` take before `OK`.
    pub fn pdp_activation_time(mut self, d: Duration) -> Self {
        self.pdp_time = d;
        self
    }
    /// Make PDP activation fail with `ERROR`; `AT+QIGETERROR` then reports `code` (e.g. 561).
    pub fn pdp_fail(mut self, code: Option<u16>) -> Self {
        self.pdp_fail = code;
        self
    }
    /// DNS servers reported by `AT+QIDNSCFG=<cid>`.
    pub fn dns(mut self, primary: &str, secondary: &str) -> Self {
        self.dns = (primary.into(), secondary.into());
        self
    }
    /// Adds `name` to the modem's name table: `AT+QIDNSGIP` resolves it to
    /// `addrs` (in this order) and `AT+QIOPEN`/`AT+QSSLOPEN` connect to its
    /// first address. Names are matched without regard to case. Any name not
    /// in the table (other than `localhost`) fails with 565, DNS parse failed.
    ///
    /// # Panics
    /// If an address is not an IP address literal.
    pub fn host(mut self, name: &str, addrs: &[&str]) -> Self {
        let addrs = addrs
            .iter()
            .map(|a| a.parse().expect("MockModem::host: not an IP address"))
            .collect();
        self.hosts.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.hosts.push((name.to_string(), addrs));
        self
    }
    /// How long after `OK` the `+QIURC: "dnsgip"` results of `AT+QIDNSGIP`
    /// come (default: at once).
    pub fn dns_delay(mut self, d: Duration) -> Self {
        self.dns_delay = d;
        self
    }
    /// The time zone of the network time `AT+CCLK?` reports (local = UTC + `quarters` × 15
    /// min; default 0), or `None`: the network never sent the time, and the clock shows the
    /// power-on default `80/01/06,00:00:00` plus the seconds since boot.
    pub fn time_zone(mut self, quarters: Option<i8>) -> Self {
        self.time_zone = quarters;
        self
    }
    /// Output pacing (chunk size, delay between chunks).
    pub fn pacing(mut self, p: Pacing) -> Self {
        self.pacing = p;
        self
    }
    /// Shorthand for [`pacing`](Self::pacing): write at most `chunk` bytes at a time (0 = whole response).
    pub fn chunk(mut self, chunk: usize, delay: Duration) -> Self {
        self.pacing = Pacing { chunk, delay };
        self
    }
    /// When to emit the boot URC sequence after spawn (`None`: start already
    /// booted and silent; `Some(d)`: stay off for `d`, then boot). Default `Some(0)`.
    pub fn boot(mut self, b: Option<Duration>) -> Self {
        self.boot = b;
        self
    }
    /// Pause between `POWERED DOWN` (or a crash) and the boot sequence on reboot.
    pub fn reboot_pause(mut self, d: Duration) -> Self {
        self.reboot_pause = d;
        self
    }
    /// Echo state at boot (default on, like ATE1 in the factory profile).
    pub fn echo(mut self, on: bool) -> Self {
        self.echo = on;
        self
    }
    /// CMEE value at boot (default 1).
    pub fn cmee(mut self, n: u8) -> Self {
        self.cmee = n.min(2);
        self
    }
    /// Fault: send these bytes before every response (after the echo).
    pub fn garbage_before_response(mut self, bytes: &[u8]) -> Self {
        self.garbage = bytes.to_vec();
        self
    }
    /// Fault: omit the final result code (`OK`/`ERROR`/`+CME ERROR`) of every response.
    pub fn drop_final_results(mut self, on: bool) -> Self {
        self.drop_final = on;
        self
    }
    /// Fault: never answer anything (URCs still flow).
    pub fn silent(mut self, on: bool) -> Self {
        self.silent = on;
        self
    }

    /// Pace both directions like a real UART at this baud rate (10 bits per
    /// byte): modem output is written no faster than the rate and host input
    /// is consumed no faster than the rate. `None` (default): unpaced.
    pub fn baud(mut self, baud: Option<u32>) -> Self {
        self.baud = baud.filter(|&b| b > 0);
        self
    }
    /// Size of each socket's modem-side receive buffer (default 64 KiB). When
    /// it is full the modem stops reading from the connection (back-pressure).
    pub fn socket_buffer(mut self, bytes: usize) -> Self {
        self.socket_buffer = bytes.max(1);
        self
    }
    /// Fault: the next `n` `AT+QISEND`/`AT+QSSLSEND` answer `SEND FAIL` (data not forwarded).
    pub fn send_fail(mut self, n: u32) -> Self {
        self.send_fail = n;
        self
    }
    /// Fault: every `AT+QIOPEN`/`AT+QSSLOPEN` fails with `+QIOPEN: <id>,<code>`
    /// (after `OK`), without touching the network. `None` (default): off.
    pub fn open_fail(mut self, code: Option<u16>) -> Self {
        self.open_fail = code;
        self
    }
    /// Fault: drop the next `n` `"recv"` URCs (`+QIURC`/`+QSSLURC`), as if lost.
    pub fn drop_recv_urcs(mut self, n: u32) -> Self {
        self.drop_recv_urcs = n;
        self
    }
    /// Pre-load a file into the simulated file system (name as the model
    /// expects it, e.g. `UFS:cacert.pem` on EC2x).
    pub fn file(mut self, name: &str, bytes: &[u8]) -> Self {
        self.files.push((name.to_string(), bytes.to_vec()));
        self
    }

    /// The network grants these PSM timers `(periodic TAU, active time)` whatever
    /// `AT+CPSMS` asks for (default: what was asked).
    pub fn psm_grant(mut self, tau: Duration, active: Duration) -> Self {
        self.psm_grant = Some((tau, active));
        self
    }

    /// How long a TLS open waits after the handshake for a post-handshake alert before it
    /// reports success (default [`TLS_ALERT_WAIT`](crate::TLS_ALERT_WAIT)). Shorter for tests
    /// that open many connections to a broker that accepts the certificate.
    pub fn tls_alert_wait(mut self, d: Duration) -> Self {
        self.tls_alert_wait = d;
        self
    }

    /// Run on a fresh in-memory link in a new thread.
    pub fn spawn(self) -> (HostRx, HostTx, ModemHandle) {
        let (rx, tx, end) = duplex();
        let wire = end.wire().clone();
        let mut h = self.spawn_on(end);
        h.wire = Some(wire);
        (rx, tx, h)
    }

    /// Run on any [`Link`] in a new thread.
    pub fn spawn_on<L: Link + 'static>(self, link: L) -> ModemHandle {
        let (ctl_tx, ctl_rx) = mpsc::channel();
        let shared = Arc::new(Mutex::new(ModemState::default()));
        let files = self.initial_files();
        let sh = shared.clone();
        let fs = files.clone();
        let sleep = SleepLine::new(self.uart_sleep);
        let sl = sleep.clone();
        let thread = std::thread::Builder::new()
            .name("mock-modem".into())
            .spawn(move || {
                let mut e = Engine::new(self, sh, fs);
                e.sleep = sl;
                e.run(Box::new(link), ctl_rx)
            })
            .expect("spawn mock modem thread");
        ModemHandle {
            ctl: ctl_tx,
            shared,
            files,
            sleep,
            thread: Some(thread),
            wire: None,
        }
    }

    /// Run on `link` in the calling thread until the link closes.
    pub fn serve<L: Link + 'static>(self, link: L) {
        let (_tx, rx) = mpsc::channel();
        let shared = Arc::new(Mutex::new(ModemState::default()));
        let files = self.initial_files();
        Engine::new(self, shared, files).run(Box::new(link), rx);
    }

    fn initial_files(&self) -> Files {
        Arc::new(Mutex::new(self.files.iter().cloned().collect()))
    }
}

/// Snapshot of the simulated modem's state, for assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModemState {
    /// Powered on and booted.
    pub powered: bool,
    /// Number of boots so far.
    pub boots: u32,
    /// Echo (ATE).
    pub echo: bool,
    /// CMEE mode.
    pub cmee: u8,
    /// CFUN level.
    pub cfun: u8,
    /// SIM state (`None` before the first boot).
    pub sim: Option<SimState>,
    /// Registration `<stat>`.
    pub reg_stat: u8,
    /// Active PDP contexts: (cid, IPv4 or IPv6 address).
    pub active_contexts: Vec<(u8, String)>,
    /// Command lines received (at most 10 000 kept).
    pub commands: Vec<String>,
    /// Open (or opening / closing) TCP and SSL sockets, by id.
    pub sockets: Vec<SocketInfo>,
    /// UART rate in force (`None`: unpaced).
    pub baud: Option<u32>,
    /// PSM, virtual time and the charge ledger (see [`PowerReport`]).
    pub power: PowerReport,
    /// `"recv"` URCs held until an eDRX paging window.
    pub edrx_held: u32,
}

/// One socket in a [`ModemState`] snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketInfo {
    /// `<connectID>` / `<clientID>` (0–11).
    pub id: u8,
    /// SSL context for SSL sockets, `None` for TCP.
    pub ssl_ctx: Option<u8>,
    /// PDP context.
    pub cid: u8,
    /// `<socket_state>`: 1 opening, 2 connected, 4 closing.
    pub state: u8,
    /// Remote address and port.
    pub remote: String,
    /// Remote port.
    pub port: u16,
    /// Bytes received from the peer so far.
    pub rx_total: u64,
    /// Bytes buffered in the modem, not yet read by the host.
    pub unread: usize,
    /// Bytes sent to the peer so far.
    pub tx_total: u64,
}

enum Control {
    Reboot,
    Urc(String),
    Raw(Vec<u8>),
    SetRegistration(u8),
    RemoveSim,
    InsertSim,
    Silent(bool),
    DropFinal(bool),
    Pacing(Pacing),
    Garbage(Vec<u8>),
    Baud(Option<u32>),
    SendFail(u32),
    OpenFail(Option<u16>),
    DropSocket(u8),
    DropRecvUrcs(u32),
    Advance(Duration, Sender<()>),
    Pwrkey,
    Shutdown,
}

/// Test-side control of a running behavioural modem.
///
/// Dropping the handle does not stop the modem; it stops when the host
/// endpoints are dropped or [`shutdown`](Self::shutdown) is called.
pub struct ModemHandle {
    ctl: Sender<Control>,
    shared: Arc<Mutex<ModemState>>,
    files: Files,
    sleep: SleepLine,
    thread: Option<JoinHandle<()>>,
    wire: Option<Wire>,
}

impl fmt::Debug for ModemHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModemHandle")
            .field("state", &self.state())
            .finish()
    }
}

impl ModemHandle {
    fn send(&self, c: Control) {
        let _ = self.ctl.send(c);
    }
    /// Crash-style reboot: no `POWERED DOWN`, state reset, boot URCs after the reboot pause.
    pub fn reboot(&self) {
        self.send(Control::Reboot)
    }
    /// Emit a URC (framed `\r\n…\r\n`) between responses. `+QIURC: "pdpdeact",<cid>`
    /// also deactivates that context.
    pub fn inject_urc(&self, urc: &str) {
        self.send(Control::Urc(urc.into()))
    }
    /// Emit raw bytes (garbage, partial lines, payloads) between responses.
    pub fn inject_raw(&self, bytes: &[u8]) {
        self.send(Control::Raw(bytes.to_vec()))
    }
    /// Force the registration state now (emits `+CREG`/`+CGREG`/`+CEREG` URCs per their `n`).
    pub fn set_registration(&self, stat: u8) {
        self.send(Control::SetRegistration(stat))
    }
    /// Pull the SIM: emits `+CPIN: NOT READY`, drops registration.
    pub fn remove_sim(&self) {
        self.send(Control::RemoveSim)
    }
    /// Put the SIM back (locked again if a PIN is configured).
    pub fn insert_sim(&self) {
        self.send(Control::InsertSim)
    }
    /// Stop (or resume) answering commands.
    pub fn set_silent(&self, on: bool) {
        self.send(Control::Silent(on))
    }
    /// Drop (or stop dropping) final result codes.
    pub fn set_drop_final_results(&self, on: bool) {
        self.send(Control::DropFinal(on))
    }
    /// Change output pacing.
    pub fn set_pacing(&self, p: Pacing) {
        self.send(Control::Pacing(p))
    }
    /// Set the garbage bytes sent before every response (empty: none).
    pub fn set_garbage(&self, bytes: &[u8]) {
        self.send(Control::Garbage(bytes.to_vec()))
    }
    /// Change the UART rate of both directions (`None`: unpaced).
    pub fn set_baud(&self, baud: Option<u32>) {
        self.send(Control::Baud(baud))
    }
    /// Fault: the next `n` `AT+QISEND`/`AT+QSSLSEND` answer `SEND FAIL`.
    pub fn fail_next_sends(&self, n: u32) {
        self.send(Control::SendFail(n))
    }
    /// Fault: make `AT+QIOPEN`/`AT+QSSLOPEN` fail with this code (`None`: off).
    pub fn set_open_fail(&self, code: Option<u16>) {
        self.send(Control::OpenFail(code))
    }
    /// Fault: close socket `id` from the network side (as if the connection
    /// dropped): the connection is shut down and `+QIURC: "closed",<id>`
    /// (`+QSSLURC: "closed",<id>` for SSL) is emitted; buffered data stays readable.
    pub fn drop_socket(&self, id: u8) {
        self.send(Control::DropSocket(id))
    }
    /// Fault: drop the next `n` `"recv"` URCs.
    pub fn drop_next_recv_urcs(&self, n: u32) {
        self.send(Control::DropRecvUrcs(n))
    }
    /// Skips `d` of virtual time at once (see the `power` module of this crate: PSM entry
    /// after T3324, wakes on the periodic TAU, the ledger), and returns when the modem has
    /// taken it, with the URCs of the skipped stretch written.
    pub fn advance(&self, d: Duration) {
        let (tx, rx) = mpsc::channel();
        self.send(Control::Advance(d, tx));
        let _ = rx.recv_timeout(Duration::from_secs(10));
    }
    /// A PWRKEY press (or a PON_TRIG edge): wakes the module from PSM (`RDY`).
    pub fn pwrkey(&self) {
        self.send(Control::Pwrkey)
    }
    /// Contents of a file in the simulated file system (exact name, e.g. `UFS:a.pem` on EC2x).
    pub fn file(&self, name: &str) -> Option<Vec<u8>> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
    /// Names and sizes of all files.
    pub fn files(&self) -> Vec<(String, usize)> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }
    /// Store (or replace) a file directly, bypassing `AT+QFUPL`.
    pub fn put_file(&self, name: &str, bytes: &[u8]) {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), bytes.to_vec());
    }
    /// Delete a file directly; returns whether it existed.
    pub fn remove_file(&self, name: &str) -> bool {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .is_some()
    }
    /// The module's DTR input, as an output pin for the driver (`UartSleep::new`).
    pub fn dtr(&self) -> MockDtr {
        MockDtr(self.sleep.clone())
    }
    /// `"recv"` URCs the module held until a paging window (eDRX), so far.
    pub fn edrx_held_urcs(&self) -> u32 {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .edrx_held
    }
    /// The module's RI output, as an async input pin for the driver (`UartSleep::with_ri`).
    pub fn ri(&self) -> MockRi {
        MockRi(self.sleep.clone())
    }
    /// The module's UART sleep: setting, DTR level, asleep or not, bytes dropped.
    pub fn uart_sleep(&self) -> UartSleepStats {
        self.sleep.stats()
    }
    /// Current state snapshot.
    pub fn state(&self) -> ModemState {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// Command lines received so far.
    pub fn commands(&self) -> Vec<String> {
        self.state().commands
    }
    /// Wait up to `timeout` until `pred(state)` holds; returns whether it did.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&ModemState) -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if pred(&self.state()) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    /// Counters and transcripts (for modems started with [`MockModem::spawn`]).
    pub fn wire(&self) -> Option<&Wire> {
        self.wire.as_ref()
    }
    /// Stop the modem thread and wait for it (the host then reads EOF).
    pub fn shutdown(mut self) {
        self.send(Control::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Ctx {
    defined: bool,
    ctype: u8,
    apn: String,
    user: String,
    pass: String,
    auth: u8,
    active: bool,
    ip4: String,
    ip6: String,
    dns: Option<(String, String)>,
}

impl Ctx {
    fn fresh() -> Ctx {
        Ctx {
            ctype: 1,
            ..Ctx::default()
        }
    }
    fn type_name(&self) -> &'static str {
        match self.ctype {
            2 => "IPV6",
            3 => "IPV4V6",
            _ => "IP",
        }
    }
    fn main_ip(&self) -> &str {
        if self.ctype == 2 {
            &self.ip6
        } else {
            &self.ip4
        }
    }
}

enum Final {
    Ok,
    Error,
    Cme(u16),
}

struct Reply {
    lines: Vec<String>,
    fin: Final,
    after: Vec<String>,
}

impl Reply {
    fn ok() -> Reply {
        Reply::lines(Vec::new())
    }
    fn line(l: impl Into<String>) -> Reply {
        Reply::lines(vec![l.into()])
    }
    fn lines(lines: Vec<String>) -> Reply {
        Reply {
            lines,
            fin: Final::Ok,
            after: Vec::new(),
        }
    }
    fn error() -> Reply {
        Reply {
            lines: Vec::new(),
            fin: Final::Error,
            after: Vec::new(),
        }
    }
    fn cme(code: u16) -> Reply {
        Reply {
            lines: Vec::new(),
            fin: Final::Cme(code),
            after: Vec::new(),
        }
    }
}

enum Timer {
    Boot,
    SimBusyEnd,
    RegStart,
    RegDone,
    PdpDone {
        cid: u8,
        reply_cgact: bool,
    },
    /// URCs to send (e.g. a delayed DNS result).
    Urcs(Vec<String>),
}

const MAX_LOG: usize = 10_000;

struct Engine {
    cfg: MockModem,
    shared: Arc<Mutex<ModemState>>,
    pacing: Pacing,
    garbage: Vec<u8>,
    drop_final: bool,
    silent: bool,
    powered: bool,
    boots: u32,
    echo: bool,
    cmee: u8,
    cfun: u8,
    sim: SimState,
    pin: Option<String>,
    pin_left: u8,
    puk_left: u8,
    reg: u8,
    creg_n: u8,
    cgreg_n: u8,
    cereg_n: u8,
    cops_format: u8,
    ctx: Vec<Ctx>,
    activations: u32,
    ip_error: u16,
    timers: Vec<(Instant, Timer)>,
    busy: bool,
    sim_busy_saved: Option<SimState>,
    lines: LineAssembler,
    input: InputQueue,
    out_clock: UartClock,
    data_mode: Option<net::DataMode>,
    log: Vec<String>,
    broken: bool,
    files: Files,
    sockets: Vec<Option<Socket>>,
    ssl: Vec<SslCfg>,
    ip_detail: Option<String>,
    send_fail: u32,
    open_fail: Option<u16>,
    drop_recv: u32,
    psm: power::Psm,
    sleep: SleepLine,
    edrx: Edrx,
}

/// Splits the body of a command line (after `AT`) at the `;` that separate concatenated
/// commands (not inside quotes). A trailing `;` ends the line.
fn split_concatenated(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    for c in body.chars() {
        match c {
            '"' => {
                in_q = !in_q;
                cur.push(c);
            }
            ';' if !in_q => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() || out.is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Information lines framed like the start of a response (`\r\n<line>\r\n` …).
fn frame_lines(lines: &[String]) -> Vec<u8> {
    let mut v = b"\r\n".to_vec();
    for l in lines {
        v.extend_from_slice(l.as_bytes());
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    for c in s.chars() {
        match c {
            '"' => in_q = !in_q,
            ',' if !in_q => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

impl Engine {
    fn new(cfg: MockModem, shared: Arc<Mutex<ModemState>>, files: Files) -> Engine {
        Engine {
            input: InputQueue::new(cfg.baud),
            out_clock: UartClock::new(cfg.baud),
            data_mode: None,
            files,
            sockets: (0..net::MAX_SOCKETS).map(|_| None).collect(),
            ssl: Vec::new(),
            ip_detail: None,
            send_fail: cfg.send_fail,
            open_fail: cfg.open_fail,
            drop_recv: cfg.drop_recv_urcs,
            psm: power::Psm::new(cfg.psm_grant),
            sleep: SleepLine::new(cfg.uart_sleep),
            edrx: Edrx::new(cfg.edrx_paging),
            pacing: cfg.pacing,
            garbage: cfg.garbage.clone(),
            drop_final: cfg.drop_final,
            silent: cfg.silent,
            powered: false,
            boots: 0,
            echo: cfg.echo,
            cmee: cfg.cmee,
            cfun: 1,
            sim: cfg.sim,
            pin: cfg.pin.clone(),
            pin_left: 3,
            puk_left: 10,
            reg: reg::NOT_REGISTERED,
            creg_n: 0,
            cgreg_n: 0,
            cereg_n: 0,
            cops_format: 0,
            ctx: Vec::new(),
            activations: 0,
            ip_error: 0,
            timers: Vec::new(),
            busy: false,
            sim_busy_saved: None,
            lines: LineAssembler::default(),
            log: Vec::new(),
            broken: false,
            shared,
            cfg,
        }
    }

    fn run(mut self, mut link: Box<dyn Link>, ctl: Receiver<Control>) {
        self.reset_state();
        match self.cfg.boot {
            Some(d) => self.timers.push((Instant::now() + d, Timer::Boot)),
            None => {
                // Start already booted, without URCs.
                self.powered = true;
                self.boots = 1;
                self.sim_after_boot(&mut *link, false);
            }
        }
        let mut buf = [0u8; 512];
        let mut ctl_open = true;
        loop {
            while ctl_open {
                match ctl.try_recv() {
                    Ok(Control::Shutdown) => return,
                    Ok(c) => self.control(&mut *link, c),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => ctl_open = false,
                }
            }
            self.fire_timers(&mut *link);
            self.psm_tick(&mut *link);
            self.poll_sockets(&mut *link);
            self.process_input(&mut *link);
            self.publish();
            if self.broken {
                return;
            }
            let now = Instant::now();
            let mut wait = Duration::from_millis(5);
            if let Some(next) = self.timers.iter().map(|t| t.0).min() {
                wait = wait.min(next.saturating_duration_since(now));
            }
            if !self.busy
                && let Some(t) = self.input.next_release()
                && t > now
            {
                wait = wait.min(t - now);
            }
            if self.input.len() >= INPUT_STAGING {
                std::thread::sleep(wait);
                continue;
            }
            match link.recv(&mut buf, wait) {
                Recv::Data(n) => {
                    self.psm_activity(n);
                    // A sleeping module drops what it is sent (AT+QSCLK=1).
                    let kept = self.sleep.input(&buf[..n]);
                    self.input.push(kept, Instant::now())
                }
                Recv::Timeout => {}
                Recv::Closed => return,
            }
        }
    }

    fn publish(&self) {
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        s.powered = self.powered;
        s.boots = self.boots;
        s.echo = self.echo;
        s.cmee = self.cmee;
        s.cfun = self.cfun;
        s.sim = if self.boots > 0 { Some(self.sim) } else { None };
        s.reg_stat = self.reg;
        s.active_contexts = self
            .ctx
            .iter()
            .enumerate()
            .filter(|(_, c)| c.active)
            .map(|(i, c)| (i as u8, c.main_ip().to_string()))
            .collect();
        if s.commands.len() != self.log.len() {
            s.commands = self.log.clone();
        }
        s.baud = self.out_clock.baud;
        s.edrx_held = self.edrx.held;
        s.sockets = self.socket_infos();
        s.power = self.psm_report();
    }

    fn out(&mut self, link: &mut dyn Link, bytes: &[u8]) {
        self.psm_out(bytes.len());
        // State changes become visible before the bytes that report them.
        self.publish();
        self.sleep.output();
        let mut o = Output {
            link,
            pacing: self.pacing,
            clock: &mut self.out_clock,
            broken: false,
        };
        o.raw(bytes);
        self.broken |= o.broken;
    }

    fn urc(&mut self, link: &mut dyn Link, text: &str) {
        self.out(link, &frame(text));
        self.sleep.ri_pulse();
    }

    /// Power-on defaults (also after a reboot).
    fn reset_state(&mut self) {
        // AT+QSCLK is not saved: off after every boot.
        self.sleep.set_mode(0);
        self.echo = self.cfg.echo;
        self.cmee = self.cfg.cmee;
        self.cfun = 1;
        self.sim = self.cfg.sim;
        if self.sim == SimState::Busy {
            self.sim = SimState::Ready;
        }
        self.pin = self.cfg.pin.clone();
        if self.sim == SimState::Ready && self.pin.is_some() {
            self.sim = SimState::PinRequired;
        }
        self.pin_left = 3;
        self.puk_left = 10;
        self.reg = reg::NOT_REGISTERED;
        self.creg_n = 0;
        self.cgreg_n = 0;
        self.cereg_n = 0;
        self.cops_format = 0;
        let mut ctx = vec![Ctx::fresh(); self.cfg.model.max_cid() as usize + 1];
        ctx[1].defined = true;
        self.ctx = ctx;
        self.set_ip_error(0, None);
        self.ip_detail = None;
        self.timers.clear();
        self.busy = false;
        self.input.clear();
        self.data_mode = None;
        self.lines = LineAssembler::default();
        self.close_all_sockets();
        self.ssl = (0..net::MAX_SSL_CTX)
            .map(|_| SslCfg::new(self.cfg.model.default_sni()))
            .collect();
    }

    fn boot(&mut self, link: &mut dyn Link) {
        self.powered = true;
        self.boots += 1;
        for u in self.cfg.model.boot_prefix() {
            self.urc(link, u);
        }
        self.sim_after_boot(link, true);
    }

    /// SIM part of the boot (or of CFUN=1 / SIM insertion).
    fn sim_after_boot(&mut self, link: &mut dyn Link, urcs: bool) {
        if self.cfg.sim_busy > Duration::ZERO && self.sim_present() {
            self.timers
                .push((Instant::now() + self.cfg.sim_busy, Timer::SimBusyEnd));
            self.sim_busy_saved = Some(self.sim);
            self.sim = SimState::Busy;
            return;
        }
        self.sim_status_urcs(link, urcs);
    }

    fn sim_present(&self) -> bool {
        !matches!(self.sim, SimState::NotInserted | SimState::Failure)
    }

    fn sim_status_urcs(&mut self, link: &mut dyn Link, urcs: bool) {
        let text = match self.sim {
            SimState::Ready => {
                if urcs {
                    for u in self.cfg.model.sim_ready_urcs() {
                        self.urc(link, u);
                    }
                }
                self.start_registration(link);
                return;
            }
            SimState::PinRequired => "+CPIN: SIM PIN",
            SimState::PukRequired => "+CPIN: SIM PUK",
            SimState::NotInserted => "+CPIN: NOT READY",
            SimState::Failure | SimState::Busy => return,
        };
        if urcs {
            self.urc(link, text);
        }
    }

    fn start_registration(&mut self, link: &mut dyn Link) {
        if self.cfun != 1 || self.sim != SimState::Ready {
            return;
        }
        self.timers
            .retain(|t| !matches!(t.1, Timer::RegDone | Timer::RegStart));
        if self.cfg.search_time.is_zero() {
            self.set_reg(link, self.cfg.reg_outcome);
        } else {
            self.set_reg(link, reg::SEARCHING);
            self.timers
                .push((Instant::now() + self.cfg.search_time, Timer::RegDone));
        }
    }

    fn registered(&self) -> bool {
        matches!(self.reg, reg::HOME | reg::ROAMING)
    }

    fn set_reg(&mut self, link: &mut dyn Link, stat: u8) {
        if stat == self.reg {
            return;
        }
        self.reg = stat;
        let loc = format!(
            "{},\"{}\",\"{}\",{}",
            stat,
            self.cfg.tac,
            self.cfg.ci,
            self.cfg.model.act()
        );
        for (name, n) in [
            ("CREG", self.creg_n),
            ("CGREG", self.cgreg_n),
            ("CEREG", self.cereg_n),
        ] {
            let text = match n {
                0 => continue,
                1 => format!("+{name}: {stat}"),
                _ if self.registered() => format!("+{name}: {loc}"),
                _ => format!("+{name}: {stat}"),
            };
            let text = if name == "CEREG" && n == 4 && self.registered() {
                text + &self.psm_cereg_timers()
            } else {
                text
            };
            self.urc(link, &text);
        }
    }

    fn fire_timers(&mut self, link: &mut dyn Link) {
        let now = Instant::now();
        while let Some(i) = self.timers.iter().position(|t| t.0 <= now) {
            let (_, t) = self.timers.remove(i);
            match t {
                Timer::Boot => {
                    let reboot = self.boots > 0;
                    if reboot {
                        self.reset_state();
                    }
                    self.boot(link);
                }
                Timer::SimBusyEnd => {
                    if self.sim == SimState::Busy {
                        self.sim = self.sim_busy_saved.take().unwrap_or(SimState::Ready);
                        self.sim_status_urcs(link, true);
                    }
                }
                Timer::RegStart => self.start_registration(link),
                Timer::RegDone => {
                    if self.cfun == 1 && self.sim == SimState::Ready {
                        self.set_reg(link, self.cfg.reg_outcome);
                    }
                }
                Timer::PdpDone { cid, reply_cgact } => {
                    self.busy = false;
                    let r = self.finish_activation(cid, reply_cgact);
                    self.reply(link, r);
                }
                Timer::Urcs(lines) => {
                    for l in &lines {
                        self.urc(link, l);
                    }
                }
            }
        }
    }

    fn control(&mut self, link: &mut dyn Link, c: Control) {
        match c {
            Control::Reboot => self.power_cycle(link, false),
            Control::Urc(u) => {
                if let Some(rest) = u.strip_prefix("+QIURC: \"pdpdeact\",")
                    && let Ok(cid) = rest.trim().parse::<usize>()
                    && let Some(c) = self.ctx.get_mut(cid)
                {
                    c.active = false;
                    self.pdp_lost(cid as u8);
                }
                self.urc(link, &u);
            }
            Control::Raw(b) => self.out(link, &b),
            Control::SetRegistration(s) => {
                self.timers.retain(|t| !matches!(t.1, Timer::RegDone));
                self.set_reg(link, s);
            }
            Control::RemoveSim => {
                self.sim = SimState::NotInserted;
                self.urc(link, "+CPIN: NOT READY");
                self.timers.retain(|t| !matches!(t.1, Timer::RegDone));
                self.set_reg(link, reg::NOT_REGISTERED);
            }
            Control::InsertSim => {
                if self.sim == SimState::NotInserted {
                    self.sim = if self.pin.is_some() {
                        SimState::PinRequired
                    } else {
                        SimState::Ready
                    };
                    self.sim_status_urcs(link, true);
                }
            }
            Control::Silent(on) => self.silent = on,
            Control::DropFinal(on) => self.drop_final = on,
            Control::Pacing(p) => self.pacing = p,
            Control::Garbage(g) => self.garbage = g,
            Control::Baud(b) => {
                self.out_clock.set_baud(b);
                self.input.clock.set_baud(b);
            }
            Control::SendFail(n) => self.send_fail = n,
            Control::OpenFail(c) => self.open_fail = c,
            Control::DropSocket(id) => self.network_drop(link, id),
            Control::DropRecvUrcs(n) => self.drop_recv = n,
            Control::Advance(d, done) => {
                self.psm_advance(link, d);
                self.publish();
                let _ = done.send(());
            }
            Control::Pwrkey => self.psm_pwrkey(link),
            Control::Shutdown => {}
        }
    }

    /// Reboot: optional `POWERED DOWN`, off for the reboot pause, then boot.
    fn power_cycle(&mut self, link: &mut dyn Link, announce: bool) {
        if announce {
            self.urc(link, "POWERED DOWN");
        }
        self.powered = false;
        self.timers.clear();
        self.busy = false;
        self.input.clear();
        self.data_mode = None;
        self.reg = reg::NOT_REGISTERED;
        for c in &mut self.ctx {
            c.active = false;
        }
        self.close_all_sockets();
        self.timers
            .push((Instant::now() + self.cfg.reboot_pause, Timer::Boot));
    }

    /// Consume host bytes that have arrived: payload in data mode, command lines otherwise.
    fn process_input(&mut self, link: &mut dyn Link) {
        let now = Instant::now();
        loop {
            if self.broken {
                return;
            }
            if !self.powered {
                // Powered off: bytes are lost.
                while let Some((b, _)) = self.input.pop(now) {
                    let _ = self.lines.push(b);
                }
                return;
            }
            if self.data_mode.is_some() {
                match self.input.pop(now) {
                    Some((b, seen)) => self.data_byte(link, b, seen, now),
                    None => {
                        self.data_idle(link, now);
                        return;
                    }
                }
                continue;
            }
            if self.busy {
                return;
            }
            let Some((b, _)) = self.input.pop(now) else {
                return;
            };
            if let Some(line) = self.lines.push(b) {
                self.handle_line(link, line);
            }
        }
    }

    fn handle_line(&mut self, link: &mut dyn Link, line: HostLine) {
        let bytes = match line {
            HostLine::TooLong => {
                if !self.silent {
                    let r = Reply::error();
                    self.reply(link, r);
                }
                return;
            }
            HostLine::Line(b) => b,
        };
        if bytes.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if self.log.len() < MAX_LOG {
            self.log.push(text.clone());
        }
        if self.silent {
            return;
        }
        if self.echo {
            let mut e = bytes.clone();
            e.push(b'\r');
            self.out(link, &e);
        }
        let is_at = bytes.len() >= 2 && bytes[..2].eq_ignore_ascii_case(b"AT");
        if !is_at {
            return; // Not a command: a real module ignores it.
        }
        if !self.garbage.is_empty() {
            let g = self.garbage.clone();
            self.out(link, &g);
        }
        let parts = split_concatenated(&text[2..]);
        if parts.len() > 1 {
            self.concatenated(link, &parts);
        } else if let Some(r) = self.command(link, &text[2..]) {
            self.reply(link, r);
        }
    }

    /// A command line of several commands (`AT+A=1;+B=2`, V.250 §5.4.1; Quectel's manuals
    /// show `AT+IPR=921600;&W`): run in order; the information lines of each come out in
    /// order, then one final result code: `OK` when all succeeded, else the error of the first
    /// that failed, and the commands after it are not run. A command that answers later (an
    /// activation, an open) or enters a data mode must be the last one.
    fn concatenated(&mut self, link: &mut dyn Link, parts: &[String]) {
        let mut lines = Vec::new();
        let mut after = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            // Every command after the first is an extended one (`+…`) or an `&` one.
            let ok_form = i == 0 || part.starts_with('+') || part.starts_with('&');
            let r = if ok_form {
                self.command(link, part)
            } else {
                Some(Reply::error())
            };
            match r {
                Some(r) => {
                    lines.extend(r.lines);
                    after.extend(r.after);
                    if !matches!(r.fin, Final::Ok) {
                        self.reply(
                            link,
                            Reply {
                                lines,
                                fin: r.fin,
                                after,
                            },
                        );
                        return;
                    }
                }
                None if last => {
                    if !lines.is_empty() {
                        let bytes = frame_lines(&lines);
                        self.out(link, &bytes);
                    }
                    return;
                }
                None => {
                    self.reply(
                        link,
                        Reply {
                            lines,
                            fin: Final::Error,
                            after,
                        },
                    );
                    return;
                }
            }
        }
        self.reply(
            link,
            Reply {
                lines,
                fin: Final::Ok,
                after,
            },
        );
    }

    fn reply(&mut self, link: &mut dyn Link, r: Reply) {
        let fin = match r.fin {
            Final::Ok => "OK".to_string(),
            Final::Error => "ERROR".to_string(),
            Final::Cme(code) => match self.cmee {
                0 => "ERROR".to_string(),
                1 => format!("+CME ERROR: {code}"),
                _ => format!("+CME ERROR: {}", cme_text(code)),
            },
        };
        let bytes = if self.drop_final {
            if r.lines.is_empty() {
                Vec::new()
            } else {
                let mut v = b"\r\n".to_vec();
                for l in &r.lines {
                    v.extend_from_slice(l.as_bytes());
                    v.extend_from_slice(b"\r\n");
                }
                v
            }
        } else {
            frame_response(&r.lines, &fin)
        };
        self.out(link, &bytes);
        for u in &r.after {
            self.urc(link, u);
        }
    }

    fn sim_error(&self, need_unlocked: bool) -> Option<u16> {
        if self.cfun == 0 {
            return Some(13);
        }
        match self.sim {
            SimState::NotInserted => Some(10),
            SimState::Failure => Some(13),
            SimState::Busy => Some(14),
            SimState::PinRequired if need_unlocked => Some(11),
            SimState::PukRequired if need_unlocked => Some(12),
            _ => None,
        }
    }

    fn cid_arg(&self, s: &str) -> Option<usize> {
        let cid: usize = s.trim().parse().ok()?;
        (1..self.ctx.len()).contains(&cid).then_some(cid)
    }

    /// Handle one command (text after `AT`). `None`: reply comes later.
    fn command(&mut self, link: &mut dyn Link, body: &str) -> Option<Reply> {
        let model = self.cfg.model;
        let upper = body.to_ascii_uppercase();
        // Split name / form.
        let name_end = body.find(['=', '?']).unwrap_or(body.len());
        let name = upper[..name_end].trim().to_string();
        let rest = &body[name_end..];
        let (form, args) = if rest == "?" {
            ('?', Vec::new())
        } else if rest == "=?" {
            ('t', Vec::new())
        } else if let Some(a) = rest.strip_prefix('=') {
            ('=', split_args(a))
        } else if rest.is_empty() {
            ('x', Vec::new())
        } else {
            return Some(Reply::error());
        };
        let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
        if let Some(r) = self.psm_command(link, &name, form, &args) {
            return Some(r);
        }
        let num = |i: usize| -> Option<u32> { args.get(i)?.parse().ok() };
        let r = match (name.as_str(), form) {
            ("", 'x') => Reply::ok(),
            ("E0" | "E", 'x') => {
                self.echo = false;
                Reply::ok()
            }
            ("E1", 'x') => {
                self.echo = true;
                Reply::ok()
            }
            ("I" | "I0", 'x') => Reply::lines(vec![
                "Quectel".into(),
                model.ati_name().into(),
                format!("Revision: {}", model.revision()),
            ]),
            ("+CGMI" | "+GMI", 'x') => Reply::line("Quectel"),
            ("+CGMM" | "+GMM", 'x') => Reply::line(model.ati_name()),
            ("+CGMR" | "+GMR", 'x') => Reply::line(model.revision()),
            ("+QGMR", 'x') => Reply::line(model.qgmr()),
            ("+CGSN" | "+GSN", 'x') => Reply::line(self.cfg.imei.clone()),
            ("&W" | "&W0" | "V1" | "Q0" | "&D0" | "&D1" | "&D2" | "&C1" | "&C0", 'x') => {
                Reply::ok()
            }
            ("&F" | "&F0" | "Z" | "Z0", 'x') => {
                self.echo = true;
                Reply::ok()
            }
            ("+QSCLK", '=') => match num(0) {
                Some(n @ 0..=2) if args.len() == 1 => {
                    self.sleep.set_mode(n as u8);
                    Reply::ok()
                }
                _ => Reply::error(),
            },
            ("+CEDRXS", '=') => match (num(0), num(1)) {
                (Some(mode @ 0..=3), act) if args.len() <= 3 => {
                    let act = act.unwrap_or(4) as u8;
                    self.edrx.set(mode as u8, act, arg(2));
                    if let Some(u) = self.edrx.report_urc() {
                        let mut r = Reply::ok();
                        r.after.push(u);
                        r
                    } else {
                        Reply::ok()
                    }
                }
                _ => Reply::error(),
            },
            ("+CEDRXS", '?') => match &self.edrx.requested {
                Some((act, v)) => Reply::line(format!("+CEDRXS: {act},\"{v}\"")),
                None => Reply::ok(),
            },
            ("+CEDRXRDP", 'x') => Reply::line(self.edrx.rdp()),
            ("+QSCLK", '?') => Reply::line(format!("+QSCLK: {}", self.sleep.mode())),
            (
                "+QURCCFG" | "+IFC" | "+CTZR" | "+QINDCFG" | "+CGEREP" | "+QCFG" | "+QISDE"
                | "+QICFG" | "+IPR" | "+QSCLK" | "+CPSMS" | "+CEDRXS" | "+QPTWEDRXS" | "+QSIMSTAT"
                | "+QSIMDET",
                '=' | '?' | 't',
            ) => Reply::ok(),
            ("+CMEE", '=') => match num(0) {
                Some(n @ 0..=2) if args.len() == 1 => {
                    self.cmee = n as u8;
                    Reply::ok()
                }
                _ => Reply::error(),
            },
            ("+CMEE", '?') => Reply::line(format!("+CMEE: {}", self.cmee)),
            ("+CMEE", 't') => Reply::line("+CMEE: (0-2)"),
            ("+QCCID", 'x') => match self.sim_error(false) {
                Some(e) => Reply::cme(e),
                None => Reply::line(format!("+QCCID: {}", self.cfg.iccid)),
            },
            ("+CIMI", 'x') => match self.sim_error(true) {
                Some(e) => Reply::cme(e),
                None => Reply::line(self.cfg.imsi.clone()),
            },
            ("+QINISTAT", 'x') => {
                let v = if self.sim == SimState::Ready && self.cfun != 0 {
                    model.inistat_ready()
                } else {
                    0
                };
                Reply::line(format!("+QINISTAT: {v}"))
            }
            ("+QPINC", '=') => Reply::line(format!(
                "+QPINC: \"SC\",{},{}",
                self.pin_left, self.puk_left
            )),
            ("+CPIN", '?') => match self.sim_error(false) {
                Some(e) => Reply::cme(e),
                None => Reply::line(match self.sim {
                    SimState::PinRequired => "+CPIN: SIM PIN",
                    SimState::PukRequired => "+CPIN: SIM PUK",
                    _ => "+CPIN: READY",
                }),
            },
            ("+CPIN", 't') => Reply::ok(),
            ("+CPIN", '=') => self.cpin(link, &args),
            ("+CFUN", '?') => Reply::line(format!("+CFUN: {}", self.cfun)),
            ("+QLTS", 'x' | '=') => match num(0) {
                Some(m @ 0..=2) if args.len() <= 1 => {
                    Reply::line(clock::qlts(self.cfg.time_zone, m))
                }
                None if args.is_empty() || args == [""] => {
                    Reply::line(clock::qlts(self.cfg.time_zone, 0))
                }
                _ => Reply::error(),
            },
            ("+CCLK", '?') => {
                Reply::line(format!("+CCLK: \"{}\"", clock::cclk(self.cfg.time_zone)))
            }
            ("+CFUN", 't') => Reply::line("+CFUN: (0,1,4),(0-1)"),
            ("+CFUN", '=') => {
                let fun = num(0);
                let rst = if args.len() > 1 { num(1) } else { Some(0) };
                match (fun, rst) {
                    (Some(1), Some(1)) => {
                        let r = Reply::ok();
                        self.reply(link, r);
                        self.power_cycle(link, true);
                        return None;
                    }
                    (Some(f @ (0 | 1 | 4)), Some(0)) if args.len() <= 2 => {
                        self.set_cfun(link, f as u8);
                        return None;
                    }
                    _ => Reply::error(),
                }
            }
            ("+QPOWD", 'x' | '=') => {
                let r = Reply::ok();
                self.reply(link, r);
                self.urc(link, "POWERED DOWN");
                self.powered = false;
                self.timers.clear();
                self.input.clear();
                self.close_all_sockets();
                return None;
            }
            ("+QPOWD", 't') => Reply::line("+QPOWD: (0,1)"),
            ("+CREG" | "+CGREG" | "+CEREG", '=') => {
                let max = if name == "+CREG" { 2 } else { 4 };
                match num(0) {
                    Some(n) if n <= max && n != 3 && args.len() == 1 => {
                        let n = n as u8;
                        match name.as_str() {
                            "+CREG" => self.creg_n = n,
                            "+CGREG" => self.cgreg_n = n,
                            _ => self.cereg_n = n,
                        }
                        Reply::ok()
                    }
                    _ => Reply::error(),
                }
            }
            ("+CREG" | "+CGREG" | "+CEREG", '?') => {
                let n = match name.as_str() {
                    "+CREG" => self.creg_n,
                    "+CGREG" => self.cgreg_n,
                    _ => self.cereg_n,
                };
                let mut l = format!("{name}: {n},{}", self.reg);
                if n >= 2 && self.registered() {
                    l += &format!(",\"{}\",\"{}\",{}", self.cfg.tac, self.cfg.ci, model.act());
                }
                Reply::line(l)
            }
            ("+CREG", 't') => Reply::line("+CREG: (0-2)"),
            ("+CGREG" | "+CEREG", 't') => Reply::line(format!("{name}: (0-2,4)")),
            ("+COPS", '?') => {
                if self.registered() {
                    let oper = match self.cops_format {
                        2 => self.cfg.mccmnc.clone(),
                        _ => self.cfg.operator.clone(),
                    };
                    Reply::line(format!(
                        "+COPS: 0,{},\"{}\",{}",
                        self.cops_format,
                        oper,
                        model.act()
                    ))
                } else {
                    Reply::line(if self.cfun == 0 {
                        "+COPS: 2"
                    } else {
                        "+COPS: 0"
                    })
                }
            }
            ("+COPS", '=') => {
                if let (Some(3), Some(f @ 0..=2)) = (num(0), num(1)) {
                    self.cops_format = f as u8;
                }
                Reply::ok()
            }
            ("+CSQ", 'x') => Reply::line(if self.registered() {
                format!("+CSQ: {},99", self.cfg.rssi)
            } else {
                "+CSQ: 99,99".to_string()
            }),
            ("+CSQ", 't') => Reply::line("+CSQ: (0-31,99),(0-7,99)"),
            ("+QCSQ", 'x') => Reply::line(if self.registered() {
                let dbm = -113 + 2 * i32::from(self.cfg.rssi);
                format!(
                    "+QCSQ: \"{}\",{},{},195,-10",
                    model.qcsq_mode(),
                    dbm,
                    dbm - 29
                )
            } else {
                "+QCSQ: \"NOSERVICE\"".to_string()
            }),
            ("+QNWINFO", 'x') => Reply::line(if self.registered() {
                format!(
                    "+QNWINFO: \"{}\",\"{}\",\"LTE BAND 3\",1850",
                    model.qnwinfo_act(),
                    self.cfg.mccmnc
                )
            } else {
                model.qnwinfo_no_service().to_string()
            }),
            ("+QNWINFO", 't') => Reply::ok(),
            ("+CGATT", '?') => Reply::line(format!("+CGATT: {}", u8::from(self.registered()))),
            ("+CGATT", '=') => Reply::ok(),
            ("+CGDCONT", '=') => {
                let Some(cid) = self.cid_arg(arg(0)) else {
                    return Some(Reply::error());
                };
                if self.ctx[cid].active {
                    return Some(Reply::cme(3));
                }
                if args.len() == 1 {
                    self.ctx[cid] = Ctx::fresh();
                    return Some(Reply::ok());
                }
                let ctype = match arg(1).to_ascii_uppercase().as_str() {
                    "IP" => 1,
                    "IPV6" => 2,
                    "IPV4V6" => 3,
                    "PPP" | "NON-IP" => 1,
                    _ => return Some(Reply::error()),
                };
                let c = &mut self.ctx[cid];
                c.defined = true;
                c.ctype = ctype;
                c.apn = arg(2).to_string();
                Reply::ok()
            }
            ("+CGDCONT", '?') => Reply::lines(
                self.ctx
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.defined)
                    .map(|(i, c)| {
                        let addr = if c.active { c.main_ip() } else { "0.0.0.0" };
                        format!(
                            "+CGDCONT: {i},\"{}\",\"{}\",\"{addr}\",0,0",
                            c.type_name(),
                            c.apn
                        )
                    })
                    .collect(),
            ),
            ("+QICSGP", '=') => {
                let Some(cid) = self.cid_arg(arg(0)) else {
                    self.set_ip_error(552, None);
                    return Some(Reply::error());
                };
                if args.len() == 1 {
                    let c = &self.ctx[cid];
                    return Some(Reply::line(format!(
                        "+QICSGP: {},\"{}\",\"{}\",\"{}\",{}",
                        c.ctype, c.apn, c.user, c.pass, c.auth
                    )));
                }
                let ctype = match num(1) {
                    Some(t @ 1..=3) => t as u8,
                    _ => return Some(Reply::error()),
                };
                let auth = if args.len() > 5 {
                    match num(5) {
                        Some(a @ 0..=3) => a as u8,
                        _ => return Some(Reply::error()),
                    }
                } else {
                    0
                };
                let c = &mut self.ctx[cid];
                c.defined = true;
                c.ctype = ctype;
                c.apn = arg(2).to_string();
                c.user = arg(3).to_string();
                c.pass = arg(4).to_string();
                c.auth = auth;
                Reply::ok()
            }
            ("+QICSGP", 't') => Reply::line(format!(
                "+QICSGP: (1-{}),(1-3),<APN>,<username>,<password>,(0-3)",
                model.max_cid()
            )),
            ("+QIACT", '=') => {
                let Some(cid) = self.cid_arg(arg(0)) else {
                    self.set_ip_error(552, None);
                    return Some(Reply::error());
                };
                return self.start_activation(cid as u8, false);
            }
            ("+QIACT", '?') => Reply::lines(
                self.ctx
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.active)
                    .map(|(i, c)| match c.ctype {
                        3 => format!("+QIACT: {i},1,3,\"{}\",\"{}\"", c.ip4, c.ip6),
                        t => format!("+QIACT: {i},1,{t},\"{}\"", c.main_ip()),
                    })
                    .collect(),
            ),
            ("+QIACT", 't') => Reply::line(format!("+QIACT: (1-{})", model.max_cid())),
            ("+QIDEACT", '=') => {
                let Some(cid) = self.cid_arg(arg(0)) else {
                    self.set_ip_error(552, None);
                    return Some(Reply::error());
                };
                self.ctx[cid].active = false;
                self.free_sockets_of(cid as u8);
                self.set_ip_error(0, None);
                Reply::ok()
            }
            ("+CGACT", '=') => {
                let state = num(0);
                let cids: Vec<usize> = if args.len() >= 2 {
                    match args[1..]
                        .iter()
                        .map(|a| self.cid_arg(a))
                        .collect::<Option<Vec<_>>>()
                    {
                        Some(v) => v,
                        None => return Some(Reply::error()),
                    }
                } else {
                    (1..self.ctx.len())
                        .filter(|&i| self.ctx[i].defined)
                        .collect()
                };
                match state {
                    Some(0) => {
                        for c in cids {
                            self.ctx[c].active = false;
                            self.free_sockets_of(c as u8);
                        }
                        Reply::ok()
                    }
                    Some(1) => match cids.iter().find(|&&c| !self.ctx[c].active) {
                        // Activate the first inactive one (sufficient for a mock).
                        Some(&c) => return self.start_activation(c as u8, true),
                        None => Reply::ok(),
                    },
                    _ => Reply::error(),
                }
            }
            ("+CGACT", '?') => Reply::lines(
                self.ctx
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.defined)
                    .map(|(i, c)| format!("+CGACT: {i},{}", u8::from(c.active)))
                    .collect(),
            ),
            ("+CGPADDR", 'x' | '=') => {
                let cids: Vec<usize> = if args.is_empty() {
                    (1..self.ctx.len())
                        .filter(|&i| self.ctx[i].defined)
                        .collect()
                } else {
                    match args
                        .iter()
                        .map(|a| self.cid_arg(a))
                        .collect::<Option<Vec<_>>>()
                    {
                        Some(v) => v,
                        None => return Some(Reply::error()),
                    }
                };
                Reply::lines(
                    cids.into_iter()
                        .map(|i| {
                            let c = &self.ctx[i];
                            match (c.active, c.ctype) {
                                (false, _) => format!("+CGPADDR: {i}"),
                                (true, 3) => format!("+CGPADDR: {i},\"{}\",\"{}\"", c.ip4, c.ip6),
                                (true, _) => format!("+CGPADDR: {i},\"{}\"", c.main_ip()),
                            }
                        })
                        .collect(),
                )
            }
            ("+QIDNSCFG", '=') => {
                let Some(cid) = self.cid_arg(arg(0)) else {
                    return Some(Reply::error());
                };
                if args.len() == 1 {
                    if !self.ctx[cid].active {
                        return Some(Reply::error());
                    }
                    let (p, s) = self.ctx[cid]
                        .dns
                        .clone()
                        .unwrap_or_else(|| self.cfg.dns.clone());
                    Reply::line(format!("+QIDNSCFG: {cid},\"{p}\",\"{s}\""))
                } else {
                    self.ctx[cid].dns = Some((arg(1).to_string(), arg(2).to_string()));
                    Reply::ok()
                }
            }
            ("+QIGETERROR", 'x') => Reply::line(format!(
                "+QIGETERROR: {},{}",
                self.ip_error,
                self.ip_detail
                    .clone()
                    .unwrap_or_else(|| ip_error_text(self.ip_error).to_string())
            )),
            // Known commands answer their test form with OK.
            (
                "+CGSN" | "+GSN" | "+QCCID" | "+CIMI" | "+CGMR" | "+QGMR" | "+QIDEACT"
                | "+QIDNSCFG" | "+CGDCONT" | "+CGACT" | "+CGPADDR" | "+QIGETERROR" | "+COPS"
                | "+CGATT",
                't',
            ) => Reply::ok(),
            _ => match self.net_command(link, &name, form, &args, rest) {
                Some(r) => return r,
                None => Reply::error(),
            },
        };
        Some(r)
    }

    fn cpin(&mut self, link: &mut dyn Link, args: &[String]) -> Reply {
        if let Some(e) = self.sim_error(false) {
            return Reply::cme(e);
        }
        match self.sim {
            SimState::PinRequired => {
                if args.len() != 1 {
                    return Reply::error();
                }
                if Some(args[0].as_str()) == self.pin.as_deref() {
                    self.pin_left = 3;
                    self.unlock(link)
                } else {
                    self.pin_left = self.pin_left.saturating_sub(1);
                    if self.pin_left == 0 {
                        self.sim = SimState::PukRequired;
                    }
                    Reply::cme(16)
                }
            }
            SimState::PukRequired => {
                if args.len() != 2 {
                    return Reply::cme(12);
                }
                if args[0] == self.cfg.puk && !args[1].is_empty() {
                    self.pin = Some(args[1].clone());
                    self.pin_left = 3;
                    self.puk_left = 10;
                    self.unlock(link)
                } else {
                    self.puk_left = self.puk_left.saturating_sub(1);
                    if self.puk_left == 0 {
                        self.sim = SimState::Failure;
                    }
                    Reply::cme(16)
                }
            }
            _ => Reply::cme(3),
        }
    }

    fn unlock(&mut self, _link: &mut dyn Link) -> Reply {
        self.sim = SimState::Ready;
        let mut r = Reply::ok();
        r.after = self
            .cfg
            .model
            .sim_ready_urcs()
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Registration starts once the reply and URCs are out.
        if self.cfun == 1 {
            self.timers.retain(|t| !matches!(t.1, Timer::RegDone));
            self.timers.push((Instant::now(), Timer::RegStart));
        }
        r
    }

    fn set_cfun(&mut self, link: &mut dyn Link, fun: u8) {
        let old = self.cfun;
        self.cfun = fun;
        let r = Reply::ok();
        self.reply(link, r);
        if fun == old {
            return;
        }
        if fun != 1 {
            self.timers.retain(|t| !matches!(t.1, Timer::RegDone));
            self.set_reg(link, reg::NOT_REGISTERED);
            for c in &mut self.ctx {
                c.active = false;
            }
            self.close_all_sockets();
            if fun == 0 && self.pin.is_some() && self.sim == SimState::Ready {
                // The SIM is powered down; it asks for the PIN again.
                self.sim = SimState::PinRequired;
            }
        } else {
            self.urc(link, "+CFUN: 1");
            if old == 0 {
                self.sim_status_urcs(link, true);
            } else {
                self.start_registration(link);
            }
        }
    }

    fn start_activation(&mut self, cid: u8, cgact: bool) -> Option<Reply> {
        let c = &self.ctx[cid as usize];
        if c.active && !cgact {
            self.set_ip_error(561, None);
            return Some(Reply::error());
        }
        if !self.registered() || self.sim != SimState::Ready || self.cfun != 1 {
            self.set_ip_error(561, None);
            return Some(if cgact {
                Reply::cme(30)
            } else {
                Reply::error()
            });
        }
        if self.cfg.pdp_time.is_zero() {
            return Some(self.finish_activation(cid, cgact));
        }
        self.busy = true;
        self.timers.push((
            Instant::now() + self.cfg.pdp_time,
            Timer::PdpDone {
                cid,
                reply_cgact: cgact,
            },
        ));
        None
    }

    fn finish_activation(&mut self, cid: u8, cgact: bool) -> Reply {
        if let Some(code) = self.cfg.pdp_fail {
            self.set_ip_error(code, None);
            return if cgact {
                Reply::cme(30)
            } else {
                Reply::error()
            };
        }
        if !self.registered() {
            self.set_ip_error(561, None);
            return if cgact {
                Reply::cme(30)
            } else {
                Reply::error()
            };
        }
        self.activations += 1;
        let n = self.activations;
        let c = &mut self.ctx[cid as usize];
        c.defined = true;
        c.active = true;
        c.ip4 = format!("10.{}.{}.{}", 64 + cid, (n / 250) % 250, n % 250 + 1);
        c.ip6 = format!("2001:db8::{cid:x}:{n:x}");
        self.set_ip_error(0, None);
        Reply::ok()
    }
}
