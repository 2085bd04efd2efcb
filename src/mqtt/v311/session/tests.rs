extern crate std;

use core::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::vec::Vec;

use super::*;
use crate::Error as CoreError;

/// A scripted broker: reads come from what the test pushes (at most `chunk` bytes each; pending
/// when there is nothing, `Ok(0)` once closed), writes are recorded.
#[derive(Clone)]
struct Script {
    rx: Rc<RefCell<VecDeque<u8>>>,
    written: Rc<RefCell<Vec<u8>>>,
    closed: Rc<Cell<bool>>,
    /// Writes that may still complete (`None`: all); the others wait.
    write_budget: Rc<Cell<Option<usize>>>,
    chunk: usize,
}

impl Script {
    fn new(inbound: &[u8]) -> Self {
        Self {
            rx: Rc::new(RefCell::new(inbound.iter().copied().collect())),
            written: Rc::default(),
            closed: Rc::default(),
            write_budget: Rc::default(),
            chunk: 3,
        }
    }
    fn push(&self, bytes: &[u8]) {
        self.rx.borrow_mut().extend(bytes.iter().copied());
    }
    fn take_written(&self) -> Vec<u8> {
        core::mem::take(&mut *self.written.borrow_mut())
    }
}

impl embedded_io_async::ErrorType for Script {
    type Error = CoreError;
}

impl Read for Script {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, CoreError> {
        core::future::poll_fn(|_| {
            let mut rx = self.rx.borrow_mut();
            if rx.is_empty() {
                if self.closed.get() {
                    return core::task::Poll::Ready(Ok(0));
                }
                return core::task::Poll::Pending;
            }
            let n = buf.len().min(rx.len()).min(self.chunk);
            for (d, s) in buf.iter_mut().zip(rx.drain(..n)) {
                *d = s;
            }
            core::task::Poll::Ready(Ok(n))
        })
        .await
    }
}

impl Write for Script {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, CoreError> {
        // Partial writes, to exercise the resumption of packets written in part.
        core::future::poll_fn(|_| match self.write_budget.get() {
            Some(0) => core::task::Poll::Pending,
            Some(k) => {
                self.write_budget.set(Some(k - 1));
                core::task::Poll::Ready(())
            }
            None => core::task::Poll::Ready(()),
        })
        .await;
        let n = buf.len().min(5);
        self.written.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    async fn flush(&mut self) -> Result<(), CoreError> {
        Ok(())
    }
}

/// Polls `fut` with a no-op waker up to `polls` times.
fn drive<F: core::future::Future>(fut: F, polls: usize) -> Option<F::Output> {
    let mut fut = core::pin::pin!(fut);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    for _ in 0..polls {
        if let core::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

fn options(client_id: &str, clean_session: bool) -> Options<'_> {
    Options {
        client_id,
        keepalive_s: 60,
        clean_session,
        auth: None,
        will: None,
    }
}

const CONNACK_FRESH: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
const CONNACK_RESUMED: [u8; 4] = [0x20, 0x02, 0x01, 0x00];

fn publish_packet(first: u8, topic: &str, id: Option<u16>, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    if let Some(id) = id {
        body.extend_from_slice(&id.to_be_bytes());
    }
    body.extend_from_slice(payload);
    let mut p = std::vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        p.push(b);
        if n == 0 {
            break;
        }
    }
    p.extend(body);
    p
}

/// Splits written bytes into packets (first byte, body).
fn packets(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (first, len, h) = codec::parse_header(bytes).unwrap().unwrap();
        out.push((first, bytes[h..h + len].to_vec()));
        bytes = &bytes[h + len..];
    }
    out
}

#[test]
fn connect_is_byte_exact_for_a_long_client_id() {
    let id = "a1X2bEnP82z.example1|securemode=2,signmethod=hmacsha256,timestamp=1700000000000,ext=1,instanceId=iot-06z009y9rnab11u-abcdefghijklmnopq|";
    assert!(id.len() > 127, "{}", id.len());
    let mut buf = [0u8; 1024];
    let opts = Options {
        client_id: id,
        keepalive_s: 300,
        clean_session: false,
        auth: Some(("example1&a1X2bEnP82z", b"0123456789abcdef")),
        will: None,
    };
    let mut session = Session::new(opts, &mut buf, 256).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    assert_eq!(conn.connect_event(), ConnectEvent::Connected);
    let mut expected = std::vec![0x10];
    let remaining = 10 + 2 + id.len() + 2 + 20 + 2 + 16;
    expected.extend([(remaining % 128) as u8 | 0x80, (remaining / 128) as u8]);
    expected.extend([0, 4, b'M', b'Q', b'T', b'T', 4, 0xC0, 0x01, 0x2C]);
    for f in [id.as_bytes(), b"example1&a1X2bEnP82z", b"0123456789abcdef"] {
        expected.extend((f.len() as u16).to_be_bytes());
        expected.extend(f);
    }
    assert_eq!(*io.written.borrow(), expected);
    // Debug shows no password.
    let shown = std::format!("{session:?}");
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
}

#[test]
fn config_is_checked() {
    let mut buf = [0u8; 64];
    let long = "x".repeat(70_000);
    assert_eq!(
        Session::new(options(&long, true), &mut buf, 16).err(),
        Some(ConfigError::TooLong)
    );
    assert_eq!(
        Session::new(options("", false), &mut buf, 16).err(),
        Some(ConfigError::EmptyClientId)
    );
    assert_eq!(
        Session::new(options("c", true), &mut buf, 65).err(),
        Some(ConfigError::BufferTooSmall)
    );
    assert_eq!(
        Session::new(options("c", true), &mut buf, 2).err(),
        Some(ConfigError::BufferTooSmall)
    );
    // The CONNECT needs no room in the transmit buffer.
    let id = "d".repeat(60);
    assert!(Session::new(options(&id, true), &mut buf, 16).is_ok());
    let mut o = options("c", true);
    o.will = Some(("a/#", b"x", QoS::AtMostOnce, false));
    assert_eq!(
        Session::new(o, &mut buf, 16).err(),
        Some(ConfigError::InvalidWill)
    );
}

#[test]
fn refused_and_unexpected_connack() {
    let mut buf = [0u8; 256];
    let mut session = Session::new(options("c", true), &mut buf, 64).unwrap();
    for (answer, expected) in [
        (&[0x20, 0x02, 0x00, 0x05][..], Error::Refused(5)),
        (&[0x20, 0x02, 0x00, 0x04][..], Error::Refused(4)),
        (&[0x20, 0x02, 0x00, 0x06][..], Error::Protocol),
        (&[0x20, 0x03, 0x00, 0x00, 0x00][..], Error::Protocol),
        (&[0x30, 0x03, 0x00, 0x01, b'a'][..], Error::Protocol),
        (&[0x20, 0xff, 0xff, 0xff, 0xff, 0x01][..], Error::Protocol),
    ] {
        let r = drive(session.connect(Script::new(answer)), 100).unwrap();
        assert_eq!(r.err(), Some(expected), "{answer:x?}");
    }
    let io = Script::new(&[]);
    io.closed.set(true);
    let r = drive(session.connect(io), 100).unwrap();
    assert_eq!(r.err(), Some(Error::Disconnected));
}

/// Publishes `n` QoS 1 messages; returns their ops.
fn publish_some<IO: Read + Write>(conn: &mut Connection<'_, '_, IO>, n: u8) -> Vec<Op>
where
    IO::Error: core::fmt::Debug,
{
    (0..n)
        .map(|i| {
            let payload = [b'm', b'0' + i];
            drive(conn.publish("up", &payload, QoS::AtLeastOnce), 100)
                .unwrap()
                .unwrap()
                .unwrap()
        })
        .collect()
}

#[test]
fn a_resumed_session_sends_unacknowledged_publishes_again_with_dup_first() {
    let mut buf = [0u8; 1024];
    let mut session = Session::new(options("dev", false), &mut buf, 256).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let ops = {
        let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
        let ops = publish_some(&mut conn, 3);
        // The broker acknowledges the second only; then the link breaks.
        io.push(&[0x40, 0x02, 0x00, 0x02]);
        assert!(matches!(drive(conn.poll(), 100), Some(Ok(None))));
        assert!(conn.is_complete(&ops[1]));
        assert!(conn.is_pending(&ops[0]) && conn.is_pending(&ops[2]));
        ops
    };
    let first = packets(&io.take_written());
    assert_eq!(first.len(), 4, "CONNECT and three PUBLISH");
    assert_eq!(first[1].0, 0x32, "no DUP the first time");

    let io = Script::new(&CONNACK_RESUMED);
    let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    assert_eq!(conn.connect_event(), ConnectEvent::Reconnected);
    // Something new: it goes after the two sent again.
    let new = drive(conn.publish("up", b"new", QoS::AtLeastOnce), 100)
        .unwrap()
        .unwrap()
        .unwrap();
    let p = packets(&io.take_written());
    assert_eq!(p.len(), 4, "{p:x?}");
    assert_eq!(p[0].0, 0x10);
    assert_eq!(p[1], (0x3A, [&[0, 2][..], b"up", &[0, 1], b"m0"].concat()));
    assert_eq!(p[2], (0x3A, [&[0, 2][..], b"up", &[0, 3], b"m2"].concat()));
    assert_eq!(p[3].0, 0x32);
    assert_eq!(&p[3].1[6..], b"new");
    for op in &ops {
        assert!(!conn.is_invalidated(op));
    }
    io.push(&[0x40, 0x02, 0x00, 0x01, 0x40, 0x02, 0x00, 0x03]);
    let new_id = u16::from_be_bytes([p[3].1[4], p[3].1[5]]);
    io.push(&[0x40, 0x02, (new_id >> 8) as u8, new_id as u8]);
    for _ in 0..3 {
        assert!(matches!(drive(conn.poll(), 100), Some(Ok(None))));
    }
    assert!(conn.is_complete(&ops[0]) && conn.is_complete(&ops[2]) && conn.is_complete(&new));
    assert!(conn.session().is_publish_quiescent());
}

#[test]
fn a_fresh_session_invalidates_what_was_in_flight() {
    let mut buf = [0u8; 1024];
    let mut session = Session::new(options("dev", false), &mut buf, 256).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let ops = {
        let mut conn = drive(session.connect(io), 100).unwrap().unwrap();
        publish_some(&mut conn, 2)
    };
    assert!(!session.is_publish_quiescent());
    assert!(session.is_pending(&ops[0]));
    let io = Script::new(&CONNACK_FRESH);
    let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    assert_eq!(conn.connect_event(), ConnectEvent::Connected);
    assert!(ops.iter().all(|op| conn.is_invalidated(op)));
    assert!(
        ops.iter()
            .all(|op| !conn.is_pending(op) && !conn.is_complete(op))
    );
    assert!(conn.session().is_publish_quiescent());
    assert!(drive(conn.poll(), 100).is_none());
    let p = packets(&io.take_written());
    assert_eq!(p.len(), 1, "only the CONNECT: nothing sent again");
}

#[test]
fn clean_session_never_resumes() {
    let mut buf = [0u8; 512];
    let mut session = Session::new(options("dev", true), &mut buf, 128).unwrap();
    let op = {
        let mut conn = drive(session.connect(Script::new(&CONNACK_FRESH)), 100)
            .unwrap()
            .unwrap();
        publish_some(&mut conn, 1)[0]
    };
    // A broker that (wrongly) says session present to a clean-session CONNECT.
    let conn = drive(session.connect(Script::new(&CONNACK_RESUMED)), 100)
        .unwrap()
        .unwrap();
    assert_eq!(conn.connect_event(), ConnectEvent::Connected);
    assert!(conn.is_invalidated(&op));
}

#[test]
fn packet_ids_skip_zero_and_ids_in_flight_and_the_window_is_bounded() {
    let mut buf = [0u8; 2048];
    let mut session = Session::new(options("dev", true), &mut buf, 256).unwrap();
    let mut conn = drive(session.connect(Script::new(&CONNACK_FRESH)), 100)
        .unwrap()
        .unwrap();
    let first = publish_some(&mut conn, 1)[0];
    assert_eq!(first.id, 1);
    conn.session.next_id = u16::MAX;
    let ops = publish_some(&mut conn, 2);
    assert_eq!((ops[0].id, ops[1].id), (u16::MAX, 2));
    publish_some(&mut conn, (MAX_INFLIGHT - 3) as u8);
    assert!(!conn.can_publish(QoS::AtLeastOnce));
    assert!(conn.can_publish(QoS::AtMostOnce));
    let r = drive(conn.publish("up", b"x", QoS::AtLeastOnce), 100).unwrap();
    assert_eq!(r, Err(Error::InflightExhausted));
    let r = drive(conn.subscribe(&[("a", QoS::AtLeastOnce)]), 100).unwrap();
    assert_eq!(r.err(), Some(Error::InflightExhausted));
    // QoS 0 still goes.
    let r = drive(conn.publish("up", b"x", QoS::AtMostOnce), 100).unwrap();
    assert_eq!(r, Ok(None));
    let r = drive(conn.publish("up", b"x", QoS::ExactlyOnce), 100).unwrap();
    assert_eq!(r, Err(Error::InvalidRequest));
    let r = drive(conn.publish("up", &[0; 4096], QoS::AtMostOnce), 100).unwrap();
    assert_eq!(r, Err(Error::BufferTooSmall));
}

#[test]
fn a_full_transmit_buffer_is_not_ready_until_acknowledged() {
    let mut buf = [0u8; 64 + 100];
    let mut session = Session::new(options("dev", true), &mut buf, 64).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    let op = drive(conn.publish("up", &[7; 60], QoS::AtLeastOnce), 100)
        .unwrap()
        .unwrap()
        .unwrap();
    let r = drive(conn.publish("up", &[7; 60], QoS::AtLeastOnce), 100).unwrap();
    assert_eq!(r, Err(Error::NotReady));
    io.push(&[0x40, 0x02, 0x00, 0x01]);
    assert!(matches!(drive(conn.poll(), 100), Some(Ok(None))));
    assert!(conn.is_complete(&op));
    let r = drive(conn.publish("up", &[7; 60], QoS::AtLeastOnce), 100).unwrap();
    assert!(matches!(r, Ok(Some(_))));
}

#[test]
fn inbound_qos0_and_qos1_with_puback_also_for_a_dup() {
    let mut buf = [0u8; 1024];
    let mut session = Session::new(options("dev", true), &mut buf, 256).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    io.take_written();
    io.push(&publish_packet(0x31, "down/a", None, b"zero"));
    io.push(&publish_packet(0x32, "down/b", Some(0x1234), b"one"));
    io.push(&publish_packet(0x3A, "down/b", Some(0x1234), b"one"));
    let m = drive(conn.poll(), 100).unwrap().unwrap().unwrap();
    assert_eq!(
        (m.topic(), m.payload(), m.qos(), m.retain(), m.dup()),
        ("down/a", &b"zero"[..], QoS::AtMostOnce, true, false)
    );
    let m = drive(conn.recv(), 100).unwrap().unwrap();
    assert_eq!(
        (m.topic(), m.payload(), m.qos()),
        ("down/b", &b"one"[..], QoS::AtLeastOnce)
    );
    let m = drive(conn.recv(), 100).unwrap().unwrap();
    assert!(m.dup());
    assert!(drive(conn.poll(), 100).is_some());
    assert_eq!(
        io.take_written(),
        [0x40, 0x02, 0x12, 0x34, 0x40, 0x02, 0x12, 0x34]
    );
}

#[test]
fn malformed_packets_are_typed_errors_and_end_the_connection() {
    let cases: &[&[u8]] = &[
        &[0x32, 0x03, 0x00, 0x01, b'a'],       // QoS 1 without a packet id
        &[0x34, 0x05, 0x00, 0x01, b'a', 0, 1], // QoS 2
        &[0x36, 0x05, 0x00, 0x01, b'a', 0, 1], // QoS 3
        &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], // five length bytes
        &[0x20, 0x02, 0x00, 0x00],             // a second CONNACK
        &[0x90, 0x03, 0x00, 0x01, 0x07],       // SUBACK with a bad code
        &[0x62, 0x02, 0x00, 0x01],             // PUBREL: no QoS 2 here
        &[0x30, 0x03, 0x00, 0x01, 0xff],       // topic not UTF-8
    ];
    for bad in cases {
        let mut buf = [0u8; 512];
        let mut session = Session::new(options("dev", true), &mut buf, 128).unwrap();
        let io = Script::new(&CONNACK_FRESH);
        let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
        io.push(bad);
        let r = drive(conn.poll(), 100).unwrap();
        assert_eq!(r.err(), Some(Error::Protocol), "{bad:x?}");
        assert!(!conn.is_connected());
        let r = drive(conn.poll(), 100).unwrap();
        assert_eq!(r.err(), Some(Error::Disconnected), "{bad:x?}");
    }
    // The end of the stream.
    let mut buf = [0u8; 512];
    let mut session = Session::new(options("dev", true), &mut buf, 128).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    io.push(&[0x30, 0x05]);
    io.closed.set(true);
    assert_eq!(
        drive(conn.poll(), 100).unwrap().err(),
        Some(Error::Disconnected)
    );
}

#[test]
fn an_oversize_inbound_packet_is_skipped_and_counted() {
    let mut buf = [0u8; 512];
    let mut session = Session::new(options("dev", true), &mut buf, 64).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    io.take_written();
    let big = publish_packet(0x32, "big/topic", Some(9), &[0x5a; 300]);
    io.push(&big);
    io.push(&publish_packet(0x30, "ok", None, b"fits"));
    let m = drive(conn.poll(), 10_000).unwrap().unwrap().unwrap();
    assert_eq!((m.topic(), m.payload()), ("ok", &b"fits"[..]));
    assert_eq!(conn.dropped(), 1);
    let d = conn.take_dropped().unwrap();
    assert_eq!(d.topic.as_deref(), Some("big/topic"));
    assert_eq!((d.size, d.capacity), (big.len(), 64));
    assert_eq!(conn.take_dropped(), None);
    // Not acknowledged: the broker may send it again.
    assert_eq!(io.take_written(), []);
    // A packet exactly the size of the receive buffer passes.
    let exact = publish_packet(0x30, "e", None, &[1; 64 - 2 - 3]);
    assert_eq!(exact.len(), 64);
    io.push(&exact);
    let m = drive(conn.poll(), 1000).unwrap().unwrap().unwrap();
    assert_eq!(m.payload().len(), 59);
}

#[test]
fn a_poll_dropped_mid_packet_loses_nothing() {
    let mut buf = [0u8; 1024];
    let mut session = Session::new(options("dev", true), &mut buf, 256).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    io.take_written();
    let packet = publish_packet(0x32, "down/x", Some(77), b"hello, intact payload");
    for cut in [1, 2, 5, packet.len() - 1] {
        io.push(&packet[..cut]);
        // The poll reads what there is and is dropped while it waits for more.
        assert!(drive(conn.poll(), 50).is_none());
        io.push(&packet[cut..]);
        let m = drive(conn.poll(), 100).unwrap().unwrap().unwrap();
        assert_eq!(m.topic(), "down/x");
        assert_eq!(m.payload(), b"hello, intact payload");
        // The next poll writes its PUBACK.
        assert!(matches!(drive(conn.poll(), 100), Some(Ok(None))));
    }
    assert_eq!(io.take_written(), [0x40, 2, 0, 77].repeat(4));
}

#[test]
fn subscribe_suback_unsubscribe_and_a_refusal() {
    let mut buf = [0u8; 1024];
    let mut session = Session::new(options("dev", true), &mut buf, 256).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    io.take_written();
    let op = drive(
        conn.subscribe(&[("a/+", QoS::AtLeastOnce), ("b", QoS::AtMostOnce)]),
        100,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        io.take_written(),
        [0x82, 12, 0, 1, 0, 3, b'a', b'/', b'+', 1, 0, 1, b'b', 0]
    );
    assert!(conn.is_pending(&op));
    io.push(&[0x90, 0x04, 0x00, 0x01, 0x01, 0x00]);
    assert!(matches!(drive(conn.poll(), 100), Some(Ok(None))));
    assert!(conn.is_complete(&op));
    let op = drive(conn.subscribe(&[("c", QoS::AtLeastOnce)]), 100)
        .unwrap()
        .unwrap();
    io.push(&[0x90, 0x03, 0x00, 0x02, 0x80]);
    assert_eq!(
        drive(conn.poll(), 100).unwrap().err(),
        Some(Error::SubscribeRefused)
    );
    assert!(conn.is_complete(&op));
    // Still usable.
    let op = drive(conn.unsubscribe(&["a/+"]), 100).unwrap().unwrap();
    io.push(&[0xB0, 0x02, 0x00, 0x03]);
    assert!(matches!(drive(conn.poll(), 100), Some(Ok(None))));
    assert!(conn.is_complete(&op));
    let r = drive(conn.subscribe(&[]), 100).unwrap();
    assert_eq!(r.err(), Some(Error::InvalidRequest));
    drive(conn.disconnect(), 100).unwrap().unwrap();
    let p = packets(&io.take_written());
    assert_eq!(p.last(), Some(&(0xE0, Vec::new())));
}

#[test]
fn keepalive_ping_answered_then_timed_out() {
    let mut buf = [0u8; 512];
    let mut o = options("dev", true);
    o.keepalive_s = 2;
    let mut session = Session::new(o, &mut buf, 128).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    io.take_written();
    let start = Instant::now();
    // Keep-alive 2 s: PINGREQ after 1 s (the lead is half the interval), PINGRESP within 1 s.
    let r = embassy_futures::block_on(conn.poll());
    assert!(matches!(r, Ok(None)));
    let t = start.elapsed();
    assert!(t >= Duration::from_millis(900), "{t:?}");
    assert_eq!(io.take_written(), [0xC0, 0x00]);
    io.push(&[0xD0, 0x00]);
    assert!(matches!(embassy_futures::block_on(conn.poll()), Ok(None)));
    // The next PINGREQ, unanswered.
    assert!(matches!(embassy_futures::block_on(conn.poll()), Ok(None)));
    assert_eq!(io.take_written(), [0xC0, 0x00]);
    let sent = Instant::now();
    let r = embassy_futures::block_on(conn.poll());
    assert_eq!(r.err(), Some(Error::PingTimeout));
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
    assert_eq!(
        embassy_futures::block_on(conn.poll()).err(),
        Some(Error::Disconnected)
    );
}

#[test]
fn a_qos0_publish_cancelled_mid_write_is_finished_by_the_next_poll() {
    let mut buf = [0u8; 1024];
    let mut session = Session::new(options("dev", true), &mut buf, 256).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    io.take_written();
    // The publish writes the first 5 bytes, waits, and is dropped.
    io.write_budget.set(Some(1));
    assert!(drive(conn.publish("up/x", &[1; 20], QoS::AtMostOnce), 10).is_none());
    assert_eq!(io.written.borrow().len(), 5);
    io.write_budget.set(None);
    assert!(matches!(drive(conn.poll(), 100), Some(Ok(None))));
    let p = packets(&io.take_written());
    assert_eq!(p, [(0x30, [&[0, 4][..], b"up/x", &[1; 20]].concat())]);
}

#[test]
fn a_transmit_buffer_full_of_unacknowledged_messages_still_connects_and_resends() {
    let id = "i".repeat(150);
    let mut buf = [0u8; 64 + 120];
    let mut session = Session::new(options(&id, false), &mut buf, 64).unwrap();
    let op = {
        let mut conn = drive(session.connect(Script::new(&CONNACK_FRESH)), 100)
            .unwrap()
            .unwrap();
        drive(conn.publish("up", &[3; 110], QoS::AtLeastOnce), 100)
            .unwrap()
            .unwrap()
            .unwrap()
    };
    assert_eq!(session.used, 118, "the buffer is nearly full");
    let io = Script::new(&CONNACK_RESUMED);
    let mut conn = drive(session.connect(io.clone()), 1000).unwrap().unwrap();
    assert!(matches!(drive(conn.poll(), 100), Some(Ok(None))));
    let p = packets(&io.take_written());
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].0, 0x10);
    assert_eq!(&p[0].1[12..12 + 150], id.as_bytes());
    assert_eq!(p[1].0, 0x3A, "resent with DUP");
    io.push(&[0x40, 0x02, 0x00, 0x01]);
    assert!(matches!(drive(conn.poll(), 100), Some(Ok(None))));
    assert!(conn.is_complete(&op));
}

#[test]
fn can_publish_tells_whether_a_failed_publish_kept_the_message() {
    let mut buf = [0u8; 64 + 200];
    let mut session = Session::new(options("dev", false), &mut buf, 64).unwrap();
    let io = Script::new(&CONNACK_FRESH);
    let mut conn = drive(session.connect(io.clone()), 100).unwrap().unwrap();
    // Room: the message is taken before the write that fails, and kept.
    assert!(conn.can_publish(QoS::AtLeastOnce));
    io.write_budget.set(Some(0));
    assert!(drive(conn.publish("up", &[1; 50], QoS::AtLeastOnce), 10).is_none());
    assert!(
        !conn.session().is_publish_quiescent(),
        "taken before the write"
    );
    // Not enough room for a second one: NotReady, and nothing written or taken.
    io.write_budget.set(None);
    let before = io.written.borrow().len();
    let r = drive(conn.publish("up", &[2; 150], QoS::AtLeastOnce), 10).unwrap();
    assert_eq!(r, Err(Error::NotReady));
    assert_eq!(conn.session().slots.len(), 1);
    assert_eq!(
        io.written.borrow().len(),
        before,
        "NotReady wrote something"
    );
}
