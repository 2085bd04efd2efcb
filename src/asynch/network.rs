//! The network handle: registration, signal, operator, and `wait_network_ready`.

use embassy_time::{Duration, Instant, with_timeout};

use super::modem::send;
use super::{Modem, SimStatus};
use crate::Error;
use crate::at::urc::{PinCode, RegDomain, RegStatus};
use crate::command::network::{
    ExtendedSignal, ExtendedSignalQuality, GetOperator, GetRegistration, NetworkInfo,
    NetworkInfoResponse, Operator, Signal, SignalQuality,
};
use crate::command::time::{Clock, GetClock};

/// Why [`Network::wait_network_ready`] gave up, by stage (QuecPython's `checkNet` stages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NotReady {
    /// Stage 1: the SIM is not usable (absent, PIN/PUK required, failed, or still busy at the
    /// deadline).
    Sim(SimStatus),
    /// Stage 2: not registered: denied by the network, or still in this state at the deadline.
    Registration(RegStatus),
    /// Stage 3: the data call (PDP context) could not be activated.
    DataCall(Error),
    /// The modem itself failed to answer.
    Modem(Error),
}

impl NotReady {
    /// The stage number QuecPython's `checkNet.waitNetworkReady` reports (1 SIM, 2 network
    /// registration, 3 data call; 0 for a modem failure).
    pub fn stage(&self) -> u8 {
        match self {
            NotReady::Modem(_) => 0,
            NotReady::Sim(_) => 1,
            NotReady::Registration(_) => 2,
            NotReady::DataCall(_) => 3,
        }
    }
}

/// Network operations. Get one with [`Modem::network`].
#[derive(Clone, Copy)]
pub struct Network<'a> {
    modem: Modem<'a>,
}

impl Network<'_> {
    /// The module's clock (`AT+CCLK?`): local time and UTC offset as the network last sent
    /// them (NITZ). [`Clock::unix_utc`] gives UTC seconds; [`Clock::is_set`] is `false` while
    /// the module still shows its power-on default (the network never sent the time).
    pub async fn time(&self) -> Result<Clock, Error> {
        let clock = send!(self.modem, GetClock)?;
        if clock.is_set() {
            super::clock::record(clock.unix_utc());
        }
        Ok(clock)
    }

    pub(super) fn modem(&self) -> &Modem<'_> {
        &self.modem
    }
}

impl Network<'_> {
    /// The best registration the URCs and answers have reported so far.
    fn known_registration(&self) -> RegStatus {
        self.modem
            .core
            .state
            .get()
            .best_registration()
            .unwrap_or(RegStatus::Unknown)
    }
}

impl<'a> Modem<'a> {
    /// The network handle.
    pub fn network(&self) -> Network<'a> {
        Network { modem: *self }
    }
}

impl Network<'_> {
    /// Queries the registration of one domain (`AT+CREG?`, `AT+CGREG?`, `AT+CEREG?`) and records
    /// it in the state.
    pub async fn registration_of(&self, domain: RegDomain) -> Result<RegStatus, Error> {
        // One command type for the three domains: one send, one writer, one parser.
        let r = send!(self.modem, GetRegistration(domain));
        self.record(domain, r)
    }

    /// Records the answer to `AT+C(E/G)REG?` for `domain` in the state (a plain `fn`: the flows
    /// await the command themselves, one future level less).
    fn record(
        &self,
        domain: RegDomain,
        r: Result<crate::command::network::RegistrationState, Error>,
    ) -> Result<RegStatus, Error> {
        let r = r?;
        self.modem
            .core
            .state
            .update(|s| s.set_registration(domain, r.registration));
        Ok(r.registration.status)
    }

    /// The best registration status over EPS, GPRS and CS (registered beats searching beats
    /// denied). Domains the model does not support are skipped.
    pub async fn registration(&self) -> Result<RegStatus, Error> {
        let mut any = None;
        for domain in [RegDomain::Eps, RegDomain::Ps, RegDomain::Cs] {
            match self.registration_of(domain).await {
                Ok(_) => any = Some(()),
                Err(Error::Cme(_)) | Err(Error::Error) => {}
                Err(e) => return Err(e),
            }
        }
        any.ok_or(Error::Error)?;
        Ok(self.known_registration())
    }

    /// Signal quality (`AT+CSQ`).
    pub async fn signal(&self) -> Result<Signal, Error> {
        send!(self.modem, SignalQuality)
    }

    /// Extended signal quality (`AT+QCSQ`).
    pub async fn extended_signal(&self) -> Result<ExtendedSignal, Error> {
        send!(self.modem, ExtendedSignalQuality)
    }

    /// The operator (`AT+COPS?`).
    pub async fn operator(&self) -> Result<Operator, Error> {
        send!(self.modem, GetOperator)
    }

    /// Access technology, operator, band and channel (`AT+QNWINFO`).
    pub async fn info(&self) -> Result<NetworkInfoResponse, Error> {
        send!(self.modem, NetworkInfo)
    }

    /// Waits until the modem is registered (home or roaming), up to `timeout`. Returns the
    /// status it gave up in: `Err(RegStatus::Denied)` as soon as the network denies
    /// registration, otherwise the last status at the deadline.
    ///
    /// What the registration URCs (enabled by [`Modem::init`]) or an earlier answer already
    /// reported is not asked again: registered is registered. Otherwise it asks `AT+CEREG?`,
    /// then `AT+CGREG?` and `AT+CREG?` only while none says registered, and then waits for the
    /// URCs, asking again every 5 s (every second without registration URCs) in case one was
    /// lost.
    pub async fn wait_registered(&self, timeout: Duration) -> Result<RegStatus, NotReady> {
        let deadline = Instant::now().saturating_add(timeout);
        let poll = if self.modem.core.config.registration_urcs {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(1)
        };
        let mut ask = true;
        let mut first = true;
        loop {
            let state = self.modem.core.state.get();
            let known = state.best_registration();
            let status = match known {
                Some(s) if s.is_registered() => return Ok(s),
                _ if ask => {
                    // Asks EPS, GPRS and CS registration in that order, stopping at the first
                    // registered one; the best status seen. When the registration URCs were
                    // switched on right after this boot's `RDY` and `AT+CEREG?` says the
                    // modem is still searching, the other domains are not asked: a later
                    // change of any of them comes as a URC (and the periodic poll asks them
                    // all). A denial on LTE still asks the others (GPRS may be fine). Here,
                    // not in a function of its own: one future level less.
                    let urcs = first && self.modem.core.registration_urcs_since_boot();
                    first = false;
                    let mut any = false;
                    let mut found = None;
                    for domain in [RegDomain::Eps, RegDomain::Ps, RegDomain::Cs] {
                        match self.record(domain, send!(self.modem, GetRegistration(domain))) {
                            Ok(s) if s.is_registered() => found = Some(s),
                            Ok(RegStatus::Searching) if urcs => found = Some(RegStatus::Searching),
                            Ok(_) => any = true,
                            Err(Error::Cme(_)) | Err(Error::Error) => {}
                            Err(e) => return Err(NotReady::Modem(e)),
                        }
                        if found.is_some() {
                            break;
                        }
                    }
                    match found {
                        Some(s) => s,
                        None if !any => return Err(NotReady::Modem(Error::Error)),
                        None => self.known_registration(),
                    }
                }
                Some(s) => s,
                None => RegStatus::Unknown,
            };
            if status.is_registered() {
                return Ok(status);
            }
            if status == RegStatus::Denied || Instant::now() >= deadline {
                return Err(NotReady::Registration(status));
            }
            let generation = self.modem.core.state.get().generation;
            let wait = deadline.saturating_duration_since(Instant::now()).min(poll);
            // A URC (any state change) ends the wait early; the state then says what it said.
            ask = with_timeout(
                wait,
                self.modem
                    .core
                    .state
                    .until(crate::state::changed_since, generation),
            )
            .await
            .is_err();
        }
    }

    /// Waits until the modem can carry data, like QuecPython's `checkNet.waitNetworkReady`:
    /// the SIM is ready (stage 1), the modem is registered (stage 2) and context `cid` is active
    /// (stage 3; it is activated with its configured APN if it is not). On failure, says which
    /// stage failed and in what state.
    pub async fn wait_network_ready(&self, cid: u8, timeout: Duration) -> Result<(), NotReady> {
        let deadline = Instant::now().saturating_add(timeout);
        // Stage 1: SIM. `+CPIN: READY` (the boot URC, or an earlier answer in this boot) is
        // not asked again.
        loop {
            if self.modem.core.state.get().pin == Some(PinCode::Ready) {
                break;
            }
            let status = self.modem.sim().status().await.map_err(NotReady::Modem)?;
            match status {
                SimStatus::Ready => break,
                SimStatus::Busy if Instant::now() < deadline => {
                    embassy_time::Timer::after(Duration::from_millis(500)).await
                }
                other => return Err(NotReady::Sim(other)),
            }
        }
        // Stage 2: registration.
        let left = deadline.saturating_duration_since(Instant::now());
        self.wait_registered(left).await?;
        // Stage 3: data call.
        self.modem
            .data_call()
            .activate(cid)
            .await
            .map_err(NotReady::DataCall)
    }
}
