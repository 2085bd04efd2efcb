//! nRF52840-DK board support for the `modem_tls` and `mcu_tls` binaries: the modem's UART, its
//! PWRKEY and RESET_N lines, and the build-time configuration. The flow itself (SIM, data call,
//! MQTT over TLS, publish, downlink) is the shared `quectel-example-app` crate.

#![no_std]

pub mod config;

use embassy_nrf::buffered_uarte::{self, BufferedUarte, BufferedUarteRx, BufferedUarteTx};
use embassy_nrf::gpio::{Level, Output, OutputDrive};
use embassy_nrf::{Peri, bind_interrupts, peripherals, uarte};
use static_cell::StaticCell;

// Wiring (see README.md). The UARTE can use any GPIO: these are the Arduino header's D0/D1,
// where Arduino-style modem shields put the modem's UART, and D7/D8 for PWRKEY/RESET_N.
//
// | signal             | nRF52840 pin | DK header |
// |--------------------|--------------|-----------|
// | modem TXD → MCU RX | P1.01        | D0        |
// | MCU TX → modem RXD | P1.02        | D1        |
// | PWRKEY             | P1.08        | D7        |
// | RESET_N            | P1.10        | D8        |

/// True when the board drives PWRKEY and RESET_N through an NPN transistor or open-collector
/// stage, as Quectel's reference design, EVB and most shields do: a *high* MCU pin pulls the
/// modem's line *low* (asserted). Set to `false` if the MCU pins drive the (level-shifted)
/// modem lines directly.
pub const CONTROL_INVERTED: bool = true;

/// PWRKEY/RESET_N timings of the fitted module (`PowerTiming::BG95` for BG95/BG77); used by
/// `quectel_example_app::power_up` before the flow.
pub const MODEM_TIMING: quectel_example_app::PowerTiming = quectel_example_app::PowerTiming::BG96;

/// Modem UART baud rate (Quectel's default, with auto-baud on most models).
pub const BAUD: uarte::Baudrate = uarte::Baudrate::Baud115200;

bind_interrupts!(struct Irqs {
    UARTE0 => buffered_uarte::InterruptHandler<peripherals::UARTE0>;
});

/// What the binaries need from the board.
pub struct Board {
    /// Modem UART, receive half (`embedded_io_async::Read`).
    pub rx: BufferedUarteRx<'static>,
    /// Modem UART, transmit half (`embedded_io_async::Write`).
    pub tx: BufferedUarteTx<'static>,
    /// Drives the modem's PWRKEY (through [`CONTROL_INVERTED`]); idle: released.
    pub pwrkey: Output<'static>,
    /// Drives the modem's RESET_N (through [`CONTROL_INVERTED`]); idle: released.
    pub reset_n: Output<'static>,
    /// The hardware RNG peripheral (for `mcu_tls`).
    pub rng: Peri<'static, peripherals::RNG>,
    /// The flash controller (for the `ota` binary's update partitions).
    pub nvmc: Peri<'static, peripherals::NVMC>,
}

/// Output level that *releases* a modem control line (the line idles high in the modem).
pub const fn released() -> Level {
    if CONTROL_INVERTED {
        Level::Low
    } else {
        Level::High
    }
}

impl Board {
    /// Initialises the clocks (the DK's crystals), the modem's UART and its control lines.
    pub fn init() -> Self {
        // The DK's crystals: HFXO (32 MHz) keeps the UART's baud rate accurate (the internal
        // 64 MHz RC oscillator is far less so), LFXO (32.768 kHz) clocks RTC1, embassy-time's
        // driver.
        let mut config = embassy_nrf::config::Config::default();
        config.hfclk_source = embassy_nrf::config::HfclkSource::ExternalXtal;
        config.lfclk_source = embassy_nrf::config::LfclkSource::ExternalXtal;
        let p = embassy_nrf::init(config);

        let mut uart_config = uarte::Config::default();
        uart_config.parity = uarte::Parity::Excluded;
        uart_config.baudrate = BAUD;

        // RX: 4 KiB rides out a 1500-byte AT+QIRD payload while the executor is busy with TLS
        // crypto (the length must be even). TX: 1 KiB.
        static RX_BUF: StaticCell<[u8; 4096]> = StaticCell::new();
        static TX_BUF: StaticCell<[u8; 1024]> = StaticCell::new();
        let uart = BufferedUarte::new(
            p.UARTE0,
            p.TIMER1,
            p.PPI_CH0,
            p.PPI_CH1,
            p.PPI_GROUP0,
            p.P1_01, // RXD ← modem TXD
            p.P1_02, // TXD → modem RXD
            Irqs,
            uart_config,
            RX_BUF.init([0; 4096]),
            TX_BUF.init([0; 1024]),
        );
        let (rx, tx) = uart.split();

        let pwrkey = Output::new(p.P1_08, released(), OutputDrive::Standard);
        let reset_n = Output::new(p.P1_10, released(), OutputDrive::Standard);

        Self {
            rx,
            tx,
            pwrkey,
            reset_n,
            rng: p.RNG,
            nvmc: p.NVMC,
        }
    }
}
