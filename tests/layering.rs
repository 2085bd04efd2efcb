//! The dependency direction of the crate's modules (see `docs/architecture.md`): each layer may
//! name only the layers below it, so that, e.g., the AT framing compiles and is tested without
//! the command set, and the core error knows nothing of MQTT, TLS or the cloud.
//!
//! ```text
//! core (error, util, fmt, pem) <- at <- command <- state/socket/model <- asynch/blocking
//!                                                                         <- tls <- mqtt <- cloud
//! ```
//!
//! The check reads the source files: any `crate::<module>` or `quectel::<module>` naming a
//! module of a higher layer, in code or in doc comments (a doc link is a dependency of the
//! documentation, and a hint of a design leak), fails the test with the file and line.

use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules and their layer (higher names lower, never the reverse).
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("util", 0),
    ("test_util", 0),
    ("fmt", 0),
    ("pem", 0),
    ("at", 1),
    ("command", 2),
    ("state", 3),
    ("socket", 3),
    ("model", 3),
    ("asynch", 4),
    ("blocking", 4),
    ("tls", 5),
    ("mqtt", 6),
    ("ota", 6),
    ("cloud", 7),
];

/// Files that tie the layers together (the crate root, the fuzzing entry points, and the `Debug`
/// impls of every layer's handles, kept in one file so that it says in one place what a log may
/// show; it only reads the types it formats).
const EXEMPT: &[&str] = &["lib.rs", "fuzz_api.rs", "debug_impls.rs", "doc_guides.rs"];

/// Modules of one layer that must not name each other either: the OTA core is independent of
/// the MQTT client (the cloud layer joins them), and MQTT knows nothing of OTA.
const APART: &[(&str, &str)] = &[("ota", "mqtt"), ("mqtt", "ota")];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// The top-level module a source file belongs to (`src/at/urc.rs` -> `at`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every module named as `crate::<m>` or `quectel::<m>` in `line`.
fn named_modules(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for prefix in ["crate::", "quectel::"] {
        let mut rest = line;
        while let Some(i) = rest.find(prefix) {
            let before = &rest[..i];
            let after = &rest[i + prefix.len()..];
            rest = after;
            // `$crate::`, `my_crate::`: not this crate.
            if before
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
            {
                continue;
            }
            let name: &str = after
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

/// `(file:line, module of the file, module it names)` for every upward reference.
fn violations(src: &Path) -> Vec<(String, String, String)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for file in files {
        let Some(module) = module_of(src, &file) else {
            continue;
        };
        if EXEMPT.contains(&module.as_str()) || EXEMPT.contains(&format!("{module}.rs").as_str()) {
            continue;
        }
        let own = layer(&module).unwrap_or_else(|| {
            panic!(
                "{}: module `{module}` has no layer: add it to LAYERS in tests/layering.rs \
                 and to the picture in docs/architecture.md",
                file.display()
            )
        });
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for named in named_modules(line) {
                if let Some(other) = layer(named)
                    && (other > own || APART.contains(&(module.as_str(), named)))
                {
                    bad.push((
                        format!("{}:{}", file.display(), n + 1),
                        module.clone(),
                        named.to_string(),
                    ));
                }
            }
        }
    }
    bad
}

#[test]
fn no_module_names_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "modules naming a layer above them:\n{}",
        bad.iter()
            .map(|(at, from, to)| format!("  {at}: `{from}` names `{to}`"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_reference() {
    // The same scan over a throw-away tree with one upward reference in code and one in a doc
    // link, and a downward one that is allowed.
    let dir = std::env::temp_dir().join(format!("quectel-layering-{}", std::process::id()));
    let src = dir.join("src");
    fs::create_dir_all(src.join("at")).unwrap();
    fs::write(
        src.join("at").join("urc.rs"),
        "use crate::command::parse::all;\nuse crate::error::trim_ascii;\n",
    )
    .unwrap();
    fs::write(
        src.join("error.rs"),
        "/// Wraps [`MqttError`](crate::mqtt::MqttError).\npub enum Error {}\n",
    )
    .unwrap();
    fs::write(src.join("mqtt.rs"), "use crate::asynch::Modem;\n").unwrap();
    let bad = violations(&src);
    fs::remove_dir_all(&dir).unwrap();
    let named: Vec<(&str, &str)> = bad
        .iter()
        .map(|(_, from, to)| (from.as_str(), to.as_str()))
        .collect();
    assert_eq!(named, [("at", "command"), ("error", "mqtt")]);
}
