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
//! install line and exits with status 2. It also installs the MQTT 3.1.1 broker `amqtt` (from
//! PyPI, pinned: [`AMQTT`]) into a Python virtual environment under the target directory
//! (`<target>/amqtt-venv`, made with `python3 -m venv`; Debian's `python3-venv` is installed
//! with apt-get when that is missing and it runs as root) and hands its path to the tests in
//! `QUECTEL_AMQTT` (`tests/mqtt311.rs`). Then it runs
//!
//! ```text
//! cargo test --workspace --features quectel/mqtt,quectel/mcu-tls,quectel/aws,quectel/aliyun,quectel/ota [ARGS...]
//! ```
//!
//! and exits with its status. Everything else the tests use (the mock modem, the cloud
//! stand-ins, the certificates) is Rust in the workspace.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The features of the full test run (every optional layer of the crate).
const TEST_FEATURES: &str = "quectel/mqtt,quectel/mcu-tls,quectel/aws,quectel/aliyun,quectel/ota";

/// The programs the tests start and the Debian package that has each (the same list as
/// `TOOLS` in `tests/support/broker.rs`).
const TOOLS: [(&str, &str); 5] = [
    ("mosquitto", "mosquitto"),
    ("mosquitto_passwd", "mosquitto"),
    ("mosquitto_pub", "mosquitto-clients"),
    ("mosquitto_sub", "mosquitto-clients"),
    ("openssl", "openssl"),
];

/// The amqtt release the MQTT 3.1.1 tests run against (needs Python 3.10 or later).
const AMQTT: &str = "amqtt==0.12.1";

/// The variable that tells the tests where the `amqtt` program is.
const AMQTT_VAR: &str = "QUECTEL_AMQTT";

/// Directories that hold system programs but are not on every user's `PATH` (Debian installs
/// `mosquitto` in `/usr/sbin`).
const SBIN: [&str; 3] = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test [ARGS...]  install what the tests need if it is missing (mosquitto, mosquitto-clients,
                  openssl; apt-get, as root; amqtt in <target>/amqtt-venv), then run
                  cargo test --workspace --features quectel/mqtt,quectel/mcu-tls,quectel/aws,quectel/aliyun,quectel/ota [ARGS...]
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
    let amqtt = match ensure_amqtt(&target_dir()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask: {e}");
            return ExitCode::from(2);
        }
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["test", "--workspace", "--features", TEST_FEATURES])
        .args(&extra)
        .env("PATH", path)
        .env(AMQTT_VAR, &amqtt);
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

/// The workspace's target directory: `CARGO_TARGET_DIR`, or `target/` beside the workspace
/// manifest.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
            .join("target"),
    }
}

/// The lines a person runs to install amqtt where [`ensure_amqtt`] would.
fn amqtt_install_line(venv: &Path) -> String {
    format!(
        "python3 -m venv {v} && {v}/bin/pip install {AMQTT}",
        v = venv.display()
    )
}

/// Makes `<target>/amqtt-venv/bin/amqtt` the pinned amqtt ([`AMQTT`]): creates the virtual
/// environment (installing Debian's `python3-venv` with apt-get if `venv` is missing and this
/// runs as root) and installs amqtt with its pip. Returns the program's path; `Err` says why
/// not, with the install line.
fn ensure_amqtt(target: &Path) -> Result<PathBuf, String> {
    let venv = target.join("amqtt-venv");
    let program = venv.join("bin").join("amqtt");
    // The pin that was installed: a new pin installs again.
    let stamp = venv.join("quectel-installed");
    if is_executable(&program) && std::fs::read_to_string(&stamp).is_ok_and(|s| s == AMQTT) {
        println!("xtask: found {AMQTT} in {}", venv.display());
        return Ok(program);
    }
    let line = amqtt_install_line(&venv);
    let fail = |why: String| {
        format!(
            "cannot install {AMQTT} (the MQTT 3.1.1 broker of tests/mqtt311.rs): {why}. \
             Install it, then run `cargo xtask test` again:\n\n    {line}\n"
        )
    };
    let python = ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args([
                    "-c",
                    "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)",
                ])
                .status()
                .is_ok_and(|s| s.success())
        })
        .ok_or_else(|| fail("no python3 of version 3.10 or later".into()))?;
    println!("xtask: installing {AMQTT} into {}", venv.display());
    let make_venv = || {
        Command::new(python)
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !make_venv() {
        // Debian's python3 has venv in a package of its own.
        let apt = find_in(
            &std::env::split_paths("/usr/bin:/bin").collect::<Vec<_>>(),
            "apt-get",
        );
        let Some(apt) = apt.filter(|_| is_root()) else {
            return Err(fail(format!(
                "`{python} -m venv` failed (Debian: apt-get install -y python3-venv, as root)"
            )));
        };
        for args in [&["update"][..], &["install", "-y", "python3-venv"]] {
            println!("xtask: $ {} {}", apt.display(), args.join(" "));
            let ok = Command::new(&apt)
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(fail(format!("`apt-get {}` failed", args.join(" "))));
            }
        }
        if !make_venv() {
            return Err(fail(format!("`{python} -m venv` failed")));
        }
    }
    let pip = venv.join("bin").join("pip");
    let ok = Command::new(&pip)
        .args(["install", "--disable-pip-version-check", "--quiet", AMQTT])
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !is_executable(&program) {
        return Err(fail(format!("`{} install {AMQTT}` failed", pip.display())));
    }
    std::fs::write(&stamp, AMQTT)
        .map_err(|e| fail(format!("cannot write {}: {e}", stamp.display())))?;
    println!("xtask: installed {AMQTT}");
    Ok(program)
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
    fn the_amqtt_install_line_names_the_pin_and_the_venv() {
        assert_eq!(
            amqtt_install_line(Path::new("/t/amqtt-venv")),
            "python3 -m venv /t/amqtt-venv && /t/amqtt-venv/bin/pip install amqtt==0.12.1"
        );
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
