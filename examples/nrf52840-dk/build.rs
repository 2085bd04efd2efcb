//! * puts `memory.x` on the linker search path;
//! * chooses the credential files embedded with `include_bytes!` (`QUECTEL_CA_PEM`,
//!   `QUECTEL_CERT_PEM`, `QUECTEL_KEY_PEM`; see `../app/build_credentials.rs`).

use std::{env, fs, path::PathBuf};

include!("../app/build_credentials.rs");

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    embed_credentials();
}
