//! MQTT end to end: the customer's flow against mosquitto set up like AWS IoT Core (TLS 1.3
//! only, client certificate required, certificate CN as user name, per-thing ACL, QoS ≤ 1),
//! through the mock modem, whose TLS socket reaches the broker on 127.0.0.1.

mod support;

use std::time::Duration as StdDuration;

use embassy_time::Duration;
use mock_modem::{MockModem, Model as MockModel};
use quectel::Error;
use quectel::asynch::{Apn, Config, Resources, SimStatus, TlsConfig};
use quectel::mqtt::{Mqtt, MqttConfig, QoS, Transport};
use support::broker::{Access, Broker, BrokerOptions, Subscriber};
use support::with_modem_in;

const IMEI: &str = "861234567890123";
const THING: &str = "thing-0001";

fn config() -> Config {
    Config {
        command_gap: Duration::from_millis(1),
        ..support::config()
    }
}

fn mock() -> MockModem {
    MockModem::new(MockModel::Bg96)
        .imei(IMEI)
        .search_time(StdDuration::from_millis(20))
}

#[test]
fn customer_flow_over_modem_tls() {
    let broker = Broker::start(BrokerOptions::default().grant(THING, Access::ReadWrite, IMEI));
    let device = broker.client(THING);
    let observer = broker.observer();
    let watcher = Subscriber::start(&broker, &observer, IMEI);
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let downlink = with_modem_in(res, config(), mock(), async |m, _| {
        // sim.getStatus(), dataCall.getInfo(1, 2)
        let id = m.init().await.unwrap();
        assert_eq!(m.sim().status().await.unwrap(), SimStatus::Ready);
        let tls = TlsConfig::new(ca.as_bytes())
            .with_client_identity(device.cert_pem.as_bytes(), device.key_pem.as_bytes());
        let cfg = MqttConfig::new(
            "localhost",
            port,
            THING,
            Transport::ModemTls { ssl_ctx: 1, tls },
            Apn::new("internet"),
        );
        let mut buf = [0u8; 4096];
        let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
        mqtt.subscribe_on_connect(&id.imei, QoS::AtLeastOnce)
            .unwrap();
        let mut conn = mqtt.connect(m).await.unwrap();
        let info = m.data_call().info(1).await.unwrap();
        assert!(info.active && info.ipv4.is_some());
        conn.publish(&id.imei, b"Hello, AWS Cloud!", QoS::AtLeastOnce)
            .await
            .unwrap();
        // Let the subscription settle, then ask the "cloud" to send a downlink.
        while !conn.all_acknowledged() {
            embassy_time::with_timeout(Duration::from_secs(10), conn.poll())
                .await
                .expect("PUBACK")
                .unwrap();
        }
        let b = broker.publish(&observer, IMEI, b"downlink from the cloud", 1);
        assert!(b.ok(), "{:?}", b.run.stderr);
        let msg = embassy_time::with_timeout(Duration::from_secs(10), conn.recv())
            .await
            .expect("downlink within 10 s")
            .unwrap();
        assert_eq!(msg.topic(), IMEI);
        msg.payload().to_vec()
    });
    assert_eq!(downlink, b"downlink from the cloud");
    let seen = watcher.wait_for(2, StdDuration::from_secs(10));
    assert!(
        seen.iter()
            .any(|(t, p)| t == IMEI && p == b"Hello, AWS Cloud!"),
        "{seen:?}"
    );
}

#[test]
fn wrong_ca_and_missing_client_certificate_are_typed_errors() {
    let broker = Broker::start(BrokerOptions::default().grant(THING, Access::ReadWrite, IMEI));
    let device = broker.client(THING);
    let other_ca = broker.pki().other_ca_pem.clone();
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let wrong = TlsConfig::new(other_ca.as_bytes())
            .with_client_identity(device.cert_pem.as_bytes(), device.key_pem.as_bytes());
        let mut buf = [0u8; 2048];
        let cfg = MqttConfig::new(
            "localhost",
            port,
            THING,
            Transport::ModemTls {
                ssl_ctx: 1,
                tls: wrong,
            },
            Apn::new("internet"),
        );
        let mut mqtt = Mqtt::new(cfg, &mut buf, 1024).unwrap();
        assert!(matches!(mqtt.connect(m).await.err(), Some(Error::Tls(_))));
        drop(mqtt);
        let anonymous = TlsConfig::new(ca.as_bytes());
        let mut buf = [0u8; 2048];
        let cfg = MqttConfig::new(
            "localhost",
            port,
            THING,
            Transport::ModemTls {
                ssl_ctx: 2,
                tls: anonymous,
            },
            Apn::new("internet"),
        );
        let mut mqtt = Mqtt::new(cfg, &mut buf, 1024).unwrap();
        let err = mqtt.connect(m).await.err();
        assert!(
            matches!(err, Some(Error::Tls(_)) | Some(Error::ConnectionClosed)),
            "a client without certificate got {err:?}"
        );
    });
}
