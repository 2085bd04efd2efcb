//! Aliyun IoT end to end, through the mock modem whose sockets reach real peers on 127.0.0.1:
//!
//! - one product, one secret (`register`): a Mosquitto stand-in (TLS, server authentication only,
//!   `password_file`, no anonymous clients) and the responder of `support/aliyun_broker.rs` (an
//!   MQTT client thread, rumqttc, that computes every password with the RustCrypto `hmac`
//!   crates, not this crate's code) play the platform. The
//!   device registers over the modem's TLS socket, stores the DeviceSecret, connects with it
//!   (MQTT 5, one device one secret) and publishes; a second boot reuses the store without
//!   registering; a device whose store was wiped after activation gets
//!   `CloudError::AlreadyActivated`;
//! - `regnwl`: the same with a client id and device token (`connwl`);
//! - a fake Aliyun (a raw TCP peer in this process) checks the wire exchange as the platform
//!   does it (answer published without any SUBSCRIBE, QoS 1 acknowledged) and CONNACK 4 vs 5;
//! - the thing model (`cloud::aliyun::thing`) against the stand-in: a property post answered by
//!   the platform's `post_reply` and matched with its id, a property set from the cloud
//!   delivered and answered, an RRPC request answered within the deadline, and a late RRPC
//!   response refused on the device with `ThingError::RrpcLate` while the cloud times out.
//!
//! Needs `mosquitto` and `mosquitto_passwd` (Debian `mosquitto`; `cargo xtask test` installs it).

#[path = "support/aliyun_broker.rs"]
mod aliyun_broker;
mod support;
// `aliyun_broker` builds on the test broker as `crate::broker`.
use support::broker;

use std::time::Duration as StdDuration;

use aliyun_broker::{AliyunCloud, CloudOptions};
use embassy_time::{Duration, Timer, with_timeout};
use quectel::asynch::{Apn, Config, Modem, Remote, Resources, TlsConfig};
use quectel::cloud::CloudError;
use quectel::cloud::aliyun::{
    Device, DeviceCredentials, MqttCredentials, Provisioned, RamStore, Random, Registration,
    RegistrationKind, RegistrationLink, provision, register,
};
use quectel::mqtt::{Mqtt, QoS, Transport};
use quectel_mock::{MockModem, Model as MockModel};
use support::{bring_up, with_modem_in};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PK: &str = "a1TestPk01";
const PS: &str = "ProdSecret7jluWm1z";
const RANDOM: &str = "8Ygb7ULYh53B6OA";

type TestModem = Modem<'static>;

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

fn cloud(devices: &[&str]) -> AliyunCloud {
    AliyunCloud::start(&CloudOptions {
        product_key: PK.into(),
        product_secret: PS.into(),
        devices: devices.iter().map(|d| d.to_string()).collect(),
        flashed: Vec::new(),
        random: RANDOM.into(),
        sign_method: "hmacsha256".into(),
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The registration link to the stand-in on `port` (TLS server authentication, SSL context 1).
fn link(ca: &str, port: u16) -> RegistrationLink<'_> {
    RegistrationLink {
        cid: 1,
        ssl_ctx: 1,
        tls: TlsConfig::new(ca.as_bytes()),
        host: "localhost",
        port,
    }
}

/// A registration with the product secret and the fixed random. Mosquitto routes by
/// subscription only, so the stand-in needs the SUBSCRIBE that Aliyun does not
/// (docs/aliyun.md); the fake-peer test covers the exchange without it.
fn registration(device: Device<'_>, kind: RegistrationKind) -> Registration<'_> {
    Registration::new(device, PS, kind, Random::new(RANDOM).unwrap()).subscribe_to_result(true)
}

/// Polls the responder's output without blocking the runtime (the modem runner shares it).
async fn wait_for(cloud: &AliyunCloud, line: &str, timeout: StdDuration) {
    let deadline = std::time::Instant::now() + timeout;
    while !cloud.lines().iter().any(|l| l == line) {
        assert!(
            std::time::Instant::now() < deadline,
            "no '{line}' from the responder within {timeout:?}"
        );
        Timer::after(Duration::from_millis(50)).await;
    }
}

/// Connects with `creds` (MQTT 5 through minimq, TLS in the modem) and publishes `payload` to
/// `topic` with QoS 1, waiting for the PUBACK.
async fn connect_and_publish(
    m: &TestModem,
    creds: &MqttCredentials,
    ca: &str,
    port: u16,
    topic: &str,
    payload: &[u8],
) {
    let tls = TlsConfig::new(ca.as_bytes());
    let transport = Transport::ModemTls { ssl_ctx: 2, tls };
    let cfg = creds
        .mqtt_config("localhost", port, transport, Apn::new("internet"))
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut mqtt = Mqtt::new(cfg, &mut buf, 1024).unwrap();
    let mut conn = mqtt.connect(m).await.unwrap();
    conn.publish(topic, payload, QoS::AtLeastOnce)
        .await
        .unwrap();
    while !conn.all_acknowledged() {
        with_timeout(Duration::from_secs(10), conn.poll())
            .await
            .expect("PUBACK within 10 s")
            .unwrap();
    }
    conn.disconnect().await.unwrap();
}

#[test]
fn register_store_connect_second_boot_and_already_activated() {
    const DN: &str = "dev-0001";
    let cloud = cloud(&[DN]);
    let port = cloud.port();
    let ca = cloud.ca_pem();
    let device = Device::new(PK, DN).unwrap();
    let topic = device.user_topic("update").unwrap();
    with_modem_in(resources(), config(), mock(), async |m, _| {
        bring_up(m).await;
        let link = link(&ca, port);
        let reg = registration(device, RegistrationKind::Register);
        let mut buf = [0u8; 512];

        // First boot: empty store -> register, save once.
        let mut store = RamStore::new();
        let p = provision(m, &link, &reg, &mut store, &mut buf)
            .await
            .unwrap();
        assert!(matches!(
            p,
            Provisioned::Registered(DeviceCredentials::DeviceSecret(_))
        ));
        assert_eq!(store.saves(), 1);
        assert_eq!(store.credentials(), Some(p.credentials()));
        wait_for(
            &cloud,
            &format!("activated {DN}"),
            StdDuration::from_secs(15),
        )
        .await;

        // Connect with the stored DeviceSecret (one device, one secret) and publish.
        let creds = p.credentials().mqtt_credentials(device).unwrap();
        assert_eq!(
            creds.client_id(),
            format!("{PK}.{DN}|securemode=2,signmethod=hmacsha256|")
        );
        connect_and_publish(m, &creds, &ca, port, &topic, b"{\"boot\":1}").await;

        // Second boot, same store: no registration.
        let p2 = provision(m, &link, &reg, &mut store, &mut buf)
            .await
            .unwrap();
        assert_eq!(p2, Provisioned::Stored(p.credentials().clone()));
        assert_eq!(store.saves(), 1);
        let creds = p2.credentials().mqtt_credentials(device).unwrap();
        connect_and_publish(m, &creds, &ca, port, &topic, b"{\"boot\":2}").await;

        // The flash was wiped after activation: the platform refuses (CONNACK 5).
        let mut wiped = RamStore::new();
        let e = provision(m, &link, &reg, &mut wiped, &mut buf)
            .await
            .unwrap_err();
        assert_eq!(e, CloudError::AlreadyActivated);
        assert_eq!(wiped.saves(), 0);
        let text = e.to_string();
        assert!(
            text.contains("only once") && text.contains("reset"),
            "{text}"
        );
    });
    let first = cloud.wait_message(&topic, StdDuration::from_secs(10));
    assert_eq!(first.as_deref(), Some(&b"{\"boot\":1}"[..]));
    assert!(
        cloud.wait_line(
            |l| l == format!("message {topic} {}", hex(b"{\"boot\":2}")),
            StdDuration::from_secs(10)
        ),
        "{:?}",
        cloud.lines()
    );
    assert_eq!(cloud.count("registered "), 1, "{:?}", cloud.lines());
    assert_eq!(cloud.count("error"), 0, "{:?}", cloud.lines());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn regnwl_then_connwl() {
    const DN: &str = "dev-nwl-01";
    let cloud = cloud(&[DN]);
    let port = cloud.port();
    let ca = cloud.ca_pem();
    let device = Device::new(PK, DN).unwrap();
    let topic = device.property_post().unwrap();
    with_modem_in(resources(), config(), mock(), async |m, _| {
        bring_up(m).await;
        let link = link(&ca, port);
        let reg = registration(device, RegistrationKind::Regnwl);
        let mut buf = [0u8; 512];
        let mut store = RamStore::new();
        let p = provision(m, &link, &reg, &mut store, &mut buf)
            .await
            .unwrap();
        let DeviceCredentials::Token { client_id, .. } = p.credentials() else {
            panic!("expected a token, got {p:?}");
        };
        assert!(client_id.starts_with("nwl"), "{client_id}");
        wait_for(
            &cloud,
            &format!("activated {DN}"),
            StdDuration::from_secs(15),
        )
        .await;
        let creds = p.credentials().mqtt_credentials(device).unwrap();
        assert_eq!(
            creds.client_id(),
            format!("{client_id}|securemode=-2,authType=connwl|")
        );
        let post = br#"{"id":"1","version":"1.0","params":{"Power":{"value":"on"}},"method":"thing.event.property.post"}"#;
        connect_and_publish(m, &creds, &ca, port, &topic, post).await;
    });
    let got = cloud.wait_message(&topic, StdDuration::from_secs(10));
    assert!(got.is_some_and(|p| p.starts_with(b"{\"id\":\"1\"")));
    assert_eq!(cloud.count("error"), 0, "{:?}", cloud.lines());
}

/// Reads one MQTT packet from the fake peer's socket: (first byte, body).
async fn read_packet(s: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    let first = s.read_u8().await.unwrap();
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let b = s.read_u8().await.unwrap();
        len |= usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.unwrap();
    (first, body)
}

/// A fake Aliyun on plain TCP: the exchange exactly as the platform runs it, through the modem's
/// socket. Connection 1: CONNACK 0 then the answer, unsolicited, QoS 1. Connection 2: CONNACK 4.
/// Connection 3: CONNACK 5.
#[test]
fn fake_aliyun_wire_exchange_and_connack_codes() {
    const DN: &str = "dev-fake";
    let device = Device::new(PK, DN).unwrap();
    with_modem_in(resources(), config(), mock(), async |m, _| {
        bring_up(m).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = tokio::spawn(async move {
            let mut seen = Vec::new();
            for code in [0u8, 4, 5] {
                let (mut s, _) = listener.accept().await.unwrap();
                let (first, connect) = read_packet(&mut s).await;
                assert_eq!(first, 0x10);
                seen.push(connect);
                s.write_all(&[0x20, 0x02, 0x00, code]).await.unwrap();
                if code != 0 {
                    continue;
                }
                let body = format!(
                    r#"{{"productKey":"{PK}","deviceName":"{DN}","deviceSecret":"FromFakeCloud"}}"#
                );
                let mut publish = vec![0x32];
                let rem = 2 + 13 + 2 + body.len();
                assert!(rem < 128);
                publish.push(rem as u8);
                publish.extend_from_slice(&[0, 13]);
                publish.extend_from_slice(b"/ext/register");
                publish.extend_from_slice(&[0x00, 0x07]);
                publish.extend_from_slice(body.as_bytes());
                s.write_all(&publish).await.unwrap();
                // The device must acknowledge, then disconnect, and send nothing else (no
                // SUBSCRIBE: the platform does not need one).
                assert_eq!(read_packet(&mut s).await, (0x40, vec![0x00, 0x07]));
                assert_eq!(read_packet(&mut s).await, (0xE0, vec![]));
            }
            seen
        });
        let reg = Registration::new(
            device,
            PS,
            RegistrationKind::Register,
            Random::new(RANDOM).unwrap(),
        );
        let mut buf = [0u8; 512];
        let mut results = Vec::new();
        for _ in 0..3 {
            let remote = Remote::Tcp {
                host: "127.0.0.1",
                port,
            };
            let mut socket = m.connect(1, remote).await.unwrap();
            results.push(register(&mut socket, &reg, &mut buf).await);
            let _ = socket.close().await;
        }
        let seen = peer.await.unwrap();
        assert_eq!(
            results[0]
                .as_ref()
                .ok()
                .and_then(|c| c.device_secret())
                .map(|s| s.expose()),
            Some("FromFakeCloud")
        );
        assert_eq!(results[1].clone().unwrap_err(), CloudError::BadCredentials);
        assert_eq!(
            results[2].clone().unwrap_err(),
            CloudError::AlreadyActivated
        );
        // The CONNECT carries the registration client id, user name and the sign (computed
        // here independently of the crate: see KAT-ALI-3 for the HMAC itself).
        let connect = &seen[0];
        let text = String::from_utf8_lossy(connect);
        assert!(text.contains(&format!(
            "{DN}.{PK}|securemode=2,authType=register,random={RANDOM},signmethod=hmacsha256|"
        )));
        assert!(text.contains(&format!("{DN}&{PK}")));
        assert_eq!(&connect[..8], b"\x00\x04MQTT\x04\xC2");
    });
}

/// Polls the responder's output for a line starting with `prefix`, without blocking the runtime;
/// fails at once on an `error` line.
async fn wait_prefix(cloud: &AliyunCloud, prefix: &str, timeout: StdDuration) -> String {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let lines = cloud.lines();
        if let Some(l) = lines.iter().find(|l| l.starts_with(prefix)) {
            return l.clone();
        }
        assert!(
            !lines.iter().any(|l| l.starts_with("error")),
            "the stand-in saw an error while waiting for '{prefix}…': {lines:?}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no '{prefix}…' from the responder within {timeout:?}: {lines:?}"
        );
        Timer::after(Duration::from_millis(20)).await;
    }
}

#[test]
fn thing_model_post_set_and_rrpc() {
    use quectel::cloud::aliyun::{Inbound, RrpcTicket, Thing, ThingError};
    use quectel::mqtt::Outbox;
    use std::cell::RefCell;

    const DN: &str = "dev-thing";
    const SECRET: &str = "ThingSecret0123456789";
    // The cloud's RRPC timeout (the `Timeout` of `RRpc`), and the device's deadline set to it.
    const RRPC_TIMEOUT: StdDuration = StdDuration::from_millis(3000);
    let cloud = AliyunCloud::start(&CloudOptions {
        product_key: PK.into(),
        product_secret: PS.into(),
        devices: Vec::new(),
        flashed: vec![(
            DN.into(),
            SECRET.into(),
            format!("{PK}.{DN}"),
            "hmacsha256".into(),
        )],
        random: RANDOM.into(),
        sign_method: "hmacsha256".into(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let port = cloud.port();
    let ca = cloud.ca_pem();
    let device = Device::new(PK, DN).unwrap();
    let thing: Thing<'_, 4> = Thing::new(device).with_rrpc_deadline(Duration::from_millis(3000));

    #[derive(serde::Serialize)]
    struct Props {
        #[serde(rename = "Power")]
        power: &'static str,
        #[serde(rename = "Temperature")]
        temperature: f32,
    }

    with_modem_in(resources(), config(), mock(), async |m, _| {
        bring_up(m).await;
        let creds = MqttCredentials::builder(device, SECRET).build().unwrap();
        let tls = TlsConfig::new(ca.as_bytes());
        let transport = Transport::ModemTls { ssl_ctx: 2, tls };
        let cfg = creds
            .mqtt_config("localhost", port, transport, Apn::new("internet"))
            .unwrap();
        let mut buf = [0u8; 4096];
        let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
        let mut conn = mqtt.connect(m).await.unwrap();
        for filter in thing.subscriptions().unwrap() {
            conn.subscribe(&filter, QoS::AtLeastOnce).await.unwrap();
        }
        let outbox: Outbox<4, 512> = Outbox::new();
        // What the application saw, and the RRPC it keeps for later.
        let seen: RefCell<Vec<String>> = RefCell::new(Vec::new());
        let kept: RefCell<Option<RrpcTicket>> = RefCell::new(None);
        let on_message = |topic: &str, payload: &[u8]| {
            let mut out = [0u8; 256];
            let note = match thing.handle(topic, payload) {
                Ok(Some(Inbound::PostReply(r))) => format!("post-reply {} {:?}", r.id, r.kind),
                Ok(Some(Inbound::PropertySet(req))) => {
                    let reply = thing.reply(&req.reply_to, 200, None, &mut out).unwrap();
                    outbox
                        .try_publish(reply.topic(), reply.payload(), QoS::AtLeastOnce)
                        .unwrap();
                    format!("set {}", String::from_utf8_lossy(req.params))
                }
                Ok(Some(Inbound::Rrpc(req))) if req.payload == b"ping" => {
                    let topic = thing
                        .rrpc_response(&req.ticket, embassy_time::Instant::now())
                        .unwrap();
                    outbox
                        .try_publish(&topic, b"pong", QoS::AtMostOnce)
                        .unwrap();
                    "rrpc answered".to_string()
                }
                Ok(Some(Inbound::Rrpc(req))) => {
                    *kept.borrow_mut() = Some(req.ticket);
                    "rrpc kept".to_string()
                }
                Ok(None) => return,
                Ok(Some(other)) => format!("other {other:?}"),
                Err(e) => format!("error {e}"),
            };
            seen.borrow_mut().push(note);
        };
        let saw = |what: &str| seen.borrow().iter().any(|l| l == what);
        let script = async {
            // 1. Property post, answered by the platform and matched on the device.
            let mut out = [0u8; 256];
            let post = thing
                .property_post(
                    &Props {
                        power: "on",
                        temperature: 21.5,
                    },
                    &mut out,
                )
                .unwrap();
            assert_eq!(post.id(), Some(1));
            outbox
                .publish(post.topic(), post.payload(), QoS::AtLeastOnce)
                .await
                .unwrap();
            wait_prefix(
                &cloud,
                &format!("post-reply {DN} 1 200"),
                StdDuration::from_secs(10),
            )
            .await;
            for _ in 0..500 {
                if saw("post-reply 1 Property") {
                    break;
                }
                Timer::after(Duration::from_millis(20)).await;
            }
            assert!(saw("post-reply 1 Property"), "{:?}", seen.borrow());
            assert!(thing.pending().is_empty());

            // 2. Property set from the cloud, delivered and answered.
            cloud.send_property_set(DN, serde_json::json!({"Power": "off"}));
            wait_prefix(
                &cloud,
                &format!("property-set-ok {DN}"),
                StdDuration::from_secs(10),
            )
            .await;
            assert!(saw(r#"set {"Power":"off"}"#), "{:?}", seen.borrow());

            // 3. RRPC answered within the deadline.
            cloud.send_rrpc(DN, b"ping", Some(b"pong"), RRPC_TIMEOUT);
            let ok = wait_prefix(
                &cloud,
                &format!("rrpc-ok {DN} "),
                StdDuration::from_secs(10),
            )
            .await;
            let ms: u64 = ok.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(ms <= 3000, "{ok}");

            // 4. An RRPC the application answers too late: refused on the device, timed out
            //    on the cloud, and nothing published.
            cloud.send_rrpc(DN, b"slow", None, RRPC_TIMEOUT);
            for _ in 0..500 {
                if kept.borrow().is_some() {
                    break;
                }
                Timer::after(Duration::from_millis(20)).await;
            }
            let ticket = kept.borrow_mut().take().expect("the slow RRPC arrived");
            Timer::after(Duration::from_millis(3200)).await;
            let e = thing
                .rrpc_response(&ticket, embassy_time::Instant::now())
                .unwrap_err();
            assert!(
                matches!(e, ThingError::RrpcLate { deadline_ms: 3000, elapsed_ms } if elapsed_ms >= 3200),
                "{e:?}"
            );
            wait_prefix(
                &cloud,
                &format!("rrpc-timeout {DN} 3000"),
                StdDuration::from_secs(10),
            )
            .await;
            // Let the outbox drain.
            while !outbox.is_empty() {
                Timer::after(Duration::from_millis(20)).await;
            }
        };
        match embassy_futures::select::select(conn.serve(&outbox, on_message), script).await {
            embassy_futures::select::Either::First(e) => panic!("connection failed: {e:?}"),
            embassy_futures::select::Either::Second(()) => {}
        }
        assert!(
            !seen
                .borrow()
                .iter()
                .any(|l| l.starts_with("error") || l.starts_with("other")),
            "{:?}",
            seen.borrow()
        );
    });
    assert_eq!(cloud.count("error"), 0, "{:?}", cloud.lines());
    assert_eq!(cloud.count("rrpc-ok "), 1, "{:?}", cloud.lines());
    // The late response was never published: one response in all.
    let responses = cloud
        .lines()
        .iter()
        .filter(|l| l.starts_with(&format!("message /sys/{PK}/{DN}/rrpc/response/")))
        .count();
    assert_eq!(responses, 1, "{:?}", cloud.lines());
}
