//! The handles against the behavioural mock modem, async API.

mod support;

use std::time::Duration as StdDuration;

use embassy_time::Duration;
use quectel::asynch::{Apn, NotReady, SimStatus};
use quectel::at::urc::RegStatus;
use quectel::model::Model;
use quectel::{CmeError, Error};
use quectel_mock::{MockModem, Model as MockModel, SimState, reg};
use support::with_modem;

fn fast(model: MockModel) -> MockModem {
    MockModem::new(model).search_time(StdDuration::from_millis(50))
}

#[test]
fn init_identifies_every_model() {
    let cases = [
        (MockModel::Bg96, Model::Bg96),
        (MockModel::Bg95, Model::Bg95),
        (MockModel::Bg77, Model::Bg77),
        (MockModel::Ec21, Model::Ec21),
        (MockModel::Ec25, Model::Ec25),
        (MockModel::Eg91, Model::Eg91),
        (MockModel::Ec600n, Model::Ec600n),
    ];
    for (mock, expected) in cases {
        // A module left in verbose error mode (`AT+CMEE=2`, e.g. by an earlier application).
        let modem = fast(mock).imei("861234567890123").cmee(2);
        let id = with_modem(modem, async |m, h| {
            let id = m.init().await.unwrap();
            // Echo is off and numeric error codes are on after init.
            let st = h.state();
            assert!(!st.echo, "{mock:?}: echo still on");
            assert_eq!(st.cmee, 1, "{mock:?}: not in numeric error mode");
            id
        });
        assert_eq!(id.model, expected);
        assert_eq!(id.model_name.as_str(), mock.ati_name());
        assert_eq!(id.revision.as_str(), mock.revision());
        assert_eq!(id.imei.as_str(), "861234567890123");
    }
}

#[test]
fn ec600n_context_range_is_enforced() {
    with_modem(fast(MockModel::Ec600n), async |m, _| {
        m.init().await.unwrap();
        assert_eq!(m.data_call().activate(8).await, Err(Error::OutOfRange));
    });
}

#[test]
fn sim_status_and_pin_flow() {
    with_modem(fast(MockModel::Bg96).pin(Some("1234")), async |m, _| {
        m.init().await.unwrap();
        let sim = m.sim();
        assert_eq!(sim.status().await.unwrap(), SimStatus::PinRequired);
        assert_eq!(
            sim.unlock("0000").await,
            Err(Error::Cme(CmeError::INCORRECT_PASSWORD))
        );
        sim.unlock("1234").await.unwrap();
        assert_eq!(sim.status().await.unwrap(), SimStatus::Ready);
        assert_eq!(sim.iccid().await.unwrap().len(), 20);
        assert!(
            sim.imsi()
                .await
                .unwrap()
                .chars()
                .all(|c| c.is_ascii_digit())
        );
    });
}

#[test]
fn sim_not_inserted_and_puk() {
    with_modem(
        fast(MockModel::Ec25).sim(SimState::NotInserted),
        async |m, _| {
            m.init().await.unwrap();
            assert_eq!(m.sim().status().await.unwrap(), SimStatus::NotInserted);
            assert!(matches!(
                m.sim().iccid().await,
                Err(Error::Cme(_)) | Err(Error::Error)
            ));
        },
    );
    with_modem(
        fast(MockModel::Bg95)
            .sim(SimState::PukRequired)
            .puk("12345678"),
        async |m, _| {
            m.init().await.unwrap();
            assert_eq!(m.sim().status().await.unwrap(), SimStatus::PukRequired);
            m.sim().unblock("12345678", "4321").await.unwrap();
            assert_eq!(m.sim().status().await.unwrap(), SimStatus::Ready);
        },
    );
}

#[test]
fn wait_network_ready_success_and_info() {
    with_modem(fast(MockModel::Bg96), async |m, _| {
        m.init().await.unwrap();
        m.data_call()
            .configure(1, &Apn::new("internet"))
            .await
            .unwrap();
        m.network()
            .wait_network_ready(1, Duration::from_secs(10))
            .await
            .unwrap();
        let info = m.data_call().info(1).await.unwrap();
        assert!(info.active);
        assert!(info.ipv4.is_some());
        assert!(info.dns_primary.is_some());
        let sig = m.network().signal().await.unwrap();
        assert!(sig.rssi <= 31);
        assert!(m.network().registration().await.unwrap().is_registered());
    });
}

#[test]
fn wait_network_ready_reports_no_sim() {
    let err = with_modem(
        fast(MockModel::Bg96).sim(SimState::NotInserted),
        async |m, _| {
            m.init().await.unwrap();
            m.network()
                .wait_network_ready(1, Duration::from_secs(5))
                .await
                .unwrap_err()
        },
    );
    assert_eq!(err, NotReady::Sim(SimStatus::NotInserted));
    assert_eq!(err.stage(), 1);
}

#[test]
fn wait_network_ready_reports_pin_required() {
    let err = with_modem(fast(MockModel::Ec25).pin(Some("1234")), async |m, _| {
        m.init().await.unwrap();
        m.network()
            .wait_network_ready(1, Duration::from_secs(5))
            .await
            .unwrap_err()
    });
    assert_eq!(err, NotReady::Sim(SimStatus::PinRequired));
    assert_eq!(err.stage(), 1);
}

#[test]
fn wait_network_ready_reports_registration_denied() {
    let err = with_modem(
        fast(MockModel::Bg95).registration(reg::DENIED),
        async |m, _| {
            m.init().await.unwrap();
            m.network()
                .wait_network_ready(1, Duration::from_secs(5))
                .await
                .unwrap_err()
        },
    );
    assert_eq!(err, NotReady::Registration(RegStatus::Denied));
    assert_eq!(err.stage(), 2);
}

#[test]
fn wait_network_ready_reports_pdp_activation_error() {
    let err = with_modem(fast(MockModel::Eg91).pdp_fail(Some(561)), async |m, _| {
        m.init().await.unwrap();
        m.network()
            .wait_network_ready(1, Duration::from_secs(5))
            .await
            .unwrap_err()
    });
    assert!(matches!(err, NotReady::DataCall(_)), "{err:?}");
    assert_eq!(err.stage(), 3);
}

#[test]
fn registration_progresses_and_urcs_update_state() {
    with_modem(
        MockModem::new(MockModel::Bg96).search_time(StdDuration::from_millis(600)),
        async |m, _| {
            m.init().await.unwrap();
            let status = m
                .network()
                .wait_registered(Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(status, RegStatus::Home);
            // A URC for roaming arrives without a query.
        },
    );
    with_modem(fast(MockModel::Bg96), async |m, h| {
        m.init().await.unwrap();
        m.network()
            .wait_registered(Duration::from_secs(5))
            .await
            .unwrap();
        h.set_registration(reg::ROAMING);
        let best = m
            .wait_for_state(Duration::from_secs(2), |s| {
                (s.best_registration() == Some(RegStatus::Roaming)).then_some(())
            })
            .await;
        assert!(best.is_ok(), "roaming URC not applied: {:?}", m.state());
    });
}

#[test]
fn pdpdeact_is_reflected_and_recovered() {
    with_modem(fast(MockModel::Bg96), async |m, h| {
        m.init().await.unwrap();
        m.network()
            .wait_network_ready(1, Duration::from_secs(5))
            .await
            .unwrap();
        h.inject_urc("+QIURC: \"pdpdeact\",1");
        m.wait_for_state(Duration::from_secs(2), |s| {
            (s.pdp_deact_events == 1).then_some(())
        })
        .await
        .unwrap();
        let info = m.data_call().info(1).await.unwrap();
        assert!(!info.active);
        assert!(info.deactivated_by_network);
        m.data_call().activate(1).await.unwrap();
        let info = m.data_call().info(1).await.unwrap();
        assert!(info.active && !info.deactivated_by_network);
    });
}

#[test]
fn modem_reboot_is_noticed() {
    with_modem(fast(MockModel::Bg96), async |m, h| {
        let first = m.init().await.unwrap();
        let boots = m.boots();
        h.reboot();
        let id = m.wait_reboot(Duration::from_secs(5)).await.unwrap();
        assert_eq!(id.model, Model::Bg96);
        assert!(m.boots() > boots);
        // The IMEI does not change with a reboot: it is not asked again.
        assert_eq!(id.imei, first.imei);
        let cgsn = h.commands().iter().filter(|c| *c == "AT+CGSN").count();
        assert_eq!(cgsn, 1, "{:?}", h.commands());
        // Echo came back on with the reboot; init switched it off again and commands work.
        assert_eq!(m.sim().status().await.unwrap(), SimStatus::Ready);
    });
}

#[test]
fn reboot_while_a_command_waits_fails_fast() {
    with_modem(
        fast(MockModel::Bg96).pdp_activation_time(StdDuration::from_secs(20)),
        async |m, h| {
            m.init().await.unwrap();
            m.network()
                .wait_registered(Duration::from_secs(5))
                .await
                .unwrap();
            let started = embassy_time::Instant::now();
            let dc = m.data_call();
            let activate = dc.activate(1);
            let reboot = async {
                embassy_time::Timer::after_millis(200).await;
                h.reboot();
            };
            let (r, ()) = embassy_futures::join::join(activate, reboot).await;
            assert_eq!(r, Err(Error::Rebooted));
            assert!(started.elapsed() < Duration::from_secs(10));
        },
    );
}

#[test]
fn dropped_command_future_never_leaks_its_answer() {
    with_modem(
        fast(MockModel::Bg96).pdp_activation_time(StdDuration::from_millis(800)),
        async |m, _| {
            m.init().await.unwrap();
            m.network()
                .wait_registered(Duration::from_secs(5))
                .await
                .unwrap();
            // Give up on the activation after 100 ms: the modem still answers it later.
            let r =
                embassy_time::with_timeout(Duration::from_millis(100), m.data_call().activate(1))
                    .await;
            assert!(r.is_err());
            // The next command must get its own answer, not the late OK of AT+QIACT.
            let sig = m.network().signal().await.unwrap();
            assert!(sig.rssi <= 31 || sig.rssi == 99);
            assert!(m.data_call().is_active(1).await.unwrap());
        },
    );
}

#[test]
fn timeout_when_the_modem_is_silent() {
    with_modem(fast(MockModel::Bg96), async |m, h| {
        m.init().await.unwrap();
        h.set_silent(true);
        assert_eq!(m.network().signal().await, Err(Error::Timeout));
        h.set_silent(false);
        assert!(m.network().signal().await.is_ok());
    });
}

#[test]
fn garbage_before_responses_is_skipped() {
    with_modem(
        fast(MockModel::Bg96).garbage_before_response(b"\r\nERrOR\r\n\x00\xff\r\n"),
        async |m, _| {
            m.init().await.unwrap();
            assert_eq!(m.sim().status().await.unwrap(), SimStatus::Ready);
            assert!(m.stats().garbage_lines > 0);
        },
    );
}

#[test]
fn commands_dropped_at_random_points_keep_the_channel_in_sync() {
    with_modem(
        fast(MockModel::Bg96).chunk(3, StdDuration::from_micros(300)),
        async |m, _| {
            let id = m.init().await.unwrap();
            // A cheap deterministic pseudo-random sequence of give-up delays (0..15 ms).
            let mut x: u32 = 0x1234_5678;
            for _ in 0..40 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let give_up = Duration::from_micros(u64::from(x % 15_000));
                let _ = embassy_time::with_timeout(give_up, m.sim().iccid()).await;
                let _ = embassy_time::with_timeout(give_up, m.network().signal()).await;
                // Whatever was abandoned, the next answers belong to their own commands.
                let imei = m.send(&quectel::command::general::Imei).await.unwrap();
                assert_eq!(imei.as_str(), id.imei.as_str());
                assert_eq!(m.sim().status().await.unwrap(), SimStatus::Ready);
            }
        },
    );
}

#[test]
fn resources_size_is_what_the_docs_say() {
    // docs/getting-started.md gives this formula: N + 2·S·R + 384 bytes of buffers (384: the
    // command-line buffer, `quectel::asynch::CMD_BUF`),
    // plus at most 2.375 KiB of queues and state and 100 bytes per socket. Keep it true.
    fn check<const N: usize, const S: usize, const R: usize>() -> usize {
        let size = core::mem::size_of::<quectel::asynch::Resources<N, S, R>>();
        let buffers = N + 2 * S * R + quectel::asynch::CMD_BUF;
        assert!(size >= buffers, "{size} < {buffers}");
        assert!(
            size <= buffers + 2432 + 100 * S,
            "Resources<{N}, {S}, {R}>: {size} bytes"
        );
        size
    }
    let default = check::<256, 2, 2048>();
    println!("Resources (default): {default} bytes");
    println!("Resources<256, 1, 1536>: {} bytes", check::<256, 1, 1536>());
    println!(
        "Resources<2048, 12, 2048>: {} bytes",
        check::<2048, 12, 2048>()
    );
    assert_eq!(default, core::mem::size_of::<quectel::asynch::Resources>());
}
