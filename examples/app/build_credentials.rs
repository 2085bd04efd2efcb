// Shared by the board crates' build scripts (`include!("../app/build_credentials.rs")`).
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
