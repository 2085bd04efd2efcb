//! Build-time configuration: the broker, the APN and the credentials are baked into the image.
//!
//! Everything but the credentials comes from `quectel_example_app::build_env` (the
//! `QUECTEL_APN`, `QUECTEL_ENDPOINT`, `QUECTEL_PORT`, `QUECTEL_CLIENT_ID`, `QUECTEL_TOPIC`,
//! `QUECTEL_MESSAGE`, `QUECTEL_DOWNLINKS` variables; see the README). The credentials are files
//! chosen by `build.rs`:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `QUECTEL_CA_PEM` | `../app/certs/placeholder-ca.pem` | CA that signed the broker's certificate (PEM) |
//! | `QUECTEL_CERT_PEM` | `../app/certs/placeholder-cert.pem` | device certificate (PEM) |
//! | `QUECTEL_KEY_PEM` | `../app/certs/placeholder-key.pem` | device private key (PEM; P-256 for `mcu_tls`) |
//!
//! The placeholder files are **not credentials** (they hold no key material): the firmware runs
//! up to the TLS handshake with them and then fails, saying so.

quectel_example_app::board_config!();
