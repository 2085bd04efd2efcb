//! Aliyun IoT, one product one secret (一型一密): the first boot registers the device with the
//! ProductSecret and stores the DeviceSecret it gets; the second boot finds it in the store and
//! connects without registering — which is what keeps a device from being locked out (Aliyun
//! issues a DeviceSecret once; an activated device cannot register again).
//!
//! ```text
//! cargo run --example aliyun_dynamic_registration --features aliyun
//! ```
//!
//! Self-contained on this machine: a local Aliyun stand-in (Mosquitto with a TLS listener and a
//! password file, plus the responder of `tests/support/aliyun_broker.rs`, which answers
//! registrations and then "activates" the device) and a simulated BG96 whose TLS sockets reach
//! it. The store is a file in the temp directory, written with [`DeviceCredentials::encode`].
//! Needs the Debian package `mosquitto` (`cargo xtask test` installs it).
//!
//! Mosquitto only delivers to subscribers, so against it the registration sends a SUBSCRIBE
//! ([`Registration::subscribe_to_result`]); Aliyun publishes the answer without one, and on the
//! real platform the option stays off.

#[path = "../tests/support/aliyun_broker.rs"]
mod aliyun_broker;
#[path = "../tests/support/broker.rs"]
mod broker;

use std::path::PathBuf;
use std::process::exit;
use std::time::Duration as StdDuration;

use aliyun_broker::{AliyunCloud, CloudOptions};
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Timer, with_timeout};
use quectel::asynch::{self, Apn, Config, Modem, Resources, TlsConfig};
use quectel::cloud::aliyun::{
    CredentialStore, Device, DeviceCredentials, ENCODED_MAX, Provisioned, Random, Registration,
    RegistrationKind, RegistrationLink, provision,
};
use quectel::mqtt::{Mqtt, QoS, Transport};
use quectel_mock::{MockModem, Model};

const PRODUCT_KEY: &str = "a1X2bEnP82z";
/// Shared by every unit of the product; in a product it lives in protected flash.
const PRODUCT_SECRET: &str = "7jluWm1zql7bt8qK";
const DEVICE_NAME: &str = "example1";

/// A credential store in a file (on a device: a flash page, the modem's file system, …).
struct FileStore(PathBuf);

impl CredentialStore for FileStore {
    type Error = String;

    async fn load(&mut self) -> Result<Option<DeviceCredentials>, String> {
        match std::fs::read(&self.0) {
            Ok(bytes) => DeviceCredentials::decode(&bytes)
                .map(Some)
                .map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn save(&mut self, credentials: &DeviceCredentials) -> Result<(), String> {
        let mut buf = [0u8; ENCODED_MAX];
        let n = credentials.encode(&mut buf).map_err(|e| e.to_string())?;
        std::fs::write(&self.0, &buf[..n]).map_err(|e| e.to_string())
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        exit(1);
    }
    println!("done");
}

fn run() -> Result<(), String> {
    // A fresh random per registration; here the stand-in is told the value in advance.
    let random = Random::from_u64(std::process::id().into());
    let cloud = AliyunCloud::start(&CloudOptions {
        product_key: PRODUCT_KEY.into(),
        product_secret: PRODUCT_SECRET.into(),
        devices: vec![DEVICE_NAME.into()],
        flashed: Vec::new(),
        random: random.as_str().into(),
        sign_method: "hmacsha256".into(),
    })?;
    println!("[cloud] Aliyun stand-in on 127.0.0.1:{}", cloud.port());
    let store_path =
        std::env::temp_dir().join(format!("quectel-aliyun-store-{}", std::process::id()));
    let _ = std::fs::remove_file(&store_path);
    let mut store = FileStore(store_path.clone());

    let (rx, tx, _modem) = MockModem::new(Model::Bg96)
        .search_time(StdDuration::from_millis(100))
        .spawn();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let resources: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let ca = cloud.ca_pem();
    let result = rt.block_on(async {
        let (runner, modem) = asynch::new(resources, rx, tx, Config::default());
        let flow = async {
            fn step<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
                move |e| format!("{what}: {e}")
            }
            modem.init().await.map_err(step("modem start-up"))?;
            modem
                .data_call()
                .configure(1, &Apn::new("internet"))
                .await
                .map_err(step("APN"))?;
            modem
                .network()
                .wait_network_ready(1, Duration::from_secs(60))
                .await
                .map_err(|e| format!("network not ready: {e:?}"))?;
            for boot in 1..=2 {
                println!("--- boot {boot} ---");
                boot_once(&modem, &cloud, &mut store, &random, &ca).await?;
            }
            Ok::<(), String>(())
        };
        let timed = tokio::time::timeout(StdDuration::from_secs(90), async {
            match select(runner.run(), flow).await {
                Either::First(never) => never,
                Either::Second(r) => r,
            }
        });
        timed
            .await
            .map_err(|_| "the example did not finish within 90 s".to_string())?
    });
    let _ = std::fs::remove_file(&store_path);
    result?;
    let registrations = cloud.count("registered ");
    println!("[cloud] registrations: {registrations} (two boots)");
    if registrations != 1 {
        return Err(format!("expected one registration, saw {registrations}"));
    }
    Ok(())
}

async fn boot_once(
    modem: &Modem<'_>,
    cloud: &AliyunCloud,
    store: &mut FileStore,
    random: &Random,
    ca: &str,
) -> Result<(), String> {
    fn step<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
        move |e| format!("{what}: {e}")
    }
    let device = Device::new(PRODUCT_KEY, DEVICE_NAME).map_err(|e| e.to_string())?;
    let link = RegistrationLink {
        cid: 1,
        ssl_ctx: 1,
        tls: TlsConfig::new(ca.as_bytes()),
        host: "localhost",
        port: cloud.port(),
    };
    let registration = Registration::new(
        device,
        PRODUCT_SECRET,
        RegistrationKind::Register,
        random.clone(),
    )
    .subscribe_to_result(true); // only because the stand-in is Mosquitto
    let mut buf = [0u8; 512];
    let provisioned = provision(modem, &link, &registration, store, &mut buf)
        .await
        .map_err(step("provision"))?;
    match &provisioned {
        Provisioned::Stored(c) => println!("[device] credentials from the store: {c:?}"),
        Provisioned::Registered(c) => {
            println!("[device] registered, DeviceSecret stored: {c:?}");
            // The stand-in activates the device once it disconnected from the registration.
            let deadline = std::time::Instant::now() + StdDuration::from_secs(15);
            while cloud.count("activated ") == 0 {
                if std::time::Instant::now() > deadline {
                    return Err("the stand-in did not activate the device".into());
                }
                Timer::after(Duration::from_millis(50)).await;
            }
        }
        Provisioned::RegisteredNotSaved(_) => {
            return Err("registered, but the store failed: save before rebooting!".into());
        }
    }
    let creds = provisioned
        .credentials()
        .mqtt_credentials(device)
        .map_err(|e| format!("credentials: {e}"))?;
    println!("[device] {creds:?}");
    let transport = Transport::ModemTls {
        ssl_ctx: 2,
        tls: TlsConfig::new(ca.as_bytes()),
    };
    let config = creds
        .mqtt_config("localhost", cloud.port(), transport, Apn::new("internet"))
        .map_err(step("MQTT configuration"))?;
    let mut mem = [0u8; 2048];
    let mut mqtt = Mqtt::new(config, &mut mem, 1024).map_err(step("MQTT client"))?;
    let mut conn = mqtt.connect(modem).await.map_err(step("MQTT connect"))?;
    let topic = device.user_topic("update").map_err(|e| e.to_string())?;
    conn.publish(&topic, b"hello from a registered device", QoS::AtLeastOnce)
        .await
        .map_err(step("publish"))?;
    while !conn.all_acknowledged() {
        with_timeout(Duration::from_secs(10), conn.poll())
            .await
            .map_err(|_| "no PUBACK within 10 s".to_string())?
            .map_err(step("waiting for PUBACK"))?;
    }
    println!(
        "[device] connected as {} and published to {topic}",
        creds.client_id()
    );
    conn.disconnect().await.map_err(step("disconnect"))
}
