//! Chooses the credential files embedded with `include_bytes!` (`QUECTEL_CA_PEM`,
//! `QUECTEL_CERT_PEM`, `QUECTEL_KEY_PEM`; see `../app/build_credentials.rs`).
//!
//! (`memory.x` comes from embassy-stm32's `memory-x` feature.)

include!("../app/build_credentials.rs");

fn main() {
    embed_credentials();
}
