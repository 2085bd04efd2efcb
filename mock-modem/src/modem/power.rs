//! PSM in virtual time, and the charge ledger.
//!
//! # The clock
//!
//! The modem thread runs in real time; a device that sleeps 15 minutes between readings must
//! not make a test wait 15 minutes. The mock therefore keeps a *virtual clock*: wall time while
//! the test runs, plus every stretch the test skipped with [`ModemHandle::advance`]
//! (`virtual = Instant::now() + skipped`). A skip is taken at once, event by event: the radio
//! connection's inactivity tail ends, the active time T3324 runs out (`PSM POWER DOWN`), the
//! periodic TAU wakes the module (`RDY`, then PSM again after T3324) — each at its virtual
//! instant, in order, with the URCs a real module prints at that moment. Nothing else is
//! simulated during a skip: the application is asleep too (that is where the sensor example
//! advances time: its "sleep 15 minutes" is one `advance` call).
//!
//! # PSM
//!
//! `AT+CPSMS=1,,,"<T3412>","<T3324>"` asks for PSM; the mock grants what was asked (or the
//! values of [`MockModem::psm_grant`]). Once the host has been silent for the radio tail plus
//! T3324 (virtual time), the module prints `PSM POWER DOWN`, closes its sockets (their peers
//! see the connection drop) and is unreachable: every byte sent to it is lost, it prints
//! nothing. It wakes on a PWRKEY press ([`ModemHandle::pwrkey`], which a test's PWRKEY
//! `OutputPin` calls) or when the periodic TAU expires, and prints `RDY` (and `APP RDY` on the
//! BG9x): echo, `AT+CMEE`, the registration URC settings, `AT+QCFG="psm/urc"` and the SSL
//! contexts are back to their power-on defaults; registration and the PDP contexts are kept.
//!
//! # The ledger
//!
//! Virtual time is booked per power state: `Off`, `Psm`, `Idle` (registered, paging with DRX),
//! `Connected` (the RRC inactivity tail after traffic, no data) and `Active` (wall time while
//! awake: the host is talking to the module and the module to the network). The charge is the
//! time per state times the model's current in that state ([`CurrentTable`]).

use std::time::{Duration, Instant};

use super::{Engine, Model};
use crate::link::Link;

/// How long the radio connection stays up after the last traffic before the module goes idle
/// (the network's RRC inactivity timer; operators set 10–20 s — an assumption of this model,
/// not a module figure). T3324 starts when it ends.
pub const RRC_TAIL: Duration = Duration::from_secs(10);

/// A power state of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    /// Switched off (before the first boot, between a power-down and the next boot).
    Off,
    /// In PSM: registered, unreachable.
    Psm,
    /// Idle: registered, listening for paging (DRX 1.28 s).
    Idle,
    /// RRC connected after traffic, no data (the inactivity tail).
    Connected,
    /// Awake in wall time: commands and data.
    Active,
}

/// Time booked per power state, in virtual time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Switched off.
    pub off: Duration,
    /// In PSM.
    pub psm: Duration,
    /// Idle (DRX).
    pub idle: Duration,
    /// RRC connected, no data.
    pub connected: Duration,
    /// Active (wall time while awake).
    pub active: Duration,
}

impl Ledger {
    fn add(&mut self, state: PowerState, d: Duration) {
        let slot = match state {
            PowerState::Off => &mut self.off,
            PowerState::Psm => &mut self.psm,
            PowerState::Idle => &mut self.idle,
            PowerState::Connected => &mut self.connected,
            PowerState::Active => &mut self.active,
        };
        *slot += d;
    }

    /// All the time booked.
    pub fn total(&self) -> Duration {
        self.off + self.psm + self.idle + self.connected + self.active
    }

    /// Time the module was awake (not off, not in PSM).
    pub fn awake(&self) -> Duration {
        self.idle + self.connected + self.active
    }

    /// Charge drawn with `table`'s currents, in mAh.
    pub fn charge_mah(&self, table: &CurrentTable) -> f64 {
        let h = |d: Duration| d.as_secs_f64() / 3600.0;
        let ua = h(self.off) * table.off_ua
            + h(self.psm) * table.psm_ua
            + h(self.idle) * table.idle_ua
            + h(self.connected) * table.connected_ua
            + h(self.active) * table.active_ua;
        ua / 1000.0
    }

    /// [`Ledger::charge_mah`] scaled to one day of the booked time.
    pub fn mah_per_day(&self, table: &CurrentTable) -> f64 {
        let days = self.total().as_secs_f64() / 86_400.0;
        if days == 0.0 {
            0.0
        } else {
            self.charge_mah(table) / days
        }
    }
}

/// Typical currents (µA at 3.8 V VBAT) per power state, for one model.
///
/// Sources, and how sure the figures are: the hardware design manuals' "current consumption"
/// tables — *BG96 Hardware Design* V1.4 (2019-08-15) Table 34 "BG96 Current Consumption",
/// *BG95 Series Hardware Design* V1.3 (2021-01-08) §6 "Current Consumption", *BG77 Hardware
/// Design* V1.x §6. The search available to this project found these documents but **not the
/// rows of their tables**, so every figure below is marked `UNCONFIRMED`: PSM figures are the
/// order Quectel gives in its product briefs (BG96 ≈ 10 µA; BG95/BG77 ≈ 3 µA — a Quectel
/// forum answer confirms "after `PSM POWER DOWN` … the current will reduce to 3 µA" for the
/// BG95xA, forums.quectel.com thread 16202), the others are estimates for LTE-M at moderate
/// transmit power. Replace them with the table rows of the manual revision your module has;
/// the ledger (time per state) does not depend on them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurrentTable {
    /// Power-off leakage.
    pub off_ua: f64,
    /// PSM.
    pub psm_ua: f64,
    /// Idle with UART sleep (`AT+QSCLK=1`), DRX 1.28 s.
    pub idle_ua: f64,
    /// Idle with the UART awake (no sleep mode): what an always-on module that never sleeps
    /// draws between transfers.
    pub idle_awake_ua: f64,
    /// Sleep floor between eDRX paging occasions.
    pub edrx_floor_ua: f64,
    /// RRC connected, no data.
    pub connected_ua: f64,
    /// Transferring (LTE-M, moderate transmit power).
    pub active_ua: f64,
}

impl CurrentTable {
    /// The table of `model` (see the type's documentation for the sources; all UNCONFIRMED).
    pub fn of(model: Model) -> CurrentTable {
        match model {
            // BG96 HD V1.4 Table 34 (rows not retrieved): UNCONFIRMED.
            Model::Bg96 => CurrentTable {
                off_ua: 10.0,
                psm_ua: 10.0,
                idle_ua: 2_000.0,
                idle_awake_ua: 12_000.0,
                edrx_floor_ua: 200.0,
                connected_ua: 25_000.0,
                active_ua: 130_000.0,
            },
            // BG95 Series HD V1.3 §6 / BG77 HD §6 (rows not retrieved): UNCONFIRMED; PSM per
            // the Quectel forum answer cited above.
            Model::Bg95 | Model::Bg77 => CurrentTable {
                off_ua: 8.0,
                psm_ua: 3.3,
                idle_ua: 1_400.0,
                idle_awake_ua: 10_000.0,
                edrx_floor_ua: 30.0,
                connected_ua: 20_000.0,
                active_ua: 110_000.0,
            },
            // EC2x/EG91/EC600N (LTE Cat 1/4): no PSM in this driver's model table; estimates,
            // UNCONFIRMED.
            _ => CurrentTable {
                off_ua: 15.0,
                psm_ua: 3_000.0,
                idle_ua: 3_000.0,
                idle_awake_ua: 25_000.0,
                edrx_floor_ua: 3_000.0,
                connected_ua: 60_000.0,
                active_ua: 250_000.0,
            },
        }
    }

    /// Average idle current with eDRX of `cycle` (paging time window 1.28 s): the floor, plus
    /// the paging charge a DRX 1.28 s idle spends per 1.28 s, once per cycle.
    pub fn edrx_idle_ua(&self, cycle: Duration) -> f64 {
        let c = cycle.as_secs_f64().max(1.28);
        self.edrx_floor_ua + (self.idle_ua - self.edrx_floor_ua).max(0.0) * 1.28 / c
    }
}

/// What [`ModemState::power`](super::ModemState::power) reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PowerReport {
    /// In PSM now.
    pub asleep: bool,
    /// PSM entries (`PSM POWER DOWN` printed).
    pub psm_entries: u32,
    /// PSM wakes (`RDY` after PSM), by PWRKEY or by the periodic TAU.
    pub wakes: u32,
    /// Of those, wakes by the periodic TAU.
    pub tau_wakes: u32,
    /// Virtual time skipped so far ([`ModemHandle::advance`](super::ModemHandle::advance)).
    pub skipped: Duration,
    /// Time per power state.
    pub ledger: Ledger,
    /// Bytes the host sent (UART RX of the module).
    pub uart_in: u64,
    /// Bytes the module sent (UART TX).
    pub uart_out: u64,
    /// Bytes sent to the module while it was asleep, and lost.
    pub lost_in: u64,
    /// Requested (granted) PSM timers `(periodic TAU, active time)`; `None`: PSM off.
    pub psm: Option<(Duration, Duration)>,
}

/// The PSM side of the engine.
#[derive(Debug)]
pub(super) struct Psm {
    /// Timers granted: `(periodic TAU, T3324)`; `None`: PSM not requested.
    grant: Option<(Duration, Duration)>,
    /// Grant instead of the requested timers ([`MockModem::psm_grant`]).
    forced: Option<(Duration, Duration)>,
    /// `AT+QCFG="psm/urc",1` in force.
    urc: bool,
    skipped: Duration,
    /// Virtual instant of the last traffic.
    last_activity: Instant,
    /// Virtual instant the module entered PSM.
    slept_at: Option<Instant>,
    /// Virtual instant booked up to, and the state since then.
    booked_to: Instant,
    report: PowerReport,
}

impl Psm {
    pub(super) fn new(forced: Option<(Duration, Duration)>) -> Psm {
        let now = Instant::now();
        Psm {
            grant: None,
            forced,
            urc: false,
            skipped: Duration::ZERO,
            last_activity: now,
            slept_at: None,
            booked_to: now,
            report: PowerReport::default(),
        }
    }

    fn vnow(&self) -> Instant {
        Instant::now() + self.skipped
    }

    pub(super) fn asleep(&self) -> bool {
        self.slept_at.is_some()
    }
}

/// Parses a quoted 8-bit timer string.
fn bits(s: &str) -> Option<u8> {
    let s = s.trim().trim_matches('"');
    if s.len() != 8 {
        return None;
    }
    u8::from_str_radix(s, 2).ok()
}

fn timer3(octet: u8) -> Option<Duration> {
    let unit = match octet >> 5 {
        0b011 => 2,
        0b100 => 30,
        0b101 => 60,
        0b000 => 600,
        0b001 => 3_600,
        0b010 => 36_000,
        0b110 => 1_152_000,
        _ => return None,
    };
    Some(Duration::from_secs(u64::from(octet & 0x1f) * unit))
}

fn timer2(octet: u8) -> Option<Duration> {
    let unit = match octet >> 5 {
        0b000 => 2,
        0b111 => return None,
        0b010 => 360,
        _ => 60,
    };
    Some(Duration::from_secs(u64::from(octet & 0x1f) * unit))
}

/// The timer octet holding exactly `secs` with the first unit that can (`111` + 0 if none).
fn encode(secs: u64, units: &[(u8, u64)]) -> u8 {
    units
        .iter()
        .find(|(_, u)| secs.is_multiple_of(*u) && secs / u <= 31)
        .map_or(0b111_00000, |&(bits, u)| (bits << 5) | (secs / u) as u8)
}

impl Engine {
    /// Books the time since the last booking; awake wall time is `Active`, skipped time is
    /// split by [`Engine::psm_book_skip`].
    fn psm_book_wall(&mut self) {
        let now = self.psm.vnow();
        let d = now.saturating_duration_since(self.psm.booked_to);
        let state = if !self.powered && self.psm.slept_at.is_none() {
            PowerState::Off
        } else if self.psm.asleep() {
            PowerState::Psm
        } else {
            PowerState::Active
        };
        self.psm.report.ledger.add(state, d);
        self.psm.booked_to = now;
    }

    /// Books the virtual stretch `[from, to)` of a skip while awake: connected for the radio
    /// tail after the last traffic, idle after.
    fn psm_book_skip(&mut self, from: Instant, to: Instant) {
        if to <= from {
            return;
        }
        if !self.powered && !self.psm.asleep() {
            self.psm.report.ledger.add(PowerState::Off, to - from);
            return;
        }
        if self.psm.asleep() {
            self.psm.report.ledger.add(PowerState::Psm, to - from);
            return;
        }
        let tail_end = self.psm.last_activity + RRC_TAIL;
        let connected_to = tail_end.clamp(from, to);
        self.psm
            .report
            .ledger
            .add(PowerState::Connected, connected_to - from);
        self.psm
            .report
            .ledger
            .add(PowerState::Idle, to - connected_to);
    }

    /// Host bytes arrived (or the module sent some): traffic restarts the timers.
    pub(super) fn psm_activity(&mut self, bytes_in: usize) {
        if self.psm.asleep() {
            self.psm.report.lost_in += bytes_in as u64;
            return;
        }
        self.psm.report.uart_in += bytes_in as u64;
        self.psm.last_activity = self.psm.vnow();
    }

    /// Bytes the module writes.
    pub(super) fn psm_out(&mut self, n: usize) {
        self.psm.report.uart_out += n as u64;
    }

    /// When the module enters PSM if nothing happens first (virtual time).
    fn psm_due(&self) -> Option<Instant> {
        let (_, active) = self.psm.grant?;
        if self.psm.asleep() || !self.powered || !self.registered() {
            return None;
        }
        Some(self.psm.last_activity + RRC_TAIL + active)
    }

    /// When the periodic TAU wakes a sleeping module.
    fn tau_due(&self) -> Option<Instant> {
        let (tau, _) = self.psm.grant?;
        Some(self.psm.slept_at? + tau)
    }

    /// Called from the run loop: enters PSM when T3324 ran out in wall time, wakes on TAU.
    pub(super) fn psm_tick(&mut self, link: &mut dyn Link) {
        self.psm_book_wall();
        let now = self.psm.vnow();
        if self.psm_due().is_some_and(|t| t <= now) {
            self.enter_psm(link);
        } else if self.tau_due().is_some_and(|t| t <= now) {
            self.psm.report.tau_wakes += 1;
            self.wake_from_psm(link);
        }
    }

    fn enter_psm(&mut self, link: &mut dyn Link) {
        self.urc(link, "PSM POWER DOWN");
        self.psm.slept_at = Some(self.psm.vnow());
        self.psm.report.psm_entries += 1;
        self.psm.report.asleep = true;
        // Unreachable: nothing in, nothing out. Connections end (their peers see them drop).
        self.powered = false;
        self.timers.clear();
        self.busy = false;
        self.input.clear();
        self.data_mode = None;
        self.close_all_sockets();
    }

    /// `RDY` again: the AT settings are the power-on defaults; registration and the PDP
    /// contexts are kept.
    pub(super) fn wake_from_psm(&mut self, link: &mut dyn Link) {
        if !self.psm.asleep() {
            return;
        }
        self.psm_book_wall();
        self.psm.slept_at = None;
        self.psm.report.asleep = false;
        self.psm.report.wakes += 1;
        self.psm.urc = false;
        self.powered = true;
        self.echo = self.cfg.echo;
        self.cmee = self.cfg.cmee;
        self.creg_n = 0;
        self.cgreg_n = 0;
        self.cereg_n = 0;
        self.lines = Default::default();
        self.ssl = (0..super::net::MAX_SSL_CTX)
            .map(|_| crate::sockets::SslCfg::new(self.cfg.model.default_sni()))
            .collect();
        self.psm.last_activity = self.psm.vnow();
        let prefix: Vec<&str> = self
            .cfg
            .model
            .boot_prefix()
            .iter()
            .copied()
            .filter(|u| u.ends_with("RDY"))
            .collect();
        for u in prefix {
            self.urc(link, u);
        }
    }

    /// PWRKEY pressed: wakes a module in PSM (nothing else here: a running module ignores a
    /// press this short).
    pub(super) fn psm_pwrkey(&mut self, link: &mut dyn Link) {
        self.wake_from_psm(link);
    }

    /// Skips `d` of virtual time, taking the PSM events inside it in order.
    pub(super) fn psm_advance(&mut self, link: &mut dyn Link, d: Duration) {
        self.psm_book_wall();
        let target = self.psm.vnow() + d;
        loop {
            let now = self.psm.vnow();
            let next = [self.psm_due(), self.tau_due()]
                .into_iter()
                .flatten()
                .min()
                .filter(|&t| t <= target);
            let until = next.unwrap_or(target);
            self.psm_book_skip(now, until);
            self.psm.skipped += until.saturating_duration_since(now);
            self.psm.booked_to = self.psm.vnow();
            if next.is_none() {
                break;
            }
            if self.psm.asleep() {
                self.psm.report.tau_wakes += 1;
                self.wake_from_psm(link);
            } else {
                self.enter_psm(link);
            }
        }
        self.psm.report.skipped = self.psm.skipped;
    }

    /// The power commands the mock acts on; `None`: not one of them.
    pub(super) fn psm_command(
        &mut self,
        link: &mut dyn Link,
        name: &str,
        form: char,
        args: &[String],
    ) -> Option<super::Reply> {
        let lpwa = !matches!(self.cfg.model.family(), crate::model::Family::Ec2x);
        match (name, form) {
            ("+CPSMS", '=') if lpwa => {
                match args.first().map(String::as_str) {
                    Some("1") => {
                        let tau = args.get(3).and_then(|s| bits(s)).and_then(timer3);
                        let active = args.get(4).and_then(|s| bits(s)).and_then(timer2);
                        let (Some(tau), Some(active)) = (tau, active) else {
                            return Some(super::Reply::error());
                        };
                        self.psm.grant = Some(self.psm.forced.unwrap_or((tau, active)));
                    }
                    Some("0") | Some("2") | None => self.psm.grant = None,
                    _ => return Some(super::Reply::error()),
                }
                self.psm.report.psm = self.psm.grant;
                if self.psm.urc
                    && let Some((tau, active)) = self.psm.grant
                {
                    let text = format!("+QPSMTIMER: {},{}", tau.as_secs(), active.as_secs());
                    let mut r = super::Reply::ok();
                    r.after.push(text);
                    return Some(r);
                }
                let _ = link;
                Some(super::Reply::ok())
            }
            ("+QCFG", '=') if lpwa && args.first().is_some_and(|a| a == "psm/urc") => {
                match args.get(1).map(String::as_str) {
                    Some("1") => self.psm.urc = true,
                    Some("0") => self.psm.urc = false,
                    None => {
                        return Some(super::Reply::line(format!(
                            "+QCFG: \"psm/urc\",{}",
                            u8::from(self.psm.urc)
                        )));
                    }
                    _ => return Some(super::Reply::error()),
                }
                Some(super::Reply::ok())
            }
            ("+QPSMCFG", '=') if lpwa => Some(super::Reply::ok()),
            ("+CPSMS" | "+QPSMCFG", _) if !lpwa => Some(super::Reply::error()),
            _ => None,
        }
    }

    /// The `,[<cause_type>],[<reject_cause>],"<Active-Time>","<Periodic-TAU>"` tail of a
    /// `+CEREG` URC with `<n>` = 4 (empty without a PSM grant).
    pub(super) fn psm_cereg_timers(&self) -> String {
        match self.psm.grant {
            Some((tau, active)) => format!(
                ",,,\"{:08b}\",\"{:08b}\"",
                encode(active.as_secs(), &[(0b000, 2), (0b001, 60), (0b010, 360)]),
                encode(
                    tau.as_secs(),
                    &[
                        (0b011, 2),
                        (0b100, 30),
                        (0b101, 60),
                        (0b000, 600),
                        (0b001, 3_600),
                        (0b010, 36_000),
                        (0b110, 1_152_000),
                    ]
                )
            ),
            None => String::new(),
        }
    }

    /// The report for [`ModemState`](super::ModemState).
    pub(super) fn psm_report(&self) -> PowerReport {
        let mut r = self.psm.report.clone();
        r.skipped = self.psm.skipped;
        r
    }
}
