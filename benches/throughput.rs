//! Socket throughput over a UART paced like the real one.
//!
//! For TCP and modem-terminated TLS, and for 64 B, 1 KiB and 16 KiB transfers, echoes the data
//! through the mock modem (which paces both directions at the configured baud rate, 10 bits a
//! byte) to an echo server on 127.0.0.1 and measures:
//!
//! * payload efficiency per direction: payload bytes / bytes on the UART in that direction
//!   (AT commands, prompts, URCs, headers and result codes are the overhead);
//! * achieved payload rate versus the line rate.
//!
//! ```text
//! cargo bench --bench throughput --features mqtt,mcu-tls     # 115200 baud, writes docs/perf.md
//! BAUD=921600 cargo bench --bench throughput --features mqtt,mcu-tls
//! PERF_OUT=/tmp/perf.md cargo bench --bench throughput --features mqtt,mcu-tls
//! cargo test --bench throughput --features mqtt,mcu-tls      # quick mode (CI), no file
//! ```
//!
//! Then the MQTT rows (`wire/mqtt.rs`): UART bytes per 1 KiB message over modem TLS, MCU TLS
//! and plain TCP, counted until the link is idle; CI holds the floors in `MQTT_FLOORS`.

#[path = "../tests/support/mod.rs"]
mod support;
#[path = "wire/mqtt.rs"]
mod wire_mqtt;

use std::fmt::Write as _;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use embassy_futures::join::join;
use embassy_futures::select::{Either, select};
use embassy_time::Duration;
use embedded_io_async::{Read, Write};
use quectel::asynch::{self, Apn, Config, Remote, Resources, TlsConfig};
use quectel_mock::peers::{TcpEchoServer, TestPki, TlsEchoServer};
use quectel_mock::{MockModem, Model};

struct Row {
    kind: &'static str,
    size: usize,
    up_eff: f64,
    down_eff: f64,
    up_bytes: u64,
    down_bytes: u64,
    secs: f64,
    rate_ratio: f64,
}

pub(crate) fn payload(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5679;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 11) as u8
        })
        .collect()
}

fn run_kind(kind: &'static str, baud: u32, sizes: &[usize], rows: &mut Vec<Row>) {
    let pki = TestPki::generate();
    let (addr, _server) = if kind == "TLS" {
        TlsEchoServer::start(&pki, true)
    } else {
        TcpEchoServer::start()
    };
    let (rx, tx, handle) = MockModem::new(Model::Bg96)
        .search_time(StdDuration::from_millis(20))
        .baud(Some(baud))
        .spawn();
    let wire = handle.wire().expect("duplex has counters").clone();
    let resources: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let config = Config {
        // Only announced data is read: the periodic check would add noise to the figures.
        recv_poll: None,
        ..Config::default()
    };
    let (runner, modem) = asynch::new(resources, rx, tx, config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let app = async {
            modem.init().await.unwrap();
            modem
                .data_call()
                .configure(1, &Apn::new("internet"))
                .await
                .unwrap();
            modem
                .network()
                .wait_network_ready(1, Duration::from_secs(30))
                .await
                .unwrap();
            let remote = if kind == "TLS" {
                let tls = TlsConfig::new(pki.ca_pem.as_bytes()).with_client_identity(
                    pki.client_cert_pem.as_bytes(),
                    pki.client_key_pem.as_bytes(),
                );
                modem.configure_tls(1, &tls).await.unwrap();
                Remote::Tls {
                    ssl_ctx: 1,
                    host: "localhost",
                    port: addr.port(),
                }
            } else {
                Remote::Tcp {
                    host: "127.0.0.1",
                    port: addr.port(),
                }
            };
            let mut sock = modem.connect(1, remote).await.unwrap();
            for &size in sizes {
                let data = payload(size);
                // Let everything settle, then count from here.
                embassy_time::Timer::after_millis(300).await;
                let (up0, down0) = (wire.host_bytes(), wire.modem_bytes());
                let t0 = StdInstant::now();
                let (mut r, mut w) = sock.split();
                let writer = async {
                    w.write_all(&data).await.unwrap();
                    w.flush().await.unwrap();
                };
                let reader = async {
                    let mut got = 0;
                    let mut buf = [0u8; 1500];
                    while got < size {
                        let n = r.read(&mut buf).await.unwrap();
                        assert!(n > 0);
                        got += n;
                    }
                };
                join(writer, reader).await;
                let secs = t0.elapsed().as_secs_f64();
                // Count until the link is idle: whatever the driver still exchanges for this
                // transfer (a trailing read, say) is part of its cost.
                let mut last = (wire.host_bytes(), wire.modem_bytes());
                loop {
                    embassy_time::Timer::after_millis(300).await;
                    let now = (wire.host_bytes(), wire.modem_bytes());
                    if now == last {
                        break;
                    }
                    last = now;
                }
                let (up, down) = (wire.host_bytes() - up0, wire.modem_bytes() - down0);
                let line_rate = f64::from(baud) / 10.0;
                rows.push(Row {
                    kind,
                    size,
                    up_eff: size as f64 / up as f64,
                    down_eff: size as f64 / down as f64,
                    up_bytes: up,
                    down_bytes: down,
                    secs,
                    rate_ratio: (size as f64 / secs) / line_rate,
                });
            }
            sock.close().await.unwrap();
        };
        match select(runner.run(), app).await {
            Either::First(never) => never,
            Either::Second(()) => {}
        }
    });
}

const BEGIN: &str = "<!-- throughput:begin (written by benches/throughput.rs) -->";
const END: &str = "<!-- throughput:end -->";

/// `doc` with the text between [`BEGIN`] and [`END`] replaced by `section` (other sections of
/// docs/perf.md, written by other commands, stay); a file without the markers gets them.
fn replace_section(doc: &str, section: &str) -> String {
    let block = format!("{BEGIN}\n{section}{END}\n");
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!(
                "{}{block}{}",
                &doc[..b],
                doc[e + END.len()..].trim_start_matches('\n')
            )
        }
        _ if doc.is_empty() => format!("# Performance\n\n{block}"),
        _ => format!("{}\n{block}", doc.trim_end()),
    }
}

/// Efficiency floors for MQTT over modem TLS (1 KiB message, 16-byte topic), held in CI.
const MQTT_FLOORS: &[(&str, &str, f64)] = &[
    ("modem TLS", "publish QoS 0", 0.945),
    ("modem TLS", "publish QoS 1", 0.885),
    ("modem TLS", "inbound QoS 0", 0.915),
    // Issue 15's targets, met in direct-push mode.
    ("modem TLS, push", "publish QoS 0", 0.945),
    ("modem TLS, push", "publish QoS 1", 0.91),
    ("modem TLS, push", "inbound QoS 0", 0.925),
];

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing and
    // should stay quick: then only check that the benchmark works, on small sizes.
    let full = std::env::args().any(|a| a == "--bench");
    let baud: u32 = std::env::var("BAUD")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(115_200);
    let sizes: &[usize] = if full {
        &[64, 1024, 16 * 1024]
    } else {
        &[64, 1024]
    };
    let mut rows = Vec::new();
    for kind in ["TCP", "TLS"] {
        run_kind(kind, baud, sizes, &mut rows);
    }
    let mqtt_rows = wire_mqtt::run();
    let mut out = String::new();
    writeln!(out, "## Socket throughput\n").unwrap();
    writeln!(
        out,
        "Socket throughput through the mock modem at {baud} baud (10 bits a byte, both \
         directions paced like a UART), echoing to a server on 127.0.0.1. Measured by \
         `benches/throughput.rs`; reproduce with:\n\n```text\ncargo bench --bench throughput --features mqtt,mcu-tls\n```\n"
    )
    .unwrap();
    writeln!(
        out,
        "*Up* is host → modem (AT commands and payload written), *down* is modem → host \
         (prompts, URCs, `+QIRD` headers, result codes and payload). Efficiency = payload \
         bytes / UART bytes in that direction. Rate = payload bytes per second of the echo \
         (both directions at once) / line rate ({} B/s).\n",
        baud / 10
    )
    .unwrap();
    writeln!(
        out,
        "| socket | transfer | up: efficiency | down: efficiency | UART bytes up / down | time (s) | rate / line rate |"
    )
    .unwrap();
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|").unwrap();
    for r in &rows {
        writeln!(
            out,
            "| {} | {} B | {:.3} | {:.3} | {} / {} | {:.2} | {:.2} |",
            r.kind, r.size, r.up_eff, r.down_eff, r.up_bytes, r.down_bytes, r.secs, r.rate_ratio
        )
        .unwrap();
    }
    writeln!(
        out,
        "\nReading the figures:\n\n\
         * The efficiencies are byte counts: they do not depend on the machine. For 1 KiB and \
           more, the AT framing costs 2–6 % of the UART bytes in each direction; 64-byte \
           transfers pay the fixed cost of one `AT+QISEND` exchange and one `AT+QIRD` exchange \
           (a read that returns less than it asked for has drained the modem's buffer, which \
           re-arms its `recv` URC; no confirming empty read). Counted until no byte has moved \
           for 300 ms.\n\
         * The rate counts each payload byte once, but an echo moves it over the UART twice \
           (out, then back), and the AT channel carries one exchange at a time (a send and a \
           read never overlap, and the mock modem, like a real one, answers one command at a \
           time). So 0.5 is the ceiling for an echo; the figures show how close the driver gets. \
           Times depend on the machine (the mock modem and the echo server share the CPU).\n\
         * TLS is terminated in the (mock) modem, so the UART carries plaintext in both cases; \
           the small difference is the longer `AT+QSSLSEND`/`+QSSLRECV` words."
    )
    .unwrap();
    writeln!(
        out,
        "\n## MQTT on the wire\n\n\
         One 1 024-byte message on a 16-byte topic through the mock modem to mosquitto \
         (`benches/wire/mqtt.rs`), counted at the modem's UART from the call until no byte has \
         moved for 400 ms: AT commands, prompts, URCs, read headers, result codes, the MQTT \
         header and, for QoS 1, the PUBACK (read for a publish, sent for an inbound message). \
         Efficiency = 1 024 / UART bytes in both directions. Inbound data is read in the \
         modem's buffer mode (`recv` URC, then one `AT+QIRD`/`AT+QSSLRECV`), or, in the *push* \
         rows (`Config::push_receive`), comes inside the `recv` URC (direct-push mode: no read \
         command; no flow control either, see the option's documentation).\n"
    )
    .unwrap();
    writeln!(
        out,
        "| transport | message | UART bytes up / down | efficiency |\n|---|---|---:|---:|"
    )
    .unwrap();
    for r in &mqtt_rows {
        writeln!(
            out,
            "| {} | {} | {} / {} | {:.3} |",
            r.transport,
            r.what,
            r.up,
            r.down,
            r.efficiency()
        )
        .unwrap();
    }
    print!("{out}");
    if full {
        let path = std::env::var("PERF_OUT")
            .unwrap_or_else(|_| format!("{}/docs/perf.md", env!("CARGO_MANIFEST_DIR")));
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, replace_section(&old, &out)).unwrap();
        eprintln!("wrote {path}");
    }
    // The floors CI holds (quick mode too), for MQTT over modem TLS: see docs/perf.md.
    for (transport, what, floor) in MQTT_FLOORS {
        let r = mqtt_rows
            .iter()
            .find(|r| r.transport == *transport && r.what == *what)
            .expect("row measured");
        assert!(
            r.efficiency() >= *floor,
            "MQTT over {transport}, {what}: efficiency {:.3} < {floor}",
            r.efficiency()
        );
    }
    // The acceptance bar: 1 KiB writes reach 0.95 payload efficiency upstream.
    for r in rows.iter().filter(|r| r.size == 1024) {
        assert!(
            r.up_eff >= 0.95,
            "{} 1 KiB up efficiency {:.3} < 0.95",
            r.kind,
            r.up_eff
        );
    }
}
