//! MQTT wire efficiency: UART bytes for one 1 KiB message, counted until the link is idle.
//!
//! The device talks to mosquitto (tests/support/broker.rs: TLS 1.3, client certificates, ACL)
//! through the mock modem, over the modem's TLS socket, over TLS on the MCU, and over plain TCP
//! (a second, plain listener of the same broker). For each transport, after the connection and
//! its subscription have settled:
//!
//! * **publish QoS 0 / QoS 1**: the device publishes 1 024 bytes on a 16-byte topic; counted
//!   until the link is idle, i.e. with the PUBACK for QoS 1 read and nothing more moving;
//! * **inbound QoS 0 / QoS 1**: the broker sends 1 024 bytes on the device's 16-byte command
//!   topic; counted until the message was received and the link is idle (for QoS 1 that
//!   includes the device's PUBACK).
//!
//! Efficiency = payload bytes / UART bytes in both directions. "Idle" = no UART byte moved for
//! [`IDLE`]; the mock modem counts every byte either side writes.

use std::time::Duration as StdDuration;

use embassy_time::{Duration, with_timeout};
use quectel::asynch::{Apn, Config, Resources, TlsConfig};
use quectel::mqtt::{Mqtt, MqttConfig, MqttConnection, MqttIo, QoS, Transport};
use quectel_mock::{MockModem, Model, Wire};

use crate::support;
use support::broker::{Access, Broker, BrokerOptions, ClientId};

/// 16 bytes each, like the figure.
const UP_TOPIC: &str = "tel/thing-01/abc";
const DOWN_TOPIC: &str = "cmd/thing-01/abc";
const THING: &str = "thing-01";
const SIZE: usize = 1024;
/// No UART byte for this long: the exchange is over.
const IDLE: Duration = Duration::from_millis(400);

/// One measured exchange.
pub struct WireRow {
    pub transport: &'static str,
    pub what: &'static str,
    pub up: u64,
    pub down: u64,
}

impl WireRow {
    pub fn efficiency(&self) -> f64 {
        SIZE as f64 / (self.up + self.down) as f64
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    ModemTls,
    McuTls,
    Tcp,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn counts(w: &Wire) -> (u64, u64) {
    (w.host_bytes(), w.modem_bytes())
}

/// Measures every row for every transport.
pub fn run() -> Vec<WireRow> {
    support::broker::require(&["mosquitto", "mosquitto_pub"]);
    let mut rows = Vec::new();
    for (kind, push, name) in [
        (Kind::ModemTls, false, "modem TLS"),
        (Kind::McuTls, false, "MCU TLS"),
        (Kind::Tcp, false, "plain TCP"),
        (Kind::ModemTls, true, "modem TLS, push"),
        (Kind::McuTls, true, "MCU TLS, push"),
        (Kind::Tcp, true, "plain TCP, push"),
    ] {
        run_kind(kind, push, name, &mut rows);
    }
    rows
}

/// `push`: sockets in direct-push mode (`Config::push_receive`).
fn run_kind(kind: Kind, push: bool, name: &'static str, rows: &mut Vec<WireRow>) {
    let plain = free_port();
    let mut options = BrokerOptions::default()
        .grant(THING, Access::ReadWrite, UP_TOPIC)
        .grant(THING, Access::ReadWrite, DOWN_TOPIC);
    // A plain listener next to the TLS one, for the plain TCP rows.
    options.extra_config = vec![
        format!("\nlistener {plain} 127.0.0.1"),
        "protocol mqtt".into(),
        "allow_anonymous true".into(),
    ];
    let broker = Broker::start(options);
    let device = broker.client(THING);
    let observer = broker.observer();
    let ca_pem = broker.pki().ca_pem.clone();
    let ca_der = broker.pki().ca_der.clone();
    let port = broker.port();

    let (rx, tx, handle) = MockModem::new(Model::Bg96)
        .search_time(StdDuration::from_millis(20))
        .spawn();
    let wire = handle.wire().expect("the duplex link counts bytes").clone();
    let resources: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let tls_buffers: &'static mut quectel::tls::TlsBuffers =
        Box::leak(Box::new(quectel::tls::TlsBuffers::new()));
    let config = Config {
        command_gap: Duration::from_millis(1),
        push_receive: push,
        ..Config::default()
    };
    support::with_endpoints_in(resources, config, rx, tx, async |m| {
        m.init().await.unwrap();
        let transport = match kind {
            Kind::ModemTls => Transport::ModemTls {
                ssl_ctx: 1,
                tls: TlsConfig::new(ca_pem.as_bytes())
                    .with_client_identity(device.cert_pem.as_bytes(), device.key_pem.as_bytes()),
            },
            Kind::McuTls | Kind::Tcp => Transport::Tcp,
        };
        let (host, port) = match kind {
            Kind::ModemTls => ("localhost", port),
            Kind::McuTls => ("127.0.0.1", port),
            Kind::Tcp => ("127.0.0.1", plain),
        };
        let mut cfg = MqttConfig::new(host, port, THING, transport, Apn::new("internet"));
        // No PINGREQ inside a measurement window.
        cfg.keepalive_s = 600;
        let mut buf = [0u8; 4096];
        let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
        mqtt.subscribe_on_connect(DOWN_TOPIC, QoS::AtLeastOnce)
            .unwrap();
        let mcu = quectel::tls::McuTlsConfig::new("localhost", &ca_der)
            .with_client_identity(&device.cert_der, &device.key_sec1_der);
        match kind {
            Kind::McuTls => {
                let mut conn = mqtt
                    .connect_mcu_tls(m, tls_buffers, &mcu, rand_core::OsRng)
                    .await
                    .unwrap();
                measure(&mut conn, &wire, &broker, &observer, name, rows).await
            }
            _ => {
                let mut conn = mqtt.connect(m).await.unwrap();
                measure(&mut conn, &wire, &broker, &observer, name, rows).await
            }
        }
    });
}

/// Runs the connection until no UART byte moved for [`IDLE`] and `done` holds.
async fn settle<IO: MqttIo>(
    conn: &mut MqttConnection<'_, '_, IO>,
    wire: &Wire,
    done: impl Fn(&MqttConnection<'_, '_, IO>) -> bool,
) {
    let mut last = counts(wire);
    loop {
        if let Ok(r) = with_timeout(IDLE, conn.poll()).await {
            r.unwrap();
        }
        let now = counts(wire);
        if now == last && done(conn) {
            return;
        }
        last = now;
    }
}

async fn measure<IO: MqttIo>(
    conn: &mut MqttConnection<'_, '_, IO>,
    wire: &Wire,
    broker: &Broker,
    observer: &ClientId,
    name: &'static str,
    rows: &mut Vec<WireRow>,
) {
    let payload = crate::payload(SIZE);
    settle(conn, wire, |_| true).await;
    for (qos, what) in [
        (QoS::AtMostOnce, "publish QoS 0"),
        (QoS::AtLeastOnce, "publish QoS 1"),
    ] {
        let (u0, d0) = counts(wire);
        conn.publish(UP_TOPIC, &payload, qos).await.unwrap();
        settle(conn, wire, |c| c.all_acknowledged()).await;
        let (u1, d1) = counts(wire);
        rows.push(WireRow {
            transport: name,
            what,
            up: u1 - u0,
            down: d1 - d0,
        });
    }
    for (qos, what) in [(0u8, "inbound QoS 0"), (1u8, "inbound QoS 1")] {
        let (u0, d0) = counts(wire);
        let b = broker.publish(observer, DOWN_TOPIC, &payload, qos);
        assert!(b.ok(), "{:?}", b.run.stderr);
        let msg = with_timeout(Duration::from_secs(20), conn.recv())
            .await
            .expect("inbound message within 20 s")
            .unwrap();
        assert_eq!(msg.payload().len(), SIZE);
        settle(conn, wire, |_| true).await;
        let (u1, d1) = counts(wire);
        rows.push(WireRow {
            transport: name,
            what,
            up: u1 - u0,
            down: d1 - d0,
        });
    }
}
