//! MCU TLS checks the server certificate's dates against the network's time when the caller
//! gives no clock (issue 12): before the network sent the time nothing is checked, with a time
//! after the certificate's notAfter the handshake fails as a certificate error, with the right
//! time it succeeds. Its own test binary: the network clock is one per program.

use std::time::Duration as StdDuration;

use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Timer};
use quectel::asynch::{self, Apn, Config, Modem, Remote, Resources, forget_network_time};
use quectel::tls::{McuTls, McuTlsConfig, TlsBuffers, TlsError, TlsFailure};
use quectel_mock::peers::{EchoHandle, TestPki, TlsEchoServer};
use quectel_mock::{MockModem, Model as MockModel, ModemHandle, ctze_urc};
use rand_core::OsRng;

fn with_modem<T>(body: impl AsyncFnOnce(&Modem<'static>, &ModemHandle) -> T) -> T {
    let mock = MockModem::new(MockModel::Bg96).search_time(StdDuration::from_millis(20));
    let (rx, tx, handle) = mock.spawn();
    let res: &'static mut Resources<2048, 2, 8192> = Box::leak(Box::new(Resources::new()));
    let config = Config {
        startup_timeout: Duration::from_secs(10),
        command_gap: Duration::from_millis(1),
        ..Config::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (runner, modem) = asynch::new(res, rx, tx, config);
        match select(runner.run(), body(&modem, &handle)).await {
            Either::First(never) => never,
            Either::Second(t) => t,
        }
    })
}

async fn handshake(
    m: &Modem<'static>,
    echo: &EchoHandle,
    config: &McuTlsConfig<'_>,
) -> Result<(), TlsError> {
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
    let mut bufs = Box::new(TlsBuffers::<16_640, 4_096>::new());
    let tls = McuTls::connect(sock, &mut bufs, config, OsRng).await?;
    let sock = tls.close().await.expect("close_notify");
    sock.close().await.expect("close");
    Ok(())
}

async fn set_network_time(h: &ModemHandle, unix: i64) {
    h.inject_urc(&ctze_urc(unix, 8));
    for _ in 0..500 {
        if asynch::network_utc_now().is_some_and(|t| (t as i64 - unix).abs() <= 2) {
            return;
        }
        Timer::after_millis(2).await;
    }
    panic!("the time URC set no clock");
}

#[test]
fn certificate_dates_are_checked_against_the_network_time() {
    // The server certificate is valid 2020-01-01 to 2030-12-31.
    let pki = TestPki::generate_server_valid_until(2030);
    let (_, echo) = TlsEchoServer::start(&pki, false);
    let config = McuTlsConfig::new("localhost", &pki.ca_der);
    forget_network_time();
    with_modem(async |m, h| {
        m.init().await.unwrap();
        m.data_call()
            .configure(1, &Apn::new("internet"))
            .await
            .unwrap();
        m.network()
            .wait_network_ready(1, Duration::from_secs(10))
            .await
            .unwrap();
        // No network time yet: no date check.
        assert_eq!(handshake(m, &echo, &config).await, Ok(()));
        // The network says it is 2032: the certificate has expired.
        set_network_time(h, 1_956_528_000).await;
        assert_eq!(
            handshake(m, &echo, &config).await,
            Err(TlsError::Failure(TlsFailure::Certificate))
        );
        // The network says it is 2027: valid.
        set_network_time(h, 1_798_761_600).await;
        assert_eq!(handshake(m, &echo, &config).await, Ok(()));
    });
    assert_eq!(echo.handshakes(), 2);
}
