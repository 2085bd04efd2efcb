//! * writes `memory.x` from `memory-app.x` (or, with feature `ota`, `memory-ota.x`: the
//!   bootloader's ACTIVE partition) and puts it with `partitions.x` on the linker search path
//!   (`place_memory_x` in `../app/build_credentials.rs`; the crate does not use embassy-stm32's
//!   `memory-x` feature, whose memory.x always owns the whole flash);
//! * chooses the credential files embedded with `include_bytes!` (`QUECTEL_CA_PEM`,
//!   `QUECTEL_CERT_PEM`, `QUECTEL_KEY_PEM`, `QUECTEL_CODESIGN_PEM`; see the same file).

include!("../app/build_credentials.rs");

fn main() {
    place_memory_x();
    embed_credentials();
}
