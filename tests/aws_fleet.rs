//! AWS IoT fleet provisioning by claim, end to end: the device (this crate over the mock
//! modem, TLS in the modem) against mosquitto set up like AWS IoT Core, with the provisioning
//! "service" played by `FleetResponder` of `support/broker.rs` — an MQTT client thread (rumqttc)
//! that issues certificates with rcgen, not this crate.
//!
//! The broker's ACL gives the claim certificate only the provisioning topics, like AWS's claim
//! policy. Certificates the responder issues have the certificate id as CN and get
//! `dt/<thing>/#` in the ACL only when `RegisterThing` succeeds (the broker reloads its ACL),
//! so a new certificate can publish only after registration, as on AWS.
//!
//! Needs `mosquitto`, `mosquitto-clients` and `openssl` (`cargo xtask test` installs them).

mod support;

use std::time::Duration as StdDuration;

use embassy_time::Duration;
use quectel::asynch::{Apn, Config, Modem, Resources, TlsConfig};
use quectel::cloud::CloudError;
use quectel::cloud::aws::{
    DeviceIdentity, DeviceKey, Endpoint, FleetProvisioning, IdentityStore, Operation,
    RamIdentityStore,
};
use quectel::mqtt::{Mqtt, QoS};
use quectel_mock::{MockModem, Model as MockModel};
use support::broker::{Acl, Broker, BrokerOptions, ClientId, FleetResponder, Subscriber};
use support::with_modem_in;

const CLAIM: &str = "fleet-claim";
const SERVICE: &str = "aws-fleet-service";
const TEMPLATE: &str = "QuectelFleetTemplate";
const SERIAL: &str = "SN0001";
const THING: &str = "thing-SN0001";
/// Large enough for every answer here (the RSA key of CreateKeysAndCertificate included).
const RX: usize = 6144;

type Res = Resources<2048, 2, 8192>;

fn config() -> Config {
    Config {
        command_gap: Duration::from_millis(1),
        ..support::config()
    }
}

fn mock() -> MockModem {
    MockModem::new(MockModel::Bg96)
        .imei("861234567890123")
        .search_time(StdDuration::from_millis(20))
}

/// The AWS-like broker with the claim policy, the service and the observer, and the responder.
fn cloud() -> (Broker, FleetResponder) {
    let acl = Acl::empty()
        .fleet_provisioning(CLAIM, TEMPLATE)
        .full_access(SERVICE)
        .full_access(Acl::OBSERVER);
    let broker = Broker::start(BrokerOptions::default().acl(acl));
    let service = broker.client(SERVICE);
    let responder = FleetResponder::start(&broker, &service, TEMPLATE)
        .unwrap_or_else(|e| panic!("fleet responder: {e}"));
    (broker, responder)
}

/// A host-side identity (for `mosquitto_pub`) from what the device obtained.
/// MQTT settings for a connection with the claim certificate, as `client_id`, to the broker on
/// `port` (modem TLS, SSL context 1).
fn claim_config<'a>(
    port: u16,
    ca: &'a str,
    claim: &'a ClientId,
    client_id: &'a str,
) -> quectel::mqtt::MqttConfig<'a> {
    let endpoint = Endpoint::new("localhost").unwrap().with_port(port);
    let tls = TlsConfig::new(ca.as_bytes())
        .with_client_identity(claim.cert_pem.as_bytes(), claim.key_pem.as_bytes());
    endpoint
        .mqtt_config(
            client_id,
            endpoint.modem_transport(1, tls).unwrap(),
            Apn::new("internet"),
        )
        .unwrap()
}

fn host_identity(cn: &str, cert_pem: &str, key_pem: &str) -> ClientId {
    let mut der = vec![0u8; cert_pem.len()];
    let n = quectel::pem::decode(cert_pem.as_bytes(), Some("CERTIFICATE"), &mut der)
        .unwrap()
        .len();
    der.truncate(n);
    ClientId {
        cn: cn.to_string(),
        cert_pem: cert_pem.to_string(),
        cert_der: der,
        key_pem: key_pem.to_string(),
        key_der: Vec::new(),
        key_sec1_pem: key_pem.to_string(),
        key_sec1_der: Vec::new(),
    }
}

struct Rng;
impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        rand_core::OsRng.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::OsRng.next_u64()
    }
    fn fill_bytes(&mut self, d: &mut [u8]) {
        rand_core::OsRng.fill_bytes(d)
    }
    fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
        rand_core::OsRng.try_fill_bytes(d)
    }
}
impl rand_core::CryptoRng for Rng {}

/// Reconnects with `identity` (TLS context 2, client id = thing name), publishes `payload` to
/// `dt/<thing>/telemetry` with QoS 1 and waits for the PUBACK.
async fn publish_as_thing(
    m: &Modem<'static>,
    port: u16,
    ca: &[u8],
    identity: &DeviceIdentity<'_>,
    payload: &[u8],
) {
    let endpoint = Endpoint::new("localhost").unwrap().with_port(port);
    let cfg = identity
        .mqtt_config(&endpoint, ca, 2, Apn::new("internet"))
        .unwrap();
    assert_eq!(cfg.client_id, identity.thing_name);
    let mut buf = [0u8; 4096];
    let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
    let mut conn = mqtt
        .connect(m)
        .await
        .expect("connect with the new identity");
    let topic = format!("dt/{}/telemetry", identity.thing_name);
    conn.publish(&topic, payload, QoS::AtLeastOnce)
        .await
        .unwrap();
    while !conn.all_acknowledged() {
        embassy_time::with_timeout(Duration::from_secs(10), conn.poll())
            .await
            .expect("PUBACK within 10 s")
            .unwrap();
    }
    conn.disconnect().await.unwrap();
}

#[test]
fn csr_is_a_valid_pkcs10_request_and_the_key_round_trips() {
    support::broker::require(&["openssl"]);
    let dir = std::env::temp_dir().join(format!("quectel-aws-csr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for cn in ["d", "device-SN0001", &"x".repeat(64)] {
        let key = DeviceKey::generate(&mut Rng);
        let mut pem = [0u8; quectel::cloud::aws::MAX_CSR_PEM_LEN];
        let n = key.csr_pem(cn, &mut pem).unwrap();
        let csr = dir.join("device.csr");
        std::fs::write(&csr, &pem[..n]).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["req", "-verify", "-noout", "-text", "-in"])
            .arg(&csr)
            .output()
            .expect("run openssl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("verify OK"), "{text}");
        assert!(text.contains(&format!("CN = {cn}")), "{text}");
        assert!(text.contains("prime256v1"), "{text}");
        assert!(text.contains("ecdsa-with-SHA256"), "{text}");
        // The public key in the CSR is the key's.
        let out = std::process::Command::new("openssl")
            .args(["req", "-noout", "-pubkey", "-in"])
            .arg(&csr)
            .output()
            .unwrap();
        let mut spki = [0u8; 128];
        let m = quectel::pem::decode(&out.stdout, Some("PUBLIC KEY"), &mut spki)
            .unwrap()
            .len();
        assert_eq!(&spki[m - 65..m], &key.public_key_uncompressed()[..]);

        // SEC1: p256 reads it back, and so does OpenSSL.
        let mut der = [0u8; quectel::cloud::aws::SEC1_DER_LEN];
        let d = key.to_sec1_der(&mut der).unwrap();
        let parsed = p256::SecretKey::from_sec1_der(&der[..d]).expect("p256 parses our SEC1");
        let again = DeviceKey::from_scalar_bytes(&parsed.to_bytes()).unwrap();
        assert_eq!(
            again.public_key_uncompressed(),
            key.public_key_uncompressed()
        );
        let mut sec1_pem = [0u8; quectel::cloud::aws::SEC1_PEM_LEN];
        let p = key.to_sec1_pem(&mut sec1_pem).unwrap();
        let key_file = dir.join("device.key");
        std::fs::write(&key_file, &sec1_pem[..p]).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["ec", "-check", "-noout", "-in"])
            .arg(&key_file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("EC Key valid"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn claim_then_csr_then_register_then_publish_as_the_thing() {
    let (broker, responder) = cloud();
    let claim = broker.client(CLAIM);
    let observer = broker.observer();
    let watcher = Subscriber::start(&broker, &observer, "dt/#");
    assert!(watcher.wait_subscriptions(1, StdDuration::from_secs(10)));
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();

    // The claim certificate alone may not publish outside the provisioning topics.
    let denied = broker.publish(
        &claim,
        &format!("dt/{THING}/telemetry"),
        "from the claim",
        1,
    );
    assert_eq!(denied.puback, Some(0x87), "{:?}", denied.run);

    let res: &'static mut Res = Box::leak(Box::new(Resources::new()));
    let mut store = RamIdentityStore::<4096>::new();
    let (thing, cert_id) = with_modem_in(res, config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let cfg = claim_config(port, &ca, &claim, "claim-SN0001");
        let mut mqtt_buf = vec![0u8; 2 * RX];
        let mut mqtt = Mqtt::new(cfg, &mut mqtt_buf, RX).unwrap();
        let mut conn = mqtt.connect(m).await.expect("claim connection");
        let mut fleet = FleetProvisioning::new(TEMPLATE)
            .unwrap()
            .with_timeout(Duration::from_secs(15))
            .with_rx_size(RX);

        let key = DeviceKey::generate(&mut Rng);
        let mut cert_buf = [0u8; 4096];
        let issued = fleet
            .create_certificate_from_csr(&mut conn, &key, "device-SN0001", &mut cert_buf)
            .await
            .expect("CreateCertificateFromCsr");
        assert!(
            issued
                .certificate_pem
                .starts_with("-----BEGIN CERTIFICATE-----\n")
        );
        assert!(issued.private_key_pem.is_none());
        assert_eq!(issued.certificate_id.len(), 64);
        let mut key_pem = [0u8; quectel::cloud::aws::SEC1_PEM_LEN];
        let n = key.to_sec1_pem(&mut key_pem).unwrap();
        let key_pem = std::str::from_utf8(&key_pem[..n]).unwrap();

        // Before RegisterThing the new certificate connects but may publish nowhere.
        let pending = host_identity(issued.certificate_id, issued.certificate_pem, key_pem);
        let early = broker.publish(&pending, &format!("dt/{THING}/telemetry"), "too early", 1);
        assert_eq!(early.connack, Some(0), "{:?}", early.run);
        assert_eq!(early.puback, Some(0x87), "{:?}", early.run);

        let mut reg_buf = [0u8; 1024];
        let registered = fleet
            .register_thing(
                &mut conn,
                issued.ownership_token,
                &[("SerialNumber", SERIAL), ("Model", "BG96")],
                &mut reg_buf,
            )
            .await
            .expect("RegisterThing");
        assert_eq!(registered.thing_name, THING);
        assert_eq!(
            registered.device_configuration.get("telemetryTopic"),
            Some(format!("dt/{THING}/telemetry").as_str())
        );
        let identity = DeviceIdentity {
            thing_name: registered.thing_name,
            certificate_id: issued.certificate_id,
            certificate_pem: issued.certificate_pem,
            private_key_pem: key_pem,
        };
        store.save(&identity).unwrap();
        conn.disconnect().await.unwrap();
        drop(mqtt);

        // "Next boot": load from the store, reconnect as the thing and publish.
        let mut load_buf = [0u8; 4096];
        let loaded = store.load(&mut load_buf).unwrap().expect("stored identity");
        assert_eq!(loaded, identity);
        publish_as_thing(m, port, ca.as_bytes(), &loaded, b"hello from the thing").await;
        (
            loaded.thing_name.to_string(),
            loaded.certificate_id.to_string(),
        )
    });
    assert_eq!(thing, THING);
    assert!(
        responder
            .lines()
            .contains(&format!("REGISTERED {THING} {cert_id}")),
        "{:?}",
        responder.lines()
    );
    let seen = watcher.wait_for(1, StdDuration::from_secs(10));
    assert!(
        seen.iter()
            .any(|(t, p)| t == &format!("dt/{THING}/telemetry") && p == b"hello from the thing"),
        "{seen:?}"
    );
    // The claim still may not publish there (its policy did not change).
    let denied = broker.publish(
        &claim,
        &format!("dt/{THING}/telemetry"),
        "from the claim",
        1,
    );
    assert_eq!(denied.puback, Some(0x87));
    assert_eq!(watcher.messages().len(), 1);
}

#[test]
fn create_keys_and_certificate_then_register_in_one_call() {
    let (broker, responder) = cloud();
    let claim = broker.client(CLAIM);
    let observer = broker.observer();
    let watcher = Subscriber::start(&broker, &observer, "dt/#");
    assert!(watcher.wait_subscriptions(1, StdDuration::from_secs(10)));
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let res: &'static mut Res = Box::leak(Box::new(Resources::new()));
    let mut store = RamIdentityStore::<6144>::new();
    let key_kind = with_modem_in(res, config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let cfg = claim_config(port, &ca, &claim, "claim-SN0002");
        let mut mqtt_buf = vec![0u8; 2 * RX];
        let mut mqtt = Mqtt::new(cfg, &mut mqtt_buf, RX).unwrap();
        let mut conn = mqtt.connect(m).await.expect("claim connection");
        let mut fleet = FleetProvisioning::new(TEMPLATE)
            .unwrap()
            .with_timeout(Duration::from_secs(15))
            .with_rx_size(RX);
        let mut buf = vec![0u8; quectel::cloud::aws::RECOMMENDED_KEYS_BUFFER];
        let done = fleet
            .provision_with_new_keys(
                &mut conn,
                &[("SerialNumber", "SN0002")],
                &mut store,
                &mut buf,
            )
            .await
            .expect("CreateKeysAndCertificate + RegisterThing");
        assert_eq!(done.identity.thing_name, "thing-SN0002");
        // Saved in one call, and the private key is not in Debug output.
        let dbg = format!("{:?}", done);
        assert!(!dbg.contains("PRIVATE KEY"), "{dbg}");
        let mut load_buf = vec![0u8; 6144];
        assert_eq!(store.load(&mut load_buf).unwrap(), Some(done.identity));
        conn.disconnect().await.unwrap();
        drop(mqtt);
        publish_as_thing(m, port, ca.as_bytes(), &done.identity, b"rsa thing says hi").await;
        done.identity
            .private_key_pem
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    });
    assert_eq!(key_kind, "-----BEGIN RSA PRIVATE KEY-----");
    assert!(
        responder
            .lines()
            .iter()
            .any(|l| l.starts_with("ISSUED ") && l.ends_with(" keys")),
        "{:?}",
        responder.lines()
    );
    let seen = watcher.wait_for(1, StdDuration::from_secs(10));
    assert!(
        seen.iter()
            .any(|(t, p)| t == "dt/thing-SN0002/telemetry" && p == b"rsa thing says hi"),
        "{seen:?}"
    );
}

#[test]
fn rejected_too_large_and_dropped_answers_are_typed_errors() {
    let (broker, responder) = cloud();
    let claim = broker.client(CLAIM);
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let res: &'static mut Res = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let cfg = claim_config(port, &ca, &claim, "claim-SN0003");
        let mut mqtt_buf = vec![0u8; 2 * RX];
        let mut mqtt = Mqtt::new(cfg, &mut mqtt_buf, RX).unwrap();
        let mut conn = mqtt.connect(m).await.expect("claim connection");
        let mut fleet = FleetProvisioning::new(TEMPLATE)
            .unwrap()
            .with_timeout(Duration::from_secs(15));

        // A bad ownership token: 400 on /rejected, with the error code kept.
        let mut buf = [0u8; 1024];
        let err = fleet
            .register_thing(
                &mut conn,
                "not-a-token",
                &[("SerialNumber", "SN0003")],
                &mut buf,
            )
            .await
            .err();
        assert_eq!(err, Some(CloudError::Rejected { status: 400 }));
        let r = fleet.last_rejection().expect("rejection details");
        assert_eq!(r.operation, Operation::RegisterThing);
        assert_eq!(r.error_code, "InvalidCertificateOwnershipToken");
        assert!(!r.error_message.is_empty());

        // An answer larger than the buffer it is copied into: ResponseTooLarge, with its size.
        let key = DeviceKey::generate(&mut Rng);
        let mut small = [0u8; 512];
        let err = fleet
            .create_certificate_from_csr(&mut conn, &key, "device-SN0003", &mut small)
            .await
            .err();
        let Some(CloudError::ResponseTooLarge { needed, capacity }) = err else {
            panic!("expected ResponseTooLarge, got {err:?}");
        };
        assert_eq!(capacity, 512);
        assert!(needed > 512, "{needed}");
        // The same request with room enough works on the same connection. The new answer is a
        // new certificate and token, whose lengths differ by a few bytes (the ECDSA signature's
        // DER length varies), so allow a small margin over the size reported.
        let mut big = vec![0u8; needed + 64];
        let issued = fleet
            .create_certificate_from_csr(&mut conn, &key, "device-SN0003", &mut big)
            .await
            .expect("fits with the reported size plus a margin");
        let used = issued.certificate_id.len()
            + issued.certificate_pem.len()
            + issued.ownership_token.len();
        assert!(
            used.abs_diff(needed) <= 64,
            "reported {needed}, second answer needed {used}"
        );

        // The up-front check against the receive buffer: no request is sent.
        let mut checked = FleetProvisioning::new(TEMPLATE).unwrap().with_rx_size(1024);
        let err = checked
            .create_keys_and_certificate(&mut conn, &mut big)
            .await
            .err();
        assert_eq!(
            err,
            Some(CloudError::ResponseTooLarge {
                needed: Operation::CreateKeysAndCertificate.recommended_rx_size(),
                capacity: 1024
            })
        );
        conn.disconnect().await.unwrap();
        drop(mqtt);

        // A receive buffer too small for the answer: the broker drops the packet (minimq
        // announced the buffer as Maximum Packet Size), so it ends in NoResponse.
        let cfg = claim_config(port, &ca, &claim, "claim-SN0004");
        let mut mqtt_buf = vec![0u8; 4096];
        let mut mqtt = Mqtt::new(cfg, &mut mqtt_buf, 512).unwrap();
        let mut conn = mqtt.connect(m).await.expect("claim connection");
        let mut fleet = FleetProvisioning::new(TEMPLATE)
            .unwrap()
            .with_timeout(Duration::from_secs(3));
        let started = std::time::Instant::now();
        let err = fleet
            .create_certificate_from_csr(&mut conn, &key, "device-SN0004", &mut big)
            .await
            .err();
        assert_eq!(err, Some(CloudError::NoResponse));
        assert!(started.elapsed() < StdDuration::from_secs(10));
    });
    let lines = responder.lines();
    assert!(
        lines.contains(&"REJECTED RegisterThing 400 InvalidCertificateOwnershipToken".to_string()),
        "{lines:?}"
    );
    // The responder did answer the last request: the broker dropped it.
    assert_eq!(
        lines.iter().filter(|l| l.ends_with(" csr")).count(),
        3,
        "{lines:?}"
    );
}
