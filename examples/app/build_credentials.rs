// Shared by the board crates' build scripts (`include!("../app/build_credentials.rs")`): the
// credentials, and (`place_memory_x`) the linker scripts.
//
// Chooses the credential files the board embeds with `include_bytes!`: `QUECTEL_CA_PEM`,
// `QUECTEL_CERT_PEM`, `QUECTEL_KEY_PEM` and, for the `ota` binary, `QUECTEL_CODESIGN_PEM` (the
// code-signing certificate the images are checked against) (absolute, or relative to the board
// crate), defaulting
// to the placeholders in `examples/app/certs/` (not real credentials: the TLS handshake fails
// with them). The chosen paths reach the board crate as `QUECTEL_*_PEM_PATH`, read by
// `quectel_example_app::board_config!`.

const CREDENTIALS: [(&str, &str); 4] = [
    ("QUECTEL_CA_PEM", "../app/certs/placeholder-ca.pem"),
    ("QUECTEL_CERT_PEM", "../app/certs/placeholder-cert.pem"),
    ("QUECTEL_KEY_PEM", "../app/certs/placeholder-key.pem"),
    ("QUECTEL_CODESIGN_PEM", "../app/certs/placeholder-codesign.pem"),
];

fn embed_credentials() {
    let manifest = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let mut placeholders = false;
    for (var, default) in CREDENTIALS {
        println!("cargo:rerun-if-env-changed={var}");
        let path = match std::env::var_os(var) {
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
        println!("cargo:rustc-env={var}_PATH={}", path.display());
    }
    if placeholders {
        println!(
            "cargo:warning=embedding PLACEHOLDER credentials from examples/app/certs/ (TLS will \
             fail): set QUECTEL_CA_PEM, QUECTEL_CERT_PEM and QUECTEL_KEY_PEM"
        );
    }
}

// Writes the linker scripts of a board crate into OUT_DIR and puts it on the search path:
// `memory.x` from the crate's `memory-app.x`, or with feature `ota` from `memory-ota.x` (the
// bootloader's ACTIVE partition), and `partitions.x` (the layout the bootloader shares). The
// sources are not named `memory.x`: the linker looks in the crate's directory before the
// search path, so a `memory.x` there would win over the one chosen here.
fn place_memory_x() {
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let memory = if std::env::var_os("CARGO_FEATURE_OTA").is_some() {
        "memory-ota.x"
    } else {
        "memory-app.x"
    };
    for (from, to) in [(memory, "memory.x"), ("partitions.x", "partitions.x")] {
        std::fs::copy(dir.join(from), out.join(to)).unwrap();
    }
    println!("cargo:rustc-link-search={}", out.display());
    for f in ["memory-app.x", "memory-ota.x", "partitions.x"] {
        println!("cargo:rerun-if-changed={f}");
    }
}
