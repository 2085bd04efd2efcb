//! The module's control pins (PWRKEY, RESET_N), driven by the runner: a module that stops
//! answering is reset through them ([`Modem::hard_reset`](super::Modem::hard_reset)).
//!
//! Timings are the hardware design manuals' (see `../shared/reference/quectel-at.md` §11.4 in
//! the repository): RESET_N low 150–460 ms (BG96, EC2x): 300 ms here; PWRKEY low 650–1500 ms
//! switches the module off (then it needs ≥ 2 s), low ≥ 500 ms switches it on: 800 ms, 2.5 s,
//! 600 ms here.

use embassy_time::Timer;
use embedded_hal::digital::OutputPin;

/// RESET_N held low (BG96 and EC2x: 150–460 ms).
const RESET_MS: u64 = 300;
/// PWRKEY held low to switch the module off (BG96: ≥ 650 ms; BG95/BG77: 650–1500 ms).
const POWER_OFF_MS: u64 = 800;
/// Wait after switching off (BG96: power-down takes ≥ 2 s).
const OFF_WAIT_MS: u64 = 2_500;
/// PWRKEY held low to switch the module on (≥ 500 ms).
const POWER_ON_MS: u64 = 600;

/// The module's control pins as the board wires them. `P` is the MCU's output pin type (e.g.
/// embassy's `Output<'static>`); boards usually drive PWRKEY and RESET_N through an NPN
/// transistor, so that the MCU pin **high** pulls the module's pin **low**: then
/// `active_high` is `true`. With a direct connection (the module pin follows the MCU pin), it
/// is `false`.
pub struct PowerPins<P> {
    /// The pin that drives PWRKEY, if wired.
    pub pwrkey: Option<P>,
    /// The pin that drives RESET_N, if wired (preferred for a reset: one short pulse).
    pub reset: Option<P>,
    /// The MCU pin level that pulls the module's pin low.
    pub active_high: bool,
}

impl<P> core::fmt::Debug for PowerPins<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PowerPins")
            .field("pwrkey", &self.pwrkey.is_some())
            .field("reset", &self.reset.is_some())
            .field("active_high", &self.active_high)
            .finish()
    }
}

/// No control pins wired: [`Modem::hard_reset`](super::Modem::hard_reset) is
/// [`Error::Unsupported`](crate::Error::Unsupported).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPins;

/// What the runner needs from the control pins (implemented by [`PowerPins`] and [`NoPins`]).
pub trait ControlPins {
    /// Whether a reset can be done at all.
    fn present(&self) -> bool;
    /// Releases every pin (the module's pins float high). Returns `false` if a pin refused.
    fn release(&mut self) -> bool {
        true
    }
    /// Resets the module (RESET_N pulse, or a PWRKEY off/on cycle). Returns `false` if a pin
    /// refused to change.
    #[allow(async_fn_in_trait)]
    async fn reset(&mut self) -> bool;
    /// Wakes the module from PSM (BG96/BG95/BG77 hardware design manuals, "Power Saving Mode":
    /// driving PWRKEY low wakes it; PON_TRIG on the BG95xA/BG77xA). Returns `false` if there is
    /// no pin for it or a pin refused to change. The default has no pin.
    #[allow(async_fn_in_trait)]
    async fn wake(&mut self) -> bool {
        false
    }
}

impl ControlPins for NoPins {
    fn present(&self) -> bool {
        false
    }
    async fn reset(&mut self) -> bool {
        false
    }
}

impl<P: OutputPin> PowerPins<P> {
    /// Releases both pins (the module's pins float high): called when the runner starts, so a
    /// pin never stays asserted by mistake.
    fn release_all(&mut self) -> bool {
        let active_high = self.active_high;
        let mut ok = true;
        for pin in [self.pwrkey.as_mut(), self.reset.as_mut()]
            .into_iter()
            .flatten()
        {
            ok &= set(pin, active_high, false);
        }
        ok
    }
}

/// Drives `pin` so that the module's pin is pulled low (`assert`) or released.
fn set<P: OutputPin>(pin: &mut P, active_high: bool, assert: bool) -> bool {
    if assert == active_high {
        pin.set_high().is_ok()
    } else {
        pin.set_low().is_ok()
    }
}

async fn pulse<P: OutputPin>(pin: &mut P, active_high: bool, ms: u64) -> bool {
    let ok = set(pin, active_high, true);
    Timer::after_millis(ms).await;
    set(pin, active_high, false) && ok
}

impl<P: OutputPin> ControlPins for PowerPins<P> {
    fn present(&self) -> bool {
        self.pwrkey.is_some() || self.reset.is_some()
    }

    fn release(&mut self) -> bool {
        self.release_all()
    }

    async fn reset(&mut self) -> bool {
        let active_high = self.active_high;
        if !self.release_all() {
            return false;
        }
        if let Some(pin) = self.reset.as_mut() {
            return pulse(pin, active_high, RESET_MS).await;
        }
        let Some(pin) = self.pwrkey.as_mut() else {
            return false;
        };
        // A hung module may ignore the off pulse; the on pulse after the wait then starts it
        // either way (a running module takes a ≥ 500 ms press for on only when it is off).
        let off = pulse(pin, active_high, POWER_OFF_MS).await;
        Timer::after_millis(OFF_WAIT_MS).await;
        let on = pulse(pin, active_high, POWER_ON_MS).await;
        off && on
    }

    async fn wake(&mut self) -> bool {
        self.wake_pulse().await
    }
}

impl<P: OutputPin> PowerPins<P> {
    /// A PWRKEY press as long as a power-on one (≥ 500 ms): it wakes a module in PSM, and is too
    /// short to switch a running one off (≥ 650 ms).
    async fn wake_pulse(&mut self) -> bool {
        let active_high = self.active_high;
        match self.pwrkey.as_mut() {
            Some(pin) => pulse(pin, active_high, POWER_ON_MS).await,
            None => false,
        }
    }
}

/// The longest a reset through the pins takes, in milliseconds.
pub(crate) const RESET_TAKES_MS: u64 = POWER_OFF_MS + OFF_WAIT_MS + POWER_ON_MS;
