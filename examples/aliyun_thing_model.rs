//! Aliyun IoT, the whole device flow with the Alink thing model: register if no DeviceSecret is
//! stored (一型一密), connect with it, report properties (matched with the platform's
//! `post_reply`), take a property set from the cloud and answer it, and answer an RRPC request
//! within the platform's deadline.
//!
//! ```text
//! cargo run --example aliyun_thing_model --features aliyun
//! ```
//!
//! Self-contained on this machine: a local Aliyun stand-in (Mosquitto with a TLS listener and a
//! password file, plus the responder of `tests/support/aliyun_broker.rs`, which registers and
//! activates the device, answers property posts like the platform, and sends the property set
//! and the RRPC request, checking the replies and the RRPC deadline) and a simulated BG96 whose
//! TLS sockets reach it. Needs the Debian package `mosquitto` (`cargo xtask test` installs it).
//! Exits 0 only if every step succeeded.
//!
//! The application code is the same against Aliyun: change the host (see
//! `aliyun::public_endpoint`), the CA (GlobalSign Root R1) and drop
//! `Registration::subscribe_to_result` (Mosquitto delivers only to subscribers).

#[path = "../tests/support/aliyun_broker.rs"]
mod aliyun_broker;
#[path = "../tests/support/broker.rs"]
mod broker;

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::exit;
use std::time::Duration as StdDuration;

use aliyun_broker::{AliyunCloud, CloudOptions};
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Instant, Timer};
use quectel::asynch::{self, Apn, Config, Modem, Resources, TlsConfig};
use quectel::cloud::aliyun::{
    CODE_OK, CredentialStore, Device, DeviceCredentials, ENCODED_MAX, Inbound, Provisioned, Random,
    Registration, RegistrationKind, RegistrationLink, Thing, provision,
};
use quectel::mqtt::{Mqtt, Outbox, QoS, Transport};
use quectel_mock::{MockModem, Model};
use serde::Serialize;

const PRODUCT_KEY: &str = "a1X2bEnP82z";
/// Shared by every unit of the product; in a product it lives in protected flash.
const PRODUCT_SECRET: &str = "7jluWm1zql7bt8qK";
const DEVICE_NAME: &str = "example1";

/// The properties reported (identifiers of the product's thing model).
#[derive(Serialize)]
struct Properties {
    #[serde(rename = "PowerSwitch")]
    power_switch: u8,
    #[serde(rename = "CurrentTemperature")]
    current_temperature: f32,
}

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

fn step<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

fn run() -> Result<(), String> {
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
        std::env::temp_dir().join(format!("quectel-aliyun-thing-{}", std::process::id()));
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
            device_flow(&modem, &cloud, &mut store, &random, &ca).await
        };
        let timed = tokio::time::timeout(StdDuration::from_secs(120), async {
            match select(runner.run(), flow).await {
                Either::First(never) => never,
                Either::Second(r) => r,
            }
        });
        timed
            .await
            .map_err(|_| "the example did not finish within 120 s".to_string())?
    });
    let _ = std::fs::remove_file(&store_path);
    result?;
    let errors: Vec<String> = cloud
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("error"))
        .collect();
    if !errors.is_empty() {
        return Err(format!("the stand-in saw errors: {errors:?}"));
    }
    Ok(())
}

/// Waits (without blocking the modem runner) for a stand-in line starting with `prefix`, and
/// prints it; an `error` line or 15 s without it fails.
async fn cloud_says(cloud: &AliyunCloud, prefix: &str) -> Result<String, String> {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(15);
    loop {
        let lines = cloud.lines();
        if let Some(l) = lines.iter().find(|l| l.starts_with(prefix)) {
            println!("[cloud] {l}");
            return Ok(l.clone());
        }
        if let Some(e) = lines.iter().find(|l| l.starts_with("error")) {
            return Err(format!("the stand-in: {e}"));
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("the stand-in did not say '{prefix}…' within 15 s"));
        }
        Timer::after(Duration::from_millis(20)).await;
    }
}

async fn device_flow(
    modem: &Modem<'_>,
    cloud: &AliyunCloud,
    store: &mut FileStore,
    random: &Random,
    ca: &str,
) -> Result<(), String> {
    // 1. Credentials: from the store, or registered (一型一密) and stored first.
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
        Provisioned::Stored(_) => println!("[device] DeviceSecret from the store"),
        Provisioned::Registered(_) => {
            println!("[device] no DeviceSecret stored: registered, DeviceSecret stored");
            cloud_says(cloud, "activated ").await?;
        }
        Provisioned::RegisteredNotSaved(_) => {
            return Err("registered, but the store failed: save before rebooting!".into());
        }
    }

    // 2. Connect (one device, one secret) and subscribe to the thing model's topics.
    let creds = provisioned
        .credentials()
        .mqtt_credentials(device)
        .map_err(step("credentials"))?;
    let transport = Transport::ModemTls {
        ssl_ctx: 2,
        tls: TlsConfig::new(ca.as_bytes()),
    };
    // MQTT 3.1.1, as on an Aliyun public instance (mqtt_config's choice).
    let config = creds
        .mqtt_config("localhost", cloud.port(), transport, Apn::new("internet"))
        .map_err(step("MQTT configuration"))?;
    let mut mem = [0u8; 4096];
    let mut mqtt = Mqtt::new(config, &mut mem, 2048).map_err(step("MQTT client"))?;
    let mut conn = mqtt.connect(modem).await.map_err(step("MQTT connect"))?;
    println!("[device] connected as {}", creds.client_id());
    let thing: Thing<'_, 4> = Thing::new(device);
    for filter in thing.subscriptions().map_err(step("topics"))? {
        conn.subscribe(&filter, QoS::AtLeastOnce)
            .await
            .map_err(step("subscribe"))?;
    }

    // 3. The message callback: sorts what arrives and answers through the outbox.
    let outbox: Outbox<4, 512> = Outbox::new();
    let accepted: RefCell<Vec<u32>> = RefCell::new(Vec::new());
    let failures: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let on_message = |topic: &str, payload: &[u8]| {
        let mut out = [0u8; 256];
        let outcome = match thing.handle(topic, payload) {
            Ok(Some(Inbound::PostReply(r))) => {
                println!(
                    "[device] post {} accepted by the platform (code 200) after {} ms",
                    r.id,
                    r.latency.as_millis()
                );
                accepted.borrow_mut().push(r.id);
                Ok(())
            }
            Ok(Some(Inbound::PropertySet(request))) => {
                println!(
                    "[device] property set {} from the cloud: {}",
                    request.reply_to.id,
                    String::from_utf8_lossy(request.params)
                );
                thing
                    .reply(&request.reply_to, CODE_OK, None, &mut out)
                    .map_err(|e| e.to_string())
                    .and_then(|reply| {
                        outbox
                            .try_publish(reply.topic(), reply.payload(), QoS::AtLeastOnce)
                            .map_err(|e| e.to_string())
                    })
            }
            Ok(Some(Inbound::Rrpc(request))) => {
                println!(
                    "[device] RRPC request {}: {:?}",
                    request.ticket.message_id,
                    String::from_utf8_lossy(request.payload)
                );
                thing
                    .rrpc_response(&request.ticket, Instant::now())
                    .map_err(|e| e.to_string())
                    .and_then(|topic| {
                        outbox
                            .try_publish(&topic, b"pong", QoS::AtMostOnce)
                            .map_err(|e| e.to_string())
                    })
            }
            Ok(Some(other)) => {
                println!("[device] other message: {other:?}");
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = outcome {
            println!("[device] error: {e}");
            failures.borrow_mut().push(e);
        }
    };

    // 4. The application: report, then let the cloud set a property and call RRPC.
    let script = async {
        let mut out = [0u8; 256];
        let post = thing
            .property_post(
                &Properties {
                    power_switch: 1,
                    current_temperature: 23.5,
                },
                &mut out,
            )
            .map_err(step("property post"))?;
        let id = post.id().unwrap_or_default();
        println!(
            "[device] property post {id} to {}: {}",
            post.topic(),
            String::from_utf8_lossy(post.payload())
        );
        outbox
            .publish(post.topic(), post.payload(), QoS::AtLeastOnce)
            .await
            .map_err(step("publish"))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while !accepted.borrow().contains(&id) {
            if Instant::now() > deadline {
                return Err(format!("no post_reply for post {id} within 15 s"));
            }
            Timer::after(Duration::from_millis(20)).await;
        }

        println!("[cloud] sends a property set: {{\"PowerSwitch\":0}}");
        cloud.send_property_set(DEVICE_NAME, serde_json::json!({"PowerSwitch": 0}));
        cloud_says(cloud, "property-set-ok ").await?;

        println!("[cloud] calls RRPC with \"ping\" (timeout 8000 ms)");
        cloud.send_rrpc(
            DEVICE_NAME,
            b"ping",
            Some(b"pong"),
            StdDuration::from_secs(8),
        );
        cloud_says(cloud, "rrpc-ok ").await?;

        let deadline = Instant::now() + Duration::from_secs(10);
        while !outbox.is_empty() {
            if Instant::now() > deadline {
                return Err("the outbox did not drain within 10 s".into());
            }
            Timer::after(Duration::from_millis(20)).await;
        }
        Ok::<(), String>(())
    };
    let result = match select(conn.serve(&outbox, on_message), script).await {
        Either::First(e) => Err(format!("connection failed: {e}")),
        Either::Second(r) => r,
    };
    result?;
    if let Some(e) = failures.borrow().first() {
        return Err(format!("the device failed to handle a message: {e}"));
    }
    conn.disconnect().await.map_err(step("disconnect"))
}
