//! Network registration, operator and signal commands.
//!
//! `+CREG:`, `+CGREG:` and `+CEREG:` are both URCs and read responses; the digester tells them
//! apart by shape (a read response starts with `<n>,<stat>`), so a registration URC that arrives
//! in the middle of a read is not taken for its answer.

use heapless::{String, Vec};
use nom::{IResult, Parser, branch::alt, bytes::complete::take_while, combinator::opt};

use super::{CmdWriter, Command};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::parse::{all, int, next, quoted, uint};
use crate::at::response::Response;
use crate::at::urc::{RegDomain, Registration, registration_fields};
use crate::error::trim_ascii;

/// Maximum response time of local commands.
const LOCAL_MS: u32 = 300;

fn u8_of(v: u32) -> Result<u8, Error> {
    u8::try_from(v).map_err(|_| Error::Parse)
}

/// A field that is quoted, bare or empty (`"46011"`, `46011`, ``); bare text is trimmed.
fn field(i: &[u8]) -> IResult<&[u8], &[u8]> {
    let (i, f) = alt((quoted, take_while(|b| b != b',' && b != b'"'))).parse(i)?;
    Ok((i, trim_ascii(f)))
}

/// `AT+CREG=<n>` / `AT+CGREG=<n>` / `AT+CEREG=<n>`: registration URCs. `<n>` 0 off, 1 status
/// only, 2 with location and access technology, 4 (GPRS/EPS only) with PSM timers. Other values
/// are [`Error::InvalidArgument`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetRegistrationUrc {
    /// Which registration (`+CREG`, `+CGREG`, `+CEREG`).
    pub domain: RegDomain,
    /// `<n>`.
    pub mode: u8,
}

impl Command for SetRegistrationUrc {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        let valid = match self.domain {
            RegDomain::Cs => self.mode <= 2,
            RegDomain::Ps | RegDomain::Eps => self.mode <= 2 || self.mode == 4,
        };
        if !valid {
            return Err(Error::InvalidArgument);
        }
        w.str_uint(
            match self.domain {
                RegDomain::Cs => "AT+CREG=",
                RegDomain::Ps => "AT+CGREG=",
                RegDomain::Eps => "AT+CEREG=",
            },
            u32::from(self.mode),
        )
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// The answer to `AT+CREG?`, `AT+CGREG?` or `AT+CEREG?`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RegistrationState {
    /// The URC mode `<n>` currently set.
    pub mode: u8,
    /// Status, location and access technology.
    pub registration: Registration,
}

/// Checks the fields after `<n>,`: `<stat>` digits, then optional quoted hex `<lac>`/`<ci>`
/// and a numeric `<AcT>`; each may be empty. Later fields (reject cause, PSM timers) are not
/// checked.
fn check_registration_fields(i: &[u8]) -> Result<(), Error> {
    let small_number = |f: &[u8]| {
        !f.is_empty() && f.len() <= 3 && crate::util::decimal(f).is_some_and(|v| v <= 255)
    };
    let mut fields = i.split(|&b| b == b',').map(trim_ascii);
    if !fields.next().is_some_and(small_number) {
        return Err(Error::Parse);
    }
    for (idx, f) in fields.take(3).enumerate() {
        let ok = f.is_empty()
            || match idx {
                0 | 1 => match f {
                    [b'"', hex @ .., b'"'] => {
                        hex.len() <= 8 && hex.iter().all(u8::is_ascii_hexdigit)
                    }
                    _ => false,
                },
                _ => small_number(f),
            };
        if !ok {
            return Err(Error::Parse);
        }
    }
    Ok(())
}

/// Parses `<n>,<stat>[,<lac>,<ci>[,<AcT>[,...]]]`.
fn parse_registration(text: &[u8]) -> Result<RegistrationState, Error> {
    // `<n>,` read by hand (what nom's `terminated(uint, comma)` takes).
    let (rest, n) = crate::at::parse::read_uint(text).ok_or(Error::Parse)?;
    let rest = crate::at::parse::after_comma(rest).ok_or(Error::Parse)?;
    check_registration_fields(rest)?;
    let (_, registration) = registration_fields(rest).map_err(|_| Error::Parse)?;
    Ok(RegistrationState {
        mode: u8_of(n)?,
        registration,
    })
}

macro_rules! registration_read {
    ($(#[$doc:meta])* $name:ident, $cmd:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub struct $name;

        impl Command for $name {
            type Response = RegistrationState;
            const EXPECT: Expect = Expect::prefixed($prefix);
            const TIMEOUT_MS: u32 = LOCAL_MS;
            fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
                w.str($cmd)
            }
            fn parse(&self, resp: &Response<'_>) -> Result<RegistrationState, Error> {
                parse_registration(resp.first()?)
            }
        }
    };
}

registration_read!(
    /// `AT+CREG?`: circuit-switched registration (`+CREG: <n>,<stat>[,"<lac>","<ci>"[,<AcT>]]`).
    GetCreg,
    "AT+CREG?",
    b"+CREG:"
);
registration_read!(
    /// `AT+CGREG?`: GPRS registration (`+CGREG: <n>,<stat>[,"<lac>","<ci>"[,<AcT>]]`).
    GetCgreg,
    "AT+CGREG?",
    b"+CGREG:"
);
registration_read!(
    /// `AT+CEREG?`: EPS (LTE, Cat-M1, NB-IoT) registration
    /// (`+CEREG: <n>,<stat>[,"<tac>","<ci>"[,<AcT>[,...]]]`; empty fields are accepted).
    GetCereg,
    "AT+CEREG?",
    b"+CEREG:"
);

/// `AT+CREG?`, `AT+CGREG?` or `AT+CEREG?` by domain: one command type for the three reads
/// (as [`GetCreg`], [`GetCgreg`] and [`GetCereg`]), so that a handle asking any of them compiles
/// one writer and one parser, not three.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GetRegistration(pub(crate) RegDomain);

impl Command for GetRegistration {
    type Response = RegistrationState;
    const EXPECT: Expect = Expect::prefixed(b"+CEREG:");
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn expect(&self) -> Expect {
        Expect::prefixed(match self.0 {
            RegDomain::Cs => b"+CREG:",
            RegDomain::Ps => b"+CGREG:",
            RegDomain::Eps => b"+CEREG:",
        })
    }
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str(match self.0 {
            RegDomain::Cs => "AT+CREG?",
            RegDomain::Ps => "AT+CGREG?",
            RegDomain::Eps => "AT+CEREG?",
        })
    }
    fn parse(&self, resp: &Response<'_>) -> Result<RegistrationState, Error> {
        parse_registration(resp.first()?)
    }
}

/// The answer to `AT+COPS?`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Operator {
    /// `<mode>`: 0 automatic, 1 manual, 2 deregistered, 4 manual then automatic.
    pub mode: u8,
    /// `<format>` of `name`: 0 long alphanumeric, 1 short alphanumeric, 2 numeric.
    pub format: Option<u8>,
    /// The operator (`"CHINA MOBILE CMCC"`, `"46000"`); `None` when not registered.
    pub name: Option<String<32>>,
    /// Access technology, as in the registration reports.
    pub act: Option<u8>,
}

/// `AT+COPS?`: the selected operator. Not registered answers `+COPS: <mode>` alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetOperator;

impl Command for GetOperator {
    type Response = Operator;
    const EXPECT: Expect = Expect::prefixed(b"+COPS:");
    const TIMEOUT_MS: u32 = 180_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+COPS?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Operator, Error> {
        let (mode, format, name, act) = all(
            (uint, opt(next(uint)), opt(next(field)), opt(next(uint))),
            resp.first()?,
        )?;
        Ok(Operator {
            mode: u8_of(mode)?,
            format: format.map(u8_of).transpose()?,
            name: match name {
                Some(n) if !n.is_empty() => Some(crate::util::text(n)?),
                _ => None,
            },
            act: act.map(u8_of).transpose()?,
        })
    }
}

/// The answer to `AT+CSQ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Signal {
    /// `<rssi>`: 0–31, 99 unknown.
    pub rssi: u8,
    /// `<ber>`: 0–7 (RXQUAL), 99 unknown (always 99 on LTE).
    pub ber: u8,
}

impl Signal {
    /// The received signal strength in dBm: `-113 + 2 * rssi` for `rssi` 0–31 (0 means −113 or
    /// less, 31 means −51 or more); `None` for 99 (unknown) and other values.
    pub fn rssi_dbm(&self) -> Option<i16> {
        // `rssi` ≤ 31: the result lies in −113…−51.
        (self.rssi <= 31).then(|| i16::from(self.rssi).saturating_mul(2).saturating_sub(113))
    }
}

/// `AT+CSQ`: signal quality (`+CSQ: <rssi>,<ber>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SignalQuality;

impl Command for SignalQuality {
    type Response = Signal;
    const EXPECT: Expect = Expect::prefixed(b"+CSQ:");
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CSQ")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Signal, Error> {
        let (rssi, ber) = all((uint, next(uint)), resp.first()?)?;
        Ok(Signal {
            rssi: u8_of(rssi)?,
            ber: u8_of(ber)?,
        })
    }
}

/// The answer to `AT+QCSQ`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExtendedSignal {
    /// `<sysmode>` as the modem spells it: `NOSERVICE`, `GSM`, `CAT-M1`/`eMTC`,
    /// `CAT-NB1`/`NBIoT`, `LTE`, `WCDMA`, ...
    pub sysmode: String<12>,
    /// The values for that mode: GSM `<rssi>`; LTE modes `<rssi>,<rsrp>,<sinr>,<rsrq>` (RSSI and
    /// RSRP in dBm, SINR in 1/5 dB steps from −20 dB, RSRQ in dB). Empty without service.
    pub values: Vec<i16, 4>,
}

impl ExtendedSignal {
    /// Whether the modem reports no service (`NOSERVICE`, or no values).
    pub fn no_service(&self) -> bool {
        self.sysmode.eq_ignore_ascii_case("NOSERVICE") || self.values.is_empty()
    }

    /// For LTE modes (four values): `(rssi_dbm, rsrp_dbm, sinr_db, rsrq_db)` with the SINR
    /// converted to dB (`sinr / 5 - 20`, rounded down).
    pub fn lte(&self) -> Option<(i16, i16, i16, i16)> {
        match self.values.as_slice() {
            &[rssi, rsrp, sinr, rsrq] => {
                Some((rssi, rsrp, sinr.div_euclid(5).saturating_sub(20), rsrq))
            }
            _ => None,
        }
    }
}

/// `AT+QCSQ`: Quectel's extended signal report (`+QCSQ: "eMTC",-52,-81,195,-10`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExtendedSignalQuality;

impl Command for ExtendedSignalQuality {
    type Response = ExtendedSignal;
    const EXPECT: Expect = Expect::prefixed(b"+QCSQ:");
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+QCSQ")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<ExtendedSignal, Error> {
        let text = resp.first()?;
        let (mut rest, mode) = field(text).map_err(|_| Error::Parse)?;
        if mode.is_empty() {
            return Err(Error::Parse);
        }
        let mut values = Vec::new();
        loop {
            rest = trim_ascii(rest);
            if rest.is_empty() {
                break;
            }
            let (r, v) = next(int).parse(rest).map_err(|_| Error::Parse)?;
            let v = i16::try_from(v).map_err(|_| Error::Parse)?;
            values.push(v).map_err(|_| Error::Parse)?;
            rest = r;
        }
        Ok(ExtendedSignal {
            sysmode: crate::util::text(mode)?,
            values,
        })
    }
}

/// The answer to `AT+QNWINFO`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NetworkInfoResponse {
    /// Access technology as the modem spells it (`"FDD LTE"`, `"eMTC"`, `"CAT-M1"`,
    /// `"Cat-M1"`, `"No Service"`, `"NONE"`, ...); compare case-insensitively.
    pub act: String<16>,
    /// Operator as numeric MCC+MNC (`"46011"`), quoted or not on the wire; empty without service.
    pub operator: String<8>,
    /// Band (`"LTE BAND 3"`, `"GSM 1800"`); empty without service.
    pub band: String<20>,
    /// Channel (EARFCN/ARFCN); 0 without service.
    pub channel: u32,
}

impl NetworkInfoResponse {
    /// Whether the modem reports a serving network (not `No Service`/`NONE`/`NOSERVICE`, and an
    /// operator is present).
    pub fn has_service(&self) -> bool {
        let none = ["No Service", "NONE", "NOSERVICE"]
            .iter()
            .any(|n| self.act.eq_ignore_ascii_case(n));
        !none && !self.operator.is_empty()
    }
}

/// `AT+QNWINFO`: access technology, operator, band and channel
/// (`+QNWINFO: "FDD LTE",46011,"LTE BAND 3",1650`; `+QNWINFO: "No Service"` alone without
/// service).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NetworkInfo;

impl Command for NetworkInfo {
    type Response = NetworkInfoResponse;
    const EXPECT: Expect = Expect::prefixed(b"+QNWINFO:");
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+QNWINFO")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<NetworkInfoResponse, Error> {
        let (act, operator, band, channel) = all(
            (field, opt(next(field)), opt(next(field)), opt(next(uint))),
            resp.first()?,
        )?;
        if act.is_empty() {
            return Err(Error::Parse);
        }
        Ok(NetworkInfoResponse {
            act: crate::util::text(act)?,
            operator: crate::util::text(operator.unwrap_or(b""))?,
            band: crate::util::text(band.unwrap_or(b""))?,
            channel: channel.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::CmeError;
    use crate::at::urc::RegStatus;

    use super::super::testing::{Row, s, table, wrote};

    #[test]
    fn writes() {
        let set = |domain, mode| wrote(&SetRegistrationUrc { domain, mode });
        assert_eq!(set(RegDomain::Cs, 2).unwrap(), b"AT+CREG=2");
        assert_eq!(set(RegDomain::Ps, 0).unwrap(), b"AT+CGREG=0");
        assert_eq!(set(RegDomain::Eps, 1).unwrap(), b"AT+CEREG=1");
        assert_eq!(set(RegDomain::Eps, 4).unwrap(), b"AT+CEREG=4");
        assert_eq!(set(RegDomain::Ps, 4).unwrap(), b"AT+CGREG=4");
        assert_eq!(set(RegDomain::Cs, 4), Err(Error::InvalidArgument));
        assert_eq!(set(RegDomain::Cs, 3), Err(Error::InvalidArgument));
        assert_eq!(set(RegDomain::Eps, 3), Err(Error::InvalidArgument));
        assert_eq!(set(RegDomain::Eps, 5), Err(Error::InvalidArgument));
        assert_eq!(wrote(&GetCreg).unwrap(), b"AT+CREG?");
        assert_eq!(wrote(&GetCgreg).unwrap(), b"AT+CGREG?");
        assert_eq!(wrote(&GetCereg).unwrap(), b"AT+CEREG?");
        assert_eq!(wrote(&GetOperator).unwrap(), b"AT+COPS?");
        assert_eq!(wrote(&SignalQuality).unwrap(), b"AT+CSQ");
        assert_eq!(wrote(&ExtendedSignalQuality).unwrap(), b"AT+QCSQ");
        assert_eq!(wrote(&NetworkInfo).unwrap(), b"AT+QNWINFO");
        assert_eq!(GetCreg::EXPECT, Expect::prefixed(b"+CREG:"));
        assert_eq!(GetCgreg::EXPECT, Expect::prefixed(b"+CGREG:"));
        assert_eq!(GetCereg::EXPECT, Expect::prefixed(b"+CEREG:"));
        assert_eq!(GetOperator::TIMEOUT_MS, 180_000);
        assert_eq!(SignalQuality::TIMEOUT_MS, 300);
        assert_eq!(GetCereg::TIMEOUT_MS, 300);
        // The by-domain read writes and expects what the three commands do.
        for (domain, cmd, prefix) in [
            (RegDomain::Cs, GetCreg.expect(), b"AT+CREG?".as_slice()),
            (RegDomain::Ps, GetCgreg.expect(), b"AT+CGREG?"),
            (RegDomain::Eps, GetCereg.expect(), b"AT+CEREG?"),
        ] {
            let by_domain = GetRegistration(domain);
            assert_eq!(wrote(&by_domain).unwrap(), prefix);
            assert_eq!(by_domain.expect(), cmd);
            assert_eq!(GetRegistration::TIMEOUT_MS, GetCreg::TIMEOUT_MS);
        }
    }

    fn reg(
        mode: u8,
        stat: RegStatus,
        area: Option<u32>,
        cell: Option<u32>,
        act: Option<u8>,
    ) -> Result<RegistrationState, Error> {
        Ok(RegistrationState {
            mode,
            registration: Registration {
                status: stat,
                area,
                cell,
                act,
            },
        })
    }

    #[test]
    fn creg() {
        let rows: &[Row<RegistrationState>] = &[
            (b"\r\n+CREG: 0,1\r\n\r\nOK\r\n", reg(0, RegStatus::Home, None, None, None)),
            (b"AT+CREG?\r\r\n+CREG: 0,5\r\n\r\nOK\r\n", reg(0, RegStatus::Roaming, None, None, None)),
            (
                b"\r\n+CREG: 2,1,\"D509\",\"80D413D\",7\r\n\r\nOK\r\n",
                reg(2, RegStatus::Home, Some(0xD509), Some(0x80D413D), Some(7)),
            ),
            (b"\r\n+CREG: 2,2\r\nOK\r\n", reg(2, RegStatus::Searching, None, None, None)),
            (b"\r\n+CREG: 1,3\r\n\r\nOK\r\n", reg(1, RegStatus::Denied, None, None, None)),
            (b"\r\n+CREG: 1,0\r\n\r\nOK\r\n", reg(1, RegStatus::NotRegistered, None, None, None)),
            // A registration URC in the middle (n=2 form, stat first) is not the answer.
            (
                b"\r\n+CREG: 1,\"D509\",\"80D413D\",7\r\n\r\n+CREG: 2,5,\"D509\",\"80D413E\",7\r\n\r\nOK\r\n",
                reg(2, RegStatus::Roaming, Some(0xD509), Some(0x80D413E), Some(7)),
            ),
            (
                b"\r\n+CREG: 0,1\r\n\r\n+CREG: 2\r\n\r\nOK\r\n",
                reg(0, RegStatus::Home, None, None, None),
            ),
            (b"\r\n+CREG: 0,1\r\n\r\nERrOR\r\n\r\nOK\r\n", reg(0, RegStatus::Home, None, None, None)),
            // Limits and malformed fields.
            (b"\r\n+CREG: 255,4\r\n\r\nOK\r\n", reg(255, RegStatus::Unknown, None, None, None)),
            (b"\r\n+CREG: 256,1\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CREG: 2,1,\"FFFFFFFF\",\"FFFFFFFF\",255\r\n\r\nOK\r\n", reg(2, RegStatus::Home, Some(u32::MAX), Some(u32::MAX), Some(255))),
            (b"\r\n+CREG: 2,1,\"1FFFFFFFF\",\"1\",7\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CREG: 2,1,\"D509\",\"80D413D\",256\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CREG: 2,1,\"XYZ\",\"80D413D\",7\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CREG: 2,1x\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CREG: 2,\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nERROR\r\n", Err(Error::Error)),
            (b"\r\n+CME ERROR: 4\r\n", Err(Error::Cme(CmeError(4)))),
        ];
        table(&GetCreg, rows);
        table(&GetRegistration(RegDomain::Cs), rows);
    }

    #[test]
    fn cgreg_cereg() {
        let rows: &[Row<RegistrationState>] = &[
            (
                b"\r\n+CGREG: 2,1,\"5650\",\"29A7DF4\",2\r\n\r\nOK\r\n",
                reg(2, RegStatus::Home, Some(0x5650), Some(0x29A7DF4), Some(2)),
            ),
            (
                b"AT+CGREG?\r\r\n+CGREG: 2,1,\"5650\",\"29A7DF4\",2\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                reg(2, RegStatus::Home, Some(0x5650), Some(0x29A7DF4), Some(2)),
            ),
            (b"\r\n+CGREG: 0,4\r\n\r\nOK\r\n", reg(0, RegStatus::Unknown, None, None, None)),
        ];
        table(&GetCgreg, rows);
        table(&GetRegistration(RegDomain::Ps), rows);
        let rows: &[Row<RegistrationState>] = &[
            (
                b"\r\n+CEREG: 2,1,\"1A2B\",\"01A2D101\",8\r\n\r\nOK\r\n",
                reg(2, RegStatus::Home, Some(0x1A2B), Some(0x01A2D101), Some(8)),
            ),
            // The URC after a cell change comes after the answer.
            (
                b"\r\n+CEREG: 2,1,\"1A2B\",\"01A2D101\",8\r\n\r\nOK\r\n\r\n+CEREG: 5,\"1A2B\",\"01A2D102\",8\r\n",
                reg(2, RegStatus::Home, Some(0x1A2B), Some(0x01A2D101), Some(8)),
            ),
            (
                b"\r\n+CEREG: 5,\"1A2B\",\"01A2D102\",8\r\n\r\n+CEREG: 2,5,\"1A2B\",\"01A2D102\",9\r\n\r\nOK\r\n",
                reg(2, RegStatus::Roaming, Some(0x1A2B), Some(0x01A2D102), Some(9)),
            ),
            (b"\r\n+CEREG: 4,1,,,,\r\n\r\nOK\r\n", reg(4, RegStatus::Home, None, None, None)),
            (b"\r\n+CEREG: 4,2,,,\r\n\r\nOK\r\n", reg(4, RegStatus::Searching, None, None, None)),
            (
                b"\r\n+CEREG: 4,1,\"1A2B\",\"01A2D101\",8,,,\"00000100\",\"01000011\"\r\n\r\nOK\r\n",
                reg(4, RegStatus::Home, Some(0x1A2B), Some(0x01A2D101), Some(8)),
            ),
            (
                b"\r\n+CEREG: 2,3,\"1A2B\",\"01A2D101\",8,0,15\r\n\r\nOK\r\n",
                reg(2, RegStatus::Denied, Some(0x1A2B), Some(0x01A2D101), Some(8)),
            ),
            (b"\r\n+CEREG: 0,1\r\nOK\r\n", reg(0, RegStatus::Home, None, None, None)),
            (b"\r\n+CEREG: 2,1,\"1A2B\",\"01A2D101\",x\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CME ERROR: 3\r\n", Err(Error::Cme(CmeError(3)))),
        ];
        table(&GetCereg, rows);
        table(&GetRegistration(RegDomain::Eps), rows);
    }

    #[test]
    fn cops() {
        let op = |mode, format, name: Option<&str>, act| {
            Ok(Operator {
                mode,
                format,
                name: name.map(s),
                act,
            })
        };
        let rows: &[Row<Operator>] = &[
            (
                b"\r\n+COPS: 0,0,\"CHINA MOBILE CMCC\",7\r\n\r\nOK\r\n",
                op(0, Some(0), Some("CHINA MOBILE CMCC"), Some(7)),
            ),
            (
                b"AT+COPS?\r\r\n+COPS: 0,2,\"46000\",8\r\n\r\nOK\r\n",
                op(0, Some(2), Some("46000"), Some(8)),
            ),
            (
                b"\r\n+COPS: 0,2,46000,8\r\nOK\r\n",
                op(0, Some(2), Some("46000"), Some(8)),
            ),
            (
                b"\r\n+COPS: 1,1,\"CMCC\"\r\n\r\nOK\r\n",
                op(1, Some(1), Some("CMCC"), None),
            ),
            (b"\r\n+COPS: 0\r\n\r\nOK\r\n", op(0, None, None, None)),
            (b"\r\n+COPS: 2\r\n\r\nOK\r\n", op(2, None, None, None)),
            (
                b"\r\n+COPS: 0\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                op(0, None, None, None),
            ),
            (
                b"\r\n+COPS: 0,0,\"\",7\r\n\r\nOK\r\n",
                op(0, Some(0), None, Some(7)),
            ),
            // 32 characters fit, 33 do not.
            (
                b"\r\n+COPS: 0,0,\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\",7\r\n\r\nOK\r\n",
                op(
                    0,
                    Some(0),
                    Some("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
                    Some(7),
                ),
            ),
            (
                b"\r\n+COPS: 0,0,\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\",7\r\n\r\nOK\r\n",
                Err(Error::Overflow),
            ),
            (
                b"\r\n+COPS: 0,0,\"CMCC\",256\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (b"\r\n+COPS: 0,0,\"CMCC\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+COPS: x\r\n\r\nOK\r\n", Err(Error::Parse)),
            (
                b"\r\n+CME ERROR: 30\r\n",
                Err(Error::Cme(CmeError::NO_NETWORK_SERVICE)),
            ),
        ];
        table(&GetOperator, rows);
    }

    #[test]
    fn csq() {
        let q = |rssi, ber| Ok(Signal { rssi, ber });
        let rows: &[Row<Signal>] = &[
            (b"\r\n+CSQ: 15,3\r\n\r\nOK\r\n", q(15, 3)),
            (b"AT+CSQ\r\r\n+CSQ: 15,3\r\n\r\nOK\r\n", q(15, 3)),
            (
                b"\r\n+CSQ: 15,3\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                q(15, 3),
            ),
            (b"\r\n+CSQ: 15,3\r\nOK\r\n", q(15, 3)),
            (b"\r\nERrOR\r\n+CSQ: 15,3\r\n\r\nOK\r\n", q(15, 3)),
            (b"\r\n+CSQ: 99,99\r\n\r\nOK\r\n", q(99, 99)),
            (b"\r\n+CSQ: 0,0\r\n\r\nOK\r\n", q(0, 0)),
            (b"\r\n+CSQ: 31,7\r\n\r\nOK\r\n", q(31, 7)),
            (b"\r\n+CSQ: 255,255\r\n\r\nOK\r\n", q(255, 255)),
            (b"\r\n+CSQ: 256,0\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CSQ: 15\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CSQ: 15,3,1\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CSQ: -1,3\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CSQ: \r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nERROR\r\n", Err(Error::Error)),
            (b"\r\n+CME ERROR: 10\r\n", Err(Error::Cme(CmeError(10)))),
            (
                b"\r\n+CME ERROR: SIM not inserted\r\n",
                Err(Error::Cme(CmeError(10))),
            ),
        ];
        table(&SignalQuality, rows);
        let dbm = |rssi| Signal { rssi, ber: 99 }.rssi_dbm();
        assert_eq!(dbm(0), Some(-113));
        assert_eq!(dbm(1), Some(-111));
        assert_eq!(dbm(2), Some(-109));
        assert_eq!(dbm(15), Some(-83));
        assert_eq!(dbm(30), Some(-53));
        assert_eq!(dbm(31), Some(-51));
        assert_eq!(dbm(32), None);
        assert_eq!(dbm(99), None);
        assert_eq!(dbm(255), None);
    }

    #[test]
    fn qcsq() {
        let e = |mode: &str, values: &[i16]| {
            Ok(ExtendedSignal {
                sysmode: s(mode),
                values: Vec::from_slice(values).unwrap(),
            })
        };
        let rows: &[Row<ExtendedSignal>] = &[
            (
                b"\r\n+QCSQ: \"eMTC\",-52,-81,195,-10\r\n\r\nOK\r\n",
                e("eMTC", &[-52, -81, 195, -10]),
            ),
            (
                b"\r\n+QCSQ: \"CAT-M1\",-52,-81,195,-10\r\nOK\r\n",
                e("CAT-M1", &[-52, -81, 195, -10]),
            ),
            (
                b"AT+QCSQ\r\r\n+QCSQ: \"NOSERVICE\"\r\n\r\nOK\r\n",
                e("NOSERVICE", &[]),
            ),
            (b"\r\n+QCSQ: \"GSM\",-75\r\n\r\nOK\r\n", e("GSM", &[-75])),
            (
                b"\r\n+QCSQ: NBIoT,-60,-90,100,-12\r\n\r\nOK\r\n",
                e("NBIoT", &[-60, -90, 100, -12]),
            ),
            (
                b"\r\n+QCSQ: \"LTE\",-32768,32767,0,0\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                e("LTE", &[-32768, 32767, 0, 0]),
            ),
            (
                b"\r\n+QCSQ: \"LTE\",-32769,0,0,0\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+QCSQ: \"LTE\",1,2,3,4,5\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (b"\r\n+QCSQ: \"LTE\",1,x\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QCSQ: \"LTE\",\r\n\r\nOK\r\n", Err(Error::Parse)),
            (
                b"\r\n+QCSQ: \"ABCDEFGHIJKLM\"\r\n\r\nOK\r\n",
                Err(Error::Overflow),
            ),
            (b"\r\n+QCSQ: \"\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&ExtendedSignalQuality, rows);
        let lte = e("eMTC", &[-52, -81, 195, -10]).unwrap();
        assert_eq!(lte.lte(), Some((-52, -81, 19, -10)));
        assert!(!lte.no_service());
        assert!(e("NOSERVICE", &[]).unwrap().no_service());
        assert_eq!(e("GSM", &[-75]).unwrap().lte(), None);
    }

    #[test]
    fn qnwinfo() {
        let n = |act: &str, op: &str, band: &str, channel| {
            Ok(NetworkInfoResponse {
                act: s(act),
                operator: s(op),
                band: s(band),
                channel,
            })
        };
        let rows: &[Row<NetworkInfoResponse>] = &[
            (
                b"\r\n+QNWINFO: \"CAT-M1\",\"33450\",\"LTE BAND 4\",2250\r\n\r\nOK\r\n",
                n("CAT-M1", "33450", "LTE BAND 4", 2250),
            ),
            (
                b"\r\n+QNWINFO: \"FDD LTE\",46011,\"LTE BAND 3\",1650\r\n\r\nOK\r\n",
                n("FDD LTE", "46011", "LTE BAND 3", 1650),
            ),
            (
                b"AT+QNWINFO\r\r\n+QNWINFO: \"eMTC\",\"46011\",\"LTE BAND 3\",1850\r\n\r\nOK\r\n",
                n("eMTC", "46011", "LTE BAND 3", 1850),
            ),
            (
                b"\r\n+QNWINFO: \"FDD LTE\",\"311480\",\"LTE BAND 4\",2250\r\nOK\r\n",
                n("FDD LTE", "311480", "LTE BAND 4", 2250),
            ),
            (
                b"\r\n+QNWINFO: \"EDGE\",\"46001\",\"GSM 1800\",653\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                n("EDGE", "46001", "GSM 1800", 653),
            ),
            (b"\r\n+QNWINFO: \"No Service\"\r\n\r\nOK\r\n", n("No Service", "", "", 0)),
            (b"\r\n+QNWINFO: \"NONE\"\r\n\r\nOK\r\n", n("NONE", "", "", 0)),
            (b"\r\n+QNWINFO: No Service\r\n\r\nOK\r\n", n("No Service", "", "", 0)),
            (
                b"\r\n+QNWINFO: \"CDMA1X AND EHRPD\",\"46003\",\"LTE BAND 66\",4294967295\r\n\r\nOK\r\n",
                n("CDMA1X AND EHRPD", "46003", "LTE BAND 66", u32::MAX),
            ),
            (b"\r\n+QNWINFO: \"FDD LTE\",46011,\"LTE BAND 3\",4294967296\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QNWINFO: \"FDD LTE\",46011,\"LTE BAND 3\",x\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QNWINFO: \"FDD LTE\",460111234,\"LTE BAND 3\",1\r\n\r\nOK\r\n", Err(Error::Overflow)),
            (b"\r\n+QNWINFO: \"FDD LTE\",46011,\"LTE BAND 3,1650\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QNWINFO: \r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&NetworkInfo, rows);
        assert!(
            n("FDD LTE", "46011", "LTE BAND 3", 1650)
                .unwrap()
                .has_service()
        );
        assert!(!n("No Service", "", "", 0).unwrap().has_service());
        assert!(!n("none", "", "", 0).unwrap().has_service());
    }
}
