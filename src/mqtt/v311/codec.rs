//! MQTT 3.1.1 packets (OASIS MQTT 3.1.1): the client's encoder and the decoder of what a server
//! sends a client. The one MQTT 3.1.1 codec of the crate: the [`Session`](super::Session) and
//! the Aliyun dynamic registration use it.
//!
//! The decoder never panics and never reads outside the packet it is given: a malformed packet
//! (fuzzed: `fuzz/fuzz_targets/mqtt311.rs`) is [`CodecError::Malformed`].

/// The largest remaining length MQTT can express (four length bytes).
pub(crate) const MAX_REMAINING: usize = 268_435_455;
/// The longest fixed header: one byte of type and flags, four of remaining length.
pub(crate) const MAX_HEADER: usize = 5;

/// Packet types (the high nibble of the first byte).
pub(crate) const CONNECT: u8 = 1;
/// CONNACK.
pub(crate) const CONNACK: u8 = 2;
/// PUBLISH.
pub(crate) const PUBLISH: u8 = 3;
/// PUBACK.
pub(crate) const PUBACK: u8 = 4;
/// SUBACK.
pub(crate) const SUBACK: u8 = 9;
/// UNSUBACK.
pub(crate) const UNSUBACK: u8 = 11;
/// PINGRESP.
pub(crate) const PINGRESP: u8 = 13;

/// PINGREQ, whole.
pub(crate) const PINGREQ_PACKET: [u8; 2] = [0xC0, 0x00];
/// DISCONNECT, whole.
pub(crate) const DISCONNECT_PACKET: [u8; 2] = [0xE0, 0x00];

/// What went wrong encoding or decoding a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) enum CodecError {
    /// The packet does not fit the buffer it is encoded into.
    BufferTooSmall,
    /// A string longer than 65 535 bytes, or a packet longer than [`MAX_REMAINING`].
    TooLarge,
    /// Not a valid packet from a server (wrong flags or length, bad UTF-8, a type a server does
    /// not send, a fifth length byte).
    Malformed,
}

/// Appends to a buffer, refusing to overflow it.
pub(crate) struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Out<'b> {
    /// An empty writer over `buf`.
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `bytes`.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(CodecError::BufferTooSmall)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(CodecError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn put_u16(&mut self, v: u16) -> Result<(), CodecError> {
        self.put(&v.to_be_bytes())
    }

    /// An MQTT string or binary field: 16-bit length, then the bytes.
    fn put_field(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let n = u16::try_from(bytes.len()).map_err(|_| CodecError::TooLarge)?;
        self.put_u16(n)?;
        self.put(bytes)
    }

    /// A fixed header: type and flags, then the remaining length.
    fn put_header(&mut self, first: u8, remaining: usize) -> Result<(), CodecError> {
        if remaining > MAX_REMAINING {
            return Err(CodecError::TooLarge);
        }
        self.put(&[first])?;
        let mut n = remaining;
        loop {
            let mut b = (n & 0x7f) as u8;
            n >>= 7;
            if n > 0 {
                b |= 0x80;
            }
            self.put(&[b])?;
            if n == 0 {
                return Ok(());
            }
        }
    }
}

fn add(a: usize, b: usize) -> Result<usize, CodecError> {
    a.checked_add(b).ok_or(CodecError::TooLarge)
}

/// The encoded size of a string or binary field (2 length bytes, then the bytes).
fn field(len: usize) -> Result<usize, CodecError> {
    if len > usize::from(u16::MAX) {
        return Err(CodecError::TooLarge);
    }
    add(len, 2)
}

/// The size of a whole packet whose remaining length is `remaining`.
pub(crate) fn packet_size(remaining: usize) -> Result<usize, CodecError> {
    let header = match remaining {
        0..=127 => 2,
        128..=16_383 => 3,
        16_384..=2_097_151 => 4,
        2_097_152..=MAX_REMAINING => 5,
        _ => return Err(CodecError::TooLarge),
    };
    add(remaining, header)
}

/// What a CONNECT carries (protocol level 4).
#[derive(Clone, Copy)]
pub(crate) struct Connect<'a> {
    /// Client identifier.
    pub(crate) client_id: &'a str,
    /// Keep-alive in seconds (0: off).
    pub(crate) keepalive_s: u16,
    /// Clean session flag.
    pub(crate) clean_session: bool,
    /// User name and password.
    pub(crate) auth: Option<(&'a str, &'a [u8])>,
    /// Will topic, payload, QoS (0–2), retain.
    pub(crate) will: Option<(&'a str, &'a [u8], u8, bool)>,
}

impl<'a> Connect<'a> {
    fn remaining(&self) -> Result<usize, CodecError> {
        // Protocol name (6), level (1), flags (1), keep-alive (2).
        let mut n = add(10, field(self.client_id.len())?)?;
        if let Some((topic, payload, _, _)) = self.will {
            n = add(n, field(topic.len())?)?;
            n = add(n, field(payload.len())?)?;
        }
        if let Some((user, password)) = self.auth {
            n = add(n, field(user.len())?)?;
            n = add(n, field(password.len())?)?;
        }
        Ok(n)
    }

    /// The size of the whole encoded packet.
    pub(crate) fn size(&self) -> Result<usize, CodecError> {
        packet_size(self.remaining()?)
    }

    fn flags(&self) -> u8 {
        let mut flags = 0u8;
        if self.clean_session {
            flags |= 0x02;
        }
        if let Some((_, _, qos, retain)) = self.will {
            flags |= 0x04 | ((qos & 3) << 3);
            if retain {
                flags |= 0x20;
            }
        }
        if self.auth.is_some() {
            flags |= 0xC0;
        }
        flags
    }

    /// The fixed header and the variable header (protocol name and level, flags, keep-alive):
    /// at most 15 bytes, and how many there are. The payload fields follow
    /// ([`Connect::fields`]).
    pub(crate) fn head(&self) -> Result<([u8; 15], usize), CodecError> {
        let mut buf = [0u8; 15];
        let mut out = Out::new(&mut buf);
        out.put_header(CONNECT << 4, self.remaining()?)?;
        out.put_field(b"MQTT")?;
        out.put(&[4, self.flags()])?;
        out.put_u16(self.keepalive_s)?;
        let n = out.len();
        Ok((buf, n))
    }

    /// The payload fields in order (each goes on the wire as a 16-bit length, then the bytes):
    /// client id, will topic and payload, user name, password.
    pub(crate) fn fields(&self) -> [Option<&'a [u8]>; 5] {
        let will = self.will;
        let auth = self.auth;
        [
            Some(self.client_id.as_bytes()),
            will.map(|(t, ..)| t.as_bytes()),
            will.map(|(_, p, ..)| p),
            auth.map(|(u, _)| u.as_bytes()),
            auth.map(|(_, p)| p),
        ]
    }

    /// Encodes the packet at the start of `buf`; returns its length. (The session writes its
    /// CONNECT piece by piece; the Aliyun registration uses this.)
    #[cfg_attr(not(feature = "aliyun"), allow(dead_code))]
    pub(crate) fn encode(&self, buf: &mut [u8]) -> Result<usize, CodecError> {
        let (head, n) = self.head()?;
        let mut out = Out::new(buf);
        out.put(head.get(..n).unwrap_or_default())?;
        for f in self.fields().into_iter().flatten() {
            out.put_field(f)?;
        }
        Ok(out.len())
    }
}

/// The size of a PUBLISH packet (`qos` > 0 adds a packet id).
pub(crate) fn publish_size(topic: &str, payload: &[u8], qos: u8) -> Result<usize, CodecError> {
    let id = if qos > 0 { 2 } else { 0 };
    packet_size(add(add(field(topic.len())?, id)?, payload.len())?)
}

/// Encodes a PUBLISH at the start of `buf` (`id` is required for QoS above 0); returns its
/// length.
pub(crate) fn encode_publish(
    buf: &mut [u8],
    topic: &str,
    payload: &[u8],
    qos: u8,
    retain: bool,
    dup: bool,
    id: Option<u16>,
) -> Result<usize, CodecError> {
    let qos = qos & 3;
    let id = match (qos, id) {
        (0, _) => None,
        (_, Some(id)) if id != 0 => Some(id),
        _ => return Err(CodecError::Malformed),
    };
    let remaining = add(
        add(field(topic.len())?, if id.is_some() { 2 } else { 0 })?,
        payload.len(),
    )?;
    let mut first = (PUBLISH << 4) | (qos << 1);
    if retain {
        first |= 0x01;
    }
    if dup {
        first |= 0x08;
    }
    let mut out = Out::new(buf);
    out.put_header(first, remaining)?;
    out.put_field(topic.as_bytes())?;
    if let Some(id) = id {
        out.put_u16(id)?;
    }
    out.put(payload)?;
    Ok(out.len())
}

/// Encodes a SUBSCRIBE (filters with their maximum QoS) at the start of `buf`.
pub(crate) fn encode_subscribe(
    buf: &mut [u8],
    id: u16,
    filters: &[(&str, u8)],
) -> Result<usize, CodecError> {
    if filters.is_empty() || id == 0 {
        return Err(CodecError::Malformed);
    }
    let mut remaining = 2usize;
    for (f, _) in filters {
        remaining = add(add(remaining, field(f.len())?)?, 1)?;
    }
    let mut out = Out::new(buf);
    out.put_header(0x82, remaining)?;
    out.put_u16(id)?;
    for (f, qos) in filters {
        out.put_field(f.as_bytes())?;
        out.put(&[qos & 3])?;
    }
    Ok(out.len())
}

/// Encodes an UNSUBSCRIBE at the start of `buf`.
pub(crate) fn encode_unsubscribe(
    buf: &mut [u8],
    id: u16,
    filters: &[&str],
) -> Result<usize, CodecError> {
    if filters.is_empty() || id == 0 {
        return Err(CodecError::Malformed);
    }
    let mut remaining = 2usize;
    for f in filters {
        remaining = add(remaining, field(f.len())?)?;
    }
    let mut out = Out::new(buf);
    out.put_header(0xA2, remaining)?;
    out.put_u16(id)?;
    for f in filters {
        out.put_field(f.as_bytes())?;
    }
    Ok(out.len())
}

/// A PUBACK for packet `id`.
pub(crate) fn puback(id: u16) -> [u8; 4] {
    let [hi, lo] = id.to_be_bytes();
    [PUBACK << 4, 0x02, hi, lo]
}

/// Parses a fixed header from the start of `bytes`: `Ok(None)` while more bytes are needed,
/// else the first byte, the remaining length and the header's length. A fifth length byte is
/// [`CodecError::Malformed`].
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Option<(u8, usize, usize)>, CodecError> {
    let Some((&first, rest)) = bytes.split_first() else {
        return Ok(None);
    };
    let mut value = 0usize;
    for (i, (&b, shift)) in rest.iter().zip([0u32, 7, 14, 21]).enumerate() {
        value |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            // `i` < 4: the header is at most 5 bytes.
            return Ok(Some((first, value, i.saturating_add(2))));
        }
    }
    if rest.len() >= 4 {
        return Err(CodecError::Malformed);
    }
    Ok(None)
}

/// A PUBLISH from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Publish<'p> {
    /// DUP flag.
    pub(crate) dup: bool,
    /// QoS 0–2 (3 is refused as malformed).
    pub(crate) qos: u8,
    /// RETAIN flag.
    pub(crate) retain: bool,
    /// Topic name (valid UTF-8).
    pub(crate) topic: &'p str,
    /// Packet id (QoS above 0; never 0).
    pub(crate) id: Option<u16>,
    /// Payload.
    pub(crate) payload: &'p [u8],
}

/// A packet a server sends a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Packet<'p> {
    /// CONNACK: session present, return code (0 accepted, 1–5 refused; other values are
    /// passed on for the caller to judge).
    ConnAck {
        /// Session present flag.
        session_present: bool,
        /// Connect return code.
        code: u8,
    },
    /// PUBLISH.
    Publish(Publish<'p>),
    /// PUBACK with its packet id.
    PubAck(u16),
    /// SUBACK: packet id and one return code per filter (0, 1, 2 granted QoS, 0x80 failure).
    SubAck {
        /// Packet id.
        id: u16,
        /// Return codes.
        codes: &'p [u8],
    },
    /// UNSUBACK with its packet id.
    UnsubAck(u16),
    /// PINGRESP.
    PingResp,
}

fn packet_id(body: &[u8]) -> Result<u16, CodecError> {
    match body {
        [hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
        _ => Err(CodecError::Malformed),
    }
}

/// Decodes the packet whose first byte is `first` and whose body (everything after the fixed
/// header) is `body`.
pub(crate) fn decode(first: u8, body: &[u8]) -> Result<Packet<'_>, CodecError> {
    let flags = first & 0x0f;
    match first >> 4 {
        CONNACK if flags == 0 => match body {
            [ack, code] if ack & 0xfe == 0 => Ok(Packet::ConnAck {
                session_present: ack & 1 == 1,
                code: *code,
            }),
            _ => Err(CodecError::Malformed),
        },
        PUBLISH => {
            let qos = (flags >> 1) & 3;
            if qos == 3 {
                return Err(CodecError::Malformed);
            }
            let (len, rest) = body.split_first_chunk::<2>().ok_or(CodecError::Malformed)?;
            let (topic, mut rest) = rest
                .split_at_checked(usize::from(u16::from_be_bytes(*len)))
                .ok_or(CodecError::Malformed)?;
            let topic = core::str::from_utf8(topic).map_err(|_| CodecError::Malformed)?;
            if topic.is_empty() {
                return Err(CodecError::Malformed);
            }
            let mut id = None;
            if qos > 0 {
                let (raw, tail) = rest.split_first_chunk::<2>().ok_or(CodecError::Malformed)?;
                let n = u16::from_be_bytes(*raw);
                if n == 0 {
                    return Err(CodecError::Malformed);
                }
                id = Some(n);
                rest = tail;
            }
            Ok(Packet::Publish(Publish {
                dup: flags & 0x08 != 0,
                qos,
                retain: flags & 0x01 != 0,
                topic,
                id,
                payload: rest,
            }))
        }
        PUBACK if flags == 0 => Ok(Packet::PubAck(packet_id(body)?)),
        UNSUBACK if flags == 0 => Ok(Packet::UnsubAck(packet_id(body)?)),
        SUBACK if flags == 0 => {
            let (raw, codes) = body.split_first_chunk::<2>().ok_or(CodecError::Malformed)?;
            if codes.is_empty() || codes.iter().any(|c| !matches!(c, 0 | 1 | 2 | 0x80)) {
                return Err(CodecError::Malformed);
            }
            Ok(Packet::SubAck {
                id: u16::from_be_bytes(*raw),
                codes,
            })
        }
        PINGRESP if flags == 0 && body.is_empty() => Ok(Packet::PingResp),
        _ => Err(CodecError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn enc(f: impl FnOnce(&mut [u8]) -> Result<usize, CodecError>) -> Vec<u8> {
        let mut buf = [0u8; 1024];
        let n = f(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn connect_with_everything() {
        let c = Connect {
            client_id: "c",
            keepalive_s: 60,
            clean_session: true,
            auth: Some(("u", b"p")),
            will: Some(("w", b"x", 1, true)),
        };
        let bytes = enc(|b| c.encode(b));
        assert_eq!(
            bytes,
            [
                0x10, 25, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xEE, 0, 60, 0, 1, b'c', 0, 1, b'w', 0,
                1, b'x', 0, 1, b'u', 0, 1, b'p'
            ]
        );
        assert_eq!(c.size().unwrap(), bytes.len());
    }

    #[test]
    fn remaining_length_boundaries() {
        for (n, header) in [
            (0, 2),
            (127, 2),
            (128, 3),
            (16_383, 3),
            (16_384, 4),
            (2_097_151, 4),
            (2_097_152, 5),
            (MAX_REMAINING, 5),
        ] {
            assert_eq!(packet_size(n).unwrap(), n + header, "{n}");
            let mut buf = [0u8; 5];
            let mut out = Out::new(&mut buf);
            out.put_header(0x30, n).unwrap();
            assert_eq!(out.len(), header);
            assert_eq!(parse_header(&buf[..header]), Ok(Some((0x30, n, header))));
            for cut in 0..header {
                assert_eq!(parse_header(&buf[..cut]), Ok(None));
            }
        }
        assert_eq!(packet_size(MAX_REMAINING + 1), Err(CodecError::TooLarge));
        assert_eq!(
            parse_header(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(CodecError::Malformed)
        );
        assert_eq!(
            parse_header(&[0x30, 0x80, 0x80, 0x80, 0x80]),
            Err(CodecError::Malformed)
        );
    }

    #[test]
    fn publish_round_trip() {
        let bytes = enc(|b| encode_publish(b, "a/b", b"hi", 1, false, true, Some(7)));
        assert_eq!(bytes, [0x3A, 9, 0, 3, b'a', b'/', b'b', 0, 7, b'h', b'i']);
        assert_eq!(publish_size("a/b", b"hi", 1).unwrap(), bytes.len());
        let (first, _, h) = parse_header(&bytes).unwrap().unwrap();
        assert_eq!(
            decode(first, &bytes[h..]),
            Ok(Packet::Publish(Publish {
                dup: true,
                qos: 1,
                retain: false,
                topic: "a/b",
                id: Some(7),
                payload: b"hi"
            }))
        );
        // QoS 1 without an id is refused at encoding.
        let mut buf = [0u8; 16];
        assert_eq!(
            encode_publish(&mut buf, "a", b"", 1, false, false, None),
            Err(CodecError::Malformed)
        );
        assert_eq!(
            encode_publish(&mut buf, "a", &[0; 20], 0, false, false, None),
            Err(CodecError::BufferTooSmall)
        );
    }

    #[test]
    fn subscribe_and_unsubscribe() {
        assert_eq!(
            enc(|b| encode_subscribe(b, 1, &[("/ext/register", 1)])),
            [
                0x82, 18, 0, 1, 0, 13, b'/', b'e', b'x', b't', b'/', b'r', b'e', b'g', b'i', b's',
                b't', b'e', b'r', 1
            ]
        );
        assert_eq!(
            enc(|b| encode_unsubscribe(b, 0x0102, &["a", "bc"])),
            [0xA2, 9, 1, 2, 0, 1, b'a', 0, 2, b'b', b'c']
        );
        let mut buf = [0u8; 16];
        assert_eq!(
            encode_subscribe(&mut buf, 1, &[]),
            Err(CodecError::Malformed)
        );
    }

    #[test]
    fn decoder_refuses_what_a_server_must_not_send() {
        let bad: &[(u8, &[u8])] = &[
            (0x20, &[0, 0, 0]),          // CONNACK of 3 bytes
            (0x20, &[2, 0]),             // reserved acknowledge flag
            (0x21, &[0, 0]),             // CONNACK with flags
            (0x36, &[0, 1, b'a']),       // QoS 3
            (0x30, &[0, 9, b'a']),       // topic beyond the body
            (0x30, &[0, 0]),             // empty topic
            (0x30, &[0, 1, 0xff]),       // not UTF-8
            (0x32, &[0, 1, b'a']),       // QoS 1 without id
            (0x32, &[0, 1, b'a', 0, 0]), // packet id 0
            (0x40, &[0]),                // PUBACK too short
            (0x41, &[0, 1]),             // PUBACK with flags
            (0x90, &[0, 1]),             // SUBACK without codes
            (0x90, &[0, 1, 3]),          // SUBACK with an invalid code
            (0xB0, &[0, 1, 0]),          // UNSUBACK too long
            (0xD0, &[0]),                // PINGRESP with a body
            (0x10, &[]),                 // CONNECT: a server does not send it
            (0x82, &[0, 1]),             // SUBSCRIBE
            (0xC0, &[]),                 // PINGREQ
            (0xE0, &[]),                 // DISCONNECT
            (0x50, &[0, 1]),             // PUBREC
        ];
        for (first, body) in bad {
            assert_eq!(
                decode(*first, body),
                Err(CodecError::Malformed),
                "{first:02x} {body:?}"
            );
        }
        assert_eq!(
            decode(0x20, &[1, 5]),
            Ok(Packet::ConnAck {
                session_present: true,
                code: 5
            })
        );
        assert_eq!(
            decode(0x90, &[0, 9, 1, 0x80]),
            Ok(Packet::SubAck {
                id: 9,
                codes: &[1, 0x80]
            })
        );
        assert_eq!(decode(0xD0, &[]), Ok(Packet::PingResp));
        assert_eq!(decode(0xB0, &[1, 0]), Ok(Packet::UnsubAck(256)));
        assert_eq!(decode(0x40, &[0, 3]), Ok(Packet::PubAck(3)));
    }
}
