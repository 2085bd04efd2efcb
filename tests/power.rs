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

/// After `PSM POWER DOWN`, the module is woken through PWRKEY and only what it forgot is sent
/// again: echo off, `AT+CMEE` with the registration URCs, and one `AT+QIACT?` — no `ATI`, no
/// `AT+CGSN`, no activation (the context survived). A reboot afterwards is a reboot: the full
/// start-up and a new activation.
#[test]
fn a_psm_wake_re_sends_what_the_module_forgot_and_a_reboot_everything() {
    let bring_up = support::bring_up;
    support::with_pwrkey_in(
        resources(),
        fast_config(),
        mock(MockModel::Bg95),
        async |m, h, presses| {
            bring_up(m).await;
            m.power()
                .set_psm(Duration::from_secs(3600), Duration::from_secs(10))
                .await
                .unwrap();
            let before = h.commands().len();
            // 15 minutes of virtual time: radio tail, T3324, PSM.
            h.advance(StdDuration::from_secs(15 * 60));
            let s = m
                .wait_for_state(Duration::from_secs(5), |s| s.psm_asleep.then_some(*s))
                .await
                .expect("PSM POWER DOWN reaches the driver");
            assert_eq!(s.psm_entries, 1);
            assert!(s.best_registration().is_some(), "still registered in PSM");
            let p = h.state().power;
            assert!(p.asleep);
            assert!(p.ledger.psm >= StdDuration::from_secs(14 * 60), "{p:?}");
            // Asleep, the module takes nothing: the bytes are lost.
            assert_eq!(m.sim().iccid().await.err(), Some(Error::Timeout));
            assert!(h.state().power.lost_in > 0);
            // Woken through PWRKEY: a wake, not a boot.
            assert_eq!(m.power().wake().await, Ok(true));
            assert_eq!(presses.load(std::sync::atomic::Ordering::SeqCst), 1);
            assert_eq!((m.boots(), m.wakes()), (1, 1));
            // The context is still there: network ready without an activation.
            m.network()
                .wait_network_ready(1, Duration::from_secs(5))
                .await
                .unwrap();
            let after: Vec<String> = h.commands()[before..].to_vec();
            let resent: Vec<&String> = after
                .iter()
                .filter(|c| !c.starts_with("AT+ICCID") && !c.starts_with("AT+QCCID"))
                .collect();
            assert!(resent.iter().any(|c| *c == "ATE0"), "{after:?}");
            assert!(
                resent.iter().any(|c| c.starts_with("AT+CMEE=1;")),
                "{after:?}"
            );
            assert!(resent.iter().any(|c| *c == "AT+QIACT?"), "{after:?}");
            for not in ["ATI", "AT+CGSN", "AT+QIACT=1", "AT+QICSGP"] {
                assert!(
                    !resent.iter().any(|c| c.starts_with(not)),
                    "{not} re-sent after a wake: {after:?}"
                );
            }
            // A second wake call while awake sends nothing and presses nothing.
            let n = h.commands().len();
            assert_eq!(m.power().wake().await, Ok(false));
            assert_eq!(h.commands().len(), n);

            // A reboot: everything again.
            let before = h.commands().len();
            h.reboot();
            m.wait_for_state(Duration::from_secs(5), |s| (s.boots == 2).then_some(()))
                .await
                .unwrap();
            assert_eq!(m.wakes(), 1);
            bring_up(m).await;
            let after: Vec<String> = h.commands()[before..].to_vec();
            for must in ["ATI", "AT+QIACT=1"] {
                assert!(
                    after.iter().any(|c| c.starts_with(must)),
                    "{must} not sent after a reboot: {after:?}"
                );
            }
        },
    );
}

/// `AT+QCFG="psm/urc"` and `AT+QPSMCFG` go out on a BG95 and are refused, unsent, on an EC25;
/// the granted timers of `+QPSMTIMER` land in the state.
#[test]
fn quectel_psm_knobs_follow_the_model_table() {
    with_modem_in(
        resources(),
        fast_config(),
        mock(MockModel::Bg95).psm_grant(StdDuration::from_secs(7200), StdDuration::from_secs(4)),
        async |m, h| {
            m.init().await.unwrap();
            let p = m.power();
            p.set_psm_urc(true).await.unwrap();
            p.set_psm_threshold(Duration::from_secs(60), 4)
                .await
                .unwrap();
            p.set_psm(Duration::from_secs(3600), Duration::from_secs(10))
                .await
                .unwrap();
            assert_eq!(sent(h, "AT+QCFG=\"psm/urc\""), ["AT+QCFG=\"psm/urc\",1"]);
            assert_eq!(sent(h, "AT+QPSMCFG"), ["AT+QPSMCFG=60,4"]);
            let g = m
                .wait_for_state(Duration::from_secs(2), |s| s.psm_grant())
                .await
                .unwrap();
            assert_eq!(g.periodic_tau_s, Some(7200));
            assert_eq!(g.active_time_s, Some(4));
        },
    );
    with_modem_in(
        resources(),
        fast_config(),
        mock(MockModel::Ec25),
        async |m, h| {
            m.init().await.unwrap();
            let before = h.commands().len();
            assert_eq!(m.power().set_psm_urc(true).await, Err(Error::Unsupported));
            assert_eq!(
                m.power()
                    .set_psm_threshold(Duration::from_secs(60), 4)
                    .await,
                Err(Error::Unsupported)
            );
            assert_eq!(m.power().wake().await, Err(Error::Unsupported));
            assert_eq!(h.commands().len(), before);
        },
    );
}

/// The periodic TAU wakes the module by itself (virtual time): `RDY` without PWRKEY, counted
/// as a wake, and PSM again after the active time; the ledger books the day almost entirely
/// as PSM.
#[test]
fn the_periodic_tau_wakes_the_module_without_pwrkey() {
    support::with_pwrkey_in(
        resources(),
        fast_config(),
        mock(MockModel::Bg96),
        async |m, h, presses| {
            support::bring_up(m).await;
            m.power()
                .set_psm(Duration::from_secs(3600), Duration::from_secs(2))
                .await
                .unwrap();
            // 3.5 h: PSM after the radio tail and T3324, then three TAU wakes (each followed by
            // PSM again).
            h.advance(StdDuration::from_secs(3 * 3600 + 1800));
            let p = h.state().power;
            assert_eq!(p.tau_wakes, 3, "{p:?}");
            assert_eq!(p.psm_entries, 4, "{p:?}");
            assert!(p.asleep);
            let s = m
                .wait_for_state(Duration::from_secs(5), |s| {
                    (s.wakes == 3 && s.psm_asleep).then_some(*s)
                })
                .await
                .expect("the TAU wakes reach the driver as wakes");
            assert_eq!(s.boots, 1);
            assert_eq!(presses.load(std::sync::atomic::Ordering::SeqCst), 0);
            assert!(p.ledger.psm.as_secs_f64() > 0.98 * p.ledger.total().as_secs_f64() - 60.0);
            // Without PSM the same stretch is idle (always on).
            let idle_before = h.state().power.ledger.idle;
            m.power().wake().await.unwrap();
            m.power().disable_psm().await.unwrap();
            h.advance(StdDuration::from_secs(3600));
            let p = h.state().power;
            assert!(!p.asleep);
            assert!(p.ledger.idle - idle_before >= StdDuration::from_secs(3600 - 20));
        },
    );
}

/// `+CEREG` with `<n>` = 4 carries the granted Active-Time and Periodic-TAU: the runner decodes
/// them into `State::psm_grant` (GPRS Timer 2 / Timer 3 octets, TS 24.008).
#[test]
fn granted_timers_from_cereg_with_n_4() {
    with_modem_in(
        resources(),
        fast_config(),
        mock(MockModel::Bg95).psm_grant(
            StdDuration::from_secs(12 * 3600),
            StdDuration::from_secs(20),
        ),
        async |m, h| {
            support::bring_up(m).await;
            m.power()
                .set_psm(Duration::from_secs(3600), Duration::from_secs(10))
                .await
                .unwrap();
            m.send(&quectel::command::network::SetRegistrationUrc {
                domain: quectel::at::urc::RegDomain::Eps,
                mode: 4,
            })
            .await
            .unwrap();
            h.set_registration(quectel_mock::reg::SEARCHING);
            h.set_registration(quectel_mock::reg::HOME);
            let g = m
                .wait_for_state(Duration::from_secs(2), |s| s.psm_grant())
                .await
                .unwrap();
            assert_eq!(g.periodic_tau_s, Some(12 * 3600));
            assert_eq!(g.active_time_s, Some(20));
        },
    );
}
