//! Aliyun OTA through the mock modem, TLS in the modem (TLS 1.2, like Aliyun).
//!
//! First the HTTP layer on its own (`quectel::ota::http`) against the HTTPS file server of
//! `tests/support/https_files.rs`: chunked range downloads, resuming after a cut link from the
//! first missing byte, and each refusal the module documents; then the UART figures of
//! docs/ota.md. Then Aliyun OTA end to end (`quectel::cloud::aliyun::ota`): the device reports
//! its version over MQTT 3.1.1 to the Aliyun stand-in (mosquitto, TLS 1.2), the platform pushes
//! an upgrade, the device downloads it over a second modem TLS socket into a simulated
//! embassy-boot device (`tests/support/ota_device.rs`: RAM flash, the real bootloader at each
//! reset) and reports progress; after the swap the new image confirms and reports its version,
//! or is rolled back and reports `-1`. Every test asserts the progress the platform received
//! and, where the download completed, the update partition's SHA-256.

#[path = "support/aliyun_broker.rs"]
mod aliyun_broker;
#[path = "support/https_files.rs"]
mod https_files;
#[path = "support/ota_device.rs"]
mod ota_device;
mod support;

// `aliyun_broker` builds on the test broker as `crate::broker`.
use support::broker;

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
fn measure_download(img: &[u8], chunk: usize, head_padding: usize) -> (u64, u64) {
    let pki = TestPki::generate();
    let server = FileServer::start(&pki, "/fw/app.bin", img.to_vec());
    server.set_faults(Faults {
        head_padding,
        ..Faults::default()
    });
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
    "<!-- ota-aliyun-figures:begin (written by tests/ota_aliyun.rs, OTA_ALIYUN_WRITE_DOC=1) -->";
const END: &str = "<!-- ota-aliyun-figures:end -->";

/// The download's cost on the UART, 1 KiB and 4 KiB ranges, a 256 KiB image; the efficiency
/// bar of issue 14 (≥ 0.90 of the line rate in payload bytes at 4 KiB) is held here. With
/// `OTA_ALIYUN_WRITE_DOC=1` the table is written into its section of docs/ota.md.
#[test]
fn download_figures_over_modem_tls() {
    const BAUD: f64 = 115_200.0;
    let img = image(256 * 1024);
    let mut table = String::new();
    table.push_str(
        "| range size | response head | UART bytes host → modem | modem → host | payload / modem → host | payload / both directions | 256 KiB at 115 200 baud |\n|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut eff4 = 0.0;
    // The stand-in's head is 144 bytes; +256 makes it as long as an OSS head (about 400 bytes).
    for (chunk, pad) in [(1024usize, 0usize), (4096, 0), (4096, 256), (16384, 256)] {
        let (up, down) = measure_download(&img, chunk, pad);
        let total = up + down;
        let eff = img.len() as f64 / total as f64;
        let eff_down = img.len() as f64 / down as f64;
        // 10 bits a byte; the AT channel carries one exchange at a time, so both directions
        // are summed (an upper bound: a real UART is full duplex).
        let secs = total as f64 * 10.0 / BAUD;
        table.push_str(&format!(
            "| {} KiB | {} B | {up} | {down} | {:.1} % | {:.1} % | {secs:.1} s |\n",
            chunk / 1024,
            144 + pad,
            eff_down * 100.0,
            eff * 100.0
        ));
        if chunk == 4096 && pad == 0 {
            eff4 = eff;
        }
    }
    let section = format!(
        "### Figures: HTTPS download over modem TLS\n\n\
         A 256 KiB image downloaded through the mock modem (BG96, TLS 1.2 in the modem, \
         `AT+QSSLOPEN`/`AT+QSSLSEND`/`AT+QSSLRECV`) from the HTTPS stand-in \
         (`tests/support/https_files.rs`, a 144-byte response head sent with the body), one \
         `Range` request per block on one keep-alive connection, counted at the modem's UART \
         from the socket open until no byte moved for 300 ms (requests, `AT+QSSLSEND` with its \
         prompt and `SEND OK`, `recv` URCs, `AT+QSSLRECV` headers and result codes, response \
         heads). Payload = image bytes. The time is computed from the bytes: 10 bits a byte at \
         115 200 baud, both directions summed (the AT channel carries one exchange at a time; \
         the network's round trips come on top). Reproduce with:\n\n\
         ```text\nOTA_ALIYUN_WRITE_DOC=1 cargo test --features aliyun,ota --test ota_aliyun download_figures -- --nocapture\n```\n\n\
         {table}\n\
         The test fails if the first 4 KiB row falls below 90 % in both directions (CI runs it). \
         A real OSS response head is longer than the stand-in's (about 400 bytes, an estimate \
         from its documented headers: `x-oss-request-id`, `x-oss-hash-crc64ecma`, `ETag`, \
         `Last-Modified`, `Date`, `Server`, …): the rows with a 400-byte head show its cost, and \
         that 16 KiB ranges (`DownloadConfig::block_size`, a 16 KiB buffer) win it back.\n"
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

// ---------------------------------------------------------------------------------------------
// Aliyun OTA end to end.

mod e2e {
    use super::*;
    use aliyun_broker::{AliyunCloud, CloudOptions};
    use embassy_futures::select::{Either, select};
    use embassy_time::Timer;
    use ota_device::{ACTIVE_SIZE, Device, Signer};
    use quectel::asynch::Apn;
    use quectel::cloud::aliyun::ota::{AliyunOta, AliyunOtaError, DownloadConfig, Step};
    use quectel::cloud::aliyun::{Device as AliDevice, MqttCredentials};
    use quectel::mqtt::{Mqtt, Outbox, QoS, Transport};
    use quectel::ota::embassy_boot::State;
    use quectel::ota::{BootStatus, OtaError};
    use std::cell::RefCell;
    #[allow(unused_imports)]
    use std::time::Duration as StdDuration;

    pub const PK: &str = "a1OtaTest01";
    pub const DN: &str = "ota-dev-1";
    const SECRET: &str = "OtaSecret0123456789abc";
    pub const OLD: &str = "1.0.0";
    pub const NEW: &str = "2.0.0";
    pub const BLOCK: u32 = 4096;
    const HTTPS_CTX: u8 = 3;

    pub struct World {
        pub cloud: AliyunCloud,
        pub files: FileServer,
        pub pki: TestPki,
        pub signer: Signer,
        pub old: Vec<u8>,
        pub img: Vec<u8>,
    }

    /// The platform, the file server with a 40 000-byte image (10 blocks, the last short),
    /// the code signer.
    pub fn world() -> World {
        let cloud = AliyunCloud::start(&CloudOptions {
            product_key: PK.into(),
            product_secret: "unused-product-secret".into(),
            devices: Vec::new(),
            flashed: vec![(
                DN.into(),
                SECRET.into(),
                format!("{PK}.{DN}"),
                "hmacsha256".into(),
            )],
            random: "unused".into(),
            sign_method: "hmacsha256".into(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let pki = TestPki::generate();
        let img = ota_device::image(40_000, 7);
        let files = FileServer::start(&pki, "/ota/fw-2.0.0.bin", img.clone());
        World {
            cloud,
            files,
            pki,
            signer: Signer::new(),
            old: ota_device::image(ACTIVE_SIZE, 1),
            img,
        }
    }

    pub fn b64(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for ch in data.chunks(3) {
            let n = (u32::from(ch[0]) << 16)
                | (u32::from(*ch.get(1).unwrap_or(&0)) << 8)
                | u32::from(*ch.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= ch.len() {
                    s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    pub fn md5_hex(data: &[u8]) -> String {
        use md5::Digest as _;
        md5::Md5::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The upgrade message as the platform pushes it (help.aliyun.com 89307), MD5 of `digest_of`,
    /// the signature as the batch tag `sig.sha256.ecdsa` (left out for `None`).
    pub fn upgrade_json(w: &World, digest_of: &[u8], signature: Option<&[u8]>) -> String {
        let ext = match signature {
            Some(sig) => format!(
                r#""extData":{{"key1":"value1","sig.sha256.ecdsa":"{}"}}"#,
                b64(sig)
            ),
            None => r#""extData":{"key1":"value1"}"#.to_string(),
        };
        let md5 = md5_hex(digest_of);
        format!(
            r#"{{"code":"1000","data":{{"size":{},"version":"{NEW}","isDiff":0,"url":"{}?Expires=1700000000&OSSAccessKeyId=k&Signature=abc%3D","md5":"{md5}","sign":"{md5}","signMethod":"Md5","module":"default",{ext}}},"id":1626969597470,"message":"success"}}"#,
            w.img.len(),
            w.files.url(),
        )
    }

    /// The JSON payloads the platform received on `kind` (`inform`, `progress`).
    pub fn received(cloud: &AliyunCloud, kind: &str) -> Vec<serde_json::Value> {
        let prefix = format!("message /ota/device/{kind}/{PK}/{DN} ");
        cloud
            .lines()
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|hex| {
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                serde_json::from_slice(&bytes).unwrap()
            })
            .collect()
    }

    /// The progress steps the platform received, in order.
    pub fn steps(cloud: &AliyunCloud) -> Vec<i32> {
        received(cloud, "progress")
            .iter()
            .map(|v| v["params"]["step"].as_str().unwrap().parse().unwrap())
            .collect()
    }

    /// The versions the device reported, in order.
    pub fn versions(cloud: &AliyunCloud) -> Vec<String> {
        received(cloud, "inform")
            .iter()
            .map(|v| v["params"]["version"].as_str().unwrap().to_string())
            .collect()
    }

    /// What one boot of the device does after it reported its version.
    #[derive(Clone, Default)]
    pub struct Boot {
        /// Push this upgrade message once the version report arrived, and handle it.
        pub push: Option<String>,
        /// On a trial boot, confirm (the self-test passed). `false`: the new image never
        /// confirms.
        pub confirm: bool,
        /// Reset the device (drop everything) once the server sent this many body bytes.
        pub reset_after: Option<u64>,
        /// Retries of the download.
        pub retries: u8,
    }

    /// What a boot came to.
    #[derive(Debug, PartialEq)]
    pub enum Outcome {
        /// The version reported, nothing more to do.
        Reported(String),
        /// A trial boot that did not confirm (the test resets next).
        NotConfirmed,
        /// The upgrade: the download's result (SHA-256 of the image in flash on success).
        Upgrade(Result<[u8; 32], AliyunOtaError>),
        /// The reset came during the download.
        Reset,
    }

    async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if cond() {
                return;
            }
            Timer::after(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// One boot: connect to the platform, report the outcome of the last update and the
    /// running version, then handle `plan`.
    pub fn boot(w: &World, dev: &mut Device, plan: Boot) -> Outcome {
        let (cloud, files) = (&w.cloud, &w.files);
        let key = w.signer.device_key();
        let ca = cloud.ca_pem();
        let https_ca = w.pki.ca_pem.clone();
        let running_new = dev.active_bytes(w.img.len()) == &w.img[..];
        with_modem_in(resources(), fast_config(), mock(), async |m, _| {
            bring_up(m).await;
            let mut https = TlsConfig::new(https_ca.as_bytes());
            https.version = TlsVersion::Tls12;
            m.configure_tls(HTTPS_CTX, &https).await.unwrap();
            let device = AliDevice::new(PK, DN).unwrap();
            let ota = AliyunOta::new(device);
            let creds = MqttCredentials::builder(device, SECRET).build().unwrap();
            let transport = Transport::ModemTls {
                ssl_ctx: 2,
                tls: TlsConfig::new(ca.as_bytes()),
            };
            let cfg = creds
                .mqtt_config("localhost", cloud.port(), transport, Apn::new("internet"))
                .unwrap();
            let mut buf = [0u8; 4096];
            let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
            let mut conn = mqtt.connect(m).await.unwrap();
            conn.subscribe(&ota.upgrade_topic().unwrap(), QoS::AtLeastOnce)
                .await
                .unwrap();
            let outbox: Outbox<16, 512> = Outbox::new();
            let pushed: RefCell<Option<Vec<u8>>> = RefCell::new(None);
            let on_message = |topic: &str, payload: &[u8]| {
                if ota.is_upgrade(topic) {
                    *pushed.borrow_mut() = Some(payload.to_vec());
                }
            };
            let publish = |step: Step, desc: &str| {
                let mut out = [0u8; 256];
                let msg = ota.progress(step, desc, None, &mut out).unwrap();
                outbox
                    .try_publish(msg.topic(), msg.payload(), QoS::AtLeastOnce)
                    .unwrap();
            };
            let script = async {
                let mut updater = dev.updater();
                let version = match updater.boot_status().await.unwrap() {
                    BootStatus::Trial(_) if !plan.confirm => return Outcome::NotConfirmed,
                    BootStatus::Trial(rec) => {
                        // The self-test: the connection to the platform works.
                        updater.confirm().await.unwrap();
                        String::from_utf8(rec.unwrap().tag().to_vec()).unwrap()
                    }
                    BootStatus::Updated(rec) => {
                        updater.clear().await.unwrap();
                        String::from_utf8(rec.tag().to_vec()).unwrap()
                    }
                    BootStatus::RolledBack(_) | BootStatus::NotApplied(_) => {
                        publish(Step::UpgradeFailed, "rolled back");
                        updater.clear().await.unwrap();
                        OLD.to_string()
                    }
                    BootStatus::Normal if running_new => NEW.to_string(),
                    BootStatus::Normal => OLD.to_string(),
                };
                let informs = versions(cloud).len();
                let mut out = [0u8; 128];
                let inform = ota.inform(&version, None, &mut out).unwrap();
                outbox
                    .publish(inform.topic(), inform.payload(), QoS::AtLeastOnce)
                    .await
                    .unwrap();
                let outcome = match &plan.push {
                    None => {
                        wait_until("the version report", || versions(cloud).len() > informs).await;
                        Outcome::Reported(version)
                    }
                    Some(json) => {
                        // The platform pushes when it knows the device's version.
                        wait_until("the version report", || versions(cloud).len() > informs).await;
                        cloud.publish(&ota.upgrade_topic().unwrap(), json.as_bytes());
                        wait_until("the upgrade message", || pushed.borrow().is_some()).await;
                        let payload = pushed.borrow_mut().take().unwrap();
                        match ota.parse_upgrade(&ota.upgrade_topic().unwrap(), &payload) {
                            Err(e) => {
                                let e = AliyunOtaError::Message(e);
                                publish(e.step(), e.desc());
                                Outcome::Upgrade(Err(e))
                            }
                            Ok(None) => unreachable!(),
                            Ok(Some(upgrade)) => {
                                let config = DownloadConfig {
                                    ssl_ctx: HTTPS_CTX,
                                    block_size: BLOCK,
                                    timeout: Duration::from_secs(10),
                                    retries: plan.retries,
                                    ..DownloadConfig::default()
                                };
                                let mut dl = vec![0u8; 512 + BLOCK as usize];
                                let download = ota.download(
                                    *m,
                                    &config,
                                    &upgrade,
                                    &mut updater,
                                    &key,
                                    &mut dl,
                                    publish,
                                );
                                let reset = async {
                                    match plan.reset_after {
                                        Some(n) => {
                                            wait_until("the reset point", || {
                                                files.body_bytes() >= n
                                            })
                                            .await
                                        }
                                        None => core::future::pending().await,
                                    }
                                };
                                match select(download, reset).await {
                                    Either::First(r) => Outcome::Upgrade(r),
                                    Either::Second(()) => return Outcome::Reset,
                                }
                            }
                        }
                    }
                };
                wait_until("the outbox to drain", || outbox.is_empty()).await;
                // PUBACKs and the platform's log.
                Timer::after(Duration::from_millis(300)).await;
                outcome
            };
            match select(conn.serve(&outbox, on_message), script).await {
                Either::First(e) => panic!("connection failed: {e:?}"),
                Either::Second(o) => o,
            }
        })
    }

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    /// The swap after a successful download, the trial boot that confirms, and the new version
    /// reported: what Aliyun counts as success.
    fn reboot_confirm_and_report(w: &World, dev: &mut Device) {
        assert_eq!(dev.reboot(), State::Swap);
        assert_eq!(dev.active_bytes(w.img.len()), &w.img[..]);
        let o = boot(
            w,
            dev,
            Boot {
                confirm: true,
                ..Boot::default()
            },
        );
        assert_eq!(o, Outcome::Reported(NEW.into()));
        assert_eq!(dev.reboot(), State::Boot);
        assert_eq!(versions(&w.cloud).last().map(String::as_str), Some(NEW));
    }

    #[test]
    fn happy_path_download_verify_swap_confirm_and_report() {
        let w = world();
        let mut dev = Device::new(&w.old);
        let sig = w.signer.sign(&w.img);
        let o = boot(
            &w,
            &mut dev,
            Boot {
                push: Some(upgrade_json(&w, &w.img, Some(&sig))),
                ..Boot::default()
            },
        );
        assert_eq!(o, Outcome::Upgrade(Ok(sha(&w.img))));
        assert_eq!(sha(dev.dfu_bytes(w.img.len())), sha(&w.img));
        // 10 blocks: a report per tenth, then 100 when the swap is requested.
        assert_eq!(
            steps(&w.cloud),
            vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
        );
        assert_eq!(w.files.body_bytes(), w.img.len() as u64);
        assert_eq!(w.files.connections(), 1);
        reboot_confirm_and_report(&w, &mut dev);
        assert_eq!(versions(&w.cloud), vec![OLD, NEW]);
        assert_eq!(w.cloud.count("error"), 0, "{:?}", w.cloud.lines());
    }

    /// The update partition's first bytes and the state partition, to show nothing was marked.
    fn state_of(dev: &Device) -> Vec<u8> {
        dev.state.as_bytes().to_vec()
    }

    fn push(w: &World, retries: u8) -> Boot {
        let sig = w.signer.sign(&w.img);
        Boot {
            push: Some(upgrade_json(w, &w.img, Some(&sig))),
            retries,
            ..Boot::default()
        }
    }

    #[test]
    fn a_link_drop_mid_download_resumes_with_range() {
        let w = world();
        let mut dev = Device::new(&w.old);
        // The link drops 1 500 bytes into the third block.
        w.files.set_faults(Faults {
            drop_after: Some(2 * u64::from(BLOCK) + 1500),
            ..Faults::default()
        });
        let o = boot(&w, &mut dev, push(&w, 3));
        assert_eq!(o, Outcome::Upgrade(Ok(sha(&w.img))));
        assert_eq!(sha(dev.dfu_bytes(w.img.len())), sha(&w.img));
        let again = w.files.body_bytes() - w.img.len() as u64;
        assert_eq!(again, 1500);
        assert!(again < 2 * u64::from(BLOCK));
        // The cut block asked for again from its first byte, on a new connection.
        let ranges = w.files.ranges();
        assert_eq!(ranges.iter().filter(|r| **r == (8192, 12287)).count(), 2);
        assert_eq!(w.files.connections(), 2);
        assert_eq!(steps(&w.cloud).last(), Some(&100));
        reboot_confirm_and_report(&w, &mut dev);
    }

    #[test]
    fn a_reset_mid_download_resumes_from_the_persisted_record() {
        let w = world();
        let mut dev = Device::new(&w.old);
        let o = boot(
            &w,
            &mut dev,
            Boot {
                reset_after: Some(5 * u64::from(BLOCK)),
                ..push(&w, 0)
            },
        );
        assert_eq!(o, Outcome::Reset);
        let before = w.files.body_bytes();
        let ranges_before = w.files.ranges().len();
        // The reset: the bootloader finds nothing to do; a new device over the same flash.
        assert_eq!(dev.reboot(), State::Boot);
        // The platform pushes again, with a freshly signed URL (another query): same image.
        let sig = w.signer.sign(&w.img);
        let json = upgrade_json(&w, &w.img, Some(&sig))
            .replace("Expires=1700000000", "Expires=1700003600");
        let o = boot(
            &w,
            &mut dev,
            Boot {
                push: Some(json),
                ..Boot::default()
            },
        );
        assert_eq!(o, Outcome::Upgrade(Ok(sha(&w.img))));
        assert_eq!(sha(dev.dfu_bytes(w.img.len())), sha(&w.img));
        // The second boot asked only from the first block not in flash.
        let after = w.files.ranges()[ranges_before..].to_vec();
        assert!(after[0].0 >= 4 * u64::from(BLOCK), "{after:?}");
        assert!(after.len() <= 6, "{after:?}");
        let again = w.files.body_bytes() - w.img.len() as u64;
        assert!(
            again < 2 * u64::from(BLOCK),
            "{again} bytes twice ({before} before the reset)"
        );
        assert_eq!(steps(&w.cloud).last(), Some(&100));
        reboot_confirm_and_report(&w, &mut dev);
    }

    #[test]
    fn a_corrupted_body_fails_verification_and_is_downloaded_again() {
        let w = world();
        let mut dev = Device::new(&w.old);
        let state = state_of(&dev);
        w.files.set_faults(Faults {
            corrupt_at: Some(12_345),
            ..Faults::default()
        });
        let o = boot(&w, &mut dev, push(&w, 0));
        assert_eq!(
            o,
            Outcome::Upgrade(Err(AliyunOtaError::Ota(OtaError::Digest)))
        );
        assert_eq!(steps(&w.cloud).last(), Some(&-3));
        assert_ne!(sha(dev.dfu_bytes(w.img.len())), sha(&w.img));
        assert_eq!(state_of(&dev), state, "nothing marked");
        assert_eq!(dev.reboot(), State::Boot);
        assert_eq!(dev.active_bytes(w.old.len()), &w.old[..]);
        // Pushed again with a good server: the record was cleared, the whole image comes again.
        w.files.set_faults(Faults::default());
        let o = boot(&w, &mut dev, push(&w, 0));
        assert_eq!(o, Outcome::Upgrade(Ok(sha(&w.img))));
        assert_eq!(sha(dev.dfu_bytes(w.img.len())), sha(&w.img));
        assert_eq!(w.files.body_bytes(), 2 * w.img.len() as u64);
        assert_eq!(steps(&w.cloud).last(), Some(&100));
        reboot_confirm_and_report(&w, &mut dev);
    }

    #[test]
    fn a_short_body_is_refused_and_fetched_again() {
        let w = world();
        let mut dev = Device::new(&w.old);
        w.files.set_faults(Faults {
            short_body: Some(100),
            ..Faults::default()
        });
        let o = boot(&w, &mut dev, push(&w, 2));
        assert_eq!(o, Outcome::Upgrade(Ok(sha(&w.img))));
        assert_eq!(sha(dev.dfu_bytes(w.img.len())), sha(&w.img));
        // The first block came 100 bytes short, was not written, and was asked for again.
        assert_eq!(&w.files.ranges()[..2], &[(0, 4095), (0, 4095)]);
        assert_eq!(w.files.body_bytes(), w.img.len() as u64 + 4096 - 100);
        assert_eq!(steps(&w.cloud).last(), Some(&100));
    }

    #[test]
    fn a_wrong_digest_is_refused_after_download_and_nothing_is_marked() {
        let w = world();
        let mut dev = Device::new(&w.old);
        let state = state_of(&dev);
        let sig = w.signer.sign(&w.img);
        let mut other = w.img.clone();
        other[0] ^= 1;
        let o = boot(
            &w,
            &mut dev,
            Boot {
                push: Some(upgrade_json(&w, &other, Some(&sig))),
                ..Boot::default()
            },
        );
        assert_eq!(
            o,
            Outcome::Upgrade(Err(AliyunOtaError::Ota(OtaError::Digest)))
        );
        assert_eq!(steps(&w.cloud).last(), Some(&-3));
        // The download completed: the partition holds the served image, but it is not marked.
        assert_eq!(sha(dev.dfu_bytes(w.img.len())), sha(&w.img));
        assert_eq!(state_of(&dev), state);
        assert_eq!(dev.reboot(), State::Boot);
        assert_eq!(dev.active_bytes(w.old.len()), &w.old[..]);
    }

    #[test]
    fn a_package_without_signature_is_refused_before_download() {
        let w = world();
        let mut dev = Device::new(&w.old);
        let state = state_of(&dev);
        let o = boot(
            &w,
            &mut dev,
            Boot {
                push: Some(upgrade_json(&w, &w.img, None)),
                ..Boot::default()
            },
        );
        assert_eq!(
            o,
            Outcome::Upgrade(Err(AliyunOtaError::Message(
                quectel::cloud::aliyun::ota::OtaMessageError::NoSignature
            )))
        );
        assert_eq!(steps(&w.cloud), vec![-3]);
        let progress = received(&w.cloud, "progress");
        assert_eq!(progress[0]["params"]["desc"], "no signature");
        assert_eq!(w.files.body_bytes(), 0);
        assert_eq!(state_of(&dev), state);
        assert_eq!(dev.reboot(), State::Boot);
    }

    /// A valid digest with a signature by another key, and a good signature over other bytes:
    /// both downloaded in full, both refused with -3, nothing marked.
    #[test]
    fn a_bad_signature_and_a_good_signature_over_other_bytes_are_refused() {
        let w = world();
        let mut other = w.img.clone();
        other[100] ^= 0x80;
        for sig in [Signer::new().sign(&w.img), w.signer.sign(&other)] {
            let mut dev = Device::new(&w.old);
            let state = state_of(&dev);
            let o = boot(
                &w,
                &mut dev,
                Boot {
                    push: Some(upgrade_json(&w, &w.img, Some(&sig))),
                    ..Boot::default()
                },
            );
            assert_eq!(
                o,
                Outcome::Upgrade(Err(AliyunOtaError::Ota(OtaError::Signature)))
            );
            assert_eq!(steps(&w.cloud).last(), Some(&-3));
            assert_eq!(sha(dev.dfu_bytes(w.img.len())), sha(&w.img));
            assert_eq!(state_of(&dev), state, "the state partition is untouched");
            assert_eq!(dev.reboot(), State::Boot);
            assert_eq!(dev.active_bytes(w.old.len()), &w.old[..]);
        }
        assert_eq!(w.files.body_bytes(), 2 * w.img.len() as u64);
    }

    #[test]
    fn a_flash_write_failing_part_way_reports_minus_4_and_resumes() {
        let w = world();
        let mut dev = Device::new(&w.old);
        // A block is written in 256-byte writes: the 4th write of the 5th block fails.
        dev.dfu.fail_write(4 * 16 + 3);
        let o = boot(&w, &mut dev, push(&w, 0));
        assert!(
            matches!(
                o,
                Outcome::Upgrade(Err(AliyunOtaError::Ota(OtaError::Storage(_))))
            ),
            "{o:?}"
        );
        assert_eq!(steps(&w.cloud).last(), Some(&-4));
        assert_eq!(w.files.body_bytes(), 5 * u64::from(BLOCK));
        assert_eq!(dev.reboot(), State::Boot);
        // Pushed again: the four blocks in flash stay, the failed one and the rest come.
        let o = boot(&w, &mut dev, push(&w, 0));
        assert_eq!(o, Outcome::Upgrade(Ok(sha(&w.img))));
        assert_eq!(sha(dev.dfu_bytes(w.img.len())), sha(&w.img));
        let again = w.files.body_bytes() - w.img.len() as u64;
        assert_eq!(again, u64::from(BLOCK));
        assert!(again < 2 * u64::from(BLOCK));
        assert_eq!(steps(&w.cloud).last(), Some(&100));
        reboot_confirm_and_report(&w, &mut dev);
    }

    #[test]
    fn a_new_image_that_never_confirms_is_rolled_back_and_reports_minus_1() {
        let w = world();
        let mut dev = Device::new(&w.old);
        let o = boot(&w, &mut dev, push(&w, 0));
        assert_eq!(o, Outcome::Upgrade(Ok(sha(&w.img))));
        assert_eq!(sha(dev.dfu_bytes(w.img.len())), sha(&w.img));
        assert_eq!(dev.reboot(), State::Swap);
        assert_eq!(dev.active_bytes(w.img.len()), &w.img[..]);
        // The new image's self-test fails: it never confirms, and it resets.
        assert_eq!(boot(&w, &mut dev, Boot::default()), Outcome::NotConfirmed);
        // embassy-boot's bootloader restores the old image.
        dev.reboot();
        assert_eq!(dev.active_bytes(w.old.len()), &w.old[..]);
        let o = boot(&w, &mut dev, Boot::default());
        assert_eq!(o, Outcome::Reported(OLD.into()));
        assert_eq!(steps(&w.cloud).last(), Some(&-1));
        assert_eq!(
            received(&w.cloud, "progress").last().unwrap()["params"]["desc"],
            "rolled back"
        );
        assert_eq!(versions(&w.cloud), vec![OLD, OLD]);
        // Reported once: the record was cleared.
        assert_eq!(
            boot(&w, &mut dev, Boot::default()),
            Outcome::Reported(OLD.into())
        );
        assert_eq!(steps(&w.cloud).iter().filter(|s| **s == -1).count(), 1);
    }

    #[test]
    fn a_server_that_ignores_range_is_a_download_failure() {
        let w = world();
        let mut dev = Device::new(&w.old);
        let state = state_of(&dev);
        w.files.set_faults(Faults {
            ignore_range: true,
            ..Faults::default()
        });
        let o = boot(&w, &mut dev, push(&w, 3));
        // Not retried: the answer would not change.
        assert_eq!(
            o,
            Outcome::Upgrade(Err(AliyunOtaError::Http(HttpError::RangeIgnored)))
        );
        assert_eq!(steps(&w.cloud), vec![-2]);
        assert_eq!(w.files.connections(), 1);
        assert_eq!(state_of(&dev), state);
        assert_eq!(dev.reboot(), State::Boot);
    }
}
