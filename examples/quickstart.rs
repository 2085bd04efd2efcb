//! Quickstart: the QuecPython "connect to AWS IoT Core" guide, redone in Rust — check the SIM,
//! check the data call, open an MQTT client over TLS (port 8883, device certificate and key),
//! subscribe to `<IMEI>`, publish `Hello, AWS Cloud!` to it, and print what the cloud sends down.
//!
//! ```text
//! cargo run --example quickstart --features mqtt
//! ```
//!
//! needs nothing but Rust. Everything runs in this process — an MQTT 5 broker (rumqttd) with a
//! TLS listener on 127.0.0.1 that requires a client certificate, a PKI generated at start (CA,
//! server certificate, device certificate `device-1`), a simulated BG96 whose TLS sockets
//! (`AT+QSSLOPEN`) reach that broker, and the driver. The "cloud" answers with a downlink.
//!
//! With a real modem on a serial port and a real endpoint (AWS IoT: the ATS endpoint, the Amazon
//! root CA, the thing's certificate and key; send a downlink to the IMEI topic from the
//! console's MQTT test client while the example waits):
//!
//! ```text
//! cargo run --example quickstart --features mqtt -- --serial /dev/ttyUSB2 \
//!     --endpoint a1b2c3-ats.iot.eu-west-1.amazonaws.com \
//!     --ca AmazonRootCA1.pem --cert device.pem.crt --key private.pem.key --apn internet
//! ```
//!
//! The TLS session runs in the modem (`Transport::ModemTls`): the certificates are uploaded to
//! the module's file system (`AT+QFUPL`) and referenced by SSL context 1.

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::exit;
use std::time::Duration as StdDuration;

use embassy_futures::select::{Either, select};
use embassy_time::{Duration, with_timeout};
use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{Read, Write};
use quectel::asynch::{self, Apn, Config, Modem, Resources, SimStatus, TlsConfig};
use quectel::mqtt::{Mqtt, MqttConfig, QoS, Transport};
use quectel_mock::peers::TestPki;
use quectel_mock::{MockModem, Model};

#[path = "common/broker.rs"]
mod broker;
use broker::start_broker;

const USAGE: &str = "\
usage: cargo run --example quickstart --features mqtt [-- OPTIONS]

without options: a simulated modem and an MQTT broker embedded in this process
  --serial <device>    a real modem on this serial port (e.g. /dev/ttyUSB2, COM5)
  --baud <n>           its baud rate (default 115200)
  --endpoint <host>    a real broker (e.g. the AWS IoT ATS endpoint); needs --serial
  --port <n>           its port (default 8883)
  --ca <pem file>      CA certificate of the endpoint (e.g. AmazonRootCA1.pem)
  --cert <pem file>    device certificate
  --key <pem file>     device private key
  --apn <apn>          APN of the data call (default internet)
  --client-id <id>     MQTT client id (default: the IMEI; on AWS IoT, the thing name)
  --wait <seconds>     how long to wait for downlinks from a real endpoint (default 60)";

const UPLINK: &[u8] = b"Hello, AWS Cloud!";
const DOWNLINK: &[u8] = b"{\"message\": \"Hello from the cloud!\"}";
/// The simulated run must be done within this time.
const SIMULATED_TIMEOUT: StdDuration = StdDuration::from_secs(60);
/// With real hardware: the time allowed until the publish is acknowledged (then `--wait`).
const HARDWARE_TIMEOUT: StdDuration = StdDuration::from_secs(180);

#[derive(Default)]
struct Args {
    serial: Option<String>,
    baud: Option<u32>,
    endpoint: Option<String>,
    port: Option<u16>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    apn: Option<String>,
    client_id: Option<String>,
    wait: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    fn number<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
        v.parse()
            .map_err(|_| format!("{flag} wants a number, got '{v}'"))
    }
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--serial" => args.serial = Some(value),
            "--baud" => args.baud = Some(number(&flag, value)?),
            "--endpoint" => args.endpoint = Some(value),
            "--port" => args.port = Some(number(&flag, value)?),
            "--ca" => args.ca = Some(value.into()),
            "--cert" => args.cert = Some(value.into()),
            "--key" => args.key = Some(value.into()),
            "--apn" => args.apn = Some(value),
            "--client-id" => args.client_id = Some(value),
            "--wait" => args.wait = Some(number(&flag, value)?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

/// Where the MQTT client connects, with which credentials, and who plays the cloud.
struct Target {
    host: String,
    port: u16,
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
    /// How to name the client certificate in the output (never its contents).
    cert_name: String,
    apn: String,
    client_id: Option<String>,
    /// The embedded broker's in-process link: the "cloud" that sends the downlink.
    cloud: Option<rumqttd::local::LinkTx>,
    /// With a real endpoint: how long to listen for downlinks.
    wait: StdDuration,
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("error: {e}\n\n{USAGE}");
        exit(2)
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = match (&args.serial, &args.endpoint) {
        (None, Some(_)) => Err(
            "--endpoint needs --serial: the simulated modem only reaches 127.0.0.1, not the \
             internet (without --endpoint, the example starts its own broker)"
                .into(),
        ),
        (None, None) => simulated(&args, &rt),
        (Some(device), endpoint) => hardware(&args, device, endpoint.as_deref(), &rt),
    };
    match result {
        Ok(()) => println!("done"),
        Err(e) => {
            eprintln!("error: {e}");
            exit(1)
        }
    }
}

/// Default mode: PKI, embedded broker, simulated BG96, all in this process.
fn simulated(args: &Args, rt: &tokio::runtime::Runtime) -> Result<(), String> {
    if args.ca.is_some() || args.cert.is_some() || args.key.is_some() || args.wait.is_some() {
        return Err("--ca, --cert, --key and --wait go with --endpoint".into());
    }
    let pki = TestPki::generate();
    let dir = std::env::temp_dir().join(format!("quectel-quickstart-{}", std::process::id()));
    let broker = start_broker(&pki, &dir);
    let result =
        broker.and_then(|(addr, cloud, _cloud_rx)| simulated_flow(args, &pki, addr, cloud, rt));
    let _ = std::fs::remove_dir_all(&dir); // rumqttd reads its files at every TLS accept
    result
}

fn simulated_flow(
    args: &Args,
    pki: &TestPki,
    addr: SocketAddr,
    cloud: rumqttd::local::LinkTx,
    rt: &tokio::runtime::Runtime,
) -> Result<(), String> {
    println!("[cloud] MQTT 5 broker (rumqttd) on {addr}: TLS, client certificate required");

    // A simulated BG96 on a 115200-baud "UART"; its TLS sockets are real (rustls).
    let (rx, tx, _modem) = MockModem::new(Model::Bg96)
        .baud(Some(115_200))
        .search_time(StdDuration::from_millis(300))
        .spawn();
    let target = Target {
        host: addr.ip().to_string(),
        port: addr.port(),
        ca: pki.ca_pem.clone().into_bytes(),
        cert: pki.client_cert_pem.clone().into_bytes(),
        key: pki.client_key_pem.clone().into_bytes(),
        cert_name: TestPki::CLIENT_CN.into(),
        apn: args.apn.clone().unwrap_or_else(|| "internet".into()),
        client_id: args.client_id.clone(),
        cloud: Some(cloud),
        wait: StdDuration::ZERO,
    };
    let flow = rt
        .block_on(async { tokio::time::timeout(SIMULATED_TIMEOUT, device(rx, tx, target)).await });
    flow.map_err(|_| {
        format!(
            "the quickstart did not finish within {} s",
            SIMULATED_TIMEOUT.as_secs()
        )
    })?
}

/// A real modem on a serial port, and a real endpoint.
fn hardware(
    args: &Args,
    serial: &str,
    endpoint: Option<&str>,
    rt: &tokio::runtime::Runtime,
) -> Result<(), String> {
    let Some(host) = endpoint else {
        return Err(
            "--serial needs --endpoint: a real modem cannot reach the broker embedded \
                    in this process"
                .into(),
        );
    };
    let read = |flag: &str, path: &Option<PathBuf>| -> Result<Vec<u8>, String> {
        let path = path
            .as_ref()
            .ok_or(format!("--endpoint needs {flag} <pem file>"))?;
        std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
    };
    let cert_path = args
        .cert
        .as_deref()
        .unwrap_or("device certificate".as_ref());
    let target = Target {
        host: host.into(),
        port: args.port.unwrap_or(8883),
        ca: read("--ca", &args.ca)?,
        cert: read("--cert", &args.cert)?,
        key: read("--key", &args.key)?,
        cert_name: cert_path.display().to_string(),
        apn: args.apn.clone().unwrap_or_else(|| "internet".into()),
        client_id: args.client_id.clone(),
        cloud: None,
        wait: StdDuration::from_secs(args.wait.unwrap_or(60)),
    };
    let baud = args.baud.unwrap_or(115_200);
    let total = HARDWARE_TIMEOUT + target.wait;
    rt.block_on(async {
        use tokio_serial::SerialPortBuilderExt as _;
        let port = tokio_serial::new(serial, baud)
            .open_native_async()
            .map_err(|e| format!("cannot open {serial}: {e}"))?;
        println!("modem on {serial} at {baud} baud");
        let (rx, tx) = tokio::io::split(port);
        let flow = device(FromTokio::new(rx), FromTokio::new(tx), target);
        tokio::time::timeout(total, flow)
            .await
            .map_err(|_| format!("timed out after {} s", total.as_secs()))?
    })
}

/// The customer's flow, on any UART.
async fn device<R: Read, W: Write>(rx: R, tx: W, target: Target) -> Result<(), String> {
    let resources: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let (runner, modem) = asynch::new(resources, rx, tx, Config::default());
    match select(runner.run(), flow(&modem, target)).await {
        Either::First(never) => never,
        Either::Second(result) => result,
    }
}

async fn flow(modem: &Modem<'_>, mut target: Target) -> Result<(), String> {
    // Every layer's error (quectel::Error, quectel::mqtt::MqttError) prints with Display.
    fn step<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
        move |e| format!("{what}: {e}")
    }
    let id = modem.init().await.map_err(step("modem start-up"))?;
    println!(
        "modem: Quectel {} ({}), IMEI {}",
        id.model_name, id.revision, id.imei
    );
    let imei = id.imei.as_str();

    let sim = modem
        .sim()
        .status()
        .await
        .map_err(step("sim.getStatus()"))?;
    println!(">>> sim.getStatus()\n{}", sim.quecpython_code());
    if sim != SimStatus::Ready {
        return Err(format!("the SIM is not ready: {sim:?}"));
    }

    let data_call = modem.data_call();
    let apn = Apn::new(&target.apn);
    data_call.configure(1, &apn).await.map_err(step("APN"))?;
    let network = modem.network();
    if let Err(e) = network
        .wait_network_ready(1, Duration::from_secs(120))
        .await
    {
        return Err(format!("network not ready (stage {}): {e:?}", e.stage()));
    }
    let info = data_call.info(1).await.map_err(step("dataCall.getInfo"))?;
    let ip = info.ipv4.as_deref().unwrap_or("0.0.0.0");
    let dns1 = info.dns_primary.as_deref().unwrap_or("0.0.0.0");
    let dns2 = info.dns_secondary.as_deref().unwrap_or("0.0.0.0");
    let active = u8::from(info.active);
    println!(">>> dataCall.getInfo(1, 0)\n[1, 0, [{active}, 0, '{ip}', '{dns1}', '{dns2}']]");

    // MQTT over TLS in the modem, with the device certificate.
    let tls = TlsConfig::new(&target.ca).with_client_identity(&target.cert, &target.key);
    let client_id = target.client_id.as_deref().unwrap_or(imei);
    let transport = Transport::ModemTls { ssl_ctx: 1, tls };
    let config = MqttConfig::new(&target.host, target.port, client_id, transport, apn);
    let mut buffer = [0u8; 4096];
    let mut mqtt = Mqtt::new(config, &mut buffer, 2048).map_err(step("MQTT client"))?;
    mqtt.subscribe_on_connect(imei, QoS::AtLeastOnce)
        .map_err(step("subscribe"))?;
    // The message callback.
    let downlinks = Cell::new(0);
    let on_message = |topic: &str, payload: &[u8]| {
        let text = String::from_utf8_lossy(payload);
        println!("[callback] topic '{topic}': '{text}'");
        if payload != UPLINK {
            downlinks.set(downlinks.get() + 1);
        }
    };

    let (host, port) = (&target.host, target.port);
    let mut conn = mqtt.connect(modem).await.map_err(step("MQTT connect"))?;
    let cert_name = &target.cert_name;
    println!("[mqtt] connected to {host}:{port} as '{client_id}' (TLS, client cert {cert_name})");
    let publish = conn.publish(imei, UPLINK, QoS::AtLeastOnce);
    publish.await.map_err(step("publish"))?;
    // Until the broker acknowledged the SUBSCRIBE (sent by `connect`) and the PUBLISH.
    while !conn.all_acknowledged() {
        let polled = with_timeout(Duration::from_secs(30), conn.poll()).await;
        match polled.map_err(|_| "no SUBACK/PUBACK within 30 s".to_string())? {
            Ok(Some(msg)) => on_message(msg.topic(), msg.payload()),
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for SUBACK/PUBACK: {e}")),
        }
    }
    println!("[mqtt] subscribed to {imei} (SUBACK)");
    let uplink = String::from_utf8_lossy(UPLINK);
    println!("[mqtt] published '{uplink}' to {imei} (QoS 1, PUBACK)");

    match target.cloud.as_mut() {
        // The embedded broker: the cloud sends a downlink, the callback prints it.
        Some(cloud) => {
            cloud
                .publish(imei.to_string(), DOWNLINK)
                .map_err(|e| format!("cloud publish: {e}"))?;
            let downlink = String::from_utf8_lossy(DOWNLINK);
            println!("[cloud] downlink to {imei}: '{downlink}'");
            while downlinks.get() == 0 {
                let msg = conn
                    .recv()
                    .await
                    .map_err(step("waiting for the downlink"))?;
                on_message(msg.topic(), msg.payload());
            }
        }
        // A real endpoint: print what arrives for a while.
        None => {
            let wait = target.wait.as_secs();
            println!("[mqtt] waiting {wait} s for messages to '{imei}' (publish from the console)");
            let served = with_timeout(Duration::from_secs(wait), conn.run(on_message)).await;
            if let Ok(e) = served {
                return Err(format!("connection lost: {e}"));
            }
            println!("[mqtt] {} downlink(s) in {wait} s", downlinks.get());
        }
    }
    conn.disconnect().await.map_err(step("disconnect"))
}
