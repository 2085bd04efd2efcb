//! The customer's AWS IoT flow as a `no_std`, heap-free library, shared by the QEMU firmware
//! (`examples/qemu-mps2`) and the board examples (`examples/nrf52840-dk`,
//! `examples/nucleo-f429zi`).
//!
//! The flow is QuecPython's "connect to AWS IoT Core" guide: start the modem, check the SIM,
//! bring up the data call, open MQTT 5 over TLS with the device certificate, subscribe to a
//! topic, publish `Hello, AWS Cloud!` to it, wait for what the cloud sends down, disconnect.
//! Every wait is bounded ([`Timeouts`]); the result is a [`Report`] or an [`AppError`] that
//! names the [`Step`] that failed.
//!
//! # API (stable: the board examples are written against it)
//!
//! | item | what |
//! |---|---|
//! | [`AppConfig`] | APN, endpoint, port, client id, PEM certificates, topic, message, downlinks wanted, [`Timeouts`], optional progress hook |
//! | [`run_modem_tls`] | the flow with TLS in the modem (certificates uploaded with `AT+QFUPL`, SSL context 1) |
//! | [`run_mcu_tls`] (feature `mcu-tls`) | the flow with TLS 1.3 on the MCU (embedded-tls) over a plain modem TCP socket |
//! | `run_ota_aws` (feature `ota`) | what comes next: connect over modem TLS, report the boot of a new image, take the next AWS IoT OTA job, download, verify and stage the image (then reset) |
//! | [`Report`], [`AppError`], [`Step`], [`Progress`] | results and progress |
//! | [`ModemPower`], [`PwrKey`], [`ResetN`], [`NoPower`], [`PowerTiming`] | switching the module on (PWRKEY/RESET_N pulses) |
//!
//! Both `run_*` functions take the UART halves (`embedded_io_async::{Read, Write}`: embassy-stm32
//! `BufferedUart::split()`, embassy-nrf `BufferedUarte::split()`, or the QEMU board layer), the
//! driver's [`Resources`] (put them in a `StaticCell`/`ConstStaticCell`), the configuration and
//! a downlink callback. They run the driver's runner and the flow concurrently in the calling
//! task (`embassy_futures::select`), so no extra task needs spawning, and return when the flow
//! ends (the runner stops with it).
//!
//! A sketch (board pins and the UART come from the board crate; the same calls compile as a
//! doctest in `docs/zh/firmware.md`, and the board crates' binaries use them for real):
//!
//! ```text
//! use quectel_example_app::{AppConfig, ModemPower, PwrKey, PowerTiming, run_modem_tls};
//!
//! static RESOURCES: ConstStaticCell<Resources> = ConstStaticCell::new(Resources::new());
//!
//! let mut pwrkey = PwrKey::new(pwrkey_pin, /* MCU pin high = PWRKEY low */ true, PowerTiming::BG96);
//! pwrkey.power_on().await.ok();
//! let cfg = AppConfig::new("a1b2c3-ats.iot.eu-west-1.amazonaws.com", "my-thing", CA, CERT, KEY)
//!     .with_apn("internet")
//!     .with_topic("my-thing/hello");
//! let report = run_modem_tls(uart_rx, uart_tx, RESOURCES.take(), &cfg, |topic, payload| {
//!     defmt::info!("downlink on {}: {=[u8]:a}", topic, payload);
//! })
//! .await;
//! ```
//!
//! # Details
//!
//! * The client id and the topic default to the IMEI when left empty.
//! * The topic is both subscribed to and published to, like the guide (which uses the IMEI).
//!   The broker sends our own `message` back (we are subscribed); that echo is not a downlink:
//!   it is skipped, and `on_downlink` sees only other messages. [`Report::echoed`] says whether
//!   it came back.
//! * QoS 1 for the subscription and the publish; the flow waits for the SUBACK and the PUBACK,
//!   then for `downlinks_wanted` downlinks (0: none), then sends `DISCONNECT`.
//! * MQTT buffers: [`MQTT_BUFFER`] bytes inside the returned future, of which [`MQTT_RX`] for one
//!   inbound packet (a larger downlink is dropped by a broker that honours the Maximum Packet
//!   Size minimq announces, or skipped and counted by the client otherwise: see
//!   `quectel::mqtt::DroppedMessage`).
//! * With `mcu-tls`, the PEM certificates are converted to DER inside the future (buffers of
//!   [`DER_MAX`] bytes each) and the caller provides the 37 KiB [`quectel::tls::TlsBuffers`].
#![no_std]
#![allow(async_fn_in_trait)]
#![warn(missing_docs)]

use core::fmt;

use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Instant, Timer, with_timeout};
use embedded_hal::digital::OutputPin;
use embedded_io_async::{Read, Write};
use quectel::asynch::{self, Apn, Config, Modem, Resources, SimStatus, TlsConfig};
use quectel::mqtt::{Mqtt, MqttConfig, MqttError, MqttIo, QoS, Transport};

pub use quectel;

pub mod build_env;
#[cfg(feature = "ota")]
mod ota;
#[cfg(all(feature = "ota", feature = "defmt"))]
pub use ota::log_ota;
#[cfg(feature = "ota")]
pub use ota::{OTA_MQTT_BUFFER, OTA_MQTT_RX, OtaOutcome, OtaReport, run_ota_aws};

/// Bytes of MQTT client buffer (minimq) inside the flow's future.
pub const MQTT_BUFFER: usize = 2048;
/// Of [`MQTT_BUFFER`], the bytes for one inbound packet (topic + payload + ~10 bytes).
pub const MQTT_RX: usize = 1024;
/// Largest DER certificate or key [`run_mcu_tls`] converts from PEM.
pub const DER_MAX: usize = 2048;

/// How long each step may take. Every wait of the flow is bounded by one of these.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timeouts {
    /// Modem start-up (`RDY` or an answer to `AT`, then identification).
    pub startup: Duration,
    /// SIM ready (polled until then).
    pub sim: Duration,
    /// Registration and data call (`checkNet.waitNetworkReady`).
    pub network: Duration,
    /// One MQTT connection attempt (certificate upload, socket and TLS handshake, `CONNECT`).
    pub connect: Duration,
    /// Connection attempts before giving up.
    pub connect_attempts: u8,
    /// SUBACK and PUBACK after the publish.
    pub ack: Duration,
    /// All wanted downlinks, counted from the PUBACK.
    pub downlinks: Duration,
    /// The OTA flow's download, from the job to the verified image ([`run_ota_aws`], feature
    /// `ota`).
    pub ota: Duration,
}

impl Timeouts {
    /// Defaults for a real network: start-up 30 s, SIM 10 s, network 120 s, connect 60 s
    /// (3 attempts), acknowledgements 30 s, downlinks 60 s, OTA download 30 min.
    pub const DEFAULT: Timeouts = Timeouts {
        startup: Duration::from_secs(30),
        sim: Duration::from_secs(10),
        network: Duration::from_secs(120),
        connect: Duration::from_secs(60),
        connect_attempts: 3,
        ack: Duration::from_secs(30),
        downlinks: Duration::from_secs(60),
        ota: Duration::from_secs(30 * 60),
    };
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the flow connects to and with what.
#[derive(Clone, Copy)]
pub struct AppConfig<'a> {
    /// APN of the data call (PDP context 1).
    pub apn: &'a str,
    /// Broker host name (AWS IoT: `<prefix>-ats.iot.<region>.amazonaws.com`).
    pub endpoint: &'a str,
    /// Broker port (8883).
    pub port: u16,
    /// MQTT client id (AWS IoT: the thing name). Empty: the IMEI.
    pub client_id: &'a str,
    /// CA certificate of the endpoint, PEM (AWS: `AmazonRootCA1.pem`).
    pub ca_pem: &'a [u8],
    /// Device certificate, PEM.
    pub cert_pem: &'a [u8],
    /// Device private key, PEM (PKCS#8 or SEC1; P-256 for [`run_mcu_tls`]).
    pub key_pem: &'a [u8],
    /// Topic subscribed to and published to. Empty: the IMEI.
    pub topic: &'a str,
    /// The message published once (QoS 1).
    pub message: &'a [u8],
    /// Downlinks to wait for after the publish (0: do not wait).
    pub downlinks_wanted: usize,
    /// Bounds of every step.
    pub timeouts: Timeouts,
    /// Called at each milestone (e.g. to print it); `None`: silent.
    pub on_progress: Option<fn(&Progress<'_>)>,
}

impl<'a> AppConfig<'a> {
    /// The guide's defaults around the given endpoint and identity: APN `internet`, port 8883,
    /// topic = the IMEI, message `Hello, AWS Cloud!`, one downlink wanted, [`Timeouts::DEFAULT`].
    pub const fn new(
        endpoint: &'a str,
        client_id: &'a str,
        ca_pem: &'a [u8],
        cert_pem: &'a [u8],
        key_pem: &'a [u8],
    ) -> Self {
        Self {
            apn: "internet",
            endpoint,
            port: 8883,
            client_id,
            ca_pem,
            cert_pem,
            key_pem,
            topic: "",
            message: b"Hello, AWS Cloud!",
            downlinks_wanted: 1,
            timeouts: Timeouts::DEFAULT,
            on_progress: None,
        }
    }

    /// Sets the APN.
    pub const fn with_apn(mut self, apn: &'a str) -> Self {
        self.apn = apn;
        self
    }

    /// Sets the broker port.
    pub const fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the topic (subscribed and published to).
    pub const fn with_topic(mut self, topic: &'a str) -> Self {
        self.topic = topic;
        self
    }

    /// Sets the message published.
    pub const fn with_message(mut self, message: &'a [u8]) -> Self {
        self.message = message;
        self
    }

    /// Sets how many downlinks to wait for.
    pub const fn with_downlinks_wanted(mut self, n: usize) -> Self {
        self.downlinks_wanted = n;
        self
    }

    /// Sets the timeouts.
    pub const fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Sets the progress hook.
    pub const fn with_progress(mut self, hook: fn(&Progress<'_>)) -> Self {
        self.on_progress = Some(hook);
        self
    }
}

impl fmt::Debug for AppConfig<'_> {
    /// Never shows the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfig")
            .field("apn", &self.apn)
            .field("endpoint", &self.endpoint)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("ca_pem", &self.ca_pem.len())
            .field("cert_pem", &self.cert_pem.len())
            .field("key_pem", &"<redacted>")
            .field("topic", &self.topic)
            .field("message", &self.message.len())
            .field("downlinks_wanted", &self.downlinks_wanted)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// The steps of the flow, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Step {
    /// Modem start-up and identification (`ATE0`, `AT+CMEE=1;+CREG=2;…`, `ATI`, `AT+CGSN`).
    Startup,
    /// `sim.getStatus()`.
    Sim,
    /// APN, registration, data call (`checkNet.waitNetworkReady`, `dataCall.getInfo`).
    Network,
    /// Certificates, socket, TLS handshake, MQTT `CONNECT` (and `SUBSCRIBE`).
    Connect,
    /// `PUBLISH` of the message.
    Publish,
    /// SUBACK and PUBACK.
    Acknowledge,
    /// Waiting for the downlinks.
    Downlink,
    /// `DISCONNECT`.
    Disconnect,
    /// The OTA flow after the connection: boot report, job, download, verification
    /// ([`run_ota_aws`]).
    Ota,
}

/// Why the flow stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AppError {
    /// The driver reported an error during this step: a modem error
    /// ([`MqttError::Modem`]), or an MQTT or (feature `mcu-tls`) TLS error.
    Driver(Step, MqttError),
    /// This step did not finish within its [`Timeouts`] bound.
    Timeout(Step),
    /// The SIM is not ready (PIN, PUK, absent, ...).
    Sim(SimStatus),
    /// Registration or the data call failed (QuecPython `checkNet` stage 0–3).
    NotReady(asynch::NotReady),
    /// A PEM certificate or key could not be converted to DER ([`run_mcu_tls`]).
    Pem,
    /// The OTA flow failed ([`run_ota_aws`]); the job was reported where the cloud can be told.
    #[cfg(feature = "ota")]
    Ota(quectel::cloud::CloudError),
    /// Fewer downlinks than wanted arrived before [`Timeouts::downlinks`] ran out.
    MissingDownlinks {
        /// Wanted.
        wanted: usize,
        /// Received.
        got: usize,
    },
}

impl AppError {
    /// The step that failed.
    pub fn step(&self) -> Step {
        match self {
            AppError::Driver(s, _) | AppError::Timeout(s) => *s,
            AppError::Sim(_) => Step::Sim,
            AppError::NotReady(_) => Step::Network,
            AppError::Pem => Step::Connect,
            #[cfg(feature = "ota")]
            AppError::Ota(_) => Step::Ota,
            AppError::MissingDownlinks { .. } => Step::Downlink,
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Driver(s, e) => write!(f, "{s:?}: {e}"),
            AppError::Timeout(s) => write!(f, "{s:?}: timed out"),
            AppError::Sim(s) => write!(f, "Sim: not ready ({s:?})"),
            AppError::NotReady(e) => write!(f, "Network: not ready at stage {} ({e:?})", e.stage()),
            AppError::Pem => {
                f.write_str("Connect: a PEM certificate or key is invalid or too large")
            }
            AppError::MissingDownlinks { wanted, got } => {
                write!(f, "Downlink: {got} of {wanted} downlinks arrived")
            }
            #[cfg(feature = "ota")]
            AppError::Ota(e) => write!(f, "Ota: {e:?}"),
        }
    }
}

/// What the flow did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Report {
    /// Model line of `ATI` (e.g. `BG96`).
    pub model: heapless::String<24>,
    /// IMEI.
    pub imei: heapless::String<20>,
    /// IPv4 address of the data call (empty if none).
    pub ipv4: heapless::String<16>,
    /// Whether the broker resumed an earlier session.
    pub resumed_session: bool,
    /// Whether our own message came back on the topic (we are subscribed to it).
    pub echoed: bool,
    /// Downlinks received (given to `on_downlink`).
    pub downlinks: usize,
    /// Milliseconds from the start of the flow to the PUBACK.
    pub published_after_ms: u64,
    /// Milliseconds from the start of the flow to its end.
    pub elapsed_ms: u64,
}

/// A milestone of the flow, given to [`AppConfig::on_progress`].
#[derive(Clone, Copy, Debug)]
pub enum Progress<'p> {
    /// The modem answered and identified itself.
    ModemReady {
        /// Model line of `ATI`.
        model: &'p str,
        /// Firmware revision.
        revision: &'p str,
        /// IMEI.
        imei: &'p str,
    },
    /// `sim.getStatus()` returned Ready.
    SimReady,
    /// The data call is up.
    DataCall {
        /// IPv4 address (may be empty).
        ipv4: &'p str,
    },
    /// MQTT `CONNECT` accepted (`SUBSCRIBE` sent).
    Connected {
        /// Broker host.
        host: &'p str,
        /// Broker port.
        port: u16,
        /// Client id used.
        client_id: &'p str,
        /// Whether the broker resumed an earlier session.
        resumed: bool,
    },
    /// A connection attempt failed; another follows.
    ConnectFailed {
        /// Attempt number (1-based).
        attempt: u8,
        /// What went wrong (`None`: timed out).
        error: Option<MqttError>,
    },
    /// The broker acknowledged the subscription and the publish (SUBACK, PUBACK).
    Published {
        /// Topic.
        topic: &'p str,
        /// Message.
        message: &'p [u8],
    },
    /// A message arrived on a subscribed topic.
    Message {
        /// Topic.
        topic: &'p str,
        /// Payload.
        payload: &'p [u8],
        /// Whether it is the echo of our own message (not counted as a downlink).
        echo: bool,
    },
    /// `DISCONNECT` sent.
    Disconnected,
}

fn progress(cfg: &AppConfig<'_>, p: Progress<'_>) {
    #[cfg(feature = "defmt")]
    match &p {
        Progress::ModemReady { model, imei, .. } => {
            defmt::info!("modem ready: {} IMEI {}", model, imei)
        }
        Progress::SimReady => defmt::info!("SIM ready"),
        Progress::DataCall { ipv4 } => defmt::info!("data call up: {}", ipv4),
        Progress::Connected { host, port, .. } => {
            defmt::info!("MQTT connected to {}:{}", host, port)
        }
        Progress::ConnectFailed { attempt, error } => {
            defmt::warn!("MQTT connection attempt {} failed: {}", attempt, error)
        }
        Progress::Published { topic, .. } => defmt::info!("published to {}", topic),
        Progress::Message { topic, echo, .. } => {
            defmt::info!("message on {} (echo: {})", topic, echo)
        }
        Progress::Disconnected => defmt::info!("MQTT disconnected"),
    }
    if let Some(hook) = cfg.on_progress {
        hook(&p);
    }
}

/// Runs `fut` within `limit`; a timeout becomes [`AppError::Timeout`]`(step)`.
async fn bounded<T>(
    step: Step,
    limit: Duration,
    fut: impl Future<Output = Result<T, AppError>>,
) -> Result<T, AppError> {
    with_timeout(limit, fut)
        .await
        .unwrap_or(Err(AppError::Timeout(step)))
}

fn driver<E: Into<MqttError>>(step: Step) -> impl FnOnce(E) -> AppError {
    move |e| AppError::Driver(step, e.into())
}

/// Start-up, SIM, data call: the part of the flow before MQTT.
async fn bring_up(
    modem: &Modem<'_>,
    cfg: &AppConfig<'_>,
    report: &mut Report,
) -> Result<(), AppError> {
    let t = &cfg.timeouts;
    let id = bounded(Step::Startup, t.startup, async {
        modem.init().await.map_err(driver(Step::Startup))
    })
    .await?;
    report.model = id.model_name.clone();
    report.imei = id.imei.clone();
    progress(
        cfg,
        Progress::ModemReady {
            model: &id.model_name,
            revision: &id.revision,
            imei: &id.imei,
        },
    );

    // sim.getStatus(): right after boot the SIM may still be busy.
    bounded(Step::Sim, t.sim, async {
        loop {
            match modem.sim().status().await {
                Ok(SimStatus::Ready) => return Ok(()),
                Ok(SimStatus::Busy) | Err(quectel::Error::Timeout) => {
                    Timer::after_millis(500).await
                }
                Ok(other) => return Err(AppError::Sim(other)),
                Err(e) => return Err(AppError::Driver(Step::Sim, e.into())),
            }
        }
    })
    .await?;
    progress(cfg, Progress::SimReady);

    bounded(Step::Network, t.network + Duration::from_secs(5), async {
        let data_call = modem.data_call();
        data_call
            .configure(1, &Apn::new(cfg.apn))
            .await
            .map_err(driver(Step::Network))?;
        modem
            .network()
            .wait_network_ready(1, t.network)
            .await
            .map_err(AppError::NotReady)?;
        let info = data_call.info(1).await.map_err(driver(Step::Network))?;
        if let Some(ip) = info.ipv4 {
            report.ipv4 = ip;
        }
        Ok(())
    })
    .await?;
    progress(cfg, Progress::DataCall { ipv4: &report.ipv4 });
    Ok(())
}

/// After a failed connection attempt: the error to give up with, or `Ok` to try again.
fn give_up_or_retry(
    cfg: &AppConfig<'_>,
    attempt: u8,
    error: Option<MqttError>,
) -> Result<(), AppError> {
    if attempt >= cfg.timeouts.connect_attempts.max(1) {
        return Err(match error {
            Some(e) => AppError::Driver(Step::Connect, e),
            None => AppError::Timeout(Step::Connect),
        });
    }
    progress(cfg, Progress::ConnectFailed { attempt, error });
    Ok(())
}

/// After `CONNECT`: publish, wait for the acknowledgements, then for the downlinks, then
/// disconnect.
async fn connected<IO: MqttIo>(
    mut conn: quectel::mqtt::MqttConnection<'_, '_, IO>,
    cfg: &AppConfig<'_>,
    (client_id, topic): (&str, &str),
    started: Instant,
    report: &mut Report,
    on_downlink: &mut impl FnMut(&str, &[u8]),
) -> Result<(), AppError> {
    let t = &cfg.timeouts;
    report.resumed_session = conn.resumed_session();
    progress(
        cfg,
        Progress::Connected {
            host: cfg.endpoint,
            port: cfg.port,
            client_id,
            resumed: report.resumed_session,
        },
    );
    let mut on_message = |report: &mut Report, msg_topic: &str, payload: &[u8]| {
        let echo = !report.echoed && msg_topic == topic && payload == cfg.message;
        progress(
            cfg,
            Progress::Message {
                topic: msg_topic,
                payload,
                echo,
            },
        );
        if echo {
            report.echoed = true;
        } else {
            report.downlinks += 1;
            on_downlink(msg_topic, payload);
        }
    };

    bounded(Step::Publish, t.ack, async {
        conn.publish(topic, cfg.message, QoS::AtLeastOnce)
            .await
            .map_err(driver(Step::Publish))
    })
    .await?;

    // SUBACK (the SUBSCRIBE went out with the connection) and PUBACK.
    bounded(Step::Acknowledge, t.ack, async {
        while !conn.all_acknowledged() {
            match conn.poll().await {
                Ok(Some(msg)) => on_message(report, msg.topic(), msg.payload()),
                Ok(None) => {}
                Err(e) => return Err(AppError::Driver(Step::Acknowledge, e)),
            }
        }
        Ok(())
    })
    .await?;
    report.published_after_ms = started.elapsed().as_millis();
    progress(
        cfg,
        Progress::Published {
            topic,
            message: cfg.message,
        },
    );

    let waited = with_timeout(t.downlinks, async {
        while report.downlinks < cfg.downlinks_wanted {
            match conn.poll().await {
                Ok(Some(msg)) => on_message(report, msg.topic(), msg.payload()),
                Ok(None) => {}
                Err(e) => return Err(AppError::Driver(Step::Downlink, e)),
            }
        }
        Ok(())
    })
    .await;
    match waited {
        Ok(r) => r?,
        Err(_) => {
            return Err(AppError::MissingDownlinks {
                wanted: cfg.downlinks_wanted,
                got: report.downlinks,
            });
        }
    }

    bounded(Step::Disconnect, t.ack, async {
        conn.disconnect().await.map_err(driver(Step::Disconnect))
    })
    .await?;
    progress(cfg, Progress::Disconnected);
    report.elapsed_ms = started.elapsed().as_millis();
    Ok(())
}

fn empty_report() -> Report {
    Report {
        model: heapless::String::new(),
        imei: heapless::String::new(),
        ipv4: heapless::String::new(),
        resumed_session: false,
        echoed: false,
        downlinks: 0,
        published_after_ms: 0,
        elapsed_ms: 0,
    }
}

/// `value`, or the IMEI when it is empty (the client id and the topic default to it).
fn or_imei<'a>(value: &'a str, imei: &'a str) -> &'a str {
    if value.is_empty() { imei } else { value }
}

/// MQTT to `cfg.endpoint` over the modem's TLS (SSL context 1: `cfg.ca_pem` verifies the
/// server, `cfg.cert_pem`/`cfg.key_pem` are the device's identity) on `cfg.apn`.
fn modem_tls_mqtt<'a>(cfg: &AppConfig<'a>, client_id: &'a str) -> MqttConfig<'a> {
    let tls = TlsConfig::new(cfg.ca_pem).with_client_identity(cfg.cert_pem, cfg.key_pem);
    let transport = Transport::ModemTls { ssl_ctx: 1, tls };
    MqttConfig::new(
        cfg.endpoint,
        cfg.port,
        client_id,
        transport,
        Apn::new(cfg.apn),
    )
}

/// Runs the driver's runner (it owns the UART) next to `flow`; returns when `flow` does.
async fn with_runner<R: Read, W: Write, T>(
    runner: asynch::Runner<'_, R, W>,
    flow: impl Future<Output = T>,
) -> T {
    match select(runner.run(), flow).await {
        Either::First(never) => never,
        Either::Second(result) => result,
    }
}

/// The whole flow with TLS in the modem: start-up → SIM ready → data call → certificates
/// uploaded to the module (`AT+QFUPL`) and SSL context 1 set up ([`TlsConfig`]: verify the
/// server, client certificate, SNI) → MQTT 5 `CONNECT` over `AT+QSSLOPEN` → `SUBSCRIBE` topic →
/// `PUBLISH` message → SUBACK/PUBACK → `downlinks_wanted` downlinks → `DISCONNECT`.
///
/// `rx`/`tx`: the modem's UART. The driver's runner runs inside this future. Each step is
/// bounded by `cfg.timeouts`. `on_downlink(topic, payload)` is called for every message that
/// is not the echo of our own.
pub async fn run_modem_tls<R, W, const N: usize, const S: usize, const RB: usize>(
    rx: R,
    tx: W,
    resources: &mut Resources<N, S, RB>,
    cfg: &AppConfig<'_>,
    mut on_downlink: impl FnMut(&str, &[u8]),
) -> Result<Report, AppError>
where
    R: Read,
    W: Write,
{
    let started = Instant::now();
    let config = Config {
        startup_timeout: cfg.timeouts.startup,
        ..Config::default()
    };
    let (runner, modem) = asynch::new(resources, rx, tx, config);
    let flow = async {
        let mut report = empty_report();
        bring_up(&modem, cfg, &mut report).await?;
        let imei = report.imei.clone();
        let client_id = or_imei(cfg.client_id, &imei);
        let topic = or_imei(cfg.topic, &imei);
        let mqtt_config = modem_tls_mqtt(cfg, client_id);
        let mut buffer = [0u8; MQTT_BUFFER];
        let mut mqtt =
            Mqtt::new(mqtt_config, &mut buffer, MQTT_RX).map_err(driver(Step::Connect))?;
        mqtt.subscribe_on_connect(topic, QoS::AtLeastOnce)
            .map_err(driver(Step::Connect))?;

        let t = &cfg.timeouts;
        let mut attempt = 0u8;
        loop {
            attempt += 1;
            // The connection is used inside the loop: a borrow of `mqtt` that left the loop
            // would outlive the failed attempts' borrows (NLL).
            let error = match with_timeout(t.connect, mqtt.connect(&modem)).await {
                Ok(Ok(conn)) => {
                    let id = (client_id, topic);
                    connected(conn, cfg, id, started, &mut report, &mut on_downlink).await?;
                    return Ok(report);
                }
                Ok(Err(e)) => Some(e),
                Err(_) => None,
            };
            give_up_or_retry(cfg, attempt, error)?;
        }
    };
    with_runner(runner, flow).await
}

/// The same flow as [`run_modem_tls`], with TLS 1.3 on the MCU (embedded-tls, feature
/// `mcu-tls`) over a plain modem TCP socket (`AT+QIOPEN`), for brokers and keys the modem's
/// TLS cannot serve. The PEM certificates are converted to DER ([`quectel::tls::pem_to_der`]);
/// the server is verified against `ca_pem` and `endpoint` (also the SNI); the device presents
/// `cert_pem` signed with `key_pem` (P-256). `tls_buffers` holds the TLS records (37 KiB with
/// the defaults; reusable); `rng` seeds the handshake (a hardware RNG on a board).
#[cfg(feature = "mcu-tls")]
pub async fn run_mcu_tls<
    R,
    W,
    const N: usize,
    const S: usize,
    const RB: usize,
    const TR: usize,
    const TW: usize,
>(
    rx: R,
    tx: W,
    resources: &mut Resources<N, S, RB>,
    tls_buffers: &mut quectel::tls::TlsBuffers<TR, TW>,
    cfg: &AppConfig<'_>,
    mut rng: impl rand_core::CryptoRngCore,
    mut on_downlink: impl FnMut(&str, &[u8]),
) -> Result<Report, AppError>
where
    R: Read,
    W: Write,
{
    use quectel::tls::{McuTlsConfig, pem_to_der};

    let started = Instant::now();
    let config = Config {
        startup_timeout: cfg.timeouts.startup,
        ..Config::default()
    };
    let (runner, modem) = asynch::new(resources, rx, tx, config);
    let flow = async {
        let mut ca_buf = [0u8; DER_MAX];
        let mut cert_buf = [0u8; DER_MAX];
        let mut key_buf = [0u8; 512];
        let ca = pem_to_der(cfg.ca_pem, &mut ca_buf).map_err(|_| AppError::Pem)?;
        let cert = pem_to_der(cfg.cert_pem, &mut cert_buf).map_err(|_| AppError::Pem)?;
        let key = pem_to_der(cfg.key_pem, &mut key_buf).map_err(|_| AppError::Pem)?;
        let tls = McuTlsConfig::new(cfg.endpoint, ca).with_client_identity(cert, key);

        let mut report = empty_report();
        bring_up(&modem, cfg, &mut report).await?;
        let imei = report.imei.clone();
        let client_id = or_imei(cfg.client_id, &imei);
        let topic = or_imei(cfg.topic, &imei);
        let mqtt_config = MqttConfig::new(
            cfg.endpoint,
            cfg.port,
            client_id,
            Transport::Tcp,
            Apn::new(cfg.apn),
        );
        let mut buffer = [0u8; MQTT_BUFFER];
        let mut mqtt =
            Mqtt::new(mqtt_config, &mut buffer, MQTT_RX).map_err(driver(Step::Connect))?;
        mqtt.subscribe_on_connect(topic, QoS::AtLeastOnce)
            .map_err(driver(Step::Connect))?;

        let t = &cfg.timeouts;
        let mut attempt = 0u8;
        loop {
            attempt += 1;
            let connect = mqtt.connect_mcu_tls(&modem, &mut *tls_buffers, &tls, &mut rng);
            let error = match with_timeout(t.connect, connect).await {
                Ok(Ok(conn)) => {
                    let id = (client_id, topic);
                    connected(conn, cfg, id, started, &mut report, &mut on_downlink).await?;
                    return Ok(report);
                }
                Ok(Err(e)) => Some(e),
                Err(_) => None,
            };
            give_up_or_retry(cfg, attempt, error)?;
        }
    };
    with_runner(runner, flow).await
}

// --- power ---------------------------------------------------------------------------------

/// Switches the module on before the flow (boards: [`PwrKey`]; QEMU and modules powered by the
/// board: [`NoPower`]).
pub trait ModemPower {
    /// The GPIO error.
    type Error: fmt::Debug;
    /// Powers the module on. Returns once the power-on pulse is done; the module then needs
    /// [`PowerTiming::uart_ready`] before it answers, which [`run_modem_tls`]'s start-up step
    /// waits out (it retries `AT` until `RDY` or an answer).
    async fn power_on(&mut self) -> Result<(), Self::Error>;
}

/// A module that is always on (QEMU, or powered by the board): does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPower;

impl ModemPower for NoPower {
    type Error = core::convert::Infallible;
    async fn power_on(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// PWRKEY / RESET_N timing of a module family (Quectel hardware design guides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PowerTiming {
    /// PWRKEY held low to power on.
    pub on_pulse: Duration,
    /// PWRKEY held low to power off.
    pub off_pulse: Duration,
    /// RESET_N held low to reset.
    pub reset_pulse: Duration,
    /// From the end of the power-on pulse until the UART answers (informational:
    /// the start-up step retries `AT` for up to [`Timeouts::startup`]).
    pub uart_ready: Duration,
    /// After the power-off pulse, until the module is off.
    pub power_down: Duration,
}

impl PowerTiming {
    /// BG96 (also EC2x): PWRKEY low ≥ 500 ms to switch on (750 ms used, like Zephyr's BG9x
    /// driver), ≥ 650 ms to switch off (800 ms used) then ≥ 2 s until off; RESET_N low
    /// 150–460 ms (300 ms used); UART ready ≥ 4.9 s after power-on.
    pub const BG96: PowerTiming = PowerTiming {
        on_pulse: Duration::from_millis(750),
        off_pulse: Duration::from_millis(800),
        reset_pulse: Duration::from_millis(300),
        uart_ready: Duration::from_millis(4900),
        power_down: Duration::from_secs(2),
    };
    /// BG95 / BG77: PWRKEY low ≥ 500 ms on, 650–1500 ms off (800 ms used).
    pub const BG95: PowerTiming = PowerTiming {
        on_pulse: Duration::from_millis(750),
        off_pulse: Duration::from_millis(800),
        reset_pulse: Duration::from_millis(300),
        uart_ready: Duration::from_millis(4900),
        power_down: Duration::from_secs(2),
    };
}

/// An active-low control line of the module (PWRKEY, RESET_N), driven directly
/// (`inverted = false`: MCU low = line low) or through an NPN transistor (`inverted = true`:
/// MCU high = line low).
struct ControlLine<P: OutputPin> {
    pin: P,
    inverted: bool,
}

impl<P: OutputPin> ControlLine<P> {
    /// Takes the pin and releases the line (high at the module).
    fn new(pin: P, inverted: bool) -> Self {
        let mut line = Self { pin, inverted };
        let _ = line.assert(false);
        line
    }

    /// Pulls the line low (`true`) or releases it (`false`).
    fn assert(&mut self, low: bool) -> Result<(), P::Error> {
        if low != self.inverted {
            self.pin.set_low()
        } else {
            self.pin.set_high()
        }
    }

    /// Pulls the line low for `length`, then releases it.
    async fn pulse(&mut self, length: Duration) -> Result<(), P::Error> {
        self.assert(true)?;
        Timer::after(length).await;
        self.assert(false)
    }
}

/// Drives the module's PWRKEY line.
///
/// Most boards drive PWRKEY through an NPN transistor (MCU pin high = PWRKEY low): pass
/// `inverted = true` there; `false` when the MCU pin drives PWRKEY directly (open drain).
/// The pin should idle at "PWRKEY released" from reset on ([`PwrKey::new`] releases it).
pub struct PwrKey<P: OutputPin> {
    line: ControlLine<P>,
    timing: PowerTiming,
}

impl<P: OutputPin> PwrKey<P> {
    /// Takes the pin and releases PWRKEY (high at the module).
    pub fn new(pin: P, inverted: bool, timing: PowerTiming) -> Self {
        Self {
            line: ControlLine::new(pin, inverted),
            timing,
        }
    }

    /// Powers the module off by PWRKEY (prefer `AT+QPOWD`), waiting until it is down.
    pub async fn power_off(&mut self) -> Result<(), P::Error> {
        self.line.pulse(self.timing.off_pulse).await?;
        Timer::after(self.timing.power_down).await;
        Ok(())
    }

    /// The pin back.
    pub fn release(self) -> P {
        self.line.pin
    }
}

impl<P: OutputPin> ModemPower for PwrKey<P> {
    type Error = P::Error;
    /// Pulls PWRKEY low for [`PowerTiming::on_pulse`], then releases it.
    async fn power_on(&mut self) -> Result<(), P::Error> {
        self.line.pulse(self.timing.on_pulse).await
    }
}

/// Drives the module's RESET_N line (same polarity convention as [`PwrKey`]).
pub struct ResetN<P: OutputPin> {
    line: ControlLine<P>,
    timing: PowerTiming,
}

impl<P: OutputPin> ResetN<P> {
    /// Takes the pin and releases RESET_N.
    pub fn new(pin: P, inverted: bool, timing: PowerTiming) -> Self {
        Self {
            line: ControlLine::new(pin, inverted),
            timing,
        }
    }

    /// Resets the module: RESET_N low for [`PowerTiming::reset_pulse`]. The module then boots
    /// (`RDY`) like after a power-on.
    pub async fn reset(&mut self) -> Result<(), P::Error> {
        self.line.pulse(self.timing.reset_pulse).await
    }

    /// The pin back.
    pub fn release(self) -> P {
        self.line.pin
    }
}

// --- power-up sequence for boards ------------------------------------------------------------

/// Sends `AT` up to three times and reports whether `OK` came back (500 ms each). Used before
/// touching PWRKEY, which is a toggle.
pub async fn modem_answers<R: Read, W: Write>(rx: &mut R, tx: &mut W) -> bool {
    for _ in 0..3 {
        if tx.write_all(b"AT\r").await.is_err() || tx.flush().await.is_err() {
            return false;
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut buf = [0u8; 64];
        let mut n = 0;
        while let Ok(Ok(k)) = embassy_time::with_deadline(deadline, rx.read(&mut buf[n..])).await {
            n += k;
            if buf[..n].windows(2).any(|w| w == b"OK") {
                // Let the rest of the answer arrive and drop it, so the driver starts clean.
                Timer::after_millis(50).await;
                return true;
            }
            if n == buf.len() {
                buf.copy_within(n - 1.., 0);
                n = 1;
            }
        }
    }
    false
}

/// Brings the module to a freshly booted state before the flow, with `timing`
/// ([`PowerTiming::BG96`] for BG96/EC2x, [`PowerTiming::BG95`] for BG95/BG77).
///
/// PWRKEY is a *toggle* on Quectel modules: held low ≥ 500 ms it switches an off module on, but
/// held ≥ 650 ms it switches a running module **off**. The MCU may have been reset (reflashed)
/// while the modem kept running, so the module is asked first ([`modem_answers`]):
///
/// * it answers → it is on: pulse RESET_N ([`PowerTiming::reset_pulse`]) for a clean boot (no
///   sockets or TLS state left over from the previous run). Modules without RESET_N (some BG95
///   variants) just keep running, which the driver's start-up also handles;
/// * silence → it is off: pulse PWRKEY ([`PowerTiming::on_pulse`]). The module answers
///   [`PowerTiming::uart_ready`] later; the flow's start-up step waits for `RDY` or an answer
///   to `AT`.
///
/// `inverted`: the lines are driven through a transistor (MCU pin high pulls the line low), as
/// on Quectel's EVBs and most shields. A GPIO error is logged and otherwise ignored: the flow's
/// start-up step then reports a silent modem.
pub async fn power_up<R, W, P, Q>(
    rx: &mut R,
    tx: &mut W,
    pwrkey: P,
    reset_n: Q,
    inverted: bool,
    timing: PowerTiming,
) where
    R: Read,
    W: Write,
    P: OutputPin,
    Q: OutputPin,
{
    // VBAT must be stable ≥ 30 ms before PWRKEY is pressed.
    Timer::after_millis(100).await;
    let mut pwrkey = PwrKey::new(pwrkey, inverted, timing);
    let mut reset_n = ResetN::new(reset_n, inverted, timing);
    if modem_answers(rx, tx).await {
        #[cfg(feature = "defmt")]
        defmt::info!(
            "modem is on: resetting it (RESET_N {} ms)",
            timing.reset_pulse.as_millis()
        );
        if reset_n.reset().await.is_err() {
            #[cfg(feature = "defmt")]
            defmt::warn!("RESET_N: GPIO error");
        }
    } else {
        #[cfg(feature = "defmt")]
        defmt::info!(
            "modem is off: pressing PWRKEY for {} ms; it answers after ~{} ms",
            timing.on_pulse.as_millis(),
            timing.uart_ready.as_millis()
        );
        if pwrkey.power_on().await.is_err() {
            #[cfg(feature = "defmt")]
            defmt::warn!("PWRKEY: GPIO error");
        }
    }
}

/// `docs/zh/firmware.md` (the firmware guide): its code block, written against this crate's
/// API, compiled as a doctest on the host (`cargo test --doc` in `examples/app`; CI runs it).
#[cfg(doctest)]
#[doc = include_str!("../../../docs/zh/firmware.md")]
pub struct FirmwareGuideZh;
