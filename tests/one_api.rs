//! One application, two clouds, two MQTT versions (issue 13): the same application code
//! ([`app`]) connects
//!
//! - to an **Aliyun public-instance stand-in**: mosquitto with user name and password (the
//!   one-device-one-secret HMAC, computed here with the RustCrypto `hmac` crate, not the
//!   crate's code), **TLS 1.2 at most**, an ACL limited to the device's `/sys/{pk}/{dn}/…` and
//!   `/{pk}/{dn}/user/…` topics, over **MQTT 3.1.1** with a **client id of 150 bytes**;
//! - to an **AWS IoT Core stand-in**: mosquitto with mutual TLS 1.3, the certificate's CN as
//!   the thing name and a per-thing ACL, over **MQTT 5**;
//!
//! changing only the [`MqttConfig`]. Both run through the mock modem's TLS sockets. The cloud
//! side is a rumqttc client (Aliyun) or `mosquitto_pub`/`mosquitto_sub` (AWS).
//!
//! Also: TLS on the MCU (TLS 1.3 only) against the TLS-1.2 stand-in is a typed error, refused
//! up front by the Aliyun configuration and, if forced, by the handshake; and a broker restart
//! with QoS 1 messages in flight over MQTT 3.1.1 loses none.
//!
//! Needs `mosquitto`, `mosquitto_passwd`, `mosquitto_pub`, `mosquitto_sub` (Debian `mosquitto`,
//! `mosquitto-clients`; `cargo xtask test` installs them).

#[path = "support/restart.rs"]
mod restart;
mod support;
use restart::count;

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use embassy_time::{Duration, with_timeout};
use hmac::{Hmac, Mac};
use quectel::asynch::{Apn, Config, Modem, Resources, TlsConfig};
use quectel::cloud::CloudError;
use quectel::cloud::aliyun::{Device, MqttCredentials, SignMethod};
use quectel::mqtt::{Mqtt, MqttConfig, MqttError, Outbox, QoS, Transport, Version};
use quectel_mock::{MockModem, Model as MockModel};
use support::broker::{Access, Acl, Broker, BrokerOptions, Responder, SubOptions, Subscriber};
use support::with_modem_in;

const PK: &str = "a1OneApiPk";
const DN: &str = "sensor-0042";
const SECRET: &str = "DevSecret0123456789abcdefABCDEF0";
const THING: &str = "thing-0042";
const CLOUD_USER: &str = "aliyun-cloud";
const CLOUD_PASSWORD: &str = "cloud-password";

fn config() -> Config {
    Config {
        command_gap: Duration::from_millis(1),
        ..support::config()
    }
}

fn mock() -> MockModem {
    MockModem::new(MockModel::Bg96).search_time(StdDuration::from_millis(20))
}

fn resources() -> &'static mut Resources<2048, 2, 4096> {
    Box::leak(Box::new(Resources::new()))
}

/// A client id of 150 bytes with its `|…|` parameters, as Aliyun's SDKs build them: far
/// above MQTT 5 / minimq's 64.
fn long_client_id() -> String {
    let base = format!("{PK}.{DN}.{}", "x".repeat(150 - 60));
    let id = format!("{base}|securemode=2,signmethod=hmacsha256|");
    assert!(id.len() >= 140, "{}", id.len());
    base
}

/// HMAC-SHA256(DeviceSecret, "clientId{id}deviceName{dn}productKey{pk}"), upper-case hex:
/// Aliyun's one-device-one-secret password, computed independently of the crate.
fn aliyun_password(client_id: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("clientId{client_id}deviceName{DN}productKey{PK}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// What Aliyun's public instances allow: TLS ≤ 1.2, user name + password, ACL per device.
fn aliyun_broker(client_id: &str) -> Broker {
    Broker::start(BrokerOptions {
        passwords: Some(vec![
            (format!("{DN}&{PK}"), aliyun_password(client_id)),
            (CLOUD_USER.into(), CLOUD_PASSWORD.into()),
        ]),
        acl: Acl::empty().aliyun_device(PK, DN).full_access(CLOUD_USER),
        password_acl: true,
        tls_max_1_2: true,
        ..BrokerOptions::default()
    })
}

/// Whether `openssl s_client` completes a handshake with 127.0.0.1:`port` limited by
/// `version` (`-tls1_2`, `-tls1_3`).
fn handshakes(port: u16, version: &str) -> bool {
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            version,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl (Debian package `openssl`)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("Cipher is") && !text.contains("Cipher is (NONE)")
}

/// The cloud side of the Aliyun stand-in: records what the device publishes.
/// What the cloud received: (topic, payload).
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

fn aliyun_cloud(broker: &Broker) -> (Responder, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let lines = support::broker::Lines::default();
    let responder = Responder::start(
        "aliyun-one-api",
        broker.port(),
        "aliyun-cloud-one-api".into(),
        Responder::tls(&broker.pki().ca_pem, None),
        Some((CLOUD_USER.into(), CLOUD_PASSWORD.into())),
        // Everything a device may send to the platform, whichever device.
        vec![
            ("/sys/#".into(), rumqttc::QoS::AtLeastOnce),
            ("/+/+/user/#".into(), rumqttc::QoS::AtLeastOnce),
        ],
        lines,
        None,
        move |_, msg| {
            s.lock()
                .unwrap()
                .push((msg.topic.clone(), msg.payload.to_vec()))
        },
        StdDuration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (responder, seen)
}

/// The application: the customer's flow, the same for every cloud. Subscribes to `down`
/// (again after every fresh session), connects, publishes a QoS 1 reading on `up`, waits for
/// its PUBACK, tells the cloud it is listening (`listening`), and returns the first message
/// the cloud sends down.
async fn app(
    modem: &Modem<'_>,
    config: MqttConfig<'_>,
    up: &str,
    down: &str,
    listening: impl FnOnce(),
) -> Result<(String, Vec<u8>), MqttError> {
    let mut buffer = [0u8; 4096];
    let mut mqtt = Mqtt::new(config, &mut buffer, 2048)?;
    mqtt.subscribe_on_connect(down, QoS::AtLeastOnce)?;
    let mut conn = mqtt.connect(modem).await?;
    conn.publish(up, br#"{"temperature":21.5}"#, QoS::AtLeastOnce)
        .await?;
    while !conn.all_acknowledged() {
        conn.poll().await?;
    }
    listening();
    let msg = conn.recv().await?;
    let got = (msg.topic().to_string(), msg.payload().to_vec());
    conn.disconnect().await?;
    Ok(got)
}

#[test]
fn the_same_application_reaches_aliyun_over_3_1_1_and_aws_over_5() {
    // --- Aliyun: one device one secret, public instance, MQTT 3.1.1, long client id, TLS 1.2.
    let base = long_client_id();
    let broker = aliyun_broker(&base);
    let (cloud, seen) = aliyun_cloud(&broker);
    let device = Device::new(PK, DN).unwrap();
    let creds = MqttCredentials::builder(device, SECRET)
        .client_id(&base)
        .sign_method(SignMethod::HmacSha256)
        .build()
        .unwrap();
    assert!(creds.client_id().len() > 140, "{}", creds.client_id().len());
    let up = device.property_post().unwrap().to_string();
    let down = device.property_set().unwrap().to_string();
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let client = cloud.client().clone();
    let down2 = down.clone();
    let got = with_modem_in(resources(), config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let transport = Transport::ModemTls {
            ssl_ctx: 1,
            tls: TlsConfig::new(ca.as_bytes()),
        };
        let config = creds
            .mqtt_config("localhost", port, transport, Apn::new("internet"))
            .unwrap();
        assert_eq!(config.version, Version::V311);
        app(m, config, &up, &down, || {
            client
                .publish(
                    down2.clone(),
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    br#"{"id":"7","params":{"on":1}}"#.to_vec(),
                )
                .unwrap();
        })
        .await
        .unwrap()
    });
    assert_eq!(got.0, down);
    assert_eq!(got.1, br#"{"id":"7","params":{"on":1}}"#);
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(t, p)| *t == device.property_post().unwrap().as_str()
                && p == br#"{"temperature":21.5}"#),
        "{seen:?}"
    );
    // The stand-in really is TLS 1.2 at most (so the modem's TLS above negotiated 1.2).
    assert!(
        !handshakes(port, "-tls1_3"),
        "the Aliyun stand-in accepts TLS 1.3"
    );
    assert!(
        handshakes(port, "-tls1_2"),
        "the Aliyun stand-in refuses TLS 1.2"
    );
    drop(cloud);

    // --- AWS: MQTT 5, mutual TLS 1.3, the thing name as client id. Only the configuration
    // differs.
    let broker = Broker::start(
        BrokerOptions::default()
            .grant(THING, Access::ReadWrite, "sensors/+/reading")
            .grant(THING, Access::ReadWrite, "commands/+"),
    );
    let thing = broker.client(THING);
    let observer = broker.observer();
    let watcher = Subscriber::start(&broker, &observer, "sensors/#");
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let up = format!("sensors/{THING}/reading");
    let down = format!("commands/{THING}");
    let got = with_modem_in(resources(), config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let tls = TlsConfig::new(ca.as_bytes())
            .with_client_identity(thing.cert_pem.as_bytes(), thing.key_pem.as_bytes());
        let config = MqttConfig::new(
            "localhost",
            port,
            THING,
            Transport::ModemTls { ssl_ctx: 1, tls },
            Apn::new("internet"),
        );
        assert_eq!(config.version, Version::V5);
        app(m, config, &up, &down, || {
            let b = broker.publish(&observer, &down, b"reboot", 1);
            assert!(b.ok(), "{:?}", b.run.stderr);
        })
        .await
        .unwrap()
    });
    assert_eq!(got, (format!("commands/{THING}"), b"reboot".to_vec()));
    let seen = watcher.wait_for(1, StdDuration::from_secs(10));
    assert!(
        seen.iter()
            .any(|(t, p)| *t == format!("sensors/{THING}/reading")
                && p == br#"{"temperature":21.5}"#),
        "{seen:?}"
    );
}

#[test]
fn an_aliyun_device_outside_its_acl_gets_nothing_and_mqtt5_refuses_the_long_client_id() {
    let base = long_client_id();
    let broker = aliyun_broker(&base);
    let (cloud, seen) = aliyun_cloud(&broker);
    let device = Device::new(PK, DN).unwrap();
    let creds = MqttCredentials::builder(device, SECRET)
        .client_id(&base)
        .build()
        .unwrap();
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    with_modem_in(resources(), config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let transport = Transport::ModemTls {
            ssl_ctx: 1,
            tls: TlsConfig::new(ca.as_bytes()),
        };
        let mut config = creds
            .mqtt_config("localhost", port, transport, Apn::new("internet"))
            .unwrap();
        // MQTT 5 cannot carry this client id: refused before anything is sent.
        config.version = Version::V5;
        let mut buffer = [0u8; 4096];
        assert!(matches!(
            Mqtt::new(config, &mut buffer, 2048),
            Err(MqttError::ClientIdTooLong { max: 64, .. })
        ));
        config.version = Version::V311;
        let mut mqtt = Mqtt::new(config, &mut buffer, 2048).unwrap();
        let mut conn = mqtt.connect(m).await.unwrap();
        // Another device's topic: the broker drops it (Aliyun disconnects; either way it
        // never reaches anyone).
        let other = format!("/sys/{PK}/other-device/thing/event/property/post");
        conn.publish(&other, b"{}", QoS::AtMostOnce).await.unwrap();
        let own = device.property_post().unwrap();
        conn.publish(&own, b"{\"ok\":1}", QoS::AtLeastOnce)
            .await
            .unwrap();
        while !conn.all_acknowledged() {
            with_timeout(Duration::from_secs(10), conn.poll())
                .await
                .expect("PUBACK")
                .unwrap();
        }
    });
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    while std::time::Instant::now() < deadline && seen.lock().unwrap().is_empty() {
        std::thread::sleep(StdDuration::from_millis(50));
    }
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().any(|(_, p)| p == b"{\"ok\":1}"), "{seen:?}");
    assert!(
        !seen.iter().any(|(t, _)| t.contains("other-device")),
        "{seen:?}"
    );
    drop(cloud);
}

#[test]
fn mcu_tls_to_a_tls_1_2_server_is_a_typed_error() {
    use quectel::tls::{McuTlsConfig, TlsBuffers};
    let base = long_client_id();
    let broker = aliyun_broker(&base);
    let device = Device::new(PK, DN).unwrap();
    let creds = MqttCredentials::builder(device, SECRET)
        .client_id(&base)
        .build()
        .unwrap();
    // Refused up front: TLS credentials over plain TCP means TLS on the MCU, TLS 1.3 only.
    assert_eq!(
        creds
            .mqtt_config("localhost", 1883, Transport::Tcp, Apn::new("internet"))
            .err(),
        Some(CloudError::TlsVersion)
    );
    // Forced anyway (an MQTT configuration written by hand): the handshake fails with a TLS
    // error, not a panic or a hang.
    let ca_der = broker.pki().ca_der.clone();
    let port = broker.port();
    let tls_buffers: &'static mut TlsBuffers = Box::leak(Box::new(TlsBuffers::new()));
    let err = with_modem_in(resources(), config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let mut cfg = MqttConfig::new(
            "127.0.0.1",
            port,
            creds.client_id(),
            Transport::Tcp,
            Apn::new("internet"),
        );
        cfg.version = Version::V311;
        cfg.auth = Some((creds.username(), creds.password()));
        let tls = McuTlsConfig::new("localhost", &ca_der);
        let mut buffer = [0u8; 4096];
        let mut mqtt = Mqtt::new(cfg, &mut buffer, 2048).unwrap();
        match with_timeout(
            Duration::from_secs(20),
            mqtt.connect_mcu_tls(m, tls_buffers, &tls, rand_core::OsRng),
        )
        .await
        {
            Ok(Ok(_)) => panic!("TLS 1.3 client connected to a TLS 1.2 server"),
            Ok(Err(e)) => e,
            Err(_) => panic!("the handshake hung"),
        }
    });
    assert!(matches!(err, MqttError::Tls(_)), "{err:?}");
}

#[test]
fn mqtt_3_1_1_broker_restart_with_qos1_in_flight_loses_nothing() {
    const TOPIC: &str = "sensors/thing-0042/reading";
    let broker = Broker::start(
        BrokerOptions::default()
            .grant(THING, Access::ReadWrite, TOPIC)
            .persistence(true),
    );
    let thing = broker.client(THING);
    let observer = broker.observer();
    let watcher = Subscriber::start_with(
        &broker,
        &observer,
        &[TOPIC],
        SubOptions {
            client_id: Some("cloud-watcher-311".into()),
            persistent: true,
            ..SubOptions::default()
        },
    );
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let outbox: &'static Outbox<16, 64> = Box::leak(Box::new(Outbox::new()));
    let total = 12;
    let resumed = with_modem_in(resources(), config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let tls = TlsConfig::new(ca.as_bytes())
            .with_client_identity(thing.cert_pem.as_bytes(), thing.key_pem.as_bytes());
        let mut cfg = MqttConfig::new(
            "localhost",
            port,
            THING,
            Transport::ModemTls { ssl_ctx: 1, tls },
            Apn::new("internet"),
        );
        cfg.version = Version::V311;
        // Clean session = 0: the broker keeps the session (and its persistence keeps it across
        // the restart).
        cfg.session_expiry_s = 3600;
        cfg.backoff_min = Duration::from_millis(200);
        cfg.backoff_max = Duration::from_secs(2);
        let mut buf = [0u8; 4096];
        let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
        let connections = restart::across_broker_restart(
            m, &mut mqtt, outbox, &broker, &watcher, TOPIC, "m311-", total,
        )
        .await;
        assert!(
            outbox.is_empty(),
            "{} messages left in the outbox",
            outbox.len()
        );
        connections
    });
    assert!(resumed.len() >= 2, "never reconnected: {resumed:?}");
    assert!(
        resumed.iter().skip(1).any(|r| *r),
        "the broker never resumed the 3.1.1 session: {resumed:?}"
    );
    let seen = watcher.messages();
    for i in 0..total {
        assert_eq!(
            count(&seen, &format!("m311-{i}")),
            1,
            "m311-{i} in {seen:?}"
        );
    }
}
