//! MQTT end to end: the customer's flow against mosquitto set up like AWS IoT Core (TLS 1.3
//! only, client certificate required, certificate CN as user name, per-thing ACL, QoS ≤ 1),
//! through the mock modem, whose TLS socket reaches the broker on 127.0.0.1.

#[path = "support/restart.rs"]
mod restart;
mod support;
use restart::{count, eventually};

use std::time::Duration as StdDuration;

use embassy_time::Duration;
use quectel::Error;
use quectel::asynch::{Apn, Config, Resources, SimStatus, TlsConfig};
use quectel::mqtt::{Mqtt, MqttConfig, MqttError, QoS, Transport};
use quectel_mock::{MockModem, Model as MockModel};
use support::broker::{Access, Broker, BrokerOptions, ClientId, Subscriber};
use support::with_modem_in;

const IMEI: &str = "861234567890123";
const THING: &str = "thing-0001";

fn config() -> Config {
    Config {
        command_gap: Duration::from_millis(1),
        ..support::config()
    }
}

/// The thing's MQTT configuration over modem TLS: the broker's CA, the thing's certificate.
fn thing_over_modem_tls<'a>(ca: &'a str, device: &'a ClientId, port: u16) -> MqttConfig<'a> {
    let tls = TlsConfig::new(ca.as_bytes())
        .with_client_identity(device.cert_pem.as_bytes(), device.key_pem.as_bytes());
    MqttConfig::new(
        "localhost",
        port,
        THING,
        Transport::ModemTls { ssl_ctx: 1, tls },
        Apn::new("internet"),
    )
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
        let cfg = thing_over_modem_tls(&ca, &device, port);
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
        let downlink = msg.payload().to_vec();
        // Unsubscribed, nothing more arrives.
        conn.unsubscribe(&id.imei).await.unwrap();
        let _ = embassy_time::with_timeout(Duration::from_millis(500), conn.poll()).await;
        let b = broker.publish(&observer, IMEI, b"after unsubscribe", 1);
        assert!(b.ok());
        let late = embassy_time::with_timeout(Duration::from_secs(1), conn.recv()).await;
        assert!(late.is_err(), "a message arrived after UNSUBSCRIBE");
        downlink
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
        assert!(matches!(
            mqtt.connect(m).await.err(),
            Some(MqttError::Modem(Error::Tls(_)))
        ));
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
            matches!(err, Some(MqttError::Modem(Error::Tls(_)))),
            "a client without certificate got {err:?}"
        );
    });
}

#[cfg(feature = "mcu-tls")]
#[test]
fn customer_flow_over_mcu_tls() {
    use quectel::tls::{McuTlsConfig, TlsBuffers};
    let broker = Broker::start(BrokerOptions::default().grant(THING, Access::ReadWrite, IMEI));
    let device = broker.client(THING);
    let observer = broker.observer();
    let watcher = Subscriber::start(&broker, &observer, IMEI);
    let ca_der = broker.pki().ca_der.clone();
    let port = broker.port();
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let tls_buffers: &'static mut TlsBuffers = Box::leak(Box::new(TlsBuffers::new()));
    let downlink = with_modem_in(res, config(), mock(), async |m, _| {
        let id = m.init().await.unwrap();
        assert_eq!(m.sim().status().await.unwrap(), SimStatus::Ready);
        // The modem only carries TCP; TLS 1.3 runs here, on the "MCU".
        let cfg = MqttConfig::new(
            "127.0.0.1",
            port,
            THING,
            Transport::Tcp,
            Apn::new("internet"),
        );
        let tls = McuTlsConfig::new("localhost", &ca_der)
            .with_client_identity(&device.cert_der, &device.key_sec1_der);
        let mut buf = [0u8; 4096];
        let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
        mqtt.subscribe_on_connect(&id.imei, QoS::AtLeastOnce)
            .unwrap();
        let mut conn = mqtt
            .connect_mcu_tls(m, tls_buffers, &tls, rand_core::OsRng)
            .await
            .unwrap();
        conn.publish(&id.imei, b"Hello, AWS Cloud!", QoS::AtLeastOnce)
            .await
            .unwrap();
        while !conn.all_acknowledged() {
            embassy_time::with_timeout(Duration::from_secs(10), conn.poll())
                .await
                .expect("PUBACK")
                .unwrap();
        }
        let b = broker.publish(&observer, IMEI, b"downlink over MCU TLS", 1);
        assert!(b.ok(), "{:?}", b.run.stderr);
        let msg = embassy_time::with_timeout(Duration::from_secs(10), conn.recv())
            .await
            .expect("downlink within 10 s")
            .unwrap();
        msg.payload().to_vec()
    });
    assert_eq!(downlink, b"downlink over MCU TLS");
    let seen = watcher.wait_for(2, StdDuration::from_secs(10));
    assert!(
        seen.iter()
            .any(|(t, p)| t == IMEI && p == b"Hello, AWS Cloud!"),
        "{seen:?}"
    );
}

#[test]
fn broker_restart_every_qos1_message_arrives_exactly_once() {
    use quectel::mqtt::Outbox;
    use support::broker::SubOptions;
    let broker = Broker::start(
        BrokerOptions::default()
            .grant(THING, Access::ReadWrite, IMEI)
            .persistence(true),
    );
    let device = broker.client(THING);
    let observer = broker.observer();
    let watcher = Subscriber::start_with(
        &broker,
        &observer,
        &[IMEI],
        SubOptions {
            client_id: Some("cloud-watcher".into()),
            persistent: true,
            ..SubOptions::default()
        },
    );
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let outbox: &'static Outbox<16, 64> = Box::leak(Box::new(Outbox::new()));
    let total = 12;
    with_modem_in(res, config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let mut cfg = thing_over_modem_tls(&ca, &device, port);
        cfg.backoff_min = Duration::from_millis(200);
        cfg.backoff_max = Duration::from_secs(2);
        let mut buf = [0u8; 4096];
        let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
        let connections = restart::across_broker_restart(
            m, &mut mqtt, outbox, &broker, &watcher, IMEI, "msg-", total,
        )
        .await;
        let reconnects = connections.len();
        assert!(
            reconnects >= 2,
            "the client never reconnected ({reconnects})"
        );
    });
    let seen = watcher.messages();
    for i in 0..total {
        assert_eq!(count(&seen, &format!("msg-{i}")), 1, "msg-{i} in {seen:?}");
    }
}

#[test]
fn pdpdeact_and_modem_reboot_are_recovered_without_user_code() {
    use quectel::mqtt::Outbox;
    let broker = Broker::start(BrokerOptions::default().grant(THING, Access::ReadWrite, IMEI));
    let device = broker.client(THING);
    let observer = broker.observer();
    let watcher = Subscriber::start(&broker, &observer, IMEI);
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let outbox: &'static Outbox<8, 64> = Box::leak(Box::new(Outbox::new()));
    with_modem_in(res, config(), mock(), async |m, h| {
        m.init().await.unwrap();
        let mut cfg = thing_over_modem_tls(&ca, &device, port);
        cfg.backoff_min = Duration::from_millis(100);
        cfg.backoff_max = Duration::from_secs(1);
        let mut buf = [0u8; 4096];
        let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
        let mut connections = 0u32;
        let device_loop = async {
            loop {
                let Ok(mut conn) = mqtt.connect(m).await else {
                    continue;
                };
                connections += 1;
                let _why = conn.serve(outbox, |_, _| {}).await;
            }
        };
        let scenario = async {
            outbox
                .try_publish(IMEI, b"first", QoS::AtLeastOnce)
                .unwrap();
            assert!(eventually(15, || count(&watcher.messages(), "first") == 1).await);
            h.inject_urc("+QIURC: \"pdpdeact\",1");
            embassy_time::Timer::after_millis(300).await;
            outbox
                .try_publish(IMEI, b"after pdpdeact", QoS::AtLeastOnce)
                .unwrap();
            assert!(
                eventually(20, || count(&watcher.messages(), "after pdpdeact") == 1).await,
                "{:?}",
                watcher.messages()
            );
            let boots = m.boots();
            h.reboot();
            assert!(
                eventually(10, || m.boots() > boots).await,
                "reboot not seen"
            );
            outbox
                .try_publish(IMEI, b"after reboot", QoS::AtLeastOnce)
                .unwrap();
            assert!(
                eventually(30, || count(&watcher.messages(), "after reboot") == 1).await,
                "{:?}",
                watcher.messages()
            );
        };
        match embassy_futures::select::select(device_loop, scenario).await {
            embassy_futures::select::Either::First(never) => never,
            embassy_futures::select::Either::Second(()) => {}
        }
        assert!(
            connections >= 3,
            "expected a reconnection per event, got {connections}"
        );
    });
}

#[cfg(feature = "mcu-tls")]
#[test]
fn throttled_link_delivers_a_large_message_over_mcu_tls_across_keepalive_deadlines() {
    // minimq drops its transport read at every keep-alive deadline; embedded-tls's read is not
    // cancel-safe by itself. At ~1 KB/s a 2.5 KB message takes ~2.5 s to cross the link, so it
    // spans several of those deadlines (keep-alive 2 s: a deadline every second).
    use quectel::tls::{McuTlsConfig, TlsBuffers};
    let broker = Broker::start(BrokerOptions::default().grant(THING, Access::ReadWrite, IMEI));
    let device = broker.client(THING);
    let observer = broker.observer();
    let ca_der = broker.pki().ca_der.clone();
    let port = broker.port();
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let tls_buffers: &'static mut TlsBuffers = Box::leak(Box::new(TlsBuffers::new()));
    let big: Vec<u8> = (0..2500u32).map(|i| (i * 31 % 251) as u8).collect();
    let got = with_modem_in(res, config(), mock(), async |m, h| {
        let id = m.init().await.unwrap();
        let mut cfg = MqttConfig::new(
            "127.0.0.1",
            port,
            THING,
            Transport::Tcp,
            Apn::new("internet"),
        );
        cfg.keepalive_s = 2;
        let tls = McuTlsConfig::new("localhost", &ca_der)
            .with_client_identity(&device.cert_der, &device.key_sec1_der);
        let mut buf = [0u8; 8192];
        let mut mqtt = Mqtt::new(cfg, &mut buf, 4096).unwrap();
        mqtt.subscribe_on_connect(&id.imei, QoS::AtLeastOnce)
            .unwrap();
        let mut conn = mqtt
            .connect_mcu_tls(m, tls_buffers, &tls, rand_core::OsRng)
            .await
            .unwrap();
        // Let the SUBACK in, then slow the UART down to ~1 KB/s.
        for _ in 0..3 {
            let _ = embassy_time::with_timeout(Duration::from_millis(300), conn.poll()).await;
        }
        h.set_baud(Some(10_000));
        let (big2, obs) = (big.clone(), observer.clone());
        let b = &broker;
        std::thread::scope(|s| {
            s.spawn(move || {
                let r = b.publish(&obs, IMEI, &big2, 1);
                assert!(r.ok(), "{:?}", r.run.stderr);
            });
        });
        let t0 = embassy_time::Instant::now();
        let msg = embassy_time::with_timeout(Duration::from_secs(30), conn.recv())
            .await
            .expect("the large message arrived")
            .expect("the connection survived");
        let took = t0.elapsed();
        assert!(
            took > Duration::from_millis(1500),
            "the link was not slow enough to cross a deadline ({} ms)",
            took.as_millis()
        );
        msg.payload().to_vec()
    });
    assert!(got == big, "the 2.5 KB message arrived corrupted");
}

#[cfg(feature = "mcu-tls")]
#[test]
fn mcu_tls_wrong_ca_and_missing_client_certificate_are_typed_errors() {
    use quectel::tls::{McuTlsConfig, TlsBuffers, TlsError, TlsFailure, pem_to_der};
    let broker = Broker::start(BrokerOptions::default().grant(THING, Access::ReadWrite, IMEI));
    let device = broker.client(THING);
    let mut other_der = vec![0u8; 4096];
    let other_ca = pem_to_der(broker.pki().other_ca_pem.as_bytes(), &mut other_der)
        .unwrap()
        .to_vec();
    let ca_der = broker.pki().ca_der.clone();
    let port = broker.port();
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let tls_buffers: &'static mut TlsBuffers = Box::leak(Box::new(TlsBuffers::new()));
    with_modem_in(res, config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let cfg = MqttConfig::new(
            "127.0.0.1",
            port,
            THING,
            Transport::Tcp,
            Apn::new("internet"),
        );
        let mut buf = [0u8; 4096];
        let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
        let wrong = McuTlsConfig::new("localhost", &other_ca)
            .with_client_identity(&device.cert_der, &device.key_sec1_der);
        let err = mqtt
            .connect_mcu_tls(m, tls_buffers, &wrong, rand_core::OsRng)
            .await
            .err();
        assert_eq!(
            err,
            Some(MqttError::Tls(TlsError::Failure(TlsFailure::Certificate)))
        );
        let anonymous = McuTlsConfig::new("localhost", &ca_der);
        let err = mqtt
            .connect_mcu_tls(m, tls_buffers, &anonymous, rand_core::OsRng)
            .await
            .err();
        assert_eq!(
            err,
            Some(MqttError::Tls(TlsError::Failure(TlsFailure::Alert))),
            "a client without certificate"
        );
    });
}

/// What `docs/aws-iot.md` says about an inbound message larger than `rx_size`, against a broker
/// that honours the Maximum Packet Size minimq announces (mosquitto, like AWS IoT Core): the
/// broker drops it, the device sees nothing of it (no error, no count) and keeps receiving.
#[test]
fn a_broker_that_honours_maximum_packet_size_drops_a_message_larger_than_rx_size() {
    let broker = Broker::start(BrokerOptions::default().grant(THING, Access::ReadWrite, IMEI));
    let device = broker.client(THING);
    let observer = broker.observer();
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let cfg = thing_over_modem_tls(&ca, &device, port);
        let mut buf = [0u8; 4096];
        let mut mqtt = Mqtt::new(cfg, &mut buf, 1024).unwrap();
        mqtt.subscribe_on_connect(IMEI, QoS::AtLeastOnce).unwrap();
        let mut conn = mqtt.connect(m).await.unwrap();
        while !conn.all_acknowledged() {
            embassy_time::with_timeout(Duration::from_secs(10), conn.poll())
                .await
                .expect("SUBACK")
                .unwrap();
        }
        let big = vec![b'x'; 2000];
        assert!(broker.publish(&observer, IMEI, &big, 1).ok());
        assert!(broker.publish(&observer, IMEI, b"small", 1).ok());
        let msg = embassy_time::with_timeout(Duration::from_secs(10), conn.recv())
            .await
            .expect("the small message")
            .expect("the connection is alive");
        assert_eq!(msg.payload(), b"small", "the large message was dropped");
        assert_eq!(
            conn.dropped_messages(),
            0,
            "the broker dropped it, not the device"
        );
    });
}
