//! AWS IoT fleet provisioning by claim, the whole first-boot flow, step by step:
//!
//! 1. connect with the shared **claim** certificate (TLS in the modem, context 1);
//! 2. make a P-256 key on the device and a CSR, `CreateCertificateFromCsr`;
//! 3. `RegisterThing` with the template and `SerialNumber`, which activates the certificate;
//! 4. save the new identity (one call to the `IdentityStore`);
//! 5. reconnect with it (TLS context 2, client id = thing name) and publish telemetry.
//!
//! ```text
//! cargo run --example aws_fleet_provisioning --features aws
//! ```
//!
//! runs everything on this machine: a private mosquitto on 127.0.0.1 set up like AWS IoT Core
//! (mutual TLS, TLS 1.3, certificate CN = user, an ACL that gives the claim certificate only
//! the provisioning topics), the provisioning "service" (`FleetResponder` in
//! `tests/support/broker.rs`: an MQTT client thread of this program, rumqttc + rcgen, that shares
//! no code with the crate) and a simulated BG96 whose TLS sockets reach that broker. It needs the
//! Debian packages `mosquitto` and `mosquitto-clients` (`cargo xtask test` installs them).
//!
//! With a real modem and AWS (create the template, the claim certificate and its policy as
//! `docs/aws-fleet-provisioning.md` says):
//!
//! ```text
//! cargo run --example aws_fleet_provisioning --features aws -- --serial /dev/ttyUSB2 \
//!     --endpoint a1b2c3-ats.iot.eu-west-1.amazonaws.com --ca AmazonRootCA1.pem \
//!     --claim-cert claim.pem.crt --claim-key claim.private.key \
//!     --template QuectelFleetTemplate --serial-number SN0001 --apn internet
//! ```

#[path = "../tests/support/broker.rs"]
mod broker;

use std::path::PathBuf;
use std::process::exit;
use std::time::Duration as StdDuration;

use embassy_futures::select::{Either, select};
use embassy_time::{Duration, with_timeout};
use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{Read, Write};
use quectel::asynch::{self, Apn, Config, Modem, Resources, TlsConfig};
use quectel::cloud::aws::{
    DeviceKey, Endpoint, FleetProvisioning, IdentityStore, Operation, RECOMMENDED_CSR_BUFFER,
    RamIdentityStore,
};
use quectel::mqtt::{Mqtt, QoS};
use quectel_mock::{MockModem, Model};

use broker::{Acl, Broker, BrokerOptions, FleetResponder, Subscriber};

const USAGE: &str = "\
usage: cargo run --example aws_fleet_provisioning --features aws [-- OPTIONS]

without options: a local mosquitto set up like AWS IoT, the provisioning responder,
and a simulated modem, all started here
  --serial <device>        a real modem on this serial port (e.g. /dev/ttyUSB2)
  --baud <n>               its baud rate (default 115200)
  --endpoint <host>        the AWS IoT ATS endpoint; needs --serial
  --port <n>               its port (default 8883)
  --ca <pem file>          CA of the endpoint (AmazonRootCA1.pem)
  --claim-cert <pem file>  the claim certificate
  --claim-key <pem file>   the claim private key
  --template <name>        provisioning template (default QuectelFleetTemplate)
  --serial-number <sn>     the SerialNumber template parameter (default SN0001)
  --apn <apn>              APN of the data call (default internet)";

const CLAIM_CN: &str = "fleet-claim";
const SERVICE_CN: &str = "aws-fleet-service";
/// MQTT receive buffer: the CreateCertificateFromCsr answer must fit (see the guide).
const RX: usize = 4096;
const TIMEOUT: StdDuration = StdDuration::from_secs(180);

#[derive(Default)]
struct Args {
    serial: Option<String>,
    baud: Option<u32>,
    endpoint: Option<String>,
    port: Option<u16>,
    ca: Option<PathBuf>,
    claim_cert: Option<PathBuf>,
    claim_key: Option<PathBuf>,
    template: Option<String>,
    serial_number: Option<String>,
    apn: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            exit(0);
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse().map_err(|_| format!("{flag}: not a number: {v}"));
        match flag.as_str() {
            "--serial" => a.serial = Some(value),
            "--baud" => a.baud = Some(number(&value)?),
            "--endpoint" => a.endpoint = Some(value),
            "--port" => a.port = Some(number(&value)? as u16),
            "--ca" => a.ca = Some(value.into()),
            "--claim-cert" => a.claim_cert = Some(value.into()),
            "--claim-key" => a.claim_key = Some(value.into()),
            "--template" => a.template = Some(value),
            "--serial-number" => a.serial_number = Some(value),
            "--apn" => a.apn = Some(value),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

/// What the device flow needs.
struct Target {
    host: String,
    port: u16,
    ca: Vec<u8>,
    claim_cert: Vec<u8>,
    claim_key: Vec<u8>,
    template: String,
    serial_number: String,
    apn: String,
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
        (None, None) => simulated(&args, &rt),
        (Some(serial), Some(endpoint)) => hardware(&args, serial, endpoint, &rt),
        _ => Err("--serial and --endpoint go together".into()),
    };
    match result {
        Ok(()) => println!("done"),
        Err(e) => {
            eprintln!("error: {e}");
            exit(1)
        }
    }
}

fn have_mosquitto() -> Result<(), String> {
    for tool in ["mosquitto", "mosquitto_sub", "mosquitto_pub"] {
        std::process::Command::new(tool)
            .arg("--help")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| {
                format!("cannot run `{tool}` ({e}): apt-get install mosquitto mosquitto-clients")
            })?;
    }
    Ok(())
}

fn simulated(args: &Args, rt: &tokio::runtime::Runtime) -> Result<(), String> {
    if args.ca.is_some() || args.claim_cert.is_some() || args.claim_key.is_some() {
        return Err("--ca, --claim-cert and --claim-key go with --endpoint".into());
    }
    have_mosquitto()?;
    let template = args
        .template
        .clone()
        .unwrap_or_else(|| "QuectelFleetTemplate".into());
    let acl = Acl::empty()
        .fleet_provisioning(CLAIM_CN, &template)
        .full_access(SERVICE_CN)
        .full_access(Acl::OBSERVER);
    let broker = Broker::start(BrokerOptions::default().acl(acl));
    println!(
        "[cloud] mosquitto on 127.0.0.1:{} like AWS IoT: mutual TLS 1.3, the claim certificate \
         may only use the provisioning topics",
        broker.port()
    );
    let responder = FleetResponder::start(&broker, &broker.client(SERVICE_CN), &template)?;
    println!(
        "[cloud] provisioning responder (tests/support/broker.rs, rumqttc) is serving template {template}"
    );
    let watcher = Subscriber::start(&broker, &broker.observer(), "dt/#");
    watcher.wait_subscriptions(1, StdDuration::from_secs(10));
    let claim = broker.client(CLAIM_CN);
    let target = Target {
        host: "localhost".into(),
        port: broker.port(),
        ca: broker.pki().ca_pem.clone().into_bytes(),
        claim_cert: claim.cert_pem.into_bytes(),
        claim_key: claim.key_pem.into_bytes(),
        template,
        serial_number: args
            .serial_number
            .clone()
            .unwrap_or_else(|| "SN0001".into()),
        apn: args.apn.clone().unwrap_or_else(|| "internet".into()),
    };
    let (rx, tx, _modem) = MockModem::new(Model::Bg96)
        .search_time(StdDuration::from_millis(100))
        .spawn();
    println!("[modem] simulated BG96; its TLS sockets reach 127.0.0.1");
    let flow = rt.block_on(async { tokio::time::timeout(TIMEOUT, device(rx, tx, target)).await });
    flow.map_err(|_| format!("not done within {} s", TIMEOUT.as_secs()))??;
    for line in responder.lines() {
        println!("[cloud] responder: {line}");
    }
    let seen = watcher.wait_for(1, StdDuration::from_secs(10));
    match seen.first() {
        Some((topic, payload)) => println!(
            "[cloud] received on {topic}: {}",
            String::from_utf8_lossy(payload)
        ),
        None => return Err("the cloud did not receive the telemetry".into()),
    }
    Ok(())
}

fn hardware(
    args: &Args,
    serial: &str,
    endpoint: &str,
    rt: &tokio::runtime::Runtime,
) -> Result<(), String> {
    let read = |flag: &str, path: &Option<PathBuf>| -> Result<Vec<u8>, String> {
        let path = path.as_ref().ok_or(format!("--endpoint needs {flag}"))?;
        std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
    };
    let target = Target {
        host: endpoint.into(),
        port: args.port.unwrap_or(8883),
        ca: read("--ca", &args.ca)?,
        claim_cert: read("--claim-cert", &args.claim_cert)?,
        claim_key: read("--claim-key", &args.claim_key)?,
        template: args
            .template
            .clone()
            .unwrap_or_else(|| "QuectelFleetTemplate".into()),
        serial_number: args
            .serial_number
            .clone()
            .unwrap_or_else(|| "SN0001".into()),
        apn: args.apn.clone().unwrap_or_else(|| "internet".into()),
    };
    let baud = args.baud.unwrap_or(115_200);
    rt.block_on(async {
        use tokio_serial::SerialPortBuilderExt as _;
        let port = tokio_serial::new(serial, baud)
            .open_native_async()
            .map_err(|e| format!("cannot open {serial}: {e}"))?;
        println!("[modem] {serial} at {baud} baud");
        let (rx, tx) = tokio::io::split(port);
        let flow = device(FromTokio::new(rx), FromTokio::new(tx), target);
        tokio::time::timeout(TIMEOUT, flow)
            .await
            .map_err(|_| format!("not done within {} s", TIMEOUT.as_secs()))?
    })
}

async fn device<R: Read, W: Write>(rx: R, tx: W, target: Target) -> Result<(), String> {
    let resources: &'static mut Resources<2048, 2, 8192> = Box::leak(Box::new(Resources::new()));
    let (runner, modem) = asynch::new(resources, rx, tx, Config::default());
    match select(runner.run(), flow(&modem, &target)).await {
        Either::First(never) => never,
        Either::Second(result) => result,
    }
}

async fn flow(modem: &Modem<'_>, t: &Target) -> Result<(), String> {
    // Every layer's error (quectel::Error, MqttError, CloudError) implements Debug.
    fn e<E: std::fmt::Debug>(what: &str) -> impl Fn(E) -> String + use<E> {
        let what = what.to_string();
        move |err| format!("{what}: {err:?}")
    }
    let id = modem.init().await.map_err(e("modem start-up"))?;
    println!("[device] modem ready, IMEI {}", id.imei);
    let endpoint = Endpoint::new(&t.host)
        .map_err(|err| format!("endpoint: {err}"))?
        .with_port(t.port);

    // 1. The claim connection.
    let claim_id = format!("claim-{}", t.serial_number);
    let tls = TlsConfig::new(&t.ca).with_client_identity(&t.claim_cert, &t.claim_key);
    let transport = endpoint
        .modem_transport(1, tls)
        .map_err(|err| format!("{err}"))?;
    let cfg = endpoint
        .mqtt_config(&claim_id, transport, Apn::new(&t.apn))
        .map_err(|err| format!("{err}"))?;
    let mut mqtt_buf = vec![0u8; 2 * RX];
    let mut mqtt = Mqtt::new(cfg, &mut mqtt_buf, RX).map_err(e("MQTT buffers"))?;
    let mut conn = mqtt.connect(modem).await.map_err(e("claim connection"))?;
    println!(
        "[device] 1. connected to {}:{} with the claim certificate as {claim_id}",
        t.host, t.port
    );

    // 2. Own key and certificate.
    let mut fleet = FleetProvisioning::new(&t.template)
        .map_err(|err| format!("template: {err}"))?
        .with_timeout(Duration::from_secs(30))
        .with_rx_size(RX);
    let key = DeviceKey::generate(&mut rand_core::OsRng);
    println!(
        "[device] 2. made a P-256 key on the device ({key:?}); sending a CSR (answer needs an MQTT rx buffer of about {} bytes, we have {RX})",
        Operation::CreateCertificateFromCsr.recommended_rx_size()
    );
    let mut cert_buf = vec![0u8; RECOMMENDED_CSR_BUFFER];
    let issued = fleet
        .create_certificate_from_csr(&mut conn, &key, &t.serial_number, &mut cert_buf)
        .await
        .map_err(e("CreateCertificateFromCsr"))?;
    println!(
        "[device]    certificate {} issued ({} bytes of PEM), ownership token received",
        issued.certificate_id,
        issued.certificate_pem.len()
    );

    // 3. Register the thing.
    let mut reg_buf = vec![0u8; 1024];
    let registered = fleet
        .register_thing(
            &mut conn,
            issued.ownership_token,
            &[("SerialNumber", &t.serial_number)],
            &mut reg_buf,
        )
        .await
        .map_err(|err| match fleet.last_rejection() {
            Some(r) => format!(
                "RegisterThing rejected: {} {} {}",
                r.status, r.error_code, r.error_message
            ),
            None => format!("RegisterThing: {err:?}"),
        })?;
    println!(
        "[device] 3. registered as thing {}; device configuration:",
        registered.thing_name
    );
    for (k, v) in registered.device_configuration.iter() {
        println!("[device]      {k} = {v}");
    }
    let _ = with_timeout(Duration::from_secs(5), conn.disconnect()).await;
    drop(mqtt);

    // 4. Save the identity in one call.
    let mut key_pem = [0u8; quectel::cloud::aws::SEC1_PEM_LEN];
    let n = key
        .to_sec1_pem(&mut key_pem)
        .map_err(|err| format!("{err}"))?;
    let key_pem = std::str::from_utf8(&key_pem[..n]).map_err(|err| format!("{err}"))?;
    let identity = quectel::cloud::aws::DeviceIdentity {
        thing_name: registered.thing_name,
        certificate_id: issued.certificate_id,
        certificate_pem: issued.certificate_pem,
        private_key_pem: key_pem,
    };
    let mut store = RamIdentityStore::<4096>::new();
    store
        .save(&identity)
        .map_err(|err| format!("save: {err}"))?;
    println!(
        "[device] 4. saved {identity:?} ({} bytes)",
        identity.encoded_len()
    );

    // 5. Reconnect as the thing (as the next boot would, from the store).
    let mut load_buf = vec![0u8; 4096];
    let identity = store
        .load(&mut load_buf)
        .map_err(|err| format!("load: {err}"))?
        .ok_or("nothing stored")?;
    let cfg = identity
        .mqtt_config(&endpoint, &t.ca, 2, Apn::new(&t.apn))
        .map_err(|err| format!("{err}"))?;
    let mut buf = vec![0u8; 4096];
    let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).map_err(e("MQTT buffers"))?;
    let mut conn = mqtt
        .connect(modem)
        .await
        .map_err(e("connection with the new certificate"))?;
    let topic = registered
        .device_configuration
        .get("telemetryTopic")
        .map(str::to_string)
        .unwrap_or_else(|| format!("dt/{}/telemetry", identity.thing_name));
    let payload = format!(
        "{{\"serial\":\"{}\",\"hello\":\"provisioned\"}}",
        t.serial_number
    );
    conn.publish(&topic, payload.as_bytes(), QoS::AtLeastOnce)
        .await
        .map_err(e("publish"))?;
    while !conn.all_acknowledged() {
        with_timeout(Duration::from_secs(15), conn.poll())
            .await
            .map_err(|_| {
                "no PUBACK within 15 s (is the certificate activated and allowed to publish there?)"
                    .to_string()
            })?
            .map_err(e("poll"))?;
    }
    println!(
        "[device] 5. reconnected as {} with its own certificate and published to {topic}",
        identity.thing_name
    );
    let _ = with_timeout(Duration::from_secs(5), conn.disconnect()).await;
    Ok(())
}
