//! 24 hours of a battery sensor in virtual time: the application of `examples/sensor_psm`
//! wakes every 15 minutes, publishes one QoS 1 reading through the mock BG95 to mosquitto
//! (AWS-like: mutual TLS, per-thing ACL, persistence on), takes any downlink and sleeps in PSM.
//! The broker is down for two wakes in the middle of the day (stopped and started again with
//! its persistent store). Every reading arrives exactly once, none is lost, the MQTT session is
//! resumed after every wake, and the modem spends the day in PSM.
//!
//! Virtual time: the 15-minute sleep is `ModemHandle::advance` (the modem's clock skips it at
//! once, taking PSM entry and the ledger with it); everything else runs in wall time. The
//! broker and the driver run in wall time only: the session expiry (1 h) is therefore not
//! exercised by the sleep here, only asserted to cover it.
//!
//! `QUECTEL_POWER_DAY=full` runs 7 days instead of one. `QUECTEL_POWER_DOC=<path>` writes the
//! measured budget there as Markdown (`docs/power.md` is made that way, see its header).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant};

use embassy_time::Duration;
use quectel::asynch::{Apn, Config, Resources, TlsConfig};
use quectel::mqtt::{Mqtt, MqttConfig, QoS, Transport};
use quectel_mock::{CurrentTable, Ledger, MockModem, Model as MockModel, RRC_TAIL};
use support::broker::{Access, Broker, BrokerOptions, SubOptions, Subscriber};

#[path = "../examples/sensor_psm/app.rs"]
mod app;

const IMEI: &str = "861234567890123";
const THING: &str = "thing-0001";
const UP: &str = "thing-0001/readings";
const DOWN: &str = "thing-0001/cmd";

fn config() -> Config {
    Config {
        command_gap: Duration::from_millis(1),
        ..support::config()
    }
}

/// What one day costs, measured over the mock.
struct Measured {
    wakes: u32,
    ledger: Ledger,
    commands: usize,
    uart_in: u64,
    uart_out: u64,
    wall: StdDuration,
}

#[test]
fn a_day_of_readings_in_psm_arrives_exactly_once() {
    let days: u32 = match std::env::var("QUECTEL_POWER_DAY").as_deref() {
        Ok("full") => 7,
        _ => 1,
    };
    let wakes_total = std::env::var("QUECTEL_POWER_WAKES")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(days * 96);
    let broker = Broker::start(BrokerOptions::default().persistence(true).grant(
        THING,
        Access::ReadWrite,
        "thing-0001/#",
    ));
    let device = broker.client(THING);
    let observer = broker.observer();
    let cloud = Subscriber::start_with(
        &broker,
        &observer,
        &[UP],
        SubOptions {
            client_id: Some("cloud-1".into()),
            persistent: true,
            ..SubOptions::default()
        },
    );
    let ca = broker.pki().ca_pem.clone();
    let port = broker.port();
    let started = Instant::now();
    // The broker accepts the device's certificate: no post-handshake alert to wait for
    // (300 ms of wall time per wake otherwise).
    let mock = MockModem::new(MockModel::Bg95)
        .imei(IMEI)
        .search_time(StdDuration::from_millis(20))
        .tls_alert_wait(StdDuration::from_millis(20));
    let res: &'static mut Resources<2048, 2, 4096> = Box::leak(Box::new(Resources::new()));
    let (measured, downlinks, resumed, failed) =
        support::with_pins_in(res, config(), mock, true, async |m, h, presses| {
            m.init().await.unwrap();
            m.power()
                .set_psm(app::PERIODIC_TAU, app::ACTIVE_TIME)
                .await
                .unwrap();
            let tls = TlsConfig::new(ca.as_bytes())
                .with_client_identity(device.cert_pem.as_bytes(), device.key_pem.as_bytes());
            let mut cfg = MqttConfig::new(
                "localhost",
                port,
                THING,
                Transport::ModemTls { ssl_ctx: 1, tls },
                Apn::new("internet"),
            );
            cfg.session_expiry_s = app::SESSION_EXPIRY_S;
            cfg.backoff_min = Duration::from_millis(20);
            cfg.backoff_max = Duration::from_millis(100);
            assert!(
                u64::from(cfg.session_expiry_s) > app::PERIOD.as_secs() * 2,
                "the session must outlive the sleep"
            );
            let mut buf = [0u8; 4096];
            let mut mqtt = Mqtt::new(cfg, &mut buf, 2048).unwrap();
            mqtt.subscribe_on_connect(DOWN, QoS::AtLeastOnce).unwrap();
            let mut sensor = app::Sensor::default();
            let mut downlinks = Vec::new();
            let mut resumed = 0u32;
            let mut failed = Vec::new();
            let mid = wakes_total / 2;
            let before = h.state().power;
            let commands_before = h.commands().len();
            for wake in 0..wakes_total {
                if wake == mid {
                    // The broker goes down while the device sleeps, and stays down through
                    // two wakes.
                    broker.stop();
                }
                if wake == mid + 2 {
                    broker.start_again();
                }
                if wake == 10 || wake == mid + 5 {
                    // A downlink while the device sleeps: queued in its session.
                    let p = broker.publish(&observer, DOWN, format!("cmd-{wake}").as_bytes(), 1);
                    assert!(p.ok(), "{:?}", p.run.stderr);
                }
                let t = Instant::now();
                let out = sensor.wake(m, &mut mqtt, UP).await;
                if out.resumed {
                    resumed += 1;
                }
                if let Some(e) = out.error {
                    failed.push((wake, e));
                }
                if std::env::var_os("QUECTEL_POWER_TRACE").is_some() {
                    eprintln!(
                        "wake {wake}: {:?} resumed={} error={:?} delivered={:?}",
                        t.elapsed(),
                        out.resumed,
                        out.error,
                        out.delivered
                    );
                }
                downlinks.extend(out.downlinks);
                // Sleep: the rest of the period in the modem's virtual clock.
                let awake = StdDuration::from_millis(t.elapsed().as_millis() as u64);
                h.advance(StdDuration::from_secs(app::PERIOD.as_secs()).saturating_sub(awake));
                // The modem printed `PSM POWER DOWN` during the skip; the runner reads it as
                // soon as it runs again (a real application wakes 15 minutes later).
                assert!(
                    h.state().power.asleep,
                    "wake {wake}: the modem did not enter PSM"
                );
                m.wait_for_state(Duration::from_secs(2), |s| s.psm_asleep.then_some(()))
                    .await
                    .expect("PSM POWER DOWN reaches the driver");
            }
            assert_eq!(sensor.queued(), 0, "readings left undelivered");
            let after = h.state().power;
            assert_eq!(
                presses.load(std::sync::atomic::Ordering::SeqCst),
                wakes_total - 1,
                "one PWRKEY press per wake after the first"
            );
            assert_eq!(m.boots(), 1, "PSM wakes are not reboots");
            let ledger = Ledger {
                off: after.ledger.off - before.ledger.off,
                psm: after.ledger.psm - before.ledger.psm,
                idle: after.ledger.idle - before.ledger.idle,
                connected: after.ledger.connected - before.ledger.connected,
                active: after.ledger.active - before.ledger.active,
            };
            (
                Measured {
                    wakes: wakes_total,
                    ledger,
                    commands: h.commands().len() - commands_before,
                    uart_in: after.uart_in - before.uart_in,
                    uart_out: after.uart_out - before.uart_out,
                    wall: StdDuration::ZERO,
                },
                downlinks,
                resumed,
                failed,
            )
        });
    let mut measured = measured;
    measured.wall = started.elapsed();
    // Every reading exactly once.
    let got = cloud.wait_for(wakes_total as usize, StdDuration::from_secs(20));
    let mut seen: BTreeMap<u32, u32> = BTreeMap::new();
    for (topic, payload) in &got {
        assert_eq!(topic, UP);
        let text = String::from_utf8_lossy(payload);
        let seq: u32 = text
            .split("\"seq\":")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad reading {text}"));
        *seen.entry(seq).or_default() += 1;
    }
    let lost: Vec<u32> = (0..wakes_total).filter(|s| !seen.contains_key(s)).collect();
    let twice: Vec<u32> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, _)| *s)
        .collect();
    assert!(lost.is_empty(), "lost readings: {lost:?}");
    assert!(
        twice.is_empty(),
        "readings delivered more than once: {twice:?}"
    );
    assert_eq!(seen.len(), wakes_total as usize);
    // The two wakes with the broker down failed, and only those.
    assert_eq!(failed.len(), 2, "{failed:?}");
    // The session was resumed on every connection after the first (the broker's persistent
    // store kept it through the restart): no re-subscription needed.
    let connections = wakes_total - 2;
    assert_eq!(resumed, connections - 1);
    // Both downlinks sent while the device slept arrived.
    assert_eq!(
        downlinks,
        vec![
            b"cmd-10".to_vec(),
            format!("cmd-{}", wakes_total / 2 + 5).into_bytes()
        ]
    );
    // The modem slept almost all day.
    let day = measured.ledger.total();
    assert!(
        measured.ledger.psm.as_secs_f64() > 0.9 * day.as_secs_f64(),
        "{:?}",
        measured.ledger
    );
    assert!(
        measured.wall < StdDuration::from_secs(60 * u64::from(days)),
        "took {:?}",
        measured.wall
    );
    let budget = Budget::of(&measured, MockModel::Bg95);
    assert!(
        budget.always_on >= 10.0 * budget.psm,
        "PSM {:.2} mAh/day vs always-on {:.2}",
        budget.psm,
        budget.always_on
    );
    if let Ok(path) = std::env::var("QUECTEL_POWER_DOC") {
        std::fs::write(&path, budget.markdown(&measured)).unwrap();
        eprintln!("wrote {path}");
        // The Chinese page next to it: docs/power.md -> docs/zh/power.md.
        let path = std::path::Path::new(&path);
        if let Some(dir) = path.parent() {
            let zh = dir.join("zh").join(path.file_name().unwrap());
            if zh.parent().is_some_and(|d| d.is_dir()) {
                std::fs::write(&zh, budget.markdown_zh(&measured)).unwrap();
                eprintln!("wrote {}", zh.display());
            }
        }
    }
}

/// Charge per day for the three ways of running the same sensor.
struct Budget {
    table: CurrentTable,
    model: MockModel,
    /// PSM, as measured: the ledger's states times the table.
    psm: f64,
    /// eDRX 81.92 s instead of PSM: the idle time at the eDRX average current.
    edrx: f64,
    /// Always on: no PSM, no eDRX, no UART sleep — idle with the UART awake.
    always_on: f64,
    /// Always on with UART sleep and DRX 1.28 s (no PSM).
    drx_sleep: f64,
}

impl Budget {
    fn of(m: &Measured, model: MockModel) -> Budget {
        let table = CurrentTable::of(model);
        let days = m.ledger.total().as_secs_f64() / 86_400.0;
        let per_day = |ua_h: f64| ua_h / 1000.0 / days;
        let h = |d: StdDuration| d.as_secs_f64() / 3600.0;
        let busy =
            h(m.ledger.active) * table.active_ua + h(m.ledger.connected) * table.connected_ua;
        let rest = h(m.ledger.psm + m.ledger.idle + m.ledger.off);
        let psm = m.ledger.mah_per_day(&table);
        let edrx = per_day(busy + rest * table.edrx_idle_ua(StdDuration::from_millis(81_920)));
        let always_on = per_day(busy + rest * table.idle_awake_ua);
        let drx_sleep = per_day(busy + rest * table.idle_ua);
        Budget {
            table,
            model,
            psm,
            edrx,
            always_on,
            drx_sleep,
        }
    }

    fn markdown(&self, m: &Measured) -> String {
        let per_wake = |x: f64| x / f64::from(m.wakes);
        let awake = m.ledger.awake();
        let days = m.ledger.total().as_secs_f64() / 86_400.0;
        let t = &self.table;
        format!(
            "# Power budget of the 15-minute sensor\n\
\n\
*Generated by `QUECTEL_POWER_DOC=docs/power.md cargo xtask test --test power_day` (or \
`cargo test --features quectel/mqtt --test power_day` with mosquitto installed); do not edit \
by hand.* The run: `examples/sensor_psm` (one QoS 1 reading every 15 minutes over MQTT 5 and \
modem TLS, downlinks taken, PSM in between) on the mock {model:?} for {days:.0} day(s) of \
virtual time, against mosquitto set up like AWS IoT Core, with the broker stopped for two \
wakes in the middle. Wall time of the run: {wall:.1} s.\n\
\n\
## Measured per day\n\
\n\
| | per day | per wake |\n\
|---|---:|---:|\n\
| wakes | {wakes_d:.0} | 1 |\n\
| modem awake (not in PSM) | {awake_s:.0} s | {awake_w:.1} s |\n\
| of which active (AT traffic, data) | {active_s:.1} s | {active_w:.2} s |\n\
| of which RRC connected tail ({tail} s, network setting, assumed) | {conn_s:.0} s | {conn_w:.1} s |\n\
| of which idle until PSM (T3324 = {t3324} s) | {idle_s:.0} s | {idle_w:.1} s |\n\
| in PSM | {psm_h:.2} h | |\n\
| AT command lines (round trips) | {cmds_d:.0} | {cmds_w:.1} |\n\
| UART bytes to the modem | {in_d:.0} | {in_w:.0} |\n\
| UART bytes from the modem | {out_d:.0} | {out_w:.0} |\n\
\n\
\"Active\" is the wall time the driver and the mock needed; a real module over a real network \
takes longer (TLS handshake round trips over LTE-M: 1–3 s), which the connected tail \
dominates anyway.\n\
\n\
## Estimated charge per day\n\
\n\
Currents ({model:?}, µA; every figure UNCONFIRMED — see `CurrentTable` in \
`mock-modem/src/modem/power.rs` for the documents, which the project could not read the rows \
of): PSM {psm_ua}, idle DRX 1.28 s with UART sleep {idle_ua}, idle with the UART awake \
{idle_awake_ua}, eDRX floor {floor_ua}, RRC connected {conn_ua}, active {active_ua}.\n\
\n\
| mode | mAh/day | vs PSM | days on 2 400 mAh (AA lithium pair) |\n\
|---|---:|---:|---:|\n\
| PSM (measured ledger) | {psm:.2} | 1× | {psm_days:.0} |\n\
| eDRX 81.92 s instead of PSM (estimate) | {edrx:.2} | {edrx_x:.1}× | {edrx_days:.0} |\n\
| always on with UART sleep, DRX 1.28 s | {drx:.2} | {drx_x:.1}× | {drx_days:.0} |\n\
| always on, no sleep of any kind | {on:.2} | {on_x:.1}× | {on_days:.0} |\n\
\n\
The wakes themselves (active plus the connected tail) cost the same in every row; what PSM \
saves is the idle current between them. PSM is {on_x:.0}× lower than always-on here, and \
{drx_x:.1}× lower than a module that sleeps its UART but stays reachable. The tail of RRC \
connected mode after each reading is most of what PSM still spends: a network that releases \
the connection sooner (release assistance) lowers it further.\n\
\n\
## Next to the vendors' and peers' figures\n\
\n\
- Quectel's BG95xA answer on its forum (thread 16202): after `PSM POWER DOWN` the module draws \
about 30 µA for a few seconds while it saves its state, then about 3 µA — the PSM floor \
used here (the few seconds at 30 µA are 0.01 mAh/day at 96 wakes).\n\
- Quectel's BG96/BG95 PSM application notes describe the same cycle (active time, then PSM, \
wake by PWRKEY/PON_TRIG or T3412) without a daily figure.\n\
- Peers: TinyGSM offers only `AT+QSCLK` (UART sleep: the \"always on with UART sleep\" row); \
FreeRTOS-Cellular-Interface reports `PSM POWER DOWN`/`RDY` and leaves surviving them to the \
application — this driver resumes by itself (see `docs/power-saving.md`).\n",
            model = self.model,
            days = days,
            wall = m.wall.as_secs_f64(),
            wakes_d = f64::from(m.wakes) / days,
            awake_s = awake.as_secs_f64() / days,
            awake_w = per_wake(awake.as_secs_f64()),
            active_s = m.ledger.active.as_secs_f64() / days,
            active_w = per_wake(m.ledger.active.as_secs_f64()),
            tail = RRC_TAIL.as_secs(),
            conn_s = m.ledger.connected.as_secs_f64() / days,
            conn_w = per_wake(m.ledger.connected.as_secs_f64()),
            t3324 = app::ACTIVE_TIME.as_secs(),
            idle_s = m.ledger.idle.as_secs_f64() / days,
            idle_w = per_wake(m.ledger.idle.as_secs_f64()),
            psm_h = m.ledger.psm.as_secs_f64() / 3600.0 / days,
            cmds_d = m.commands as f64 / days,
            cmds_w = per_wake(m.commands as f64),
            in_d = m.uart_in as f64 / days,
            in_w = per_wake(m.uart_in as f64),
            out_d = m.uart_out as f64 / days,
            out_w = per_wake(m.uart_out as f64),
            psm_ua = t.psm_ua,
            idle_ua = t.idle_ua,
            idle_awake_ua = t.idle_awake_ua,
            floor_ua = t.edrx_floor_ua,
            conn_ua = t.connected_ua,
            active_ua = t.active_ua,
            psm = self.psm,
            psm_days = 2400.0 / self.psm,
            edrx = self.edrx,
            edrx_x = self.edrx / self.psm,
            edrx_days = 2400.0 / self.edrx,
            drx = self.drx_sleep,
            drx_x = self.drx_sleep / self.psm,
            drx_days = 2400.0 / self.drx_sleep,
            on = self.always_on,
            on_x = self.always_on / self.psm,
            on_days = 2400.0 / self.always_on,
        )
    }

    fn markdown_zh(&self, m: &Measured) -> String {
        let per_wake = |x: f64| x / f64::from(m.wakes);
        let awake = m.ledger.awake();
        let days = m.ledger.total().as_secs_f64() / 86_400.0;
        let t = &self.table;
        format!(
            "# 15 分钟传感器的功耗预算\n\
\n\
*由 `QUECTEL_POWER_DOC=docs/power.md cargo xtask test --test power_day` 生成（同时写出本页），\
请勿手工编辑。* 运行内容：`examples/sensor_psm`（每 15 分钟通过 MQTT 5 和模组 TLS 发布一条 QoS 1 \
读数、接收下行，其间进入 PSM）在模拟 {model:?} 上运行 {days:.0} 天虚拟时间，broker 为按 AWS IoT \
Core 方式配置的 mosquitto，其间有两次唤醒时 broker 处于停止状态。本次运行的实际耗时：{wall:.1} 秒。\n\
\n\
## 每天的测量值\n\
\n\
| | 每天 | 每次唤醒 |\n\
|---|---:|---:|\n\
| 唤醒次数 | {wakes_d:.0} | 1 |\n\
| 模组清醒（不在 PSM）| {awake_s:.0} 秒 | {awake_w:.1} 秒 |\n\
| 其中活动（AT 通信、数据）| {active_s:.1} 秒 | {active_w:.2} 秒 |\n\
| 其中 RRC 连接尾（{tail} 秒，网络设置，假设值）| {conn_s:.0} 秒 | {conn_w:.1} 秒 |\n\
| 其中进入 PSM 前的空闲（T3324 = {t3324} 秒）| {idle_s:.0} 秒 | {idle_w:.1} 秒 |\n\
| 处于 PSM | {psm_h:.2} 小时 | |\n\
| AT 命令行（往返次数）| {cmds_d:.0} | {cmds_w:.1} |\n\
| 发往模组的 UART 字节 | {in_d:.0} | {in_w:.0} |\n\
| 模组发出的 UART 字节 | {out_d:.0} | {out_w:.0} |\n\
\n\
“活动”是驱动和模拟器实际花费的时间；真实模组在真实网络上需要更久（LTE-M 上的 TLS 握手往返：1–3 秒），\
但无论如何连接尾占主要部分。\n\
\n\
## 每天的估算耗电\n\
\n\
电流（{model:?}，µA；所有数值均未确认——文档出处见 `mock-modem/src/modem/power.rs` 中的 \
`CurrentTable`，本项目未能读到其中的表格行）：PSM {psm_ua}，UART 休眠时 DRX 1.28 秒空闲 {idle_ua}，\
UART 不休眠时空闲 {idle_awake_ua}，eDRX 底电流 {floor_ua}，RRC 连接 {conn_ua}，活动 {active_ua}。\n\
\n\
| 模式 | mAh/天 | 相对 PSM | 2 400 mAh（两节 AA 锂电池）可用天数 |\n\
|---|---:|---:|---:|\n\
| PSM（实测时间分布）| {psm:.2} | 1× | {psm_days:.0} |\n\
| 用 eDRX 81.92 秒代替 PSM（估算）| {edrx:.2} | {edrx_x:.1}× | {edrx_days:.0} |\n\
| 常开，UART 休眠，DRX 1.28 秒 | {drx:.2} | {drx_x:.1}× | {drx_days:.0} |\n\
| 常开，不做任何休眠 | {on:.2} | {on_x:.1}× | {on_days:.0} |\n\
\n\
每次唤醒本身（活动加连接尾）在每一行中耗电相同；PSM 节省的是两次唤醒之间的空闲电流。本例中 PSM 比常开\
低 {on_x:.0} 倍，比只让 UART 休眠但保持可达的模组低 {drx_x:.1} 倍。PSM 仍然花费的大部分是每次读数后 \
RRC 连接态的尾巴：网络更早释放连接（release assistance）可以进一步降低。\n\
\n\
## 与厂商和同类项目的数据对照\n\
\n\
- 移远论坛对 BG95xA 的回答（帖子 16202）：`PSM POWER DOWN` 之后模组保存状态的几秒内约 30 µA，\
之后约 3 µA——即本页使用的 PSM 底电流（96 次唤醒时这几秒的 30 µA 每天约 0.01 mAh）。\n\
- 移远 BG96/BG95 PSM 应用笔记描述了相同的周期（激活时间，然后 PSM，由 PWRKEY/PON_TRIG 或 T3412 \
唤醒），但没有给出每天的数值。\n\
- 同类项目：TinyGSM 只提供 `AT+QSCLK`（UART 休眠，即“常开，UART 休眠”一行）；FreeRTOS-Cellular-Interface \
上报 `PSM POWER DOWN`/`RDY`，但让应用自行处理唤醒——本驱动自动恢复（见 `docs/zh/power-saving.md`）。\n",
            model = self.model,
            days = days,
            wall = m.wall.as_secs_f64(),
            wakes_d = f64::from(m.wakes) / days,
            awake_s = awake.as_secs_f64() / days,
            awake_w = per_wake(awake.as_secs_f64()),
            active_s = m.ledger.active.as_secs_f64() / days,
            active_w = per_wake(m.ledger.active.as_secs_f64()),
            tail = RRC_TAIL.as_secs(),
            conn_s = m.ledger.connected.as_secs_f64() / days,
            conn_w = per_wake(m.ledger.connected.as_secs_f64()),
            t3324 = app::ACTIVE_TIME.as_secs(),
            idle_s = m.ledger.idle.as_secs_f64() / days,
            idle_w = per_wake(m.ledger.idle.as_secs_f64()),
            psm_h = m.ledger.psm.as_secs_f64() / 3600.0 / days,
            cmds_d = m.commands as f64 / days,
            cmds_w = per_wake(m.commands as f64),
            in_d = m.uart_in as f64 / days,
            in_w = per_wake(m.uart_in as f64),
            out_d = m.uart_out as f64 / days,
            out_w = per_wake(m.uart_out as f64),
            psm_ua = t.psm_ua,
            idle_ua = t.idle_ua,
            idle_awake_ua = t.idle_awake_ua,
            floor_ua = t.edrx_floor_ua,
            conn_ua = t.connected_ua,
            active_ua = t.active_ua,
            psm = self.psm,
            psm_days = 2400.0 / self.psm,
            edrx = self.edrx,
            edrx_x = self.edrx / self.psm,
            edrx_days = 2400.0 / self.edrx,
            drx = self.drx_sleep,
            drx_x = self.drx_sleep / self.psm,
            drx_days = 2400.0 / self.drx_sleep,
            on = self.always_on,
            on_x = self.always_on / self.psm,
            on_days = 2400.0 / self.always_on,
        )
    }
}
