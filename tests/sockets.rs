//! Sockets over the behavioural mock modem, whose sockets reach real TCP and TLS peers on
//! 127.0.0.1.

mod support;

use std::time::Duration as StdDuration;

use embassy_futures::join::join;
use embassy_time::Duration;
use quectel::Error;
use quectel::asynch::{Apn, Config, Remote, Resources, TlsConfig};
use quectel_mock::peers::{TcpEchoServer, TestPki, TlsEchoServer};
use quectel_mock::{MockModem, Model as MockModel};
use support::{bring_up, with_modem_in};

/// Pseudo-random bytes (xorshift), with the sequences a text parser would trip over planted
/// throughout.
pub fn nasty_payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect();
    let plants: [&[u8]; 5] = [
        b"\r\nOK\r\n",
        b"+QIURC: \"recv\",0\r\n",
        b"> ",
        b"\r\nERROR\r\n",
        b"\r\n+QIRD: 5\r\n",
    ];
    let mut at = 17usize;
    let mut k = 0;
    while at + 32 < len {
        let p = plants[k % plants.len()];
        v[at..at + p.len()].copy_from_slice(p);
        at += 997 + k * 13 % 300;
        k += 1;
    }
    // Every byte value appears.
    if len >= 256 {
        for b in 0..=255u8 {
            v[(usize::from(b) * 131) % len] = b;
        }
    }
    v
}

fn fast_config() -> Config {
    Config {
        startup_timeout: embassy_time::Duration::from_secs(10),
        command_gap: embassy_time::Duration::from_millis(1),
        ..Config::default()
    }
}

fn mock() -> MockModem {
    MockModem::new(MockModel::Bg96).search_time(StdDuration::from_millis(20))
}

/// A blocking modem on the mock, initialised, with data call 1 up.
fn blocking_up<const R: usize>(mock: MockModem) -> quectel::blocking::Modem<'static> {
    let (rx, tx, _h) = mock.spawn();
    let res: &'static mut Resources<2048, 2, R> = Box::leak(Box::new(Resources::new()));
    let mut m = quectel::blocking::new(
        res,
        Box::leak(Box::new(quectel::blocking::Halves::new(rx, tx))),
        fast_config(),
    );
    m.init().unwrap();
    m.data_call().configure(1, &Apn::new("internet")).unwrap();
    m.network()
        .wait_network_ready(1, Duration::from_secs(10))
        .unwrap();
    m
}

/// Writes `data` and reads the echo back concurrently; returns what came back.
async fn echo_through(sock: &mut quectel::asynch::Socket<'_>, data: &[u8]) -> Vec<u8> {
    use embedded_io_async::{Read, Write};
    let (mut rx, mut tx) = sock.split();
    let writer = async {
        tx.write_all(data).await.unwrap();
        tx.flush().await.unwrap();
    };
    let reader = async {
        let mut back = Vec::with_capacity(data.len());
        let mut buf = [0u8; 1500];
        while back.len() < data.len() {
            match rx.read(&mut buf).await {
                Ok(0) => panic!("unexpected end of stream after {} bytes", back.len()),
                Ok(n) => back.extend_from_slice(&buf[..n]),
                Err(e) => panic!("read failed after {} bytes: {e:?}", back.len()),
            }
        }
        back
    };
    join(reader, writer).await.0
}

#[test]
fn tcp_round_trips_one_mib_of_binary_async() {
    let (addr, echo) = TcpEchoServer::start();
    let res: &'static mut Resources<2048, 2, 8192> = Box::leak(Box::new(Resources::new()));
    let data = nasty_payload(1 << 20, 0xC0FFEE);
    let back = with_modem_in(res, fast_config(), mock(), async |m, _| {
        bring_up(m).await;
        let mut sock = m
            .connect(
                1,
                Remote::Tcp {
                    host: "127.0.0.1",
                    port: addr.port(),
                },
            )
            .await
            .unwrap();
        let back = echo_through(&mut sock, &data).await;
        sock.close().await.unwrap();
        back
    });
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed stream differs");
    assert_eq!(echo.bytes_echoed(), data.len() as u64);
}

#[test]
fn tcp_round_trips_one_mib_of_binary_blocking() {
    use embedded_io::{Read, Write};
    let (addr, _echo) = TcpEchoServer::start();
    let data = nasty_payload(1 << 20, 0xBADC0DE);
    let mut m = blocking_up::<8192>(mock());
    let mut sock = m
        .connect(
            1,
            Remote::Tcp {
                host: "127.0.0.1",
                port: addr.port(),
            },
        )
        .unwrap();
    let mut back = Vec::with_capacity(data.len());
    let mut buf = [0u8; 4096];
    for chunk in data.chunks(4096) {
        sock.write_all(chunk).unwrap();
        sock.flush().unwrap();
        let want = back.len() + chunk.len();
        while back.len() < want {
            let n = sock.read(&mut buf).unwrap();
            assert!(n > 0, "unexpected end of stream");
            back.extend_from_slice(&buf[..n]);
        }
    }
    sock.close().unwrap();
    assert!(back == data, "echoed stream differs");
}

#[test]
fn twelve_sockets_with_interleaved_traffic() {
    let (addr, _echo) = TcpEchoServer::start();
    let res: &'static mut Resources<2048, 12, 2048> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, fast_config(), mock(), async |m, _| {
        bring_up(m).await;
        let mut socks = Vec::new();
        for _ in 0..12 {
            socks.push(
                m.connect(
                    1,
                    Remote::Tcp {
                        host: "127.0.0.1",
                        port: addr.port(),
                    },
                )
                .await
                .unwrap(),
            );
        }
        assert_eq!(
            m.connect(
                1,
                Remote::Tcp {
                    host: "127.0.0.1",
                    port: addr.port()
                }
            )
            .await
            .err(),
            Some(Error::NoSocket)
        );
        let streams: Vec<Vec<u8>> = (0..12).map(|i| nasty_payload(6000, 77 + i)).collect();
        let mut received: Vec<Vec<u8>> = vec![Vec::new(); 12];
        // Rounds: every socket sends a slice of its stream, then every socket reads back.
        for round in 0..6 {
            for (i, s) in socks.iter_mut().enumerate() {
                let part = &streams[i][round * 1000..(round + 1) * 1000];
                embedded_io_async::Write::write_all(s, part).await.unwrap();
            }
            for (i, s) in socks.iter_mut().enumerate() {
                let want = (round + 1) * 1000;
                let mut buf = [0u8; 700];
                while received[i].len() < want {
                    let n = embassy_time::with_timeout(Duration::from_secs(10), s.read(&mut buf))
                        .await
                        .expect("echo did not come back")
                        .unwrap();
                    received[i].extend_from_slice(&buf[..n]);
                }
            }
        }
        for (i, s) in socks.into_iter().enumerate() {
            assert!(received[i] == streams[i], "stream {i} corrupted");
            s.close().await.unwrap();
        }
    });
}

fn tls_mock() -> MockModem {
    mock()
}

/// Bad PEM is refused with a typed error before anything reaches the modem's file system:
/// a truncated CA (which the modem would take, and fail later with `Tls(566)` at connect), a
/// key where the CA belongs, a CA where the client key belongs.
#[test]
fn modem_tls_refuses_bad_pem_before_uploading() {
    use quectel::pem::{PemError, PemKind};
    let pki = TestPki::generate();
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, fast_config(), tls_mock(), async |m, h| {
        bring_up(m).await;
        // The CA with one base64 line lost in transit (BEGIN and END lines intact).
        let mut lines: Vec<&str> = pki.ca_pem.lines().collect();
        lines.remove(3);
        let truncated_ca = lines.join("\n");
        let cert = pki.client_cert_pem.as_bytes();
        let key = pki.client_key_pem.as_bytes();
        let cases = [
            (TlsConfig::new(truncated_ca.as_bytes()), PemError::Malformed),
            (TlsConfig::new(b"not a certificate"), PemError::Malformed),
            (
                TlsConfig::new(key).with_client_identity(cert, key),
                PemError::WrongKind {
                    expected: PemKind::Certificate,
                },
            ),
            (
                TlsConfig::new(pki.ca_pem.as_bytes()).with_client_identity(cert, cert),
                PemError::WrongKind {
                    expected: PemKind::PrivateKey,
                },
            ),
        ];
        for (config, want) in cases {
            assert_eq!(config.validate(), Err(Error::Pem(want)));
            assert_eq!(m.configure_tls(1, &config).await, Err(Error::Pem(want)));
        }
        assert_eq!(
            h.files(),
            Vec::<(String, usize)>::new(),
            "something was uploaded"
        );
        let uploads: Vec<String> = h
            .commands()
            .into_iter()
            .filter(|c| c.contains("QFUPL") || c.contains("QSSLCFG"))
            .collect();
        assert!(uploads.is_empty(), "{uploads:?}");

        // The same inputs, intact, are uploaded.
        let good = TlsConfig::new(pki.ca_pem.as_bytes()).with_client_identity(cert, key);
        m.configure_tls(1, &good).await.unwrap();
        assert_eq!(tls_file(h, "qca1_").as_deref(), Some(pki.ca_pem.as_bytes()));
        assert_eq!(tls_file(h, "qkey1_").as_deref(), Some(key));
    });
}

#[test]
fn modem_tls_with_client_certificate() {
    let pki = TestPki::generate();
    let (addr, server) = TlsEchoServer::start(&pki, true);
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, fast_config(), tls_mock(), async |m, h| {
        bring_up(m).await;
        let tls = TlsConfig::new(pki.ca_pem.as_bytes()).with_client_identity(
            pki.client_cert_pem.as_bytes(),
            pki.client_key_pem.as_bytes(),
        );
        m.configure_tls(1, &tls).await.unwrap();
        // The files reached the modem intact.
        let ca = tls_file(h, "qca1_").expect("CA uploaded");
        assert_eq!(ca, pki.ca_pem.as_bytes());
        let mut sock = m
            .connect(
                1,
                Remote::Tls {
                    ssl_ctx: 1,
                    host: "localhost",
                    port: addr.port(),
                },
            )
            .await
            .unwrap();
        let data = nasty_payload(64 * 1024, 5);
        let back = echo_through(&mut sock, &data).await;
        assert!(back == data);
        sock.close().await.unwrap();

        // A CA that did not sign the server: a typed TLS error.
        let wrong = TlsConfig::new(pki.other_ca_pem.as_bytes()).with_client_identity(
            pki.client_cert_pem.as_bytes(),
            pki.client_key_pem.as_bytes(),
        );
        m.configure_tls(2, &wrong).await.unwrap();
        let err = m
            .connect(
                1,
                Remote::Tls {
                    ssl_ctx: 2,
                    host: "localhost",
                    port: addr.port(),
                },
            )
            .await
            .err();
        assert!(matches!(err, Some(Error::Tls(_))), "{err:?}");

        // No client certificate: the server refuses.
        let anonymous = TlsConfig::new(pki.ca_pem.as_bytes());
        m.configure_tls(3, &anonymous).await.unwrap();
        match m
            .connect(
                1,
                Remote::Tls {
                    ssl_ctx: 3,
                    host: "localhost",
                    port: addr.port(),
                },
            )
            .await
        {
            Err(Error::Tls(_)) => {}
            Ok(mut s) => {
                // Refused right after the handshake: the first exchange fails.
                let _ = s.write(b"ping").await;
                let mut buf = [0u8; 8];
                let r = embassy_time::with_timeout(Duration::from_secs(5), s.read(&mut buf)).await;
                assert!(
                    matches!(r, Ok(Ok(0)) | Ok(Err(_))),
                    "a connection without client certificate was served: {r:?}"
                );
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
    });
    assert!(server.handshake_errors() >= 1);
}

#[test]
fn peer_close_delivers_the_rest_then_end_of_stream() {
    // A server that sends a greeting and closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut c, _) = listener.accept().unwrap();
        c.write_all(&nasty_payload(5000, 9)).unwrap();
    });
    let res: &'static mut Resources<2048, 2, 2048> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, fast_config(), mock(), async |m, _| {
        bring_up(m).await;
        let mut s = m
            .connect(
                1,
                Remote::Tcp {
                    host: "127.0.0.1",
                    port,
                },
            )
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let n = embassy_time::with_timeout(Duration::from_secs(10), s.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            got == nasty_payload(5000, 9),
            "data before the close was lost"
        );
        assert_eq!(s.write(b"x").await, Err(Error::ConnectionClosed));
        s.close().await.unwrap();
    });
    server.join().unwrap();
}

#[test]
fn pdpdeact_fails_every_socket_on_the_context() {
    let (addr, _echo) = TcpEchoServer::start();
    let res: &'static mut Resources<2048, 2, 2048> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, fast_config(), mock(), async |m, h| {
        bring_up(m).await;
        let mut s = open_tcp(m, addr.port()).await;
        h.inject_urc("+QIURC: \"pdpdeact\",1");
        let mut buf = [0u8; 8];
        let r = embassy_time::with_timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert_eq!(r, Ok(Err(Error::ContextDeactivated)));
        assert_eq!(s.write(b"x").await, Err(Error::ContextDeactivated));
        drop(s);
        // The data call comes back and new sockets work.
        m.data_call().activate(1).await.unwrap();
        let mut s = open_tcp(m, addr.port()).await;
        let back = echo_through(&mut s, b"again").await;
        assert_eq!(back, b"again");
    });
}

#[test]
fn send_fail_is_retried_then_reported() {
    let (addr, _echo) = TcpEchoServer::start();
    let res: &'static mut Resources<2048, 2, 2048> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, fast_config(), mock(), async |m, h| {
        bring_up(m).await;
        let mut s = open_tcp(m, addr.port()).await;
        // Two SEND FAILs: retried, nothing lost or duplicated.
        h.fail_next_sends(2);
        let back = echo_through(&mut s, b"survives two SEND FAILs").await;
        assert_eq!(back, b"survives two SEND FAILs");
        // A modem that keeps refusing: the writer learns it.
        h.fail_next_sends(100);
        embedded_io_async::Write::write_all(&mut s, b"never accepted")
            .await
            .unwrap();
        let r = embassy_time::with_timeout(Duration::from_secs(10), s.flush()).await;
        assert_eq!(r, Ok(Err(Error::SendFail)));
    });
}

#[test]
fn module_error_codes_are_typed() {
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let res: &'static mut Resources<2048, 2, 2048> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, fast_config(), mock(), async |m, h| {
        bring_up(m).await;
        let refused = m
            .connect(
                1,
                Remote::Tcp {
                    host: "127.0.0.1",
                    port: closed_port,
                },
            )
            .await
            .err();
        assert_eq!(refused, Some(Error::Ip(566)));
        let dns = m
            .connect(
                1,
                Remote::Tcp {
                    host: "no-such-host.invalid",
                    port: 80,
                },
            )
            .await
            .err();
        assert_eq!(dns, Some(Error::Ip(565)));
        h.set_open_fail(Some(563));
        let in_use = m
            .connect(
                1,
                Remote::Tcp {
                    host: "127.0.0.1",
                    port: closed_port,
                },
            )
            .await
            .err();
        assert_eq!(in_use, Some(Error::Ip(563)));
        h.set_open_fail(None);
        // Every slot was given back.
        let (addr, _echo) = TcpEchoServer::start();
        let a = open_tcp(m, addr.port()).await;
        let b = open_tcp(m, addr.port()).await;
        a.close().await.unwrap();
        b.close().await.unwrap();
    });
}

#[test]
fn a_lost_recv_urc_is_caught_by_the_periodic_check() {
    let (addr, _echo) = TcpEchoServer::start();
    let res: &'static mut Resources<2048, 2, 2048> = Box::leak(Box::new(Resources::new()));
    let config = Config {
        recv_poll: Some(Duration::from_millis(300)),
        ..fast_config()
    };
    with_modem_in(res, config, mock(), async |m, h| {
        bring_up(m).await;
        let mut s = open_tcp(m, addr.port()).await;
        h.drop_next_recv_urcs(1);
        s.write(b"hello?").await.unwrap();
        s.flush().await.unwrap();
        let mut buf = [0u8; 16];
        let n = embassy_time::with_timeout(Duration::from_secs(3), s.read(&mut buf))
            .await
            .expect("data announced by a lost URC was never read")
            .unwrap();
        assert_eq!(&buf[..n], b"hello?");
    });
}

/// A TCP socket on context 1 to `port` on 127.0.0.1.
async fn open_tcp<'a>(m: &quectel::asynch::Modem<'a>, port: u16) -> quectel::asynch::Socket<'a> {
    m.connect(
        1,
        Remote::Tcp {
            host: "127.0.0.1",
            port,
        },
    )
    .await
    .unwrap()
}

/// The driver's defaults (no periodic read check), with the tests' short command gap.
fn default_poll_config() -> Config {
    let c = fast_config();
    assert_eq!(
        c.recv_poll, None,
        "the default must not poll; this test relies on it"
    );
    c
}

fn count(h: &quectel_mock::ModemHandle, prefix: &str) -> usize {
    h.commands()
        .iter()
        .filter(|c| c.starts_with(prefix))
        .count()
}

#[test]
fn a_short_read_drains_the_socket_without_a_confirming_read() {
    let (addr, _echo) = TcpEchoServer::start();
    let res: &'static mut Resources<2048, 2, 2048> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, default_poll_config(), mock(), async |m, h| {
        bring_up(m).await;
        let mut s = open_tcp(m, addr.port()).await;
        for (i, msg) in [&b"one"[..], b"second message", b"3"].iter().enumerate() {
            let reads_before = count(h, "AT+QIRD");
            s.write(msg).await.unwrap();
            s.flush().await.unwrap();
            let mut buf = [0u8; 32];
            let n = embassy_time::with_timeout(Duration::from_secs(3), s.read(&mut buf))
                .await
                .expect("echo not read")
                .unwrap();
            assert_eq!(&buf[..n], *msg);
            // Let a confirming read, if the driver made one, reach the modem.
            embassy_time::Timer::after_millis(200).await;
            assert_eq!(
                count(h, "AT+QIRD") - reads_before,
                1,
                "message {i}: one AT+QIRD per announced message: {:?}",
                h.commands()
            );
        }
        s.close().await.unwrap();
    });
}

#[test]
fn no_at_traffic_while_nothing_happens() {
    let (addr, _echo) = TcpEchoServer::start();
    let res: &'static mut Resources<2048, 2, 2048> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, default_poll_config(), mock(), async |m, h| {
        bring_up(m).await;
        let _s = open_tcp(m, addr.port()).await;
        let before = h.commands().len();
        // Longer than the 5 s the driver used to poll every open socket at.
        embassy_time::Timer::after_secs(6).await;
        let after = h.commands();
        assert_eq!(
            after.len(),
            before,
            "commands sent while idle: {:?}",
            &after[before..]
        );
    });
}

#[test]
fn a_recv_urc_garbled_by_line_noise_is_caught_without_polling() {
    let (addr, _echo) = TcpEchoServer::start();
    let res: &'static mut Resources<2048, 2, 2048> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, default_poll_config(), mock(), async |m, h| {
        bring_up(m).await;
        let mut s = open_tcp(m, addr.port()).await;
        // A UART overrun: the `recv` URC arrives as a corrupted line.
        h.drop_next_recv_urcs(1);
        s.write(b"hello?").await.unwrap();
        s.flush().await.unwrap();
        // The echo is back in the modem's buffer (unannounced) well within this.
        embassy_time::Timer::after_millis(500).await;
        h.inject_raw(b"\r\n+QIU\xfeC: \"re\x8dv\",0\r\n");
        let mut buf = [0u8; 16];
        let n = embassy_time::with_timeout(Duration::from_secs(3), s.read(&mut buf))
            .await
            .expect("data announced by a garbled URC was never read")
            .unwrap();
        assert_eq!(&buf[..n], b"hello?");
    });
}

#[test]
fn dropping_read_and_write_futures_loses_and_duplicates_nothing() {
    let (addr, _echo) = TcpEchoServer::start();
    let res: &'static mut Resources<2048, 2, 2048> = Box::leak(Box::new(Resources::new()));
    let data = nasty_payload(200_000, 31337);
    let (sent, back) = with_modem_in(
        res,
        fast_config(),
        mock().chunk(7, StdDuration::from_micros(50)),
        async |m, _| {
            bring_up(m).await;
            let mut s = m
                .connect(
                    1,
                    Remote::Tcp {
                        host: "127.0.0.1",
                        port: addr.port(),
                    },
                )
                .await
                .unwrap();
            let mut x: u32 = 0xDEAD_BEEF;
            let mut rnd = move || {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x
            };
            let mut sent = 0usize;
            let mut back = Vec::new();
            let mut buf = [0u8; 777];
            let mut iterations = 0;
            while sent < data.len() && iterations < 5_000 {
                iterations += 1;
                // Give up on each operation after a random 0–3 ms.
                let give_up = Duration::from_micros(u64::from(rnd() % 3_000));
                let end = (sent + 1 + (rnd() % 3000) as usize).min(data.len());
                if let Ok(Ok(n)) =
                    embassy_time::with_timeout(give_up, s.write(&data[sent..end])).await
                {
                    sent += n;
                }
                let give_up = Duration::from_micros(u64::from(rnd() % 3_000));
                if let Ok(Ok(n)) = embassy_time::with_timeout(give_up, s.read(&mut buf)).await {
                    back.extend_from_slice(&buf[..n]);
                }
                if rnd() % 5 == 0 {
                    // An unrelated command abandoned half way, too.
                    let _ = embassy_time::with_timeout(give_up, m.network().signal()).await;
                }
            }
            s.flush().await.unwrap();
            while back.len() < sent {
                let n = embassy_time::with_timeout(Duration::from_secs(10), s.read(&mut buf))
                    .await
                    .expect("echo stalled")
                    .unwrap();
                back.extend_from_slice(&buf[..n]);
            }
            // Nothing more than what was accepted comes back.
            let extra =
                embassy_time::with_timeout(Duration::from_millis(500), s.read(&mut buf)).await;
            assert!(
                extra.is_err(),
                "more bytes came back than were written: {extra:?}"
            );
            s.close().await.unwrap();
            (sent, back)
        },
    );
    assert!(sent > 10_000, "too few bytes got through ({sent})");
    assert!(back == data[..sent], "echo differs from what was accepted");
}

#[test]
fn sends_interrupted_at_random_points_resume_exactly() {
    // In the blocking facade the runner's work only runs during calls, so ending calls at
    // random moments abandons sends and reads half way (after the command, after the prompt,
    // in the middle of the payload); the next call must finish them, not repeat or lose them.
    use embedded_io::{Read, Write};
    let (addr, _echo) = TcpEchoServer::start();
    let data = nasty_payload(60_000, 4242);
    let mut m = blocking_up::<4096>(mock().chunk(5, StdDuration::from_micros(20)));
    let mut sock = m
        .connect(
            1,
            Remote::Tcp {
                host: "127.0.0.1",
                port: addr.port(),
            },
        )
        .unwrap();
    let mut x: u32 = 99;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut back = Vec::new();
    let mut buf = [0u8; 1024];
    for chunk in data.chunks(3000) {
        sock.write_all(chunk).unwrap();
        // Slices of driver time far shorter than one send.
        for _ in 0..20 {
            sock.idle(Duration::from_micros(u64::from(rnd() % 400)));
        }
        while back.len() < data.len().min(back.len() + 1) && back.len() + 3000 <= data.len() {
            // Read what is there without waiting for all of it.
            let n = sock.read(&mut buf).unwrap();
            back.extend_from_slice(&buf[..n]);
            if rnd() % 2 == 0 {
                break;
            }
        }
    }
    sock.flush().unwrap();
    while back.len() < data.len() {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0);
        back.extend_from_slice(&buf[..n]);
    }
    assert!(back == data, "stream differs after interrupted sends");
    sock.close().unwrap();
}

#[test]
fn small_buffers_cap_reads_instead_of_overflowing() {
    let (addr, _echo) = TcpEchoServer::start();
    let res: &'static mut Resources<1024, 1, 1024> = Box::leak(Box::new(Resources::new()));
    let data = nasty_payload(20_000, 7);
    let back = with_modem_in(res, fast_config(), mock(), async |m, _| {
        bring_up(m).await;
        let mut s = open_tcp(m, addr.port()).await;
        let (mut rx, mut tx) = s.split();
        let writer = async {
            embedded_io_async::Write::write_all(&mut tx, &data)
                .await
                .unwrap();
            embedded_io_async::Write::flush(&mut tx).await.unwrap();
        };
        let reader = async {
            let mut back = Vec::new();
            let mut buf = [0u8; 512];
            while back.len() < data.len() {
                let n = embedded_io_async::Read::read(&mut rx, &mut buf)
                    .await
                    .unwrap();
                back.extend_from_slice(&buf[..n]);
            }
            back
        };
        join(reader, writer).await.0
    });
    assert!(back == data);
}

#[test]
fn delete_tls_files_removes_the_uploaded_identity() {
    let pki = TestPki::generate();
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, fast_config(), tls_mock(), async |m, h| {
        bring_up(m).await;
        let tls = TlsConfig::new(pki.ca_pem.as_bytes()).with_client_identity(
            pki.client_cert_pem.as_bytes(),
            pki.client_key_pem.as_bytes(),
        );
        m.configure_tls(2, &tls).await.unwrap();
        assert_eq!(h.files().len(), 3, "{:?}", h.files());
        // Another identity replaces the files (the old ones do not pile up in flash); the
        // same one again writes nothing.
        let other = TlsConfig::new(pki.other_ca_pem.as_bytes()).with_client_identity(
            pki.other_client_cert_pem.as_bytes(),
            pki.other_client_key_pem.as_bytes(),
        );
        m.configure_tls(2, &other).await.unwrap();
        assert_eq!(h.files().len(), 3, "{:?}", h.files());
        assert_eq!(
            tls_file(h, "qca2_").as_deref(),
            Some(pki.other_ca_pem.as_bytes())
        );
        let before = h.commands().len();
        m.configure_tls(2, &other).await.unwrap();
        let again = h.commands()[before..].to_vec();
        assert!(
            !again
                .iter()
                .any(|c| c.starts_with("AT+QFUPL") || c.starts_with("AT+QFDEL")),
            "{again:?}"
        );
        // A file of the naming before digests is the context's too.
        h.put_file("qca2.pem", b"old");
        m.delete_tls_files(2).await.unwrap();
        assert_eq!(h.files(), Vec::<(String, usize)>::new());
        // Nothing left to delete is not an error; a context the modems do not have is.
        m.delete_tls_files(2).await.unwrap();
        assert_eq!(m.delete_tls_files(6).await, Err(Error::InvalidArgument));
    });
}

/// The content of the file `configure_tls` stored under a name starting with `stem` (its
/// names carry a digest of the content: `qca1_<crc32>.pem`).
fn tls_file(h: &quectel_mock::ModemHandle, stem: &str) -> Option<Vec<u8>> {
    let names: Vec<String> = h
        .files()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with(stem))
        .collect();
    assert!(names.len() <= 1, "{names:?}");
    h.file(names.first()?)
}

/// `Config::push_receive`: sockets opened in direct-push mode (access mode 1).
fn push_config() -> Config {
    Config {
        push_receive: true,
        ..fast_config()
    }
}

#[test]
fn push_mode_round_trips_binary_over_tcp_and_tls_without_a_single_read() {
    let (tcp_addr, _echo) = TcpEchoServer::start();
    let pki = TestPki::generate();
    let (tls_addr, _server) = TlsEchoServer::start(&pki, false);
    // The rings hold the whole echo: nothing can overflow however the tasks interleave.
    let res: &'static mut Resources<2048, 2, 16384> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, push_config(), tls_mock(), async |m, h| {
        bring_up(m).await;
        let data = nasty_payload(16 * 1024, 11);
        let mut tcp = open_tcp(m, tcp_addr.port()).await;
        assert!(
            h.commands()
                .iter()
                .any(|c| c.starts_with("AT+QIOPEN=") && c.ends_with(",0,1")),
            "TCP socket not opened in push mode: {:?}",
            h.commands()
        );
        let back = echo_through(&mut tcp, &data).await;
        assert!(back == data, "TCP echo differs");
        tcp.close().await.unwrap();

        m.configure_tls(1, &TlsConfig::new(pki.ca_pem.as_bytes()))
            .await
            .unwrap();
        let mut tls = m
            .connect(
                1,
                Remote::Tls {
                    ssl_ctx: 1,
                    host: "localhost",
                    port: tls_addr.port(),
                },
            )
            .await
            .unwrap();
        let back = echo_through(&mut tls, &data).await;
        assert!(back == data, "TLS echo differs");
        tls.close().await.unwrap();
        // Every byte came inside the URCs: no read command at all.
        assert_eq!(count(h, "AT+QIRD"), 0, "{:?}", h.commands());
        assert_eq!(count(h, "AT+QSSLRECV"), 0, "{:?}", h.commands());
    });
}

#[test]
fn a_push_larger_than_the_ring_fails_the_socket_with_overflow() {
    let (addr, _echo) = TcpEchoServer::start();
    let res: &'static mut Resources<2048, 1, 1024> = Box::leak(Box::new(Resources::new()));
    with_modem_in(res, push_config(), mock(), async |m, _| {
        bring_up(m).await;
        let mut s = open_tcp(m, addr.port()).await;
        let data = nasty_payload(3000, 3);
        // Nobody reads while the echo is pushed: the 1 KiB ring cannot take 3000 bytes (the
        // writer may already see the failed socket).
        let sent = async {
            embedded_io_async::Write::write_all(&mut s, &data).await?;
            embedded_io_async::Write::flush(&mut s).await
        }
        .await;
        assert!(matches!(sent, Ok(()) | Err(Error::Overflow)), "{sent:?}");
        embassy_time::Timer::after_millis(500).await;
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        let err = loop {
            match embassy_time::with_timeout(Duration::from_secs(3), s.read(&mut buf))
                .await
                .expect("read hung instead of reporting the overflow")
            {
                Ok(0) => panic!("end of stream instead of an overflow"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(err, Error::Overflow);
        // What was handed out is the start of the stream, with no gap.
        assert!(got.len() <= 1024 && data.starts_with(&got), "{}", got.len());
    });
}
