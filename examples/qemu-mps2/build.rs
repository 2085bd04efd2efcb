//! Puts `memory.x` on the linker's path and bakes the broker and the device identity in:
//!
//! | variable | default | what |
//! |---|---|---|
//! | `QUECTEL_E2E_PKI` | (unset: placeholders) | directory with `ca.crt`, `device.crt`, `device.key` (PEM) |
//! | `QUECTEL_E2E_ENDPOINT` | `localhost` | broker host as the modem resolves it |
//! | `QUECTEL_E2E_PORT` | `8883` | broker port |
//! | `QUECTEL_E2E_CLIENT_ID` | `qemu-thing-1` | MQTT client id = certificate CN (thing name) |
//! | `QUECTEL_E2E_TOPIC` | `<client id>/hello` | topic subscribed and published to |
//!
//! Without `QUECTEL_E2E_PKI` the firmware still builds (footprint measurements) with
//! placeholder PEMs, and its TLS step fails. `scripts/qemu-e2e.sh` generates a PKI and sets
//! all of them. The PEMs are copied to `OUT_DIR` (nothing secret is written to the source tree).

use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");

    for var in [
        "QUECTEL_E2E_PKI",
        "QUECTEL_E2E_ENDPOINT",
        "QUECTEL_E2E_PORT",
        "QUECTEL_E2E_CLIENT_ID",
        "QUECTEL_E2E_TOPIC",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let get = |var: &str, default: &str| env::var(var).unwrap_or_else(|_| default.to_string());

    let endpoint = get("QUECTEL_E2E_ENDPOINT", "localhost");
    let port = get("QUECTEL_E2E_PORT", "8883");
    let client_id = get("QUECTEL_E2E_CLIENT_ID", "qemu-thing-1");
    let topic = get("QUECTEL_E2E_TOPIC", &format!("{client_id}/hello"));
    port.parse::<u16>()
        .unwrap_or_else(|_| panic!("QUECTEL_E2E_PORT={port} is not a port number"));
    println!("cargo:rustc-env=QUECTEL_E2E_ENDPOINT={endpoint}");
    println!("cargo:rustc-env=QUECTEL_E2E_PORT={port}");
    println!("cargo:rustc-env=QUECTEL_E2E_CLIENT_ID={client_id}");
    println!("cargo:rustc-env=QUECTEL_E2E_TOPIC={topic}");

    match env::var_os("QUECTEL_E2E_PKI") {
        Some(dir) => {
            let dir = Path::new(&dir);
            for name in ["ca.crt", "device.crt", "device.key"] {
                let src = dir.join(name);
                println!("cargo:rerun-if-changed={}", src.display());
                let pem = fs::read(&src)
                    .unwrap_or_else(|e| panic!("QUECTEL_E2E_PKI: {}: {e}", src.display()));
                fs::write(out.join(name), pem).expect("write PEM to OUT_DIR");
            }
            println!("cargo:rustc-env=QUECTEL_E2E_HAVE_PKI=1");
        }
        None => {
            println!(
                "cargo:warning=QUECTEL_E2E_PKI is not set: placeholder certificates (builds, \
                 but the TLS step will fail); scripts/qemu-e2e.sh sets it"
            );
            let placeholder = |label: &str| {
                format!("-----BEGIN {label}-----\nUExBQ0VIT0xERVI=\n-----END {label}-----\n")
            };
            fs::write(out.join("ca.crt"), placeholder("CERTIFICATE")).unwrap();
            fs::write(out.join("device.crt"), placeholder("CERTIFICATE")).unwrap();
            fs::write(out.join("device.key"), placeholder("PRIVATE KEY")).unwrap();
            println!("cargo:rustc-env=QUECTEL_E2E_HAVE_PKI=0");
        }
    }
}
