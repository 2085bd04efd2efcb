//! The OTA-capable application on a NUCLEO-F429ZI (feature `ota`): the customer's connection
//! (modem TLS), then what comes next, a firmware update from AWS IoT Jobs + MQTT streams
//! (`quectel_example_app::run_ota_aws`).
//!
//! It runs from the ACTIVE partition of the embassy-boot bootloader in
//! `examples/boot/nucleo-f429zi` (flash that first; layout in `partitions.x`). A verified image
//! goes into DFU and is marked for the swap; this binary then resets, the bootloader swaps, and
//! the new image, running this same flow, confirms itself after it reconnected and reports the
//! job `SUCCEEDED`. If it never gets that far, the next reset rolls it back and the old image
//! reports `FAILED`.
//!
//! `cargo run --release --bin ota --features ota` (with `QUECTEL_CODESIGN_PEM` set: see
//! docs/ota.md).

#![no_std]
#![no_main]

use defmt::{error, info};
use embassy_boot_stm32::{AlignedBuffer, FirmwareUpdaterConfig};
use embassy_embedded_hal::flash::partition::Partition;
use embassy_executor::Spawner;
use embassy_stm32::flash::{Async, Bank1Region1, Bank1Region3};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::mutex::Mutex;
use embassy_time::Timer;
use quectel_example_app::quectel::asynch::Resources;
use quectel_example_app::quectel::ota::Updater;
use quectel_example_app::{log_ota, run_ota_aws};
use quectel_nucleo_f429zi::{Board, CONTROL_INVERTED, MODEM_TIMING, config};
use static_cell::{ConstStaticCell, StaticCell};
use {defmt_rtt as _, panic_probe as _};

/// The driver's buffers.
static RESOURCES: ConstStaticCell<Resources> = ConstStaticCell::new(Resources::new());

unsafe extern "C" {
    static __ota_progress_start: u32;
    static __ota_progress_end: u32;
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    info!("quectel example: ota on NUCLEO-F429ZI");
    let Board {
        mut rx,
        mut tx,
        pwrkey,
        reset_n,
        flash,
        ..
    } = Board::init();
    config::log();

    // The flash regions with their sector sizes (partitions.x: offsets are region-relative):
    // DFU in the 128 KiB sectors, the bootloader's state and the download record in 16 KiB
    // ones. Each region behind an async mutex.
    let layout = Board::flash(flash).into_regions();
    static SLOTS: StaticCell<Mutex<NoopRawMutex, Bank1Region3<'static, Async>>> = StaticCell::new();
    static SMALL: StaticCell<Mutex<NoopRawMutex, Bank1Region1<'static, Async>>> = StaticCell::new();
    let slots = SLOTS.init(Mutex::new(layout.bank1_region3));
    let small = SMALL.init(Mutex::new(layout.bank1_region1));
    let boot = FirmwareUpdaterConfig::from_linkerfile(slots, small);
    // Linker symbols: only their addresses are taken, never their contents.
    let (start, end) = {
        (
            &raw const __ota_progress_start as u32,
            &raw const __ota_progress_end as u32,
        )
    };
    let record = Partition::new(small, start, end - start);
    let mut aligned = AlignedBuffer([0u8; 4]);
    let mut updater = match Updater::new(boot.dfu, boot.state, record, &mut aligned.0) {
        Ok(u) => u,
        Err(e) => {
            error!("OTA partitions: {}", e);
            loop {
                Timer::after_secs(3600).await;
            }
        }
    };

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
    let result = run_ota_aws(
        rx,
        tx,
        RESOURCES.take(),
        &cfg,
        &mut updater,
        config::CODESIGN_PEM,
    )
    .await;
    if log_ota(&result) {
        info!("new image staged: resetting into the bootloader");
        Timer::after_millis(100).await;
        cortex_m::peripheral::SCB::sys_reset();
    }
    loop {
        Timer::after_secs(3600).await;
    }
}
