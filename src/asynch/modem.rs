//! The modem handle, its resources, and start-up.

use core::cell::Cell;

use embassy_sync::blocking_mutex::Mutex as BlockingMutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::mutex::Mutex;
use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::{Read, Write};

use super::channel::{Channel, ChannelState};
use super::runner::{ApplyUrcs, Runner, RunnerParts};
use super::tx::TxMailbox;
use crate::Error;
use crate::at::urc::RegDomain;
use crate::at::{Digester, ExpectCell};
use crate::command::Command;
use crate::command::general;
use crate::command::network::SetRegistrationUrc;
use core::mem::MaybeUninit;

use crate::model::{Model, ModelParams};
use crate::socket::{SocketPool, Sockets};
use crate::state::StateCell;

/// Sends a command through a [`Modem`] (or a locked `Channel`) and evaluates to its typed
/// result, inside a flow: the command and its accumulator are locals of the flow's future and
/// the flow awaits the one type-erased exchange every command goes through (`send_erased`)
/// itself. `Modem::send` puts a shell future per response type in between, one more nesting
/// level at every command of a flow (measured: `docs/footprint.md`, "Flash: flows as data").
macro_rules! send {
    ($modem:expr, $cmd:expr) => {{
        let cmd = $cmd;
        let mut acc = $crate::command::Typed::new(&cmd);
        $modem.send_erased(&mut acc).await;
        acc.into_result()
    }};
}
pub(crate) use send;

/// Everything the driver needs, owned by the caller: put it in one `static` (a
/// `ConstStaticCell` on firmware). [`Resources::new`] is `const` and all zero bytes, so the
/// static lands in `.bss`.
///
/// * `N`: the ingress (line) buffer. Responses are parsed line by line as they arrive and
///   socket payloads pass through it in pieces, so it must hold the longest single line the
///   modem sends (a longer one is dropped, counted in
///   [`DigestStats::long_lines`](crate::at::DigestStats), and fails its command with
///   [`Error::Overflow`]). The default (256) holds every line of the commands and URCs the
///   driver uses; raise it for commands with long single-line answers (`AT+COPS=?`).
/// * `S`: socket slots (at most 12, the modems' limit). Default 2.
/// * `R`: size of each socket's receive ring and of its transmit ring. Default 2048.
///
/// RAM: about `N + S·2·R + 2.5 KiB`.
pub struct Resources<const N: usize = 256, const S: usize = 2, const R: usize = 2048> {
    // The driver state is written when the driver starts ([`new`], `blocking::new`):
    // `Resources::new()` is then all zero bytes, so a `static` of it lands in `.bss` (no flash
    // image) and placing it needs no stack frame of its size.
    core: MaybeUninit<Core>,
    /// Zero bytes are its initial state (checked on firmware by `scripts/footprint.sh`).
    sockets: Sockets<S, R>,
    ingress: [u8; N],
}

impl<const N: usize, const S: usize, const R: usize> Default for Resources<N, S, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const S: usize, const R: usize> Resources<N, S, R> {
    /// Fresh resources: all zero bytes, for a `static` in `.bss` (e.g.
    /// `static_cell::ConstStaticCell::new(Resources::new())`, which needs no stack frame of
    /// the size of `Resources` to place it). The driver initialises what it needs when it
    /// starts ([`new`]).
    pub const fn new() -> Self {
        Self {
            core: MaybeUninit::zeroed(),
            sockets: Sockets::new(),
            ingress: [0; N],
        }
    }
}

/// The part of [`Resources`] every handle reaches: the AT channel, the transmit mailbox, what
/// the digester and the URCs said, the model and the configuration.
pub(crate) struct Core {
    pub(crate) channel: Mutex<CriticalSectionRawMutex, ChannelState>,
    pub(crate) tx: TxMailbox,
    pub(crate) shared: ExpectCell,
    pub(crate) state: StateCell,
    model: BlockingMutex<CriticalSectionRawMutex, Cell<Model>>,
    /// Contexts (bit `cid`) this driver activated, and the boot (`RDY` count) it did so in: a
    /// context known to be active needs no `AT+QIACT?`. Cleared by a deactivation; a
    /// `pdpdeact` shows in [`State::pdp_deactivated`](crate::state::State::pdp_deactivated).
    pub(crate) pdp_active: BlockingMutex<CriticalSectionRawMutex, Cell<(u32, u32)>>,
    /// What the driver applied in one start of the module (`State::starts`), as bits: the SSL
    /// contexts it configured (bit `ctx`, 0 to 5: an option
    /// at the module's default is only left out when the context has not been touched since
    /// the start), [`START_URCS`] and [`START_SETTLED`]. One record keyed on one start (8 B, not
    /// three of 16 B in all): every part of it is stale once the module starts again.
    pub(crate) started: BlockingMutex<CriticalSectionRawMutex, Cell<(u32, u8)>>,
    /// The IMEI, read once (`AT+CGSN`): a reboot of the module does not change it.
    /// Kept as its length and bytes (21 B; a `RefCell<heapless::String<20>>` is 28).
    imei: BlockingMutex<CriticalSectionRawMutex, Cell<(u8, [u8; 20])>>,
    pub(crate) config: Config,
    /// The runner has control pins ([`Runner::with_pins`]).
    pub(crate) pins: core::sync::atomic::AtomicBool,
    /// A handle asks the runner to drive the pins: `true` a reset, `false` a PSM wake (a
    /// PWRKEY pulse).
    pub(crate) reset: embassy_sync::signal::Signal<CriticalSectionRawMutex, bool>,
    /// `AT+QCFG="psm/urc",1` was sent: re-applied after every start.
    pub(crate) psm_urc: core::sync::atomic::AtomicBool,
    /// The runner drives DTR ([`Runner::with_uart_sleep`]): `AT+QSCLK=1` is safe.
    pub(crate) sleep: core::sync::atomic::AtomicBool,
}

impl Core {
    const fn new() -> Self {
        Self {
            channel: Mutex::new(ChannelState::new()),
            tx: TxMailbox::new(),
            shared: ExpectCell::new(),
            state: StateCell::new(),
            model: BlockingMutex::new(Cell::new(Model::Unknown)),
            pdp_active: BlockingMutex::new(Cell::new((0, 0))),
            started: BlockingMutex::new(Cell::new((0, START_SETTLED))),
            imei: BlockingMutex::new(Cell::new((0, [0; 20]))),
            config: Config::DEFAULT,
            pins: core::sync::atomic::AtomicBool::new(false),
            sleep: core::sync::atomic::AtomicBool::new(false),
            reset: embassy_sync::signal::Signal::new(),
            psm_urc: core::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Writes a fresh core with `config` into `slot`. Out of line: the value is built on the
    /// stack before it is written, and inlined into the caller (the application task's first
    /// poll, in firmware) that frame would be part of the caller's frame for good.
    #[inline(never)]
    fn init(slot: &mut MaybeUninit<Core>, config: Config) -> &mut Core {
        let core = slot.write(Core::new());
        core.config = config;
        core
    }

    /// Every `RDY` seen ([`State::starts`](crate::state::State::starts)), read out of line:
    /// one critical section and state copy for the flows' many checks, not one inlined in each.
    #[inline(never)]
    pub(crate) fn starts(&self) -> u32 {
        self.state.get().starts()
    }

    /// The boots seen ([`State::boots`](crate::state::State::boots)), out of line as
    /// [`Core::starts`].
    #[inline(never)]
    pub(crate) fn boots(&self) -> u32 {
        self.state.get().boots
    }

    /// Whether every registration change of the current boot comes as a URC (see `urcs_on`).
    pub(crate) fn registration_urcs_since_boot(&self) -> bool {
        // Keyed on every `RDY`: a PSM wake forgets the URC settings as a boot does.
        let boots = self.starts();
        boots > 0 && self.marked(boots) & START_URCS != 0
    }

    /// Whether context `cid` is known active: this driver activated it since the last boot and
    /// neither it nor the network deactivated it since.
    pub(crate) fn known_active(&self, cid: u8) -> bool {
        let state = self.state.get();
        let (boots, mask) = self.pdp_active.lock(Cell::get);
        boots == state.boots && mask & (1 << cid) != 0 && state.pdp_deactivated & (1 << cid) == 0
    }

    /// Records that context `cid` is active (`true`) or not.
    pub(crate) fn set_active(&self, cid: u8, active: bool) {
        let now = self.boots();
        self.pdp_active.lock(|c| {
            let (boots, mask) = c.get();
            let mask = if boots == now { mask } else { 0 };
            let bit = 1u32 << cid;
            c.set((now, if active { mask | bit } else { mask & !bit }));
        });
    }

    /// Marks SSL context `ctx` as configured in this boot; returns whether it holds the
    /// module's defaults until now: the driver saw this boot's `RDY` (a module that was running
    /// before the driver started may keep what an earlier run set) and has not configured the
    /// context since.
    pub(crate) fn touch_ssl(&self, ctx: u8) -> bool {
        // SSL contexts are not kept through a PSM sleep either.
        let now = self.starts();
        // `ctx` is 0 to 5 (checked by the callers).
        let bit = 1 << ctx;
        now > 0 && self.mark_start(now, bit) & bit == 0
    }

    /// Sets `bits` in the record of start `now`, first emptying a record of another start;
    /// returns the bits it had for `now`.
    pub(crate) fn mark_start(&self, now: u32, bits: u8) -> u8 {
        self.started.lock(|c| {
            let (starts, had) = c.get();
            let had = if starts == now { had } else { 0 };
            c.set((now, had | bits));
            had
        })
    }

    /// The bits of the record of start `now` (none when it is about another start).
    pub(crate) fn marked(&self, now: u32) -> u8 {
        let (starts, bits) = self.started.lock(Cell::get);
        if starts == now { bits } else { 0 }
    }
}

/// In [`Core::started`]: the registration URCs of every domain were switched on by
/// [`Modem::init`] after the driver saw the start's `RDY`: from then on every change of
/// registration comes as a URC.
pub(crate) const START_URCS: u8 = 1 << 6;
/// In [`Core::started`]: the settings a start forgets were applied ([`Modem::resume`] has
/// nothing to do). Set for start 0, before the first `RDY`, as the separate record was.
pub(crate) const START_SETTLED: u8 = 1 << 7;

/// Driver configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Pause between two commands (default 5 ms; Quectel asks only that a command waits for
    /// the previous final result code, which the driver always does).
    pub command_gap: Duration,
    /// How long [`Modem::init`] waits for the modem to answer `AT`.
    pub startup_timeout: Duration,
    /// Enable registration URCs (`AT+CREG=2`, `AT+CGREG=2`, `AT+CEREG=2`) during init.
    pub registration_urcs: bool,
    /// How often the runner asks an open socket for data without a `recv` URC, to catch a
    /// `recv` URC lost to a UART fault. `None` (the default): no periodic traffic while nothing
    /// happens. Each check costs one round trip per open socket (about 40 UART bytes, and the
    /// module and the UART stay awake for it): `Some(5 s)` is about 700 KB a day per socket.
    /// Without it, the runner still re-checks every open socket once whenever the digester
    /// sees a corrupted line (the usual way a URC gets lost). The period is kept to a unit of at
    /// most 1 ms (a power of two of timer ticks), and periods above 2^32 units (about 25 days at
    /// embassy-time's default 1 MHz tick) are taken as that.
    pub recv_poll: Option<Duration>,
    /// Open sockets in direct-push mode (access mode 1): the module sends received data
    /// inside its `recv` URCs (`+QIURC: "recv",<id>,<n>` / `+QSSLURC: "recv",<id>,<n>`, then
    /// the bytes) instead of holding it for `AT+QIRD`/`AT+QSSLRECV`. Default `false`
    /// (buffer-access mode).
    ///
    /// * **Saves** one round trip and about 40 UART bytes per inbound segment (a 1 KiB MQTT
    ///   message over modem TLS: 91.9 % → about 95 % payload per UART byte; see
    ///   `docs/perf.md`), and the latency of the read.
    /// * **Costs** flow control: the module pushes whatever the network delivers, whether the
    ///   socket's receive ring has room or not. A push that does not fit fails the socket with
    ///   [`Error::Overflow`](crate::Error::Overflow) (the bytes are counted, never silently
    ///   lost; MQTT reconnects). Use it when the ring holds the largest burst the peer sends
    ///   unasked (for MQTT: the receive buffer, plus what the broker may queue).
    /// * A push header lost on the UART (a rare overrun) loses that data for good, where buffer
    ///   mode reads it again; the stream then fails (MQTT: a malformed packet or the
    ///   keep-alive). Use hardware flow control.
    pub push_receive: bool,
}

impl Config {
    /// The defaults (a `const` for [`Resources::new`]).
    pub const DEFAULT: Config = Config {
        command_gap: Duration::from_millis(5),
        startup_timeout: Duration::from_secs(30),
        registration_urcs: true,
        recv_poll: None,
        push_receive: false,
    };
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What [`Modem::init`] learned about the module.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Identity {
    /// Detected model.
    pub model: Model,
    /// Model line of `ATI` (e.g. `BG96`).
    pub model_name: heapless::String<24>,
    /// Firmware revision (`ATI` / `AT+CGMR`).
    pub revision: heapless::String<48>,
    /// IMEI.
    pub imei: heapless::String<20>,
}

/// The modem: the handle every other handle ([`Sim`](super::Sim), [`Network`](super::Network),
/// [`DataCall`](super::DataCall), [`Socket`](super::Socket), …) comes from.
///
/// It carries no UART type and is `Copy`: hand a copy to every task that needs the modem. The
/// handles reach the [`Runner`], which owns the UART, through the [`Resources`] they share.
#[derive(Clone, Copy)]
pub struct Modem<'a> {
    pub(crate) core: &'a Core,
    pub(crate) pool: &'a dyn SocketPool,
}

/// Creates the runner, which owns both halves of the UART, and the modem handle. Run
/// [`Runner::run`] concurrently (its own task on embassy), then call [`Modem::init`].
///
/// ```text
/// static RESOURCES: StaticCell<Resources> = StaticCell::new();
/// let (runner, modem) = quectel::asynch::new(RESOURCES.init(Resources::new()), rx, tx, Config::default());
/// spawner.spawn(modem_task(runner))?;   // async fn modem_task(r: Runner<'static, Rx, Tx>) -> ! { r.run().await }
/// ```
pub fn new<'a, R: Read, W: Write, const N: usize, const S: usize, const RB: usize>(
    resources: &'a mut Resources<N, S, RB>,
    rx: R,
    tx: W,
    config: Config,
) -> (Runner<'a, R, W>, Modem<'a>) {
    let (parts, modem) = split(resources, config);
    (Runner::new(parts, rx, tx, modem), modem)
}

/// The runner's share of [`Resources`] (no I/O), for [`new`] and the blocking facade.
pub(crate) fn split<'a, const N: usize, const S: usize, const RB: usize>(
    resources: &'a mut Resources<N, S, RB>,
    config: Config,
) -> (RunnerParts<'a>, Modem<'a>) {
    let Resources {
        core,
        sockets,
        ingress,
    } = resources;
    // Written before any reference to them exists, at every start (a second start on the same
    // resources begins afresh; the old values hold nothing that needs dropping).
    let core: &'a Core = Core::init(core, config);
    let pool: &'a Sockets<S, RB> = sockets;
    let pool: &'a dyn SocketPool = pool;
    let apply = ApplyUrcs {
        state: &core.state,
        pool,
    };
    let digester = Digester::new(&core.shared, ingress, apply).with_payloads(pool);
    let modem = Modem { core, pool };
    (
        RunnerParts {
            digester,
            pool,
            shared: &core.shared,
            noise: 0,
        },
        modem,
    )
}

impl<'a> Modem<'a> {
    /// Sends one typed command. The handles use this; it is public for commands they do not
    /// wrap.
    pub fn send<'s, C: Command>(
        &'s self,
        cmd: &'s C,
    ) -> impl core::future::Future<Output = Result<C::Response, Error>> + 's {
        // Nothing is compiled per command type but the command's own methods: locking and the
        // exchange are compiled once, the shell below once per response type.
        self.send_dyn(crate::command::Acc::<C::Response>::new(cmd))
    }

    /// [`Modem::send`] for a command typed only by its response.
    // Not an `async fn` on purpose (see `Channel::send_erased`): it would keep its arguments
    // twice.
    #[allow(clippy::manual_async_fn)]
    fn send_dyn<'s, R>(
        &'s self,
        mut acc: crate::command::Acc<'s, R>,
    ) -> impl core::future::Future<Output = Result<R, Error>> + 's {
        async move {
            // A failed exchange's error is in `acc` (no error arm per response type here).
            self.send_erased(&mut acc).await;
            acc.into_result()
        }
    }

    /// [`Modem::send`] without the command type, polled out of line (one copy in the
    /// firmware however many commands await it). A failed exchange hands its error to `cmd`
    /// (as a failed command's), so that it is the result.
    pub(super) fn send_erased<'s>(
        &'s self,
        cmd: &'s mut dyn crate::command::Folding,
    ) -> super::outline::Outlined<impl core::future::Future<Output = ()> + 's> {
        super::outline::Outlined(async move {
            Channel::lock(*self).await.send_erased(&mut *cmd).await;
        })
    }

    /// Locks the AT channel (for an exchange of several commands, e.g. a file upload).
    /// The lock's own future (no `async fn` level around it).
    pub(crate) fn channel(&self) -> impl core::future::Future<Output = Channel<'a>> + 'a {
        Channel::lock(*self)
    }

    /// A snapshot of what the driver knows from URCs.
    pub fn state(&self) -> crate::state::State {
        self.core.state.get()
    }

    /// Digester counters (noise, unknown URCs, overflows...).
    pub fn stats(&self) -> crate::at::DigestStats {
        self.core.shared.stats()
    }

    /// Parameters of the detected model ([`Model::Unknown`]'s before [`Modem::init`]).
    pub async fn params(&self) -> ModelParams {
        self.model().params()
    }

    /// The detected model ([`Model::Unknown`] before [`Modem::init`]).
    pub fn model(&self) -> Model {
        self.core.model.lock(Cell::get)
    }

    /// Waits for the modem to boot (`RDY`), or, if it is already running, for it to answer;
    /// switches echo off (`ATE0`, which is also the probe), selects numeric error codes and enables
    /// registration URCs (`AT+CMEE=1;+CREG=2;+CGREG=2;+CEREG=2`, one command line), and
    /// identifies the model (`ATI`) and the IMEI (`AT+CGSN`, at the first call only: after a
    /// reboot of the module the IMEI read before is returned).
    pub async fn init(&self) -> Result<Identity, Error> {
        // One level: the identification is this future's own (not a nested one's).
        self.echo_off().await?;
        self.apply_settings().await?;
        let ati = send!(self, general::Identify)?;
        let model = Model::from_ati(&ati.model);
        self.core.model.lock(|m| m.set(model));
        // The revision may change with a firmware update (which reboots the module), so `ATI`
        // is sent again; the IMEI cannot, so `AT+CGSN` is sent once per driver start.
        if self.core.imei.lock(Cell::get).0 == 0 {
            let read = send!(self, general::Imei)?;
            let mut bytes = [0; 20];
            // At most 17 bytes: it fits.
            if let Some(d) = bytes.get_mut(..read.len()) {
                d.copy_from_slice(read.as_bytes());
            }
            // At most 17 bytes (0, not kept, cannot happen).
            let len = u8::try_from(read.len()).unwrap_or(0);
            self.core.imei.lock(|i| i.set((len, bytes)));
        }
        // Read back from where it is kept: one conversion for both paths.
        let (len, kept) = self.core.imei.lock(Cell::get);
        let imei: heapless::String<20> =
            crate::util::text(kept.get(..usize::from(len)).unwrap_or_default())?;
        let model_name = crate::util::truncated(&ati.model);
        let revision = crate::util::truncated(&ati.revision);
        info!("modem identified");
        Ok(Identity {
            model,
            model_name,
            revision,
            imei,
        })
    }

    /// `ATE0` until the module answers, for up to [`Config::startup_timeout`] (every 300 ms).
    fn echo_off(&self) -> impl core::future::Future<Output = Result<(), Error>> + '_ {
        // `ATE0` is as harmless as `AT` and saves the round trip of a separate probe.
        // Through `Setting` (the same line and 300 ms): one command type for the local
        // settings of the flows.
        self.probe(&general::Echo(false), false)
    }

    /// Sends `part` (a local setting, 300 ms) until the module answers `OK`, for up to
    /// [`Config::startup_timeout`] (every 300 ms): [`Error::NotResponding`] at the deadline.
    /// A timeout, a reboot or an unreadable answer is tried again, and with `any` every other
    /// error too (otherwise it is returned). One loop for [`Self::init`]'s probe and
    /// [`Self::responds`].
    // Not an `async fn` on purpose: it would keep its arguments twice.
    #[allow(clippy::manual_async_fn)]
    fn probe<'p>(
        &'p self,
        part: &'p dyn general::LinePart,
        any: bool,
    ) -> impl core::future::Future<Output = Result<(), Error>> + 'p {
        async move {
            let deadline = Instant::now().saturating_add(self.core.config.startup_timeout);
            loop {
                match send!(self, general::Setting(part)) {
                    Ok(()) => return Ok(()),
                    Err(Error::Timeout) | Err(Error::Rebooted) | Err(Error::Parse) => {}
                    Err(_) if any => {}
                    Err(e) => return Err(e),
                }
                if Instant::now() >= deadline {
                    return Err(Error::NotResponding);
                }
                Timer::after(Duration::from_millis(300)).await;
            }
        }
    }

    /// The settings a module forgets on every `RDY` (a boot or a PSM wake), echo already off:
    /// numeric error codes and registration URCs (`AT+CMEE=1;+CREG=2;+CGREG=2;+CEREG=2`, one line).
    async fn apply_settings(&self) -> Result<(), Error> {
        let cmee = general::SetCmee(1);
        let urcs = [RegDomain::Cs, RegDomain::Ps, RegDomain::Eps]
            .map(|domain| SetRegistrationUrc { domain, mode: 2 });
        let starts = self.core.starts();
        // `AT+QCFG="psm/urc",1`, when this driver switched it on, goes on the same line (and
        // through the same code: no send of its own in every firmware).
        let psm_urc = crate::command::power::SetPsmUrc(true);
        let with_psm_urc = self
            .core
            .psm_urc
            .load(core::sync::atomic::Ordering::Relaxed);
        let all: [&dyn general::LinePart; 5] = [&cmee, &urcs[0], &urcs[1], &urcs[2], &psm_urc];
        let parts = if with_psm_urc {
            all.as_slice()
        } else {
            all.get(..4).unwrap_or(&[])
        };
        let together =
            self.core.config.registration_urcs && send!(self, general::Concat { parts }).is_ok();
        if together {
            if self.core.starts() == starts {
                self.core.mark_start(starts, START_URCS);
            }
        } else {
            // One by one: registration URCs off, or a domain the model lacks (no CS on an
            // NB-IoT-only firmware, say) refused the line.
            // `AT+CMEE` must succeed, a URC setting need not. One send for all of them (each
            // a local setting of 300 ms, as its own command).
            let settings = if self.core.config.registration_urcs {
                4
            } else {
                1
            };
            for (i, part) in all.iter().take(settings).enumerate() {
                let sent = send!(self, general::Setting(*part));
                if i == 0 {
                    sent?;
                }
            }
            if with_psm_urc {
                let _ = send!(self, general::Concat { parts: &[&psm_urc] });
            }
        }
        // Not when the module started again meanwhile: that record could never match.
        if self.core.starts() == starts {
            self.core.mark_start(starts, START_SETTLED);
        }
        Ok(())
    }

    /// After a PSM wake (`RDY` after `PSM POWER DOWN`, see [`Modem::wakes`]): re-applies what the
    /// module forgot — echo off, `AT+CMEE`, the registration (and `+QPSMTIMER`) URCs — and asks
    /// once (`AT+QIACT?`) which PDP contexts survived, so that only a context the network
    /// dropped is activated again. Registration, the model and the IMEI are kept (no `ATI`, no
    /// `AT+CGSN`). TLS contexts are configured again by the next
    /// [`Modem::configure_tls`](Modem::configure_tls) (the MQTT client does it). Does nothing
    /// when the settings of the current start are already applied. Returns whether it sent
    /// anything.
    pub async fn resume(&self) -> Result<bool, Error> {
        let starts = self.core.starts();
        if self.core.marked(starts) & START_SETTLED != 0 {
            return Ok(false);
        }
        self.echo_off().await?;
        self.apply_settings().await?;
        // The one query (per context the driver activated, normally one): does it still hold?
        for cid in 1u8..=16 {
            if self.core.known_active(cid) {
                let kept = send!(self, crate::command::pdp::GetActiveContext { cid })?
                    .is_some_and(|c| c.state);
                if !kept {
                    info!("PDP context {} did not survive the PSM sleep", cid);
                    self.core.set_active(cid, false);
                }
            }
        }
        Ok(true)
    }

    /// Wakes a module in PSM through the runner's pins (a PWRKEY pulse) and waits for its
    /// `RDY`: [`Error::Unsupported`] without pins, [`Error::NotResponding`] when no `RDY` comes
    /// within [`Config::startup_timeout`] plus the pulse. Does not [`Modem::resume`].
    pub(crate) fn psm_wake_pulse(
        &self,
    ) -> impl core::future::Future<Output = Result<(), Error>> + '_ {
        self.pulse_and_wait(false)
    }

    /// Waits up to `timeout` until `f` returns `Some` for the driver's state (re-checked on
    /// every change). Cancel-safe.
    pub async fn wait_for_state<T>(
        &self,
        timeout: Duration,
        f: impl FnMut(&crate::state::State) -> Option<T>,
    ) -> Result<T, Error> {
        embassy_time::with_timeout(timeout, self.core.state.wait_for(f))
            .await
            .map_err(|_| Error::Timeout)
    }

    /// How many times the modem has booted (`RDY` not after `PSM POWER DOWN`) since the driver
    /// started.
    pub fn boots(&self) -> u32 {
        self.core.boots()
    }

    /// How many times the modem woke from PSM (`RDY` after `PSM POWER DOWN`) since the driver
    /// started: the settings are gone ([`Modem::resume`] re-applies them), registration and
    /// PDP contexts normally are not.
    pub fn wakes(&self) -> u32 {
        self.core.state.get().wakes
    }

    /// Boots plus PSM wakes: every `RDY` since the driver started.
    pub fn starts(&self) -> u32 {
        self.core.starts()
    }

    /// `Ok` when the module answers `AT` within [`Config::startup_timeout`] (tried every
    /// 300 ms). The probe's own future (no `async fn` level around it).
    #[cfg(feature = "mqtt")]
    pub(crate) fn responds(&self) -> impl core::future::Future<Output = Result<(), Error>> + '_ {
        self.probe(&general::At, true)
    }

    /// Whether the runner can reset the module through its pins ([`Runner::with_pins`]).
    pub fn can_hard_reset(&self) -> bool {
        self.core.pins.load(core::sync::atomic::Ordering::Relaxed)
    }

    /// Resets a module that no longer answers through its RESET_N or PWRKEY pin (the runner
    /// drives them; see [`Runner::with_pins`]), waits for its `RDY` and runs [`Modem::init`]
    /// again. The data call, sockets and TLS contexts are gone afterwards, as after any
    /// reboot. [`Error::Unsupported`] without pins; [`Error::NotResponding`] if no `RDY`
    /// comes within the pulse time plus [`Config::startup_timeout`].
    pub async fn hard_reset(&self) -> Result<Identity, Error> {
        self.reset_and_wait_ready().await?;
        self.init().await
    }

    /// [`Modem::hard_reset`] without the start-up configuration.
    pub(crate) fn reset_and_wait_ready(
        &self,
    ) -> impl core::future::Future<Output = Result<(), Error>> + '_ {
        self.pulse_and_wait(true)
    }

    /// [`Modem::reset_and_wait_ready`] (`reset`) and [`Modem::psm_wake_pulse`]: one future
    /// type for both (the MQTT recovery awaits both), so one copy of it.
    async fn pulse_and_wait(&self, reset: bool) -> Result<(), Error> {
        if !self.can_hard_reset() {
            return Err(Error::Unsupported);
        }
        let pulse_ms = if reset {
            warn!("resetting the module through its pins");
            super::pins::RESET_TAKES_MS
        } else {
            1_000
        };
        // Any `RDY` ends the wait: a module that was in PSM takes the PWRKEY pulse for a wake.
        let starts = self.starts();
        self.core.reset.signal(reset);
        // A deadline, not a sum of durations: `with_timeout` adds to `now` and would panic on a
        // too large timeout; a saturated deadline is "never".
        let deadline = Instant::now()
            .saturating_add(Duration::from_millis(pulse_ms))
            .saturating_add(self.core.config.startup_timeout);
        embassy_time::with_deadline(
            deadline,
            self.core.state.until(crate::state::started_since, starts),
        )
        .await
        .map_err(|_| Error::NotResponding)
    }

    /// Waits until the modem has booted (`RDY`) since `boots` was read, or `deadline` passes.
    async fn boot_after(&self, boots: u32, deadline: Instant) -> Result<(), ()> {
        embassy_time::with_deadline(
            deadline,
            self.core.state.until(crate::state::booted_since, boots),
        )
        .await
        .map_err(|_| ())
    }

    /// Waits until the modem boots again (`RDY`), up to `timeout`, then re-runs the
    /// configuration of [`Modem::init`].
    pub async fn wait_reboot(&self, timeout: Duration) -> Result<Identity, Error> {
        let boots = self.boots();
        self.boot_after(boots, Instant::now().saturating_add(timeout))
            .await
            .map_err(|()| Error::Timeout)?;
        self.init().await
    }
}
