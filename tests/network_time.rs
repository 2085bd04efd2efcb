//! The network's time (issue 12): `AT+QLTS` in its three modes and the time URCs, read as a UTC
//! instant with its zone, and kept as the network clock MCU TLS checks certificate dates
//! against. Its own test binary: the network clock is one per program.

mod support;

use std::time::Duration as StdDuration;

use quectel::asynch::{forget_network_time, network_utc_now};
use quectel::command::nettime::QltsMode;
use quectel_mock::{MockModem, Model as MockModel, ctze_urc};
use support::{fast_config, resources, with_modem_in};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn mock() -> MockModem {
    MockModem::new(MockModel::Bg95).search_time(StdDuration::from_millis(20))
}

#[test]
fn network_time_from_qlts_and_from_urcs() {
    // QLTS in each mode, in a zone east and one west of UTC.
    for quarters in [32i8, -20] {
        forget_network_time();
        with_modem_in(
            resources(),
            fast_config(),
            mock().time_zone(Some(quarters)),
            async |m, h| {
                m.init().await.unwrap();
                let net = m.network();
                // The last synchronisation does not set the clock (it is not "now").
                let last = net.network_time(QltsMode::LastSync).await.unwrap().unwrap();
                assert_eq!(last.zone_quarters, quarters);
                assert!((last.unix_utc() - now()).abs() <= 5, "{last:?}");
                assert_eq!(network_utc_now(), None);
                for mode in [QltsMode::CurrentUtc, QltsMode::CurrentLocal] {
                    let t = net.network_time(mode).await.unwrap().unwrap();
                    assert_eq!(t.zone_quarters, quarters, "{mode:?}");
                    assert_eq!(t.dst, Some(0));
                    assert!((t.unix_utc() - now()).abs() <= 5, "{mode:?}: {t:?}");
                }
                let clock = network_utc_now().unwrap() as i64;
                assert!((clock - now()).abs() <= 5);
                assert!(
                    h.commands()
                        .iter()
                        .any(|c| c == "AT+QLTS=1" || c == "AT+QLTS=2")
                );
            },
        );
    }
    // No time from the network: `None`, and the clock stays unset.
    forget_network_time();
    with_modem_in(
        resources(),
        fast_config(),
        mock().time_zone(None),
        async |m, _| {
            m.init().await.unwrap();
            let t = m.network().network_time(QltsMode::CurrentUtc).await;
            assert_eq!(t, Ok(None));
            assert_eq!(network_utc_now(), None);
        },
    );
    // A time URC sets the clock (here a fixed instant in 2031, far from the host's clock).
    let later = 1_925_000_000i64;
    for urc in [ctze_urc(later, -20), ctze_urc(later, 32)] {
        forget_network_time();
        with_modem_in(resources(), fast_config(), mock(), async |m, h| {
            m.init().await.unwrap();
            h.inject_urc(&urc);
            let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
            while network_utc_now().is_none() && std::time::Instant::now() < deadline {
                embassy_time::Timer::after_millis(5).await;
            }
            let got = network_utc_now().expect("the URC set no clock") as i64;
            assert!((got - later).abs() <= 2, "{urc}: {got}");
            // Not counted as an unknown URC.
            assert_eq!(m.state().unknown_urcs, 0, "{urc}");
        });
    }
    // Only the zone: nothing to set the clock from.
    forget_network_time();
    with_modem_in(resources(), fast_config(), mock(), async |m, h| {
        m.init().await.unwrap();
        h.inject_urc("+CTZV: \"+32\"");
        // A later command proves the URC was processed before it.
        let _ = m.network().signal().await;
        assert_eq!(network_utc_now(), None);
        assert_eq!(m.state().unknown_urcs, 0);
    });
}
