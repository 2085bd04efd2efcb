//! MQTT 5 with [`minimq`] over the modem's sockets, with the recovery a device needs.
//!
//! [`Mqtt`] owns the MQTT session (minimq's, with its in-flight QoS 1 state) and knows how to
//! (re)establish the link: after a modem reboot it re-runs the modem's start-up and re-applies
//! the TLS context (the certificates stay in the module's file system; its SSL settings do
//! not), after a `pdpdeact` it re-activates the data call, then it opens the socket and sends
//! `CONNECT`. If the broker did not keep the session it subscribes again to the topics
//! registered with [`Mqtt::subscribe_on_connect`]; if it did, minimq replays the QoS 1 messages
//! that were in flight, so they are delivered once the session resumes.
//!
//! ```rust,no_run
//! use quectel::asynch::{Apn, Modem, TlsConfig};
//! use quectel::mqtt::{Mqtt, MqttConfig, QoS, Transport};
//!
//! async fn customer_flow(
//!     modem: &Modem<'_>,
//!     endpoint: &str,
//!     (ca, cert, key): (&[u8], &[u8], &[u8]),
//!     imei: &str,
//! ) -> ! {
//!     let tls = TlsConfig::new(ca).with_client_identity(cert, key);
//!     let transport = Transport::ModemTls { ssl_ctx: 1, tls };
//!     let config = MqttConfig::new(endpoint, 8883, imei, transport, Apn::new("internet"));
//!     let mut buffer = [0u8; 4096];
//!     let mut mqtt = Mqtt::new(config, &mut buffer, 2048).unwrap();
//!     mqtt.subscribe_on_connect(imei, QoS::AtLeastOnce).unwrap();
//!     loop {
//!         // Waits the back-off its earlier failures call for (exponential, with jitter).
//!         let Ok(mut conn) = mqtt.connect(modem).await else { continue };
//!         conn.publish(imei, b"Hello, AWS Cloud!", QoS::AtLeastOnce).await.ok();
//!         let _why = conn.run(|topic, payload| { /* the downlink */ let _ = (topic, payload); }).await;
//!         // The link broke: loop, reconnect, resume.
//!     }
//! }
//! ```
//!
//! Limits inherited from minimq 0.13 (see `docs/architecture.md`): it waits a fixed 5 s for
//! `PINGRESP`, so an inbound message that takes longer than that to cross the link at the
//! moment a ping is due drops the connection (at 115200 baud that is above 50 KiB); at most 8
//! QoS 1 messages in flight; one inbound packet must fit the receive buffer.

use core::fmt;

use embassy_time::{Duration, Instant, Timer};
/// minimq's types in this API, and its transport trait (`Io`: what an [`MqttConnection`] runs
/// over).
pub use minimq::{ConnectEvent, InboundPublish, Io, QoS};

use crate::Error;
use crate::asynch::{Apn, Modem, Remote, Socket, TlsConfig};

/// What went wrong at the MQTT level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MqttError {
    /// The client id, a topic or a buffer split does not fit minimq's limits.
    Config,
    /// Local buffers or in-flight slots are busy: try again after `poll`.
    NotReady,
    /// The session is disconnected.
    Disconnected,
    /// The request is not valid MQTT (e.g. QoS above the broker's maximum).
    InvalidRequest,
    /// The broker refused (reason code, e.g. 0x87 not authorised, 0x86 bad user name/password).
    Rejected(u8),
    /// The broker sent an invalid packet.
    InvalidPacket,
    /// A buffer is too small (e.g. an inbound message larger than the receive buffer).
    BufferTooSmall,
    /// A packet exceeds the negotiated maximum packet size.
    PacketTooLarge,
    /// Too many operations in flight.
    InflightExhausted,
}

fn map_err(e: minimq::Error<Error>) -> Error {
    use minimq::Error as M;
    match e {
        M::Transport(e) => e,
        M::NotReady => Error::Mqtt(MqttError::NotReady),
        M::Disconnected => Error::Mqtt(MqttError::Disconnected),
        M::InvalidRequest => Error::Mqtt(MqttError::InvalidRequest),
        M::Peer(minimq::PeerError::Rejected(code)) => Error::Mqtt(MqttError::Rejected(code.into())),
        M::Peer(_) => Error::Mqtt(MqttError::InvalidPacket),
        M::Resource(minimq::ResourceError::PacketTooLarge) => {
            Error::Mqtt(MqttError::PacketTooLarge)
        }
        M::Resource(minimq::ResourceError::InflightExhausted) => {
            Error::Mqtt(MqttError::InflightExhausted)
        }
        M::Resource(_) => Error::Mqtt(MqttError::BufferTooSmall),
        M::WriteZero => Error::Write,
        _ => Error::Mqtt(MqttError::InvalidPacket),
    }
}

/// How the MQTT connection reaches the broker.
#[derive(Clone, Copy, Debug)]
pub enum Transport<'c> {
    /// TLS terminated in the modem: SSL context `ssl_ctx` set up from `tls` (applied on the
    /// first connection and again after every modem reboot).
    ModemTls {
        /// SSL context (0–5).
        ssl_ctx: u8,
        /// Certificates and options.
        tls: TlsConfig<'c>,
    },
    /// Plain TCP (a broker on a private network, or tests).
    Tcp,
}

/// Everything [`Mqtt`] needs to (re)connect. `Debug` never shows the password.
#[derive(Clone, Copy)]
pub struct MqttConfig<'c> {
    /// Broker host name (or address) and port (8883 for MQTT over TLS).
    pub host: &'c str,
    /// Broker port.
    pub port: u16,
    /// PDP context to use, and its APN (re-activated after a `pdpdeact` or a reboot).
    pub cid: u8,
    /// APN of the context.
    pub apn: Apn<'c>,
    /// TLS in the modem, or plain TCP.
    pub transport: Transport<'c>,
    /// MQTT client id (AWS IoT: the thing name).
    pub client_id: &'c str,
    /// Keep-alive interval in seconds.
    pub keepalive_s: u16,
    /// Session expiry in seconds; above 0 the broker keeps the session (subscriptions and
    /// in-flight QoS 1 messages) across a reconnect. 0 starts clean every time.
    pub session_expiry_s: u32,
    /// User name and password, if the broker wants them (AWS IoT with certificates does not).
    pub auth: Option<(&'c str, &'c [u8])>,
    /// Last will: topic, payload, QoS, retained.
    pub will: Option<(&'c str, &'c [u8], QoS, bool)>,
    /// First wait between failed connection attempts (doubles each time, with jitter).
    pub backoff_min: Duration,
    /// Longest wait between attempts.
    pub backoff_max: Duration,
}

impl<'c> MqttConfig<'c> {
    /// A configuration with AWS-IoT-like defaults: keep-alive 60 s, session expiry 1 h,
    /// back-off 1 s to 60 s, no user name, no will.
    pub fn new(
        host: &'c str,
        port: u16,
        client_id: &'c str,
        transport: Transport<'c>,
        apn: Apn<'c>,
    ) -> Self {
        Self {
            host,
            port,
            cid: 1,
            apn,
            transport,
            client_id,
            keepalive_s: 60,
            session_expiry_s: 3600,
            auth: None,
            will: None,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for MqttConfig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("cid", &self.cid)
            .field("transport", &self.transport)
            .field("client_id", &self.client_id)
            .field("keepalive_s", &self.keepalive_s)
            .field("session_expiry_s", &self.session_expiry_s)
            .field("auth", &self.auth.map(|(user, _)| (user, "***")))
            .field("will", &self.will.map(|(t, p, q, r)| (t, p.len(), q, r)))
            .finish()
    }
}

/// Topics subscribed again whenever the broker starts a fresh session.
const MAX_SUBSCRIPTIONS: usize = 8;

/// An MQTT client that survives link loss, `pdpdeact` and modem reboots.
pub struct Mqtt<'c, 'buf> {
    config: MqttConfig<'c>,
    session: minimq::Session<'buf>,
    subscriptions: heapless::Vec<(heapless::String<128>, QoS), MAX_SUBSCRIPTIONS>,
    /// Consecutive failed attempts.
    failures: u32,
    /// Modem boots at the last successful link preparation.
    prepared_boot: Option<u32>,
    jitter: u32,
}

impl<'c: 'buf, 'buf> Mqtt<'c, 'buf> {
    /// A client whose minimq buffers live in `buffer`: `rx_size` bytes for one inbound packet,
    /// the rest for outbound packets and the QoS 1 messages kept until acknowledged.
    pub fn new(
        config: MqttConfig<'c>,
        buffer: &'buf mut [u8],
        rx_size: usize,
    ) -> Result<Self, Error> {
        let cfg = |_| Error::Mqtt(MqttError::Config);
        let mut builder = minimq::ConfigBuilder::from_buffer(buffer, rx_size)
            .map_err(cfg)?
            .client_id(config.client_id)
            .map_err(cfg)?
            .keepalive_interval(config.keepalive_s)
            .session_expiry_interval(config.session_expiry_s);
        if let Some((user, password)) = config.auth {
            builder = builder.auth(user, password).map_err(cfg)?;
        }
        if let Some((topic, payload, qos, retained)) = config.will {
            let mut will = minimq::Will::new(topic, payload, &[])
                .map_err(cfg)?
                .qos(qos);
            if retained {
                will = will.retained();
            }
            builder = builder.will(will).map_err(cfg)?;
        }
        // A per-device jitter seed: different devices must not retry in step.
        let jitter = config.client_id.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        Ok(Self {
            config,
            session: minimq::Session::new(builder),
            subscriptions: heapless::Vec::new(),
            failures: 0,
            prepared_boot: None,
            jitter,
        })
    }

    /// Registers a topic to subscribe to after every connection on which the broker did not
    /// keep the session (the first one included).
    pub fn subscribe_on_connect(&mut self, topic: &str, qos: QoS) -> Result<(), Error> {
        let topic = heapless::String::try_from(topic).map_err(|_| Error::Overflow)?;
        self.subscriptions
            .push((topic, qos))
            .map_err(|_| Error::Overflow)
    }

    /// Stops subscribing to `topic` after future connections.
    pub fn forget_subscription(&mut self, topic: &str) {
        self.subscriptions.retain(|(t, _)| t.as_str() != topic);
    }

    /// Consecutive failed connection attempts so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The wait before the next attempt: `backoff_min · 2^(failures-1)`, at most
    /// `backoff_max`, minus up to half of it at random (so devices do not reconnect in step).
    pub fn next_backoff(&mut self) -> Duration {
        if self.failures == 0 {
            return Duration::from_ticks(0);
        }
        let shift = (self.failures - 1).min(16);
        let base = self
            .config
            .backoff_min
            .as_millis()
            .saturating_mul(1 << shift)
            .min(self.config.backoff_max.as_millis());
        // xorshift32
        let mut x = self.jitter ^ (Instant::now().as_ticks() as u32);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.jitter = x;
        let cut = if base > 1 {
            u64::from(x) % (base / 2)
        } else {
            0
        };
        Duration::from_millis(base - cut)
    }

    /// Brings up what the link needs: the modem after a reboot (start-up, TLS context), and
    /// the data call.
    async fn prepare(&mut self, modem: &Modem<'_>) -> Result<(), Error> {
        let boots = modem.boots();
        if self.prepared_boot != Some(boots) {
            if self.prepared_boot.is_some() {
                info!("modem rebooted since the last connection: re-initialising");
                modem.init().await?;
            }
            modem
                .data_call()
                .configure(self.config.cid, &self.config.apn)
                .await?;
            if let Transport::ModemTls { ssl_ctx, tls } = &self.config.transport {
                modem.configure_tls(*ssl_ctx, tls).await?;
            }
            self.prepared_boot = Some(modem.boots());
        }
        modem
            .network()
            .wait_network_ready(self.config.cid, Duration::from_secs(60))
            .await
            .map_err(|e| match e {
                crate::asynch::NotReady::Modem(e) | crate::asynch::NotReady::DataCall(e) => e,
                _ => Error::InvalidState,
            })
    }

    /// One connection attempt (after the back-off its previous failures call for): prepare the
    /// modem and the data call, open the socket, `CONNECT`, and subscribe again if the broker
    /// started a fresh session. Call it in a loop and use the connection inside the loop's body
    /// (see the module example).
    pub async fn connect<'s, 'm, 'a>(
        &'s mut self,
        modem: &'m Modem<'a>,
    ) -> Result<MqttConnection<'s, 'buf, Socket<'a>>, Error> {
        let wait = self.next_backoff();
        if wait.as_ticks() > 0 {
            Timer::after(wait).await;
        }
        let socket = match self.open(modem).await {
            Ok(s) => s,
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                return Err(e);
            }
        };
        self.establish(socket).await
    }

    /// One connection attempt over TLS running on the MCU (feature `mcu-tls`): a plain TCP
    /// socket through the modem (set [`MqttConfig::transport`] to [`Transport::Tcp`]), then
    /// TLS 1.3 with embedded-tls as `tls` says, then `CONNECT`. Use it in a loop like
    /// [`Mqtt::connect`].
    #[cfg(feature = "mcu-tls")]
    #[allow(clippy::type_complexity)]
    pub async fn connect_mcu_tls<'s, 'm, 'a, 'b, R, const RB: usize, const WB: usize>(
        &'s mut self,
        modem: &'m Modem<'a>,
        buffers: &'b mut crate::tls::TlsBuffers<RB, WB>,
        tls: &crate::tls::McuTlsConfig<'_>,
        rng: R,
    ) -> Result<MqttConnection<'s, 'buf, crate::tls::TlsStream<'b, Socket<'a>>>, Error>
    where
        R: rand_core::CryptoRngCore,
        'm: 'b,
        'a: 'b,
    {
        let wait = self.next_backoff();
        if wait.as_ticks() > 0 {
            Timer::after(wait).await;
        }
        let stream = match self.open(modem).await {
            Ok(socket) => crate::tls::McuTls::connect(socket, buffers, tls, rng).await,
            Err(e) => Err(e),
        };
        match stream {
            Ok(stream) => self.establish(stream).await,
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                Err(e)
            }
        }
    }

    /// `CONNECT` over `io`, then subscribe again if the broker started a fresh session.
    async fn establish<'s, IO: minimq::Io<Error = Error>>(
        &'s mut self,
        io: IO,
    ) -> Result<MqttConnection<'s, 'buf, IO>, Error> {
        let subscriptions = self.subscriptions.clone();
        let failures = &mut self.failures;
        let mut conn = match self.session.connect(io).await {
            Ok(c) => c,
            Err(e) => {
                *failures = failures.saturating_add(1);
                return Err(map_err(e));
            }
        };
        let resumed = conn.connect_event() == ConnectEvent::Reconnected;
        if !resumed && !subscriptions.is_empty() {
            let mut filters: heapless::Vec<minimq::TopicFilter<'_>, MAX_SUBSCRIPTIONS> =
                heapless::Vec::new();
            for (topic, qos) in &subscriptions {
                let f = minimq::TopicFilter::new(topic)
                    .options(minimq::SubscriptionOptions::default().maximum_qos(*qos));
                let _ = filters.push(f);
            }
            if let Err(e) = conn.subscribe(&filters, &[]).await {
                *failures = failures.saturating_add(1);
                return Err(map_err(e));
            }
        }
        *failures = 0;
        info!("MQTT connected");
        Ok(MqttConnection {
            conn,
            resumed,
            outbox_synced: false,
        })
    }

    async fn open<'a>(&mut self, modem: &Modem<'a>) -> Result<Socket<'a>, Error> {
        self.prepare(modem).await?;
        let remote = match self.config.transport {
            Transport::ModemTls { ssl_ctx, .. } => Remote::Tls {
                ssl_ctx,
                host: self.config.host,
                port: self.config.port,
            },
            Transport::Tcp => Remote::Tcp {
                host: self.config.host,
                port: self.config.port,
            },
        };
        modem.connect(self.config.cid, remote).await
    }
}

/// A message waiting in an [`Outbox`].
#[derive(Clone, Debug)]
pub struct Outgoing<const L: usize> {
    /// Topic.
    pub topic: heapless::String<128>,
    /// Payload.
    pub payload: heapless::Vec<u8, L>,
    /// QoS.
    pub qos: QoS,
}

/// Messages to publish, shared between the tasks that produce them and the task running the
/// connection ([`MqttConnection::serve`]).
///
/// Nothing is lost across link failures: messages queued while the link is down are published
/// once it is back, and a QoS 1 message stays in the outbox until the broker acknowledges it.
/// If the broker resumed the session, minimq retransmits what was in flight; if it started a
/// fresh one (it lost the session, e.g. restarted without persistence), the outbox publishes
/// those messages again. Holds up to `Q` queued messages of up to `L` payload bytes, plus the 8
/// in flight.
pub struct Outbox<const Q: usize, const L: usize> {
    queue: embassy_sync::channel::Channel<
        embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex,
        Outgoing<L>,
        Q,
    >,
    track: embassy_sync::blocking_mutex::Mutex<
        embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex,
        core::cell::RefCell<Tracking<L>>,
    >,
}

/// At most this many QoS 1 messages in flight (minimq's limit).
const IN_FLIGHT: usize = 8;

struct Tracking<const L: usize> {
    /// To publish before anything new (taken but not accepted, or to be sent again).
    retry: heapless::Deque<Outgoing<L>, { IN_FLIGHT + 2 }>,
    /// Accepted by the session, not yet acknowledged.
    in_flight: heapless::Deque<(minimq::Op, Outgoing<L>), IN_FLIGHT>,
    /// The link broke while this QoS 1 message was being written: the session kept it, so it
    /// is retransmitted if the session is resumed, and must be published again if not.
    uncertain: Option<Outgoing<L>>,
}

impl<const Q: usize, const L: usize> Default for Outbox<Q, L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const Q: usize, const L: usize> Outbox<Q, L> {
    /// An empty outbox.
    pub const fn new() -> Self {
        Self {
            queue: embassy_sync::channel::Channel::new(),
            track: embassy_sync::blocking_mutex::Mutex::new(core::cell::RefCell::new(Tracking {
                retry: heapless::Deque::new(),
                in_flight: heapless::Deque::new(),
                uncertain: None,
            })),
        }
    }

    fn message(topic: &str, payload: &[u8], qos: QoS) -> Result<Outgoing<L>, Error> {
        Ok(Outgoing {
            topic: heapless::String::try_from(topic).map_err(|_| Error::Overflow)?,
            payload: heapless::Vec::from_slice(payload).map_err(|_| Error::Overflow)?,
            qos,
        })
    }

    /// Queues a message; [`Error::Overflow`] if the outbox is full or the message too long.
    pub fn try_publish(&self, topic: &str, payload: &[u8], qos: QoS) -> Result<(), Error> {
        self.queue
            .try_send(Self::message(topic, payload, qos)?)
            .map_err(|_| Error::Overflow)
    }

    /// Queues a message, waiting for room.
    pub async fn publish(&self, topic: &str, payload: &[u8], qos: QoS) -> Result<(), Error> {
        self.queue.send(Self::message(topic, payload, qos)?).await;
        Ok(())
    }

    /// Messages not yet acknowledged (queued, waiting to be sent again, or in flight).
    pub fn len(&self) -> usize {
        self.queue.len()
            + self.track.lock(|t| {
                let t = t.borrow();
                t.retry.len() + t.in_flight.len() + usize::from(t.uncertain.is_some())
            })
    }

    /// Whether every message was published and, for QoS 1, acknowledged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with<T>(&self, f: impl FnOnce(&mut Tracking<L>) -> T) -> T {
        self.track.lock(|t| f(&mut t.borrow_mut()))
    }

    /// A new connection: decide what must be sent again.
    fn connected(&self, resumed: bool) {
        self.with(|t| {
            let uncertain = t.uncertain.take();
            if resumed {
                // minimq retransmits everything the session kept, the uncertain one included.
                return;
            }
            // A fresh session forgot what was in flight: send it again, oldest first, before
            // the rest.
            let mut again: heapless::Vec<Outgoing<L>, { IN_FLIGHT + 1 }> = heapless::Vec::new();
            while let Some((_, m)) = t.in_flight.pop_front() {
                let _ = again.push(m);
            }
            if let Some(m) = uncertain {
                let _ = again.push(m);
            }
            for m in again.into_iter().rev() {
                if let Err(m) = t.retry.push_front(m) {
                    // Cannot happen: retry holds in-flight + 2.
                    let _ = m;
                    warn!("outbox retry queue full");
                }
            }
        });
    }

    /// Drops acknowledged messages; returns the first one to send again, if any.
    fn settle<IO: minimq::Io<Error = Error>>(&self, conn: &minimq::Connection<'_, '_, IO>) {
        self.with(|t| {
            let mut keep: heapless::Deque<(minimq::Op, Outgoing<L>), IN_FLIGHT> =
                heapless::Deque::new();
            while let Some((op, m)) = t.in_flight.pop_front() {
                if conn.is_complete(&op) {
                    continue;
                }
                if conn.is_invalidated(&op) {
                    let _ = t.retry.push_back(m);
                    continue;
                }
                let _ = keep.push_back((op, m));
            }
            t.in_flight = keep;
        });
    }

    async fn next(&self) -> Outgoing<L> {
        if let Some(m) = self.with(|t| t.retry.pop_front()) {
            return m;
        }
        self.queue.receive().await
    }
}

/// A live MQTT connection (borrowing its [`Mqtt`]).
pub struct MqttConnection<'s, 'buf, IO: minimq::Io<Error = Error>> {
    conn: minimq::Connection<'s, 'buf, IO>,
    resumed: bool,
    outbox_synced: bool,
}

impl<'s, 'buf, IO: minimq::Io<Error = Error>> MqttConnection<'s, 'buf, IO> {
    /// Whether the broker resumed the previous session (subscriptions kept, in-flight QoS 1
    /// messages replayed).
    pub fn resumed_session(&self) -> bool {
        self.resumed
    }

    /// Subscribes to `topic` on this connection.
    pub async fn subscribe(&mut self, topic: &str, qos: QoS) -> Result<(), Error> {
        let f = minimq::TopicFilter::new(topic)
            .options(minimq::SubscriptionOptions::default().maximum_qos(qos));
        self.conn
            .subscribe(&[f], &[])
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    /// Unsubscribes from `topic` on this connection (remove it from
    /// [`Mqtt::subscribe_on_connect`] too, or it comes back after a fresh session).
    pub async fn unsubscribe(&mut self, topic: &str) -> Result<(), Error> {
        self.conn
            .unsubscribe(&[topic], &[])
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    /// Publishes `payload` on `topic`. With QoS 1 the message is kept until the broker
    /// acknowledges it, across reconnects when the session is resumed.
    pub async fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS) -> Result<(), Error> {
        let p = minimq::Publication::bytes(topic, payload).qos(qos);
        match self.conn.publish(p).await {
            Ok(_) => Ok(()),
            Err(minimq::PubError::Session(e)) => Err(map_err(e)),
            Err(minimq::PubError::Payload(_)) => Err(Error::Mqtt(MqttError::InvalidRequest)),
        }
    }

    /// Waits for progress: `Ok(Some(message))` when a message arrived, `Ok(None)` after
    /// internal progress (acknowledgements, keep-alive). An error means the connection is
    /// gone: drop this and connect again. Cancel-safe.
    pub async fn poll(&mut self) -> Result<Option<InboundPublish<'_>>, Error> {
        self.conn.poll().await.map_err(map_err)
    }

    /// Waits for the next message.
    pub async fn recv(&mut self) -> Result<InboundPublish<'_>, Error> {
        self.conn.recv().await.map_err(map_err)
    }

    /// Calls `on_message` for every message until the connection fails (returns that error).
    pub async fn run(&mut self, mut on_message: impl FnMut(&str, &[u8])) -> Error {
        loop {
            match self.conn.poll().await {
                Ok(Some(msg)) => on_message(msg.topic(), msg.payload()),
                Ok(None) => {}
                Err(e) => return map_err(e),
            }
        }
    }

    /// Serves the connection until it fails (returns why): publishes what arrives in `outbox`
    /// (see [`Outbox`] for what happens to messages across link failures), and calls
    /// `on_message` for every message received. Run it in the loop of the module example.
    pub async fn serve<const Q: usize, const L: usize>(
        &mut self,
        outbox: &Outbox<Q, L>,
        mut on_message: impl FnMut(&str, &[u8]),
    ) -> Error {
        use embassy_futures::select::{Either, select};
        if !self.outbox_synced {
            outbox.connected(self.resumed);
            self.outbox_synced = true;
        }
        loop {
            outbox.settle(&self.conn);
            let next = match select(self.conn.poll(), outbox.next()).await {
                Either::First(Ok(Some(msg))) => {
                    on_message(msg.topic(), msg.payload());
                    continue;
                }
                Either::First(Ok(None)) => continue,
                Either::First(Err(e)) => return map_err(e),
                Either::Second(next) => next,
            };
            let p = minimq::Publication::bytes(&next.topic, &next.payload).qos(next.qos);
            match self.conn.publish(p).await {
                Ok(Some(op)) => outbox.with(|t| {
                    if let Err((_, m)) = t.in_flight.push_back((op, next)) {
                        // minimq refuses a ninth in-flight message before this point.
                        let _ = t.retry.push_front(m);
                    }
                }),
                Ok(None) => {}
                Err(minimq::PubError::Session(e)) => {
                    let e = map_err(e);
                    match e {
                        // Not taken (no room in flight yet): keep it first in line and let
                        // acknowledgements come in.
                        Error::Mqtt(
                            MqttError::NotReady
                            | MqttError::InflightExhausted
                            | MqttError::BufferTooSmall,
                        ) => {
                            outbox.with(|t| {
                                let _ = t.retry.push_front(next);
                            });
                            match self.conn.poll().await {
                                Ok(Some(msg)) => on_message(msg.topic(), msg.payload()),
                                Ok(None) => {}
                                Err(e) => return map_err(e),
                            }
                        }
                        // Refused before it was taken: it waits for the next connection.
                        Error::Mqtt(_) => {
                            outbox.with(|t| {
                                let _ = t.retry.push_front(next);
                            });
                            return e;
                        }
                        // The link broke while it was written: the session kept a QoS 1
                        // message; whether it needs sending again depends on the next session.
                        _ => {
                            if next.qos != QoS::AtMostOnce {
                                outbox.with(|t| t.uncertain = Some(next));
                            }
                            return e;
                        }
                    }
                }
                Err(minimq::PubError::Payload(_)) => {}
            }
        }
    }

    /// Whether every QoS 1 message published so far was acknowledged.
    pub fn all_acknowledged(&self) -> bool {
        self.conn.session().is_publish_quiescent()
    }

    /// Sends `DISCONNECT` (the broker then drops the will).
    pub async fn disconnect(mut self) -> Result<(), Error> {
        self.conn.disconnect().await.map_err(map_err)
    }
}
