//! UART sleep (`AT+QSCLK=1`) as the module does it: with sleep allowed, DTR high (or never
//! driven: the module's DTR is pulled up) and the UART idle for [`UartSleepTiming::sleep_after`],
//! the module sleeps and **drops** the bytes sent to it; DTR low wakes it after
//! [`UartSleepTiming::wake_time`] (bytes sent before that are dropped too). It still sends URCs
//! while asleep (it wakes itself for them). The test drives DTR with the pin from
//! [`ModemHandle::dtr`](crate::ModemHandle::dtr), an `embedded_hal::digital::OutputPin`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The module's sleep timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UartSleepTiming {
    /// Quiet time (no byte in or out) with DTR high before the module sleeps.
    pub sleep_after: Duration,
    /// Time after DTR falls until the module takes UART input again.
    pub wake_time: Duration,
}

impl Default for UartSleepTiming {
    fn default() -> Self {
        Self {
            sleep_after: Duration::from_millis(20),
            wake_time: Duration::from_millis(20),
        }
    }
}

/// A snapshot of the module's UART sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UartSleepStats {
    /// `AT+QSCLK` setting (0 off).
    pub mode: u8,
    /// The DTR level the host drives (high when never driven).
    pub dtr_high: bool,
    /// Asleep now.
    pub asleep: bool,
    /// Bytes the host sent while the module slept (lost).
    pub dropped_bytes: u64,
    /// Times the module fell asleep.
    pub sleeps: u32,
    /// Times DTR fell.
    pub dtr_falls: u32,
    /// RI pulses (one per URC, the modules' default `AT+QCFG="urc/ri/other"`).
    pub ri_pulses: u32,
}

#[derive(Debug)]
struct Inner {
    timing: UartSleepTiming,
    mode: u8,
    dtr_high: bool,
    dtr_changed: Instant,
    /// DTR low: the module takes input from this instant (later than the fall if it slept).
    awake_from: Instant,
    last_activity: Instant,
    was_asleep: bool,
    stats: UartSleepStats,
    /// Wakers of the host's RI inputs waiting for a pulse.
    ri_waiters: Vec<std::task::Waker>,
}

impl Inner {
    fn asleep(&self, now: Instant) -> bool {
        if self.mode == 0 {
            return false;
        }
        if !self.dtr_high {
            return now < self.awake_from;
        }
        let since = self.last_activity.max(self.dtr_changed);
        now.saturating_duration_since(since) >= self.timing.sleep_after
    }

    fn note(&mut self, now: Instant) {
        let asleep = self.asleep(now);
        if asleep && !self.was_asleep {
            self.stats.sleeps += 1;
        }
        self.was_asleep = asleep;
    }
}

/// The module's sleep state, shared by the engine and the DTR pin.
#[derive(Debug, Clone)]
pub(crate) struct SleepLine(Arc<Mutex<Inner>>);

impl SleepLine {
    pub(crate) fn new(timing: UartSleepTiming) -> Self {
        let now = Instant::now();
        SleepLine(Arc::new(Mutex::new(Inner {
            timing,
            mode: 0,
            dtr_high: true,
            dtr_changed: now,
            awake_from: now,
            last_activity: now,
            was_asleep: false,
            ri_waiters: Vec::new(),
            stats: UartSleepStats {
                dtr_high: true,
                ..UartSleepStats::default()
            },
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `AT+QSCLK=<mode>` (and 0 at boot: the setting is not saved).
    pub(crate) fn set_mode(&self, mode: u8) {
        let mut i = self.lock();
        i.mode = mode;
        i.last_activity = Instant::now();
    }

    pub(crate) fn mode(&self) -> u8 {
        self.lock().mode
    }

    /// Bytes from the host: what the module takes (nothing while asleep).
    pub(crate) fn input<'b>(&self, bytes: &'b [u8]) -> &'b [u8] {
        let now = Instant::now();
        let mut i = self.lock();
        i.note(now);
        if i.asleep(now) {
            i.stats.dropped_bytes += bytes.len() as u64;
            return &[];
        }
        i.last_activity = now;
        bytes
    }

    /// The module sent something (it is awake while it does).
    pub(crate) fn output(&self) {
        let now = Instant::now();
        let mut i = self.lock();
        i.note(now);
        if !i.asleep(now) {
            i.last_activity = now;
        }
    }

    /// A URC went out: RI pulses low (BG96 Hardware Design §3.15: 120 ms).
    pub(crate) fn ri_pulse(&self) {
        let mut i = self.lock();
        i.stats.ri_pulses += 1;
        for w in i.ri_waiters.drain(..) {
            w.wake();
        }
    }

    fn ri_count(&self) -> u32 {
        self.lock().stats.ri_pulses
    }

    fn set_dtr(&self, high: bool) {
        let now = Instant::now();
        let mut i = self.lock();
        if i.dtr_high == high {
            return;
        }
        i.note(now);
        if !high {
            let asleep = i.asleep(now);
            i.awake_from = if asleep {
                now + i.timing.wake_time
            } else {
                now
            };
            i.stats.dtr_falls += 1;
        } else {
            i.last_activity = now;
        }
        i.dtr_high = high;
        i.dtr_changed = now;
    }

    pub(crate) fn stats(&self) -> UartSleepStats {
        let now = Instant::now();
        let mut i = self.lock();
        i.note(now);
        UartSleepStats {
            mode: i.mode,
            dtr_high: i.dtr_high,
            asleep: i.asleep(now),
            ..i.stats
        }
    }
}

/// The module's DTR input as an `embedded_hal` output pin for the driver under test.
#[derive(Debug, Clone)]
pub struct MockDtr(pub(crate) SleepLine);

impl embedded_hal::digital::ErrorType for MockDtr {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for MockDtr {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.0.set_dtr(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.0.set_dtr(true);
        Ok(())
    }
}

/// The module's RI output as an `embedded_hal_async` input for the driver under test: every URC
/// the module sends is one low pulse (a falling then a rising edge).
#[derive(Debug, Clone)]
pub struct MockRi(pub(crate) SleepLine);

impl embedded_hal::digital::ErrorType for MockRi {
    type Error = core::convert::Infallible;
}

impl MockRi {
    /// Resolves at the next pulse after the call.
    async fn next_pulse(&self) {
        let start = self.0.ri_count();
        std::future::poll_fn(|cx| {
            let mut i = self.0.lock();
            if i.stats.ri_pulses != start {
                return std::task::Poll::Ready(());
            }
            i.ri_waiters.push(cx.waker().clone());
            std::task::Poll::Pending
        })
        .await
    }
}

impl embedded_hal_async::digital::Wait for MockRi {
    async fn wait_for_high(&mut self) -> Result<(), Self::Error> {
        // Idle high between pulses (the pulse itself is short): high at once.
        Ok(())
    }
    async fn wait_for_low(&mut self) -> Result<(), Self::Error> {
        self.next_pulse().await;
        Ok(())
    }
    async fn wait_for_rising_edge(&mut self) -> Result<(), Self::Error> {
        self.next_pulse().await;
        Ok(())
    }
    async fn wait_for_falling_edge(&mut self) -> Result<(), Self::Error> {
        self.next_pulse().await;
        Ok(())
    }
    async fn wait_for_any_edge(&mut self) -> Result<(), Self::Error> {
        self.next_pulse().await;
        Ok(())
    }
}
