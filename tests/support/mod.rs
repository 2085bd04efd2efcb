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
