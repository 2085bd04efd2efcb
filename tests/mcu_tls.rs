//! MCU-side TLS (feature `mcu-tls`): embedded-tls runs in the test (the "MCU"), the mock modem
//! only carries a plain TCP socket (`Remote::Tcp`) to a rustls echo server on 127.0.0.1.

use std::time::{Duration as StdDuration, Instant as StdInstant};

use embassy_futures::select::{Either, select};
use embassy_time::{Duration, with_timeout};
use quectel::asynch::{self, Apn, Config, Modem, Remote, Resources, Socket};
use quectel::tls::{McuTls, McuTlsConfig, TlsBuffers, TlsError, TlsFailure, TlsStream, pem_to_der};
use quectel_mock::peers::{EchoHandle, TestPki, TlsEchoServer};
use quectel_mock::{HostRx, HostTx, MockModem, Model as MockModel, ModemHandle};
use rand_core::{OsRng, RngCore};

type TestModem = Modem<'static>;
type Tls<'b> = TlsStream<'b, Socket<'static>>;

// --- harness (a few lines after tests/support, kept here so this file stands alone) ---------

fn config() -> Config {
    Config {
        startup_timeout: Duration::from_secs(10),
        command_gap: Duration::from_millis(1),
        ..Config::default()
    }
}

fn mock() -> MockModem {
    MockModem::new(MockModel::Bg96).search_time(StdDuration::from_millis(20))
}

/// Runs `body` against `mock` on a current-thread runtime, the runner alongside.
fn with_modem<T>(mock: MockModem, body: impl AsyncFnOnce(&TestModem, &ModemHandle) -> T) -> T {
    let (rx, tx, handle): (HostRx, HostTx, ModemHandle) = mock.spawn();
    let res: &'static mut Resources<2048, 2, 8192> = Box::leak(Box::new(Resources::new()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (runner, modem) = asynch::new(res, rx, tx, config());
        let out = tokio::time::timeout(
            StdDuration::from_secs(120),
            select(runner.run(), body(&modem, &handle)),
        )
        .await
        .expect("test body took more than 120 s");
        match out {
            Either::First(never) => never,
            Either::Second(t) => t,
        }
    })
}

async fn bring_up(m: &TestModem) {
    m.init().await.unwrap();
    m.data_call()
        .configure(1, &Apn::new("internet"))
        .await
        .unwrap();
    m.network()
        .wait_network_ready(1, Duration::from_secs(10))
        .await
        .unwrap();
}

/// Plain TCP through the modem to the TLS server, then the TLS handshake on our side.
async fn open<'b>(
    m: &'b TestModem,
    echo: &EchoHandle,
    buffers: &'b mut TlsBuffers,
    config: &McuTlsConfig<'_>,
) -> Result<Tls<'b>, TlsError> {
    let sock = m
        .connect(
            1,
            Remote::Tcp {
                host: "127.0.0.1",
                port: echo.addr().port(),
            },
        )
        .await
        .expect("plain TCP connect");
    McuTls::connect(sock, buffers, config, OsRng).await
}

fn der(pem: &str) -> Vec<u8> {
    let mut out = vec![0u8; pem.len()];
    let n = pem_to_der(pem.as_bytes(), &mut out).unwrap().len();
    out.truncate(n);
    out
}

fn buffers() -> Box<TlsBuffers> {
    Box::new(TlsBuffers::new())
}

/// Writes `data` in `chunk`-byte pieces, reading each echo back before the next.
async fn echo_in_chunks(tls: &mut Tls<'_>, data: &[u8], chunk: usize) -> Vec<u8> {
    use embedded_io_async::Write;
    let mut back = Vec::with_capacity(data.len());
    let mut buf = [0u8; 2048];
    for piece in data.chunks(chunk) {
        tls.write_all(piece).await.unwrap();
        tls.flush().await.unwrap();
        let want = back.len() + piece.len();
        while back.len() < want {
            let n = tls.read(&mut buf).await.unwrap();
            assert!(n > 0, "end of stream after {} bytes", back.len());
            back.extend_from_slice(&buf[..n]);
        }
    }
    back
}

// --- tests -----------------------------------------------------------------------------------

#[test]
fn round_trip_64_kib_with_client_certificate() {
    let pki = TestPki::generate();
    let (_, echo) = TlsEchoServer::start(&pki, true);
    let key = der(&pki.client_key_sec1_pem);
    let config = McuTlsConfig::new("localhost", &pki.ca_der)
        .with_client_identity(&pki.client_cert_der, &key);
    let mut data = vec![0u8; 64 * 1024];
    OsRng.fill_bytes(&mut data);
    let mut bufs = buffers();
    let (back, handshake, transfer) = with_modem(mock(), async |m, _| {
        bring_up(m).await;
        let t0 = StdInstant::now();
        let mut tls = open(m, &echo, &mut bufs, &config).await.unwrap();
        let handshake = t0.elapsed();
        let t1 = StdInstant::now();
        let back = echo_in_chunks(&mut tls, &data, 4000).await;
        let transfer = t1.elapsed();
        let sock = tls.close().await.unwrap();
        sock.close().await.unwrap();
        (back, handshake, transfer)
    });
    assert!(back == data, "echoed stream differs");
    assert_eq!(echo.handshakes(), 1);
    assert_eq!(echo.bytes_echoed(), data.len() as u64);
    eprintln!("handshake {handshake:?}, 64 KiB echoed in {transfer:?}");
}

#[test]
fn pkcs8_client_key_and_alpn_are_accepted() {
    let pki = TestPki::generate();
    let (_, echo) = TlsEchoServer::start(&pki, true);
    let key = der(&pki.client_key_pem); // PKCS#8
    let ca = der(&pki.ca_pem);
    assert_eq!(ca, pki.ca_der);
    let alpn: &[&[u8]] = &[b"x-amzn-mqtt-ca"];
    let config = McuTlsConfig::new("localhost", &ca)
        .with_client_identity(&pki.client_cert_der, &key)
        .with_alpn(alpn);
    let mut bufs = buffers();
    let back = with_modem(mock(), async |m, _| {
        bring_up(m).await;
        let mut tls = open(m, &echo, &mut bufs, &config).await.unwrap();
        echo_in_chunks(&mut tls, b"hello over MCU TLS", 64).await
    });
    assert_eq!(back, b"hello over MCU TLS");
}

#[test]
fn wrong_ca_is_a_certificate_error() {
    let pki = TestPki::generate();
    let (_, echo) = TlsEchoServer::start(&pki, false);
    let other = der(&pki.other_ca_pem);
    let config = McuTlsConfig::new("localhost", &other);
    let mut bufs = buffers();
    let r = with_modem(mock(), async |m, _| {
        bring_up(m).await;
        open(m, &echo, &mut bufs, &config).await.map(|_| ())
    });
    assert_eq!(r, Err(TlsError::Failure(TlsFailure::Certificate)));
}

#[test]
fn server_name_mismatch_is_a_certificate_error() {
    let pki = TestPki::generate();
    let (_, echo) = TlsEchoServer::start(&pki, false);
    let config = McuTlsConfig::new("not-localhost", &pki.ca_der);
    let mut bufs = buffers();
    let r = with_modem(mock(), async |m, _| {
        bring_up(m).await;
        open(m, &echo, &mut bufs, &config).await.map(|_| ())
    });
    assert_eq!(r, Err(TlsError::Failure(TlsFailure::Certificate)));
}

#[test]
fn insecure_no_verify_accepts_any_server() {
    let pki = TestPki::generate();
    let (_, echo) = TlsEchoServer::start(&pki, false);
    let config = McuTlsConfig::insecure_no_verify("not-localhost");
    assert!(!config.verifies_server());
    let mut bufs = buffers();
    let back = with_modem(mock(), async |m, _| {
        bring_up(m).await;
        let mut tls = open(m, &echo, &mut bufs, &config).await.unwrap();
        echo_in_chunks(&mut tls, b"ping", 4).await
    });
    assert_eq!(back, b"ping");
}

#[test]
fn missing_client_certificate_is_a_typed_error() {
    let pki = TestPki::generate();
    let (_, echo) = TlsEchoServer::start(&pki, true);
    let config = McuTlsConfig::new("localhost", &pki.ca_der); // no client identity
    let mut bufs = buffers();
    let outcome = with_modem(mock(), async |m, _| {
        use embedded_io_async::Write;
        bring_up(m).await;
        // TLS 1.3: the server refuses after our Finished, so the handshake may succeed here.
        let mut tls = match open(m, &echo, &mut bufs, &config).await {
            Ok(tls) => tls,
            Err(e) => return ("connect", e),
        };
        if let Err(e) = tls.write_all(b"let me in").await {
            return ("write", e);
        }
        if let Err(e) = tls.flush().await {
            return ("flush", e);
        }
        let mut buf = [0u8; 64];
        match tls.read(&mut buf).await {
            Ok(n) => panic!("read {n} bytes from a server that requires a client certificate"),
            Err(e) => ("read", e),
        }
    });
    eprintln!("missing client certificate: {outcome:?}");
    // Whichever call meets the refusal (the server closes right after its alert, so a write
    // may see the close first), the error is the alert.
    assert_eq!(
        outcome.1,
        TlsError::Failure(TlsFailure::Alert),
        "at {}",
        outcome.0
    );
    assert_eq!(echo.handshake_errors(), 1);
}

/// A 2.5 KB record comes back over a ~1 KB/s UART (10 000 baud) while every read is abandoned
/// after 300 ms, as minimq does at its keepalive deadline. The record aligner keeps what arrived,
/// so the echo comes back intact.
///
/// Without the aligner — measured once with a throw-away switch that made the aligner pass
/// reads straight through, so embedded-tls 0.19's `TlsConnection` read the same socket under the
/// same 300 ms timeouts: 3 runs out of 3 failed after 9 abandoned reads with 0 of the 2500 bytes
/// delivered, `TlsError::InvalidRecord` (here `TlsError::Failure(TlsFailure::Protocol)`): a read
/// dropped after embedded-tls had taken the record header lost it, and the next read parsed body
/// bytes as a header. With the aligner: 3 runs out of 3 intact, 9 abandoned reads, 2.78 s.
#[test]
fn cancelled_reads_on_a_slow_link_lose_nothing() {
    use embedded_io_async::Write;
    let pki = TestPki::generate();
    let (_, echo) = TlsEchoServer::start(&pki, true);
    let key = der(&pki.client_key_sec1_pem);
    let config = McuTlsConfig::new("localhost", &pki.ca_der)
        .with_client_identity(&pki.client_cert_der, &key);
    let mut data = vec![0u8; 2500];
    OsRng.fill_bytes(&mut data);
    let mut bufs = buffers();
    let (back, timeouts, elapsed) = with_modem(mock().baud(Some(10_000)), async |m, _| {
        bring_up(m).await;
        let mut tls = open(m, &echo, &mut bufs, &config).await.unwrap();
        tls.write_all(&data).await.unwrap(); // one record
        tls.flush().await.unwrap();
        let t0 = StdInstant::now();
        let mut back = Vec::new();
        let mut timeouts = 0;
        let mut buf = [0u8; 512];
        while back.len() < data.len() {
            match with_timeout(Duration::from_millis(300), tls.read(&mut buf)).await {
                Ok(Ok(0)) => panic!("end of stream after {} bytes", back.len()),
                Ok(Ok(n)) => back.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => panic!(
                    "read failed after {} bytes, {timeouts} timeouts: {e:?}",
                    back.len()
                ),
                Err(_) => timeouts += 1,
            }
            assert!(t0.elapsed() < StdDuration::from_secs(30), "no progress");
        }
        (back, timeouts, t0.elapsed())
    });
    eprintln!("2500 bytes back in {elapsed:?} through {timeouts} abandoned reads");
    assert!(back == data, "echo differs");
    // At ~1 KB/s the record takes well over a second to arrive: reads were abandoned midway.
    assert!(
        timeouts >= 3,
        "only {timeouts} reads timed out: the link was not slow enough"
    );
}

#[test]
fn debug_of_the_config_hides_the_key() {
    let pki = TestPki::generate();
    let key = der(&pki.client_key_sec1_pem);
    let alpn: &[&[u8]] = &[b"x-amzn-mqtt-ca"];
    let config = McuTlsConfig::new("localhost", &pki.ca_der)
        .with_client_identity(&pki.client_cert_der, &key)
        .with_alpn(alpn);
    let text = format!("{config:?} {config:#?}");
    // The secret scalar sits at bytes 7..39 of a SEC1 key.
    let secret = &key[7..39];
    for (fmt_secret, what) in [
        (format!("{secret:?}"), "decimal list"),
        (format!("{:?}", &secret[..4]), "first bytes"),
        (
            secret
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "hex",
        ),
    ] {
        let needle = fmt_secret.trim_start_matches('[').trim_end_matches(']');
        assert!(
            !text.contains(needle),
            "Debug shows the key ({what}): {text}"
        );
    }
    assert!(text.contains("<redacted>"), "{text}");
    assert!(
        text.contains("localhost") && text.contains("x-amzn-mqtt-ca"),
        "{text}"
    );
}

#[test]
fn bad_client_key_fails_before_any_io() {
    let pki = TestPki::generate();
    let cert = &pki.client_cert_der;
    let config = McuTlsConfig::new("localhost", &pki.ca_der).with_client_identity(cert, cert);
    assert_eq!(
        quectel::tls::McuTlsProvider::new(&config, OsRng).err(),
        Some(TlsError::InvalidKey)
    );
}

/// A server that sends a TLS 1.3 `KeyUpdate` (a post-handshake message embedded-tls does not
/// support) ends the connection with a typed error, not a panic, and the modem stays usable.
/// (A post-handshake `CertificateRequest` reached `unimplemented!()` in embedded-tls 0.19.0;
/// the repository carries a one-line fix, vendor/embedded-tls/PATCHES.md. No test peer can send
/// one: rustls does not implement post-handshake authentication. `KeyUpdate` is rejected
/// earlier, by the handshake parser, with or without the fix.)
#[test]
fn a_post_handshake_key_update_is_an_error_not_a_panic() {
    use embedded_io_async::Write;
    let pki = TestPki::generate();
    let (_, echo) = TlsEchoServer::start_with_key_update(&pki);
    let config = McuTlsConfig::new("localhost", &pki.ca_der);
    let mut bufs = buffers();
    let (read, iccid) = with_modem(mock(), async |m, _| {
        bring_up(m).await;
        let mut tls = open(m, &echo, &mut bufs, &config).await.unwrap();
        tls.write_all(b"ping").await.unwrap();
        tls.flush().await.unwrap();
        let mut buf = [0u8; 64];
        let read = embassy_time::with_timeout(Duration::from_secs(10), tls.read(&mut buf))
            .await
            .expect("an answer within 10 s");
        let iccid = m.sim().iccid().await;
        (read, iccid)
    });
    assert!(read.is_err(), "{read:?}");
    assert!(iccid.is_ok(), "the modem is still usable: {iccid:?}");
    assert_eq!(echo.handshakes(), 1);
}
