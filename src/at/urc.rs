//! Unsolicited result codes as typed values.

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::tag,
    combinator::{opt, value},
    sequence::preceded,
};

use super::parse::{all, comma, next, quoted, uint};
use crate::error::trim_ascii;

/// The SIM's answer to `AT+CPIN?` / the `+CPIN:` URC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PinCode {
    /// `READY`: no PIN needed.
    Ready,
    /// `SIM PIN`
    SimPin,
    /// `SIM PUK`
    SimPuk,
    /// `SIM PIN2`
    SimPin2,
    /// `SIM PUK2`
    SimPuk2,
    /// `PH-…` personalisation locks (network, network subset, provider, corporate, SIM).
    Personalisation,
    /// `NOT READY` (URC on SIM removal or while the SIM initialises).
    NotReady,
    /// A code this driver does not know.
    Other,
}

impl PinCode {
    /// Parses the text after `+CPIN:`.
    pub fn from_text(text: &[u8]) -> Self {
        match trim_ascii(text) {
            b"READY" => PinCode::Ready,
            b"SIM PIN" => PinCode::SimPin,
            b"SIM PUK" => PinCode::SimPuk,
            b"SIM PIN2" => PinCode::SimPin2,
            b"SIM PUK2" => PinCode::SimPuk2,
            b"NOT READY" => PinCode::NotReady,
            t if t.starts_with(b"PH-") => PinCode::Personalisation,
            _ => PinCode::Other,
        }
    }
}

/// Network registration status (`<stat>` of `+CREG`/`+CGREG`/`+CEREG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegStatus {
    /// 0: not registered, not searching.
    NotRegistered,
    /// 1: registered, home network.
    Home,
    /// 2: not registered, searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown (e.g. out of coverage).
    Unknown,
    /// 5: registered, roaming.
    Roaming,
}

impl RegStatus {
    /// From the numeric `<stat>`; values above 5 are [`RegStatus::Unknown`].
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => RegStatus::NotRegistered,
            1 => RegStatus::Home,
            2 => RegStatus::Searching,
            3 => RegStatus::Denied,
            5 => RegStatus::Roaming,
            _ => RegStatus::Unknown,
        }
    }

    /// Registered, at home or roaming.
    pub fn is_registered(self) -> bool {
        matches!(self, RegStatus::Home | RegStatus::Roaming)
    }
}

/// Which registration a `+CxREG` line reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegDomain {
    /// `+CREG`: circuit-switched.
    Cs,
    /// `+CGREG`: GPRS packet-switched.
    Ps,
    /// `+CEREG`: EPS (LTE, Cat-M1, NB-IoT).
    Eps,
}

/// A registration report: `<stat>[,"<lac/tac>","<ci>"[,<AcT>]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Registration {
    /// The registration status.
    pub status: RegStatus,
    /// Location or tracking area code (hex in the wire format).
    pub area: Option<u32>,
    /// Cell id (hex in the wire format).
    pub cell: Option<u32>,
    /// Access technology (`<AcT>`), e.g. 7 E-UTRAN, 8 Cat-M1, 9 NB-IoT.
    pub act: Option<u8>,
}

fn hex_quoted(i: &[u8]) -> IResult<&[u8], Option<u32>> {
    // An empty field (`,,`) is allowed where the location is unknown.
    if i.is_empty() || i[0] == b',' {
        return Ok((i, None));
    }
    let (i, text) = quoted(i)?;
    if text.is_empty() {
        return Ok((i, None));
    }
    let v = core::str::from_utf8(text)
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok());
    match v {
        Some(v) => Ok((i, Some(v))),
        None => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::HexDigit,
        ))),
    }
}

/// Parses `<stat>[,"<lac>","<ci>"[,<AcT>[,...]]]` (URC form, without the leading `<n>`).
/// Trailing fields (reject cause, PSM timers) are accepted and ignored.
pub fn registration_fields(i: &[u8]) -> IResult<&[u8], Registration> {
    let (i, stat) = uint(i)?;
    let (i, loc) = opt((next(hex_quoted), next(hex_quoted))).parse(i)?;
    let (i, act) = opt(next(uint)).parse(i)?;
    // Anything after is optional extra information.
    let i = &i[i.len()..];
    let (area, cell) = loc.unwrap_or((None, None));
    Ok((
        i,
        Registration {
            status: RegStatus::from_code(stat),
            area,
            cell,
            act: act.and_then(|a| u8::try_from(a).ok()),
        },
    ))
}

/// `+QIND:` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QInd {
    /// `+QIND: SMS DONE`
    SmsDone,
    /// `+QIND: PB DONE`
    PbDone,
    /// `+QIND: "csq",<rssi>,<ber>`
    Csq {
        /// `<rssi>` as in `AT+CSQ`.
        rssi: u8,
        /// `<ber>` as in `AT+CSQ`.
        ber: u8,
    },
    /// Another `+QIND` report.
    Other,
}

/// `+QIURC:` reports of the TCP/IP stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QiUrc {
    /// `"recv",<connectID>`: data is waiting in the modem (buffer-access mode).
    Recv(u8),
    /// `"closed",<connectID>`: the peer or the network closed the socket.
    Closed(u8),
    /// `"pdpdeact",<contextID>`: the network deactivated the PDP context.
    PdpDeact(u8),
    /// `"incoming full"`: an incoming connection was refused.
    IncomingFull,
    /// `"dnsgip",...`: DNS lookup results.
    Dns,
    /// Another `+QIURC` report.
    Other,
}

/// `+QSSLURC:` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QsslUrc {
    /// `"recv",<clientID>`
    Recv(u8),
    /// `"closed",<clientID>`
    Closed(u8),
    /// Another `+QSSLURC` report.
    Other,
}

/// An unsolicited result code.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Urc {
    /// `RDY`: the modem (re)booted.
    Ready,
    /// `APP RDY`: the application core is ready.
    AppReady,
    /// `POWERED DOWN` / `NORMAL POWER DOWN`.
    PoweredDown,
    /// `PSM POWER DOWN`.
    PsmPowerDown,
    /// `RING`.
    Ring,
    /// `+CFUN: <fun>`.
    Cfun(u8),
    /// `+CPIN: <code>`.
    Cpin(PinCode),
    /// `+QUSIM: <n>` (1: USIM, 0: SIM).
    QUsim(u8),
    /// `+QIND: ...`.
    QInd(QInd),
    /// `+CREG:`, `+CGREG:` or `+CEREG:`.
    Registration(RegDomain, Registration),
    /// `+QIURC: ...`.
    QiUrc(QiUrc),
    /// `+QIOPEN: <connectID>,<err>`.
    QiOpen {
        /// Socket id.
        id: u8,
        /// 0 on success, else a 5xx code.
        err: u16,
    },
    /// `+QSSLOPEN: <clientID>,<err>`.
    QsslOpen {
        /// Socket id.
        id: u8,
        /// 0 on success, else a 5xx code.
        err: u16,
    },
    /// `+QSSLURC: ...`.
    QsslUrc(QsslUrc),
    /// A `+XXX:` URC this driver does not know; holds its prefix (`+XXX`, cut to 16 bytes).
    Unknown(heapless::String<16>),
}

/// Prefixes the driver parses into typed URCs.
const KNOWN: &[&[u8]] = &[
    b"+CFUN",
    b"+CPIN",
    b"+QUSIM",
    b"+QIND",
    b"+CREG",
    b"+CGREG",
    b"+CEREG",
    b"+QIURC",
    b"+QIOPEN",
    b"+QSSLOPEN",
    b"+QSSLURC",
];

/// Whether a `+XXX:` line has a prefix this driver knows.
pub fn is_known(line: &[u8]) -> bool {
    match super::line::prefix_of(line) {
        Some(p) => {
            let name = trim_ascii(&p[..p.len() - 1]);
            KNOWN.contains(&name)
        }
        None => super::line::BARE_URCS.contains(&line),
    }
}

fn u8_of(v: u32) -> Option<u8> {
    u8::try_from(v).ok()
}

fn qiurc(i: &[u8]) -> Result<QiUrc, crate::Error> {
    let kind = |k: &'static [u8]| preceded((tag(&b"\""[..]), tag(k), tag(&b"\""[..])), next(uint));
    if let Ok(id) = all(kind(b"recv"), i) {
        // Push mode would append a length; buffer mode is what this driver configures.
        return u8_of(id).map(QiUrc::Recv).ok_or(crate::Error::Parse);
    }
    if let Ok((id, _len)) = all((kind(b"recv"), next(uint)), i) {
        return u8_of(id).map(QiUrc::Recv).ok_or(crate::Error::Parse);
    }
    if let Ok(id) = all(kind(b"closed"), i) {
        return u8_of(id).map(QiUrc::Closed).ok_or(crate::Error::Parse);
    }
    if let Ok(id) = all(kind(b"pdpdeact"), i) {
        return u8_of(id).map(QiUrc::PdpDeact).ok_or(crate::Error::Parse);
    }
    if i == b"\"incoming full\"" {
        return Ok(QiUrc::IncomingFull);
    }
    if i.starts_with(b"\"dnsgip\"") {
        return Ok(QiUrc::Dns);
    }
    Ok(QiUrc::Other)
}

fn qsslurc(i: &[u8]) -> Result<QsslUrc, crate::Error> {
    let kind = |k: &'static [u8]| preceded((tag(&b"\""[..]), tag(k), tag(&b"\""[..])), next(uint));
    if let Ok(id) = all(kind(b"recv"), i) {
        return u8_of(id).map(QsslUrc::Recv).ok_or(crate::Error::Parse);
    }
    if let Ok(id) = all(kind(b"closed"), i) {
        return u8_of(id).map(QsslUrc::Closed).ok_or(crate::Error::Parse);
    }
    Ok(QsslUrc::Other)
}

fn qind(i: &[u8]) -> Result<QInd, crate::Error> {
    match i {
        b"SMS DONE" => Ok(QInd::SmsDone),
        b"PB DONE" => Ok(QInd::PbDone),
        _ => {
            let csq = (value((), tag(&b"\"csq\""[..])), next(uint), next(uint));
            match all(csq, i) {
                Ok(((), rssi, ber)) => Ok(QInd::Csq {
                    rssi: u8_of(rssi).ok_or(crate::Error::Parse)?,
                    ber: u8_of(ber).ok_or(crate::Error::Parse)?,
                }),
                Err(_) => Ok(QInd::Other),
            }
        }
    }
}

fn id_err(i: &[u8]) -> Result<(u8, u16), crate::Error> {
    let (id, err) = all((uint, preceded(comma, uint)), i)?;
    Ok((
        u8_of(id).ok_or(crate::Error::Parse)?,
        u16::try_from(err).map_err(|_| crate::Error::Parse)?,
    ))
}

impl Urc {
    /// Parses one URC line (trimmed, without CR LF). Returns `None` for a line that is not a
    /// well-formed URC (the caller counts it as noise).
    pub fn parse_line(line: &[u8]) -> Option<Urc> {
        let line = trim_ascii(line);
        match line {
            b"RDY" => return Some(Urc::Ready),
            b"APP RDY" => return Some(Urc::AppReady),
            b"POWERED DOWN" | b"NORMAL POWER DOWN" => return Some(Urc::PoweredDown),
            b"PSM POWER DOWN" => return Some(Urc::PsmPowerDown),
            b"RING" => return Some(Urc::Ring),
            _ => {}
        }
        let prefix = super::line::prefix_of(line)?;
        let name = trim_ascii(&prefix[..prefix.len() - 1]);
        let rest = super::line::after_prefix(line);
        let parsed = match name {
            b"+CFUN" => all(uint, rest).ok().and_then(u8_of).map(Urc::Cfun),
            b"+CPIN" => Some(Urc::Cpin(PinCode::from_text(rest))),
            b"+QUSIM" => all(uint, rest).ok().and_then(u8_of).map(Urc::QUsim),
            b"+QIND" => qind(rest).ok().map(Urc::QInd),
            b"+CREG" | b"+CGREG" | b"+CEREG" => {
                let domain = match name {
                    b"+CREG" => RegDomain::Cs,
                    b"+CGREG" => RegDomain::Ps,
                    _ => RegDomain::Eps,
                };
                registration_fields(rest)
                    .ok()
                    .map(|(_, r)| Urc::Registration(domain, r))
            }
            b"+QIURC" => qiurc(rest).ok().map(Urc::QiUrc),
            b"+QIOPEN" => id_err(rest).ok().map(|(id, err)| Urc::QiOpen { id, err }),
            b"+QSSLOPEN" => id_err(rest).ok().map(|(id, err)| Urc::QsslOpen { id, err }),
            b"+QSSLURC" => qsslurc(rest).ok().map(Urc::QsslUrc),
            _ => {
                let mut s = heapless::String::new();
                for &b in name.iter().take(16) {
                    let _ = s.push(b as char);
                }
                Some(Urc::Unknown(s))
            }
        };
        parsed.or_else(|| {
            // A known prefix with a malformed body: report it rather than drop it silently.
            let mut s = heapless::String::new();
            for &b in name.iter().take(16) {
                let _ = s.push(b as char);
            }
            Some(Urc::Unknown(s))
        })
    }
}

impl atat::AtatUrc for Urc {
    fn parse(resp: &[u8]) -> Option<Self> {
        Urc::parse_line(resp)
    }
}

#[allow(dead_code)]
fn _assert_alt_used(i: &[u8]) -> IResult<&[u8], &[u8]> {
    alt((tag(&b"a"[..]), tag(&b"b"[..]))).parse(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> Urc {
        Urc::parse_line(s).unwrap()
    }

    #[test]
    fn urc_table() {
        assert_eq!(p(b"RDY"), Urc::Ready);
        assert_eq!(p(b"APP RDY"), Urc::AppReady);
        assert_eq!(p(b"POWERED DOWN"), Urc::PoweredDown);
        assert_eq!(p(b"+CFUN: 1"), Urc::Cfun(1));
        assert_eq!(p(b"+CPIN: READY"), Urc::Cpin(PinCode::Ready));
        assert_eq!(p(b"+CPIN: SIM PIN"), Urc::Cpin(PinCode::SimPin));
        assert_eq!(p(b"+CPIN: NOT READY"), Urc::Cpin(PinCode::NotReady));
        assert_eq!(p(b"+QUSIM: 1"), Urc::QUsim(1));
        assert_eq!(p(b"+QIND: SMS DONE"), Urc::QInd(QInd::SmsDone));
        assert_eq!(p(b"+QIND: PB DONE"), Urc::QInd(QInd::PbDone));
        assert_eq!(
            p(b"+QIND: \"csq\",20,99"),
            Urc::QInd(QInd::Csq { rssi: 20, ber: 99 })
        );
        assert_eq!(
            p(b"+CREG: 1"),
            Urc::Registration(
                RegDomain::Cs,
                Registration {
                    status: RegStatus::Home,
                    area: None,
                    cell: None,
                    act: None
                }
            )
        );
        assert_eq!(
            p(b"+CREG: 1,\"D509\",\"80D413D\",7"),
            Urc::Registration(
                RegDomain::Cs,
                Registration {
                    status: RegStatus::Home,
                    area: Some(0xD509),
                    cell: Some(0x80D413D),
                    act: Some(7)
                }
            )
        );
        assert_eq!(
            p(b"+CEREG: 5,\"1A2B\",\"01A2D102\",8"),
            Urc::Registration(
                RegDomain::Eps,
                Registration {
                    status: RegStatus::Roaming,
                    area: Some(0x1A2B),
                    cell: Some(0x01A2D102),
                    act: Some(8)
                }
            )
        );
        assert_eq!(
            p(b"+CEREG: 1,,\"01A2D101\",8"),
            Urc::Registration(
                RegDomain::Eps,
                Registration {
                    status: RegStatus::Home,
                    area: None,
                    cell: Some(0x01A2D101),
                    act: Some(8)
                }
            )
        );
        assert_eq!(p(b"+QIURC: \"recv\",0"), Urc::QiUrc(QiUrc::Recv(0)));
        assert_eq!(p(b"+QIURC: \"closed\",11"), Urc::QiUrc(QiUrc::Closed(11)));
        assert_eq!(p(b"+QIURC: \"pdpdeact\",1"), Urc::QiUrc(QiUrc::PdpDeact(1)));
        assert_eq!(
            p(b"+QIURC: \"incoming full\""),
            Urc::QiUrc(QiUrc::IncomingFull)
        );
        assert_eq!(p(b"+QIOPEN: 0,0"), Urc::QiOpen { id: 0, err: 0 });
        assert_eq!(p(b"+QIOPEN: 0,566"), Urc::QiOpen { id: 0, err: 566 });
        assert_eq!(p(b"+QSSLOPEN: 4,0"), Urc::QsslOpen { id: 4, err: 0 });
        assert_eq!(p(b"+QSSLURC: \"recv\",4"), Urc::QsslUrc(QsslUrc::Recv(4)));
        assert_eq!(
            p(b"+QSSLURC: \"closed\",4"),
            Urc::QsslUrc(QsslUrc::Closed(4))
        );
        assert_eq!(p(b"+FOO: 1,2"), Urc::Unknown("+FOO".try_into().unwrap()));
        assert_eq!(
            p(b"+QIOPEN: x"),
            Urc::Unknown("+QIOPEN".try_into().unwrap())
        );
        assert_eq!(Urc::parse_line(b"hello"), None);
    }
}
