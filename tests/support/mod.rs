//! Shared helpers for black-box tests against the mock modem.
#![allow(dead_code)]

use std::time::Duration as StdDuration;

use embassy_futures::select::{Either, select};
use quectel::asynch::{self, Config, Modem, Resources};
use quectel_mock::{HostRx, HostTx, MockModem, ModemHandle};

pub type TestModem = Modem<'static>;

pub fn config() -> Config {
    Config {
        startup_timeout: embassy_time::Duration::from_secs(10),
        ..Config::default()
    }
}

/// [`config`] with a 1 ms gap between commands (the mock answers at once).
pub fn fast_config() -> Config {
    Config {
        command_gap: embassy_time::Duration::from_millis(1),
        ..config()
    }
}

/// A simulated BG96 that registers after 20 ms.
pub fn bg96() -> MockModem {
    MockModem::new(quectel_mock::Model::Bg96).search_time(StdDuration::from_millis(20))
}

pub fn resources() -> &'static mut Resources {
    Box::leak(Box::new(Resources::new()))
}

/// Runs `body` against a behavioural mock modem with the async API on a current-thread runtime.
pub fn with_modem<T>(mock: MockModem, body: impl AsyncFnOnce(&TestModem, &ModemHandle) -> T) -> T {
    let (rx, tx, handle) = mock.spawn();
    with_endpoints(rx, tx, async |m| body(m, &handle).await)
}

/// Runs `body` with the async API over given endpoints.
pub fn with_endpoints<T>(rx: HostRx, tx: HostTx, body: impl AsyncFnOnce(&TestModem) -> T) -> T {
    with_endpoints_in(resources(), config(), rx, tx, body)
}

/// Runs `body` against a behavioural mock with resources of any size and a given config.
pub fn with_modem_in<T, const N: usize, const S: usize, const R: usize>(
    resources: &'static mut Resources<N, S, R>,
    config: Config,
    mock: MockModem,
    body: impl AsyncFnOnce(&Modem<'static>, &ModemHandle) -> T,
) -> T {
    let (rx, tx, handle) = mock.spawn();
    with_endpoints_in(resources, config, rx, tx, async |m| body(m, &handle).await)
}

/// Runs `body` with the async API over given endpoints, resources and config.
pub fn with_endpoints_in<T, const N: usize, const S: usize, const R: usize>(
    resources: &'static mut Resources<N, S, R>,
    config: Config,
    rx: HostRx,
    tx: HostTx,
    body: impl AsyncFnOnce(&Modem<'static>) -> T,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (runner, modem) = asynch::new(resources, rx, tx, config);
        let out = tokio::time::timeout(
            StdDuration::from_secs(120),
            select(runner.run(), body(&modem)),
        )
        .await
        .expect("test body took more than 120 s");
        match out {
            Either::First(never) => never,
            Either::Second(t) => t,
        }
    })
}
pub mod broker;

/// Initialises the modem and brings data call 1 (APN `internet`) up.
pub async fn bring_up(m: &Modem<'static>) {
    m.init().await.unwrap();
    m.data_call()
        .configure(1, &quectel::asynch::Apn::new("internet"))
        .await
        .unwrap();
    m.network()
        .wait_network_ready(1, embassy_time::Duration::from_secs(30))
        .await
        .unwrap();
}

/// A PWRKEY pin for the runner ([`quectel::asynch::PowerPins`], active high) whose press
/// reaches the mock modem ([`ModemHandle::pwrkey`]: wakes it from PSM).
pub struct PwrkeyPin {
    pub h: std::sync::Arc<ModemHandle>,
    pub asserted: bool,
    pub presses: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl embedded_hal::digital::ErrorType for PwrkeyPin {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for PwrkeyPin {
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.asserted = true;
        Ok(())
    }
    fn set_low(&mut self) -> Result<(), Self::Error> {
        if self.asserted {
            self.presses
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.h.pwrkey();
        }
        self.asserted = false;
        Ok(())
    }
}

/// Control pins that reach the mock at once (no pulse timing): a wake is
/// [`ModemHandle::pwrkey`], a reset [`ModemHandle::reboot`]. For tests that wake the modem
/// from PSM many times (the 15-minute sensor over a day).
pub struct MockPins {
    pub h: std::sync::Arc<ModemHandle>,
    pub presses: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl asynch::ControlPins for MockPins {
    fn present(&self) -> bool {
        true
    }
    async fn reset(&mut self) -> bool {
        self.h.reboot();
        true
    }
    async fn wake(&mut self) -> bool {
        self.presses
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.h.pwrkey();
        true
    }
}

/// [`with_modem_in`] with a runner that holds pins on the mock: a [`PwrkeyPin`] behind
/// [`asynch::PowerPins`] (the real pulse timing) or, with `instant`, [`MockPins`]. `body` also
/// gets the number of presses so far.
pub fn with_pwrkey_in<T, const N: usize, const S: usize, const R: usize>(
    resources: &'static mut Resources<N, S, R>,
    config: Config,
    mock: MockModem,
    body: impl AsyncFnOnce(&Modem<'static>, &ModemHandle, &std::sync::atomic::AtomicU32) -> T,
) -> T {
    with_pins_in(resources, config, mock, false, body)
}

/// See [`with_pwrkey_in`].
pub fn with_pins_in<T, const N: usize, const S: usize, const R: usize>(
    resources: &'static mut Resources<N, S, R>,
    config: Config,
    mock: MockModem,
    instant: bool,
    body: impl AsyncFnOnce(&Modem<'static>, &ModemHandle, &std::sync::atomic::AtomicU32) -> T,
) -> T {
    let (rx, tx, end) = quectel_mock::duplex();
    let h = std::sync::Arc::new(mock.spawn_on(end));
    let presses = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (runner, m) = asynch::new(resources, rx, tx, config);
        let body = tokio::time::timeout(StdDuration::from_secs(300), body(&m, &h, &presses));
        let out = if instant {
            let runner = runner.with_pins(MockPins {
                h: h.clone(),
                presses: presses.clone(),
            });
            match select(runner.run(), body).await {
                Either::First(never) => never,
                Either::Second(t) => t,
            }
        } else {
            let runner = runner.with_pins(asynch::PowerPins {
                pwrkey: Some(PwrkeyPin {
                    h: h.clone(),
                    asserted: false,
                    presses: presses.clone(),
                }),
                reset: None,
                active_high: true,
            });
            match select(runner.run(), body).await {
                Either::First(never) => never,
                Either::Second(t) => t,
            }
        };
        out.expect("test body took over 300 s")
    })
}
