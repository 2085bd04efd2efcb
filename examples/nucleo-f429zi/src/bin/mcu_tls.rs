//! The customer's flow with TLS 1.3 on the MCU (embedded-tls) over a plain modem TCP socket, on
//! a NUCLEO-F429ZI: the handshake's randomness comes from the chip's RNG peripheral (clocked at
//! 48 MHz from the PLL's Q output), the 37 KiB of TLS record buffers live in a static.
//!
//! `cargo run --release --bin mcu_tls` (flashes with probe-rs, prints over RTT).

#![no_std]
#![no_main]

use defmt::{error, info};
use embassy_executor::Spawner;
use embassy_time::Timer;
use quectel_example_app::quectel::asynch::Resources;
use quectel_example_app::quectel::tls::TlsBuffers;
use quectel_example_app::run_mcu_tls;
use quectel_nucleo_f429zi::{Board, CONTROL_INVERTED, MODEM_TIMING, config};
use static_cell::ConstStaticCell;
use {defmt_rtt as _, panic_probe as _};

/// The driver's buffers (~14 KiB).
static RESOURCES: ConstStaticCell<Resources> = ConstStaticCell::new(Resources::new());
/// TLS record buffers (37 KiB: two 16 640-byte record buffers and a 4 KiB write buffer).
static TLS_BUFFERS: ConstStaticCell<TlsBuffers> = ConstStaticCell::new(TlsBuffers::new());

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    info!("quectel example: mcu_tls on NUCLEO-F429ZI");
    let Board {
        mut rx,
        mut tx,
        pwrkey,
        reset_n,
        rng,
        ..
    } = Board::init();
    config::log();

    // embassy-stm32's `Rng` implements rand_core 0.6 `RngCore + CryptoRng`, i.e. the
    // `CryptoRngCore` embedded-tls wants.
    let rng = Board::rng(rng);

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
    let result = run_mcu_tls(
        rx,
        tx,
        RESOURCES.take(),
        TLS_BUFFERS.take(),
        &cfg,
        rng,
        |topic, payload| info!("downlink on {}: {=[u8]:a}", topic, payload),
    )
    .await;
    match result {
        Ok(report) => info!("flow done: {}", report),
        Err(e) => error!("flow failed at step {}: {}", e.step(), e),
    }
    loop {
        Timer::after_secs(3600).await;
    }
}
