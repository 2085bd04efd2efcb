//! The customer's flow with TLS in the modem, on a nRF52840-DK: power the modem up, SIM, data
//! call, certificates uploaded to the module, MQTT 5 over the modem's TLS socket, subscribe,
//! publish, wait for a downlink, disconnect.
//!
//! `cargo run --release --bin modem_tls` (flashes with probe-rs, prints over RTT).

#![no_std]
#![no_main]

use defmt::{error, info};
use embassy_executor::Spawner;
use embassy_time::Timer;
use quectel_example_app::quectel::asynch::Resources;
use quectel_example_app::run_modem_tls;
use quectel_nrf52840_dk::{Board, CONTROL_INVERTED, MODEM_TIMING, config};
use static_cell::ConstStaticCell;
use {defmt_rtt as _, panic_probe as _};

/// The driver's buffers (~14 KiB: 2 KiB ingress, 2 sockets × 2 × 2 KiB rings).
static RESOURCES: ConstStaticCell<Resources> = ConstStaticCell::new(Resources::new());

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    info!("quectel example: modem_tls on nRF52840-DK");
    let Board {
        mut rx,
        mut tx,
        pwrkey,
        reset_n,
        ..
    } = Board::init();
    config::log();
    quectel_example_app::power_up(
        &mut rx,
        &mut tx,
        pwrkey,
        reset_n,
        CONTROL_INVERTED,
        MODEM_TIMING,
    )
    .await;

    let cfg = config::app_config();
    let result = run_modem_tls(rx, tx, RESOURCES.take(), &cfg, |topic, payload| {
        info!("downlink on {}: {=[u8]:a}", topic, payload);
    })
    .await;
    match result {
        Ok(report) => info!("flow done: {}", report),
        Err(e) => error!("flow failed at step {}: {}", e.step(), e),
    }
    loop {
        Timer::after_secs(3600).await;
    }
}
