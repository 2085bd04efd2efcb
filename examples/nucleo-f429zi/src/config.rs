//! Build-time configuration: the broker, the APN and the credentials are baked into the image.
//!
//! Everything but the credentials comes from `quectel_example_app::build_env` (the
//! `QUECTEL_APN`, `QUECTEL_ENDPOINT`, `QUECTEL_PORT`, `QUECTEL_CLIENT_ID`, `QUECTEL_TOPIC`,
//! `QUECTEL_MESSAGE`, `QUECTEL_DOWNLINKS` variables; see the README). The credentials are files
//! chosen by `build.rs`:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `QUECTEL_CA_PEM` | `certs/placeholder-ca.pem` | CA that signed the broker's certificate (PEM) |
//! | `QUECTEL_CERT_PEM` | `certs/placeholder-cert.pem` | device certificate (PEM) |
//! | `QUECTEL_KEY_PEM` | `certs/placeholder-key.pem` | device private key (PEM; P-256 for `mcu_tls`) |
//!
//! The `certs/placeholder-*` files are **not credentials** (they hold no key material): the
//! firmware runs up to the TLS handshake with them and then fails, saying so.

use quectel_example_app::{AppConfig, build_env};

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
        || build_env::endpoint_is_placeholder()
}

/// The flow's configuration.
pub fn app_config() -> AppConfig<'static> {
    build_env::app_config(CA_PEM, CERT_PEM, KEY_PEM)
}

/// Logs the configuration (never the key) and warns about placeholders.
pub fn log() {
    build_env::log(is_placeholder());
}
