//! The MQTT 3.1.1 client (`quectel::mqtt::v311`) against amqtt, an independent MQTT 3.1.1
//! broker (Python, from PyPI), on 127.0.0.1 over plain TCP: a 150-byte client id, subscribe,
//! QoS 0 and QoS 1 publishes looped back to the client, unsubscribe, keep-alive pings over a
//! few seconds of silence, and a `clean_session = false` session resumed with the QoS 1 message
//! the broker kept for it while it was away.
//!
//! `cargo xtask test` installs amqtt (pinned) into `<target>/amqtt-venv` and passes its path in
//! `QUECTEL_AMQTT`.

use std::cell::Cell;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration as StdDuration;

use embassy_time::{Duration, Instant, with_timeout};
use embedded_io_adapters::tokio_1::FromTokio;
use quectel::mqtt::v311::{ConnectEvent, Connection, Error, Inbound, Options, QoS, Session};

const INSTALL: &str = "cargo xtask test (it runs: python3 -m venv target/amqtt-venv && \
                       target/amqtt-venv/bin/pip install amqtt==0.12.1)";

/// The amqtt program: `QUECTEL_AMQTT`, else `target/amqtt-venv/bin/amqtt`. Missing is a
/// failure that says how to install it, never a skip.
fn amqtt_program() -> PathBuf {
    let path = match std::env::var_os("QUECTEL_AMQTT") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/amqtt-venv/bin/amqtt"),
    };
    assert!(
        path.is_file(),
        "amqtt (the MQTT 3.1.1 broker of this test) is not installed at {}: run {INSTALL}, \
         or set QUECTEL_AMQTT to an amqtt program",
        path.display()
    );
    path
}

/// An amqtt broker on 127.0.0.1 that needs a user name (so that a `clean_session = false`
/// session is kept: amqtt drops anonymous ones). Killed on drop.
struct Broker {
    child: Child,
    port: u16,
    _dir: PathBuf,
}

impl Broker {
    fn start() -> Self {
        let program = amqtt_program();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("quectel-amqtt-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("broker.yaml");
        std::fs::write(
            &config,
            format!(
                "listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{port}\n\
                 plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    \
                 allow_anonymous: false\n"
            ),
        )
        .unwrap();
        let child = Command::new(&program)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; run {INSTALL}", program.display()));
        let mut broker = Broker {
            child,
            port,
            _dir: dir,
        };
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("amqtt exited: {status}");
            }
            assert!(
                start.elapsed() < StdDuration::from_secs(30),
                "amqtt did not listen on 127.0.0.1:{port} within 30 s"
            );
            std::thread::sleep(StdDuration::from_millis(100));
        }
        broker
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP stream to the broker that counts the PINGREQ packets written through it.
struct Tap {
    inner: FromTokio<tokio::net::TcpStream>,
    pings: Rc<Cell<u32>>,
}

impl embedded_io_async::ErrorType for Tap {
    type Error = std::io::Error;
}

impl embedded_io_async::Read for Tap {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.inner.read(buf).await
    }
}

impl embedded_io_async::Write for Tap {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        // The session writes a control packet in one call.
        if buf == [0xC0, 0x00] {
            self.pings.set(self.pings.get() + 1);
        }
        self.inner.write(buf).await
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().await
    }
}

async fn dial(port: u16, pings: &Rc<Cell<u32>>) -> Tap {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.set_nodelay(true).unwrap();
    Tap {
        inner: FromTokio::new(stream),
        pings: pings.clone(),
    }
}

type Conn<'s, 'a> = Connection<'s, 'a, Tap>;

/// Polls until `done` holds (or fails after `limit`); inbound messages go to `seen`.
async fn poll_until(
    conn: &mut Conn<'_, '_>,
    limit: Duration,
    seen: &mut Vec<(String, Vec<u8>, QoS)>,
    mut done: impl FnMut(&Conn<'_, '_>, &[(String, Vec<u8>, QoS)]) -> bool,
) {
    let end = Instant::now() + limit;
    while !done(conn, seen) {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            left.as_ticks() > 0,
            "not done within {limit:?}; got {seen:?}"
        );
        match with_timeout(left, conn.poll()).await {
            Ok(Ok(Some(m))) => seen.push(owned(&m)),
            Ok(Ok(None)) | Err(_) => {}
            Ok(Err(e)) => panic!("poll: {e:?}"),
        }
    }
}

fn owned(m: &Inbound<'_>) -> (String, Vec<u8>, QoS) {
    (m.topic().to_string(), m.payload().to_vec(), m.qos())
}

fn options(client_id: &str, keepalive_s: u16) -> Options<'_> {
    Options {
        client_id,
        keepalive_s,
        clean_session: false,
        auth: Some(("device", b"any password")),
        will: None,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn v311_client_against_amqtt() {
    let broker = Broker::start();
    let port = broker.port;
    let pings = Rc::new(Cell::new(0));
    // Aliyun-style: far beyond minimq's 64 bytes, and beyond one byte of remaining length.
    let client_id = format!(
        "a1X2bEnP82z.example1|securemode=2,signmethod=hmacsha256,{}|",
        "x".repeat(93)
    );
    assert_eq!(client_id.len(), 150);
    let mut buf = vec![0u8; 4096];
    let mut session = Session::new(options(&client_id, 3), &mut buf, 1024).unwrap();
    let mut seen = Vec::new();

    {
        let mut conn = with_timeout(
            Duration::from_secs(10),
            session.connect(dial(port, &pings).await),
        )
        .await
        .expect("no CONNACK")
        .expect("connect");
        assert_eq!(conn.connect_event(), ConnectEvent::Connected);

        let sub = conn
            .subscribe(&[
                // amqtt delivers with the subscription's QoS, even above the publish's.
                ("zero/#", QoS::AtMostOnce),
                ("one/#", QoS::AtLeastOnce),
                ("keep/#", QoS::AtLeastOnce),
            ])
            .await
            .unwrap();
        poll_until(&mut conn, Duration::from_secs(10), &mut seen, |c, _| {
            c.is_complete(&sub)
        })
        .await;

        // QoS 0 and QoS 1, looped back through the broker.
        assert!(matches!(
            conn.publish("zero/loop", b"qos 0", QoS::AtMostOnce).await,
            Ok(None)
        ));
        let op = conn
            .publish("one/loop", b"qos 1", QoS::AtLeastOnce)
            .await
            .unwrap()
            .expect("an op for QoS 1");
        poll_until(&mut conn, Duration::from_secs(10), &mut seen, |c, s| {
            c.is_complete(&op) && s.len() == 2
        })
        .await;
        seen.sort();
        assert_eq!(
            seen,
            [
                ("one/loop".to_string(), b"qos 1".to_vec(), QoS::AtLeastOnce),
                ("zero/loop".to_string(), b"qos 0".to_vec(), QoS::AtMostOnce),
            ]
        );
        seen.clear();
        assert!(conn.session().is_publish_quiescent());

        // Keep-alive 3 s: amqtt closes a client silent for 3 s. Six seconds of silence must
        // pass on pings alone.
        let quiet = Instant::now();
        let pings_before = pings.get();
        poll_until(&mut conn, Duration::from_secs(8), &mut seen, |_, _| {
            quiet.elapsed() >= Duration::from_secs(6)
        })
        .await;
        assert!(
            pings.get() >= pings_before + 3,
            "{} PINGREQ in 6 s of silence",
            pings.get() - pings_before
        );
        assert!(seen.is_empty(), "{seen:?}");
        let op = conn
            .publish("one/after-pings", b"alive", QoS::AtLeastOnce)
            .await
            .unwrap()
            .unwrap();
        poll_until(&mut conn, Duration::from_secs(10), &mut seen, |c, s| {
            c.is_complete(&op) && !s.is_empty()
        })
        .await;
        assert_eq!(seen[0].1, b"alive");
        seen.clear();

        // Unsubscribed: nothing comes back.
        let unsub = conn.unsubscribe(&["zero/#", "one/#"]).await.unwrap();
        poll_until(&mut conn, Duration::from_secs(10), &mut seen, |c, _| {
            c.is_complete(&unsub)
        })
        .await;
        let op = conn
            .publish("one/gone", b"nobody", QoS::AtLeastOnce)
            .await
            .unwrap()
            .unwrap();
        let t = Instant::now();
        poll_until(&mut conn, Duration::from_secs(10), &mut seen, |c, _| {
            c.is_complete(&op) && t.elapsed() >= Duration::from_secs(1)
        })
        .await;
        assert!(seen.is_empty(), "a message after unsubscribe: {seen:?}");

        conn.disconnect().await.unwrap();
    }

    // While the device is away, another client publishes on a topic its session subscribed to:
    // the broker keeps the QoS 1 message for the session. (amqtt keeps it only once it has
    // processed the DISCONNECT: give it a moment.)
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    {
        let mut other_buf = vec![0u8; 2048];
        let mut other = Session::new(
            Options {
                client_id: "other-client",
                keepalive_s: 30,
                clean_session: true,
                auth: Some(("other", b"x")),
                will: None,
            },
            &mut other_buf,
            512,
        )
        .unwrap();
        let other_pings = Rc::new(Cell::new(0));
        let mut conn = with_timeout(
            Duration::from_secs(10),
            other.connect(dial(port, &other_pings).await),
        )
        .await
        .unwrap()
        .unwrap();
        let op = conn
            .publish("keep/while-away", b"kept for you", QoS::AtLeastOnce)
            .await
            .unwrap()
            .unwrap();
        let mut ignored = Vec::new();
        poll_until(&mut conn, Duration::from_secs(10), &mut ignored, |c, _| {
            c.is_complete(&op)
        })
        .await;
        conn.disconnect().await.unwrap();
    }

    // The device comes back: the session is resumed (no SUBSCRIBE needed) and the kept
    // message arrives.
    let mut conn = with_timeout(
        Duration::from_secs(10),
        session.connect(dial(port, &pings).await),
    )
    .await
    .expect("no CONNACK")
    .expect("reconnect");
    assert_eq!(conn.connect_event(), ConnectEvent::Reconnected);
    poll_until(&mut conn, Duration::from_secs(10), &mut seen, |_, s| {
        !s.is_empty()
    })
    .await;
    assert_eq!(
        seen[0],
        (
            "keep/while-away".to_string(),
            b"kept for you".to_vec(),
            QoS::AtLeastOnce
        )
    );
    // QoS 2 is refused before anything is sent; the connection stays usable.
    assert!(matches!(
        conn.publish("keep/x", b"", QoS::ExactlyOnce).await,
        Err(Error::InvalidRequest)
    ));
    conn.disconnect().await.unwrap();
    drop(broker);
}
