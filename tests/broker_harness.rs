//! Proves the AWS-IoT-like Mosquitto harness (`tests/support/broker.rs`) with
//! Mosquitto's own command-line clients and `openssl s_client` only: nothing
//! here uses the `quectel` crate.
//!
//! Needs `mosquitto`, `mosquitto-clients` and `openssl` (CI installs them).

#[path = "support/broker.rs"]
mod broker;

use std::time::{Duration, Instant};

use broker::{Access, Broker, BrokerOptions, PubOptions, SubOptions, Subscriber, publish_with};

const IMEI: &str = "867929068012345";
const HELLO: &[u8] = b"Hello, AWS Cloud!";
const WAIT: Duration = Duration::from_secs(10);
/// How long "nothing arrives" is observed.
const QUIET: Duration = Duration::from_millis(700);

fn quiet(_sub: &Subscriber) {
    std::thread::sleep(QUIET);
}

#[test]
fn thing_publishes_to_its_topic_and_subscriber_gets_it_once() {
    let broker = Broker::start(BrokerOptions::default());
    let thing = broker.client("thing-0001");
    let sub = Subscriber::start(&broker, &broker.observer(), "thing-0001/#");
    assert_eq!(sub.granted(), vec![1]);

    let p = broker.publish(&thing, "thing-0001/hello", HELLO, 1);
    assert!(p.ok(), "{p:#?}");
    assert_eq!(p.puback, Some(0));

    let got = sub.wait_for(1, WAIT);
    quiet(&sub);
    assert_eq!(
        sub.messages(),
        vec![("thing-0001/hello".to_string(), HELLO.to_vec())],
        "exactly one message: {got:?}"
    );
    // The CN became the user name.
    assert!(
        broker.log().contains("u'thing-0001'"),
        "{}",
        broker.log_tail(20)
    );
}

#[test]
fn customer_flow_imei_topic_with_grant_and_binary_payloads() {
    let broker =
        Broker::start(BrokerOptions::default().grant("thing-0001", Access::ReadWrite, IMEI));
    let thing = broker.client("thing-0001");
    // The device subscribes to its IMEI (here: a mosquitto_sub as the thing).
    let device = Subscriber::start(&broker, &thing, IMEI);
    assert_eq!(device.granted(), vec![1]);

    let cloud = broker.observer();
    let binary: Vec<u8> = (0..=255u8).chain([b'\n', 0, b' ']).collect();
    assert!(broker.publish(&cloud, IMEI, HELLO, 1).ok());
    assert!(broker.publish(&cloud, IMEI, &binary, 1).ok());
    assert!(broker.publish(&cloud, IMEI, b"", 1).ok());
    let got = device.wait_for(3, WAIT);
    assert_eq!(
        got,
        vec![
            (IMEI.to_string(), HELLO.to_vec()),
            (IMEI.to_string(), binary),
            (IMEI.to_string(), Vec::new()),
        ]
    );

    // The thing may publish to its IMEI topic too; another thing may not.
    assert!(broker.publish(&thing, IMEI, HELLO, 1).ok());
    let other = broker.client("thing-0002");
    let denied = broker.publish(&other, IMEI, HELLO, 1);
    assert_eq!(denied.puback, Some(0x87), "{denied:#?}");
    device.wait_for(4, WAIT);
    quiet(&device);
    assert_eq!(device.messages().len(), 4);
}

#[test]
fn publishing_to_another_things_topic_is_denied() {
    let broker = Broker::start(BrokerOptions::default());
    let sub = Subscriber::start(&broker, &broker.observer(), "#");
    let intruder = broker.client("thing-0002");

    let p = broker.publish(&intruder, "thing-0001/hello", HELLO, 1);
    assert_eq!(p.connack, Some(0), "{p:#?}");
    assert_eq!(p.puback, Some(0x87), "PUBACK Not authorized: {p:#?}");
    assert!(!p.ok());
    // mosquitto_pub exits 0 even then; it only warns.
    assert!(p.run.stderr.contains("Not authorized"), "{p:#?}");

    // QoS 0: no PUBACK, silently dropped.
    let p0 = broker.publish(&intruder, "thing-0001/hello", HELLO, 0);
    assert_eq!(p0.connack, Some(0));

    // Subscribing to another thing's topic: Mosquitto grants the SUBSCRIBE
    // (unlike AWS) but delivers nothing.
    let spy = Subscriber::start(&broker, &intruder, "thing-0001/#");
    assert_eq!(spy.granted(), vec![1]);
    assert!(
        broker
            .publish(&broker.client("thing-0001"), "thing-0001/x", "y", 1)
            .ok()
    );
    sub.wait_for(1, WAIT);
    quiet(&sub);
    assert_eq!(
        sub.messages(),
        vec![("thing-0001/x".to_string(), b"y".to_vec())]
    );
    assert!(spy.messages().is_empty());
}

#[test]
fn client_without_certificate_is_refused() {
    let broker = Broker::start(BrokerOptions::default());
    let thing = broker.client("thing-0001");
    let p = publish_with(
        &broker,
        &thing,
        "thing-0001/x",
        HELLO,
        &PubOptions {
            with_cert: false,
            ..PubOptions::default()
        },
    );
    assert_eq!(p.connack, None, "{p:#?}");
    assert!(!p.run.status.unwrap().success(), "{p:#?}");
    // The broker saw a TLS handshake without a client certificate. (With TLS 1.3
    // the client finishes its side of the handshake before the server's alert,
    // so `openssl s_client` itself reports success: check the broker.)
    assert!(
        broker.log().contains("peer did not return a certificate"),
        "{}",
        broker.log_tail(20)
    );
}

#[test]
fn tls_1_2_is_refused_and_1_3_is_used() {
    let broker = Broker::start(BrokerOptions::default());
    let thing = broker.client("thing-0001");
    let r = broker::s_client(&broker, Some(&thing), &["-tls1_2"]);
    assert!(!r.status.unwrap().success(), "{r:#?}");
    assert!(r.stderr.contains("protocol version"), "{r:#?}");

    let r = broker::s_client(&broker, Some(&thing), &[]);
    assert!(r.stdout.contains("TLSv1.3"), "{r:#?}");
    assert!(r.stdout.contains("Verify return code: 0 (ok)"), "{r:#?}");
    // No ALPN on Mosquitto listeners.
    let r = broker::s_client(&broker, Some(&thing), &["-alpn", "x-amzn-mqtt-ca"]);
    assert!(r.stdout.contains("No ALPN negotiated"), "{r:#?}");
}

#[test]
fn certificate_from_unrelated_ca_is_refused() {
    let broker = Broker::start(BrokerOptions::default());
    let foreign = broker.pki().foreign_client("thing-0001");
    let sub = Subscriber::start(&broker, &broker.observer(), "#");
    let p = broker.publish(&foreign, "thing-0001/x", HELLO, 1);
    assert_eq!(p.connack, None, "{p:#?}");
    assert!(!p.run.status.unwrap().success(), "{p:#?}");
    quiet(&sub);
    assert!(sub.messages().is_empty());
}

#[test]
fn qos_2_is_refused_for_mqtt5_clients() {
    let broker = Broker::start(BrokerOptions::default());
    let sub = Subscriber::start(&broker, &broker.observer(), "#");
    let p = broker.publish(&broker.client("thing-0001"), "thing-0001/x", HELLO, 2);
    assert!(!p.ok());
    assert!(p.run.stderr.contains("QoS not supported"), "{p:#?}");
    quiet(&sub);
    assert!(sub.messages().is_empty());
}

#[test]
fn restart_keeps_the_port_and_clients_reconnect() {
    let broker = Broker::start(BrokerOptions::default());
    let port = broker.port();
    let thing = broker.client("thing-0001");
    let sub = Subscriber::start(&broker, &broker.observer(), "thing-0001/#");

    let t = Instant::now();
    broker.restart();
    let took = t.elapsed();
    assert_eq!(broker.port(), port);
    assert_eq!(broker.starts(), 2);
    assert!(broker.is_running());
    eprintln!("restart took {took:?}");

    // mosquitto_sub reconnects by itself and subscribes again (no session
    // survived: persistence is off).
    assert!(
        sub.wait_subscriptions(2, WAIT),
        "{}\n{}",
        sub.transcript(),
        broker.log_tail(20)
    );
    assert!(broker.publish(&thing, "thing-0001/after", HELLO, 1).ok());
    assert_eq!(
        sub.wait_for(1, WAIT),
        vec![("thing-0001/after".to_string(), HELLO.to_vec())]
    );

    // stop / start_again split, and a crash.
    broker.stop();
    assert!(!broker.is_running());
    assert!(
        broker
            .publish(&thing, "thing-0001/x", HELLO, 1)
            .connack
            .is_none()
    );
    broker.start_again();
    broker.kill();
    broker.start_again();
    assert_eq!(broker.port(), port);
    assert!(broker.publish(&thing, "thing-0001/again", HELLO, 1).ok());
}

fn persistent(id: &str) -> SubOptions {
    SubOptions {
        client_id: Some(id.to_string()),
        persistent: true,
        ..SubOptions::default()
    }
}

#[test]
fn persistent_session_gets_messages_published_while_away() {
    let broker = Broker::start(BrokerOptions::default());
    let thing = broker.client("thing-0001");
    let obs = broker.observer();
    let first = Subscriber::start_with(&broker, &obs, &["thing-0001/#"], persistent("app-1"));
    assert!(first.stop().is_empty());

    assert!(broker.publish(&thing, "thing-0001/1", "one", 1).ok());
    assert!(broker.publish(&thing, "thing-0001/2", "two", 1).ok());
    // QoS 0 messages are not queued for offline clients by default.
    assert!(broker.publish(&thing, "thing-0001/3", "three", 0).ok());

    let back = Subscriber::start_with(&broker, &obs, &["thing-0001/#"], persistent("app-1"));
    let got = back.wait_for(2, WAIT);
    quiet(&back);
    assert_eq!(
        back.messages(),
        vec![
            ("thing-0001/1".to_string(), b"one".to_vec()),
            ("thing-0001/2".to_string(), b"two".to_vec()),
        ],
        "{got:?}"
    );
}

#[test]
fn without_persistence_nothing_survives_a_broker_restart() {
    let broker = Broker::start(BrokerOptions::default());
    let thing = broker.client("thing-0001");
    let obs = broker.observer();
    Subscriber::start_with(&broker, &obs, &["thing-0001/#"], persistent("app-1")).stop();
    assert!(broker.publish(&thing, "thing-0001/1", "one", 1).ok());
    broker.restart();
    let back = Subscriber::start_with(&broker, &obs, &["thing-0001/#"], persistent("app-1"));
    quiet(&back);
    assert!(back.messages().is_empty(), "{:?}", back.messages());
}

#[test]
fn with_persistence_sessions_and_queued_messages_survive_a_restart() {
    let broker = Broker::start(BrokerOptions::default().persistence(true));
    assert!(broker.dir().join("db").is_dir());
    let thing = broker.client("thing-0001");
    let obs = broker.observer();
    Subscriber::start_with(&broker, &obs, &["thing-0001/#"], persistent("app-1")).stop();
    assert!(broker.publish(&thing, "thing-0001/1", "one", 1).ok());
    broker.restart();
    assert!(broker.dir().join("db/mosquitto.db").is_file());
    // Reconnect *without* subscribing: the stored subscription must deliver.
    let back = Subscriber::start_with(&broker, &obs, &["thing-0001/none"], persistent("app-1"));
    let got = back.wait_for(1, WAIT);
    assert_eq!(got, vec![("thing-0001/1".to_string(), b"one".to_vec())]);
    assert!(broker.publish(&thing, "thing-0001/2", "two", 1).ok());
    back.wait_for(2, WAIT);
}

#[test]
fn fleet_provisioning_acl_and_generated_files() {
    let broker = Broker::start(
        BrokerOptions::default()
            .acl(broker::Acl::aws_like().fleet_provisioning("claim-cert", "MyTemplate")),
    );
    let claim = broker.client("claim-cert");
    let accepted = "$aws/certificates/create/json/accepted";
    let sub = Subscriber::start(&broker, &claim, accepted);
    assert!(
        broker
            .publish(&claim, "$aws/certificates/create/json", "{}", 1)
            .ok()
    );
    assert!(
        broker
            .publish(
                &claim,
                "$aws/provisioning-templates/MyTemplate/provision/json",
                "{}",
                1
            )
            .ok()
    );
    let denied = broker.publish(
        &claim,
        "$aws/provisioning-templates/Other/provision/json",
        "{}",
        1,
    );
    assert_eq!(denied.puback, Some(0x87));
    // The "service" (observer) answers.
    assert!(
        broker
            .publish(&broker.observer(), accepted, "{\"ok\":1}", 1)
            .ok()
    );
    assert_eq!(
        sub.wait_for(1, WAIT),
        vec![(accepted.to_string(), b"{\"ok\":1}".to_vec())]
    );

    let conf = broker.config_text();
    for line in [
        "tls_version tlsv1.3",
        "require_certificate true",
        "use_identity_as_username true",
        "max_qos 1",
        "allow_anonymous false",
        "per_listener_settings true",
    ] {
        assert!(conf.contains(line), "{line} missing:\n{conf}");
    }
    assert!(conf.contains(&format!("listener {} 127.0.0.1", broker.port())));
    let acl = broker.options().acl.render();
    assert!(acl.contains("pattern readwrite %u/#"), "{acl}");
    assert!(acl.contains("user claim-cert"), "{acl}");

    // Key formats for the modem.
    let c = broker.client("thing-0003");
    assert!(c.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(c.key_sec1_pem.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert_eq!(c.cn, "thing-0003");
}

#[test]
fn dropping_the_broker_kills_it_and_removes_its_directory() {
    let broker = Broker::start(BrokerOptions::default());
    let dir = broker.dir().to_path_buf();
    let addr = broker.addr();
    assert!(dir.join("mosquitto.conf").is_file());
    drop(broker);
    if std::env::var_os("BROKER_KEEP_DIR").is_none() {
        assert!(!dir.exists());
    }
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err());
}
