//! Puts `memory.x` on the linker's path and bakes the broker and the device identity in:
//!
//! | variable | default | what |
//! |---|---|---|
//! | `QUECTEL_E2E_PKI` | (unset: placeholders) | directory with `ca.crt`, `device.crt`, `device.key` (PEM) |
//! | `QUECTEL_E2E_ENDPOINT` | `localhost` | broker host as the modem resolves it |
//! | `QUECTEL_E2E_PORT` | `8883` | broker port |
//! | `QUECTEL_E2E_CLIENT_ID` | `qemu-thing-1` | MQTT client id = certificate CN (thing name) |
//! | `QUECTEL_E2E_TOPIC` | `<client id>/hello` | topic subscribed and published to |
//! | `QUECTEL_E2E_OTA_SIZE` | `65536` | feature `ota`: bytes of the image the job serves |
//! | `QUECTEL_E2E_OTA_SHA256` | 64 zeros | feature `ota`: its SHA-256 (hex), checked after staging |
//!
//! Feature `ota` also takes `codesign.crt` (the code-signing certificate, PEM) from
//! `QUECTEL_E2E_PKI` when it is there (a placeholder otherwise).
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
        "QUECTEL_E2E_OTA_SIZE",
        "QUECTEL_E2E_OTA_SHA256",
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
    let ota_size = get("QUECTEL_E2E_OTA_SIZE", "65536");
    let ota_sha = get("QUECTEL_E2E_OTA_SHA256", &"0".repeat(64));
    ota_size
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=1 << 20).contains(n))
        .unwrap_or_else(|| panic!("QUECTEL_E2E_OTA_SIZE={ota_size}: 1 ..= 1048576 bytes"));
    assert!(
        ota_sha.len() == 64 && ota_sha.bytes().all(|b| b.is_ascii_hexdigit()),
        "QUECTEL_E2E_OTA_SHA256 must be 64 hex digits"
    );
    println!("cargo:rustc-env=QUECTEL_E2E_OTA_SIZE={ota_size}");
    println!("cargo:rustc-env=QUECTEL_E2E_OTA_SHA256={ota_sha}");
    let placeholder =
        |label: &str| format!("-----BEGIN {label}-----\nUExBQ0VIT0xERVI=\n-----END {label}-----\n");
    let codesign = env::var_os("QUECTEL_E2E_PKI")
        .map(|dir| Path::new(&dir).join("codesign.crt"))
        .filter(|p| {
            println!("cargo:rerun-if-changed={}", p.display());
            p.exists()
        });
    match codesign {
        Some(p) => {
            fs::copy(&p, out.join("codesign.crt"))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
        None => fs::write(out.join("codesign.crt"), placeholder("CERTIFICATE")).unwrap(),
    }

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
