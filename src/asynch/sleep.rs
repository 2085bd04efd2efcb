//! UART sleep (`AT+QSCLK=1`) driven through DTR, by the runner.
//!
//! With `AT+QSCLK=1` the module sleeps while its DTR input is high (or open) and its UART is
//! idle, and a sleeping module does not take UART input: the bytes sent to it are lost.
//! "Driving the host DTR to low level will wake up the module" (Quectel BG96 Hardware Design
//! V1.x §3.4.1.1 *UART Application*; BG77 Hardware Design §3.4.1 and BG95 Hardware Design
//! §3.4.1 say the same); the module signals a URC to a sleeping host with a low pulse on RI
//! (BG96 Hardware Design §3.15 *RI*: 120 ms). The hardware design manuals give **no wake-up
//! time** after DTR falls: the runner waits [`UartSleep::DEFAULT_WAKE`] (50 ms) by default,
//! which covers the UART's restart with margin; change it with [`UartSleep::wake_time`] if your
//! module's application note says otherwise.
//!
//! What the runner does with a [`UartSleep`] ([`Runner::with_uart_sleep`](super::Runner::with_uart_sleep)):
//!
//! * before it writes anything, it drives DTR low and waits the wake-up time if DTR was high,
//!   so no byte reaches a sleeping module;
//! * it keeps DTR low while a command is in flight (the AT channel is held) and for
//!   [`UartSleep::idle_after`] after the last write, then drives DTR high so the module may
//!   sleep again;
//! * an RI pulse (if RI is wired, [`UartSleep::with_ri`]) wakes the module the same way, so the
//!   read that the URC announces goes out at once;
//! * DTR is driven high when the runner starts and when the [`UartSleep`] is dropped (the
//!   runner's future cancelled): a forgotten low DTR would keep the module awake.
//!
//! The blocking facade does not drive DTR.

use core::cell::{Cell, RefCell};

use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Instant, Timer};
use embedded_hal::digital::OutputPin;
use embedded_hal_async::digital::Wait;

/// An input that is not wired (never fires).
#[derive(Clone, Copy, Debug, Default)]
pub struct NotWired;

impl embedded_hal::digital::ErrorType for NotWired {
    type Error = core::convert::Infallible;
}

impl Wait for NotWired {
    async fn wait_for_high(&mut self) -> Result<(), Self::Error> {
        core::future::pending().await
    }
    async fn wait_for_low(&mut self) -> Result<(), Self::Error> {
        core::future::pending().await
    }
    async fn wait_for_rising_edge(&mut self) -> Result<(), Self::Error> {
        core::future::pending().await
    }
    async fn wait_for_falling_edge(&mut self) -> Result<(), Self::Error> {
        core::future::pending().await
    }
    async fn wait_for_any_edge(&mut self) -> Result<(), Self::Error> {
        core::future::pending().await
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// DTR high: the module may sleep.
    Released,
    /// DTR low, the wake-up time not over yet.
    Waking,
    /// DTR low and the module awake.
    Awake,
}

/// The UART sleep pins as the board wires them: DTR (an output; MCU pin high = module DTR
/// high, so put a level shifter or a non-inverting buffer between them, not a single NPN
/// transistor) and, optionally, RI (an async input, e.g. embassy's `ExtiInput` or nRF
/// `Input`, which fires on the module's URC pulse).
pub struct UartSleep<D: OutputPin, RI: Wait = NotWired> {
    dtr: RefCell<D>,
    ri: RefCell<Option<RI>>,
    wake: Duration,
    idle: Duration,
    phase: Cell<Phase>,
    writing: Cell<bool>,
    last: Cell<Instant>,
    woken: Signal<CriticalSectionRawMutex, ()>,
    wakes: Cell<u32>,
}

impl<D: OutputPin, RI: Wait> core::fmt::Debug for UartSleep<D, RI> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UartSleep")
            .field("ri", &self.ri.try_borrow().map(|r| r.is_some()).ok())
            .field("wake", &self.wake)
            .field("idle", &self.idle)
            .field("phase", &self.phase.get())
            .finish()
    }
}

impl<D: OutputPin> UartSleep<D> {
    /// The default wait after DTR falls before the first byte (the manuals give none).
    pub const DEFAULT_WAKE: Duration = Duration::from_millis(50);
    /// The default quiet time after the last write before DTR goes high again.
    pub const DEFAULT_IDLE: Duration = Duration::from_millis(200);

    /// UART sleep with DTR only.
    pub fn new(dtr: D) -> Self {
        Self::build(dtr, None)
    }
}

impl<D: OutputPin, RI: Wait> UartSleep<D, RI> {
    /// UART sleep with DTR and the RI input: a falling edge on RI (the module's URC pulse)
    /// wakes the module.
    pub fn with_ri(dtr: D, ri: RI) -> Self {
        Self::build(dtr, Some(ri))
    }

    fn build(dtr: D, ri: Option<RI>) -> Self {
        Self {
            dtr: RefCell::new(dtr),
            ri: RefCell::new(ri),
            wake: UartSleep::<D>::DEFAULT_WAKE,
            idle: UartSleep::<D>::DEFAULT_IDLE,
            phase: Cell::new(Phase::Released),
            writing: Cell::new(false),
            last: Cell::new(Instant::from_ticks(0)),
            woken: Signal::new(),
            wakes: Cell::new(0),
        }
    }

    /// The wait after DTR falls before the first byte is written (default 50 ms).
    pub fn wake_time(mut self, wake: Duration) -> Self {
        self.wake = wake;
        self
    }

    /// How long the UART stays quiet after the last write (with no command in flight) before
    /// DTR goes high (default 200 ms).
    pub fn idle_after(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    fn dtr_high(&self) -> bool {
        self.phase.set(Phase::Released);
        self.dtr.borrow_mut().set_high().is_ok()
    }

    /// Wakes the module (DTR low, then the wake-up time) unless it is awake; `false` if the
    /// pin refused.
    async fn wake_up(&self) -> bool {
        match self.phase.get() {
            Phase::Awake => return true,
            Phase::Released => {
                self.phase.set(Phase::Waking);
                self.wakes.set(self.wakes.get().wrapping_add(1));
                if self.dtr.borrow_mut().set_low().is_err() {
                    self.phase.set(Phase::Released);
                    return false;
                }
                Timer::after(self.wake).await;
                // A concurrent waker (RI) may have finished first: either way it is awake now.
                self.phase.set(Phase::Awake);
                self.woken.signal(());
            }
            Phase::Waking => {
                // Another task is waiting out the wake-up time: wait as long.
                Timer::after(self.wake).await;
                self.phase.set(Phase::Awake);
            }
        }
        self.last.set(Instant::now());
        true
    }
}

impl<D: OutputPin, RI: Wait> Drop for UartSleep<D, RI> {
    fn drop(&mut self) {
        // Never leave DTR low behind: the module would stay awake.
        let _ = self.dtr.get_mut().set_high();
    }
}

/// What the runner needs from a UART sleep setup (implemented by [`UartSleep`] and
/// [`NoSleep`]).
pub trait SleepControl {
    /// Whether DTR is driven at all.
    fn present(&self) -> bool;
    /// Drives DTR high (the module may sleep). `false` if the pin refused.
    fn release(&self) -> bool;
    /// Before a write: wakes the module. `false` if the pin refused.
    #[allow(async_fn_in_trait)]
    async fn before_write(&self) -> bool;
    /// After a write.
    fn after_write(&self);
    /// Drives DTR high when idle (`busy` says whether a command is in flight) and wakes the
    /// module on an RI pulse. Never returns.
    #[allow(async_fn_in_trait)]
    async fn serve<B: Fn() -> bool>(&self, busy: B) -> !;
}

/// No UART sleep: DTR not driven.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSleep;

impl SleepControl for NoSleep {
    fn present(&self) -> bool {
        false
    }
    fn release(&self) -> bool {
        true
    }
    async fn before_write(&self) -> bool {
        true
    }
    fn after_write(&self) {}
    async fn serve<B: Fn() -> bool>(&self, _: B) -> ! {
        core::future::pending().await
    }
}

impl<D: OutputPin, RI: Wait> SleepControl for UartSleep<D, RI> {
    fn present(&self) -> bool {
        true
    }

    fn release(&self) -> bool {
        self.dtr_high()
    }

    async fn before_write(&self) -> bool {
        let ok = self.wake_up().await;
        self.writing.set(true);
        ok
    }

    fn after_write(&self) {
        self.writing.set(false);
        self.last.set(Instant::now());
    }

    async fn serve<B: Fn() -> bool>(&self, busy: B) -> ! {
        // The RI input moves into this future (only it waits on RI).
        let mut ri = self.ri.borrow_mut().take();
        loop {
            if self.phase.get() != Phase::Awake {
                // Asleep (or waking): wait for a write to wake it, or for RI.
                let woken = self.woken.wait();
                match ri.as_mut() {
                    Some(pin) => {
                        if let Either::Second(edge) =
                            select(woken, pin.wait_for_falling_edge()).await
                        {
                            if edge.is_ok() {
                                debug!("RI: waking the module for a URC");
                                if !self.wake_up().await {
                                    warn!("DTR refused to change");
                                }
                            } else {
                                // A failing input must not spin: treat it as not wired.
                                warn!("RI input failed; ignoring it");
                                ri = None;
                            }
                        }
                    }
                    None => woken.await,
                }
                continue;
            }
            let due = self.last.get().saturating_add(self.idle);
            if Instant::now() < due {
                Timer::at(due).await;
                continue;
            }
            if busy() || self.writing.get() {
                // A command is in flight: look again after another idle period.
                Timer::after(self.idle).await;
                continue;
            }
            trace!("UART idle: DTR high");
            if !self.dtr_high() {
                warn!("DTR refused to change");
            }
        }
    }
}

impl<D: OutputPin, RI: Wait> UartSleep<D, RI> {
    /// How many times DTR was pulled low to wake the module.
    pub fn wakes(&self) -> u32 {
        self.wakes.get()
    }
}
