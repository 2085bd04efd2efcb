//! Aliyun IoT, one device one secret (一机一密): sign the MQTT password from the device's
//! triple (ProductKey / DeviceName / DeviceSecret), connect over TLS in the modem, and report a
//! property on the thing model topic.
//!
//! ```text
//! cargo run --example aliyun_one_device --features aliyun
//! ```
//!
//! Self-contained on this machine: it starts a local Aliyun stand-in — Mosquitto with a TLS
//! listener on 127.0.0.1 (server authentication only) and a password file, and the responder
//! (`tests/support/aliyun_broker.rs`: an MQTT client thread of this program, rumqttc, sharing no
//! code with the crate), which writes the device's password entry computed with its own HMAC and
//! reports what the device publishes — and a simulated BG96 whose TLS sockets reach it. Needs the
//! Debian package `mosquitto` (`cargo xtask test` installs it).
//!
//! On the real platform the endpoint is `{ProductKey}.iot-as-mqtt.{region}.aliyuncs.com` (old
//! public instances, MQTT 3.1.1 only) or the instance endpoint; [`Mqtt`] speaks MQTT 5, which
//! Aliyun serves on Enterprise Edition instances only (see `docs/aliyun.md`).

#[path = "../tests/support/aliyun_broker.rs"]
mod aliyun_broker;
#[path = "../tests/support/broker.rs"]
mod broker;

use std::process::exit;
use std::time::Duration as StdDuration;

use aliyun_broker::{AliyunCloud, CloudOptions};
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, with_timeout};
use quectel::asynch::{self, Apn, Config, Modem, Resources, TlsConfig};
use quectel::cloud::aliyun::{self, Device, MqttCredentials, SignMethod};
use quectel::mqtt::{Mqtt, QoS, Transport};
use quectel_mock::{MockModem, Model};

const PRODUCT_KEY: &str = "a1X2bEnP82z";
const DEVICE_NAME: &str = "example1";
/// In a product this comes from the factory (flash, secure element), never from source code.
const DEVICE_SECRET: &str = "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe";
/// Short: with the `|securemode=2,signmethod=hmacsha256|` parameters the whole client id must
/// fit minimq's 64 bytes.
const CLIENT_ID: &str = "sn-0001";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        exit(1);
    }
    println!("done");
}

fn run() -> Result<(), String> {
    let cloud = AliyunCloud::start(&CloudOptions {
        product_key: PRODUCT_KEY.into(),
        product_secret: "unused-here".into(),
        devices: Vec::new(),
        flashed: vec![(
            DEVICE_NAME.into(),
            DEVICE_SECRET.into(),
            CLIENT_ID.into(),
            "hmacsha256".into(),
        )],
        random: "0".into(),
        sign_method: "hmacsha256".into(),
    })?;
    println!(
        "[cloud] Aliyun stand-in: mosquitto on 127.0.0.1:{} (TLS, user name + password)",
        cloud.port()
    );

    let device = Device::new(PRODUCT_KEY, DEVICE_NAME).map_err(|e| e.to_string())?;
    let creds = MqttCredentials::builder(device, DEVICE_SECRET)
        .client_id(CLIENT_ID)
        .sign_method(SignMethod::HmacSha256)
        .build()
        .map_err(|e| format!("credentials: {e}"))?;
    // Debug never shows the password.
    println!("[device] {creds:?}");
    println!(
        "[device] real endpoint would be {}",
        aliyun::public_endpoint(PRODUCT_KEY, "cn-shanghai").map_err(|e| e.to_string())?
    );
    let topic = device.property_post().map_err(|e| e.to_string())?;
    let payload = br#"{"id":"1","version":"1.0","params":{"Power":{"value":"on"}},"method":"thing.event.property.post"}"#;

    let (rx, tx, _modem) = MockModem::new(Model::Bg96)
        .search_time(StdDuration::from_millis(100))
        .spawn();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let resources: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let port = cloud.port();
    let ca = cloud.ca_pem();
    let result = rt.block_on(async {
        let (runner, modem) = asynch::new(resources, rx, tx, Config::default());
        let flow = flow(&modem, &creds, &ca, port, &topic, payload);
        let timed = tokio::time::timeout(StdDuration::from_secs(60), async {
            match select(runner.run(), flow).await {
                Either::First(never) => never,
                Either::Second(r) => r,
            }
        });
        timed
            .await
            .map_err(|_| "the example did not finish within 60 s".to_string())?
    });
    result?;
    match cloud.wait_message(&topic, StdDuration::from_secs(10)) {
        Some(p) => println!(
            "[cloud] received on {topic}: {}",
            String::from_utf8_lossy(&p)
        ),
        None => return Err(format!("the cloud did not receive the report on {topic}")),
    }
    Ok(())
}

async fn flow(
    modem: &Modem<'_>,
    creds: &MqttCredentials,
    ca: &str,
    port: u16,
    topic: &str,
    payload: &[u8],
) -> Result<(), String> {
    fn step<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
        move |e| format!("{what}: {e}")
    }
    let id = modem.init().await.map_err(step("modem start-up"))?;
    println!("[device] Quectel {} ({})", id.model_name, id.revision);
    let tls = TlsConfig::new(ca.as_bytes());
    let transport = Transport::ModemTls { ssl_ctx: 1, tls };
    // "localhost" here; on Aliyun, the endpoint above and port aliyun::PORT.
    let config = creds
        .mqtt_config("localhost", port, transport, Apn::new("internet"))
        .map_err(step("MQTT configuration"))?;
    let mut buffer = [0u8; 2048];
    let mut mqtt = Mqtt::new(config, &mut buffer, 1024).map_err(step("MQTT client"))?;
    let mut conn = mqtt.connect(modem).await.map_err(step("MQTT connect"))?;
    println!("[device] connected as {}", creds.client_id());
    conn.publish(topic, payload, QoS::AtLeastOnce)
        .await
        .map_err(step("publish"))?;
    while !conn.all_acknowledged() {
        with_timeout(Duration::from_secs(10), conn.poll())
            .await
            .map_err(|_| "no PUBACK within 10 s".to_string())?
            .map_err(step("waiting for PUBACK"))?;
    }
    println!("[device] property report acknowledged (QoS 1)");
    conn.disconnect().await.map_err(step("disconnect"))
}
