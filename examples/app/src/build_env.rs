//! Build-time configuration shared by the board examples: the broker, the APN, the client id,
//! the topic and the message are baked into the image from environment variables.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `QUECTEL_APN` | `internet` | APN of the SIM's data plan |
//! | `QUECTEL_ENDPOINT` | `your-endpoint.example.invalid` | broker host (AWS IoT: `<prefix>-ats.iot.<region>.amazonaws.com`) |
//! | `QUECTEL_PORT` | `8883` | broker port |
//! | `QUECTEL_CLIENT_ID` | the modem's IMEI | MQTT client id (AWS IoT: the thing name) |
//! | `QUECTEL_TOPIC` | the client id (the IMEI if that is unset) | topic subscribed to and published on |
//! | `QUECTEL_MESSAGE` | `Hello, AWS Cloud!` | payload published once connected |
//! | `QUECTEL_DOWNLINKS` | `1` | downlinks to wait for after the publish; `0`: none |
//!
//! The credentials (`QUECTEL_CA_PEM`, `QUECTEL_CERT_PEM`, `QUECTEL_KEY_PEM`: file paths) are
//! embedded by each board crate with `include_bytes!`, since the paths are resolved by its
//! build script. A bad port or number is a compile-time error.

use crate::AppConfig;

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

/// How the placeholder credential files in `examples/app/certs/` begin.
pub const PLACEHOLDER: &[u8] = b"QUECTEL-EXAMPLE-PLACEHOLDER";

/// True when the endpoint is the default placeholder (the run stops at the DNS lookup).
pub fn endpoint_is_placeholder() -> bool {
    ENDPOINT.ends_with(".invalid")
}

/// The flow's configuration from the values above and the board's credentials (PEM).
pub fn app_config(
    ca_pem: &'static [u8],
    cert_pem: &'static [u8],
    key_pem: &'static [u8],
) -> AppConfig<'static> {
    AppConfig::new(ENDPOINT, CLIENT_ID, ca_pem, cert_pem, key_pem)
        .with_apn(APN)
        .with_port(PORT)
        .with_topic(TOPIC)
        .with_message(MESSAGE.as_bytes())
        .with_downlinks_wanted(DOWNLINKS)
}

/// Logs the configuration (never the key) through defmt, and warns when `placeholder` says the
/// endpoint or the credentials are the placeholders.
#[cfg(feature = "defmt")]
pub fn log(placeholder: bool) {
    defmt::info!(
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
    if placeholder {
        defmt::warn!(
            "PLACEHOLDER endpoint or credentials (examples/app/certs/placeholder-*): the run will stop at \
             DNS or the TLS handshake. Rebuild with QUECTEL_ENDPOINT, QUECTEL_CA_PEM, \
             QUECTEL_CERT_PEM and QUECTEL_KEY_PEM set (see the board's README.md)."
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

/// Defines, in the calling board crate, its credentials and configuration: `CA_PEM`,
/// `CERT_PEM`, `KEY_PEM` (embedded from the files its build script chose with
/// `examples/app/build_credentials.rs`, which sets `QUECTEL_*_PEM_PATH`), `is_placeholder()`,
/// `app_config()` and `log()`. The credentials must be embedded by the board crate itself: the
/// build script's `rustc-env` values reach only that crate.
#[macro_export]
macro_rules! board_config {
    () => {
        /// CA certificate (PEM) that signed the broker's certificate.
        pub static CA_PEM: &[u8] = include_bytes!(env!("QUECTEL_CA_PEM_PATH"));
        /// Device certificate (PEM).
        pub static CERT_PEM: &[u8] = include_bytes!(env!("QUECTEL_CERT_PEM_PATH"));
        /// Device private key (PEM).
        pub static KEY_PEM: &[u8] = include_bytes!(env!("QUECTEL_KEY_PEM_PATH"));
        /// Code-signing certificate (PEM) the `ota` binary checks images against.
        pub static CODESIGN_PEM: &[u8] = include_bytes!(env!("QUECTEL_CODESIGN_PEM_PATH"));

        /// True when any credential is one of the placeholder files or the endpoint is the
        /// default: the run will end at the TLS handshake (or the DNS lookup).
        pub fn is_placeholder() -> bool {
            [CA_PEM, CERT_PEM, KEY_PEM]
                .iter()
                .any(|f| f.starts_with($crate::build_env::PLACEHOLDER))
                || $crate::build_env::endpoint_is_placeholder()
        }

        /// The flow's configuration.
        pub fn app_config() -> $crate::AppConfig<'static> {
            $crate::build_env::app_config(CA_PEM, CERT_PEM, KEY_PEM)
        }

        /// Logs the configuration (never the key) and warns about placeholders.
        pub fn log() {
            $crate::build_env::log(is_placeholder());
        }
    };
}
