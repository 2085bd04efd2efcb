//! The network time as the mock reports it: `AT+QLTS` (modes 0, 1, 2), and the text of the
//! `+CTZE` URC a test injects ([`ctze_urc`]).

/// `yyyy/MM/dd,hh:mm:ss` (or `yy/…` with `two_digit_year`) of `unix` shifted by `quarters`.
fn civil(unix: i64, quarters: i8, two_digit_year: bool) -> String {
    let local = unix + i64::from(quarters) * 900;
    let days = local.div_euclid(86_400);
    let t = local.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let year = if two_digit_year {
        format!("{:02}", year % 100)
    } else {
        format!("{year:04}")
    };
    format!(
        "{year}/{month:02}/{day:02},{:02}:{:02}:{:02}",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// `AT+CCLK?`'s text, `yy/MM/dd,hh:mm:ss±zz`: the host's current time shown in the time zone
/// `quarters` (local = UTC + quarters × 15 min), or the power-on default of a module that never
/// got the time from the network (`80/01/06,00:00:00` plus the host clock's seconds of the day).
pub(super) fn cclk(quarters: Option<i8>) -> String {
    let now = now();
    let Some(q) = quarters else {
        let t = now.rem_euclid(86_400);
        return format!(
            "80/01/06,{:02}:{:02}:{:02}+00",
            t / 3600,
            t / 60 % 60,
            t % 60
        );
    };
    format!("{}{}", civil(now, q, true), zone(q))
}

fn zone(quarters: i8) -> String {
    let sign = if quarters < 0 { '-' } else { '+' };
    format!("{sign}{:02}", quarters.unsigned_abs())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The `+QLTS:` line for `mode` (0 last sync, local; 1 now, UTC; 2 now, local), with the host's
/// clock as the network's time in zone `quarters`; `+QLTS: ""` when the network never sent it.
pub(super) fn qlts(quarters: Option<i8>, mode: u32) -> String {
    let Some(q) = quarters else {
        return "+QLTS: \"\"".into();
    };
    let shift = if mode == 1 { 0 } else { q };
    format!("+QLTS: \"{}{},0\"", civil(now(), shift, false), zone(q))
}

/// A `+CTZE: "<tz>",<dst>,"yyyy/MM/dd,hh:mm:ss"` URC (3GPP TS 27.007 `AT+CTZR=2`) saying it is
/// `unix` (UTC seconds) in zone `quarters`, for [`ModemHandle::inject_urc`](crate::ModemHandle::inject_urc).
pub fn ctze_urc(unix: i64, quarters: i8) -> String {
    format!(
        "+CTZE: \"{}\",0,\"{}\"",
        zone(quarters),
        civil(unix, quarters, false)
    )
}
