//! UART sleep (`AT+QSCLK=1`) with DTR, against the mock's sleeping module, which drops the bytes
//! sent to it while it sleeps: with the runner driving DTR nothing is lost, DTR ends high when
//! the UART is idle, and without DTR (or without the wake-up wait) the mock does lose bytes.

mod support;

use std::time::Duration as StdDuration;

use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Timer};
use quectel::Error;
use quectel::asynch::{self, Modem, UartSleep};
use quectel::command::sleep::SetUartSleep;
use quectel_mock::{MockModem, Model as MockModel, ModemHandle, UartSleepTiming};
use support::{fast_config, resources};

fn mock(wake: u64) -> MockModem {
    MockModem::new(MockModel::Bg95)
        .search_time(StdDuration::from_millis(20))
        .uart_sleep(UartSleepTiming {
            sleep_after: StdDuration::from_millis(20),
            wake_time: StdDuration::from_millis(wake),
        })
}

/// Runs `body` with the runner driving the mock's DTR (`sleep` = `Some(wake time)`), or not.
fn with_sleepy_modem<T>(
    mock: MockModem,
    sleep: Option<Duration>,
    body: impl AsyncFnOnce(&Modem<'static>, &ModemHandle) -> T,
) -> T {
    let (rx, tx, handle) = mock.spawn();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (runner, modem) = asynch::new(resources(), rx, tx, fast_config());
        let body = async { body(&modem, &handle).await };
        let out = match sleep {
            Some(wake) => {
                let pins = UartSleep::new(handle.dtr())
                    .wake_time(wake)
                    .idle_after(Duration::from_millis(40));
                let runner = runner.with_uart_sleep(pins);
                tokio::time::timeout(StdDuration::from_secs(60), select(runner.run(), body)).await
            }
            None => {
                tokio::time::timeout(StdDuration::from_secs(60), select(runner.run(), body)).await
            }
        };
        match out.expect("test body took more than 60 s") {
            Either::First(never) => never,
            Either::Second(t) => t,
        }
    })
}

#[test]
fn commands_sent_to_a_sleeping_module_arrive_after_a_wake() {
    with_sleepy_modem(mock(20), Some(Duration::from_millis(30)), async |m, h| {
        m.init().await.unwrap();
        m.power().set_uart_sleep(true).await.unwrap();
        assert_eq!(h.uart_sleep().mode, 1);
        for i in 0..5 {
            // Long enough for DTR to go high (40 ms idle) and the module to sleep (20 ms).
            Timer::after_millis(150).await;
            let s = h.uart_sleep();
            assert!(s.dtr_high && s.asleep, "round {i}: {s:?}");
            // Every command after a sleep gets through whole.
            m.network().signal().await.unwrap();
            assert_eq!(m.power().uart_sleep().await, Ok(1));
        }
        let s = h.uart_sleep();
        assert_eq!(s.dropped_bytes, 0, "{s:?}");
        assert!(s.sleeps >= 5 && s.dtr_falls >= 5, "{s:?}");
        // Idle again: DTR ends high, and the module sleeps.
        Timer::after_millis(150).await;
        let s = h.uart_sleep();
        assert!(s.dtr_high && s.asleep, "{s:?}");
    });
}

#[test]
fn without_dtr_uart_sleep_is_refused_and_a_sleeping_module_loses_commands() {
    with_sleepy_modem(mock(20), None, async |m, h| {
        m.init().await.unwrap();
        let before = h.commands().len();
        // No DTR given to the runner: refused, nothing sent.
        assert_eq!(
            m.power().set_uart_sleep(true).await,
            Err(Error::InvalidState)
        );
        assert_eq!(h.commands().len(), before);
        // Sent anyway (the low-level way): the module sleeps with DTR open and drops the next
        // command, which times out.
        m.send(&SetUartSleep { enable: true }).await.unwrap();
        Timer::after_millis(100).await;
        assert!(h.uart_sleep().asleep);
        assert!(m.network().signal().await.is_err());
        assert!(h.uart_sleep().dropped_bytes > 0);
    });
}

#[test]
fn a_wake_shorter_than_the_modules_loses_bytes() {
    // The module needs 60 ms after DTR falls; the driver waits 1 ms: the mock drops the start
    // of the command (which shows that the wake-up wait is what makes the first test pass).
    with_sleepy_modem(mock(60), Some(Duration::from_millis(1)), async |m, h| {
        m.init().await.unwrap();
        m.power().set_uart_sleep(true).await.unwrap();
        Timer::after_millis(150).await;
        assert!(h.uart_sleep().asleep);
        let _ = m.network().signal().await;
        assert!(h.uart_sleep().dropped_bytes > 0, "{:?}", h.uart_sleep());
    });
}

#[test]
fn dtr_is_released_when_the_runner_is_dropped() {
    let (rx, tx, handle) = mock(20).spawn();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (runner, modem) = asynch::new(resources(), rx, tx, fast_config());
        let runner = runner
            .with_uart_sleep(UartSleep::new(handle.dtr()).idle_after(Duration::from_secs(3600)));
        let body = async {
            modem.init().await.unwrap();
            // A write pulled DTR low, and an hour of idle time keeps it low while running.
            assert!(!handle.uart_sleep().dtr_high);
        };
        match select(runner.run(), body).await {
            Either::First(never) => never,
            Either::Second(()) => {}
        }
        // The runner's future (and its UartSleep) is gone: DTR is high again.
        assert!(handle.uart_sleep().dtr_high);
    });
}

#[test]
fn an_ri_pulse_wakes_the_module_and_dtr_goes_high_again() {
    let (rx, tx, handle) = mock(20).spawn();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (runner, modem) = asynch::new(resources(), rx, tx, fast_config());
        let pins = UartSleep::with_ri(handle.dtr(), handle.ri())
            .wake_time(Duration::from_millis(30))
            .idle_after(Duration::from_millis(40));
        let runner = runner.with_uart_sleep(pins);
        let body = async {
            modem.init().await.unwrap();
            modem.power().set_uart_sleep(true).await.unwrap();
            Timer::after_millis(150).await;
            let before = handle.uart_sleep();
            assert!(before.dtr_high && before.asleep, "{before:?}");
            // A URC while the module sleeps: RI pulses, the runner pulls DTR low with no write.
            handle.inject_urc("+CTZV: \"+32\"");
            let mut woke = false;
            for _ in 0..100 {
                Timer::after_millis(2).await;
                let s = handle.uart_sleep();
                if !s.dtr_high {
                    woke = true;
                    break;
                }
            }
            assert!(
                woke,
                "RI did not wake the module: {:?}",
                handle.uart_sleep()
            );
            let s = handle.uart_sleep();
            assert_eq!(s.dtr_falls, before.dtr_falls + 1, "{s:?}");
            assert!(s.ri_pulses > before.ri_pulses);
            // Nothing to do after it: DTR high again once idle, and nothing was lost.
            Timer::after_millis(150).await;
            let s = handle.uart_sleep();
            assert!(s.dtr_high && s.asleep, "{s:?}");
            assert_eq!(s.dropped_bytes, 0);
            modem.network().signal().await.unwrap();
        };
        match select(runner.run(), body).await {
            Either::First(never) => never,
            Either::Second(()) => {}
        }
    });
}
