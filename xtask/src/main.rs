//! Developer tasks of the `quectel` workspace, run through the cargo alias in
//! `.cargo/config.toml`:
//!
//! ```text
//! cargo xtask test [ARGS...]
//! ```
//!
//! checks that the programs the tests start are installed — `mosquitto` and `mosquitto_passwd`
//! (Debian package `mosquitto`), `mosquitto_pub` and `mosquitto_sub` (`mosquitto-clients`) and
//! `openssl` (`openssl`) — and, if some are missing, installs their packages with
//! `apt-get update && apt-get install -y ...` when it runs as root on a machine with
//! `apt-get`. When it cannot, it stops before building or running anything, prints the exact
//! install line and exits with status 2. Then it runs
//!
//! ```text
//! cargo test --workspace --features quectel/mqtt,quectel/mcu-tls,quectel/aws,quectel/aliyun [ARGS...]
//! ```
//!
//! and exits with its status. Everything else the tests use (the mock modem, the cloud
//! stand-ins, the certificates) is Rust in the workspace.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The features of the full test run (every optional layer of the crate).
const TEST_FEATURES: &str = "quectel/mqtt,quectel/mcu-tls,quectel/aws,quectel/aliyun";

/// The programs the tests start and the Debian package that has each (the same list as
/// `TOOLS` in `tests/support/broker.rs`).
const TOOLS: [(&str, &str); 5] = [
    ("mosquitto", "mosquitto"),
    ("mosquitto_passwd", "mosquitto"),
    ("mosquitto_pub", "mosquitto-clients"),
    ("mosquitto_sub", "mosquitto-clients"),
    ("openssl", "openssl"),
];

/// Directories that hold system programs but are not on every user's `PATH` (Debian installs
/// `mosquitto` in `/usr/sbin`).
const SBIN: [&str; 3] = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test [ARGS...]  install what the tests need if it is missing (mosquitto, mosquitto-clients,
                  openssl; apt-get, as root), then run
                  cargo test --workspace --features quectel/mqtt,quectel/mcu-tls,quectel/aws,quectel/aliyun [ARGS...]
  help            this text";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    match args.next().as_deref().and_then(|a| a.to_str()) {
        Some("test") => test(args.collect()),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("xtask: unknown task `{other}`\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `cargo xtask test`.
fn test(extra: Vec<OsString>) -> ExitCode {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if let Err(e) = ensure_tools(&mut dirs) {
        eprintln!("xtask: {e}");
        return ExitCode::from(2);
    }
    let path = match std::env::join_paths(&dirs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask: cannot build PATH: {e}");
            return ExitCode::from(2);
        }
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["test", "--workspace", "--features", TEST_FEATURES])
        .args(&extra)
        .env("PATH", path);
    // `cargo run` gave this process the variables of the xtask package (CARGO_MANIFEST_DIR,
    // CARGO_PKG_NAME, ...). Build scripts that read them (ring's) would see a change and run
    // again, so that `cargo test` and `cargo xtask test` would rebuild each other's crates.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_cargo_run_variable) {
            cmd.env_remove(name);
        }
    }
    println!(
        "xtask: running cargo test --workspace --features {TEST_FEATURES}{}",
        extra
            .iter()
            .map(|a| format!(" {}", a.to_string_lossy()))
            .collect::<String>()
    );
    match cmd.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("xtask: cargo test failed: {status}");
            ExitCode::from(
                status
                    .code()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(1),
            )
        }
        Err(e) => {
            eprintln!("xtask: cannot run cargo: {e}");
            ExitCode::from(2)
        }
    }
}

/// Whether `name` is one of the variables `cargo run` sets for the package it runs (not
/// `CARGO`, `CARGO_HOME`, `CARGO_TARGET_DIR` or other settings of the user's).
fn is_cargo_run_variable(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_RUSTC_CURRENT_DIR"
        )
}

/// Makes every tool of [`TOOLS`] reachable through `dirs` (the `PATH` the tests get): adds an
/// sbin directory that has one, or installs the missing packages. `Err` says why it cannot,
/// with the install line.
fn ensure_tools(dirs: &mut Vec<PathBuf>) -> Result<(), String> {
    let missing = find_tools(dirs);
    if missing.is_empty() {
        println!("xtask: found {}", tool_names());
        return Ok(());
    }
    let packages = packages_for(&missing);
    let line = install_line(&packages);
    println!(
        "xtask: not installed: {} (Debian packages: {})",
        missing.join(", "),
        packages.join(" ")
    );
    let apt = find_in(
        &std::env::split_paths("/usr/bin:/bin").collect::<Vec<_>>(),
        "apt-get",
    )
    .or_else(|| find_in(dirs, "apt-get"));
    let root = is_root();
    let Some(apt) = apt.filter(|_| root) else {
        let why = if root {
            "there is no apt-get on this machine"
        } else {
            "it needs root to install them"
        };
        return Err(format!(
            "cannot install the test tools: {why}. Install them, then run `cargo xtask test` \
             again:\n\n    {line}\n"
        ));
    };
    println!("xtask: installing them: {line}");
    for args in [
        vec!["update".to_string()],
        ["install", "-y"]
            .iter()
            .map(|s| s.to_string())
            .chain(packages.iter().map(|p| p.to_string()))
            .collect(),
    ] {
        println!("xtask: $ {} {}", apt.display(), args.join(" "));
        let status = Command::new(&apt)
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run {}: {e}\n\n    {line}\n", apt.display()))?;
        if !status.success() {
            return Err(format!(
                "`apt-get {}` failed ({status}); install the packages, then run \
                 `cargo xtask test` again:\n\n    {line}\n",
                args.join(" ")
            ));
        }
    }
    let still = find_tools(dirs);
    if !still.is_empty() {
        return Err(format!(
            "still not found after installing: {}\n\n    {line}\n",
            still.join(", ")
        ));
    }
    println!("xtask: installed; found {}", tool_names());
    Ok(())
}

/// The tools of [`TOOLS`] that neither `dirs` nor an sbin directory has. An sbin directory
/// that has one is appended to `dirs`.
fn find_tools(dirs: &mut Vec<PathBuf>) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for (tool, _) in TOOLS {
        if find_in(dirs, tool).is_some() {
            continue;
        }
        match SBIN
            .iter()
            .map(PathBuf::from)
            .find(|d| is_executable(&d.join(tool)))
        {
            Some(dir) => {
                println!(
                    "xtask: {tool} is in {} (not on PATH): adding it",
                    dir.display()
                );
                dirs.push(dir);
            }
            None => missing.push(tool),
        }
    }
    missing
}

fn tool_names() -> String {
    TOOLS.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ")
}

/// The Debian packages of `missing` tools, each once, in the order of [`TOOLS`].
fn packages_for(missing: &[&str]) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    for (tool, package) in TOOLS {
        if missing.contains(&tool) && !packages.contains(&package) {
            packages.push(package);
        }
    }
    packages
}

/// The line a person runs (as root) to install `packages`.
fn install_line(packages: &[&str]) -> String {
    format!(
        "apt-get update && apt-get install -y {}",
        packages.join(" ")
    )
}

fn find_in(dirs: &[PathBuf], tool: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(tool)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs as root (the owner of `/proc/self` is its effective user; `id -u`
/// where there is no `/proc`).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/self") {
        Ok(m) => m.uid() == 0,
        Err(_) => Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_named_once_in_order() {
        assert_eq!(
            packages_for(&[
                "mosquitto_sub",
                "mosquitto",
                "mosquitto_passwd",
                "mosquitto_pub"
            ]),
            ["mosquitto", "mosquitto-clients"]
        );
        assert_eq!(packages_for(&["openssl"]), ["openssl"]);
        assert!(packages_for(&[]).is_empty());
    }

    #[test]
    fn the_install_line_is_the_one_a_person_runs() {
        assert_eq!(
            install_line(&packages_for(&["mosquitto", "mosquitto_sub"])),
            "apt-get update && apt-get install -y mosquitto mosquitto-clients"
        );
    }

    #[test]
    fn only_the_variables_of_cargo_run_are_dropped() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION",
            "CARGO_BIN_NAME",
        ] {
            assert!(is_cargo_run_variable(name), "{name}");
        }
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_TERM_COLOR",
            "PATH",
        ] {
            assert!(!is_cargo_run_variable(name), "{name}");
        }
    }

    #[test]
    fn tools_are_found_only_where_they_are_executable() {
        let dir = std::env::temp_dir().join(format!("xtask-find-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tool = dir.join("mosquitto");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let dirs = vec![dir.clone()];
        assert_eq!(find_in(&dirs, "mosquitto"), None, "not executable yet");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_in(&dirs, "mosquitto"), Some(tool));
        assert_eq!(find_in(&dirs, "openssl"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
