//! The power handle: PSM and eDRX requests (`AT+CPSMS`, `AT+CEDRXS`, `AT+QPTWEDRXS`) and what
//! the network granted, refused up front on models without them.

use embassy_time::Duration;

use super::Modem;
use crate::Error;
use crate::command::power::{
    DisablePsm, EdrxAct, EdrxGrant, GetEdrxGrant, GetPsm, PsmSettings, SetEdrx, SetEdrxWithWindow,
    SetPsm, SetPsmThreshold, SetPsmUrc,
};
use crate::model::PowerSupport;

/// PSM and eDRX. Get one with [`Modem::power`]. Timers are given as durations and rounded
/// up to the nearest value the 3GPP encodings hold (see [`crate::command::power`]); the
/// network may grant other values, which [`Power::psm`] and [`Power::edrx_grant`] read back.
/// A call the model does not support (see [`PowerSupport`]) is [`Error::Unsupported`], with
/// nothing sent.
#[derive(Clone, Copy, Debug)]
pub struct Power<'a> {
    pub(super) modem: Modem<'a>,
}

impl<'a> Modem<'a> {
    /// The power-saving handle.
    pub fn power(&self) -> Power<'a> {
        Power { modem: *self }
    }
}

impl Power<'_> {
    async fn require(&self, has: impl Fn(&PowerSupport) -> bool) -> Result<(), Error> {
        if has(&self.modem.params().await.power) {
            Ok(())
        } else {
            Err(Error::Unsupported)
        }
    }

    /// Asks for PSM with this periodic TAU (T3412 extended, up to 9 920 h) and active time
    /// (T3324, up to 186 min) (`AT+CPSMS=1,,,"<tau>","<active>"`). An out-of-range timer is
    /// [`Error::InvalidArgument`].
    pub async fn set_psm(
        &self,
        periodic_tau: Duration,
        active_time: Duration,
    ) -> Result<(), Error> {
        self.require(|p| p.psm).await?;
        self.modem
            .send(&SetPsm {
                periodic_tau,
                active_time,
            })
            .await
    }

    /// Turns PSM off (`AT+CPSMS=0`).
    pub async fn disable_psm(&self) -> Result<(), Error> {
        self.require(|p| p.psm).await?;
        self.modem.send(&DisablePsm).await
    }

    /// The PSM settings requested from the network (`AT+CPSMS?`).
    pub async fn psm(&self) -> Result<PsmSettings, Error> {
        self.require(|p| p.psm).await?;
        self.modem.send(&GetPsm).await
    }

    /// Asks for eDRX on `act` with the shortest cycle of at least `cycle`
    /// (`AT+CEDRXS=1,<act>,"<value>"`); a cycle longer than 10 485.76 s is
    /// [`Error::InvalidArgument`].
    pub async fn set_edrx(&self, act: EdrxAct, cycle: Duration) -> Result<(), Error> {
        self.require(|p| p.edrx).await?;
        let value = act.value_for(cycle).ok_or(Error::InvalidArgument)?;
        self.modem
            .send(&SetEdrx {
                enable: true,
                act,
                value,
            })
            .await
    }

    /// As [`Power::set_edrx`], with a requested paging time window of at least `window`
    /// (`AT+QPTWEDRXS`, BG95/BG77: 1.28 s steps up to 20.48 s on LTE-M, 2.56 s steps up to
    /// 40.96 s on NB-IoT).
    pub async fn set_edrx_with_window(
        &self,
        act: EdrxAct,
        cycle: Duration,
        window: Duration,
    ) -> Result<(), Error> {
        self.require(|p| p.paging_window).await?;
        let value = act.value_for(cycle).ok_or(Error::InvalidArgument)?;
        let paging_window = (0u8..16)
            .find(|&v| act.paging_window(v) >= window)
            .ok_or(Error::InvalidArgument)?;
        self.modem
            .send(&SetEdrxWithWindow {
                enable: true,
                act,
                paging_window,
                value,
            })
            .await
    }

    /// Turns eDRX off on `act` (`AT+CEDRXS=0,<act>,"0000"`).
    pub async fn disable_edrx(&self, act: EdrxAct) -> Result<(), Error> {
        self.require(|p| p.edrx).await?;
        self.modem
            .send(&SetEdrx {
                enable: false,
                act,
                value: 0,
            })
            .await
    }

    /// Switches the `+QPSMTIMER: <tau>,<T3324>` URC on or off (`AT+QCFG="psm/urc"`); while on,
    /// the driver switches it on again after every boot or PSM wake. The granted timers land
    /// in [`State::psm_grant`](crate::state::State::psm_grant).
    pub async fn set_psm_urc(&self, on: bool) -> Result<(), Error> {
        self.require(|p| p.psm_urc).await?;
        self.modem.send(&SetPsmUrc(on)).await?;
        self.modem
            .core
            .psm_urc
            .store(on, core::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The shortest sleep the module enters PSM for (`AT+QPSMCFG=<threshold>,<version>`),
    /// rounded up to whole seconds; `version` is Quectel's PSM version bit mask (4: 3GPP
    /// Rel-13).
    pub async fn set_psm_threshold(&self, threshold: Duration, version: u8) -> Result<(), Error> {
        self.require(|p| p.psm_threshold).await?;
        let threshold_s = u32::try_from(threshold.as_millis().div_ceil(1000))
            .map_err(|_| Error::InvalidArgument)?;
        self.modem
            .send(&SetPsmThreshold {
                threshold_s,
                version,
            })
            .await
    }

    /// Wakes a module in PSM (announced by `PSM POWER DOWN`, see
    /// [`State::psm_asleep`](crate::state::State::psm_asleep)) with a PWRKEY pulse from the
    /// runner's pins ([`Runner::with_pins`](super::Runner::with_pins)), waits for its `RDY`
    /// and re-applies what it forgot ([`Modem::resume`]). Returns `Ok(false)` without a pulse
    /// when the module is not asleep. [`Error::Unsupported`] without PSM or without pins;
    /// [`Error::NotResponding`] when no `RDY` comes within [`Config::startup_timeout`](super::Config::startup_timeout)
    /// plus the pulse.
    pub async fn wake(&self) -> Result<bool, Error> {
        self.require(|p| p.psm).await?;
        let woke = if self.modem.state().psm_asleep {
            self.modem.psm_wake_pulse().await?;
            true
        } else {
            false
        };
        self.modem.resume().await?;
        Ok(woke)
    }

    /// The eDRX parameters the network granted in the serving cell (`AT+CEDRXRDP`).
    pub async fn edrx_grant(&self) -> Result<EdrxGrant, Error> {
        self.require(|p| p.edrx).await?;
        self.modem.send(&GetEdrxGrant).await
    }
}
