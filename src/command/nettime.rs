//! The time the network sent (NITZ): `AT+QLTS`, and the time URCs (`+CTZV`/`+CTZE`) turned
//! into a [`Clock`] (UTC instant with its time zone).
//!
//! `AT+QLTS` answers `+QLTS: "yyyy/MM/dd,hh:mm:ss±zz,<dst>"` (`±zz` in quarters of an hour;
//! `""` when the network never sent the time). Its modes (Quectel EC2x / BG96 / BG95 AT
//! manuals, `AT+QLTS=<mode>`): 0, the last time synchronised from the network, as local time;
//! 1, the current time computed from it, as UTC ("GMT"); 2, the same as local time. Mode 0 is
//! sent as `AT+QLTS` without a parameter, which every firmware accepts.

use super::time::Clock;
use super::{CmdWriter, Command};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::parse::{all, quoted};
use crate::at::response::Response;
use crate::at::urc::{NetworkTimeReport, TimeFields};

/// Which time `AT+QLTS` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QltsMode {
    /// 0: the time of the last synchronisation with the network, local (`AT+QLTS`).
    #[default]
    LastSync,
    /// 1: the current time, UTC (`AT+QLTS=1`).
    CurrentUtc,
    /// 2: the current time, local (`AT+QLTS=2`).
    CurrentLocal,
}

/// The network's time: an instant with its time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NetworkTime {
    /// The instant, as local fields with their offset ([`Clock::unix_utc`] gives UTC).
    pub clock: Clock,
    /// The network's time zone (local minus UTC, in quarters of an hour). Equal to
    /// `clock.offset_quarters` except for [`QltsMode::CurrentUtc`], whose clock is UTC.
    pub zone_quarters: i8,
    /// The daylight-saving adjustment in hours (0–2), when sent.
    pub dst: Option<u8>,
}

impl NetworkTime {
    /// Seconds since 1970-01-01 00:00:00 UTC.
    pub fn unix_utc(&self) -> i64 {
        self.clock.unix_utc()
    }

    /// The time a URC carried, if it carried one (`+CTZV` with the zone alone does not).
    pub fn from_report(r: &NetworkTimeReport) -> Option<Self> {
        let t = r.local?;
        Some(Self {
            clock: clock_of(t, r.offset_quarters)?,
            zone_quarters: r.offset_quarters,
            dst: r.dst,
        })
    }
}

fn clock_of(t: TimeFields, offset_quarters: i8) -> Option<Clock> {
    // `Clock` holds 2000–2099 (its two-digit wire form); NITZ years are in that range.
    (2000..=2099).contains(&t.year).then_some(Clock {
        year: t.year,
        month: t.month,
        day: t.day,
        hour: t.hour,
        minute: t.minute,
        second: t.second,
        offset_quarters,
    })
}

/// `AT+QLTS[=<mode>]` → `+QLTS: "<time>±zz,<dst>"`; `None` when the network never sent the
/// time (`+QLTS: ""`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetNetworkTime {
    /// Which time.
    pub mode: QltsMode,
}

impl Command for GetNetworkTime {
    type Response = Option<NetworkTime>;
    const EXPECT: Expect = Expect::prefixed(b"+QLTS:");
    const TIMEOUT_MS: u32 = 300;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str(match self.mode {
            QltsMode::LastSync => "AT+QLTS",
            QltsMode::CurrentUtc => "AT+QLTS=1",
            QltsMode::CurrentLocal => "AT+QLTS=2",
        })
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Option<NetworkTime>, Error> {
        let text = all(quoted, resp.first()?)?;
        if text.is_empty() {
            return Ok(None);
        }
        let (t, zone, dst) = crate::at::urc::parse_time_text(text).ok_or(Error::Parse)?;
        let zone = zone.ok_or(Error::Parse)?;
        // Mode 1 writes UTC fields next to the zone.
        let offset = match self.mode {
            QltsMode::CurrentUtc => 0,
            _ => zone,
        };
        Ok(Some(NetworkTime {
            clock: clock_of(t, offset).ok_or(Error::Parse)?,
            zone_quarters: zone,
            dst,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::testing::{Row, table, wrote};

    #[test]
    fn qlts_answers() {
        let c = |hour, offset_quarters| Clock {
            year: 2019,
            month: 1,
            day: 13,
            hour,
            minute: 40,
            second: 48,
            offset_quarters,
        };
        let local = GetNetworkTime::default();
        let rows: &[Row<Option<NetworkTime>>] = &[
            // The EC25 manual's example.
            (
                b"\r\n+QLTS: \"2019/01/13,03:40:48+32,0\"\r\n\r\nOK\r\n",
                Ok(Some(NetworkTime {
                    clock: c(3, 32),
                    zone_quarters: 32,
                    dst: Some(0),
                })),
            ),
            (b"\r\n+QLTS: \"\"\r\n\r\nOK\r\n", Ok(None)),
            (
                b"\r\n+QLTS: \"2019/01/13,03:40:48\"\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+QLTS: \"2019/01/13,03:61:48+32,0\"\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&local, rows);
        let utc = GetNetworkTime {
            mode: QltsMode::CurrentUtc,
        };
        let rows: &[Row<Option<NetworkTime>>] = &[(
            b"\r\n+QLTS: \"2019/01/13,03:40:48-20,1\"\r\n\r\nOK\r\n",
            Ok(Some(NetworkTime {
                clock: c(3, 0),
                zone_quarters: -20,
                dst: Some(1),
            })),
        )];
        table(&utc, rows);
        assert_eq!(wrote(&local).unwrap(), b"AT+QLTS");
        assert_eq!(wrote(&utc).unwrap(), b"AT+QLTS=1");
        assert_eq!(
            wrote(&GetNetworkTime {
                mode: QltsMode::CurrentLocal
            })
            .unwrap(),
            b"AT+QLTS=2"
        );
        // Same instant in both forms: 03:40:48 at UTC+8 is 19:40:48 UTC the day before.
        let l = Clock {
            hour: 3,
            ..c(3, 32)
        };
        assert_eq!(l.unix_utc(), 1_547_322_048);
    }

    #[test]
    fn time_urcs_become_utc() {
        use crate::at::urc::{QInd, Urc};
        let Some(Urc::TimeZone(r)) = Urc::parse_line(b"+CTZE: \"+32\",0,\"2019/01/13,03:40:48\"")
        else {
            panic!("not a time zone URC")
        };
        let t = NetworkTime::from_report(&r.time_zone().unwrap()).unwrap();
        assert_eq!(t.unix_utc(), 1_547_322_048);
        assert_eq!(t.dst, Some(0));
        // The zone alone: no time.
        let Some(Urc::TimeZone(r)) = Urc::parse_line(b"+CTZV: -20") else {
            panic!("not a time zone URC")
        };
        let r = r.time_zone().unwrap();
        assert_eq!(r.offset_quarters, -20);
        assert_eq!(NetworkTime::from_report(&r), None);
        let Some(Urc::TimeZone(r)) = Urc::parse_line(b"+CTZV: \"+04\"") else {
            panic!("not a time zone URC")
        };
        let r = r.time_zone().unwrap();
        assert_eq!(r.offset_quarters, 4);
        // Malformed: no report, never a wrong time.
        for bad in [
            &b"+CTZV: +99"[..],
            b"+CTZE: \"+32\",0,\"2019/01/13,25:40:48\"",
        ] {
            let Some(Urc::TimeZone(t)) = Urc::parse_line(bad) else {
                panic!("{}", bad.escape_ascii())
            };
            assert_eq!(t.time_zone(), None, "{}", bad.escape_ascii());
        }
        // `+QIND: "nitz"` is not taken (see `at::urc`): no clock from it.
        assert_eq!(
            Urc::parse_line(b"+QIND: \"nitz\",\"19/01/12,19:40:48+00,0\""),
            Some(Urc::QInd(QInd::Other))
        );
        // Longer than any real one: unknown.
        assert!(matches!(
            Urc::parse_line(b"+CTZE: \"+32\",0,\"2019/01/13,03:40:48\",0123456789012345"),
            Some(Urc::Unknown(_))
        ));
    }
}
