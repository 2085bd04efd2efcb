//! The module's clock (`AT+CCLK?`), which the network sets (NITZ) when it sends the time.

use super::{CmdWriter, Command};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::parse::{all, quoted};
use crate::at::response::Response;

/// What `AT+CCLK?` reports: the module's *local* time and its offset from UTC (3GPP TS 27.007
/// §8.15: `"yy/MM/dd,hh:mm:ss±zz"`, `zz` in quarters of an hour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Clock {
    /// Year, 2000–2099.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day of the month, 1–31.
    pub day: u8,
    /// Hour, 0–23 (local).
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–59.
    pub second: u8,
    /// Local time minus UTC, in quarters of an hour (−48…+56).
    pub offset_quarters: i8,
}

impl Clock {
    /// Seconds since 1970-01-01 00:00:00 UTC.
    // Every field is 8 or 16 bits wide: each intermediate stays below 2^40, far from i64's limits.
    #[allow(clippy::arithmetic_side_effects)]
    pub fn unix_utc(&self) -> i64 {
        // Days from the civil date (Howard Hinnant's algorithm), for the proleptic Gregorian
        // calendar.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let local = days * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        local - i64::from(self.offset_quarters) * 900
    }

    /// Whether the network ever set the clock: a module that has not received the time reports
    /// its power-on default, a date before 2020 (e.g. `80/01/06` on BG96, `00/01/01` elsewhere).
    pub fn is_set(&self) -> bool {
        self.year >= 2020
    }
}

fn two(s: &[u8]) -> Result<u8, Error> {
    match s {
        [b'0'..=b'9', b'0'..=b'9'] => crate::util::decimal(s)
            .and_then(|v| u8::try_from(v).ok())
            .ok_or(Error::Parse),
        _ => Err(Error::Parse),
    }
}

/// Parses `yy/MM/dd,hh:mm:ss±zz`.
pub(crate) fn parse_clock(s: &[u8]) -> Result<Clock, Error> {
    let [
        y0,
        y1,
        b'/',
        m0,
        m1,
        b'/',
        d0,
        d1,
        b',',
        h0,
        h1,
        b':',
        n0,
        n1,
        b':',
        s0,
        s1,
        sign,
        z @ ..,
    ] = s
    else {
        return Err(Error::Parse);
    };
    let zz = match z {
        [a] => two(&[b'0', *a])?,
        [a, b] => two(&[*a, *b])?,
        _ => return Err(Error::Parse),
    };
    let zz = i8::try_from(zz).map_err(|_| Error::Parse)?;
    let offset_quarters = match sign {
        b'+' => zz,
        b'-' => zz.checked_neg().ok_or(Error::Parse)?,
        _ => return Err(Error::Parse),
    };
    // A year 80-99 is the power-on default of some modules (1980): keep it recognisable.
    let yy = two(&[*y0, *y1])?;
    // `yy` ≤ 99.
    let year = if yy >= 80 { 1900u16 } else { 2000 }.saturating_add(u16::from(yy));
    let c = Clock {
        year,
        month: two(&[*m0, *m1])?,
        day: two(&[*d0, *d1])?,
        hour: two(&[*h0, *h1])?,
        minute: two(&[*n0, *n1])?,
        second: two(&[*s0, *s1])?,
        offset_quarters,
    };
    let valid = (1..=12).contains(&c.month)
        && (1..=31).contains(&c.day)
        && c.hour < 24
        && c.minute < 60
        && c.second < 60
        && (-48..=56).contains(&c.offset_quarters);
    if valid { Ok(c) } else { Err(Error::Parse) }
}

/// `AT+CCLK?` → `+CCLK: "yy/MM/dd,hh:mm:ss±zz"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetClock;

impl Command for GetClock {
    type Response = Clock;
    const EXPECT: Expect = Expect::prefixed(b"+CCLK:");
    const TIMEOUT_MS: u32 = 300;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CCLK?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Clock, Error> {
        parse_clock(all(quoted, resp.first()?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::testing::{Row, table, wrote};

    #[test]
    fn clock_answers() {
        let c = |year, month, day, hour, minute, second, offset_quarters| Clock {
            year,
            month,
            day,
            hour,
            minute,
            second,
            offset_quarters,
        };
        let rows: &[Row<Clock>] = &[
            // The BG96 TCP/IP manual's example: 11:10:57 local at UTC+8.
            (
                b"\r\n+CCLK: \"13/08/19,11:10:57+32\"\r\n\r\nOK\r\n",
                Ok(c(2013, 8, 19, 11, 10, 57, 32)),
            ),
            (
                b"\r\n+CCLK: \"26/12/02,05:00:00-20\"\r\n\r\nOK\r\n",
                Ok(c(2026, 12, 2, 5, 0, 0, -20)),
            ),
            (
                b"\r\n+CCLK: \"80/01/06,00:00:49+0\"\r\n\r\nOK\r\n",
                Ok(c(1980, 1, 6, 0, 0, 49, 0)),
            ),
            (
                b"\r\n+CCLK: \"13/13/19,11:10:57+32\"\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+CCLK: \"13/08/19,24:10:57+32\"\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+CCLK: \"13/08/19,11:10:57*32\"\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+CCLK: \"13/08/19,11:10:57+99\"\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+CCLK: 13/08/19,11:10:57+32\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&GetClock, rows);
        assert_eq!(wrote(&GetClock).unwrap(), b"AT+CCLK?");
    }

    #[test]
    fn unix_time() {
        let at = |s: &[u8]| parse_clock(s).unwrap().unix_utc();
        assert_eq!(at(b"00/01/01,00:00:00+00"), 946_684_800);
        // 2013-08-19 03:10:57 UTC (11:10:57 at UTC+8) is 1376881857 (date -d @1376881857 -u).
        assert_eq!(at(b"13/08/19,11:10:57+32"), 1_376_881_857);
        // The same instant written at UTC-5.
        assert_eq!(at(b"13/08/18,22:10:57-20"), 1_376_881_857);
        // Leap day and end of year.
        assert_eq!(at(b"24/02/29,12:00:00+00"), 1_709_208_000);
        assert_eq!(at(b"26/12/31,23:59:59+00"), 1_798_761_599);
        assert!(!parse_clock(b"80/01/06,00:00:49+00").unwrap().is_set());
        assert!(parse_clock(b"26/12/02,05:00:00+00").unwrap().is_set());
    }
}
