//! MQTT input checks and oversized inbound messages, against a scripted broker on 127.0.0.1
//! (reached through the mock modem's plain TCP socket) that records every packet it receives
//! and, unlike mosquitto, ignores the Maximum Packet Size the client announces.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration as StdDuration;

use embassy_time::Duration;
use quectel::asynch::{Apn, Resources};
use quectel::mqtt::{Mqtt, MqttConfig, MqttError, QoS, Transport};
use quectel_mock::MockModem;
use support::{fast_config as config, with_modem_in};

fn mock() -> MockModem {
    support::bg96().imei("861234567890123")
}

/// One MQTT packet as the broker received it: type (high nibble of the first byte) and body.
type Packet = (u8, Vec<u8>);

fn read_packet(s: &mut TcpStream) -> Option<Packet> {
    let mut first = [0u8; 1];
    s.read_exact(&mut first).ok()?;
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).ok()?;
        len |= usize::from(b[0] & 0x7f) << shift;
        shift += 7;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((first[0] >> 4, body))
}

/// An MQTT 5 PUBLISH, QoS 0, no properties.
fn publish(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.push(0);
    body.extend_from_slice(payload);
    let mut p = vec![0x30];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        p.push(b);
        if len == 0 {
            break;
        }
    }
    p.extend_from_slice(&body);
    p
}

/// A broker for one connection: answers `CONNECT` with a plain `CONNACK`, sends `after_connack`,
/// answers `PINGREQ`, and records every packet after `CONNECT` until the client goes.
struct ScriptedBroker {
    port: u16,
    seen: Arc<Mutex<Vec<Packet>>>,
    thread: thread::JoinHandle<()>,
}

impl ScriptedBroker {
    fn start(after_connack: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let thread = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(StdDuration::from_secs(30)))
                .unwrap();
            let (kind, _) = read_packet(&mut s).expect("CONNECT");
            assert_eq!(kind, 1, "the first packet is CONNECT");
            s.write_all(&[0x20, 0x03, 0x00, 0x00, 0x00]).unwrap();
            s.write_all(&after_connack).unwrap();
            while let Some((kind, body)) = read_packet(&mut s) {
                if kind == 12 {
                    s.write_all(&[0xd0, 0x00]).unwrap();
                }
                log.lock().unwrap().push((kind, body));
                if kind == 14 {
                    break;
                }
            }
        });
        Self { port, seen, thread }
    }

    /// Waits for the client to disconnect; returns what the broker received after `CONNECT`.
    fn finish(self) -> Vec<Packet> {
        self.thread.join().unwrap();
        Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap()
    }
}

fn mqtt_config(port: u16) -> MqttConfig<'static> {
    MqttConfig::new(
        "127.0.0.1",
        port,
        "dev-1",
        Transport::Tcp,
        Apn::new("internet"),
    )
}

#[test]
fn bad_topics_and_filters_are_refused_before_anything_is_sent() {
    let broker = ScriptedBroker::start(Vec::new());
    let port = broker.port;
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let mut buf = [0u8; 4096];
        let mut mqtt = Mqtt::new(mqtt_config(port), &mut buf, 2048).unwrap();
        let mut conn = mqtt.connect(m).await.unwrap();
        let q = QoS::AtMostOnce;
        assert_eq!(
            conn.publish("dev/#", b"x", q).await,
            Err(MqttError::WildcardInTopic)
        );
        assert_eq!(
            conn.publish("dev/+/up", b"x", q).await,
            Err(MqttError::WildcardInTopic)
        );
        assert_eq!(conn.publish("", b"x", q).await, Err(MqttError::EmptyTopic));
        let long = "t".repeat(65_536);
        assert_eq!(
            conn.publish(&long, b"x", q).await,
            Err(MqttError::TopicTooLong {
                len: 65_536,
                max: 65_535
            })
        );
        assert_eq!(
            conn.subscribe("a/#/b", q).await,
            Err(MqttError::InvalidFilter)
        );
        assert_eq!(conn.subscribe("a+", q).await, Err(MqttError::InvalidFilter));
        // The connection is still up: a good publish goes out.
        conn.publish("dev/up", b"fine", q).await.unwrap();
        conn.disconnect().await.unwrap();
    });
    let seen = broker.finish();
    let kinds: Vec<u8> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [3, 14],
        "only the good PUBLISH and DISCONNECT reach the broker"
    );
    assert_eq!(&seen[0].1[..8], b"\x00\x06dev/up");
}

#[test]
fn client_id_over_64_bytes_is_refused_before_connecting() {
    let id = "d".repeat(65);
    let cfg = MqttConfig::new("127.0.0.1", 1, &id, Transport::Tcp, Apn::new("internet"));
    let mut buf = [0u8; 1024];
    assert_eq!(
        Mqtt::new(cfg, &mut buf, 512).err(),
        Some(MqttError::ClientIdTooLong { len: 65, max: 64 })
    );
}

#[test]
fn an_inbound_message_larger_than_the_receive_buffer_is_reported_and_counted() {
    let big = publish("dev/big", &[0x42; 3000]);
    let big_len = big.len();
    let script = [big, publish("dev/ok", b"hello")].concat();
    let broker = ScriptedBroker::start(script);
    let port = broker.port;
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, config(), mock(), async |m, _| {
        m.init().await.unwrap();
        let mut buf = [0u8; 4096];
        let mut mqtt = Mqtt::new(mqtt_config(port), &mut buf, 1024).unwrap();
        {
            let mut conn = mqtt.connect(m).await.unwrap();
            let msg = embassy_time::with_timeout(Duration::from_secs(10), conn.recv())
                .await
                .expect("the small message after the large one")
                .expect("the connection survives the large message");
            assert_eq!((msg.topic(), msg.payload()), ("dev/ok", &b"hello"[..]));
            assert_eq!(conn.dropped_messages(), 1);
            let dropped = conn
                .take_dropped()
                .expect("the dropped message is reported");
            assert_eq!(dropped.topic.as_deref(), Some("dev/big"));
            assert_eq!(dropped.size, big_len);
            assert_eq!(dropped.capacity, 1024);
            assert_eq!(conn.take_dropped(), None, "taken");
            conn.disconnect().await.unwrap();
        }
        assert_eq!(
            mqtt.dropped_messages(),
            1,
            "the count outlives the connection"
        );
    });
    broker.finish();
}
