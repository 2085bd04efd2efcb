//! The customer's AWS IoT flow (`quectel_example_app::run_modem_tls`) as Cortex-M4F firmware
//! for QEMU's `mps2-an386`, UART0 wired to the mock modem, whose TLS socket reaches a broker on
//! the host. QEMU exits 0 only when the flow published `Hello, AWS Cloud!` (PUBACK) and
//! received a downlink; 1 otherwise (error, timeout, panic, HardFault).
//!
//! Endpoint, port, client id, topic and the PEM files are baked in at build time (see
//! `build.rs`); `scripts/qemu-e2e.sh` runs the whole thing.
#![no_std]
#![no_main]

mod board;
#[cfg(feature = "ota")]
mod ota;

use cortex_m_semihosting::hprintln;
use embassy_executor::Spawner;
use embassy_time::Duration;
use panic_semihosting as _;
use quectel_example_app::quectel::asynch::Resources;
use quectel_example_app::{AppConfig, Progress, Timeouts};
use static_cell::StaticCell;

const ENDPOINT: &str = env!("QUECTEL_E2E_ENDPOINT");
const PORT: u16 = parse_port(env!("QUECTEL_E2E_PORT"));
const CLIENT_ID: &str = env!("QUECTEL_E2E_CLIENT_ID");
const TOPIC: &str = env!("QUECTEL_E2E_TOPIC");
const HAVE_PKI: bool = matches!(env!("QUECTEL_E2E_HAVE_PKI").as_bytes(), b"1");
const CA_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ca.crt"));
const CERT_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/device.crt"));
const KEY_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/device.key"));
const MESSAGE: &[u8] = b"Hello, AWS Cloud!";

/// The driver's buffers (default sizes: 2 KiB ingress, 2 sockets of 2 KiB rings). A
/// `StaticCell` (zeroed `.bss`, filled at run time), not a `ConstStaticCell`: `Resources::new()`
/// is not all zeroes, so a const initialiser would put its ~15 KiB in `.data` and in flash.
static RESOURCES: StaticCell<Resources> = StaticCell::new();

/// TLS record buffers of the MCU-side TLS (37 KiB).
#[cfg(feature = "mcu-tls")]
static TLS_BUFFERS: StaticCell<quectel_example_app::quectel::tls::TlsBuffers> = StaticCell::new();

/// Where TLS runs.
const TLS_WHERE: &str = if cfg!(feature = "mcu-tls") {
    "MCU TLS (embedded-tls)"
} else {
    "modem TLS"
};

const fn parse_port(s: &str) -> u16 {
    parse_number(s, 65535) as u16
}

/// A decimal number of at most `max` (build-time settings; a bad one fails the build).
const fn parse_number(s: &str, max: u32) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n: u32 = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "a build setting is not a number");
        n = n * 10 + (b[i] - b'0') as u32;
        assert!(n <= max, "a build setting is too large");
        i += 1;
    }
    n
}

fn text(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("<binary>")
}

fn print_progress(p: &Progress<'_>) {
    match *p {
        Progress::ModemReady {
            model,
            revision,
            imei,
        } => hprintln!(
            "[fw] modem: Quectel {} ({}), IMEI {}",
            model,
            revision,
            imei
        ),
        Progress::SimReady => hprintln!("[fw] >>> sim.getStatus()  -> 1 (ready)"),
        Progress::DataCall { ipv4 } => hprintln!("[fw] data call up: IPv4 {}", ipv4),
        Progress::Connected {
            host,
            port,
            client_id,
            resumed,
        } => hprintln!(
            "[fw] [mqtt] connected to {}:{} as '{}' over {} (session resumed: {})",
            host,
            port,
            client_id,
            TLS_WHERE,
            resumed
        ),
        Progress::ConnectFailed { attempt, error } => {
            hprintln!("[fw] [mqtt] attempt {} failed: {:?}", attempt, error)
        }
        Progress::Published { topic, message } => hprintln!(
            "[fw] [mqtt] published '{}' to {} (QoS 1, PUBACK)",
            text(message),
            topic
        ),
        Progress::Message {
            topic,
            payload,
            echo,
        } => hprintln!(
            "[fw] [mqtt] message on {}: '{}'{}",
            topic,
            text(payload),
            if echo { " (our own, echoed)" } else { "" }
        ),
        Progress::Disconnected => hprintln!("[fw] [mqtt] disconnected"),
    }
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    board::init();
    hprintln!(
        "[fw] mps2-an386: quectel flow to {}:{} as {} (topic {}, {}){}",
        ENDPOINT,
        PORT,
        CLIENT_ID,
        TOPIC,
        TLS_WHERE,
        if HAVE_PKI {
            ""
        } else {
            ", PLACEHOLDER certificates"
        }
    );
    let cfg = AppConfig::new(ENDPOINT, CLIENT_ID, CA_PEM, CERT_PEM, KEY_PEM)
        .with_port(PORT)
        .with_topic(TOPIC)
        .with_message(MESSAGE)
        .with_downlinks_wanted(1)
        .with_timeouts(Timeouts {
            startup: Duration::from_secs(20),
            sim: Duration::from_secs(10),
            network: Duration::from_secs(30),
            connect: Duration::from_secs(30),
            connect_attempts: 2,
            ack: Duration::from_secs(20),
            downlinks: Duration::from_secs(45),
            ota: Duration::from_secs(90),
        })
        .with_progress(print_progress);
    let on_downlink = |topic: &str, payload: &[u8]| {
        hprintln!("[fw] [callback] downlink on {}: '{}'", topic, text(payload))
    };
    let resources = RESOURCES.init_with(Resources::new);
    #[cfg(feature = "ota")]
    {
        let _ = on_downlink;
        board::exit(ota::run(resources, &cfg).await)
    }
    #[cfg(all(not(feature = "mcu-tls"), not(feature = "ota")))]
    let result = quectel_example_app::run_modem_tls(
        board::UartRx,
        board::UartTx,
        resources,
        &cfg,
        on_downlink,
    )
    .await;
    #[cfg(all(feature = "mcu-tls", not(feature = "ota")))]
    let result = {
        use rand_core::SeedableRng;
        // A test seed (timer + a constant); a product takes it from a hardware RNG.
        let mut seed = *b"quectel qemu-mps2 e2e test seed!";
        for (i, b) in board::now_counts().to_le_bytes().iter().enumerate() {
            seed[i] ^= b;
        }
        quectel_example_app::run_mcu_tls(
            board::UartRx,
            board::UartTx,
            resources,
            TLS_BUFFERS.init_with(Default::default),
            &cfg,
            rand_chacha::ChaCha20Rng::from_seed(seed),
            on_downlink,
        )
        .await
    };
    #[cfg(not(feature = "ota"))]
    match result {
        Ok(report) if report.downlinks >= 1 => {
            hprintln!(
                "[fw] PASS: published after {} ms, {} downlink(s), done after {} ms",
                report.published_after_ms,
                report.downlinks,
                report.elapsed_ms
            );
            board::exit(true)
        }
        Ok(report) => {
            hprintln!("[fw] FAIL: no downlink ({:?})", report);
            board::exit(false)
        }
        Err(e) => {
            hprintln!("[fw] FAIL: {}", e);
            board::exit(false)
        }
    }
}
