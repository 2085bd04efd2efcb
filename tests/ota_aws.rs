//! AWS IoT Jobs + MQTT streams OTA, end to end: the device (this crate over the mock modem,
//! TLS in the modem, mutual TLS like AWS IoT) against mosquitto set up like AWS IoT Core, with
//! Jobs and the stream service played by `JobsStandIn` (support/aws_jobs.rs: rumqttc, minicbor,
//! serde_json; not this crate). The image is random bytes signed by a P-256 key the test makes
//! (certificate by rcgen); flash is `quectel::ota::MemFlash`, and a reset runs embassy-boot's
//! real bootloader over it (support/ota_device.rs).
//!
//! Every test asserts the final job status the stand-in received and the bytes in the update
//! partition (SHA-256 of the served image).
//!
//! Needs `mosquitto` (`cargo xtask test` installs it).

#[path = "support/aws_jobs.rs"]
mod aws_jobs;
#[path = "support/ota_device.rs"]
mod ota_device;
mod support;

use std::time::Duration as StdDuration;

use aws_jobs::{JobsStandIn, wait_until};
use embassy_futures::select::{Either, select};
use embassy_time::Duration;
use ota_device::{Device, DeviceUpdater, Signer, image, sha256};
use quectel::asynch::{Apn, Config, Modem, Resources, TlsConfig};
use quectel::cloud::CloudError;
use quectel::cloud::aws::Endpoint;
use quectel::cloud::aws::ota::{AwsOta, BootReport, Job, OtaJob, StreamFormat};
use quectel::mqtt::{Mqtt, MqttConfig};
use quectel::ota::embassy_boot::State;
use quectel::ota::{CodeSigningKey, OtaError};
use quectel_mock::{MockModem, Model as MockModel, ModemHandle};
use support::broker::{Acl, Broker, BrokerOptions, ClientId};

const THING: &str = "ota-thing";
const SERVICE: &str = "aws-jobs-service";
const JOB: &str = "ota-job-1";
const STREAM: &str = "AFR_OTA-stream-1";
/// MQTT receive buffer: 1 KiB blocks.
const RX_1K: usize = 2048;
/// MQTT receive buffer: 4 KiB blocks.
const RX_4K: usize = 4608;
/// MQTT receive buffer: 4 KiB blocks in JSON (base64: 4/3 of the block).
const RX_4K_JSON: usize = 6144;

type Res = Resources<2048, 2, 8192>;

struct Net {
    broker: Broker,
    standin: JobsStandIn,
    device: ClientId,
    ca: String,
}

fn cloud() -> Net {
    let acl = Acl::aws_like().full_access(SERVICE);
    let broker = Broker::start(BrokerOptions::default().acl(acl));
    let service = broker.client(SERVICE);
    let standin = JobsStandIn::start(&broker, &service);
    let device = broker.client(THING);
    let ca = broker.pki().ca_pem.clone();
    Net {
        broker,
        standin,
        device,
        ca,
    }
}

fn config() -> Config {
    Config {
        command_gap: Duration::from_millis(1),
        ..support::config()
    }
}

fn mqtt_config<'a>(net: &'a Net) -> MqttConfig<'a> {
    let endpoint = Endpoint::new("localhost")
        .unwrap()
        .with_port(net.broker.port());
    let tls = TlsConfig::new(net.ca.as_bytes()).with_client_identity(
        net.device.cert_pem.as_bytes(),
        net.device.key_pem.as_bytes(),
    );
    endpoint
        .mqtt_config(
            THING,
            endpoint.modem_transport(1, tls).unwrap(),
            Apn::new("internet"),
        )
        .unwrap()
}

/// One power-on of the device: a fresh modem and driver over the device's flashes.
fn power_on<T>(
    dev: &mut Device,
    body: impl AsyncFnOnce(&Modem<'static>, &ModemHandle, &mut DeviceUpdater<'_>) -> T,
) -> T {
    let res: &'static mut Res = Box::leak(Box::new(Resources::new()));
    let mock = MockModem::new(MockModel::Bg96).search_time(StdDuration::from_millis(20));
    let mut up = dev.updater();
    support::with_modem_in(res, config(), mock, async |m, h| {
        m.init().await.unwrap();
        body(m, h, &mut up).await
    })
}

/// What the application does on every boot: connect, report the last update, ask for the next
/// job and download it; after a link failure connect again and go on (at most `attempts`
/// connections). Returns the boot report and the download's outcome (`None`: no OTA job).
async fn app(
    m: &Modem<'static>,
    net: &Net,
    up: &mut DeviceUpdater<'_>,
    rx: usize,
    attempts: u32,
) -> (BootReport, Option<Result<(), CloudError>>) {
    app_in(m, net, up, rx, attempts, StreamFormat::Cbor).await
}

/// [`app`] with the stream in `format`.
async fn app_in(
    m: &Modem<'static>,
    net: &Net,
    up: &mut DeviceUpdater<'_>,
    rx: usize,
    attempts: u32,
    format: StreamFormat,
) -> (BootReport, Option<Result<(), CloudError>>) {
    let key = CodeSigningKey::from_certificate_pem(
        net.standin.with(|s| s.cert_pem.clone()).as_bytes(),
        &mut [0u8; 2048],
    )
    .unwrap();
    let mut buf = vec![0u8; 2 * rx];
    let mut mqtt = Mqtt::new(mqtt_config(net), &mut buf, rx).unwrap();
    let mut block = vec![0u8; 4096];
    let mut ota = AwsOta::new(THING, rx).unwrap();
    if format == StreamFormat::Json {
        ota = ota.with_json(&mut block).unwrap();
    }
    let mut ota = ota.with_timeout(Duration::from_millis(800)).with_retries(3);
    let mut report = None;
    let mut outcome = None;
    for _ in 0..attempts {
        let Ok(mut conn) = mqtt.connect(m).await else {
            continue;
        };
        if report.is_none() {
            match ota.after_boot(&mut conn, up).await {
                Ok(r) => report = Some(r),
                Err(_) => continue,
            }
        }
        let mut job_buf = [0u8; 2048];
        let job: OtaJob<'_> = match ota.next_job(&mut conn, &mut job_buf).await {
            Ok(Job::Ota(j)) => j,
            Ok(_) => break,
            Err(CloudError::Modem(_)) | Err(CloudError::Mqtt(_)) | Err(CloudError::NoResponse) => {
                continue;
            }
            Err(e) => panic!("next_job: {e:?}"),
        };
        match ota.download(&mut conn, up, &job, &key).await {
            Err(CloudError::Modem(_)) | Err(CloudError::Mqtt(_)) | Err(CloudError::NoResponse) => {
                continue;
            }
            r => {
                outcome = Some(r);
                break;
            }
        }
    }
    (report.unwrap_or(BootReport::Nothing), outcome)
}

/// Waits until no UART byte moved for 200 ms (the device has read what the network sent).
async fn uart_idle(h: &ModemHandle) {
    let wire = h.wire().expect("the duplex link counts bytes");
    let mut last = (wire.host_bytes(), wire.modem_bytes());
    let mut quiet = 0;
    while quiet < 4 {
        embassy_time::Timer::after_millis(50).await;
        let now = (wire.host_bytes(), wire.modem_bytes());
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
    }
}

/// Serves a signed image of `size` bytes as job `JOB`; returns (old firmware, image, device).
fn setup(
    net: &Net,
    size: usize,
    sign: impl FnOnce(&Signer, &[u8]) -> Vec<u8>,
) -> (Vec<u8>, Vec<u8>, Device) {
    let signer = Signer::new();
    let old = image(ota_device::ACTIVE_SIZE, 1);
    let new = image(size, rand_seed());
    let sig = sign(&signer, &new);
    net.standin.add_ota_job(JOB, STREAM, &new, &base64(&sig));
    net.standin.with(|s| s.cert_pem = signer.cert_pem.clone());
    (old.clone(), new, Device::new(&old))
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn statuses(net: &Net) -> Vec<String> {
    net.standin
        .updates(JOB)
        .into_iter()
        .map(|(s, d)| format!("{s} {d}"))
        .collect()
}

/// The reset after a successful download, and the new image's first boot: it confirms itself
/// and reports SUCCEEDED.
fn reboot_and_confirm(net: &Net, dev: &mut Device, new: &[u8]) {
    assert_eq!(dev.reboot(), State::Swap);
    assert_eq!(dev.active_bytes(new.len()), new);
    let (report, outcome) = power_on(dev, async |m, _, up| app(m, net, up, RX_1K, 3).await);
    assert_eq!(report, BootReport::Succeeded(JOB.try_into().unwrap()));
    assert!(outcome.is_none(), "no job left: {outcome:?}");
    assert_eq!(
        net.standin.wait_status(JOB, "SUCCEEDED"),
        "SUCCEEDED",
        "{:?}",
        statuses(net)
    );
    // Confirmed: the next reset keeps it.
    assert_eq!(dev.reboot(), State::Boot);
    assert_eq!(dev.active_bytes(new.len()), new);
}

#[test]
fn happy_path_download_verify_swap_confirm_succeeded() {
    let net = cloud();
    let (_old, new, mut dev) = setup(&net, 64 * 1024 + 300, |s, d| s.sign(d));
    let (report, outcome) = power_on(&mut dev, async |m, _, up| app(m, &net, up, RX_1K, 3).await);
    assert_eq!(report, BootReport::Nothing);
    assert_eq!(outcome, Some(Ok(())));
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    net.standin
        .wait_update(JOB, |_, d| d["self_test"] == "ready");
    let ups = statuses(&net);
    assert!(ups[0].starts_with("IN_PROGRESS {\"receive\":\""), "{ups:?}");
    assert!(
        ups.last().unwrap().contains("\"self_test\":\"ready\""),
        "{ups:?}"
    );
    assert_eq!(net.standin.status(JOB), "IN_PROGRESS");
    // Each block was sent once.
    assert_eq!(net.standin.resent_bytes(1024, new.len()), 0);
    // The bitmap requests: offset 0 first, 32 blocks of 1 KiB each.
    let first = net.standin.with(|s| s.requests[0].clone());
    assert_eq!((first.0, first.1, first.3), (0, 32, 1024));
    assert_eq!(first.2, vec![0xFF; 4]);
    reboot_and_confirm(&net, &mut dev, &new);
}

#[test]
fn link_drop_mid_download_resumes_with_less_than_two_blocks_again() {
    let net = cloud();
    let (_old, new, mut dev) = setup(&net, 64 * 1024, |s, d| s.sign(d));
    net.standin.with(|s| s.cut_after = Some(40));
    let (_, outcome) = power_on(&mut dev, async |m, h, up| {
        let watcher = async {
            while !net.standin.cut_requested() {
                embassy_time::Timer::after_millis(10).await;
            }
            // Let the blocks already sent arrive, then the network closes the connection.
            uart_idle(h).await;
            let id = h
                .state()
                .sockets
                .iter()
                .find(|s| s.state == 2)
                .map(|s| s.id);
            h.drop_socket(id.expect("an open socket"));
            core::future::pending::<()>().await
        };
        match select(app(m, &net, up, RX_1K, 4), watcher).await {
            Either::First(r) => r,
            Either::Second(()) => unreachable!(),
        }
    });
    assert_eq!(outcome, Some(Ok(())), "{:?}", statuses(&net));
    assert!(net.standin.cut_requested());
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    let resent = net.standin.resent_bytes(1024, new.len());
    assert!(resent < 2 * 1024, "re-downloaded {resent} bytes");
    reboot_and_confirm(&net, &mut dev, &new);
}

#[test]
fn reset_mid_download_resumes_from_the_persisted_record() {
    let net = cloud();
    let (_old, new, mut dev) = setup(&net, 64 * 1024 + 1, |s, d| s.sign(d));
    net.standin.with(|s| s.cut_after = Some(37));
    // First power-on: stops when the stand-in cut; everything but the flash is dropped.
    power_on(&mut dev, async |m, h, up| {
        let watcher = async {
            while !net.standin.cut_requested() {
                embassy_time::Timer::after_millis(10).await;
            }
            uart_idle(h).await;
        };
        match select(app(m, &net, up, RX_1K, 2), watcher).await {
            Either::First(r) => panic!("the download finished before the reset: {r:?}"),
            Either::Second(()) => {}
        }
    });
    let total = new.len().div_ceil(1024) as u32;
    assert!(
        net.standin.with(|s| s.blocks_sent) < total,
        "the cut came before the end"
    );
    // Second power-on: a new device over the same flash.
    let (_, outcome) = power_on(&mut dev, async |m, _, up| app(m, &net, up, RX_1K, 3).await);
    assert_eq!(outcome, Some(Ok(())), "{:?}", statuses(&net));
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    let resent = net.standin.resent_bytes(1024, new.len());
    assert!(resent < 2 * 1024, "re-downloaded {resent} bytes");
    reboot_and_confirm(&net, &mut dev, &new);
}

#[test]
fn corrupted_and_short_blocks_are_refused_and_asked_again() {
    let net = cloud();
    let (_old, new, mut dev) = setup(&net, 48 * 1024, |s, d| s.sign(d));
    net.standin.with(|s| {
        s.corrupt_once.extend([3, 17]);
        s.short_once.extend([5, 47]);
        // And one request answered with nothing: the device asks again after its timeout.
        s.ignore_requests = 1;
    });
    let (_, outcome) = power_on(&mut dev, async |m, _, up| app(m, &net, up, RX_1K, 3).await);
    assert_eq!(outcome, Some(Ok(())), "{:?}", statuses(&net));
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    net.standin.with(|s| {
        for i in [3, 17, 5, 47] {
            assert_eq!(s.sends[&i], 2, "block {i} asked again");
        }
        // Requests (o, n, bitmap): the first (0..31) was ignored and asked again after the
        // timeout; then from the first missing block, 3: bits for 3, 5 and 17 (refused) and
        // 32, 33, 34 (not asked yet) and nothing else; then 35..47; then 47 alone (short).
        let reqs: Vec<(u32, u32, Vec<u8>)> =
            s.requests.iter().map(|r| (r.0, r.1, r.2.clone())).collect();
        let all = vec![0xFF; 4];
        assert_eq!(reqs[0], (0, 32, all.clone()), "{reqs:?}");
        assert_eq!(reqs[1], (0, 32, all), "{reqs:?}");
        assert_eq!(reqs[2], (3, 6, vec![0x05, 0x40, 0x00, 0xE0]), "{reqs:?}");
        assert_eq!(reqs[3], (35, 13, vec![0xFF, 0x1F]), "{reqs:?}");
        assert_eq!(reqs[4], (47, 1, vec![0x01]), "{reqs:?}");
        assert_eq!(reqs.len(), 5, "{reqs:?}");
    });
    reboot_and_confirm(&net, &mut dev, &new);
}

/// Downloads an image whose signature is refused: FAILED, nothing marked, old image stays.
fn refused_signature(sign: impl FnOnce(&Signer, &[u8]) -> Vec<u8>) {
    let net = cloud();
    let (old, new, mut dev) = setup(&net, 32 * 1024, sign);
    let state_before = dev.state.as_bytes().to_vec();
    let (_, outcome) = power_on(&mut dev, async |m, _, up| app(m, &net, up, RX_1K, 3).await);
    assert_eq!(outcome, Some(Err(CloudError::Ota(OtaError::Signature))));
    // The update partition holds the served bytes, but the swap was not requested.
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    assert_eq!(dev.state.as_bytes(), &state_before[..]);
    assert_eq!(net.standin.wait_status(JOB, "FAILED"), "FAILED");
    let last = net.standin.updates(JOB).pop().unwrap();
    assert_eq!(last.1["reason"], "signature");
    assert_eq!(dev.reboot(), State::Boot);
    assert_eq!(dev.active_bytes(old.len()), &old[..]);
}

#[test]
fn wrong_signature_fails_the_job_and_keeps_the_old_image() {
    refused_signature(|_, d| Signer::new().sign(d));
}

#[test]
fn good_signature_over_different_bytes_fails_the_job() {
    refused_signature(|s, d| {
        let mut other = d.to_vec();
        other[100] ^= 0x80;
        s.sign(&other)
    });
}

#[test]
fn flash_write_failing_part_way_is_reported_and_the_block_asked_again() {
    let net = cloud();
    let (_old, new, mut dev) = setup(&net, 40 * 1024, |s, d| s.sign(d));
    // The 51st write to the update partition (block 12: 256-byte writes) fails half-way.
    dev.dfu.fail_write(50);
    let (_, outcome) = power_on(&mut dev, async |m, _, up| app(m, &net, up, RX_1K, 3).await);
    assert_eq!(outcome, Some(Ok(())), "{:?}", statuses(&net));
    let ups = net
        .standin
        .wait_update(JOB, |s, d| s == "IN_PROGRESS" && d["reason"] == "storage");
    assert!(
        ups.iter()
            .any(|(s, d)| s == "IN_PROGRESS" && d["reason"] == "storage"),
        "{ups:?}"
    );
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    // Only the failed block came twice.
    assert_eq!(net.standin.resent_bytes(1024, new.len()), 1024);
    reboot_and_confirm(&net, &mut dev, &new);
}

#[test]
fn a_flash_erase_failing_is_reported_and_the_next_attempt_resumes() {
    let net = cloud();
    let (_old, new, mut dev) = setup(&net, 40 * 1024, |s, d| s.sign(d));
    // The update partition's erase at the start of the image fails.
    dev.dfu.fail_erase(0);
    let (_, outcome) = power_on(&mut dev, async |m, _, up| app(m, &net, up, RX_1K, 3).await);
    assert!(
        matches!(outcome, Some(Err(CloudError::Ota(OtaError::Storage(_))))),
        "{outcome:?}"
    );
    let last = net
        .standin
        .wait_update(JOB, |_, d| d["reason"] == "storage")
        .pop()
        .unwrap();
    assert_eq!(
        (last.0.as_str(), &last.1["reason"]),
        ("IN_PROGRESS", &serde_json::json!("storage"))
    );
    assert_eq!(net.standin.status(JOB), "IN_PROGRESS");
    // The application tries again (here: after a reset) and completes.
    let (_, outcome) = power_on(&mut dev, async |m, _, up| app(m, &net, up, RX_1K, 3).await);
    assert_eq!(outcome, Some(Ok(())), "{:?}", statuses(&net));
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    assert_eq!(net.standin.resent_bytes(1024, new.len()), 0);
    reboot_and_confirm(&net, &mut dev, &new);
}

#[test]
fn a_new_image_that_never_confirms_is_rolled_back_and_the_job_fails() {
    let net = cloud();
    let (old, new, mut dev) = setup(&net, 32 * 1024, |s, d| s.sign(d));
    let (_, outcome) = power_on(&mut dev, async |m, _, up| app(m, &net, up, RX_1K, 3).await);
    assert_eq!(outcome, Some(Ok(())));
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    // The new image boots but never gets to confirm (it crashes before connecting).
    assert_eq!(dev.reboot(), State::Swap);
    assert_eq!(dev.active_bytes(new.len()), &new[..]);
    // Reset: the real bootloader reverts.
    dev.reboot();
    assert_eq!(dev.active_bytes(old.len()), &old[..]);
    let (report, _) = power_on(&mut dev, async |m, _, up| app(m, &net, up, RX_1K, 3).await);
    assert_eq!(report, BootReport::RolledBack(JOB.try_into().unwrap()));
    assert_eq!(net.standin.wait_status(JOB, "FAILED"), "FAILED");
    let last = net.standin.updates(JOB).pop().unwrap();
    assert_eq!(last.1["reason"], "rollback");
    // The bootloader keeps its "reverted" state; the old image stays.
    assert_eq!(dev.reboot(), State::Revert);
    assert_eq!(dev.active_bytes(old.len()), &old[..]);
}

#[test]
fn a_job_that_is_not_an_ota_job_goes_to_the_application() {
    let net = cloud();
    net.standin
        .add_job("reboot-42", serde_json::json!({"operation": "reboot"}));
    let mut dev = Device::new(&[]);
    power_on(&mut dev, async |m, _, _| {
        let mut buf = vec![0u8; 2 * RX_1K];
        let mut mqtt = Mqtt::new(mqtt_config(&net), &mut buf, RX_1K).unwrap();
        let mut conn = mqtt.connect(m).await.unwrap();
        let mut ota = AwsOta::new(THING, RX_1K)
            .unwrap()
            .with_timeout(Duration::from_secs(5));
        let mut jb = [0u8; 1024];
        match ota.next_job(&mut conn, &mut jb).await.unwrap() {
            Job::Other { job_id, payload } => {
                assert_eq!(job_id, "reboot-42");
                assert!(
                    std::str::from_utf8(payload)
                        .unwrap()
                        .contains("\"operation\":\"reboot\"")
                );
            }
            other => panic!("{other:?}"),
        }
    });
    // Not failed by the OTA code.
    assert_eq!(net.standin.status("reboot-42"), "QUEUED");
    assert!(net.standin.updates("reboot-42").is_empty());
    let _ = wait_until(StdDuration::from_millis(1), || true);
}

#[test]
fn an_unknown_stream_is_rejected_and_the_job_fails() {
    let net = cloud();
    let (_old, _new, mut dev) = setup(&net, 8 * 1024, |s, d| s.sign(d));
    net.standin.with(|s| s.streams.clear());
    let (_, outcome) = power_on(&mut dev, async |m, _, up| app(m, &net, up, RX_1K, 3).await);
    assert_eq!(outcome, Some(Err(CloudError::Ota(OtaError::Rejected))));
    assert_eq!(net.standin.wait_status(JOB, "FAILED"), "FAILED");
    let last = net.standin.updates(JOB).pop().unwrap();
    assert_eq!(last.1["reason"], "rejected");
    assert_eq!(last.1["code"], "ResourceNotFound");
}

#[test]
fn four_kib_blocks_fit_the_receive_buffer() {
    let net = cloud();
    let (_old, new, mut dev) = setup(&net, 64 * 1024 + 5, |s, d| s.sign(d));
    let (_, outcome) = power_on(&mut dev, async |m, _, up| app(m, &net, up, RX_4K, 3).await);
    assert_eq!(outcome, Some(Ok(())), "{:?}", statuses(&net));
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    assert_eq!(net.standin.with(|s| s.requests[0].3), 4096);
    reboot_and_confirm(&net, &mut dev, &new);
}

#[test]
fn json_stream_happy_path_download_verify_swap_confirm_succeeded() {
    let net = cloud();
    let (_old, new, mut dev) = setup(&net, 64 * 1024 + 300, |s, d| s.sign(d));
    let (report, outcome) = power_on(&mut dev, async |m, _, up| {
        app_in(m, &net, up, RX_1K, 3, StreamFormat::Json).await
    });
    assert_eq!(report, BootReport::Nothing);
    assert_eq!(outcome, Some(Ok(())), "{:?}", statuses(&net));
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    net.standin
        .wait_update(JOB, |_, d| d["self_test"] == "ready");
    assert_eq!(net.standin.status(JOB), "IN_PROGRESS");
    net.standin.with(|s| {
        // Every request in JSON; the hex bitmap read back is the CBOR test's bitmap.
        assert_eq!(s.request_formats.len(), s.requests.len());
        assert!(
            s.request_formats.iter().all(|f| f == "json"),
            "{:?}",
            s.request_formats
        );
        let first = &s.requests[0];
        assert_eq!((first.0, first.1, first.3), (0, 32, 1024));
        assert_eq!(first.2, vec![0xFF; 4]);
    });
    assert_eq!(net.standin.resent_bytes(1024, new.len()), 0);
    reboot_and_confirm(&net, &mut dev, &new);
}

#[test]
fn json_stream_corrupted_short_and_bad_base64_blocks_are_refused_and_asked_again() {
    let net = cloud();
    let (_old, new, mut dev) = setup(&net, 48 * 1024, |s, d| s.sign(d));
    net.standin.with(|s| {
        s.corrupt_once.extend([3]);
        s.bad_base64_once.extend([17]);
        s.short_once.extend([5, 47]);
    });
    let (_, outcome) = power_on(&mut dev, async |m, _, up| {
        app_in(m, &net, up, RX_1K, 3, StreamFormat::Json).await
    });
    assert_eq!(outcome, Some(Ok(())), "{:?}", statuses(&net));
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    net.standin.with(|s| {
        for i in [3, 17, 5, 47] {
            assert_eq!(s.sends[&i], 2, "block {i} asked again");
        }
        // As in CBOR: 0..31; then from 3: 3, 5, 17 (refused) and 32..34; 35..47; 47 alone.
        let reqs: Vec<(u32, u32, Vec<u8>)> =
            s.requests.iter().map(|r| (r.0, r.1, r.2.clone())).collect();
        assert_eq!(reqs[0], (0, 32, vec![0xFF; 4]), "{reqs:?}");
        assert_eq!(reqs[1], (3, 6, vec![0x05, 0x40, 0x00, 0xE0]), "{reqs:?}");
        assert_eq!(reqs[2], (35, 13, vec![0xFF, 0x1F]), "{reqs:?}");
        assert_eq!(reqs[3], (47, 1, vec![0x01]), "{reqs:?}");
        assert_eq!(reqs.len(), 4, "{reqs:?}");
    });
    reboot_and_confirm(&net, &mut dev, &new);
}

#[test]
fn json_stream_unknown_stream_is_rejected_and_the_job_fails() {
    let net = cloud();
    let (_old, _new, mut dev) = setup(&net, 8 * 1024, |s, d| s.sign(d));
    net.standin.with(|s| s.streams.clear());
    let (_, outcome) = power_on(&mut dev, async |m, _, up| {
        app_in(m, &net, up, RX_1K, 3, StreamFormat::Json).await
    });
    assert_eq!(outcome, Some(Err(CloudError::Ota(OtaError::Rejected))));
    assert_eq!(net.standin.wait_status(JOB, "FAILED"), "FAILED");
    let last = net.standin.updates(JOB).pop().unwrap();
    assert_eq!(last.1["code"], "ResourceNotFound");
}

/// UART bytes of one download (from the first GetStream request to an idle link), counted at
/// the mock modem: (payload, up = host → modem, down = modem → host, requests).
/// Also the block size used.
fn measure(rx: usize, size: usize, format: StreamFormat) -> (u64, u64, u64, u32, u32) {
    let net = cloud();
    let (_old, new, mut dev) = setup(&net, size, |s, d| s.sign(d));
    let cert = net.standin.with(|s| s.cert_pem.clone());
    let counts = power_on(&mut dev, async |m, h, up| {
        let wire = h.wire().expect("the duplex link counts bytes").clone();
        let bytes = || (wire.host_bytes(), wire.modem_bytes());
        let key = CodeSigningKey::from_certificate_pem(cert.as_bytes(), &mut [0u8; 2048]).unwrap();
        let mut buf = vec![0u8; 2 * rx];
        let mut cfg = mqtt_config(&net);
        // No PINGREQ inside the measurement.
        cfg.keepalive_s = 600;
        let mut mqtt = Mqtt::new(cfg, &mut buf, rx).unwrap();
        let mut conn = mqtt.connect(m).await.unwrap();
        let mut block = vec![0u8; 4096];
        let mut ota = AwsOta::new(THING, rx).unwrap();
        if format == StreamFormat::Json {
            ota = ota.with_json(&mut block).unwrap();
        }
        let mut ota = ota.with_timeout(Duration::from_secs(5));
        let mut jb = [0u8; 2048];
        let Job::Ota(job) = ota.next_job(&mut conn, &mut jb).await.unwrap() else {
            panic!("no OTA job");
        };
        let (u0, d0) = bytes();
        ota.download(&mut conn, up, &job, &key).await.unwrap();
        // Until the link is idle.
        let mut last = bytes();
        loop {
            if let Ok(r) = embassy_time::with_timeout(Duration::from_millis(300), conn.poll()).await
            {
                r.unwrap();
            }
            let now = bytes();
            if now == last && conn.all_acknowledged() {
                break;
            }
            last = now;
        }
        let (u1, d1) = bytes();
        (u1 - u0, d1 - d0, ota.stats().requests, ota.block_size())
    });
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    (size as u64, counts.0, counts.1, counts.2, counts.3)
}

const OTA_BEGIN: &str = "<!-- ota-aws:begin (written by tests/ota_aws.rs, OTA_DOCS=1) -->";
const OTA_END: &str = "<!-- ota-aws:end -->";

/// Download efficiency over modem TLS at 1 KiB and 4 KiB blocks; holds the issue's bar (≥ 90 %
/// of the UART line rate in payload bytes at 4 KiB blocks, down direction) and, with
/// `OTA_DOCS=1`, writes the table into docs/ota.md.
#[test]
fn wire_efficiency_of_the_stream_download() {
    let size = 120 * 1024;
    let mut rows = Vec::new();
    for (block, rx, format) in [
        (1024u32, RX_1K, StreamFormat::Cbor),
        (4096, RX_4K, StreamFormat::Cbor),
        (1024, RX_1K, StreamFormat::Json),
        (4096, RX_4K_JSON, StreamFormat::Json),
    ] {
        let (payload, up, down, requests, used) = measure(rx, size, format);
        assert_eq!(used, block, "{format:?} with rx {rx}");
        rows.push((block, format, payload, up, down, requests));
    }
    let mut out = String::new();
    use std::fmt::Write as _;
    writeln!(
        out,
        "Download of a {} KiB image from an AWS MQTT stream over the modem's TLS (BG96 mock, \
         MQTT 5, one data message per block, QoS 0, 32 KiB asked for per request; CBOR, the \
         default, and JSON, whose blocks travel in base64, 4 bytes for 3, so it cannot reach \
         the 90 % the CBOR rows are held to), UART bytes \
         counted at the mock modem from the first GetStream request until the link is idle \
         (job status updates included). *Down* = modem → host, *up* = host → modem. \
         Efficiency = image bytes / UART bytes. Time for 256 KiB at 115 200 baud (10 bits a \
         byte; the busier direction sets the pace) computed from these bytes; the network's round \
         trips (one per request) come on top. Reproduce with:\n\n\
         ```text\nOTA_DOCS=1 cargo test --features mqtt,aws,ota --test ota_aws -- wire_efficiency\n```\n",
        size / 1024
    )
    .unwrap();
    writeln!(out, "| Block | Format | Requests | Down bytes | Up bytes | Efficiency down | Efficiency both | 256 KiB at 115 200 baud |").unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|---|").unwrap();
    for &(block, format, payload, up, down, requests) in &rows {
        let eff_down = payload as f64 / down as f64;
        let eff_both = payload as f64 / (up + down) as f64;
        let secs =
            256.0 * 1024.0 / eff_down.min(payload as f64 / up.max(1) as f64) * 10.0 / 115_200.0;
        writeln!(
            out,
            "| {} KiB | {} | {requests} | {down} | {up} | {:.1} % | {:.1} % | {secs:.1} s |",
            block / 1024,
            format.suffix().to_uppercase(),
            eff_down * 100.0,
            eff_both * 100.0
        )
        .unwrap();
    }
    println!("{out}");
    // The bar holds for CBOR (the default); JSON carries base64, 4/3 of the bytes.
    let (_, _, payload, _, down, _) = rows[1];
    let eff = payload as f64 / down as f64;
    assert!(
        eff >= 0.90,
        "4 KiB blocks: {:.1} % of the UART bytes are image bytes (< 90 %)",
        eff * 100.0
    );
    if std::env::var_os("OTA_DOCS").is_some() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ota.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        let block = format!("{OTA_BEGIN}\n{out}{OTA_END}\n");
        let new_doc = match (doc.find(OTA_BEGIN), doc.find(OTA_END)) {
            (Some(b), Some(e)) if b < e => format!(
                "{}{block}{}",
                &doc[..b],
                // What follows the section keeps its own leading blank lines.
                doc[e + OTA_END.len()..]
                    .strip_prefix('\n')
                    .unwrap_or(&doc[e + OTA_END.len()..])
            ),
            _ if doc.is_empty() => block,
            _ => format!("{}\n\n{block}", doc.trim_end()),
        };
        std::fs::write(&path, new_doc).unwrap();
    }
}

fn dir_of_seeds() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/aws_ota")
}

/// The fuzz target's harness over its seeds and random mutations of them (the fuzz smoke run
/// in CI goes further; this keeps the harness itself from rotting).
#[test]
fn fuzz_harness_runs_over_its_seeds_and_mutations() {
    let dir = dir_of_seeds();
    let mut seeds = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        seeds.push(std::fs::read(e.unwrap().path()).unwrap());
    }
    assert!(seeds.len() >= 8);
    // The seeds are valid inputs: each reaches the end of its parser.
    let seed = |name: &str| std::fs::read(dir_of_seeds().join(name)).unwrap()[1..].to_vec();
    use quectel::cloud::aws::ota::{StreamRejection, decode_block, decode_rejection, parse_job};
    assert_eq!(decode_block(&seed("block")).unwrap().index, 33);
    assert!(matches!(parse_job(&seed("job")), Ok(Job::Ota(_))));
    assert!(matches!(
        parse_job(&seed("job_other")),
        Ok(Job::Other { .. })
    ));
    assert_eq!(
        decode_rejection(&seed("rejected")),
        Ok(StreamRejection::ResourceNotFound)
    );
    assert!(CodeSigningKey::from_certificate_der(&seed("certificate")).is_ok());
    // The JSON seeds (after the selector: a u16 block-buffer size for the block).
    use quectel::cloud::aws::ota::{decode_block_json, decode_rejection_json};
    let mut block = [0u8; 1024];
    let b = decode_block_json(&seed("block_json")[2..], &mut block).unwrap();
    assert_eq!((b.index, b.payload), (33, &b"hello"[..]));
    assert_eq!(
        decode_rejection_json(&seed("rejected_json")),
        Ok(StreamRejection::ResourceNotFound)
    );
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for seed in &seeds {
        quectel::__fuzz::aws_ota(seed);
        for _ in 0..300 {
            let mut m = seed.clone();
            for _ in 0..1 + next() % 4 {
                match next() % 3 {
                    0 if !m.is_empty() => {
                        let i = (next() as usize) % m.len();
                        m[i] = next() as u8;
                    }
                    1 if m.len() > 1 => m.truncate(1 + (next() as usize) % (m.len() - 1)),
                    _ => m.push(next() as u8),
                }
            }
            quectel::__fuzz::aws_ota(&m);
        }
    }
}
