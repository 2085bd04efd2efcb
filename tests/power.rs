//! PSM and eDRX requests through the power handle (the command lines the module receives, and
//! the typed refusal on models without the feature, nothing sent), and the network time.

mod support;

use std::time::Duration as StdDuration;

use embassy_time::Duration;
use quectel::Error;
use quectel::command::power::EdrxAct;
use quectel_mock::{MockModem, Model as MockModel};
use support::{fast_config, resources, with_modem_in};

fn mock(model: MockModel) -> MockModem {
    MockModem::new(model).search_time(StdDuration::from_millis(20))
}

fn sent(h: &quectel_mock::ModemHandle, prefix: &str) -> Vec<String> {
    h.commands()
        .into_iter()
        .filter(|c| c.starts_with(prefix))
        .collect()
}

#[test]
fn psm_and_edrx_requests_go_out_encoded_on_a_bg96() {
    with_modem_in(
        resources(),
        fast_config(),
        mock(MockModel::Bg96),
        async |m, h| {
            m.init().await.unwrap();
            let p = m.power();
            // 40 min and 30 s: the manual's own example line.
            p.set_psm(Duration::from_secs(40 * 60), Duration::from_secs(30))
                .await
                .unwrap();
            // A TAU of 63 s rounds up to 90 s (3 × 30 s: 2 s steps end at 62 s), an active time
            // of 63 s to 2 min.
            p.set_psm(Duration::from_secs(63), Duration::from_secs(63))
                .await
                .unwrap();
            p.set_edrx(EdrxAct::LteM, Duration::from_secs(80))
                .await
                .unwrap();
            assert_eq!(
                sent(h, "AT+CPSMS"),
                [
                    "AT+CPSMS=1,,,\"00000100\",\"00001111\"",
                    "AT+CPSMS=1,,,\"10000011\",\"00100010\"",
                ]
            );
            assert_eq!(sent(h, "AT+CEDRXS"), ["AT+CEDRXS=1,4,\"0101\""]);
            // Out of range: refused before anything is sent.
            let before = h.commands().len();
            assert_eq!(
                p.set_psm(Duration::from_secs(0), Duration::from_secs(30))
                    .await,
                Err(Error::InvalidArgument)
            );
            assert_eq!(
                p.set_edrx(EdrxAct::NbIot, Duration::from_secs(20_000))
                    .await,
                Err(Error::InvalidArgument)
            );
            // The paging time window command is a BG95/BG77 one.
            assert_eq!(
                p.set_edrx_with_window(
                    EdrxAct::LteM,
                    Duration::from_secs(80),
                    Duration::from_secs(5)
                )
                .await,
                Err(Error::Unsupported)
            );
            assert_eq!(h.commands().len(), before);
        },
    );
}

#[test]
fn paging_window_on_a_bg95() {
    with_modem_in(
        resources(),
        fast_config(),
        mock(MockModel::Bg95),
        async |m, h| {
            m.init().await.unwrap();
            let r = m
                .power()
                .set_edrx_with_window(
                    EdrxAct::NbIot,
                    Duration::from_secs(160),
                    Duration::from_secs(10),
                )
                .await;
            // 163.84 s is "1001", and 10 s rounds up to 4 × 2.56 s ("0011").
            assert_eq!(r, Ok(()));
            assert_eq!(
                sent(h, "AT+QPTWEDRXS"),
                ["AT+QPTWEDRXS=1,5,\"0011\",\"1001\""]
            );
        },
    );
}

#[test]
fn cat1_modules_refuse_psm_without_sending_anything() {
    with_modem_in(
        resources(),
        fast_config(),
        mock(MockModel::Ec25),
        async |m, h| {
            m.init().await.unwrap();
            let before = h.commands().len();
            let p = m.power();
            assert_eq!(
                p.set_psm(Duration::from_secs(3600), Duration::from_secs(30))
                    .await,
                Err(Error::Unsupported)
            );
            assert_eq!(p.psm().await, Err(Error::Unsupported));
            assert_eq!(
                p.set_edrx(EdrxAct::LteM, Duration::from_secs(80)).await,
                Err(Error::Unsupported)
            );
            assert_eq!(p.edrx_grant().await, Err(Error::Unsupported));
            assert_eq!(h.commands().len(), before);
        },
    );
}

#[test]
fn network_time_is_utc_whatever_the_time_zone() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    for quarters in [32i8, -20, 0] {
        let m = mock(MockModel::Bg96).time_zone(Some(quarters));
        with_modem_in(resources(), fast_config(), m, async |m, _| {
            m.init().await.unwrap();
            let clock = m.network().time().await.unwrap();
            assert!(clock.is_set());
            assert_eq!(clock.offset_quarters, quarters);
            let utc = clock.unix_utc();
            assert!((utc - now()).abs() <= 5, "{clock:?}: {utc} vs {}", now());
        });
    }
    // A module that never got the time from the network says so.
    let m = mock(MockModel::Bg96).time_zone(None);
    with_modem_in(resources(), fast_config(), m, async |m, _| {
        m.init().await.unwrap();
        assert!(!m.network().time().await.unwrap().is_set());
    });
}
