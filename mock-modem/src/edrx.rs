//! eDRX paging windows: with eDRX on (`AT+CEDRXS=1|2,…`) the module listens for paging only in a
//! paging time window once per eDRX cycle, so downlink data that arrives between windows is
//! announced (`"recv"` URC) at the start of the next one. Real cycles are 5.12 s and longer;
//! a test gives the mock its own, shorter schedule with
//! [`MockModem::edrx_paging`](crate::MockModem::edrx_paging), which stands for what the network
//! granted. Without one, eDRX commands are accepted and change nothing.

use std::time::{Duration, Instant};

/// The granted paging schedule: a window of `window` at the start of every `cycle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdrxPaging {
    /// The eDRX cycle.
    pub cycle: Duration,
    /// The paging time window at the start of each cycle.
    pub window: Duration,
}

/// The module's eDRX state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Edrx {
    /// The schedule the test configured (the network's grant).
    paging: Option<EdrxPaging>,
    /// eDRX on since (cycles count from here).
    on_since: Option<Instant>,
    /// `AT+CEDRXS` mode 2: report changes with `+CEDRXP`.
    pub(crate) report: bool,
    /// The requested `<AcT-type>` and value (4-bit string) of the last `AT+CEDRXS=1|2`.
    pub(crate) requested: Option<(u8, String)>,
    /// `"recv"` URCs held until a window.
    pub(crate) held: u32,
}

impl Edrx {
    pub(crate) fn new(paging: Option<EdrxPaging>) -> Self {
        Edrx {
            paging,
            ..Edrx::default()
        }
    }

    /// `AT+CEDRXS=<mode>,<act>,"<value>"`.
    pub(crate) fn set(&mut self, mode: u8, act: u8, value: &str) {
        match mode {
            1 | 2 => {
                self.on_since = Some(Instant::now());
                self.report = mode == 2;
                self.requested = Some((act, value.to_string()));
            }
            _ => {
                self.on_since = None;
                self.report = false;
                self.requested = None;
            }
        }
    }

    /// Whether the module hears paging now (always, without eDRX or without a schedule).
    pub(crate) fn listening(&self, now: Instant) -> bool {
        let (Some(p), Some(since)) = (self.paging, self.on_since) else {
            return true;
        };
        if p.cycle.is_zero() {
            return true;
        }
        let phase = now.saturating_duration_since(since).as_nanos() % p.cycle.as_nanos();
        phase < p.window.as_nanos()
    }

    /// The `+CEDRXRDP:` line: the requested value granted as asked, with the window's 4-bit
    /// value (1.28 s steps on LTE-M, 2.56 s on NB-IoT, rounded down).
    pub(crate) fn rdp(&self) -> String {
        match &self.requested {
            None => "+CEDRXRDP: 0".into(),
            Some((act, value)) => {
                let step = if *act == 5 { 2560 } else { 1280 };
                let w = self
                    .paging
                    .map(|p| (p.window.as_millis() / step).saturating_sub(1).min(15))
                    .unwrap_or(0);
                format!("+CEDRXRDP: {act},\"{value}\",\"{value}\",\"{w:04b}\"")
            }
        }
    }

    /// The `+CEDRXP:` URC for the grant (same fields as `+CEDRXRDP`).
    pub(crate) fn report_urc(&self) -> Option<String> {
        self.report
            .then(|| self.rdp().replacen("+CEDRXRDP", "+CEDRXP", 1))
    }
}
