//! PDP contexts and data calls: the 3GPP commands (`+CGDCONT`, `+CGACT`, `+CGPADDR`,
//! `+CGATT`) and Quectel's TCP/IP-stack ones (`+QICSGP`, `+QIACT`, `+QIDEACT`, `+QIDNSCFG`).
//!
//! Context ids are checked against 1–16 here (the widest range of any supported model);
//! model-specific limits (EC600N-class: 1–7) are the caller's business.
//!
//! Types that carry a password implement `Debug` (and `defmt::Format`) by hand and print `***`
//! instead of it.

use core::fmt;

use heapless::{String, Vec};
use nom::{
    IResult,
    combinator::{opt, rest},
    sequence::preceded,
};

use super::{CmdWriter, Command, Fields};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::parse::{all, comma, next, quoted, uint};
use crate::at::response::Response;

/// Maximum response time of local commands.
const LOCAL_MS: u32 = 300;
/// Maximum response time of `AT+QIACT` and `AT+CGACT` (network dependent).
const ACTIVATE_MS: u32 = 150_000;

/// Checks a context id (1–16).
fn check_cid(cid: u8) -> Result<(), Error> {
    if (1..=16).contains(&cid) {
        Ok(())
    } else {
        Err(Error::InvalidArgument)
    }
}

fn u8_of(v: u32) -> Result<u8, Error> {
    u8::try_from(v).map_err(|_| Error::Parse)
}

fn bool_of(v: u32) -> Result<bool, Error> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::Parse),
    }
}

/// A field that is quoted, bare or empty; bare text is trimmed ([`super::field`], for nom).
fn field(i: &[u8]) -> IResult<&[u8], &[u8]> {
    Ok(super::field(i))
}

/// Whether a non-empty address field is an IPv6 address (one with a `:` or with more than
/// three dots, the 3GPP dotted form) or an IPv4 one; anything else is [`Error::Parse`].
fn is_ipv6(a: &[u8]) -> Result<bool, Error> {
    let dots = a.iter().filter(|&&b| b == b'.').count();
    if a.contains(&b':') || dots > 3 {
        if a.iter()
            .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Ok(true);
        }
    } else if dots == 3 && a.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
        return Ok(false);
    }
    Err(Error::Parse)
}

/// An IPv4 and an IPv6 address sorted out of up to two address fields into `v4` and `v6`
/// (both `None` before); empty fields are absent, a second address of a kind is
/// [`Error::Parse`]. Written in place, through the strings' views: no copy per capacity.
fn sort_addresses<const V6: usize>(
    fields: &[Option<&[u8]>],
    v4: &mut Option<String<16>>,
    v6: &mut Option<String<V6>>,
) -> Result<(), Error> {
    for a in fields.iter().flatten().filter(|a| !a.is_empty()) {
        let out = if is_ipv6(a)? {
            if v6.is_some() {
                return Err(Error::Parse);
            }
            v6.insert(String::new()).as_mut_view()
        } else {
            if v4.is_some() {
                return Err(Error::Parse);
            }
            v4.insert(String::new()).as_mut_view()
        };
        crate::util::set_text(out, a)?;
    }
    Ok(())
}

/// `<PDP_type>` of `AT+CGDCONT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PdpType {
    /// `"IP"`: IPv4.
    Ip,
    /// `"IPV6"`.
    Ipv6,
    /// `"IPV4V6"`: dual stack.
    Ipv4v6,
    /// `"PPP"`.
    Ppp,
    /// `"Non-IP"` (NIDD on BG95/BG77).
    NonIp,
}

impl PdpType {
    /// The wire text (`IP`, `IPV6`, `IPV4V6`, `PPP`, `Non-IP`).
    pub fn as_str(self) -> &'static str {
        match self {
            PdpType::Ip => "IP",
            PdpType::Ipv6 => "IPV6",
            PdpType::Ipv4v6 => "IPV4V6",
            PdpType::Ppp => "PPP",
            PdpType::NonIp => "Non-IP",
        }
    }

    /// Parses the wire text, ignoring case.
    pub fn from_text(text: &[u8]) -> Option<Self> {
        [
            PdpType::Ip,
            PdpType::Ipv6,
            PdpType::Ipv4v6,
            PdpType::Ppp,
            PdpType::NonIp,
        ]
        .into_iter()
        .find(|t| t.as_str().as_bytes().eq_ignore_ascii_case(text))
    }
}

/// `AT+CGDCONT=<cid>,"<PDP_type>","<APN>"`: defines a PDP context (not allowed while it is
/// active). An APN longer than [`MAX_APN`] bytes is [`Error::InvalidArgument`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DefinePdpContext<'a> {
    /// Context id, 1–16.
    pub cid: u8,
    /// IPv4, IPv6, dual stack, ...
    pub pdp_type: PdpType,
    /// Access point name (empty: the network's default).
    pub apn: &'a str,
}

impl Command for DefinePdpContext<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_cid(self.cid)?;
        if self.apn.len() > MAX_APN {
            return Err(Error::InvalidArgument);
        }
        w.str_uint("AT+CGDCONT=", u32::from(self.cid))?;
        w.comma()?;
        w.quoted(self.pdp_type.as_str())?;
        w.comma()?;
        w.quoted(self.apn)
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// One defined PDP context (`+CGDCONT: <cid>,<PDP_type>,<APN>,...`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PdpContext {
    /// Context id.
    pub cid: u8,
    /// IPv4, IPv6, dual stack, ...
    pub pdp_type: PdpType,
    /// Access point name (empty: the network's default).
    pub apn: String<64>,
}

/// `AT+CGDCONT?`: the defined PDP contexts, one line each (address and compression fields are
/// ignored). More than 16 lines is [`Error::Overflow`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetPdpContexts;

impl Command for GetPdpContexts {
    type Response = Vec<PdpContext, 16>;
    const EXPECT: Expect = Expect::prefixed(b"+CGDCONT:");
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CGDCONT?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Vec<PdpContext, 16>, Error> {
        let mut out = Vec::new();
        for line in resp.prefixed(b"+CGDCONT:") {
            let (cid, pdp_type, apn, _) = all(
                (uint, next(field), next(field), opt(preceded(comma, rest))),
                line,
            )?;
            let ctx = PdpContext {
                cid: u8_of(cid)?,
                pdp_type: PdpType::from_text(pdp_type).ok_or(Error::Parse)?,
                apn: crate::util::text(apn)?,
            };
            out.push(ctx).map_err(|_| Error::Overflow)?;
        }
        Ok(out)
    }
    fn fold(&self, acc: &mut Option<Result<Self::Response, Error>>, line: &Response<'_>) {
        super::fold_list(acc, self.parse(line));
    }
}

/// `<context_type>` of `AT+QICSGP` / `AT+QIACT?`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ContextType {
    /// 1: IPv4.
    Ipv4 = 1,
    /// 2: IPv6.
    Ipv6 = 2,
    /// 3: IPv4 and IPv6 (BG95, EC200U-class; not confirmed on BG96).
    Ipv4v6 = 3,
}

impl ContextType {
    /// From the numeric code (1, 2, 3).
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(ContextType::Ipv4),
            2 => Some(ContextType::Ipv6),
            3 => Some(ContextType::Ipv4v6),
            _ => None,
        }
    }
}

/// `<authentication>` of `AT+QICSGP`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Auth {
    /// 0: none.
    None = 0,
    /// 1: PAP.
    Pap = 1,
    /// 2: CHAP.
    Chap = 2,
    /// 3: PAP or CHAP (not on EC200U-class modules).
    PapOrChap = 3,
}

impl Auth {
    /// From the numeric code (0–3).
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Auth::None),
            1 => Some(Auth::Pap),
            2 => Some(Auth::Chap),
            3 => Some(Auth::PapOrChap),
            _ => None,
        }
    }
}

/// Longest APN [`ConfigureContext`] takes, in bytes (3GPP TS 23.003 §9.1: 100 octets).
pub const MAX_APN: usize = 100;
/// Longest user name or password [`ConfigureContext`] takes, in bytes (the modules' limit).
pub const MAX_CREDENTIAL: usize = 127;

/// `AT+QICSGP=<cid>,<type>,"<APN>","<user>","<password>",<auth>`: configures a TCP/IP
/// context. An APN longer than [`MAX_APN`] or a user name or password longer than
/// [`MAX_CREDENTIAL`] bytes is [`Error::InvalidArgument`]. `Debug` does not show the password.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConfigureContext<'a> {
    /// Context id, 1–16.
    pub cid: u8,
    /// IPv4, IPv6 or both.
    pub context_type: ContextType,
    /// Access point name (may be empty).
    pub apn: &'a str,
    /// User name (may be empty).
    pub username: &'a str,
    /// Password (may be empty).
    pub password: &'a str,
    /// Authentication method.
    pub auth: Auth,
}

impl fmt::Debug for ConfigureContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigureContext")
            .field("cid", &self.cid)
            .field("context_type", &self.context_type)
            .field("apn", &self.apn)
            .field("username", &self.username)
            .field("password", &"***")
            .field("auth", &self.auth)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ConfigureContext<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "ConfigureContext {{ cid: {}, context_type: {}, apn: {=str}, username: {=str}, password: ***, auth: {} }}",
            self.cid,
            self.context_type,
            self.apn,
            self.username,
            self.auth
        )
    }
}

impl Command for ConfigureContext<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    const SECRET: bool = true;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_cid(self.cid)?;
        if self.apn.len() > MAX_APN
            || self.username.len() > MAX_CREDENTIAL
            || self.password.len() > MAX_CREDENTIAL
        {
            return Err(Error::InvalidArgument);
        }
        w.str_uint("AT+QICSGP=", u32::from(self.cid))?;
        w.arg(self.context_type as u32)?;
        w.comma()?;
        w.quoted(self.apn)?;
        w.comma()?;
        w.quoted(self.username)?;
        w.comma()?;
        w.quoted(self.password)?;
        w.arg(self.auth as u32)
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// A context's configuration as `AT+QICSGP=<cid>` reports it. `Debug` does not show the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct ContextConfig {
    /// IPv4, IPv6 or both.
    pub context_type: ContextType,
    /// Access point name.
    pub apn: String<64>,
    /// User name.
    pub username: String<127>,
    /// Password.
    pub password: String<127>,
    /// Authentication method.
    pub auth: Auth,
}

impl fmt::Debug for ContextConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextConfig")
            .field("context_type", &self.context_type)
            .field("apn", &self.apn)
            .field("username", &self.username)
            .field("password", &"***")
            .field("auth", &self.auth)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ContextConfig {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "ContextConfig {{ context_type: {}, apn: {=str}, username: {=str}, password: ***, auth: {} }}",
            self.context_type,
            self.apn.as_str(),
            self.username.as_str(),
            self.auth
        )
    }
}

/// `AT+QICSGP=<cid>`: reads a context's configuration
/// (`+QICSGP: <type>,"<APN>","<user>","<password>",<auth>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetContextConfig {
    /// Context id, 1–16.
    pub cid: u8,
}

impl Command for GetContextConfig {
    type Response = ContextConfig;
    const EXPECT: Expect = Expect::prefixed(b"+QICSGP:");
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_cid(self.cid)?;
        w.str_uint("AT+QICSGP=", u32::from(self.cid))
    }
    fn parse(&self, resp: &Response<'_>) -> Result<ContextConfig, Error> {
        let (context_type, apn, username, password, auth) = all(
            (uint, next(quoted), next(quoted), next(quoted), next(uint)),
            resp.first()?,
        )?;
        Ok(ContextConfig {
            context_type: ContextType::from_code(context_type).ok_or(Error::Parse)?,
            apn: crate::util::text(apn)?,
            username: crate::util::text(username)?,
            password: crate::util::text(password)?,
            auth: Auth::from_code(auth).ok_or(Error::Parse)?,
        })
    }
}

/// `AT+QIACT=<cid>`: activates a context (up to 150 s; the modem processes nothing else
/// meanwhile). Activating an active context is `ERROR` on some models: check
/// [`GetActiveContexts`] first. After a failure, [`GetLastTcpipError`](super::general::GetLastTcpipError)
/// tells why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ActivateContext {
    /// Context id, 1–16.
    pub cid: u8,
}

impl Command for ActivateContext {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = ACTIVATE_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_cid(self.cid)?;
        w.str_uint("AT+QIACT=", u32::from(self.cid))
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// One activated context (`+QIACT: <cid>,<state>,<type>[,"<IPv4>"][,"<IPv6>"]`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ActiveContext {
    /// Context id.
    pub cid: u8,
    /// `<context_state>`: activated.
    pub state: bool,
    /// IPv4, IPv6 or both.
    pub context_type: ContextType,
    /// The IPv4 address, if any.
    pub ipv4: Option<String<16>>,
    /// The IPv6 address, if any (EC200U-class modules append it as a further field).
    pub ipv6: Option<String<40>>,
}

/// `AT+QIACT?`: the activated contexts with their addresses; none active is an empty list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetActiveContexts;

impl Command for GetActiveContexts {
    type Response = Vec<ActiveContext, 16>;
    const EXPECT: Expect = Expect::prefixed(b"+QIACT:");
    const TIMEOUT_MS: u32 = ACTIVATE_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+QIACT?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Vec<ActiveContext, 16>, Error> {
        let mut out = Vec::new();
        for line in resp.prefixed(b"+QIACT:") {
            out.push(active_context(line)?)
                .map_err(|_| Error::Overflow)?;
        }
        Ok(out)
    }
    fn fold(&self, acc: &mut Option<Result<Self::Response, Error>>, line: &Response<'_>) {
        super::fold_list(acc, self.parse(line));
    }
}

/// One `+QIACT: <cid>,<state>,<type>[,<addr>[,<addr>]]` line.
fn active_context(line: &[u8]) -> Result<ActiveContext, Error> {
    let mut c = ActiveContext {
        cid: 0,
        state: false,
        context_type: ContextType::Ipv4,
        ipv4: None,
        ipv6: None,
    };
    read_active_context(line, &mut c)?;
    Ok(c)
}

/// [`active_context`] into `c` (its addresses `None` before): read in place, the 76-byte
/// context is not moved out of a `Result`.
fn read_active_context(line: &[u8], c: &mut ActiveContext) -> Result<(), Error> {
    let mut f = Fields::new(line);
    let cid = f.uint()?;
    let state = f.next_uint()?;
    let context_type = f.next_uint()?;
    let a1 = f.next_field();
    let a2 = f.next_field();
    f.end()?;
    sort_addresses(&[a1, a2], &mut c.ipv4, &mut c.ipv6)?;
    c.cid = u8_of(cid)?;
    c.state = bool_of(state)?;
    c.context_type = ContextType::from_code(context_type).ok_or(Error::Parse)?;
    Ok(())
}

/// `AT+QIACT?` read for one context: its line, or `None` when it is not listed (not active).
/// The same command as [`GetActiveContexts`], without keeping the other contexts (the list of
/// all 16 is over 1 KiB on the stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetActiveContext {
    /// Context id, 1–16.
    pub cid: u8,
}

impl Command for GetActiveContext {
    type Response = Option<ActiveContext>;
    const EXPECT: Expect = Expect::prefixed(b"+QIACT:");
    const TIMEOUT_MS: u32 = ACTIVATE_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_cid(self.cid)?;
        w.str("AT+QIACT?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Option<ActiveContext>, Error> {
        let mut found = None;
        for line in resp.prefixed(b"+QIACT:") {
            let c = active_context(line)?;
            if c.cid == self.cid {
                found = Some(c);
            }
        }
        Ok(found)
    }
    /// The matching line wins; a malformed line is an error.
    fn fold(&self, acc: &mut Option<Result<Self::Response, Error>>, line: &Response<'_>) {
        if matches!(acc, Some(Err(_))) {
            return;
        }
        match self.parse(line) {
            Ok(None) if acc.is_some() => {}
            r => *acc = Some(r),
        }
    }
}

/// `AT+QIDEACT=<cid>`: deactivates a context (up to 40 s) and closes all its sockets. Required
/// after `+QIURC: "pdpdeact"` before activating again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeactivateContext {
    /// Context id, 1–16.
    pub cid: u8,
}

impl Command for DeactivateContext {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = 40_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_cid(self.cid)?;
        w.str_uint("AT+QIDEACT=", u32::from(self.cid))
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+CGACT=<state>,<cid>`: 3GPP activation (`true`) or deactivation of a PDP context, up to
/// 150 s; attaches first if needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetPdpActive {
    /// Activate (`true`) or deactivate.
    pub state: bool,
    /// Context id, 1–16.
    pub cid: u8,
}

impl Command for SetPdpActive {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = ACTIVATE_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_cid(self.cid)?;
        w.str_uint(
            if self.state {
                "AT+CGACT=1,"
            } else {
                "AT+CGACT=0,"
            },
            u32::from(self.cid),
        )
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+CGACT?`: `(cid, active)` for every defined context (`+CGACT: <cid>,<state>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetPdpActive;

impl Command for GetPdpActive {
    type Response = Vec<(u8, bool), 16>;
    const EXPECT: Expect = Expect::prefixed(b"+CGACT:");
    const TIMEOUT_MS: u32 = ACTIVATE_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CGACT?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Vec<(u8, bool), 16>, Error> {
        let mut out = Vec::new();
        for line in resp.prefixed(b"+CGACT:") {
            let (cid, state) = all((uint, next(uint)), line)?;
            out.push((u8_of(cid)?, bool_of(state)?))
                .map_err(|_| Error::Overflow)?;
        }
        Ok(out)
    }
    fn fold(&self, acc: &mut Option<Result<Self::Response, Error>>, line: &Response<'_>) {
        super::fold_list(acc, self.parse(line));
    }
}

/// The addresses of a context (`+CGPADDR: <cid>[,"<addr>"[,"<addr>"]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PdpAddress {
    /// Context id.
    pub cid: u8,
    /// The IPv4 address, if any.
    pub ipv4: Option<String<16>>,
    /// The IPv6 address, if any (colon form, or the 3GPP dotted form of 16 numbers).
    pub ipv6: Option<String<64>>,
}

/// `AT+CGPADDR=<cid>`: the address(es) of a context; none when it has no address, two for a
/// dual-stack context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetPdpAddress {
    /// Context id, 1–16.
    pub cid: u8,
}

impl Command for GetPdpAddress {
    type Response = PdpAddress;
    const EXPECT: Expect = Expect::prefixed(b"+CGPADDR:");
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_cid(self.cid)?;
        w.str_uint("AT+CGPADDR=", u32::from(self.cid))
    }
    fn parse(&self, resp: &Response<'_>) -> Result<PdpAddress, Error> {
        for line in resp.prefixed(b"+CGPADDR:") {
            let (cid, a1, a2) = all((uint, opt(next(field)), opt(next(field))), line)?;
            if cid != u32::from(self.cid) {
                continue;
            }
            let (mut ipv4, mut ipv6) = (None, None);
            sort_addresses(&[a1, a2], &mut ipv4, &mut ipv6)?;
            return Ok(PdpAddress {
                cid: self.cid,
                ipv4,
                ipv6,
            });
        }
        Err(Error::Parse)
    }
}

/// `AT+CGATT=<state>`: packet-domain attach (`true`) or detach, up to 140 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetPsAttach(pub bool);

impl Command for SetPsAttach {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = 140_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str(if self.0 { "AT+CGATT=1" } else { "AT+CGATT=0" })
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+CGATT?`: whether the modem is attached to the packet domain (`+CGATT: <state>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetPsAttach;

impl Command for GetPsAttach {
    type Response = bool;
    const EXPECT: Expect = Expect::prefixed(b"+CGATT:");
    const TIMEOUT_MS: u32 = 140_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CGATT?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<bool, Error> {
        bool_of(all(uint, resp.first()?)?)
    }
}

/// DNS servers of a context (`+QIDNSCFG: <cid>,"<primary>","<secondary>"`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DnsConfig {
    /// Primary DNS server.
    pub primary: String<40>,
    /// Secondary DNS server (empty if the modem reports none).
    pub secondary: String<40>,
}

/// `AT+QIDNSCFG=<cid>`: the DNS servers of a context (the context must be active; some models
/// answer `ERROR` otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetDnsConfig {
    /// Context id, 1–16.
    pub cid: u8,
}

impl Command for GetDnsConfig {
    type Response = DnsConfig;
    const EXPECT: Expect = Expect::prefixed(b"+QIDNSCFG:");
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_cid(self.cid)?;
        w.str_uint("AT+QIDNSCFG=", u32::from(self.cid))
    }
    fn parse(&self, resp: &Response<'_>) -> Result<DnsConfig, Error> {
        let mut dns = DnsConfig {
            primary: String::new(),
            secondary: String::new(),
        };
        self.read_into(resp, &mut dns)?;
        Ok(dns)
    }
    /// [`Command::fold`]'s default (the first line [`Command::parse`] accepts), read in place:
    /// the 82-byte answer is not moved out of a `Result`.
    fn fold(&self, acc: &mut Option<Result<DnsConfig, Error>>, line: &Response<'_>) {
        if matches!(acc, Some(Ok(_))) {
            return;
        }
        let slot = acc.insert(Ok(DnsConfig {
            primary: String::new(),
            secondary: String::new(),
        }));
        if let Ok(dns) = slot
            && let Err(e) = self.read_into(line, dns)
        {
            *slot = Err(e);
        }
    }
}

impl GetDnsConfig {
    /// [`Command::parse`] into `dns` (empty before).
    fn read_into(&self, resp: &Response<'_>, dns: &mut DnsConfig) -> Result<(), Error> {
        for line in resp.prefixed(b"+QIDNSCFG:") {
            let mut f = Fields::new(line);
            let cid = f.uint()?;
            let primary = f.next_field().ok_or(Error::Parse)?;
            let secondary = f.next_field();
            f.end()?;
            if cid != u32::from(self.cid) {
                continue;
            }
            if primary.is_empty() {
                return Err(Error::Parse);
            }
            crate::util::set_text(dns.primary.as_mut_view(), primary)?;
            return crate::util::set_text(dns.secondary.as_mut_view(), secondary.unwrap_or(b""));
        }
        Err(Error::Parse)
    }
}

/// `AT+QIDNSCFG=<cid>,"<primary>"[,"<secondary>"]`: sets the DNS servers of a context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetDnsConfig<'a> {
    /// Context id, 1–16.
    pub cid: u8,
    /// Primary DNS server address.
    pub primary: &'a str,
    /// Secondary DNS server address.
    pub secondary: Option<&'a str>,
}

impl Command for SetDnsConfig<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_cid(self.cid)?;
        if self.primary.is_empty() {
            return Err(Error::InvalidArgument);
        }
        w.str_uint("AT+QIDNSCFG=", u32::from(self.cid))?;
        w.comma()?;
        w.quoted(self.primary)?;
        if let Some(secondary) = self.secondary {
            w.comma()?;
            w.quoted(secondary)?;
        }
        Ok(())
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;
    use std::vec::Vec as StdVec;

    use super::super::run_wire;
    use super::*;
    use crate::CmeError;

    use super::super::testing::{Row, s, table, wrote};

    fn cfg<'a>(apn: &'a str, username: &'a str, password: &'a str) -> ConfigureContext<'a> {
        ConfigureContext {
            cid: 1,
            context_type: ContextType::Ipv4,
            apn,
            username,
            password,
            auth: Auth::Pap,
        }
    }

    #[test]
    fn writes() {
        let def = |cid, pdp_type, apn| wrote(&DefinePdpContext { cid, pdp_type, apn });
        assert_eq!(
            def(1, PdpType::Ip, "internet").unwrap(),
            b"AT+CGDCONT=1,\"IP\",\"internet\""
        );
        assert_eq!(
            def(2, PdpType::Ipv6, "").unwrap(),
            b"AT+CGDCONT=2,\"IPV6\",\"\""
        );
        assert_eq!(
            def(16, PdpType::Ipv4v6, "a.b").unwrap(),
            b"AT+CGDCONT=16,\"IPV4V6\",\"a.b\""
        );
        assert_eq!(def(0, PdpType::Ip, "x"), Err(Error::InvalidArgument));
        assert_eq!(def(17, PdpType::Ip, "x"), Err(Error::InvalidArgument));
        assert_eq!(
            def(1, PdpType::Ip, "in\"ternet"),
            Err(Error::InvalidArgument)
        );
        assert_eq!(wrote(&GetPdpContexts).unwrap(), b"AT+CGDCONT?");

        assert_eq!(
            wrote(&cfg("UNINET", "", "")).unwrap(),
            b"AT+QICSGP=1,1,\"UNINET\",\"\",\"\",1"
        );
        let full = ConfigureContext {
            cid: 16,
            context_type: ContextType::Ipv4v6,
            apn: "iot.example",
            username: "user",
            password: "secret",
            auth: Auth::PapOrChap,
        };
        assert_eq!(
            wrote(&full).unwrap(),
            b"AT+QICSGP=16,3,\"iot.example\",\"user\",\"secret\",3"
        );
        let mut none = cfg("", "", "");
        none.auth = Auth::None;
        none.context_type = ContextType::Ipv6;
        assert_eq!(wrote(&none).unwrap(), b"AT+QICSGP=1,2,\"\",\"\",\"\",0");
        let mut chap = cfg("a", "b", "c");
        chap.auth = Auth::Chap;
        assert_eq!(wrote(&chap).unwrap(), b"AT+QICSGP=1,1,\"a\",\"b\",\"c\",2");
        assert_eq!(wrote(&cfg("a", "b", "c\"d")), Err(Error::InvalidArgument));
        assert_eq!(wrote(&cfg("a", "b\r", "c")), Err(Error::InvalidArgument));
        assert_eq!(wrote(&cfg("a\n", "b", "c")), Err(Error::InvalidArgument));
        assert_eq!(
            wrote(&ConfigureContext {
                cid: 0,
                ..cfg("a", "", "")
            }),
            Err(Error::InvalidArgument)
        );
        // Too long for the modem: refused before anything is written.
        let long = "x".repeat(MAX_APN + 1);
        assert_eq!(wrote(&cfg(&long, "", "")), Err(Error::InvalidArgument));
        assert_eq!(def(1, PdpType::Ip, &long), Err(Error::InvalidArgument));
        // Too long for the buffer (here 128 bytes): an overflow, not a truncated command.
        let apn = "x".repeat(MAX_APN);
        assert_eq!(wrote(&cfg(&apn, "user", "secret")), Err(Error::Overflow));

        assert_eq!(wrote(&GetContextConfig { cid: 1 }).unwrap(), b"AT+QICSGP=1");
        assert_eq!(
            wrote(&GetContextConfig { cid: 0 }),
            Err(Error::InvalidArgument)
        );
        assert_eq!(wrote(&ActivateContext { cid: 1 }).unwrap(), b"AT+QIACT=1");
        assert_eq!(
            wrote(&ActivateContext { cid: 17 }),
            Err(Error::InvalidArgument)
        );
        assert_eq!(wrote(&GetActiveContexts).unwrap(), b"AT+QIACT?");
        assert_eq!(
            wrote(&DeactivateContext { cid: 3 }).unwrap(),
            b"AT+QIDEACT=3"
        );
        assert_eq!(
            wrote(&DeactivateContext { cid: 0 }),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            wrote(&SetPdpActive {
                state: true,
                cid: 1
            })
            .unwrap(),
            b"AT+CGACT=1,1"
        );
        assert_eq!(
            wrote(&SetPdpActive {
                state: false,
                cid: 2
            })
            .unwrap(),
            b"AT+CGACT=0,2"
        );
        assert_eq!(
            wrote(&SetPdpActive {
                state: true,
                cid: 0
            }),
            Err(Error::InvalidArgument)
        );
        assert_eq!(wrote(&GetPdpActive).unwrap(), b"AT+CGACT?");
        assert_eq!(wrote(&GetPdpAddress { cid: 1 }).unwrap(), b"AT+CGPADDR=1");
        assert_eq!(
            wrote(&GetPdpAddress { cid: 99 }),
            Err(Error::InvalidArgument)
        );
        assert_eq!(wrote(&SetPsAttach(true)).unwrap(), b"AT+CGATT=1");
        assert_eq!(wrote(&SetPsAttach(false)).unwrap(), b"AT+CGATT=0");
        assert_eq!(wrote(&GetPsAttach).unwrap(), b"AT+CGATT?");
        assert_eq!(wrote(&GetDnsConfig { cid: 1 }).unwrap(), b"AT+QIDNSCFG=1");
        assert_eq!(wrote(&GetDnsConfig { cid: 0 }), Err(Error::InvalidArgument));
        let dns = |primary, secondary| {
            wrote(&SetDnsConfig {
                cid: 1,
                primary,
                secondary,
            })
        };
        assert_eq!(
            dns("8.8.8.8", Some("8.8.4.4")).unwrap(),
            b"AT+QIDNSCFG=1,\"8.8.8.8\",\"8.8.4.4\""
        );
        assert_eq!(dns("8.8.8.8", None).unwrap(), b"AT+QIDNSCFG=1,\"8.8.8.8\"");
        assert_eq!(dns("", None), Err(Error::InvalidArgument));

        assert_eq!(ActivateContext::TIMEOUT_MS, 150_000);
        assert_eq!(DeactivateContext::TIMEOUT_MS, 40_000);
        assert_eq!(SetPdpActive::TIMEOUT_MS, 150_000);
        assert_eq!(SetPsAttach::TIMEOUT_MS, 140_000);
        assert_eq!(DefinePdpContext::TIMEOUT_MS, 300);
        assert_eq!(ConfigureContext::TIMEOUT_MS, 300);
        assert_eq!(GetActiveContexts::EXPECT, Expect::prefixed(b"+QIACT:"));
    }

    #[test]
    fn password_not_in_debug() {
        let c = ConfigureContext {
            password: "hunter2",
            ..cfg("apn", "bob", "")
        };
        let d = format!("{c:?}");
        assert!(
            !d.contains("hunter2") && d.contains("***") && d.contains("bob"),
            "{d}"
        );
        let r = ContextConfig {
            context_type: ContextType::Ipv4,
            apn: s("apn"),
            username: s("bob"),
            password: s("hunter2"),
            auth: Auth::Chap,
        };
        let d = format!("{r:#?}");
        assert!(!d.contains("hunter2") && d.contains("***"), "{d}");
    }

    #[test]
    fn ok_only() {
        let rows: &[Row<()>] = &[
            (b"\r\nOK\r\n", Ok(())),
            (b"AT+QIACT=1\r\r\nOK\r\n", Ok(())),
            (b"\r\n+QIURC: \"pdpdeact\",1\r\n\r\nOK\r\n", Ok(())),
            (b"\r\nERrOR\r\n\r\nOK\r\n", Ok(())),
            (b"\r\nERROR\r\n", Err(Error::Error)),
            (b"\r\n+CME ERROR: 30\r\n", Err(Error::Cme(CmeError(30)))),
            (
                b"\r\n+CME ERROR: no network service\r\n",
                Err(Error::Cme(CmeError(30))),
            ),
            // Not a final result code for a command that dials nothing: a URC.
            (b"\r\nNO CARRIER\r\n\r\nOK\r\n", Ok(())),
        ];
        table(
            &DefinePdpContext {
                cid: 1,
                pdp_type: PdpType::Ip,
                apn: "internet",
            },
            rows,
        );
        table(&cfg("UNINET", "", ""), rows);
        table(&ActivateContext { cid: 1 }, rows);
        table(&DeactivateContext { cid: 1 }, rows);
        table(
            &SetPdpActive {
                state: true,
                cid: 1,
            },
            rows,
        );
        table(&SetPsAttach(true), rows);
        table(
            &SetDnsConfig {
                cid: 1,
                primary: "8.8.8.8",
                secondary: None,
            },
            rows,
        );
    }

    #[test]
    fn cgdcont() {
        let c = |cid, pdp_type, apn: &str| PdpContext {
            cid,
            pdp_type,
            apn: s(apn),
        };
        let list = |items: &[PdpContext]| Ok(Vec::from_slice(items).unwrap());
        let rows: &[Row<Vec<PdpContext, 16>>] = &[
            (
                b"\r\n+CGDCONT: 1,\"IP\",\"internet\",\"0.0.0.0\",0,0\r\n\r\nOK\r\n",
                list(&[c(1, PdpType::Ip, "internet")]),
            ),
            (
                b"AT+CGDCONT?\r\r\n+CGDCONT: 1,\"IPV4V6\",\"\",\"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0\",0,0,0,0\r\n+CGDCONT: 2,\"IPV4V6\",\"ims\",\"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0\",0,0,0,0\r\n+CGDCONT: 3,\"ipv6\",\"SOS\"\r\n\r\nOK\r\n",
                list(&[
                    c(1, PdpType::Ipv4v6, ""),
                    c(2, PdpType::Ipv4v6, "ims"),
                    c(3, PdpType::Ipv6, "SOS"),
                ]),
            ),
            (
                b"\r\n+CGDCONT: 1,\"Non-IP\",\"nidd\",\"\",0,0\r\n\r\n+QIURC: \"recv\",0\r\n\r\n+CGDCONT: 2,\"PPP\",\"x\"\r\nOK\r\n",
                list(&[c(1, PdpType::NonIp, "nidd"), c(2, PdpType::Ppp, "x")]),
            ),
            (b"\r\nOK\r\n", list(&[])),
            (b"\r\n+CGDCONT: 1,\"X25\",\"internet\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CGDCONT: 256,\"IP\",\"internet\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CGDCONT: 1,\"IP\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (
                b"\r\n+CGDCONT: 1,\"IP\",\"0123456789012345678901234567890123456789012345678901234567890123\"\r\n\r\nOK\r\n",
                list(&[c(1, PdpType::Ip, "0123456789012345678901234567890123456789012345678901234567890123")]),
            ),
            (
                b"\r\n+CGDCONT: 1,\"IP\",\"01234567890123456789012345678901234567890123456789012345678901234\"\r\n\r\nOK\r\n",
                Err(Error::Overflow),
            ),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&GetPdpContexts, rows);
        // 16 contexts fit; a 17th is an overflow.
        let mut wire = StdVec::new();
        for cid in 1..=16 {
            wire.extend_from_slice(format!("\r\n+CGDCONT: {cid},\"IP\",\"a\"").as_bytes());
        }
        wire.extend_from_slice(b"\r\n\r\nOK\r\n");
        assert_eq!(run_wire(&GetPdpContexts, &wire, 64).unwrap().len(), 16);
        let mut wire = wire[..wire.len() - 8].to_vec();
        wire.extend_from_slice(b"\r\n+CGDCONT: 17,\"IP\",\"a\"\r\n\r\nOK\r\n");
        assert_eq!(run_wire(&GetPdpContexts, &wire, 64), Err(Error::Overflow));
    }

    #[test]
    fn qicsgp_read() {
        let c = |t, apn: &str, user: &str, pass: &str, auth| {
            Ok(ContextConfig {
                context_type: t,
                apn: s(apn),
                username: s(user),
                password: s(pass),
                auth,
            })
        };
        let rows: &[Row<ContextConfig>] = &[
            (
                b"\r\n+QICSGP: 1,\"\",\"\",\"\",0\r\n\r\nOK\r\n",
                c(ContextType::Ipv4, "", "", "", Auth::None),
            ),
            (
                b"AT+QICSGP=1\r\r\n+QICSGP: 1,\"UNINET\",\"\",\"\",1\r\n\r\nOK\r\n",
                c(ContextType::Ipv4, "UNINET", "", "", Auth::Pap),
            ),
            (
                b"\r\n+QICSGP: 3,\"iot\",\"u\",\"p\",3\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                c(ContextType::Ipv4v6, "iot", "u", "p", Auth::PapOrChap),
            ),
            (
                b"\r\n+QICSGP: 2,\"v6\",\"\",\"\",2\r\nOK\r\n",
                c(ContextType::Ipv6, "v6", "", "", Auth::Chap),
            ),
            (
                b"\r\n+QICSGP: 4,\"\",\"\",\"\",0\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+QICSGP: 1,\"\",\"\",\"\",4\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+QICSGP: 1,\"\",\"\",0\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&GetContextConfig { cid: 1 }, rows);
    }

    #[test]
    fn qiact_read() {
        let a = |cid, state, t, v4: Option<&str>, v6: Option<&str>| ActiveContext {
            cid,
            state,
            context_type: t,
            ipv4: v4.map(s),
            ipv6: v6.map(s),
        };
        let list = |items: &[ActiveContext]| Ok(Vec::from_slice(items).unwrap());
        let rows: &[Row<Vec<ActiveContext, 16>>] = &[
            (b"\r\nOK\r\n", list(&[])),
            (b"AT+QIACT?\r\r\nOK\r\n", list(&[])),
            (
                b"\r\n+QIACT: 1,1,1,\"10.7.157.1\"\r\n\r\nOK\r\n",
                list(&[a(1, true, ContextType::Ipv4, Some("10.7.157.1"), None)]),
            ),
            (
                b"AT+QIACT?\r\r\n+QIACT: 1,1,1,\"10.7.157.1\"\r\nOK\r\n",
                list(&[a(1, true, ContextType::Ipv4, Some("10.7.157.1"), None)]),
            ),
            (
                b"\r\n+QIACT: 1,1,1,\"10.7.157.1\"\r\n+QIACT: 2,1,3,\"10.1.2.3\",\"2001:db8::1\"\r\n+QIACT: 3,1,2,\"fe80::1\"\r\n\r\nOK\r\n",
                list(&[
                    a(1, true, ContextType::Ipv4, Some("10.7.157.1"), None),
                    a(2, true, ContextType::Ipv4v6, Some("10.1.2.3"), Some("2001:db8::1")),
                    a(3, true, ContextType::Ipv6, None, Some("fe80::1")),
                ]),
            ),
            (
                b"\r\n+QIACT: 1,1,1,\"10.7.157.1\"\r\n\r\n+QIURC: \"recv\",0\r\n\r\nERrOR\r\n\r\nOK\r\n",
                list(&[a(1, true, ContextType::Ipv4, Some("10.7.157.1"), None)]),
            ),
            (b"\r\n+QIACT: 1,0,1\r\n\r\nOK\r\n", list(&[a(1, false, ContextType::Ipv4, None, None)])),
            (b"\r\n+QIACT: 1,1,1,\"\"\r\n\r\nOK\r\n", list(&[a(1, true, ContextType::Ipv4, None, None)])),
            (
                b"\r\n+QIACT: 16,1,1,\"255.255.255.255\"\r\n\r\nOK\r\n",
                list(&[a(16, true, ContextType::Ipv4, Some("255.255.255.255"), None)]),
            ),
            (
                b"\r\n+QIACT: 1,1,2,\"2001:0db8:0000:0000:0000:ff00:0042:8329\"\r\n\r\nOK\r\n",
                list(&[a(1, true, ContextType::Ipv6, None, Some("2001:0db8:0000:0000:0000:ff00:0042:8329"))]),
            ),
            (b"\r\n+QIACT: 1,2,1,\"10.7.157.1\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QIACT: 1,1,4,\"10.7.157.1\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QIACT: 256,1,1,\"10.7.157.1\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QIACT: 1,1,1,\"10.7.157\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QIACT: 1,1,1,\"10.7.157.x\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QIACT: 1,1,3,\"10.1.2.3\",\"10.1.2.4\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QIACT: 1,1,1,\"10.7.157.1\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QIACT: 1,1\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QIACT: 1,1,1,\"1000.7000.157.1111\"\r\n\r\nOK\r\n", Err(Error::Overflow)),
            (b"\r\nERROR\r\n", Err(Error::Error)),
            (b"\r\n+CME ERROR: 3\r\n", Err(Error::Cme(CmeError(3)))),
        ];
        table(&GetActiveContexts, rows);
        // One context of the list: the others are parsed (bad lines are still refused), not kept.
        let two = b"\r\n+QIACT: 1,1,1,\"10.7.157.1\"\r\n+QIACT: 2,0,1\r\n\r\nOK\r\n";
        let one: &[Row<Option<ActiveContext>>] = &[
            (
                two,
                Ok(Some(a(
                    1,
                    true,
                    ContextType::Ipv4,
                    Some("10.7.157.1"),
                    None,
                ))),
            ),
            (b"\r\nOK\r\n", Ok(None)),
            (b"\r\n+QIACT: 1,2,1\r\n\r\nOK\r\n", Err(Error::Parse)),
        ];
        table(&GetActiveContext { cid: 1 }, one);
        let one: &[Row<Option<ActiveContext>>] = &[
            (two, Ok(Some(a(2, false, ContextType::Ipv4, None, None)))),
            (b"\r\n+QIACT: 1,1,1,\"10.7.157.1\"\r\n\r\nOK\r\n", Ok(None)),
        ];
        table(&GetActiveContext { cid: 2 }, one);
        assert_eq!(
            wrote(&GetActiveContext { cid: 17 }),
            Err(Error::InvalidArgument)
        );
    }

    #[test]
    fn cgact_read() {
        let list = |items: &[(u8, bool)]| Ok(Vec::from_slice(items).unwrap());
        let rows: &[Row<Vec<(u8, bool), 16>>] = &[
            (
                b"\r\n+CGACT: 1,1\r\n+CGACT: 2,0\r\n\r\nOK\r\n",
                list(&[(1, true), (2, false)]),
            ),
            (b"AT+CGACT?\r\r\n+CGACT: 1,1\r\nOK\r\n", list(&[(1, true)])),
            (
                b"\r\n+CGACT: 1,1\r\n\r\n+QIURC: \"recv\",0\r\n\r\n+CGACT: 2,0\r\n\r\nOK\r\n",
                list(&[(1, true), (2, false)]),
            ),
            (b"\r\nOK\r\n", list(&[])),
            (b"\r\n+CGACT: 1,2\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CGACT: 1\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CGACT: 300,1\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&GetPdpActive, rows);
    }

    #[test]
    fn cgpaddr() {
        let p = |v4: Option<&str>, v6: Option<&str>| {
            Ok(PdpAddress {
                cid: 1,
                ipv4: v4.map(s),
                ipv6: v6.map(s),
            })
        };
        let rows: &[Row<PdpAddress>] = &[
            (b"\r\n+CGPADDR: 1,\"10.76.51.180\"\r\n\r\nOK\r\n", p(Some("10.76.51.180"), None)),
            (b"AT+CGPADDR=1\r\r\n+CGPADDR: 1,\"10.76.51.180\"\r\nOK\r\n", p(Some("10.76.51.180"), None)),
            (b"\r\n+CGPADDR: 1,10.76.51.180\r\n\r\nOK\r\n", p(Some("10.76.51.180"), None)),
            (b"\r\n+CGPADDR: 1\r\n\r\nOK\r\n", p(None, None)),
            (b"\r\n+CGPADDR: 1,\"\"\r\n\r\nOK\r\n", p(None, None)),
            (
                b"\r\n+CGPADDR: 1,\"10.1.2.3\",\"2001:db8::1\"\r\n\r\nOK\r\n",
                p(Some("10.1.2.3"), Some("2001:db8::1")),
            ),
            (
                b"\r\n+CGPADDR: 1,\"10.1.2.3\",\"32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.1\"\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                p(Some("10.1.2.3"), Some("32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.1")),
            ),
            (
                b"\r\n+CGPADDR: 1,\"254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.1\"\r\n\r\nOK\r\n",
                p(None, Some("254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.1")),
            ),
            (b"\r\n+CGPADDR: 2,\"10.0.0.2\"\r\n+CGPADDR: 1,\"10.0.0.1\"\r\n\r\nOK\r\n", p(Some("10.0.0.1"), None)),
            (b"\r\n+CGPADDR: 2,\"10.0.0.2\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CGPADDR: 1,\"10.0.0\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CGPADDR: 1,\"10.0.0.1\",\"10.0.0.2\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CGPADDR: 1,\"10.0.0.1\",\"::1\",\"::2\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CME ERROR: 3\r\n", Err(Error::Cme(CmeError(3)))),
        ];
        table(&GetPdpAddress { cid: 1 }, rows);
    }

    #[test]
    fn cgatt_read() {
        let rows: &[Row<bool>] = &[
            (b"\r\n+CGATT: 1\r\n\r\nOK\r\n", Ok(true)),
            (b"AT+CGATT?\r\r\n+CGATT: 0\r\nOK\r\n", Ok(false)),
            (b"\r\n+CGATT: 2\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CME ERROR: 30\r\n", Err(Error::Cme(CmeError(30)))),
        ];
        table(&GetPsAttach, rows);
    }

    #[test]
    fn dns_read() {
        let d = |p: &str, q: &str| {
            Ok(DnsConfig {
                primary: s(p),
                secondary: s(q),
            })
        };
        let rows: &[Row<DnsConfig>] = &[
            (b"\r\n+QIDNSCFG: 1,\"8.8.8.8\",\"8.8.4.4\"\r\n\r\nOK\r\n", d("8.8.8.8", "8.8.4.4")),
            (b"AT+QIDNSCFG=1\r\r\n+QIDNSCFG: 1,\"8.8.8.8\",\"8.8.4.4\"\r\nOK\r\n", d("8.8.8.8", "8.8.4.4")),
            (b"\r\n+QIDNSCFG: 1,\"8.8.8.8\"\r\n\r\nOK\r\n", d("8.8.8.8", "")),
            (b"\r\n+QIDNSCFG: 1,\"0.0.0.0\",\"0.0.0.0\"\r\n\r\nOK\r\n", d("0.0.0.0", "0.0.0.0")),
            (
                b"\r\n+QIDNSCFG: 1,\"2001:4860:4860::8888\",\"2001:4860:4860::8844\"\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                d("2001:4860:4860::8888", "2001:4860:4860::8844"),
            ),
            (
                b"\r\n+QIDNSCFG: 1,\"2001:0db8:0000:0000:0000:ff00:0042:8329\",\"\"\r\n\r\nOK\r\n",
                d("2001:0db8:0000:0000:0000:ff00:0042:8329", ""),
            ),
            (
                b"\r\n+QIDNSCFG: 1,\"2001:0db8:0000:0000:0000:ff00:0042:8329:1\",\"\"\r\n\r\nOK\r\n",
                Err(Error::Overflow),
            ),
            (b"\r\n+QIDNSCFG: 2,\"8.8.8.8\",\"8.8.4.4\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QIDNSCFG: 1,\"\",\"8.8.4.4\"\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QIDNSCFG: 1\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&GetDnsConfig { cid: 1 }, rows);
    }
}
