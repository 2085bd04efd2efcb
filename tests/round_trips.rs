//! AT round trips of the customer's flow: how many command lines the modem receives from its
//! `RDY` to the broker's CONNACK (MQTT 5 over the modem's TLS with a client certificate), counted
//! by the mock modem (`ModemHandle::commands`, every line it received, data-mode bytes excluded).
//!
//! `cargo test -p quectel --test round_trips --features mqtt,mcu-tls -- --nocapture` prints the
//! command lists and the figures that `docs/architecture.md` ("Start-up: AT round trips") quotes.
//!
//! * first boot: nothing on the modem yet, so the certificates are uploaded;
//! * second boot: a fresh driver and a freshly booted modem whose file system kept the files of
//!   the first boot (what a device sees at every power-up after the first);
//! * reconnect: the broker drops the connection, the client connects again (no modem
//!   re-configuration, just close, open, CONNECT and CONNACK);
//! * module reboot: the module restarts under a running driver; the next connection sets it up
//!   again (the files are still there, the IMEI is known);
//! * MCU TLS: the same flow with TLS on the MCU over a plain TCP socket of the modem.

mod support;

use std::time::Duration as StdDuration;

use embassy_time::Duration;
use quectel::asynch::{Apn, Config, Modem, Resources, SimStatus, TlsConfig};
use quectel::mqtt::{Mqtt, MqttConfig, Transport};
use quectel_mock::{MockModem, Model as MockModel, ModemHandle};
use support::broker::{Access, Broker, BrokerOptions, ClientId};
use support::with_modem_in;

const IMEI: &str = "861234567890123";
const THING: &str = "thing-0001";

/// Round trips from `RDY` to CONNACK when the certificates are already on the modem.
const SECOND_BOOT_MAX: usize = 14;
/// Round trips for the first boot (the three files uploaded: three `AT+QFUPL` lines).
const FIRST_BOOT_MAX: usize = 18;
/// Round trips of a reconnection (close the dead socket, open, CONNECT, CONNACK).
const RECONNECT_MAX: usize = 5;
/// Round trips from `RDY` to CONNACK over MCU TLS (no certificate in the modem).
#[cfg(feature = "mcu-tls")]
const MCU_TLS_MAX: usize = 21;

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

fn resources() -> &'static mut Resources<2048, 2, 4096> {
    Box::leak(Box::new(Resources::new()))
}

fn modem_tls<'a>(ca: &'a str, device: &'a ClientId, port: u16) -> MqttConfig<'a> {
    let tls = TlsConfig::new(ca.as_bytes())
        .with_client_identity(device.cert_pem.as_bytes(), device.key_pem.as_bytes());
    let mut cfg = MqttConfig::new(
        "localhost",
        port,
        THING,
        Transport::ModemTls { ssl_ctx: 1, tls },
        Apn::new("internet"),
    );
    cfg.backoff_min = Duration::from_millis(10);
    cfg.backoff_max = Duration::from_millis(100);
    cfg
}

/// The flow of `examples/quickstart.rs` up to CONNACK: start-up, SIM, data call, TLS context,
/// socket, CONNECT. Returns the command lines the modem received meanwhile.
async fn customer_flow(m: &Modem<'static>, h: &ModemHandle, cfg: MqttConfig<'_>) -> Vec<String> {
    let start = h.commands().len();
    m.init().await.unwrap();
    assert_eq!(m.sim().status().await.unwrap(), SimStatus::Ready);
    let mut buf = [0u8; 4096];
    let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
    let conn = mqtt.connect(m).await.unwrap();
    drop(conn);
    h.commands()[start..].to_vec()
}

fn show(what: &str, commands: &[String]) {
    println!("{what}: {} command lines", commands.len());
    for (i, c) in commands.iter().enumerate() {
        println!("  {:2} {c}", i + 1);
    }
}

fn count(commands: &[String], prefix: &str) -> usize {
    commands.iter().filter(|c| c.starts_with(prefix)).count()
}

#[test]
fn modem_tls_first_boot_second_boot_and_reconnect() {
    let broker = Broker::start(BrokerOptions::default().grant(THING, Access::ReadWrite, IMEI));
    let device = broker.client(THING);
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();

    // First boot: empty file system.
    let (first, reconnect, reboot, files) =
        with_modem_in(resources(), config(), mock(), async |m, h| {
            let first = customer_flow(m, h, modem_tls(&ca, &device, port)).await;
            // The broker drops the connection; the client connects again.
            let mut buf = [0u8; 4096];
            let mut mqtt = Mqtt::new(modem_tls(&ca, &device, port), &mut buf, 2048).unwrap();
            let mut conn = mqtt.connect(m).await.unwrap();
            broker.restart();
            let err = embassy_time::with_timeout(Duration::from_secs(20), async {
                loop {
                    if let Err(e) = conn.poll().await {
                        break e;
                    }
                }
            })
            .await
            .expect("the dropped connection is noticed");
            println!("connection dropped: {err:?}");
            drop(conn);
            let mark = h.commands().len();
            let conn = mqtt.connect(m).await.unwrap();
            drop(conn);
            let reconnect = h.commands()[mark..].to_vec();
            // The module reboots; the client notices at its next connection and sets it up again.
            let boots = m.boots();
            let mark = h.commands().len();
            h.reboot();
            embassy_time::with_timeout(
                Duration::from_secs(10),
                m.wait_for_state(Duration::from_secs(10), |s| {
                    (s.boots > boots && s.pin.is_some()).then_some(())
                }),
            )
            .await
            .expect("reboot seen")
            .unwrap();
            let conn = mqtt.connect(m).await.unwrap();
            drop(conn);
            let reboot = h.commands()[mark..].to_vec();
            let files: Vec<(String, Vec<u8>)> = h
                .files()
                .into_iter()
                .map(|(name, _)| {
                    let bytes = h.file(&name).unwrap();
                    (name, bytes)
                })
                .collect();
            (first, reconnect, reboot, files)
        });
    show("first boot (certificates uploaded)", &first);
    show(
        "reconnect after the broker dropped the connection",
        &reconnect,
    );
    show("reconnect after a reboot of the module", &reboot);

    // Second boot: a new driver, a freshly booted modem that kept its files.
    let mut again = mock();
    for (name, bytes) in &files {
        again = again.file(name, bytes);
    }
    let (second, files_after) = with_modem_in(resources(), config(), again, async |m, h| {
        let second = customer_flow(m, h, modem_tls(&ca, &device, port)).await;
        (second, h.files())
    });
    show("second boot (certificates already on the modem)", &second);

    assert_eq!(count(&first, "AT+QFUPL"), 3, "{first:#?}");
    assert!(first.len() <= FIRST_BOOT_MAX, "first boot: {}", first.len());
    assert_eq!(count(&second, "AT+QFUPL"), 0, "{second:#?}");
    assert_eq!(count(&second, "AT+QFDEL"), 0, "{second:#?}");
    assert!(
        second.len() <= SECOND_BOOT_MAX,
        "second boot: {} > {SECOND_BOOT_MAX}",
        second.len()
    );
    assert_eq!(
        files_after.len(),
        files.len(),
        "no new file on the second boot"
    );
    assert!(
        reconnect.len() <= RECONNECT_MAX,
        "reconnect: {}",
        reconnect.len()
    );
    assert!(
        reboot.len() < SECOND_BOOT_MAX,
        "after a module reboot: {}",
        reboot.len()
    );
    assert_eq!(count(&reboot, "AT+QFUPL"), 0, "{reboot:#?}");
    assert_eq!(count(&reboot, "AT+CGSN"), 0, "{reboot:#?}");
    for c in &reconnect {
        assert!(
            c.starts_with("AT+QSSLCLOSE")
                || c.starts_with("AT+QSSLOPEN")
                || c.starts_with("AT+QSSLSEND")
                || c.starts_with("AT+QSSLRECV"),
            "reconnect re-configured the modem: {reconnect:#?}"
        );
    }
}

#[cfg(feature = "mcu-tls")]
#[test]
fn mcu_tls_boot() {
    use quectel::tls::{McuTlsConfig, TlsBuffers};
    let broker = Broker::start(BrokerOptions::default().grant(THING, Access::ReadWrite, IMEI));
    let device = broker.client(THING);
    let ca_der = broker.pki().ca_der.clone();
    let port = broker.port();
    let tls_buffers: &'static mut TlsBuffers = Box::leak(Box::new(TlsBuffers::new()));
    let commands = with_modem_in(resources(), config(), mock(), async |m, h| {
        let start = h.commands().len();
        m.init().await.unwrap();
        assert_eq!(m.sim().status().await.unwrap(), SimStatus::Ready);
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
        let conn = mqtt
            .connect_mcu_tls(m, tls_buffers, &tls, rand_core::OsRng)
            .await
            .unwrap();
        drop(conn);
        h.commands()[start..].to_vec()
    });
    show("MCU TLS", &commands);
    assert!(
        commands.len() <= MCU_TLS_MAX,
        "MCU TLS: {} > {MCU_TLS_MAX}",
        commands.len()
    );
}
