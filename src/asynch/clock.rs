//! The network clock: the last time the network sent (NITZ), kept with the local instant it
//! arrived at, so that "now" can be told without an RTC. Fed by the time URCs the runner sees
//! (`+CTZE` or `+CTZV` with a time, `+QIND: "nitz"`) and by [`Network::network_time`] and
//! [`Network::time`] (when the module's clock is set). MCU TLS checks certificate dates
//! against it when the caller gives no clock (`tls::NetworkClock`).
//!
//! One clock per program (a `static`): a device has one network time, whichever modem told
//! it.

use core::cell::Cell;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::Instant;

use super::Network;
use crate::Error;
use crate::at::urc::{QInd, Urc};
use crate::command::nettime::{GetNetworkTime, NetworkTime, QltsMode};

/// The last network time (Unix seconds, UTC) and when it was taken.
static LAST: Mutex<CriticalSectionRawMutex, Cell<Option<(i64, Instant)>>> =
    Mutex::new(Cell::new(None));

/// Records that it is `unix` seconds UTC now. Times before 2020 are a module's power-on
/// default, not the network's: ignored.
pub(crate) fn record(unix: i64) {
    // 2020-01-01T00:00:00Z.
    if unix >= 1_577_836_800 {
        LAST.lock(|c| c.set(Some((unix, Instant::now()))));
    }
}

/// Records the time a URC carried, if any.
pub(crate) fn observe(urc: &Urc) {
    let report = match urc {
        Urc::TimeZone(r) | Urc::QInd(QInd::Nitz(r)) => r,
        _ => return,
    };
    if let Some(t) = NetworkTime::from_report(report) {
        record(t.unix_utc());
    }
}

/// Now, in seconds since 1970-01-01 UTC, from the last network time and the local clock since;
/// `None` until the network sent the time (or the driver read it).
pub fn network_utc_now() -> Option<u64> {
    let (unix, at) = LAST.lock(Cell::get)?;
    let since = i64::try_from(Instant::now().saturating_duration_since(at).as_secs()).ok()?;
    u64::try_from(unix.checked_add(since)?).ok()
}

/// Forgets the network time (for tests, or after the user learned it is wrong).
pub fn forget_network_time() {
    LAST.lock(|c| c.set(None));
}

impl Network<'_> {
    /// The time the network sent (`AT+QLTS[=<mode>]`), with its time zone and daylight-saving
    /// adjustment; `None` if the network never sent it. It also sets the network clock
    /// ([`network_utc_now`]).
    pub async fn network_time(&self, mode: QltsMode) -> Result<Option<NetworkTime>, Error> {
        let t = self.modem().send(&GetNetworkTime { mode }).await?;
        // Mode 0 is the time of the last synchronisation, not now.
        if let (Some(t), QltsMode::CurrentUtc | QltsMode::CurrentLocal) = (t, mode) {
            record(t.unix_utc());
        }
        Ok(t)
    }
}
