//! A battery sensor in PSM: wake every 15 minutes, publish one QoS 1 reading, take any
//! downlink, sleep. The application is `app.rs` next to this file (`tests/power_day.rs` runs
//! the same code for 24 hours against mosquitto and checks that every reading arrives once).
//!
//! ```text
//! cargo run --example sensor_psm --features mqtt [-- --wakes 8]
//! ```
//!
//! needs nothing but Rust: an MQTT 5 broker (rumqttd, TLS with client certificates) on
//! 127.0.0.1, a simulated BG95 whose TLS sockets reach it, and the driver, in this process.
//! The 15-minute sleep is skipped in the simulated modem's virtual clock
//! (`ModemHandle::advance`); on a board it is `embassy_time::Timer::after(app::PERIOD)` with the
//! MCU in its low-power mode, and the pins are the board's PWRKEY (`quectel::asynch::PowerPins`).
//! At the end the example prints how the modem spent the time (the mock's ledger) and the
//! charge that makes per day with the BG95 current table (see `docs/power.md`).

use std::net::SocketAddr;
use std::process::exit;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use embassy_futures::select::{Either, select};
use quectel::asynch::{self, Apn, Config, ControlPins, Resources, TlsConfig};
use quectel::mqtt::{Mqtt, MqttConfig, QoS, Transport};
use quectel_mock::peers::TestPki;
use quectel_mock::{CurrentTable, MockModem, Model, ModemHandle};

mod app;
#[path = "../common/broker.rs"]
mod broker;
use broker::start_broker;

/// The simulated modem's PWRKEY: a press reaches the mock at once.
struct SimulatedPwrkey(Arc<ModemHandle>);

impl ControlPins for SimulatedPwrkey {
    fn present(&self) -> bool {
        true
    }
    async fn reset(&mut self) -> bool {
        self.0.reboot();
        true
    }
    async fn wake(&mut self) -> bool {
        self.0.pwrkey();
        true
    }
}

fn main() {
    let mut wakes = 8u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--wakes", Some(n)) => wakes = n,
            _ => {
                eprintln!("usage: cargo run --example sensor_psm --features mqtt [-- --wakes N]");
                exit(2)
            }
        }
    }
    let pki = TestPki::generate();
    let dir = std::env::temp_dir().join(format!("quectel-sensor-psm-{}", std::process::id()));
    let result = start_broker(&pki, &dir).and_then(|(addr, _tx, _rx)| run(&pki, addr, wakes));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        eprintln!("error: {e}");
        exit(1)
    }
}

fn run(pki: &TestPki, addr: SocketAddr, wakes: u32) -> Result<(), String> {
    let (rx, tx, end) = quectel_mock::duplex();
    let handle = Arc::new(
        MockModem::new(Model::Bg95)
            .search_time(StdDuration::from_millis(50))
            .spawn_on(end),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let resources: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let h = handle.clone();
    rt.block_on(async move {
        let (runner, modem) = asynch::new(resources, rx, tx, Config::default());
        let runner = runner.with_pins(SimulatedPwrkey(h.clone()));
        let body = async {
            let id = modem.init().await.map_err(|e| format!("start-up: {e}"))?;
            println!("modem: Quectel {} ({})", id.model_name, id.revision);
            modem
                .power()
                .set_psm(app::PERIODIC_TAU, app::ACTIVE_TIME)
                .await
                .map_err(|e| format!("AT+CPSMS: {e}"))?;
            let tls = TlsConfig::new(pki.ca_pem.as_bytes()).with_client_identity(
                pki.client_cert_pem.as_bytes(),
                pki.client_key_pem.as_bytes(),
            );
            let mut cfg = MqttConfig::new(
                "127.0.0.1",
                addr.port(),
                "sensor-1",
                Transport::ModemTls { ssl_ctx: 1, tls },
                Apn::new("internet"),
            );
            cfg.session_expiry_s = app::SESSION_EXPIRY_S;
            let mut buf = [0u8; 4096];
            let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).map_err(|e| e.to_string())?;
            mqtt.subscribe_on_connect("sensor-1/cmd", QoS::AtLeastOnce)
                .map_err(|e| e.to_string())?;
            let mut sensor = app::Sensor::default();
            for wake in 0..wakes {
                let t = Instant::now();
                let out = sensor.wake(&modem, &mut mqtt, "sensor-1/readings").await;
                println!(
                    "wake {wake:3}: readings {:?} sent, {} downlink(s), session resumed: {}, \
                     modem boots {} / PSM wakes {}{}",
                    out.delivered,
                    out.downlinks.len(),
                    out.resumed,
                    modem.boots(),
                    modem.wakes(),
                    out.error
                        .map(|e| format!(", error: {e}"))
                        .unwrap_or_default()
                );
                // Sleep: on a board, Timer::after(app::PERIOD - awake); here the modem's clock
                // skips it (PSM POWER DOWN comes after the active time).
                let awake = StdDuration::from_millis(t.elapsed().as_millis() as u64);
                h.advance(StdDuration::from_secs(app::PERIOD.as_secs()).saturating_sub(awake));
                let _ = modem
                    .wait_for_state(embassy_time::Duration::from_secs(2), |s| {
                        s.psm_asleep.then_some(())
                    })
                    .await;
            }
            Ok::<(), String>(())
        };
        match select(runner.run(), body).await {
            Either::First(never) => never,
            Either::Second(r) => r,
        }
    })?;
    let p = handle.state().power;
    let l = p.ledger;
    let table = CurrentTable::of(Model::Bg95);
    println!(
        "modem time: {:.1} h in PSM, {:.0} s idle, {:.0} s connected, {:.1} s active ({} PSM entries)",
        l.psm.as_secs_f64() / 3600.0,
        l.idle.as_secs_f64(),
        l.connected.as_secs_f64(),
        l.active.as_secs_f64(),
        p.psm_entries
    );
    println!(
        "charge: {:.2} mAh/day with the BG95 table (figures UNCONFIRMED, see docs/power.md)",
        l.mah_per_day(&table)
    );
    Ok(())
}
