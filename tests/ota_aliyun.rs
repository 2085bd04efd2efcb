//! Aliyun OTA end to end: the device downloads an image over the mock modem's TLS socket
//! (TLS 1.2, like Aliyun) from the HTTPS file server of `tests/support/https_files.rs`, in
//! `Range` requests, and (with the OTA core) writes it into a RAM-backed update partition.
//!
//! This file starts with the HTTP layer on its own (`quectel::ota::http`): chunked range
//! downloads, resuming after a cut link from the first missing byte, and each refusal the
//! module documents.

#[path = "support/https_files.rs"]
mod https_files;
mod support;

use embassy_time::Duration;
use https_files::{Faults, FileServer};
use quectel::asynch::{Resources, TlsConfig, TlsVersion};
use quectel::ota::http::{HttpError, HttpsSource, Url};
use quectel_mock::TestPki;
use sha2::{Digest, Sha256};
use support::{bg96 as mock, bring_up, fast_config, with_modem_in};

const SSL_CTX: u8 = 2;

fn resources() -> &'static mut Resources<2048, 2, 4096> {
    Box::leak(Box::new(Resources::new()))
}

/// A deterministic image of `len` bytes (not periodic at any block size).
fn image(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

async fn tls12(m: &quectel::asynch::Modem<'static>, pki: &TestPki) {
    let mut cfg = TlsConfig::new(pki.ca_pem.as_bytes());
    cfg.version = TlsVersion::Tls12;
    m.configure_tls(SSL_CTX, &cfg).await.unwrap();
}

/// Downloads the whole file in `chunk`-byte ranges, retrying a failed range up to `retries`
/// times (from its first byte, on a new connection); returns the bytes and the errors seen.
async fn download(
    src: &mut HttpsSource<'_, '_>,
    total: usize,
    chunk: usize,
    retries: usize,
) -> (Vec<u8>, Vec<HttpError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut head = [0u8; 512];
    let mut body = vec![0u8; chunk];
    while out.len() < total {
        let first = out.len() as u64;
        let last = (first + chunk as u64 - 1).min(total as u64 - 1);
        match src.fetch(first, last, &mut head, &mut body).await {
            Ok(f) => out.extend_from_slice(&body[..f.len]),
            Err(e) => {
                errors.push(e);
                if errors.len() > retries {
                    break;
                }
            }
        }
    }
    src.close().await;
    (out, errors)
}

#[test]
fn a_file_arrives_whole_in_range_requests_over_modem_tls_1_2() {
    let pki = TestPki::generate();
    let img = image(10_000);
    let server = FileServer::start(&pki, "/fw/app.bin", img.clone());
    let url = server.url();
    let (got, errors, conns) = with_modem_in(resources(), fast_config(), mock(), async |m, _| {
        bring_up(m).await;
        tls12(m, &pki).await;
        let mut src = HttpsSource::new(
            *m,
            1,
            SSL_CTX,
            Url::parse(&url).unwrap(),
            Duration::from_secs(10),
        );
        let (got, errors) = download(&mut src, img.len(), 4096, 0).await;
        (got, errors, src.connections())
    });
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(Sha256::digest(&got), Sha256::digest(&img));
    // One keep-alive connection, three ranges, the last one cut to the file's end.
    assert_eq!(conns, 1);
    assert_eq!(server.connections(), 1);
    assert_eq!(server.ranges(), vec![(0, 4095), (4096, 8191), (8192, 9999)]);
    assert_eq!(server.body_bytes(), 10_000);
}

#[test]
fn a_cut_link_resumes_from_the_first_missing_byte() {
    let pki = TestPki::generate();
    let img = image(20_000);
    let server = FileServer::start(&pki, "/fw/app.bin", img.clone());
    // The link drops 1 500 bytes into the third 4 KiB range.
    server.set_faults(Faults {
        drop_after: Some(2 * 4096 + 1500),
        ..Faults::default()
    });
    let url = server.url();
    let (got, errors) = with_modem_in(resources(), fast_config(), mock(), async |m, _| {
        bring_up(m).await;
        tls12(m, &pki).await;
        let mut src = HttpsSource::new(
            *m,
            1,
            SSL_CTX,
            Url::parse(&url).unwrap(),
            Duration::from_secs(10),
        );
        download(&mut src, img.len(), 4096, 2).await
    });
    assert_eq!(errors, vec![HttpError::ShortBody]);
    assert_eq!(Sha256::digest(&got), Sha256::digest(&img));
    // The cut range is asked for again from its start, nothing before it.
    let ranges = server.ranges();
    assert_eq!(ranges[2], (8192, 12287));
    assert_eq!(ranges[3], (8192, 12287));
    assert_eq!(ranges.len(), 6);
    let again = server.body_bytes() - img.len() as u64;
    assert_eq!(again, 1500);
    assert!(again < 2 * 4096);
    assert_eq!(server.connections(), 2);
}

#[test]
fn a_server_that_ignores_range_and_a_short_body_are_typed_errors() {
    let pki = TestPki::generate();
    let img = image(6_000);
    let server = FileServer::start(&pki, "/fw/app.bin", img.clone());
    let url = server.url();
    let missing = format!("https://localhost:{}/nope.bin", server.port());
    let errors = with_modem_in(resources(), fast_config(), mock(), async |m, _| {
        bring_up(m).await;
        tls12(m, &pki).await;
        let mut head = [0u8; 512];
        let mut body = vec![0u8; 4096];
        let mut src = HttpsSource::new(
            *m,
            1,
            SSL_CTX,
            Url::parse(&url).unwrap(),
            Duration::from_secs(10),
        );
        let mut errors = Vec::new();
        server.set_faults(Faults {
            ignore_range: true,
            ..Faults::default()
        });
        errors.push(src.fetch(0, 4095, &mut head, &mut body).await.err());
        server.set_faults(Faults {
            short_body: Some(10),
            ..Faults::default()
        });
        errors.push(src.fetch(0, 4095, &mut head, &mut body).await.err());
        server.set_faults(Faults::default());
        // The head does not fit a 64-byte head buffer.
        errors.push(src.fetch(0, 4095, &mut head[..64], &mut body).await.err());
        // A body buffer smaller than the range: refused before anything is sent.
        errors.push(src.fetch(0, 4095, &mut head, &mut body[..100]).await.err());
        let ok = src.fetch(0, 4095, &mut head, &mut body).await.unwrap();
        assert_eq!(&body[..ok.len], &img[..4096]);
        let mut other = HttpsSource::new(
            *m,
            1,
            SSL_CTX,
            Url::parse(&missing).unwrap(),
            Duration::from_secs(10),
        );
        errors.push(other.fetch(0, 4095, &mut head, &mut body).await.err());
        src.close().await;
        other.close().await;
        errors
    });
    assert_eq!(
        errors,
        vec![
            Some(HttpError::RangeIgnored),
            Some(HttpError::ShortBody),
            Some(HttpError::HeadTooLong),
            Some(HttpError::BufferTooSmall),
            Some(HttpError::Status(404)),
        ]
    );
}

/// UART bytes (host → modem, modem → host) of downloading `img` in `chunk`-byte ranges over
/// modem TLS, from the socket open to the end, counted until the link is idle.
fn measure_download(img: &[u8], chunk: usize) -> (u64, u64) {
    let pki = TestPki::generate();
    let server = FileServer::start(&pki, "/fw/app.bin", img.to_vec());
    let url = server.url();
    let (rx, tx, handle) = mock().spawn();
    let wire = handle.wire().expect("the duplex link counts bytes").clone();
    let idle = || async {
        let mut last = (wire.host_bytes(), wire.modem_bytes());
        loop {
            embassy_time::Timer::after(Duration::from_millis(300)).await;
            let now = (wire.host_bytes(), wire.modem_bytes());
            if now == last {
                return now;
            }
            last = now;
        }
    };
    let (up, down) = support::with_endpoints_in(resources(), fast_config(), rx, tx, async |m| {
        bring_up(m).await;
        tls12(m, &pki).await;
        let (u0, d0) = idle().await;
        let mut src = HttpsSource::new(
            *m,
            1,
            SSL_CTX,
            Url::parse(&url).unwrap(),
            Duration::from_secs(10),
        );
        let (got, errors) = download(&mut src, img.len(), chunk, 0).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(got, img);
        let (u1, d1) = idle().await;
        (u1 - u0, d1 - d0)
    });
    let c = handle.commands();
    eprintln!(
        "chunk {chunk}: {} QSSLRECV, {} QSSLSEND, {} commands; ranges {}",
        c.iter().filter(|l| l.starts_with("AT+QSSLRECV")).count(),
        c.iter().filter(|l| l.starts_with("AT+QSSLSEND")).count(),
        c.len(),
        server.ranges().len()
    );
    drop(handle);
    (up, down)
}

const BEGIN: &str =
    "<!-- ota-aliyun:begin (written by tests/ota_aliyun.rs, OTA_ALIYUN_WRITE_DOC=1) -->";
const END: &str = "<!-- ota-aliyun:end -->";

/// The download's cost on the UART, 1 KiB and 4 KiB ranges, a 256 KiB image; the efficiency
/// bar of issue 14 (≥ 0.90 of the line rate in payload bytes at 4 KiB) is held here. With
/// `OTA_ALIYUN_WRITE_DOC=1` the table is written into its section of docs/ota.md.
#[test]
fn download_figures_over_modem_tls() {
    const BAUD: f64 = 115_200.0;
    let img = image(256 * 1024);
    let mut table = String::new();
    table.push_str(
        "| range size | UART bytes host → modem | modem → host | payload / UART bytes | 256 KiB at 115 200 baud |\n|---:|---:|---:|---:|---:|\n",
    );
    let mut eff4 = 0.0;
    for chunk in [1024usize, 4096] {
        let (up, down) = measure_download(&img, chunk);
        let total = up + down;
        let eff = img.len() as f64 / total as f64;
        // 10 bits a byte; the AT channel carries one exchange at a time, so both directions
        // are summed (an upper bound: a real UART is full duplex).
        let secs = total as f64 * 10.0 / BAUD;
        table.push_str(&format!(
            "| {} KiB | {up} | {down} | {eff:.3} | {secs:.1} s |\n",
            chunk / 1024
        ));
        if chunk == 4096 {
            eff4 = eff;
        }
    }
    let section = format!(
        "### Aliyun: HTTPS download over modem TLS\n\n\
         A 256 KiB image downloaded through the mock modem (BG96, TLS 1.2 in the modem, \
         `AT+QSSLOPEN`/`AT+QSSLSEND`/`AT+QSSLRECV`) from the HTTPS stand-in \
         (`tests/support/https_files.rs`, a 144-byte response head sent with the body), one `Range` request per \
         chunk on one keep-alive connection, counted at the modem's UART from the socket open \
         until no byte moved for 300 ms. The time is computed from the bytes: 10 bits a byte \
         at 115 200 baud, both directions summed. Reproduce with:\n\n\
         ```text\nOTA_ALIYUN_WRITE_DOC=1 cargo test --features aliyun,ota --test ota_aliyun download_figures -- --nocapture\n```\n\n\
         {table}\n\
         CI holds the 4 KiB row at ≥ 0.90 (this test fails below it). A real OSS response head \
         is longer (about 400 bytes: `x-oss-*` headers, `ETag`, `Last-Modified`, `Date`), \
         which costs about 0.06 of efficiency at 1 KiB and 0.015 at 4 KiB.\n"
    );
    println!("{section}");
    if std::env::var("OTA_ALIYUN_WRITE_DOC").is_ok_and(|v| v == "1") {
        let path = format!("{}/docs/ota.md", env!("CARGO_MANIFEST_DIR"));
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        let block = format!("{BEGIN}\n{section}{END}\n");
        let new = match (doc.find(BEGIN), doc.find(END)) {
            (Some(b), Some(e)) if b < e => format!(
                "{}{block}{}",
                &doc[..b],
                doc[e + END.len()..].trim_start_matches('\n')
            ),
            _ if doc.is_empty() => format!("# Firmware updates over the air\n\n{block}"),
            _ => format!("{}\n\n{block}", doc.trim_end()),
        };
        std::fs::write(&path, new).unwrap();
        eprintln!("wrote {path}");
    }
    assert!(
        eff4 >= 0.90,
        "4 KiB ranges: payload / UART bytes {eff4:.3} < 0.90"
    );
}
