//! The SIM handle.

use embassy_time::{Duration, with_timeout};

use super::Modem;
use super::modem::send;
use crate::at::urc::PinCode;
use crate::command::general::{Echo, Setting};
use crate::command::sim::{EnterPin, EnterPuk, GetPinStatus, Iccid, Imsi};
use crate::{CmeError, Error};

/// The SIM's state, in the shape of QuecPython's `sim.getStatus()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SimStatus {
    /// Ready: no PIN needed (QuecPython 1).
    Ready,
    /// PIN required (QuecPython 2).
    PinRequired,
    /// PUK required: too many wrong PINs (QuecPython 3).
    PukRequired,
    /// No SIM in the holder (QuecPython 0).
    NotInserted,
    /// The SIM is still initialising or busy; ask again later.
    Busy,
    /// Another lock (PIN2, PUK2, network/provider personalisation).
    Locked(PinCode),
    /// The SIM failed (`+CME ERROR: 13`, 15) or answered with another error.
    Error(CmeError),
}

impl SimStatus {
    /// The number QuecPython's `sim.getStatus()` returns for this state (0 absent, 1 ready,
    /// 2 PIN, 3 PUK, 20 busy/initialising, 21 other error).
    pub fn quecpython_code(self) -> u8 {
        match self {
            SimStatus::NotInserted => 0,
            SimStatus::Ready => 1,
            SimStatus::PinRequired => 2,
            SimStatus::PukRequired => 3,
            SimStatus::Busy => 20,
            SimStatus::Locked(_) | SimStatus::Error(_) => 21,
        }
    }
}

/// SIM operations. Get one with [`Modem::sim`].
#[derive(Clone, Copy)]
pub struct Sim<'a> {
    modem: Modem<'a>,
}

impl<'a> Modem<'a> {
    /// The SIM handle.
    pub fn sim(&self) -> Sim<'a> {
        Sim { modem: *self }
    }
}

fn status_of(code: PinCode) -> SimStatus {
    match code {
        PinCode::Ready => SimStatus::Ready,
        PinCode::SimPin => SimStatus::PinRequired,
        PinCode::SimPuk => SimStatus::PukRequired,
        PinCode::NotReady => SimStatus::Busy,
        other => SimStatus::Locked(other),
    }
}

impl Sim<'_> {
    /// Reads the SIM state (`AT+CPIN?`). Errors that describe the SIM (not inserted, busy,
    /// failure) are states, not errors.
    // Polled out of line (`Outlined`): awaited from several flows.
    pub fn status(&self) -> impl core::future::Future<Output = Result<SimStatus, Error>> + '_ {
        super::outline::Outlined(self.status_body())
    }

    /// The body of [`Self::status`] (polled out of line).
    async fn status_body(&self) -> Result<SimStatus, Error> {
        match send!(self.modem, GetPinStatus) {
            Ok(code) => {
                self.modem.core.state.update(|s| s.pin = Some(code));
                Ok(status_of(code))
            }
            Err(Error::Cme(e)) => Ok(match e {
                CmeError::SIM_NOT_INSERTED => SimStatus::NotInserted,
                CmeError::SIM_BUSY => SimStatus::Busy,
                CmeError::SIM_PIN_REQUIRED => SimStatus::PinRequired,
                CmeError::SIM_PUK_REQUIRED => SimStatus::PukRequired,
                other => SimStatus::Error(other),
            }),
            Err(e) => Err(e),
        }
    }

    /// Enters the PIN if the SIM asks for one and waits (up to 10 s) for it to become ready.
    /// A wrong PIN is `Err(Error::Cme(CmeError::INCORRECT_PASSWORD))`.
    pub async fn unlock(&self, pin: &str) -> Result<(), Error> {
        match self.status().await? {
            SimStatus::Ready => return Ok(()),
            SimStatus::PinRequired => {}
            _ => return Err(Error::InvalidState),
        }
        // With echo on the PIN would come back on the wire (and into any byte log): make sure
        // echo is off first, whether or not `init` ran.
        send!(self.modem, Setting(&Echo(false)))?;
        send!(self.modem, EnterPin { pin })?;
        self.wait_ready(Duration::from_secs(10)).await
    }

    /// Unblocks a SIM that asks for its PUK, setting a new PIN.
    pub async fn unblock(&self, puk: &str, new_pin: &str) -> Result<(), Error> {
        if self.status().await? != SimStatus::PukRequired {
            return Err(Error::InvalidState);
        }
        send!(self.modem, Setting(&Echo(false)))?;
        send!(self.modem, EnterPuk { puk, new_pin })?;
        self.wait_ready(Duration::from_secs(10)).await
    }

    /// Waits until the SIM reports `READY` (URC or polling every 500 ms), up to `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        with_timeout(timeout, async {
            loop {
                if self.status().await? == SimStatus::Ready {
                    return Ok(());
                }
                let _ = with_timeout(
                    Duration::from_millis(500),
                    self.modem.core.state.until(crate::state::sim_ready, 0),
                )
                .await;
            }
        })
        .await
        .map_err(|_| Error::Timeout)?
    }

    /// The SIM's ICCID (`AT+QCCID`).
    pub async fn iccid(&self) -> Result<heapless::String<24>, Error> {
        send!(self.modem, Iccid)
    }

    /// The subscriber identity (`AT+CIMI`).
    pub async fn imsi(&self) -> Result<heapless::String<16>, Error> {
        send!(self.modem, Imsi)
    }
}
