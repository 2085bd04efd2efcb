//! eDRX through the power handle, against the mock: typed read-backs (`AT+CEDRXS?`,
//! `AT+CEDRXRDP`), the `+CEDRXP` report, and downlink data held by the module until its next
//! paging window, which the driver then reads whole.

mod support;

use std::time::{Duration as StdDuration, Instant as StdInstant};

use embassy_futures::join::join;
use embassy_time::{Duration, Timer};
use quectel::asynch::{Remote, Resources};
use quectel::command::edrx::{EdrxCycle, PagingWindow};
use quectel::command::power::EdrxAct;
use quectel_mock::peers::TcpEchoServer;
use quectel_mock::{EdrxPaging, MockModem, Model as MockModel};
use support::{bring_up, fast_config, resources, with_modem_in};

fn mock() -> MockModem {
    MockModem::new(MockModel::Bg95).search_time(StdDuration::from_millis(20))
}

#[test]
fn edrx_requests_grants_and_reports_are_typed() {
    let paging = EdrxPaging {
        cycle: StdDuration::from_secs(1),
        window: StdDuration::from_millis(5_120),
    };
    with_modem_in(
        resources(),
        fast_config(),
        mock().edrx_paging(Some(paging)),
        async |m, h| {
            m.init().await.unwrap();
            let p = m.power();
            assert_eq!(p.edrx_params().await, Ok(None));
            assert!(p.edrx_reported().is_none());
            let cycle = EdrxCycle::at_least(EdrxAct::NbIot, Duration::from_secs(100)).unwrap();
            assert_eq!(cycle.duration(), Duration::from_millis(163_840));
            p.set_edrx_reporting(cycle).await.unwrap();
            assert!(h.commands().iter().any(|c| c == "AT+CEDRXS=2,5,\"1001\""));
            // The +CEDRXP report follows the OK.
            let mut reported = None;
            for _ in 0..200 {
                reported = p.edrx_reported();
                if reported.is_some() {
                    break;
                }
                Timer::after_millis(5).await;
            }
            let reported = reported.expect("no +CEDRXP");
            assert_eq!(reported.act, EdrxAct::NbIot);
            assert_eq!(reported.granted, Some(cycle));
            // 5.12 s on NB-IoT is 2 × 2.56 s: value 0001.
            let window = PagingWindow::new(EdrxAct::NbIot, 1).unwrap();
            assert_eq!(reported.paging_window, Some(window));
            assert_eq!(window.duration(), Duration::from_millis(5_120));
            let params = p.edrx_params().await.unwrap().unwrap();
            assert_eq!(params, reported);
            let requests = p.edrx_requests().await.unwrap();
            assert_eq!(requests.as_slice(), [cycle]);
        },
    );
}

#[test]
fn downlink_waits_for_the_paging_window_and_arrives_whole() {
    let (addr, echo) = TcpEchoServer::start();
    // Stand-ins for a granted cycle and window, short enough for a test.
    let paging = EdrxPaging {
        cycle: StdDuration::from_millis(500),
        window: StdDuration::from_millis(60),
    };
    let res: &'static mut Resources = resources();
    with_modem_in(
        res,
        fast_config(),
        mock().edrx_paging(Some(paging)),
        async |m, h| {
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
            m.power()
                .set_edrx(EdrxAct::LteM, Duration::from_secs(5))
                .await
                .unwrap();
            let mut latencies = Vec::new();
            for round in 0..4u8 {
                // 150 ms after a window opened is outside the 60 ms window.
                Timer::after_millis(150).await;
                let data: Vec<u8> = (0..64).map(|i| i ^ round).collect();
                let started = StdInstant::now();
                let back = {
                    use embedded_io_async::{Read, Write};
                    let (mut rx, mut tx) = sock.split();
                    let w = async {
                        tx.write_all(&data).await.unwrap();
                        tx.flush().await.unwrap();
                    };
                    let r = async {
                        let mut back = Vec::new();
                        let mut buf = [0u8; 256];
                        while back.len() < data.len() {
                            let n = rx.read(&mut buf).await.unwrap();
                            assert!(n > 0, "end of stream");
                            back.extend_from_slice(&buf[..n]);
                        }
                        back
                    };
                    join(r, w).await.0
                };
                latencies.push(started.elapsed());
                assert_eq!(back, data, "round {round}");
            }
            // Each echo waited for a window (none later than a cycle plus slack), and the
            // module held the announcements.
            for l in &latencies[1..] {
                assert!(
                    *l >= StdDuration::from_millis(200) && *l <= StdDuration::from_millis(900),
                    "{latencies:?}"
                );
            }
            assert!(h.edrx_held_urcs() >= 3, "{}", h.edrx_held_urcs());
            sock.close().await.unwrap();
        },
    );
    assert_eq!(echo.bytes_echoed(), 4 * 64);
}
