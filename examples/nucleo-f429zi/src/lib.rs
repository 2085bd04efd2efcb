//! NUCLEO-F429ZI board support for the `modem_tls` and `mcu_tls` binaries: clocks, the modem's
//! UART, its PWRKEY and RESET_N lines, and the build-time configuration. The flow itself (SIM,
//! data call, MQTT over TLS, publish, downlink) is the shared `quectel-example-app` crate.

#![no_std]

pub mod config;

use embassy_stm32::gpio::{Level, Output, Speed};
use embassy_stm32::usart::{self, BufferedUart, BufferedUartRx, BufferedUartTx};
use embassy_stm32::{Peri, bind_interrupts, peripherals, rng};
use static_cell::StaticCell;

// Wiring (see README.md): USART6 on the Arduino header's D0/D1, where Arduino-style modem
// shields put the modem's UART, and D7/D8 for PWRKEY/RESET_N.
//
// | signal             | STM32F429ZI pin  | NUCLEO-F429ZI (Arduino) |
// |--------------------|------------------|-------------------------|
// | modem TXD → MCU RX | PG9 (USART6_RX)  | D0                      |
// | MCU TX → modem RXD | PG14 (USART6_TX) | D1                      |
// | PWRKEY             | PF13             | D7                      |
// | RESET_N            | PF12             | D8                      |
//
// (USART3 on PD8/PD9 is the ST-LINK virtual COM port; USART2 on PD5 (TX)/PD6 (RX), with
// RTS/CTS on PD4/PD3, is the alternative if D0/D1 are taken.)

/// True when the board drives PWRKEY and RESET_N through an NPN transistor or open-collector
/// stage, as Quectel's reference design, EVB and most shields do: a *high* MCU pin pulls the
/// modem's line *low* (asserted). Set to `false` if the MCU pins drive the (level-shifted)
/// modem lines directly.
pub const CONTROL_INVERTED: bool = true;

/// PWRKEY/RESET_N timings of the fitted module (`PowerTiming::BG95` for BG95/BG77); used by
/// `quectel_example_app::power_up` before the flow.
pub const MODEM_TIMING: quectel_example_app::PowerTiming = quectel_example_app::PowerTiming::BG96;

/// Modem UART baud rate (Quectel's default, with auto-baud on most models).
pub const BAUD: u32 = 115_200;

bind_interrupts!(struct Irqs {
    USART6 => usart::BufferedInterruptHandler<peripherals::USART6>;
    HASH_RNG => rng::InterruptHandler<peripherals::RNG>;
    FLASH => embassy_stm32::flash::InterruptHandler;
});

/// What the binaries need from the board.
pub struct Board {
    /// Modem UART, receive half (`embedded_io_async::Read`).
    pub rx: BufferedUartRx<'static>,
    /// Modem UART, transmit half (`embedded_io_async::Write`).
    pub tx: BufferedUartTx<'static>,
    /// Drives the modem's PWRKEY (through [`CONTROL_INVERTED`]); idle: released.
    pub pwrkey: Output<'static>,
    /// Drives the modem's RESET_N (through [`CONTROL_INVERTED`]); idle: released.
    pub reset_n: Output<'static>,
    /// The hardware RNG peripheral (for `mcu_tls`); see [`Board::rng`].
    pub rng: Peri<'static, peripherals::RNG>,
    /// The flash controller (for the `ota` binary's update partitions); see [`Board::flash`].
    pub flash: Peri<'static, peripherals::FLASH>,
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
    /// Initialises the clocks (168 MHz from the ST-LINK's 8 MHz MCO, 48 MHz for the RNG), the
    /// modem's UART and its control lines.
    pub fn init() -> Self {
        let mut config = embassy_stm32::Config::default();
        {
            use embassy_stm32::rcc::*;
            use embassy_stm32::time::Hertz;
            // NUCLEO-144: HSE is the ST-LINK's 8 MHz MCO (bypass mode).
            config.rcc.hse = Some(Hse {
                freq: Hertz(8_000_000),
                mode: HseMode::Bypass,
            });
            config.rcc.pll_src = PllSource::HSE;
            config.rcc.pll = Some(Pll {
                prediv: PllPreDiv::DIV4,   // 2 MHz
                mul: PllMul::MUL168,       // 336 MHz VCO
                divp: Some(PllPDiv::DIV2), // 168 MHz SYSCLK
                divq: Some(PllQDiv::DIV7), // 48 MHz: RNG (and USB)
                divr: None,
            });
            config.rcc.ahb_pre = AHBPrescaler::DIV1;
            config.rcc.apb1_pre = APBPrescaler::DIV4; // 42 MHz
            config.rcc.apb2_pre = APBPrescaler::DIV2; // 84 MHz (USART6)
            config.rcc.sys = Sysclk::PLL1_P;
        }
        let p = embassy_stm32::init(config);

        let mut uart_config = usart::Config::default();
        uart_config.baudrate = BAUD;

        // RX: 4 KiB rides out a 1500-byte AT+QIRD payload while the executor is busy with TLS
        // crypto. TX: 1 KiB.
        static RX_BUF: StaticCell<[u8; 4096]> = StaticCell::new();
        static TX_BUF: StaticCell<[u8; 1024]> = StaticCell::new();
        let uart = BufferedUart::new(
            p.USART6,
            p.PG9,  // RX ← modem TXD
            p.PG14, // TX → modem RXD
            TX_BUF.init([0; 1024]),
            RX_BUF.init([0; 4096]),
            Irqs,
            uart_config,
        )
        .expect("USART6 configuration");
        let (tx, rx) = uart.split();

        let pwrkey = Output::new(p.PF13, released(), Speed::Low);
        let reset_n = Output::new(p.PF12, released(), Speed::Low);

        Self {
            rx,
            tx,
            pwrkey,
            reset_n,
            rng: p.RNG,
            flash: p.FLASH,
        }
    }

    /// The flash controller with async writes and erases (its interrupt is bound here).
    pub fn flash(
        flash: Peri<'static, peripherals::FLASH>,
    ) -> embassy_stm32::flash::Flash<'static, embassy_stm32::flash::Async> {
        embassy_stm32::flash::Flash::new(flash, Irqs)
    }

    /// The hardware RNG (`rand_core` 0.6 `RngCore + CryptoRng`, so `CryptoRngCore`).
    pub fn rng(rng: Peri<'static, peripherals::RNG>) -> rng::Rng<'static, peripherals::RNG> {
        rng::Rng::new(rng, Irqs)
    }
}
