//! Unsolicited result codes as typed values.

use nom::{IResult, Parser, branch::alt, bytes::complete::tag};

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::parse::uints;
use crate::error::trim_ascii;

pub use super::urc_ext::{
    EdrxReport, NetworkTimeReport, TimeFields, URC_TEXT_MAX, UrcText, parse_time_text,
};

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
        Self::from_trimmed(trim_ascii(text))
    }

    /// [`PinCode::from_text`] of a text without white space at its ends (a URC's text, as the
    /// digester split it: not trimmed again).
    pub(crate) fn from_trimmed(t: &[u8]) -> Self {
        // `READY`, nearly every answer, without the table.
        if t == b"READY" {
            return PinCode::Ready;
        }
        match super::line::find_in(
            b"\x07SIM PIN\x07SIM PUK\x08SIM PIN2\x08SIM PUK2\x09NOT READY",
            t,
        ) {
            Some(0) => PinCode::SimPin,
            Some(1) => PinCode::SimPuk,
            Some(2) => PinCode::SimPin2,
            Some(3) => PinCode::SimPuk2,
            Some(_) => PinCode::NotReady,
            None if t.starts_with(b"PH-") => PinCode::Personalisation,
            None => PinCode::Other,
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

/// The value of a hexadecimal digit (either case), or `None`.
#[inline]
fn hex_digit(d: u8) -> Option<u32> {
    let v = match d {
        b'0'..=b'9' => d.wrapping_sub(b'0'),
        // (`| 0x20`: upper case to lower case; no other byte lands in `a..=f`.)
        _ => match d | 0x20 {
            l @ b'a'..=b'f' => l.wrapping_sub(b'a' - 10),
            _ => return None,
        },
    };
    Some(u32::from(v))
}

/// Hexadecimal digits from the start of `t` (at least one, fitting `u32`): the value and how
/// many digits (up to the first byte that is not one), or a count of 0 (no digit, or above
/// `u32::MAX`). One pass, a shift and a test per digit (no `char::to_digit`, no checked
/// multiplication); returned in two registers, not through memory.
#[inline(never)]
fn read_hex(t: &[u8]) -> (u32, usize) {
    let mut v: u32 = 0;
    let mut n = 0usize;
    while let Some(d) = t.get(n).copied().and_then(hex_digit) {
        if v > 0x0fff_ffff {
            return (0, 0);
        }
        v = v << 4 | d;
        n = n.wrapping_add(1);
    }
    (v, n)
}

/// A hexadecimal `u32` as `u32::from_str_radix(_, 16)` reads it (an optional `+`, then at least
/// one hex digit), by hand.
#[inline(never)]
pub(crate) fn hex_u32(t: &[u8]) -> Option<u32> {
    let t = t.strip_prefix(b"+").unwrap_or(t);
    match read_hex(t) {
        (v, n) if n != 0 && n == t.len() => Some(v),
        _ => None,
    }
}

/// `"<hex>"`, an empty quoted field or an empty field (`,,`, where the location is unknown):
/// the value and the rest, or `None` (malformed). The digits are read up to the closing quote
/// in one pass (what [`hex_u32`] of the quoted text gives).
fn hex_quoted(i: &[u8]) -> Option<(&[u8], Option<u32>)> {
    if i.first().is_none_or(|&b| b == b',') {
        return Some((i, None));
    }
    let rest = i.strip_prefix(b"\"")?;
    if let Some(rest) = rest.strip_prefix(b"\"") {
        return Some((rest, None));
    }
    let t = rest.strip_prefix(b"+").unwrap_or(rest);
    match read_hex(t) {
        (_, 0) => None,
        (v, n) => Some((t.get(n..)?.strip_prefix(b"\"")?, Some(v))),
    }
}

/// Parses `<stat>[,"<lac>","<ci>"[,<AcT>[,...]]]` (URC form, without the leading `<n>`).
/// Trailing fields (reject cause, PSM timers) are accepted and ignored: they are what is
/// returned with the report (empty when the line ends after the fields read). Read by hand (it
/// is the most frequent URC's body).
/// (`Err(Parse)` when `<stat>` is not a number; no nom result is built.)
pub(crate) fn registration_fields(i: &[u8]) -> Result<(&[u8], Registration), crate::Error> {
    use super::parse::{after_comma, read_uint};
    let (mut i, stat) = read_uint(i).ok_or(crate::Error::Parse)?;
    let mut r = Registration {
        status: RegStatus::from_code(stat),
        area: None,
        cell: None,
        act: None,
    };
    // `,"<lac>","<ci>"`, both or neither (written into the report in place, no tuple of
    // options to move).
    if let Some((j, area)) = after_comma(i).and_then(hex_quoted)
        && let Some((j, cell)) = after_comma(j).and_then(hex_quoted)
    {
        (r.area, r.cell, i) = (area, cell, j);
    }
    if let Some((j, a)) = after_comma(i).and_then(read_uint) {
        (r.act, i) = (u8::try_from(a).ok(), j);
    }
    // Anything after is optional extra information (returned, not read).
    Ok((i, r))
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
    /// `"dnsgip",<err>,<IP_count>,<DNS_ttl>`: the outcome of an `AT+QIDNSGIP` lookup. On success
    /// (`err` 0) `count` address lines follow ([`QiUrc::DnsAddress`]); on failure (e.g. 565 DNS
    /// parse failed) none do, and some firmware sends `<err>` alone.
    DnsResult {
        /// 0 on success, else a TCP/IP error code of the module (e.g. 565).
        err: u16,
        /// How many address lines follow (at most 255 counted).
        count: u8,
    },
    /// `"dnsgip","<hostIPaddr>"`: one address of the lookup announced by
    /// [`QiUrc::DnsResult`]. `None` when the modem sent something that is not an IP address (the
    /// line still counts towards `count`).
    DnsAddress(Option<IpAddr>),
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
    /// `PSM POWER DOWN`: the module enters PSM; it takes no command until it wakes (`RDY`).
    PsmPowerDown,
    /// `+QPSMTIMER: <tau_timer>,<T3324_timer>` (after `AT+QCFG="psm/urc",1`): the PSM timers
    /// the network granted, in seconds.
    QPsmTimer {
        /// Granted periodic TAU (T3412 extended), seconds.
        periodic_tau_s: u32,
        /// Granted active time (T3324), seconds.
        active_time_s: u32,
    },
    /// `RING`.
    Ring,
    /// A bare notice the manuals list (`Call Ready`, `SMS Ready`, a voltage warning, a call
    /// ending with `NO CARRIER` while no dial command is in flight, ...).
    Notice(Notice),
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
    /// `+CEDRXP: ...`: the network's eDRX parameters (with `AT+CEDRXS=2`), typed by
    /// [`UrcText::edrx`].
    Edrx(UrcText),
    /// `+CTZV: ...` or `+CTZE: ...`: the network sent its time zone (and maybe the time),
    /// typed by [`UrcText::time_zone`].
    TimeZone(UrcText),
    /// A `+XXX:` URC this driver does not know; holds its prefix (`+XXX`, cut to 16 bytes).
    /// Also a bare line that arrived while no command was in flight and is no known notice
    /// (its first 16 bytes).
    Unknown(heapless::String<16>),
}

/// Bare notices (no `+XXX:` prefix) from the manuals of the supported modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Notice {
    /// `Call Ready`: the voice/call stack is up (EC2x, EG91, BG96 with voice).
    CallReady,
    /// `SMS Ready`: SMS functions can be used.
    SmsReady,
    /// `UNDER-VOLTAGE WARNING`.
    UnderVoltageWarning,
    /// `UNDER-VOLTAGE POWER DOWN`: the module switches itself off.
    UnderVoltagePowerDown,
    /// `OVER-VOLTAGE WARNING`.
    OverVoltageWarning,
    /// `OVER-VOLTAGE POWER DOWN`: the module switches itself off.
    OverVoltagePowerDown,
    /// `NO CARRIER`, `BUSY`, `NO ANSWER` or `NO DIALTONE` while no dial or data-mode command was
    /// in flight: a call or data connection ended (these are final result codes only for the
    /// commands that can produce them).
    CallEnded,
}

impl Notice {
    /// The notice that bare word `w` ([`word`](super::line::word)) is, if it is one.
    fn of_word(w: u8) -> Option<Notice> {
        use super::line::word;
        Some(match w {
            word::CALL_READY => Notice::CallReady,
            word::SMS_READY => Notice::SmsReady,
            word::UNDER_VOLTAGE_WARNING => Notice::UnderVoltageWarning,
            word::UNDER_VOLTAGE_POWER_DOWN => Notice::UnderVoltagePowerDown,
            word::OVER_VOLTAGE_WARNING => Notice::OverVoltageWarning,
            word::OVER_VOLTAGE_POWER_DOWN => Notice::OverVoltagePowerDown,
            word::NO_CARRIER..=word::NO_DIALTONE => Notice::CallEnded,
            _ => return None,
        })
    }
}

/// Whether a URC line is a `+XXX:` URC whose prefix this driver does not parse into a typed
/// URC (a `match` on the name: the compiler dispatches on its length), or a bare line that is
/// no known notice; `split` is what [`split_prefix`](super::line::split_prefix) gives for
/// `line` (the digester found it while classifying the line).
pub(crate) fn is_unknown_split(line: &[u8], split: Option<super::line::Split<'_>>) -> bool {
    match split {
        Some(s) => !matches!(
            s.name,
            b"+CFUN"
                | b"+CPIN"
                | b"+QUSIM"
                | b"+QIND"
                | b"+CREG"
                | b"+CGREG"
                | b"+CEREG"
                | b"+QIURC"
                | b"+QIOPEN"
                | b"+QSSLOPEN"
                | b"+QSSLURC"
                | b"+CEDRXP"
                | b"+CTZV"
                | b"+CTZE"
        ),
        // A bare line that is no known bare URC or notice (one lookup: every bare URC and
        // notice is a bare word, and the bare words that are neither are finals).
        None => {
            super::line::bare_word(line)
                .is_none_or(|w| w < super::line::word::RDY && Notice::of_word(w).is_none())
                && line.first().is_some_and(u8::is_ascii_alphabetic)
        }
    }
}

fn u8_of(v: u32) -> Option<u8> {
    u8::try_from(v).ok()
}

/// The socket URC kinds [`socket_fields`] tells apart.
const RECV: u8 = 0;
const CLOSED: u8 = 1;
const PDPDEACT: u8 = 2;

/// `"recv"`, `"closed"` or `"pdpdeact"` with an id and maybe a third number, the form of
/// nearly every `+QIURC`/`+QSSLURC` line: the kind ([`RECV`], [`CLOSED`], [`PDPDEACT`]), the
/// id and the number; `None` for anything else. Read by hand, the kind once (compared with its
/// closing quote as written, no search for the quote): then `,<d>` (a one-digit id, nearly
/// every socket URC) at once, or `,<id>[,<n>]` with spaces and tabs around the commas and
/// after the last number, by [`uints`](super::parse::uints).
#[inline(always)]
fn socket_fields(i: &[u8]) -> Option<(u8, u32, Option<u32>)> {
    use super::parse::{after_comma, uints};
    let rest = i.strip_prefix(b"\"")?;
    // (No kind holds a quote: the first quote closes it, as a search for it would find.)
    let (kind, rest) = if let Some(r) = rest.strip_prefix(b"recv\"") {
        (RECV, r)
    } else if let Some(r) = rest.strip_prefix(b"closed\"") {
        (CLOSED, r)
    } else if let Some(r) = rest.strip_prefix(b"pdpdeact\"") {
        (PDPDEACT, r)
    } else {
        return None;
    };
    // (`rest` starts after the closing quote.)
    if let [b',', d @ b'0'..=b'9'] = rest {
        return Some((kind, u32::from(d.wrapping_sub(b'0')), None));
    }
    let rest = after_comma(rest)?;
    match uints::<2>(rest) {
        Some([id, n]) => Some((kind, id, Some(n))),
        None => uints::<1>(rest).map(|[id]| (kind, id, None)),
    }
}

fn qiurc(i: &[u8]) -> Result<QiUrc, crate::Error> {
    socket_urc(i, false)
}

/// A `+QIURC` (`ssl` false) or `+QSSLURC` (`ssl` true) body, both read by this one function:
/// a `+QSSLURC` is a `"recv"` or `"closed"` with an id and nothing after it, or
/// [`QiUrc::Other`].
#[inline(never)]
fn socket_urc(i: &[u8], ssl: bool) -> Result<QiUrc, crate::Error> {
    // The usual forms, `"recv"` or `"closed"` with a one-digit id and nothing after, at once
    // (what `socket_fields` and the arms below give them).
    let (recv, id) = match i.len() {
        8 => (true, i.strip_prefix(b"\"recv\",")),
        10 => (false, i.strip_prefix(b"\"closed\",")),
        _ => (false, None),
    };
    if let Some(&[d @ b'0'..=b'9']) = id {
        let d = d.wrapping_sub(b'0');
        return Ok(if recv {
            QiUrc::Recv(d)
        } else {
            QiUrc::Closed(d)
        });
    }
    socket_urc_rest(i, ssl)
}

/// [`socket_urc`] for the forms it does not take at once (out of line: the usual forms save no
/// registers for the general read).
#[inline(never)]
fn socket_urc_rest(i: &[u8], ssl: bool) -> Result<QiUrc, crate::Error> {
    let id = |id| u8_of(id).ok_or(crate::Error::Parse);
    match socket_fields(i) {
        Some((RECV, n, None)) => return id(n).map(QiUrc::Recv),
        // Push mode would append a length; buffer mode is what this driver configures.
        Some((RECV, n, Some(_))) if !ssl => return id(n).map(QiUrc::Recv),
        Some((CLOSED, n, None)) => return id(n).map(QiUrc::Closed),
        Some((PDPDEACT, n, None)) if !ssl => return id(n).map(QiUrc::PdpDeact),
        _ => {}
    }
    if ssl {
        return Ok(QiUrc::Other);
    }
    if i == b"\"incoming full\"" {
        return Ok(QiUrc::IncomingFull);
    }
    if let Some(rest) = i.strip_prefix(b"\"dnsgip\"") {
        return dnsgip(rest);
    }
    Ok(QiUrc::Other)
}

/// An IPv4 address in dotted-decimal form.
fn ipv4(t: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut t = t;
    // Four parts of one to three decimal digits, each at most 255, between dots (read in
    // place, no split iterator).
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            t = t.strip_prefix(b".")?;
        }
        let (rest, v) = super::parse::read_uint(t)?;
        if t.len().wrapping_sub(rest.len()) > 3 {
            return None;
        }
        *octet = u8::try_from(v).ok()?;
        t = rest;
    }
    t.is_empty().then_some(Ipv4Addr::from(octets))
}

/// An IPv6 address in its text forms (eight groups, or fewer around one `::`); the forms with an
/// IPv4 tail or a zone are not accepted.
fn ipv6(t: &[u8]) -> Option<Ipv6Addr> {
    let (mut groups, mut n, mut gap) = ([0u16; 8], 0, None);
    let mut t = t;
    if let Some(rest) = t.strip_prefix(b"::") {
        (gap, t) = (Some(0), rest);
    }
    // Groups of one to four hex digits (by `read_hex`, out of line) between colons, one `::`.
    // (Empty only after a leading `::`: the address `::`.)
    while !t.is_empty() {
        let (v, digits) = read_hex(t);
        if digits == 0 || digits > 4 {
            return None;
        }
        let rest = t.get(digits..)?;
        // At most four hex digits: `v` fits 16 bits.
        *groups.get_mut(n)? = v as u16;
        n = n.checked_add(1)?;
        t = match rest {
            [] => break,
            [b':', b':', r @ ..] if gap.is_none() => {
                gap = Some(n);
                if r.is_empty() {
                    break;
                }
                r
            }
            // A colon at the end is refused (nothing for `read_hex`).
            [b':', r @ ..] if !r.is_empty() => r,
            _ => return None,
        };
    }
    match gap {
        None if n == 8 => {}
        Some(at) if n < 8 => {
            // `at <= n < 8`: the groups after the gap move to the end, the gap is zeros.
            let end = at.checked_add(8usize.checked_sub(n)?)?;
            groups.copy_within(at..n, end);
            groups.get_mut(at..end)?.fill(0);
        }
        _ => return None,
    }
    Some(Ipv6Addr::from(groups))
}

/// An IP address as the modem writes it. (Smaller on firmware than `core::net`'s parser, which
/// would be linked into every build through the URC parser.)
pub(crate) fn ip_addr(t: &[u8]) -> Option<IpAddr> {
    if t.contains(&b':') {
        ipv6(t).map(IpAddr::V6)
    } else {
        ipv4(t).map(IpAddr::V4)
    }
}

/// The part of a `+QIURC: "dnsgip"` line after `"dnsgip"`: `,"<ip>"`, `,<err>,<count>,<ttl>` or
/// `,<err>`. (Written by hand rather than with nom: this runs in every firmware's URC parser,
/// and the hand-written form is several hundred bytes smaller. The numbers are read by
/// [`uints`](super::parse::uints), spaces and tabs around the commas allowed, as every other
/// URC's numbers are.)
fn dnsgip(i: &[u8]) -> Result<QiUrc, crate::Error> {
    let i = trim_ascii(i)
        .strip_prefix(b",")
        .ok_or(crate::Error::Parse)?;
    if let [b'"', addr @ .., b'"'] = trim_ascii(i) {
        return Ok(QiUrc::DnsAddress(ip_addr(addr)));
    }
    let i = super::parse::skip_space(i);
    let (err, count) = match super::parse::uints::<3>(i) {
        Some([err, count, _ttl]) => (err, count),
        None => match super::parse::uints::<1>(i) {
            Some([err]) => (err, 0),
            None => return Err(crate::Error::Parse),
        },
    };
    let err = u16::try_from(err).map_err(|_| crate::Error::Parse)?;
    let count = if err == 0 {
        u8::try_from(count).unwrap_or(u8::MAX)
    } else {
        0
    };
    Ok(QiUrc::DnsResult { err, count })
}

#[inline(always)]
fn qsslurc(i: &[u8]) -> Result<QsslUrc, crate::Error> {
    Ok(match socket_urc(i, true)? {
        QiUrc::Recv(id) => QsslUrc::Recv(id),
        QiUrc::Closed(id) => QsslUrc::Closed(id),
        _ => QsslUrc::Other,
    })
}

/// A `+QIND` body: `SMS DONE` compared in line (inlined into the name's `match`: no call for
/// it), anything else by [`qind_report`].
#[inline(always)]
fn qind(i: &[u8]) -> Result<QInd, crate::Error> {
    // (`==`, a length test and a `memcmp` call, where a `match` compared the text byte by
    // byte in line.)
    if i == b"SMS DONE" {
        return Ok(QInd::SmsDone);
    }
    qind_report(i)
}

/// [`qind`] for what is not `SMS DONE`: `PB DONE`, a `"csq"` report, or [`QInd::Other`].
#[inline(never)]
fn qind_report(i: &[u8]) -> Result<QInd, crate::Error> {
    if i == b"PB DONE" {
        return Ok(QInd::PbDone);
    }
    let csq = i
        .strip_prefix(b"\"csq\"")
        .and_then(super::parse::after_comma)
        .and_then(super::parse::uint_pair);
    match csq {
        // (Both numbers checked at once, no result built for the first.)
        Some([rssi, ber]) => match (u8_of(rssi), u8_of(ber)) {
            (Some(rssi), Some(ber)) => Ok(QInd::Csq { rssi, ber }),
            _ => Err(crate::Error::Parse),
        },
        None => Ok(QInd::Other),
    }
}

/// `<id>,<err>` (`+QIOPEN`, `+QSSLOPEN`): the usual form, a one-digit id and error (`0,0`,
/// an open that succeeded), taken at once; any other by [`uint_pair`](super::parse::uint_pair).
fn id_err(i: &[u8]) -> Result<(u8, u16), crate::Error> {
    if let [id @ b'0'..=b'9', b',', err @ b'0'..=b'9'] = *i {
        return Ok((id.wrapping_sub(b'0'), u16::from(err.wrapping_sub(b'0'))));
    }
    let [id, err] = super::parse::uint_pair(i).ok_or(crate::Error::Parse)?;
    // (Both checked at once, no result built for the first.)
    match (u8_of(id), u16::try_from(err)) {
        (Some(id), Ok(err)) => Ok((id, err)),
        _ => Err(crate::Error::Parse),
    }
}

/// A name's first and last four bytes as one word (the first in its low half), 0 for a name
/// shorter than four bytes: with the name's length, every byte of a name of 5 to 8 bytes. (A
/// `const fn`: the patterns are made by it too.)
#[inline(always)]
const fn name_key(name: &[u8]) -> u64 {
    match (name.first_chunk::<4>(), name.last_chunk::<4>()) {
        (Some(first), Some(last)) => {
            u32::from_le_bytes(*first) as u64 | (u32::from_le_bytes(*last) as u64) << 32
        }
        _ => 0,
    }
}

const QIURC: u64 = name_key(b"+QIURC");
const CEREG: u64 = name_key(b"+CEREG");
const QSSLURC: u64 = name_key(b"+QSSLURC");
const QIND: u64 = name_key(b"+QIND");
const CPIN: u64 = name_key(b"+CPIN");
const QUSIM: u64 = name_key(b"+QUSIM");
const QIOPEN: u64 = name_key(b"+QIOPEN");

impl Urc {
    /// Parses one URC line (trimmed, without CR LF). Returns `None` for a line that is not a
    /// well-formed URC (the caller counts it as noise).
    pub(crate) fn parse_line(line: &[u8]) -> Option<Urc> {
        let line = trim_ascii(line);
        Self::parse_split(line, super::line::split_prefix(line))
    }

    /// [`Urc::parse_line`] for a trimmed line already split at its prefix (`split`: what
    /// [`split_prefix`](super::line::split_prefix) gives for `line`; the digester found it
    /// while classifying the line).
    ///
    /// Inlined into its callers (the runner's URC sink is the only one on firmware): the URC is
    /// built in the caller's frame, not returned through memory and copied again.
    #[inline(always)]
    pub(crate) fn parse_split(line: &[u8], split: Option<super::line::Split<'_>>) -> Option<Urc> {
        Self::parse_split_more(line, split, &mut false)
    }

    /// [`Urc::parse_split`], and whether a `+CEREG` report has fields after those it reads
    /// (`more`, left as it is for any other line): only then can it carry PSM timers (they
    /// are its fields 6 and 7, and the report reads at most three of its commas), which the
    /// runner then reads from the text (a report without them, nearly every one, is not
    /// looked at again).
    #[inline(always)]
    pub(crate) fn parse_split_more(
        line: &[u8],
        split: Option<super::line::Split<'_>>,
        more: &mut bool,
    ) -> Option<Urc> {
        // A `+XXX:` line, else a bare one.
        let Some(super::line::Split {
            name, text: rest, ..
        }) = split
        else {
            return Self::parse_bare(line);
        };
        // The frequent URCs by a `match` on the name's length and its first and last four bytes
        // read as one word ([`name_key`]: every byte of a name of 5 to 8 bytes, compared at
        // once, not byte by byte), the rest by a table ([`Urc::parse_rare`]). Each arm returns
        // what it read (built where the caller keeps it: no `Option<Urc>` in between to copy).
        // (The key read only for the lengths it covers: no test for a shorter name there.)
        let key = match name.len() {
            5..=8 => name_key(name),
            _ => 0,
        };
        match (name.len(), key) {
            (6, QIURC) => {
                if let Ok(q) = qiurc(rest) {
                    return Some(Urc::QiUrc(q));
                }
            }
            (6, CEREG) => {
                if let Ok((tail, r)) = registration_fields(rest) {
                    *more = !tail.is_empty();
                    return Some(Urc::Registration(RegDomain::Eps, r));
                }
            }
            (8, QSSLURC) => {
                if let Ok(q) = qsslurc(rest) {
                    return Some(Urc::QsslUrc(q));
                }
            }
            (5, QIND) => {
                if let Ok(q) = qind(rest) {
                    return Some(Urc::QInd(q));
                }
            }
            (5, CPIN) => return Some(Urc::Cpin(PinCode::from_trimmed(rest))),
            (6, QUSIM) => {
                // (Its one form, a digit, at once.)
                if let [d @ b'0'..=b'9'] = *rest {
                    return Some(Urc::QUsim(d.wrapping_sub(b'0')));
                }
                if let Some(v) = uints::<1>(rest).and_then(|[v]| u8_of(v)) {
                    return Some(Urc::QUsim(v));
                }
            }
            (7, QIOPEN) => {
                if let Ok((id, err)) = id_err(rest) {
                    return Some(Urc::QiOpen { id, err });
                }
            }
            _ => {
                if let Some(u) = Self::parse_rare(name, rest) {
                    return Some(u);
                }
            }
        }
        // An unknown prefix, or a known one with a malformed body: report it rather than drop
        // it silently.
        Urc::unknown(name)
    }

    /// [`Urc::parse_split`] for the less frequent known names, found in a table (one search
    /// where a `match` compared each name in line); `None` for an unknown name or a malformed
    /// body.
    #[inline(never)]
    fn parse_rare(name: &[u8], rest: &[u8]) -> Option<Urc> {
        const RARE: &[u8] = b"\x05+CFUN\x05+CREG\x06+CGREG\x09+QSSLOPEN\x0a+QPSMTIMER\
\x07+CEDRXP\x05+CTZV\x05+CTZE";
        match super::line::find_in(RARE, name)? {
            0 => uints::<1>(rest).and_then(|[v]| u8_of(v)).map(Urc::Cfun),
            k @ (1 | 2) => registration_fields(rest).ok().map(|(_, r)| {
                let domain = if k == 1 { RegDomain::Cs } else { RegDomain::Ps };
                Urc::Registration(domain, r)
            }),
            3 => id_err(rest).ok().map(|(id, err)| Urc::QsslOpen { id, err }),
            4 => uints::<2>(rest).map(|[periodic_tau_s, active_time_s]| Urc::QPsmTimer {
                periodic_tau_s,
                active_time_s,
            }),
            k => UrcText::new(rest).map(|t| {
                if k == 5 {
                    Urc::Edrx(t)
                } else {
                    Urc::TimeZone(t)
                }
            }),
        }
    }

    /// [`Urc::Unknown`] of `text`'s first 16 bytes (one copy for the three callers).
    #[inline(never)]
    fn unknown(text: &[u8]) -> Option<Urc> {
        let mut s = heapless::String::new();
        for &b in text.iter().take(16) {
            let _ = s.push(b as char);
        }
        Some(Urc::Unknown(s))
    }

    /// A line without a `+XXX:` prefix.
    fn parse_bare(line: &[u8]) -> Option<Urc> {
        use super::line::word;
        if let Some(w) = super::line::bare_word(line) {
            match w {
                word::RDY => return Some(Urc::Ready),
                word::APP_RDY => return Some(Urc::AppReady),
                word::POWERED_DOWN | word::NORMAL_POWER_DOWN => return Some(Urc::PoweredDown),
                word::PSM_POWER_DOWN => return Some(Urc::PsmPowerDown),
                word::RING => return Some(Urc::Ring),
                _ => {}
            }
            if let Some(n) = Notice::of_word(w) {
                return Some(Urc::Notice(n));
            }
        }
        // A bare line the digester took for a URC (none was in flight): report it.
        if !line.first().is_some_and(u8::is_ascii_alphabetic) {
            return None;
        }
        Urc::unknown(line)
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
        let dns = |err, count| Urc::QiUrc(QiUrc::DnsResult { err, count });
        assert_eq!(p(b"+QIURC: \"dnsgip\",0,2,600"), dns(0, 2));
        assert_eq!(p(b"+QIURC: \"dnsgip\",0,1,0"), dns(0, 1));
        assert_eq!(p(b"+QIURC: \"dnsgip\",565"), dns(565, 0));
        // A failure announces no address lines, whatever count it shows.
        assert_eq!(p(b"+QIURC: \"dnsgip\",565,3,0"), dns(565, 0));
        assert_eq!(p(b"+QIURC: \"dnsgip\",0,300,60"), dns(0, 255));
        assert_eq!(
            p(b"+QIURC: \"dnsgip\",\"172.188.83.251\""),
            Urc::QiUrc(QiUrc::DnsAddress(Some("172.188.83.251".parse().unwrap())))
        );
        assert_eq!(
            p(b"+QIURC: \"dnsgip\",\"2001:DB8::1\""),
            Urc::QiUrc(QiUrc::DnsAddress(Some("2001:db8::1".parse().unwrap())))
        );
        assert_eq!(
            p(b"+QIURC: \"dnsgip\",\"not-an-address\""),
            Urc::QiUrc(QiUrc::DnsAddress(None))
        );
        // Malformed headers are reported as unknown, not taken for a result.
        for bad in [
            &b"+QIURC: \"dnsgip\""[..],
            b"+QIURC: \"dnsgip\",",
            b"+QIURC: \"dnsgip\",0,2",
            b"+QIURC: \"dnsgip\",70000,0,0",
            b"+QIURC: \"dnsgip\",x,1,1",
        ] {
            assert_eq!(
                p(bad),
                Urc::Unknown("+QIURC".try_into().unwrap()),
                "{bad:?}"
            );
        }
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
        // A bare line outside a command is reported, not dropped.
        assert_eq!(p(b"hello"), Urc::Unknown("hello".try_into().unwrap()));
        assert_eq!(Urc::parse_line(b"> "), None);
    }

    /// The nom reading of a registration report that `registration_fields` replaced.
    fn registration_fields_nom(i: &[u8]) -> IResult<&[u8], Registration> {
        use crate::at::parse::{next, quoted, uint};
        use nom::combinator::opt;
        fn hex_quoted(i: &[u8]) -> IResult<&[u8], Option<u32>> {
            if i.first().is_none_or(|&b| b == b',') {
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
        let (i, stat) = uint(i)?;
        let (i, loc) = opt((next(hex_quoted), next(hex_quoted))).parse(i)?;
        let (i, act) = opt(next(uint)).parse(i)?;
        let i = i.get(i.len()..).unwrap_or_default();
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

    /// The `match`es on the line that the table of bare words replaced.
    fn old_bare(line: &[u8]) -> Option<Urc> {
        Some(match line {
            b"RDY" => Urc::Ready,
            b"APP RDY" => Urc::AppReady,
            b"POWERED DOWN" | b"NORMAL POWER DOWN" => Urc::PoweredDown,
            b"PSM POWER DOWN" => Urc::PsmPowerDown,
            b"RING" => Urc::Ring,
            b"Call Ready" => Urc::Notice(Notice::CallReady),
            b"SMS Ready" => Urc::Notice(Notice::SmsReady),
            b"UNDER-VOLTAGE WARNING" => Urc::Notice(Notice::UnderVoltageWarning),
            b"UNDER-VOLTAGE POWER DOWN" => Urc::Notice(Notice::UnderVoltagePowerDown),
            b"OVER-VOLTAGE WARNING" => Urc::Notice(Notice::OverVoltageWarning),
            b"OVER-VOLTAGE POWER DOWN" => Urc::Notice(Notice::OverVoltagePowerDown),
            b"NO CARRIER" | b"BUSY" | b"NO ANSWER" | b"NO DIALTONE" => {
                Urc::Notice(Notice::CallEnded)
            }
            _ if line.first().is_some_and(u8::is_ascii_alphabetic) => {
                return Urc::unknown(line);
            }
            _ => return None,
        })
    }

    /// The `match` on the name that the frequent names' `match` and the table of the rest
    /// replaced.
    fn old_dispatch(name: &[u8], rest: &[u8]) -> Option<Urc> {
        let parsed = match name {
            b"+CFUN" => uints::<1>(rest).and_then(|[v]| u8_of(v)).map(Urc::Cfun),
            b"+CPIN" => Some(Urc::Cpin(PinCode::from_text(rest))),
            b"+QUSIM" => uints::<1>(rest).and_then(|[v]| u8_of(v)).map(Urc::QUsim),
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
            b"+QPSMTIMER" => {
                uints::<2>(rest).map(|[periodic_tau_s, active_time_s]| Urc::QPsmTimer {
                    periodic_tau_s,
                    active_time_s,
                })
            }
            b"+QIOPEN" => id_err(rest).ok().map(|(id, err)| Urc::QiOpen { id, err }),
            b"+QSSLOPEN" => id_err(rest).ok().map(|(id, err)| Urc::QsslOpen { id, err }),
            b"+QSSLURC" => qsslurc(rest).ok().map(Urc::QsslUrc),
            b"+CEDRXP" => UrcText::new(rest).map(Urc::Edrx),
            b"+CTZV" | b"+CTZE" => UrcText::new(rest).map(Urc::TimeZone),
            _ => None,
        };
        parsed.or_else(|| Urc::unknown(name))
    }

    /// Every known name (and some unknown ones) with bodies of every kind: the same URC as the
    /// `match` on the name gave.
    #[test]
    fn urc_names_dispatch_as_the_old_match() {
        let names: [&[u8]; 19] = [
            b"+CFUN",
            b"+CPIN",
            b"+QUSIM",
            b"+QIND",
            b"+CREG",
            b"+CGREG",
            b"+CEREG",
            b"+QIURC",
            b"+QPSMTIMER",
            b"+QIOPEN",
            b"+QSSLOPEN",
            b"+QSSLURC",
            b"+CEDRXP",
            b"+CTZV",
            b"+CTZE",
            b"+CTZX",
            b"+QIURD",
            b"+FOO",
            b"+QPSMTIMERS",
        ];
        let bodies: [&[u8]; 12] = [
            b"1",
            b"1,0",
            b"3600,60",
            b"READY",
            b"\"recv\",0",
            b"\"closed\",1",
            b"1,\"1A2B\",\"01A2D102\",8",
            b"\"csq\",20,99",
            b"SMS DONE",
            b"5,\"0101\",\"0001\"",
            b"\"+32\",0",
            b"x",
        ];
        for name in names {
            for body in bodies {
                let line = [name, b": ", body].concat();
                assert_eq!(Urc::parse_line(&line), old_dispatch(name, body), "{line:?}");
            }
        }
        // The names matched by their length and first and last four bytes: every name one
        // byte away from a frequent one (each byte changed, one cut off or added) dispatches
        // as the old match did.
        let frequent: [&[u8]; 7] = [
            b"+QIURC",
            b"+CEREG",
            b"+QSSLURC",
            b"+QIND",
            b"+CPIN",
            b"+QUSIM",
            b"+QIOPEN",
        ];
        extern crate std;
        let mut near: std::vec::Vec<std::vec::Vec<u8>> = std::vec::Vec::new();
        for name in frequent {
            near.push(name.to_vec());
            near.push(name[..name.len() - 1].to_vec());
            for b in *b"ACEGINRSUZq0" {
                near.push([name, &[b][..]].concat());
                near.push([&name[..1], &[b][..], &name[1..]].concat());
                for k in 1..name.len() {
                    let mut n = name.to_vec();
                    n[k] = b;
                    near.push(n);
                }
            }
        }
        // The bodies taken at once (a `+QUSIM` digit, a `+CPIN` text not trimmed again) read
        // as the old match read them, white space around them or not.
        for body in crate::at::random_lines(0xc0de_5170, 9, 600, b"019x \tREADYSIMPUK") {
            for name in [&b"+QUSIM"[..], b"+CPIN", b"+QIOPEN"] {
                let line = [name, b": ", &body[..]].concat();
                let want = old_dispatch(name, trim_ascii(&body));
                assert_eq!(Urc::parse_line(&line), want, "{line:?}");
            }
        }
        for name in &near {
            for body in [
                &b"1"[..],
                b"1,0",
                b"READY",
                b"\"recv\",0",
                b"SMS DONE",
                b"x",
            ] {
                let line = [&name[..], b": ", body].concat();
                assert_eq!(Urc::parse_line(&line), old_dispatch(name, body), "{line:?}");
            }
        }
    }

    /// The `match` that the table of `+CPIN` codes replaced.
    fn old_pin_code(text: &[u8]) -> PinCode {
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

    #[test]
    fn pin_codes_from_the_table_agree_with_the_old_match() {
        for t in [
            &b"READY"[..],
            b" READY ",
            b"SIM PIN",
            b"SIM PUK",
            b"SIM PIN2",
            b"SIM PUK2",
            b"NOT READY",
            b"PH-SIM PIN",
            b"SIM PIN3",
            b"READ",
            b"",
        ] {
            assert_eq!(PinCode::from_text(t), old_pin_code(t), "{t:?}");
        }
        for t in crate::at::random_lines(0x0c91_0001, 12, 2000, b"SIM PUKNO2RDYH-") {
            assert_eq!(PinCode::from_text(&t), old_pin_code(&t), "{t:?}");
        }
    }

    #[test]
    fn bare_urcs_from_the_table_agree_with_the_old_matches() {
        for line in [
            &b"RDY"[..],
            b"APP RDY",
            b"POWERED DOWN",
            b"NORMAL POWER DOWN",
            b"PSM POWER DOWN",
            b"RING",
            b"Call Ready",
            b"SMS Ready",
            b"UNDER-VOLTAGE WARNING",
            b"UNDER-VOLTAGE POWER DOWN",
            b"OVER-VOLTAGE WARNING",
            b"OVER-VOLTAGE POWER DOWN",
            b"NO CARRIER",
            b"BUSY",
            b"NO ANSWER",
            b"NO DIALTONE",
            b"OK",
            b"ERROR",
            b"CONNECT",
            b"SEND OK",
            b"SEND FAIL",
            b"RDy",
            b"RING ",
            b"1RING",
            b"hello",
        ] {
            assert_eq!(Urc::parse_bare(line), old_bare(line), "{line:?}");
            let unknown = matches!(old_bare(line), Some(Urc::Unknown(_)));
            assert_eq!(is_unknown_split(line, None), unknown, "{line:?}");
        }
        for line in crate::at::random_lines(0x0b0a_7d01, 24, 3000, b"RDYNGOK -") {
            assert_eq!(Urc::parse_bare(&line), old_bare(&line), "{line:?}");
        }
    }

    #[test]
    fn hand_read_registration_agrees_with_nom() {
        for line in crate::at::random_lines(0x5eed_1234, 24, 2000, b"01289aFfg,\" \t+-\xc3") {
            let a = registration_fields(&line).ok().map(|r| r.1);
            let b = registration_fields_nom(&line).ok().map(|r| r.1);
            assert_eq!(a, b, "{line:?}");
        }
        for l in [
            &b"1,\"1A2B\",\"01A2D102\",8"[..],
            b"5, \"+ff\" ,\"\",9,,\"x\"",
            b"1,,,7",
            b"1,\"FFFFFFFFF\",\"1\",7",
            b"1,\"0000000001\",\"1\",7",
            b"2,\"+\",\"1\",7",
            b"0",
        ] {
            assert_eq!(
                registration_fields(l).ok().map(|r| r.1),
                registration_fields_nom(l).ok().map(|r| r.1),
                "{l:?}"
            );
        }
    }

    /// The nom reading of the `+QIURC`/`+QSSLURC` forms that `socket_fields` replaced.
    fn socket_urcs_nom(i: &[u8]) -> (Result<QiUrc, crate::Error>, Result<QsslUrc, crate::Error>) {
        use crate::at::parse::{all, next, uint};
        use nom::sequence::preceded;
        let kind =
            |k: &'static [u8]| preceded((tag(&b"\""[..]), tag(k), tag(&b"\""[..])), next(uint));
        let qi = (|| {
            if let Ok(id) = all(kind(b"recv"), i) {
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
            if let Some(rest) = i.strip_prefix(b"\"dnsgip\"") {
                return dnsgip(rest);
            }
            Ok(QiUrc::Other)
        })();
        let qssl = (|| {
            if let Ok(id) = all(kind(b"recv"), i) {
                return u8_of(id).map(QsslUrc::Recv).ok_or(crate::Error::Parse);
            }
            if let Ok(id) = all(kind(b"closed"), i) {
                return u8_of(id).map(QsslUrc::Closed).ok_or(crate::Error::Parse);
            }
            Ok(QsslUrc::Other)
        })();
        (qi, qssl)
    }

    /// The `"dnsgip"` reader before it read its numbers with `uints`: each field split at the
    /// commas and read as at most nine digits with ASCII spaces around.
    fn old_dnsgip(i: &[u8]) -> Result<QiUrc, crate::Error> {
        let decimal = |t: &[u8]| {
            let t = trim_ascii(t);
            if t.len() > 9 {
                return None;
            }
            match crate::at::parse::read_uint(t) {
                Some(([], v)) => Some(v),
                _ => None,
            }
        };
        let i = trim_ascii(i)
            .strip_prefix(b",")
            .ok_or(crate::Error::Parse)?;
        if let [b'"', addr @ .., b'"'] = trim_ascii(i) {
            return Ok(QiUrc::DnsAddress(ip_addr(addr)));
        }
        let mut fields = i.split(|&b| b == b',');
        let mut next = || fields.next().map(decimal);
        let (err, count) = match (next(), next(), next(), next()) {
            (Some(Some(err)), None, None, None) => (err, 0),
            (Some(Some(err)), Some(Some(count)), Some(Some(_ttl)), None) => (err, count),
            _ => return Err(crate::Error::Parse),
        };
        let err = u16::try_from(err).map_err(|_| crate::Error::Parse)?;
        let count = if err == 0 {
            u8::try_from(count).unwrap_or(u8::MAX)
        } else {
            0
        };
        Ok(QiUrc::DnsResult { err, count })
    }

    #[test]
    fn dnsgip_numbers_through_uints_agree_with_the_old_split() {
        // The one difference: a number of ten digits that fits `u32` (a TTL; an error code or
        // a count that long is out of range either way) was refused and is now read.
        let ten_digits = |l: &[u8]| l.split(|b| !b.is_ascii_digit()).any(|run| run.len() >= 10);
        for line in crate::at::random_lines(0x0d15_9e1f, 14, 3000, b",,0129 \t") {
            if ten_digits(&line) {
                continue;
            }
            assert_eq!(dnsgip(&line), old_dnsgip(&line), "{line:?}");
        }
        for line in [
            &b",0,1,600"[..],
            b", 0 , 2 , 600 ",
            b",565",
            b",565,0,0",
            b",\"10.0.0.1\"",
            b",0,1",
            b",0,1,600,1",
            b",,1,600",
            b",0,256,600",
        ] {
            assert_eq!(dnsgip(line), old_dnsgip(line), "{line:?}");
        }
        assert_eq!(
            dnsgip(b",0,1,4294967295"),
            Ok(QiUrc::DnsResult { err: 0, count: 1 })
        );
    }

    #[test]
    fn hand_read_socket_urcs_agree_with_nom() {
        let check = |line: &[u8]| {
            let (qi, qssl) = socket_urcs_nom(line);
            assert_eq!(qiurc(line), qi, "{line:?}");
            assert_eq!(qsslurc(line), qssl, "{line:?}");
        };
        // Each kind followed by random separators, digits and spaces, and the tails alone.
        for tail in crate::at::random_lines(0x50c4_e7a1, 10, 1500, b",,0129 \t\"x") {
            for kind in [
                &b""[..],
                b"\"recv\"",
                b"\"closed\"",
                b"\"pdpdeact\"",
                b"\"recv",
            ] {
                let mut line = kind.to_vec();
                line.extend_from_slice(&tail);
                check(&line);
            }
        }
        for line in [
            &b"\"recv\",1,100"[..],
            b"\"recv\" , 1 ",
            b"\"closed\",3,5",
            b"\"closed\", 300",
            b"\"pdpdeact\",1",
            b"\"recv\",",
            b"\"recv\",1,",
            b"\"recv\"x,1",
            b"\"recvx\",1",
            b"\"incoming full\"",
            b"\"dnsgip\",0,1,600",
        ] {
            check(line);
        }
    }

    /// The one-digit `"recv"`/`"closed"` forms taken before `socket_fields` agree with nom for
    /// every byte in the id's place (and one byte more or less).
    #[test]
    fn one_digit_socket_urcs_taken_at_once_agree_with_nom() {
        for kind in [
            &b"\"recv\","[..],
            b"\"closed\",",
            b"\"recv\"",
            b"\"closed\"",
        ] {
            for b in 0..=255u8 {
                for tail in [&[b][..], &[b, b'0'], &[b'1', b], &[b' ', b]] {
                    let line = [kind, tail].concat();
                    let (qi, qssl) = socket_urcs_nom(&line);
                    assert_eq!(qiurc(&line), qi, "{line:?}");
                    assert_eq!(qsslurc(&line), qssl, "{line:?}");
                }
            }
        }
        assert_eq!(qiurc(b"\"recv\",7"), Ok(QiUrc::Recv(7)));
        assert_eq!(qsslurc(b"\"closed\",0"), Ok(QsslUrc::Closed(0)));
    }

    /// `hex_u32` (through `read_hex`, its count of digits returned in a register) reads what
    /// `u32::from_str_radix(_, 16)` reads, leading zeros, overflow and a bare `+` included.
    #[test]
    fn hex_u32_agrees_with_from_str_radix() {
        let check = |t: &[u8]| {
            let want = core::str::from_utf8(t)
                .ok()
                .and_then(|s| u32::from_str_radix(s, 16).ok());
            assert_eq!(hex_u32(t), want, "{t:?}");
        };
        for t in crate::at::random_lines(0x0e0e_0016, 13, 800, b"+0001fFaAgx9") {
            check(&t);
        }
        for t in [
            &b"000000000ffffffff"[..],
            b"100000000",
            b"+",
            b"",
            b"ffffffff",
            b"+0",
        ] {
            check(t);
        }
    }

    /// `+QIND` with `SMS DONE` compared in line and the rest out of line reads what the one
    /// function read.
    #[test]
    fn qind_split_in_two_agrees_with_the_one_reading() {
        fn old_qind(i: &[u8]) -> Result<QInd, crate::Error> {
            match i {
                _ if i == b"SMS DONE" => Ok(QInd::SmsDone),
                _ if i == b"PB DONE" => Ok(QInd::PbDone),
                _ => {
                    let csq = i
                        .strip_prefix(b"\"csq\"")
                        .and_then(super::super::parse::after_comma)
                        .and_then(super::super::parse::uint_pair);
                    match csq {
                        Some([rssi, ber]) => Ok(QInd::Csq {
                            rssi: u8_of(rssi).ok_or(crate::Error::Parse)?,
                            ber: u8_of(ber).ok_or(crate::Error::Parse)?,
                        }),
                        None => Ok(QInd::Other),
                    }
                }
            }
        }
        for body in [
            &b"SMS DONE"[..],
            b"PB DONE",
            b"SMS DONE ",
            b"PB DONEX",
            b"\"csq\",20,99",
            b"\"csq\",256,99",
            b"\"csq\", 31 ,0",
            b"\"csq\"",
            b"",
        ] {
            assert_eq!(qind(body), old_qind(body), "{body:?}");
        }
        for tail in crate::at::random_lines(0x0e1d_0001, 9, 300, b"0129, x") {
            for head in [&b""[..], b"\"csq\"", b"\"csq\",", b"SMS DONE", b"PB DONE"] {
                let body = [head, &tail[..]].concat();
                assert_eq!(qind(&body), old_qind(&body), "{body:?}");
            }
        }
    }

    /// The one-digit `<id>,<err>` taken at once agrees with the pair read in general.
    #[test]
    fn one_digit_id_and_error_taken_at_once_agree_with_the_pair() {
        let general = |i: &[u8]| -> Result<(u8, u16), crate::Error> {
            let [id, err] = super::super::parse::uints::<2>(i).ok_or(crate::Error::Parse)?;
            Ok((
                u8_of(id).ok_or(crate::Error::Parse)?,
                u16::try_from(err).map_err(|_| crate::Error::Parse)?,
            ))
        };
        for line in crate::at::random_lines(0x1d0e_7700, 7, 4000, b",,0019x /") {
            assert_eq!(id_err(&line), general(&line), "{line:?}");
        }
        for line in [
            &b"0,0"[..],
            b"9,9",
            b"1,566",
            b"12,0",
            b"1,0 ",
            b"1 ,0",
            b"1,a",
            b":,0",
            b"1,/",
            b"256,0",
            b"1,65536",
        ] {
            assert_eq!(id_err(line), general(line), "{line:?}");
        }
    }

    #[test]
    fn hand_read_socket_fields_fast_and_general_forms() {
        assert_eq!(socket_fields(b"\"recv\",0"), Some((RECV, 0, None)));
        assert_eq!(socket_fields(b"\"closed\",255"), Some((CLOSED, 255, None)));
        assert_eq!(
            socket_fields(b"\"recv\", 1 ,100 "),
            Some((RECV, 1, Some(100)))
        );
        assert_eq!(
            socket_fields(b"\"pdpdeact\",\t10"),
            Some((PDPDEACT, 10, None))
        );
        for odd in [
            &b"\"recv\","[..],
            b"\"recv\",1x",
            b"\"recv\",1,",
            b"\"recv\",1,2,3",
            b"\"recv\"",
            b"\"recv",
            b"recv,1",
            b"\"recvx\",1",
            b"\"dnsgip\",1",
        ] {
            assert_eq!(socket_fields(odd), None, "{odd:?}");
        }
        assert_eq!(p(b"+QIURC: \"recv\",1,100"), Urc::QiUrc(QiUrc::Recv(1)));
        assert_eq!(p(b"+QIURC: \"recv\", 1"), Urc::QiUrc(QiUrc::Recv(1)));
        assert_eq!(p(b"+QIURC: \"closed\",255"), Urc::QiUrc(QiUrc::Closed(255)));
        assert_eq!(
            p(b"+QIURC: \"recv\",256"),
            Urc::Unknown("+QIURC".try_into().unwrap())
        );
    }

    /// The hand-read addresses agree with `core::net`'s parser on random texts (the forms
    /// this reader leaves out, an IPv4 tail or a zone, aside: their alphabet is not used).
    #[test]
    fn ip_addresses_agree_with_core_net() {
        for line in crate::at::random_lines(0x1b6a_3d05, 18, 4000, b"0f1::a9.") {
            let Ok(text) = core::str::from_utf8(&line) else {
                continue;
            };
            let want: Option<IpAddr> = match text.parse::<IpAddr>() {
                // An IPv6 address with a dotted IPv4 tail is not a form the modem writes.
                Ok(IpAddr::V6(_)) if text.contains('.') => None,
                r => r.ok(),
            };
            assert_eq!(ip_addr(&line), want, "{text}");
        }
    }

    #[test]
    fn ip_address_forms() {
        let ok = [
            "0.0.0.0",
            "255.255.255.255",
            "172.188.83.251",
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:DB8:0:0:8:800:200C:417A",
            "2001:0db8:0000:0000:0000:ff00:0042:8329",
            "fe80::1:2:3:4:5:6",
            "1:2:3:4:5:6:7::",
        ];
        for t in ok {
            assert_eq!(ip_addr(t.as_bytes()), Some(t.parse().unwrap()), "{t}");
        }
        let bad = [
            "",
            ".",
            "1.2.3",
            "1.2.3.4.5",
            "256.0.0.1",
            "1.2.3.x",
            "01234.1.1.1",
            "1..2.3",
            ":",
            ":::",
            "1:2",
            "1::2::3",
            "1:2:3:4:5:6:7:8:9",
            "12345::",
            "g::",
            ":1::",
            "1:2:3:4:5:6:7:8::",
            "::ffff:1.2.3.4",
            "fe80::1%1",
            " 1.2.3.4",
        ];
        for t in bad {
            assert_eq!(ip_addr(t.as_bytes()), None, "{t}");
        }
    }

    proptest::proptest! {
        #[test]
        fn ip_addresses_round_trip(v4: [u8; 4], v6: [u16; 8]) {
            extern crate std;
            use std::string::ToString;
            let a = IpAddr::from(v4);
            proptest::prop_assert_eq!(ip_addr(a.to_string().as_bytes()), Some(a));
            let b = IpAddr::from(v6);
            // Both the shortest form and all eight groups written out (Rust writes an
            // IPv4-mapped address with an IPv4 tail, a form the modem does not use).
            let short = b.to_string();
            if !short.contains('.') {
                proptest::prop_assert_eq!(ip_addr(short.as_bytes()), Some(b));
            }
            let full = std::format!(
                "{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:X}",
                v6[0], v6[1], v6[2], v6[3], v6[4], v6[5], v6[6], v6[7]
            );
            proptest::prop_assert_eq!(ip_addr(full.as_bytes()), Some(b));
        }
    }
}
