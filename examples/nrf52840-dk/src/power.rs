//! Switching the modem on before the flow, with the reference timings (Quectel hardware design
//! guides; `quectel-example-app`'s [`PowerTiming`]).
//!
//! PWRKEY is a *toggle* on Quectel modules: held low ≥ 500 ms it switches an off module on, but
//! held ≥ 650 ms it switches a running module **off**. The MCU may have been reset (reflashed)
//! while the modem kept running, so the module is asked first (`AT`, three tries, 1.5 s):
//!
//! * it answers → it is on: pulse RESET_N (150–460 ms; 300 ms used) for a clean boot (no
//!   sockets or TLS state left over from the previous run). Modules without RESET_N (some
//!   BG95 variants) just keep running, which the driver's start-up also handles;
//! * silence → it is off: pulse PWRKEY (750 ms). The module answers ≥ 4.9 s later (BG96); the
//!   flow's start-up step waits for `RDY` or an answer to `AT` (30 s).

use defmt::{info, warn};
use embassy_time::{Duration, Instant, Timer, with_deadline};
use embedded_hal::digital::OutputPin;
use embedded_io_async::{Read, Write};
use quectel_example_app::{ModemPower, PowerTiming, PwrKey, ResetN};

/// Timings of the fitted module (BG96/EC2x; `PowerTiming::BG95` for BG95/BG77).
pub const TIMING: PowerTiming = PowerTiming::BG96;

/// Sends `AT` up to three times and reports whether `OK` came back (500 ms each).
pub async fn modem_answers<R: Read, W: Write>(rx: &mut R, tx: &mut W) -> bool {
    for _ in 0..3 {
        if tx.write_all(b"AT\r").await.is_err() || tx.flush().await.is_err() {
            return false;
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut buf = [0u8; 64];
        let mut n = 0;
        while let Ok(Ok(k)) = with_deadline(deadline, rx.read(&mut buf[n..])).await {
            n += k;
            if buf[..n].windows(2).any(|w| w == b"OK") {
                // Let the rest of the answer arrive and drop it, so the driver starts clean.
                Timer::after_millis(50).await;
                return true;
            }
            if n == buf.len() {
                buf.copy_within(n - 1.., 0);
                n = 1;
            }
        }
    }
    false
}

/// Brings the module to a freshly booted state (see the module documentation).
pub async fn power_up<R, W, P, Q>(rx: &mut R, tx: &mut W, pwrkey: P, reset_n: Q, inverted: bool)
where
    R: Read,
    W: Write,
    P: OutputPin,
    Q: OutputPin,
{
    // VBAT must be stable ≥ 30 ms before PWRKEY is pressed.
    Timer::after_millis(100).await;
    let mut pwrkey = PwrKey::new(pwrkey, inverted, TIMING);
    let mut reset_n = ResetN::new(reset_n, inverted, TIMING);
    if modem_answers(rx, tx).await {
        info!(
            "modem is on: resetting it (RESET_N {} ms)",
            TIMING.reset_pulse.as_millis()
        );
        if reset_n.reset().await.is_err() {
            warn!("RESET_N: GPIO error");
        }
    } else {
        info!(
            "modem is off: pressing PWRKEY for {} ms; it answers after ~{} ms",
            TIMING.on_pulse.as_millis(),
            TIMING.uart_ready.as_millis()
        );
        if pwrkey.power_on().await.is_err() {
            warn!("PWRKEY: GPIO error");
        }
    }
}
