//! The modem handle, its resources, and start-up.

use atat::{Ingress, ResponseSlot, UrcChannel};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::mutex::Mutex;
use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::Write;

use super::channel::{Channel, MAX_SEND};
use super::runner::{Runner, URC_CAPACITY};
use crate::Error;
use crate::at::urc::RegDomain;
use crate::at::{Digester, ExpectCell, Urc};
use crate::command::Command;
use crate::command::general;
use crate::command::network::SetRegistrationUrc;
use crate::model::{Model, ModelParams};
use crate::socket::{SocketPool, Sockets};
use crate::state::StateCell;

/// Size of the command-line buffer (the longest command is a `AT+QICSGP` with a 127-byte user
/// name and password, or a long host name in `AT+QIOPEN`).
pub const CMD_BUF: usize = 512;

/// Everything the driver needs, owned by the caller (put it in a `StaticCell` on firmware).
///
/// * `N`: the ingress buffer; it must hold the largest response, i.e. a 1500-byte `AT+QIRD`
///   payload plus its header and URCs around it. The default (2048) does.
/// * `S`: socket slots (at most 12, the modems' limit). Default 2.
/// * `R`: size of each socket's receive ring and of its transmit ring. Default 2048.
///
/// RAM: about `2·N + S·2·R + 2 KiB`.
pub struct Resources<const N: usize = 2048, const S: usize = 2, const R: usize = 2048> {
    shared: ExpectCell,
    state: StateCell,
    slot: ResponseSlot<N>,
    urcs: UrcChannel<Urc, URC_CAPACITY, 1>,
    sockets: Sockets<S, R>,
    ingress: [u8; N],
    line: [u8; CMD_BUF],
    staging: [u8; MAX_SEND],
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
            shared: ExpectCell::new(),
            state: StateCell::new(),
            slot: ResponseSlot::new(),
            urcs: UrcChannel::new(),
            sockets: Sockets::new(),
            ingress: [0; N],
            line: [0; CMD_BUF],
            staging: [0; MAX_SEND],
        }
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
    /// How often the runner asks an open socket for data without a `recv` URC (catches a lost
    /// URC). `None` disables the check.
    pub recv_poll: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            command_gap: Duration::from_millis(5),
            startup_timeout: Duration::from_secs(30),
            registration_urcs: true,
            recv_poll: Some(Duration::from_secs(5)),
        }
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

/// The modem: shares one AT channel between the handles ([`Sim`](super::Sim),
/// [`Network`](super::Network), [`DataCall`](super::DataCall)).
pub struct Modem<'a, W: Write, const N: usize = 2048> {
    pub(crate) channel: Mutex<CriticalSectionRawMutex, Channel<'a, W, N>>,
    pub(crate) state: &'a StateCell,
    pub(crate) shared: &'a ExpectCell,
    pub(crate) params: Mutex<CriticalSectionRawMutex, ModelParams>,
    pub(crate) config: Config,
    pub(crate) pool: &'a dyn SocketPool,
}

/// Creates the modem handle and its runner. Run [`Runner::run`] concurrently (it owns the UART
/// receive side), then call [`Modem::init`].
pub fn new<'a, W: Write, const N: usize, const S: usize, const R: usize>(
    resources: &'a mut Resources<N, S, R>,
    tx: W,
    config: Config,
) -> (Runner<'a, N>, Modem<'a, W, N>) {
    let Resources {
        shared,
        state,
        slot,
        urcs,
        sockets,
        ingress,
        line,
        staging,
    } = resources;
    let shared: &'a ExpectCell = shared;
    let state: &'a StateCell = state;
    let slot: &'a ResponseSlot<N> = slot;
    let urcs: &'a UrcChannel<Urc, URC_CAPACITY, 1> = urcs;
    let pool: &'a Sockets<S, R> = sockets;
    let pool: &'a dyn SocketPool = pool;
    let ingress = Ingress::new(
        Digester::new(shared, N).with_sink(pool),
        ingress,
        slot,
        urcs,
    );
    let subscription = urcs
        .subscribe()
        .unwrap_or_else(|_| unreachable!("the URC channel has exactly one subscriber"));
    let runner = Runner::new(ingress, subscription, state, pool);
    let client = atat::asynch::Client::new(
        tx,
        slot,
        &mut [],
        atat::Config::new().cmd_cooldown(config.command_gap),
    );
    let channel = Channel::new(client, shared, state, pool, line, staging);
    let modem = Modem {
        channel: Mutex::new(channel),
        state,
        shared,
        params: Mutex::new(Model::Unknown.params()),
        config,
        pool,
    };
    (runner, modem)
}

impl<'a, W: Write, const N: usize> Modem<'a, W, N> {
    /// Sends one typed command. The handles use this; it is public for commands they do not
    /// wrap.
    pub async fn send<C: Command>(&self, cmd: &C) -> Result<C::Response, Error> {
        self.channel.lock().await.send(cmd).await
    }

    /// A snapshot of what the driver knows from URCs.
    pub fn state(&self) -> crate::state::State {
        self.state.get()
    }

    /// Digester counters (noise, unknown URCs, overflows...).
    pub fn stats(&self) -> crate::at::DigestStats {
        self.shared.stats()
    }

    /// Parameters of the detected model ([`Model::Unknown`]'s before [`Modem::init`]).
    pub async fn params(&self) -> ModelParams {
        self.params.lock().await.clone()
    }

    /// Waits for the modem to boot (`RDY`), or, if it is already running, for it to answer
    /// `AT`; then switches echo off (`ATE0`), selects verbose errors (`AT+CMEE=2`), identifies
    /// the model (`ATI`, `AT+CGSN`) and enables registration URCs.
    pub async fn init(&self) -> Result<Identity, Error> {
        let deadline = Instant::now() + self.config.startup_timeout;
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
        *self.params.lock().await = model.params();
        let imei = self.send(&general::Imei).await?;
        if self.config.registration_urcs {
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
        embassy_time::with_timeout(timeout, self.state.wait_for(f))
            .await
            .map_err(|_| Error::Timeout)
    }

    /// How many times the modem has booted (`RDY`) since the driver started.
    pub fn boots(&self) -> u32 {
        self.state.get().boots
    }

    /// Waits until the modem boots again (`RDY`), up to `timeout`, then re-runs the
    /// configuration of [`Modem::init`].
    pub async fn wait_reboot(&self, timeout: Duration) -> Result<Identity, Error> {
        let boots = self.boots();
        embassy_time::with_timeout(
            timeout,
            self.state.wait_for(|s| (s.boots != boots).then_some(())),
        )
        .await
        .map_err(|_| Error::Timeout)?;
        self.init().await
    }
}
