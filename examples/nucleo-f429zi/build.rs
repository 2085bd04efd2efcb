//! Chooses the credential files embedded with `include_bytes!`: `QUECTEL_CA_PEM`,
//!   `QUECTEL_CERT_PEM` and `QUECTEL_KEY_PEM` (absolute, or relative to this crate), defaulting
//!   to the placeholders in `certs/` (not real credentials: the TLS handshake fails with them).
//!
//! (`memory.x` comes from embassy-stm32's `memory-x` feature.)

use std::{env, path::PathBuf};

const CREDENTIALS: [(&str, &str); 3] = [
    ("QUECTEL_CA_PEM", "certs/placeholder-ca.pem"),
    ("QUECTEL_CERT_PEM", "certs/placeholder-cert.pem"),
    ("QUECTEL_KEY_PEM", "certs/placeholder-key.pem"),
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());

    let mut placeholders = false;
    for (var, default) in CREDENTIALS {
        println!("cargo:rerun-if-env-changed={var}");
        let path = match env::var_os(var) {
            Some(p) if !p.is_empty() => manifest.join(p), // `join` keeps an absolute path as is
            _ => {
                placeholders = true;
                manifest.join(default)
            }
        };
        if !path.is_file() {
            panic!("{var}: no such file: {}", path.display());
        }
        println!("cargo:rerun-if-changed={}", path.display());
        // Read by `include_bytes!(env!("..._PATH"))` in src/config.rs.
        println!("cargo:rustc-env={var}_PATH={}", path.display());
    }
    if placeholders {
        println!(
            "cargo:warning=embedding PLACEHOLDER credentials from certs/ (TLS will fail): \
             set QUECTEL_CA_PEM, QUECTEL_CERT_PEM and QUECTEL_KEY_PEM"
        );
    }
}
