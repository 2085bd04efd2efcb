//! The MQTT 3.1.1 session (state kept across connections) and connection (one transport).

use core::fmt;

use embassy_time::{Duration, Instant, with_deadline};
use embedded_io_async::{Read, Write};

use super::codec::{self, Packet};
use super::{ConfigError, ConnectEvent, Error, Options, QoS, qos_bits};
use crate::mqtt::{DroppedMessage, MAX_DROPPED_TOPIC_LEN};

/// At most this many operations wait for their acknowledgement at once: QoS 1 publishes,
/// subscribes and unsubscribes (like minimq).
pub const MAX_INFLIGHT: usize = 8;
/// At most this many QoS 0 messages wait to be written (a `publish` cancelled before its
/// message was written leaves it queued; the next `poll` writes it).
pub const MAX_QUEUED_QOS0: usize = 4;
/// The longest wait for a PINGRESP (and the lead with which the PINGREQ goes out before the
/// keep-alive interval ends); half the keep-alive interval when that is shorter.
pub const PINGRESP_TIMEOUT: Duration = Duration::from_secs(10);

const SLOTS: usize = MAX_INFLIGHT + MAX_QUEUED_QOS0;
/// PUBACKs and the PINGREQ waiting to be written.
const MAX_CONTROL: usize = 8;
/// Bytes of a skipped PUBLISH kept to name it (the topic length and the topic).
const KEEP_TOPIC: usize = 2 + MAX_DROPPED_TOPIC_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Publish0,
    Publish1,
    Subscribe,
    Unsubscribe,
}

/// An encoded outbound packet in the transmit buffer, in send order.
#[derive(Clone, Copy, Debug)]
struct Slot {
    kind: Kind,
    /// Packet id (0 for QoS 0).
    id: u16,
    /// Where it is in the transmit buffer.
    at: usize,
    len: usize,
    /// Bytes of it written on the current connection.
    sent: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    PubAck(u16),
    PingReq,
}

impl Control {
    fn bytes(self) -> ([u8; 4], usize) {
        match self {
            Control::PubAck(id) => (codec::puback(id), 4),
            Control::PingReq => {
                let [a, b] = codec::PINGREQ_PACKET;
                ([a, b, 0, 0], 2)
            }
        }
    }
}

/// Where the reader is in the inbound byte stream.
#[derive(Clone, Copy, Debug)]
enum Rx {
    /// Reading a fixed header: `got` bytes of it in `hdr`.
    Header { got: usize },
    /// Reading the body of a packet into the receive buffer.
    Body { first: u8, len: usize, got: usize },
    /// Discarding a packet too large for the receive buffer; its first `keep` bytes go to the
    /// receive buffer (to name a PUBLISH's topic).
    Skip {
        first: u8,
        len: usize,
        got: usize,
        keep: usize,
    },
    /// A whole packet is in the receive buffer.
    Ready { first: u8, len: usize },
}

/// A handle on one acknowledged operation (QoS 1 publish, subscribe, unsubscribe): its packet
/// id and the session generation it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Op {
    id: u16,
    generation: u32,
    /// 0: QoS 1 publish, 1: subscribe, 2: unsubscribe.
    kind: u8,
}

/// One long-lived MQTT 3.1.1 session: the options, the caller's buffer, and the operations
/// waiting for their acknowledgement (kept across connections, sent again on a resumed
/// session). `Debug` shows no secret.
pub struct Session<'a> {
    options: Options<'a>,
    rx: &'a mut [u8],
    tx: &'a mut [u8],
    slots: heapless::Vec<Slot, SLOTS>,
    /// Bytes of `tx` the slots use (from 0, contiguous, in slot order).
    used: usize,
    next_id: u16,
    generation: u32,
    // Connection state, reset by `connect`.
    rx_state: Rx,
    hdr: [u8; codec::MAX_HEADER],
    control: heapless::Deque<Control, MAX_CONTROL>,
    /// Bytes of the first control packet written.
    control_sent: usize,
    /// Written bytes not flushed yet.
    dirty: bool,
    next_ping: Option<Instant>,
    ping_deadline: Option<Instant>,
    dropped: u32,
    last_dropped: Option<DroppedMessage>,
}

impl fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("options", &self.options)
            .field("rx_size", &self.rx.len())
            .field("tx_size", &self.tx.len())
            .field("in_flight", &self.slots.len())
            .field("generation", &self.generation)
            .field("dropped", &self.dropped)
            .finish()
    }
}

fn has_wildcard(topic: &str) -> bool {
    topic.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
}

impl<'a> Session<'a> {
    /// A session over `buffer`: its first `rx_size` bytes hold one inbound packet (a larger one
    /// is skipped and counted), the rest the outbound packets and the QoS 1 messages kept until
    /// acknowledged (a packet larger than that part is [`Error::BufferTooSmall`]; the CONNECT
    /// is written piece by piece and needs no room there).
    pub fn new(
        options: Options<'a>,
        buffer: &'a mut [u8],
        rx_size: usize,
    ) -> Result<Self, ConfigError> {
        let long = |n: usize| n > usize::from(u16::MAX);
        if long(options.client_id.len()) {
            return Err(ConfigError::TooLong);
        }
        if let Some((user, password)) = options.auth
            && (long(user.len()) || long(password.len()))
        {
            return Err(ConfigError::TooLong);
        }
        if let Some((topic, payload, _, _)) = options.will {
            if long(topic.len()) || long(payload.len()) {
                return Err(ConfigError::TooLong);
            }
            if topic.is_empty() || has_wildcard(topic) {
                return Err(ConfigError::InvalidWill);
            }
        }
        if options.client_id.is_empty() && !options.clean_session {
            return Err(ConfigError::EmptyClientId);
        }
        if rx_size < 4 {
            return Err(ConfigError::BufferTooSmall);
        }
        let (rx, tx) = buffer
            .split_at_mut_checked(rx_size)
            .ok_or(ConfigError::BufferTooSmall)?;
        connect_packet(&options)
            .size()
            .map_err(|_| ConfigError::TooLong)?;
        Ok(Self {
            options,
            rx,
            tx,
            slots: heapless::Vec::new(),
            used: 0,
            next_id: 1,
            generation: 0,
            rx_state: Rx::Header { got: 0 },
            hdr: [0; codec::MAX_HEADER],
            control: heapless::Deque::new(),
            control_sent: 0,
            dirty: false,
            next_ping: None,
            ping_deadline: None,
            dropped: 0,
            last_dropped: None,
        })
    }

    /// Whether no QoS 1 publish waits for its PUBACK.
    pub fn is_publish_quiescent(&self) -> bool {
        !self.slots.iter().any(|s| s.kind == Kind::Publish1)
    }

    fn find(&self, op: &Op) -> bool {
        let kind = match op.kind {
            0 => Kind::Publish1,
            1 => Kind::Subscribe,
            _ => Kind::Unsubscribe,
        };
        self.slots.iter().any(|s| s.kind == kind && s.id == op.id)
    }

    /// Whether `op` still waits for its acknowledgement in this session.
    pub fn is_pending(&self, op: &Op) -> bool {
        op.generation == self.generation && self.find(op)
    }

    /// Whether `op` was acknowledged (in this session generation).
    pub fn is_complete(&self, op: &Op) -> bool {
        op.generation == self.generation && !self.find(op)
    }

    /// Whether the session state that could complete `op` was discarded: the broker started a
    /// fresh session since.
    pub fn is_invalidated(&self, op: &Op) -> bool {
        op.generation != self.generation
    }

    /// Inbound packets skipped so far because they did not fit `rx_size`.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Takes the last inbound packet skipped because it did not fit `rx_size` (the count
    /// stays).
    pub fn take_dropped(&mut self) -> Option<DroppedMessage> {
        self.last_dropped.take()
    }

    /// The last inbound packet skipped because it did not fit `rx_size`, left in place.
    pub fn last_dropped(&self) -> Option<&DroppedMessage> {
        self.last_dropped.as_ref()
    }

    /// Whether the session's bookkeeping holds together (for the fuzz harness): the slots lie
    /// back to back in the transmit buffer, none is written beyond its length, at most one is
    /// written in part, at most [`MAX_INFLIGHT`] wait for an acknowledgement, packet ids are
    /// unique and never 0.
    pub(crate) fn is_consistent(&self) -> bool {
        let mut at = 0usize;
        let mut partial = 0u32;
        for (i, s) in self.slots.iter().enumerate() {
            if s.at != at || s.sent > s.len {
                return false;
            }
            if s.sent > 0 && s.sent < s.len {
                partial = partial.saturating_add(1);
            }
            if s.kind != Kind::Publish0
                && (s.id == 0
                    || self
                        .slots
                        .iter()
                        .skip(i.saturating_add(1))
                        .any(|o| o.id == s.id))
            {
                return false;
            }
            at = at.saturating_add(s.len);
        }
        at == self.used
            && self.used <= self.tx.len()
            && partial <= 1
            && self.in_flight() <= MAX_INFLIGHT
    }

    /// Operations waiting for their acknowledgement (QoS 0 messages not yet written aside).
    fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.kind != Kind::Publish0)
            .count()
    }

    fn next_packet_id(&mut self) -> u16 {
        // At most SLOTS ids are in use: this ends within SLOTS + 1 steps.
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if id != 0 && !self.slots.iter().any(|s| s.id == id) {
                return id;
            }
        }
    }

    /// Removes slot `index` and closes the gap in the transmit buffer.
    fn remove_slot(&mut self, index: usize) {
        if index >= self.slots.len() {
            return;
        }
        let slot = self.slots.remove(index);
        let end = slot.at.saturating_add(slot.len);
        if end <= self.used {
            self.tx.copy_within(end..self.used, slot.at);
        }
        self.used = self.used.saturating_sub(slot.len);
        for s in self.slots.iter_mut().skip(index) {
            s.at = s.at.saturating_sub(slot.len);
        }
    }

    /// Removes the slot of `kind` with packet id `id`; whether there was one.
    fn acknowledge(&mut self, kind: Kind, id: u16) -> bool {
        match self.slots.iter().position(|s| s.kind == kind && s.id == id) {
            Some(i) => {
                self.remove_slot(i);
                true
            }
            None => false,
        }
    }

    /// Encodes a packet at the end of the used transmit buffer and queues it.
    fn queue<E>(
        &mut self,
        kind: Kind,
        id: u16,
        size: usize,
        encode: impl FnOnce(&mut [u8]) -> Result<usize, codec::CodecError>,
    ) -> Result<(), Error<E>> {
        if size > self.tx.len() {
            return Err(Error::BufferTooSmall);
        }
        let free = self.tx.len().saturating_sub(self.used);
        if size > free || self.slots.is_full() {
            return Err(Error::NotReady);
        }
        let space = self.tx.get_mut(self.used..).ok_or(Error::BufferTooSmall)?;
        let len = encode(space)?;
        let slot = Slot {
            kind,
            id,
            at: self.used,
            len,
            sent: 0,
        };
        self.slots.push(slot).map_err(|_| Error::NotReady)?;
        self.used = self.used.saturating_add(len);
        Ok(())
    }

    fn keepalive_lead(&self) -> Option<(Duration, Duration)> {
        let ka = Duration::from_secs(u64::from(self.options.keepalive_s));
        if ka.as_ticks() == 0 {
            return None;
        }
        let half = Duration::from_ticks(ka.as_ticks() / 2);
        let lead = if PINGRESP_TIMEOUT < half {
            PINGRESP_TIMEOUT
        } else {
            half
        };
        Some((ka.checked_sub(lead).unwrap_or(ka), lead))
    }

    fn note_outbound(&mut self, now: Instant) {
        self.next_ping = self
            .keepalive_lead()
            .map(|(every, _)| now.checked_add(every).unwrap_or(Instant::MAX));
    }

    fn reset_connection(&mut self) {
        self.rx_state = Rx::Header { got: 0 };
        self.control.clear();
        self.control_sent = 0;
        self.dirty = false;
        self.next_ping = None;
        self.ping_deadline = None;
        // QoS 0 messages not written on the last connection are gone (at most once).
        while let Some(i) = self.slots.iter().position(|s| s.kind == Kind::Publish0) {
            self.remove_slot(i);
        }
        for s in self.slots.iter_mut() {
            s.sent = 0;
        }
    }

    /// Connects over `io`, a fresh transport to the broker: sends CONNECT and waits for the
    /// CONNACK (without a deadline: wrap it in a timeout). When the broker resumes the session
    /// (session present, and `clean_session` off), the operations still waiting for their
    /// acknowledgement are sent again (QoS 1 publishes with DUP set), in order, before anything
    /// new, by the first operation or `poll` of the connection. When it starts a fresh one they
    /// are dropped ([`Connection::is_invalidated`]).
    ///
    /// Not cancel-safe: a cancelled `connect` leaves a transport whose stream state is unknown;
    /// drop it (the session is fine).
    pub async fn connect<IO: Read + Write>(
        &mut self,
        mut io: IO,
    ) -> Result<Connection<'_, 'a, IO>, Error<IO::Error>> {
        self.reset_connection();
        // Written piece by piece: it needs no room in the transmit buffer, which QoS 1
        // messages waiting for their PUBACK may fill.
        let connect = connect_packet(&self.options);
        let (head, n) = connect.head()?;
        debug!(
            "MQTT 3.1.1 CONNECT: {} bytes, clean session {}",
            connect.size().unwrap_or(0),
            self.options.clean_session
        );
        write_all(&mut io, head.get(..n).unwrap_or_default()).await?;
        for field in connect.fields().into_iter().flatten() {
            let len = u16::try_from(field.len()).map_err(|_| Error::PacketTooLarge)?;
            write_all(&mut io, &len.to_be_bytes()).await?;
            write_all(&mut io, field).await?;
        }
        io.flush().await.map_err(Error::Transport)?;
        let (first, len) = loop {
            read_step(self, &mut io).await?;
            match self.rx_state {
                Rx::Ready { first, len } => break (first, len),
                // A CONNACK larger than the receive buffer is no CONNACK.
                Rx::Skip { .. } => return Err(Error::Protocol),
                _ => {}
            }
        };
        self.rx_state = Rx::Header { got: 0 };
        let body = self.rx.get(..len).unwrap_or_default();
        let Packet::ConnAck {
            session_present,
            code,
        } = codec::decode(first, body)?
        else {
            warn!("MQTT 3.1.1: the first packet is not a CONNACK");
            return Err(Error::Protocol);
        };
        match code {
            0 => {}
            1..=5 => {
                warn!("MQTT 3.1.1: the broker refused the connection ({})", code);
                return Err(Error::Refused(code));
            }
            _ => return Err(Error::Protocol),
        }
        let resumed = session_present && !self.options.clean_session;
        if resumed {
            // The messages not acknowledged go out again first, flagged as duplicates.
            for s in self.slots.iter().filter(|s| s.kind == Kind::Publish1) {
                if let Some(b) = self.tx.get_mut(s.at) {
                    *b |= 0x08;
                }
            }
            info!(
                "MQTT 3.1.1 connected, session resumed ({} to send again)",
                self.slots.len()
            );
        } else {
            self.generation = self.generation.wrapping_add(1);
            self.slots.clear();
            self.used = 0;
            self.next_id = 1;
            info!("MQTT 3.1.1 connected, fresh session");
        }
        self.note_outbound(Instant::now());
        Ok(Connection {
            session: self,
            io,
            event: if resumed {
                ConnectEvent::Reconnected
            } else {
                ConnectEvent::Connected
            },
            live: true,
        })
    }
}

fn connect_packet<'o>(options: &Options<'o>) -> codec::Connect<'o> {
    codec::Connect {
        client_id: options.client_id,
        keepalive_s: options.keepalive_s,
        clean_session: options.clean_session,
        auth: options.auth,
        will: options.will.map(|(t, p, q, r)| (t, p, qos_bits(q), r)),
    }
}

async fn write_all<IO: Write>(io: &mut IO, mut bytes: &[u8]) -> Result<(), Error<IO::Error>> {
    while !bytes.is_empty() {
        let n = io.write(bytes).await.map_err(Error::Transport)?;
        if n == 0 {
            return Err(Error::WriteZero);
        }
        bytes = bytes.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// One read of the transport, its progress saved in `s.rx_state` (cancel-safe when the
/// transport's read is). Does nothing when a packet is ready.
async fn read_step<IO: Read>(s: &mut Session<'_>, io: &mut IO) -> Result<(), Error<IO::Error>> {
    let read = |r: Result<usize, IO::Error>| match r {
        Ok(0) => Err(Error::Disconnected),
        Ok(n) => Ok(n),
        Err(e) => Err(Error::Transport(e)),
    };
    match s.rx_state {
        Rx::Ready { .. } => Ok(()),
        Rx::Header { got } => {
            let Some(next) = s.hdr.get_mut(got..=got) else {
                return Err(Error::Protocol);
            };
            read(io.read(next).await)?;
            let got = got.saturating_add(1);
            s.rx_state = match codec::parse_header(s.hdr.get(..got).unwrap_or_default())? {
                None => Rx::Header { got },
                Some((first, 0, _)) => Rx::Ready { first, len: 0 },
                Some((first, len, header)) => {
                    if len.saturating_add(header) > s.rx.len() {
                        let keep = if first >> 4 == codec::PUBLISH {
                            len.min(s.rx.len()).min(KEEP_TOPIC)
                        } else {
                            0
                        };
                        Rx::Skip {
                            first,
                            len,
                            got: 0,
                            keep,
                        }
                    } else {
                        Rx::Body { first, len, got: 0 }
                    }
                }
            };
            Ok(())
        }
        Rx::Body { first, len, got } => {
            let buf = s.rx.get_mut(got..len).unwrap_or_default();
            let n = read(io.read(buf).await)?;
            let got = got.saturating_add(n).min(len);
            s.rx_state = if got == len {
                Rx::Ready { first, len }
            } else {
                Rx::Body { first, len, got }
            };
            Ok(())
        }
        Rx::Skip {
            first,
            len,
            got,
            keep,
        } => {
            let mut scratch = [0u8; 64];
            let n = if got < keep {
                read(io.read(s.rx.get_mut(got..keep).unwrap_or_default()).await)?
            } else {
                let want = len.saturating_sub(got).min(scratch.len());
                read(io.read(scratch.get_mut(..want).unwrap_or_default()).await)?
            };
            let got = got.saturating_add(n).min(len);
            if got < len {
                s.rx_state = Rx::Skip {
                    first,
                    len,
                    got,
                    keep,
                };
                return Ok(());
            }
            s.rx_state = Rx::Header { got: 0 };
            let kept = s.rx.get(..keep).unwrap_or_default();
            let topic = kept
                .split_first_chunk::<2>()
                .and_then(|(n, rest)| rest.get(..usize::from(u16::from_be_bytes(*n))))
                .and_then(|t| core::str::from_utf8(t).ok())
                .and_then(|t| heapless::String::try_from(t).ok());
            let size = codec::packet_size(len).unwrap_or(usize::MAX);
            warn!(
                "MQTT 3.1.1: dropped an inbound packet of {} bytes (receive buffer {})",
                size,
                s.rx.len()
            );
            s.dropped = s.dropped.saturating_add(1);
            s.last_dropped = Some(DroppedMessage {
                topic,
                size,
                capacity: s.rx.len(),
            });
            Ok(())
        }
    }
}

/// A live MQTT 3.1.1 connection over the transport `IO`, borrowing its [`Session`].
///
/// Dropping it sends nothing (the broker publishes the will, if any); [`Connection::disconnect`]
/// ends it cleanly.
pub struct Connection<'s, 'a, IO> {
    session: &'s mut Session<'a>,
    io: IO,
    event: ConnectEvent,
    live: bool,
}

impl<IO> fmt::Debug for Connection<'_, '_, IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("session", &self.session)
            .field("event", &self.event)
            .field("live", &self.live)
            .finish()
    }
}

/// An inbound PUBLISH (its PUBACK is sent for QoS 1).
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'p> {
    topic: &'p str,
    payload: &'p [u8],
    qos: QoS,
    retain: bool,
    dup: bool,
}

impl<'p> Inbound<'p> {
    /// The topic.
    pub fn topic(&self) -> &'p str {
        self.topic
    }

    /// The payload.
    pub fn payload(&self) -> &'p [u8] {
        self.payload
    }

    /// QoS 0 or 1.
    pub fn qos(&self) -> QoS {
        self.qos
    }

    /// Whether the broker sent it as a retained message.
    pub fn retain(&self) -> bool {
        self.retain
    }

    /// Whether the broker flagged it as a possible redelivery.
    pub fn dup(&self) -> bool {
        self.dup
    }
}

impl<'s, 'a, IO: Read + Write> Connection<'s, 'a, IO> {
    /// Whether the broker started a fresh session ([`ConnectEvent::Connected`]) or resumed the
    /// previous one ([`ConnectEvent::Reconnected`]: CONNACK session present, with
    /// `clean_session` off).
    pub fn connect_event(&self) -> ConnectEvent {
        self.event
    }

    /// The session.
    pub fn session(&self) -> &Session<'a> {
        self.session
    }

    /// Whether a message of `qos` can be taken now: the connection is live and there is a free
    /// slot. Then `publish` takes the message before it writes anything (if it fits the free
    /// transmit room; if not it is [`Error::NotReady`] with nothing written): a transport
    /// error from that `publish` leaves a QoS 1 message in the session, sent again on a resumed
    /// session. When it is `false`, a `publish` that fails took nothing.
    pub fn can_publish(&self, qos: QoS) -> bool {
        let s = &*self.session;
        if !self.live || s.slots.is_full() || s.used >= s.tx.len() {
            return false;
        }
        match qos {
            QoS::AtMostOnce => s.slots.len().saturating_sub(s.in_flight()) < MAX_QUEUED_QOS0,
            QoS::AtLeastOnce => s.in_flight() < MAX_INFLIGHT,
            QoS::ExactlyOnce => false,
        }
    }

    /// Whether the connection is still live: `false` once an operation saw the transport fail,
    /// the broker close it, a malformed packet or a missing PINGRESP, or after `disconnect`.
    /// Operations on a dead connection fail with [`Error::Disconnected`].
    pub fn is_connected(&self) -> bool {
        self.live
    }

    /// Whether `op` still waits for its acknowledgement.
    pub fn is_pending(&self, op: &Op) -> bool {
        self.session.is_pending(op)
    }

    /// Whether `op` was acknowledged in this session generation.
    pub fn is_complete(&self, op: &Op) -> bool {
        self.session.is_complete(op)
    }

    /// Whether the session state that could complete `op` was discarded (a fresh session).
    pub fn is_invalidated(&self, op: &Op) -> bool {
        self.session.is_invalidated(op)
    }

    /// Inbound packets skipped so far because they did not fit `rx_size` (over the session's
    /// life).
    pub fn dropped(&self) -> u32 {
        self.session.dropped
    }

    /// Takes the last inbound packet skipped because it did not fit `rx_size`.
    pub fn take_dropped(&mut self) -> Option<DroppedMessage> {
        self.session.last_dropped.take()
    }

    fn fail<T>(&mut self, e: Error<IO::Error>) -> Result<T, Error<IO::Error>> {
        if !matches!(
            e,
            Error::SubscribeRefused
                | Error::NotReady
                | Error::InflightExhausted
                | Error::InvalidRequest
                | Error::BufferTooSmall
                | Error::PacketTooLarge
        ) {
            self.live = false;
        }
        Err(e)
    }

    /// One step of writing: continues a packet written in part, else starts the next one
    /// (control packets first, then the queued packets in order), else flushes. Whether it did
    /// anything.
    async fn write_step(&mut self) -> Result<bool, Error<IO::Error>> {
        let s = &mut *self.session;
        // A packet written in part is finished first: packets never interleave.
        let partial_slot = s.slots.iter().position(|x| x.sent > 0 && x.sent < x.len);
        let (ctl, ctl_len) = match s.control.front() {
            Some(c) => c.bytes(),
            None => ([0; 4], 0),
        };
        let slot = if s.control_sent > 0 || (partial_slot.is_none() && ctl_len > 0) {
            None
        } else {
            partial_slot.or_else(|| s.slots.iter().position(|x| x.sent < x.len))
        };
        let bytes = match slot.and_then(|i| s.slots.get(i)) {
            Some(x) => {
                s.tx.get(x.at.saturating_add(x.sent)..x.at.saturating_add(x.len))
                    .unwrap_or_default()
            }
            None if ctl_len > 0 => ctl.get(s.control_sent..ctl_len).unwrap_or_default(),
            None => {
                if !s.dirty {
                    return Ok(false);
                }
                if let Err(e) = self.io.flush().await {
                    return self.fail(Error::Transport(e));
                }
                let s = &mut *self.session;
                s.dirty = false;
                s.note_outbound(Instant::now());
                return Ok(true);
            }
        };
        let n = match self.io.write(bytes).await {
            Ok(0) => return self.fail(Error::WriteZero),
            Ok(n) => n,
            Err(e) => return self.fail(Error::Transport(e)),
        };
        let s = &mut *self.session;
        s.dirty = true;
        match slot {
            Some(i) => {
                let done = s.slots.get_mut(i).is_some_and(|x| {
                    x.sent = x.sent.saturating_add(n).min(x.len);
                    x.sent == x.len && x.kind == Kind::Publish0
                });
                if done {
                    s.remove_slot(i);
                }
            }
            None => {
                s.control_sent = s.control_sent.saturating_add(n);
                if s.control_sent >= ctl_len {
                    s.control_sent = 0;
                    if s.control.pop_front() == Some(Control::PingReq) {
                        let (_, lead) = s
                            .keepalive_lead()
                            .unwrap_or((PINGRESP_TIMEOUT, PINGRESP_TIMEOUT));
                        s.ping_deadline = Instant::now().checked_add(lead);
                    }
                }
            }
        }
        Ok(true)
    }

    /// Writes and flushes everything queued.
    async fn flush_all(&mut self) -> Result<(), Error<IO::Error>> {
        while self.write_step().await? {}
        Ok(())
    }

    fn check_live(&self) -> Result<(), Error<IO::Error>> {
        if self.live {
            Ok(())
        } else {
            Err(Error::Disconnected)
        }
    }

    /// Handles the packet in the receive buffer: `Some` for a PUBLISH to hand out.
    fn process(&mut self, first: u8, len: usize) -> Result<bool, Error<IO::Error>> {
        let s = &mut *self.session;
        s.rx_state = Rx::Header { got: 0 };
        let body = s.rx.get(..len).unwrap_or_default();
        let packet = match codec::decode(first, body) {
            Ok(p) => p,
            Err(_) => {
                warn!("MQTT 3.1.1: malformed packet from the broker");
                return self.fail(Error::Protocol);
            }
        };
        match packet {
            Packet::Publish(p) => match (p.qos, p.id) {
                (0, _) => Ok(true),
                (1, Some(id)) => {
                    if s.control.push_back(Control::PubAck(id)).is_err() {
                        // Not reached: `poll` makes room before it handles a PUBLISH.
                        return self.fail(Error::Protocol);
                    }
                    Ok(true)
                }
                _ => {
                    warn!("MQTT 3.1.1: a QoS 2 message (not supported)");
                    self.fail(Error::Protocol)
                }
            },
            Packet::PubAck(id) => {
                if !s.acknowledge(Kind::Publish1, id) {
                    debug!("MQTT 3.1.1: stale PUBACK {}", id);
                }
                Ok(false)
            }
            Packet::SubAck { id, codes } => {
                let refused = codes.contains(&0x80);
                if s.acknowledge(Kind::Subscribe, id) && refused {
                    warn!("MQTT 3.1.1: subscription refused");
                    return self.fail(Error::SubscribeRefused);
                }
                Ok(false)
            }
            Packet::UnsubAck(id) => {
                s.acknowledge(Kind::Unsubscribe, id);
                Ok(false)
            }
            Packet::PingResp => {
                s.ping_deadline = None;
                Ok(false)
            }
            Packet::ConnAck { .. } => self.fail(Error::Protocol),
        }
    }

    /// Drives the connection until an inbound PUBLISH is ready (`Some`: the first byte and
    /// the body length in the receive buffer) or something else progressed (`None`).
    async fn progress(&mut self) -> Result<Option<(u8, usize)>, Error<IO::Error>> {
        self.check_live()?;
        let mut progressed = false;
        loop {
            if let Rx::Ready { first, len } = self.session.rx_state {
                if first >> 4 == codec::PUBLISH && self.session.control.is_full() {
                    // Room for its PUBACK first.
                    self.write_step().await?;
                    continue;
                }
                if self.process(first, len)? {
                    return Ok(Some((first, len)));
                }
                return Ok(None);
            }
            if self.write_step().await? {
                progressed = true;
                continue;
            }
            if progressed {
                return Ok(None);
            }
            let now = Instant::now();
            let s = &mut *self.session;
            if s.ping_deadline.is_some_and(|d| now >= d) {
                warn!("MQTT 3.1.1: no PINGRESP in time");
                return self.fail(Error::PingTimeout);
            }
            if s.ping_deadline.is_none()
                && s.next_ping.is_some_and(|t| now >= t)
                && !s.control.iter().any(|c| *c == Control::PingReq)
                && s.control.push_back(Control::PingReq).is_ok()
            {
                continue;
            }
            let deadline = match (s.ping_deadline, s.next_ping) {
                (Some(d), _) => Some(d),
                (None, t) => t,
            };
            let waiting_ping = s.ping_deadline.is_some();
            let io = &mut self.io;
            let r = match deadline {
                Some(d) => match with_deadline(d, read_step(s, io)).await {
                    Ok(r) => r,
                    Err(_) => continue,
                },
                None => read_step(s, io).await,
            };
            if let Err(e) = r {
                return self.fail(e);
            }
            if waiting_ping {
                // The broker is sending: the PINGRESP may be behind a long message.
                let s = &mut *self.session;
                let lead = s.keepalive_lead().map_or(PINGRESP_TIMEOUT, |(_, l)| l);
                s.ping_deadline = s.ping_deadline.max(Instant::now().checked_add(lead));
            }
        }
    }

    fn inbound(&self, first: u8, len: usize) -> Result<Inbound<'_>, Error<IO::Error>> {
        let body = self.session.rx.get(..len).unwrap_or_default();
        match codec::decode(first, body)? {
            Packet::Publish(p) => Ok(Inbound {
                topic: p.topic,
                payload: p.payload,
                qos: if p.qos == 1 {
                    QoS::AtLeastOnce
                } else {
                    QoS::AtMostOnce
                },
                retain: p.retain,
                dup: p.dup,
            }),
            _ => Err(Error::Protocol),
        }
    }

    /// Waits for progress: `Some` on an inbound PUBLISH (QoS 1: its PUBACK is queued and
    /// written by the next call), `None` after internal progress (an acknowledgement, a
    /// keep-alive exchange, queued packets written). Sends PINGREQ when the keep-alive calls
    /// for it; fails with [`Error::PingTimeout`] when the PINGRESP does not come in time.
    ///
    /// A SUBACK refusing a filter (0x80) is [`Error::SubscribeRefused`] here; the connection
    /// stays usable. Any other error ends the connection.
    ///
    /// Cancel-safe when the transport's `read` and `write` are: a `poll` dropped at any await
    /// loses no byte and no packet.
    pub async fn poll(&mut self) -> Result<Option<Inbound<'_>>, Error<IO::Error>> {
        match self.progress().await? {
            Some((first, len)) => self.inbound(first, len).map(Some),
            None => Ok(None),
        }
    }

    /// Waits for the next inbound PUBLISH (driving the connection meanwhile, like `poll`).
    pub async fn recv(&mut self) -> Result<Inbound<'_>, Error<IO::Error>> {
        loop {
            if let Some((first, len)) = self.progress().await? {
                return self.inbound(first, len);
            }
        }
    }

    fn new_op(&mut self, kind: Kind) -> (u16, Op) {
        let id = self.session.next_packet_id();
        let code = match kind {
            Kind::Subscribe => 1,
            Kind::Unsubscribe => 2,
            _ => 0,
        };
        (
            id,
            Op {
                id,
                generation: self.session.generation,
                kind: code,
            },
        )
    }

    fn check_room(&self) -> Result<(), Error<IO::Error>> {
        if self.session.in_flight() >= MAX_INFLIGHT {
            return Err(Error::InflightExhausted);
        }
        Ok(())
    }

    /// Sends SUBSCRIBE for `filters` (each with its maximum QoS). Returns once it is written;
    /// the SUBACK is read by `poll` (the [`Op`] completes then; a refused filter is
    /// [`Error::SubscribeRefused`] from that `poll`). An empty list or QoS 2 is
    /// [`Error::InvalidRequest`]. On a resumed session an unacknowledged SUBSCRIBE is sent
    /// again.
    pub async fn subscribe(&mut self, filters: &[(&str, QoS)]) -> Result<Op, Error<IO::Error>> {
        self.check_live()?;
        if filters.is_empty()
            || filters
                .iter()
                .any(|(f, q)| f.is_empty() || *q == QoS::ExactlyOnce)
        {
            return Err(Error::InvalidRequest);
        }
        self.flush_all().await?;
        self.check_room()?;
        let mut list: heapless::Vec<(&str, u8), MAX_FILTERS> = heapless::Vec::new();
        for (f, q) in filters {
            list.push((f, qos_bits(*q)))
                .map_err(|_| Error::InvalidRequest)?;
        }
        let size = {
            let mut remaining = 2usize;
            for (f, _) in &list {
                remaining = remaining.saturating_add(f.len()).saturating_add(3);
            }
            codec::packet_size(remaining)?
        };
        let (id, op) = self.new_op(Kind::Subscribe);
        self.session.queue(Kind::Subscribe, id, size, |b| {
            codec::encode_subscribe(b, id, &list)
        })?;
        self.flush_all().await?;
        Ok(op)
    }

    /// Sends UNSUBSCRIBE for `filters`; the UNSUBACK is read by `poll`.
    pub async fn unsubscribe(&mut self, filters: &[&str]) -> Result<Op, Error<IO::Error>> {
        self.check_live()?;
        if filters.is_empty() || filters.iter().any(|f| f.is_empty()) {
            return Err(Error::InvalidRequest);
        }
        self.flush_all().await?;
        self.check_room()?;
        let mut remaining = 2usize;
        for f in filters {
            remaining = remaining.saturating_add(f.len()).saturating_add(2);
        }
        let size = codec::packet_size(remaining)?;
        let (id, op) = self.new_op(Kind::Unsubscribe);
        self.session.queue(Kind::Unsubscribe, id, size, |b| {
            codec::encode_unsubscribe(b, id, filters)
        })?;
        self.flush_all().await?;
        Ok(op)
    }

    /// Publishes `payload` on `topic`: `None` for QoS 0 (written when this returns), an [`Op`]
    /// for QoS 1 (kept until its PUBACK, across connections when the session is resumed).
    /// QoS 2, or an empty topic, is [`Error::InvalidRequest`]; no free slot is
    /// [`Error::InflightExhausted`] (QoS 1) or [`Error::NotReady`]; no room in the transmit
    /// buffer yet is [`Error::NotReady`], never is [`Error::BufferTooSmall`].
    ///
    /// Cancelled after the message was taken, it is still sent (by the next call or `poll`).
    /// See [`Connection::can_publish`] for when a failed `publish` kept the message.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
    ) -> Result<Option<Op>, Error<IO::Error>> {
        self.check_live()?;
        if topic.is_empty() || qos == QoS::ExactlyOnce {
            return Err(Error::InvalidRequest);
        }
        let bits = qos_bits(qos);
        let size = codec::publish_size(topic, payload, bits)?;
        if size > self.session.tx.len() {
            return Err(Error::BufferTooSmall);
        }
        if qos == QoS::AtLeastOnce {
            self.check_room()?;
        }
        let fits = |c: &Self| size <= c.session.tx.len().saturating_sub(c.session.used);
        if !self.can_publish(qos) {
            // No free slot (QoS 0 messages waiting to be written): write them; the caller tries
            // again (taking nothing here keeps `can_publish` a promise).
            self.flush_all().await?;
            return Err(Error::NotReady);
        }
        if !fits(self) {
            // The room comes with acknowledgements: `poll`. Nothing was written.
            return Err(Error::NotReady);
        }
        let op = if qos == QoS::AtLeastOnce {
            let (id, op) = self.new_op(Kind::Publish1);
            self.session.queue(Kind::Publish1, id, size, |b| {
                codec::encode_publish(b, topic, payload, 1, false, false, Some(id))
            })?;
            Some(op)
        } else {
            self.session.queue(Kind::Publish0, 0, size, |b| {
                codec::encode_publish(b, topic, payload, 0, false, false, None)
            })?;
            None
        };
        self.flush_all().await?;
        Ok(op)
    }

    /// Writes what is queued, then DISCONNECT (the broker drops the will), and ends the
    /// connection. The session keeps the QoS 1 messages not yet acknowledged.
    pub async fn disconnect(mut self) -> Result<(), Error<IO::Error>> {
        if !self.live {
            return Ok(());
        }
        self.flush_all().await?;
        self.live = false;
        write_all(&mut self.io, &codec::DISCONNECT_PACKET).await?;
        self.io.flush().await.map_err(Error::Transport)
    }
}

/// The most filters one SUBSCRIBE carries.
const MAX_FILTERS: usize = 16;

#[cfg(test)]
mod tests;
