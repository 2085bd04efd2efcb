//! MQTT 3.1.1 client: the crate's own codec and session (feature `mqtt311`).
//!
//! What Aliyun IoT public instances speak (they accept MQTT 3.1 and 3.1.1 only, with client
//! ids of 100 bytes and more). The API mirrors the minimq session used for MQTT 5 — a
//! long-lived [`Session`] that owns the caller's buffer and the QoS 1 messages in flight, and a
//! [`Connection`] per transport — so that [`Mqtt`](super::Mqtt) drives either version with one
//! user API.
//!
//! - CONNECT: protocol level 4, any client id length MQTT allows (65 535 bytes), clean session
//!   on or off, user name and password, will; a refusal is [`Error::Refused`] with the CONNACK
//!   return code.
//! - QoS 0 and 1 both ways (QoS 2 is refused: [`Error::InvalidRequest`] to publish,
//!   [`Error::Protocol`] when received; Aliyun has none). A QoS 1 message stays in the session
//!   until its PUBACK. When the broker resumes the session (CONNACK session-present = 1), the
//!   messages not yet acknowledged are sent again with DUP set, in their original order, before
//!   anything new. When it starts a fresh one, they are dropped and their [`Op`]s become
//!   [invalidated](Connection::is_invalidated): the caller publishes them again.
//! - At most [`MAX_INFLIGHT`] acknowledged operations (QoS 1 publishes, subscribes,
//!   unsubscribes) at once ([`Error::InflightExhausted`]).
//! - Keep-alive: a PINGREQ when nothing was sent for the keep-alive interval minus a lead
//!   (the smaller of [`PINGRESP_TIMEOUT`] and half the interval); then the PINGRESP must come
//!   within that lead after the PINGREQ was written, or after the last byte received (a long
//!   message arriving over a slow link does not count as a missing answer), else
//!   [`Error::PingTimeout`].
//! - An inbound packet larger than `rx_size` is read, discarded and counted
//!   ([`Connection::dropped`], [`Connection::take_dropped`]); the connection goes on. A QoS 1
//!   message dropped so is not acknowledged (the broker may send it again).
//! - [`Connection::poll`] is cancel-safe when the transport's `read` and `write` are: every
//!   await is one transport call whose progress is saved in the session, so a `poll` dropped
//!   half-way through a packet loses nothing.

use core::fmt;

/// QoS and the connection outcome: minimq's types, shared with the MQTT 5 client.
pub use minimq::{ConnectEvent, QoS};

pub(crate) mod codec;
mod session;

pub use session::{
    Connection, Inbound, MAX_INFLIGHT, MAX_QUEUED_QOS0, Op, PINGRESP_TIMEOUT, Session,
};

/// How to connect: the CONNECT packet's contents. `Debug` never shows the password.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Client identifier, up to 65 535 bytes (Aliyun's are about 100 bytes and more). Empty
    /// asks the broker to assign one, and needs `clean_session`.
    pub client_id: &'a str,
    /// Keep-alive interval in seconds (0: no keep-alive; Aliyun wants 30–1 200).
    pub keepalive_s: u16,
    /// Start a fresh session on every connection (`true`), or ask the broker to resume the
    /// previous one (`false`: its subscriptions and the QoS 1 messages in flight survive a
    /// reconnect).
    pub clean_session: bool,
    /// User name and password (each up to 65 535 bytes). Secret: never in `Debug` or logs.
    pub auth: Option<(&'a str, &'a [u8])>,
    /// Last will: topic, payload, QoS, retain.
    pub will: Option<(&'a str, &'a [u8], QoS, bool)>,
}

impl fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("client_id", &self.client_id)
            .field("keepalive_s", &self.keepalive_s)
            .field("clean_session", &self.clean_session)
            .field("auth", &self.auth.map(|(user, _)| (user, "***")))
            .field("will", &self.will.map(|(t, p, q, r)| (t, p.len(), q, r)))
            .finish()
    }
}

/// Why [`Session::new`] refused its options or buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// `rx_size` is below 4 bytes (a CONNACK) or above the buffer.
    BufferTooSmall,
    /// The client id, user name, password, will topic or will payload is longer than 65 535
    /// bytes.
    TooLong,
    /// An empty client id without `clean_session` (MQTT 3.1.1 brokers refuse it).
    EmptyClientId,
    /// The will topic is empty or contains a wildcard (`+`, `#`) or U+0000.
    InvalidWill,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::BufferTooSmall => "MQTT 3.1.1 buffer too small for its split or CONNECT",
            ConfigError::TooLong => "MQTT 3.1.1 CONNECT field longer than 65535 bytes",
            ConfigError::EmptyClientId => "empty MQTT client id needs clean_session",
            ConfigError::InvalidWill => "invalid MQTT will topic",
        })
    }
}

impl core::error::Error for ConfigError {}

/// An MQTT 3.1.1 session error. `E` is the transport's error.
///
/// After [`Error::Transport`], [`Error::Disconnected`], [`Error::Protocol`],
/// [`Error::PingTimeout`] or [`Error::WriteZero`] the connection is dead: drop it and connect
/// again (the session keeps what is in flight). The other errors leave it usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The transport failed.
    Transport(E),
    /// The transport was closed (a read returned 0 bytes), or the connection is already dead.
    Disconnected,
    /// The broker refused the connection: CONNACK return code 1 (protocol version), 2 (client
    /// id), 3 (server unavailable), 4 (bad user name or password) or 5 (not authorised).
    Refused(u8),
    /// The broker refused a subscription (SUBACK return code 0x80). Reported by the `poll`
    /// that read the SUBACK; the operation is complete and the connection stays usable.
    SubscribeRefused,
    /// The broker sent a malformed or unexpected packet (a QoS 2 PUBLISH included).
    Protocol,
    /// An outbound packet is longer than MQTT can express (256 MiB).
    PacketTooLarge,
    /// An outbound packet can never fit the transmit part of the session's buffer.
    BufferTooSmall,
    /// [`MAX_INFLIGHT`] operations wait for their acknowledgement already.
    InflightExhausted,
    /// The transmit buffer is busy with messages waiting for their acknowledgement, or
    /// [`MAX_QUEUED_QOS0`] QoS 0 messages wait to be written: poll, then try again.
    NotReady,
    /// Not a valid request: QoS 2, an empty topic or filter list.
    InvalidRequest,
    /// No PINGRESP in time (see [`PINGRESP_TIMEOUT`]).
    PingTimeout,
    /// The transport accepted 0 bytes of a write.
    WriteZero,
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(e) => write!(f, "MQTT transport failed: {e:?}"),
            Error::Disconnected => f.write_str("MQTT connection closed"),
            Error::Refused(code) => write!(f, "MQTT broker refused the connection (code {code})"),
            Error::SubscribeRefused => f.write_str("MQTT broker refused a subscription"),
            Error::Protocol => f.write_str("malformed or unexpected MQTT packet from the broker"),
            Error::PacketTooLarge => f.write_str("MQTT packet too large"),
            Error::BufferTooSmall => f.write_str("MQTT transmit buffer too small"),
            Error::InflightExhausted => f.write_str("too many MQTT operations in flight"),
            Error::NotReady => f.write_str("MQTT transmit buffer busy"),
            Error::InvalidRequest => f.write_str("invalid MQTT 3.1.1 request"),
            Error::PingTimeout => f.write_str("no MQTT PINGRESP in time"),
            Error::WriteZero => f.write_str("MQTT transport accepted no bytes"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

impl<E> From<codec::CodecError> for Error<E> {
    fn from(e: codec::CodecError) -> Self {
        match e {
            codec::CodecError::BufferTooSmall => Error::BufferTooSmall,
            codec::CodecError::TooLarge => Error::PacketTooLarge,
            codec::CodecError::Malformed => Error::Protocol,
        }
    }
}

/// The QoS number on the wire.
pub(crate) fn qos_bits(qos: QoS) -> u8 {
    match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}
