//! The modem handle, its resources, and start-up.

use core::cell::Cell;

use atat::{Ingress, ResponseSlot};
use embassy_sync::blocking_mutex::Mutex as BlockingMutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::mutex::Mutex;
use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::{Read, Write};

use super::channel::{Channel, ChannelState, ErasedParse, LineSpec, ResponseSource, WriteLine};
use super::runner::{ApplyUrcs, NoUrcChannel, Runner, RunnerParts};
use super::tx::TxMailbox;
use crate::Error;
use crate::at::urc::RegDomain;
use crate::at::{Digester, ExpectCell};
use crate::command::Command;
use crate::command::general;
use crate::command::network::SetRegistrationUrc;
use crate::model::{Model, ModelParams};
use crate::socket::{SocketPool, Sockets};
use crate::state::StateCell;

/// Everything the driver needs, owned by the caller: put it in one `static` (a `StaticCell` on
/// firmware). [`Resources::new`] is `const`.
///
/// * `N`: the ingress buffer; it must hold the largest response, i.e. a 1500-byte `AT+QIRD`
///   payload plus its header and URCs around it. The default (2048) does.
/// * `S`: socket slots (at most 12, the modems' limit). Default 2.
/// * `R`: size of each socket's receive ring and of its transmit ring. Default 2048.
///
/// RAM: about `2·N + S·2·R + 2.5 KiB`.
pub struct Resources<const N: usize = 2048, const S: usize = 2, const R: usize = 2048> {
    core: Core,
    slot: ResponseSlot<N>,
    urcs: NoUrcChannel,
    sockets: Sockets<S, R>,
    ingress: [u8; N],
}

impl<const N: usize, const S: usize, const R: usize> Default for Resources<N, S, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const S: usize, const R: usize> Resources<N, S, R> {
    /// Fresh resources.
    pub const fn new() -> Self {
        Self {
            core: Core::new(),
            slot: ResponseSlot::new(),
            urcs: NoUrcChannel::new(),
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
    pub(crate) config: Config,
    ingress_size: usize,
}

impl Core {
    const fn new() -> Self {
        Self {
            channel: Mutex::new(ChannelState::new()),
            tx: TxMailbox::new(),
            shared: ExpectCell::new(),
            state: StateCell::new(),
            model: BlockingMutex::new(Cell::new(Model::Unknown)),
            config: Config::DEFAULT,
            ingress_size: 0,
        }
    }

    /// Size of the ingress buffer (the largest response the runner can take).
    pub(crate) fn ingress_size(&self) -> usize {
        self.ingress_size
    }
}

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
    /// sees a corrupted line (the usual way a URC gets lost).
    pub recv_poll: Option<Duration>,
}

impl Config {
    /// The defaults (a `const` for [`Resources::new`]).
    pub const DEFAULT: Config = Config {
        command_gap: Duration::from_millis(5),
        startup_timeout: Duration::from_secs(30),
        registration_urcs: true,
        recv_poll: None,
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
    pub(crate) slot: &'a dyn ResponseSource,
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
) -> (Runner<'a, R, W, N>, Modem<'a>) {
    let (parts, modem) = split(resources, config);
    (Runner::new(parts, rx, tx, modem), modem)
}

/// The runner's share of [`Resources`] (no I/O), for [`new`] and the blocking facade.
pub(crate) fn split<'a, const N: usize, const S: usize, const RB: usize>(
    resources: &'a mut Resources<N, S, RB>,
    config: Config,
) -> (RunnerParts<'a, N>, Modem<'a>) {
    let Resources {
        core,
        slot,
        urcs,
        sockets,
        ingress,
    } = resources;
    core.config = config;
    core.ingress_size = N;
    let core: &'a Core = core;
    let slot: &'a ResponseSlot<N> = slot;
    let urcs: &'a NoUrcChannel = urcs;
    let pool: &'a Sockets<S, RB> = sockets;
    let pool: &'a dyn SocketPool = pool;
    let apply = ApplyUrcs {
        state: &core.state,
        pool,
    };
    let ingress = Ingress::new(
        Digester::with_urc_sink(&core.shared, N, apply).with_sink(pool),
        ingress,
        slot,
        urcs,
    );
    let modem = Modem { core, pool, slot };
    (
        RunnerParts {
            ingress,
            pool,
            shared: &core.shared,
            noise: 0,
            stage: [0; super::runner::STAGE],
            staged: 0,
        },
        modem,
    )
}

impl<'a> Modem<'a> {
    /// Sends one typed command. The handles use this; it is public for commands they do not
    /// wrap.
    pub async fn send<C: Command>(&self, cmd: &C) -> Result<C::Response, Error> {
        // The per-command shell stays thin; locking and the exchange are compiled once.
        let out = Cell::new(None);
        let parse = |resp: Result<&[u8], atat::InternalError<'_>>| {
            out.set(Some(crate::command::complete(cmd, resp)));
        };
        let spec = LineSpec {
            expect: cmd.expect(),
            timeout_ms: C::TIMEOUT_MS,
            secret: C::SECRET,
        };
        self.send_erased(&|w| cmd.write(w), spec, &parse).await?;
        out.into_inner().unwrap_or(Err(Error::Parse))
    }

    /// [`Modem::send`] without the command type.
    async fn send_erased(
        &self,
        write: WriteLine<'_>,
        spec: LineSpec,
        parse: ErasedParse<'_>,
    ) -> Result<(), Error> {
        Channel::lock(*self)
            .await
            .send_erased(write, spec, parse)
            .await
    }

    /// Locks the AT channel (for an exchange of several commands, e.g. a file upload).
    pub(crate) async fn channel(&self) -> Channel<'a> {
        Channel::lock(*self).await
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

    /// Waits for the modem to boot (`RDY`), or, if it is already running, for it to answer
    /// `AT`; then switches echo off (`ATE0`), selects verbose errors (`AT+CMEE=2`), identifies
    /// the model (`ATI`, `AT+CGSN`) and enables registration URCs.
    pub async fn init(&self) -> Result<Identity, Error> {
        let deadline = Instant::now() + self.core.config.startup_timeout;
        loop {
            match self.send(&general::At).await {
                Ok(()) => break,
                Err(Error::Timeout) | Err(Error::Rebooted) | Err(Error::Parse) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(Error::NotResponding);
            }
            Timer::after(Duration::from_millis(300)).await;
        }
        self.configure().await
    }

    /// After a reboot: echo off, verbose errors, identity, URCs.
    pub(crate) async fn configure(&self) -> Result<Identity, Error> {
        self.send(&general::Echo(false)).await?;
        self.send(&general::SetCmee(2)).await?;
        let ati = self.send(&general::Identify).await?;
        let model = Model::from_ati(&ati.model);
        self.core.model.lock(|m| m.set(model));
        let imei = self.send(&general::Imei).await?;
        if self.core.config.registration_urcs {
            for domain in [RegDomain::Cs, RegDomain::Ps, RegDomain::Eps] {
                // Not every model has every domain (e.g. no CS on NB-IoT-only firmware).
                let _ = self.send(&SetRegistrationUrc { domain, mode: 2 }).await;
            }
        }
        let model_name = crate::util::truncated(&ati.model);
        let revision = crate::util::truncated(&ati.revision);
        info!("modem identified");
        Ok(Identity {
            model,
            model_name,
            revision,
            imei: crate::at::parse::to_string(imei.as_bytes())?,
        })
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

    /// How many times the modem has booted (`RDY`) since the driver started.
    pub fn boots(&self) -> u32 {
        self.core.state.get().boots
    }

    /// Waits until the modem boots again (`RDY`), up to `timeout`, then re-runs the
    /// configuration of [`Modem::init`].
    pub async fn wait_reboot(&self, timeout: Duration) -> Result<Identity, Error> {
        let boots = self.boots();
        embassy_time::with_timeout(
            timeout,
            self.core
                .state
                .wait_for(|s| (s.boots != boots).then_some(())),
        )
        .await
        .map_err(|_| Error::Timeout)?;
        self.init().await
    }
}
