//! The network clock: the last time the network sent (NITZ), kept with the local instant it
//! arrived at, so that "now" can be told without an RTC. Fed by the time URCs as the state
//! takes them (`+CTZE` or `+CTZV` with a time, kept as text and typed only
//! when the time is asked for) and by the network handle's reads (`AT+QLTS`, `AT+CCLK?`). MCU
//! TLS checks certificate dates against it when the caller gives no clock.
//!
//! One clock per program (a `static`): a device has one network time, whichever modem told
//! it.

use core::cell::Cell;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::Instant;

use crate::at::urc::UrcText;
use crate::command::nettime::NetworkTime;

/// Where the last network time came from: read (Unix seconds) or a URC, kept as text and typed
/// only when the time is asked for (the runner stays free of the time parsers).
#[derive(Clone, Copy)]
enum Source {
    Unix(i64),
    TimeZone(UrcText),
}

/// The last network time and the local instant it arrived at.
static LAST: Mutex<CriticalSectionRawMutex, Cell<Option<(Source, Instant)>>> =
    Mutex::new(Cell::new(None));

/// 2020-01-01T00:00:00Z: earlier times are a module's power-on default, not the network's.
const EARLIEST: i64 = 1_577_836_800;

/// Records that it is `unix` seconds UTC now (times before 2020 are ignored).
pub(crate) fn record(unix: i64) {
    if unix >= EARLIEST {
        crate::util::lock::with(|cs| {
            LAST.borrow(cs)
                .set(Some((Source::Unix(unix), Instant::now())))
        });
    }
}

/// Records a `+CTZV`/`+CTZE` URC that carries a date (one with the zone alone changes
/// nothing).
pub(crate) fn observe(text: &UrcText) {
    if !text.has_date() {
        return;
    }
    crate::util::lock::with(|cs| {
        LAST.borrow(cs)
            .set(Some((Source::TimeZone(*text), Instant::now())))
    });
}

/// Now, in seconds since 1970-01-01 UTC, from the last network time and the local clock since;
/// `None` until the network sent the time (or the driver read it), or when what it sent last
/// was malformed.
pub fn network_utc_now() -> Option<u64> {
    let (source, at) = crate::util::lock::with(|cs| LAST.borrow(cs).get())?;
    let unix = match source {
        Source::Unix(u) => u,
        Source::TimeZone(t) => NetworkTime::from_report(&t.time_zone()?)?.unix_utc(),
    };
    if unix < EARLIEST {
        return None;
    }
    let since = i64::try_from(Instant::now().saturating_duration_since(at).as_secs()).ok()?;
    u64::try_from(unix.checked_add(since)?).ok()
}

/// Forgets the network time (for tests, or after the user learned it is wrong).
pub fn forget_network_time() {
    crate::util::lock::with(|cs| LAST.borrow(cs).set(None));
}
