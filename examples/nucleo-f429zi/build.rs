//! * chooses the credential files embedded with `include_bytes!` (`QUECTEL_CA_PEM`,
//! `QUECTEL_CERT_PEM`, `QUECTEL_KEY_PEM`; see `../app/build_credentials.rs`).
//! * writes `memory.x` from `memory-app.x` (or, with feature `ota`, `memory-ota.x`: the
//!   bootloader's ACTIVE partition) and puts it with `partitions.x` on the linker search path (the
//!   sources are not named `memory.x`: the linker looks in the crate's directory before the
//!   search path, so a `memory.x` there would win over the one chosen here) (the crate does not use
//!   embassy-stm32's `memory-x` feature, whose memory.x always owns the whole flash).

use std::{env, fs, path::PathBuf};

include!("../app/build_credentials.rs");

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let memory: &[u8] = if env::var_os("CARGO_FEATURE_OTA").is_some() {
        include_bytes!("memory-ota.x")
    } else {
        include_bytes!("memory-app.x")
    };
    fs::write(out.join("memory.x"), memory).unwrap();
    fs::write(out.join("partitions.x"), include_bytes!("partitions.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory-app.x");
    println!("cargo:rerun-if-changed=memory-ota.x");
    println!("cargo:rerun-if-changed=partitions.x");
    embed_credentials();
}
