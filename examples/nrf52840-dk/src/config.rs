//! Build-time configuration: the broker, the APN and the credentials are baked into the image.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `QUECTEL_APN` | `internet` | APN of the SIM's data plan |
//! | `QUECTEL_ENDPOINT` | `your-endpoint.example.invalid` | broker host (AWS IoT: `<prefix>-ats.iot.<region>.amazonaws.com`) |
//! | `QUECTEL_PORT` | `8883` | broker port |
//! | `QUECTEL_CLIENT_ID` | the modem's IMEI | MQTT client id (AWS IoT: the thing name) |
//! | `QUECTEL_TOPIC` | the client id (the IMEI if that is unset) | topic subscribed to and published on |
//! | `QUECTEL_MESSAGE` | `Hello, AWS Cloud!` | payload published once connected |
//! | `QUECTEL_DOWNLINKS` | `1` | downlinks to wait for (60 s) after the publish; `0`: none |
//! | `QUECTEL_CA_PEM` | `certs/placeholder-ca.pem` | CA that signed the broker's certificate (PEM) |
//! | `QUECTEL_CERT_PEM` | `certs/placeholder-cert.pem` | device certificate (PEM) |
//! | `QUECTEL_KEY_PEM` | `certs/placeholder-key.pem` | device private key (PEM; P-256 for `mcu_tls`) |
//!
//! The `certs/placeholder-*` files are **not credentials** (they hold no key material): the
//! firmware runs up to the TLS handshake with them and then fails, saying so.

use defmt::{info, warn};
use quectel_example_app::AppConfig;

/// `option_env!` with a default, usable in a `const`.
macro_rules! env_or {
    ($name:literal, $default:expr) => {
        match option_env!($name) {
            Some(v) if !v.is_empty() => v,
            _ => $default,
        }
    };
}

/// APN of the data call.
pub const APN: &str = env_or!("QUECTEL_APN", "internet");
/// Broker host.
pub const ENDPOINT: &str = env_or!("QUECTEL_ENDPOINT", "your-endpoint.example.invalid");
/// Broker port.
pub const PORT: u16 = port(parse_u32(env_or!("QUECTEL_PORT", "8883")));
/// MQTT client id; empty: the modem's IMEI.
pub const CLIENT_ID: &str = env_or!("QUECTEL_CLIENT_ID", "");
/// Topic; by default the client id (empty, i.e. the IMEI, if that is empty too).
pub const TOPIC: &str = env_or!("QUECTEL_TOPIC", CLIENT_ID);

/// The message published once connected.
pub const MESSAGE: &str = env_or!("QUECTEL_MESSAGE", "Hello, AWS Cloud!");

/// Downlinks to wait for after the publish.
pub const DOWNLINKS: usize = parse_u32(env_or!("QUECTEL_DOWNLINKS", "1")) as usize;

/// CA certificate (PEM) that signed the broker's certificate.
pub static CA_PEM: &[u8] = include_bytes!(env!("QUECTEL_CA_PEM_PATH"));
/// Device certificate (PEM).
pub static CERT_PEM: &[u8] = include_bytes!(env!("QUECTEL_CERT_PEM_PATH"));
/// Device private key (PEM).
pub static KEY_PEM: &[u8] = include_bytes!(env!("QUECTEL_KEY_PEM_PATH"));

const PLACEHOLDER: &[u8] = b"QUECTEL-EXAMPLE-PLACEHOLDER";

/// True when any credential is one of the `certs/placeholder-*` files or the endpoint is the
/// default: the run will end at the TLS handshake (or the DNS lookup).
pub fn is_placeholder() -> bool {
    [CA_PEM, CERT_PEM, KEY_PEM]
        .iter()
        .any(|f| f.starts_with(PLACEHOLDER))
        || ENDPOINT.ends_with(".invalid")
}

/// The flow's configuration, from the values above.
pub fn app_config() -> AppConfig<'static> {
    AppConfig::new(ENDPOINT, CLIENT_ID, CA_PEM, CERT_PEM, KEY_PEM)
        .with_apn(APN)
        .with_port(PORT)
        .with_topic(TOPIC)
        .with_message(MESSAGE.as_bytes())
        .with_downlinks_wanted(DOWNLINKS)
}

/// Logs the configuration (never the key) and warns about placeholders.
pub fn log() {
    info!(
        "broker {}:{}, APN {}, client id {}, topic {}",
        ENDPOINT,
        PORT,
        APN,
        if CLIENT_ID.is_empty() {
            "<IMEI>"
        } else {
            CLIENT_ID
        },
        if TOPIC.is_empty() { "<IMEI>" } else { TOPIC },
    );
    if is_placeholder() {
        warn!(
            "PLACEHOLDER endpoint or credentials (certs/placeholder-*): the run will stop at \
             DNS or the TLS handshake. Rebuild with QUECTEL_ENDPOINT, QUECTEL_CA_PEM, \
             QUECTEL_CERT_PEM and QUECTEL_KEY_PEM set (see README.md)."
        );
    }
}

const fn port(v: u32) -> u16 {
    assert!(v > 0 && v <= 65535, "QUECTEL_PORT must be 1..=65535");
    v as u16
}

const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    assert!(
        !b.is_empty() && b.len() <= 9,
        "QUECTEL_PORT / QUECTEL_DOWNLINKS must be a number"
    );
    let mut v: u32 = 0;
    let mut i = 0;
    while i < b.len() {
        assert!(
            b[i].is_ascii_digit(),
            "QUECTEL_PORT / QUECTEL_DOWNLINKS must be a number"
        );
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    v
}
