//! The power-saving and network-time URCs (issue 12): `+CEDRXP:` (eDRX parameters),
//! `+CTZV:`/`+CTZE:` (time zone, with the time when the network sent it). The URC parser
//! only keeps their text ([`UrcText`]): every firmware links the URC parser, and these rare
//! lines are typed only when asked ([`UrcText::edrx`], [`UrcText::time_zone`]), so a firmware
//! that never reads them does not carry their parsers.
//!
//! `+QIND: "nitz",…` is not taken: no manual of the supported models documents its form, and
//! recognising it in the intake costs every firmware about 80 bytes of flash (the footprint
//! budget); `+CTZE` (`AT+CTZR=2`) and `AT+QLTS` carry the same time. The command layer gives them their 3GPP meaning
//! (`command::edrx::EdrxParams`, `command::nettime::NetworkTime`).

use crate::error::trim_ascii;

/// Longest URC text kept (the longest of these URCs, `+CTZE`'s, is 28 bytes); a longer one is
/// reported as [`Urc::Unknown`](super::urc::Urc::Unknown).
pub const URC_TEXT_MAX: usize = 32;

/// The text of a URC after its prefix, kept as it came (at most [`URC_TEXT_MAX`] bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UrcText {
    len: u8,
    buf: [u8; URC_TEXT_MAX],
}

impl core::fmt::Debug for UrcText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "UrcText({:?})", self.as_bytes().escape_ascii())
    }
}

impl UrcText {
    /// Keeps `text`; `None` if it is longer than [`URC_TEXT_MAX`].
    pub fn new(text: &[u8]) -> Option<Self> {
        let mut buf = [0u8; URC_TEXT_MAX];
        buf.get_mut(..text.len())?.copy_from_slice(text);
        Some(Self {
            len: u8::try_from(text.len()).ok()?,
            buf,
        })
    }

    /// The text.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// As a `+CEDRXP:` report; `None` if malformed.
    pub fn edrx(&self) -> Option<EdrxReport> {
        edrx_report(self.as_bytes())
    }

    /// As a `+CTZV:`/`+CTZE:` report; `None` if malformed.
    pub fn time_zone(&self) -> Option<NetworkTimeReport> {
        time_zone_report(self.as_bytes())
    }

    /// Whether the text holds a date (a time URC that carries the time, not only the zone).
    pub fn has_date(&self) -> bool {
        self.as_bytes().contains(&b'/')
    }
}

/// `+CEDRXP: <AcT-type>[,"<requested>"[,"<NW-provided>"[,"<PTW>"]]]` (27.007 §7.41, with
/// `AT+CEDRXS=2`): the network's eDRX parameters changed. Values are the 4-bit fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EdrxReport {
    /// `<AcT-type>`: 0 eDRX not used, 4 LTE-M, 5 NB-IoT.
    pub act: u8,
    /// The requested eDRX value.
    pub requested: Option<u8>,
    /// The value the network gave.
    pub granted: Option<u8>,
    /// The paging time window the network gave.
    pub paging_window: Option<u8>,
}

/// A date and time as the network sent it (local time, no zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TimeFields {
    /// Year (2000–2099 when sent with two digits).
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day, 1–31.
    pub day: u8,
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–59.
    pub second: u8,
}

/// What a network-time URC carried: the zone always, the time and daylight-saving adjustment
/// when the form has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NetworkTimeReport {
    /// Local time (when sent): `+CTZE` carries it, `+CTZV` mostly not.
    pub local: Option<TimeFields>,
    /// Local time minus UTC, in quarters of an hour (−48…+56).
    pub offset_quarters: i8,
    /// Daylight-saving adjustment in hours (0–2), when sent.
    pub dst: Option<u8>,
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 4 {
        return None;
    }
    s.iter().try_fold(0u32, |a, &d| {
        a.checked_mul(10)?.checked_add(char::from(d).to_digit(10)?)
    })
}

fn small(s: &[u8]) -> Option<u8> {
    if s.len() != 2 {
        return None;
    }
    digits(s).and_then(|v| u8::try_from(v).ok())
}

/// `±zz` (quarters of an hour), one or two digits.
fn zone(s: &[u8]) -> Option<i8> {
    let (sign, rest) = s.split_first()?;
    if rest.is_empty() || rest.len() > 2 {
        return None;
    }
    let v = i8::try_from(digits(rest)?).ok()?;
    let v = match sign {
        b'+' => v,
        b'-' => v.checked_neg()?,
        _ => return None,
    };
    (-48..=56).contains(&v).then_some(v)
}

fn unquote(s: &[u8]) -> &[u8] {
    let s = trim_ascii(s);
    match s {
        [b'"', inner @ .., b'"'] => inner,
        _ => s,
    }
}

/// Splits at the commas outside quotes (at most 6 fields; more is `None`).
fn fields(i: &[u8]) -> Option<heapless::Vec<&[u8], 6>> {
    let mut out = heapless::Vec::new();
    let mut start = 0usize;
    let mut quoted = false;
    for (n, &b) in i.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(i.get(start..n)?).ok()?;
                start = n.checked_add(1)?;
            }
            _ => {}
        }
    }
    out.push(i.get(start..)?).ok()?;
    Some(out)
}

/// A time text: `yy/MM/dd,hh:mm:ss` or `yyyy/MM/dd,hh:mm:ss`, optionally followed by the zone
/// `±zz` and by `,<dst>` (the forms of `+CCLK`, `+QLTS` and `+CTZE`).
/// Returns the fields, the zone and the dst if present.
pub fn parse_time_text(s: &[u8]) -> Option<(TimeFields, Option<i8>, Option<u8>)> {
    let (date, rest) = split_once(s, b',')?;
    let mut d = date.split(|&b| b == b'/');
    let (y, mo, da) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() {
        return None;
    }
    let year = match y.len() {
        2 => 2000u16.checked_add(u16::try_from(digits(y)?).ok()?)?,
        4 => u16::try_from(digits(y)?).ok()?,
        _ => return None,
    };
    // `hh:mm:ss` is 8 bytes; what follows is the zone and then `,dst`.
    let time = rest.get(..8)?;
    let tail = rest.get(8..)?;
    let (zone_text, dst_text) = match split_once(tail, b',') {
        Some((z, d)) => (z, Some(d)),
        None => (tail, None),
    };
    let offset = if zone_text.is_empty() {
        None
    } else {
        Some(zone(zone_text)?)
    };
    let dst = match dst_text {
        Some(t) => Some(
            u8::try_from(digits(trim_ascii(t))?)
                .ok()
                .filter(|&v| v <= 2)?,
        ),
        None => None,
    };
    let mut t = time.split(|&b| b == b':');
    let (h, mi, se) = (t.next()?, t.next()?, t.next()?);
    let f = TimeFields {
        year,
        month: small(mo)?,
        day: small(da)?,
        hour: small(h)?,
        minute: small(mi)?,
        second: small(se)?,
    };
    let valid = (1..=12).contains(&f.month)
        && (1..=31).contains(&f.day)
        && f.hour < 24
        && f.minute < 60
        && f.second < 60;
    valid.then_some((f, offset, dst))
}

fn split_once(s: &[u8], c: u8) -> Option<(&[u8], &[u8])> {
    let at = s.iter().position(|&b| b == c)?;
    Some((s.get(..at)?, s.get(at.checked_add(1)?..)?))
}

/// `+CEDRXP:` fields.
fn edrx_report(i: &[u8]) -> Option<EdrxReport> {
    let f = fields(i)?;
    let mut it = f.iter();
    let act = u8::try_from(digits(trim_ascii(it.next()?))?).ok()?;
    let mut next = || -> Option<Option<u8>> {
        match it.next() {
            None => Some(None),
            Some(v) => {
                let v = unquote(v);
                if v.is_empty() {
                    return Some(None);
                }
                if v.len() != 4 {
                    return None;
                }
                let n = v.iter().try_fold(0u8, |a, &c| match c {
                    b'0' => Some(a << 1),
                    b'1' => Some(a << 1 | 1),
                    _ => None,
                })?;
                Some(Some(n))
            }
        }
    };
    let requested = next()?;
    let granted = next()?;
    let paging_window = next()?;
    Some(EdrxReport {
        act,
        requested,
        granted,
        paging_window,
    })
}

/// `+CTZV:`/`+CTZE:` fields: `<tz>[,<dst>][,"<time>"]` in any order after the zone; the zone
/// quoted or not.
fn time_zone_report(i: &[u8]) -> Option<NetworkTimeReport> {
    let f = fields(i)?;
    let mut it = f.iter();
    let offset_quarters = zone(unquote(it.next()?))?;
    let mut r = NetworkTimeReport {
        local: None,
        offset_quarters,
        dst: None,
    };
    for field in it {
        let v = unquote(field);
        if v.contains(&b'/') {
            let (t, z, d) = parse_time_text(v)?;
            r.local = Some(t);
            if let Some(z) = z {
                r.offset_quarters = z;
            }
            r.dst = d.or(r.dst);
        } else if !v.is_empty() {
            r.dst = Some(u8::try_from(digits(v)?).ok().filter(|&d| d <= 2)?);
        }
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tf(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> TimeFields {
        TimeFields {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    #[test]
    fn time_texts() {
        assert_eq!(
            parse_time_text(b"2019/01/13,03:40:48+32,0"),
            Some((tf(2019, 1, 13, 3, 40, 48), Some(32), Some(0)))
        );
        assert_eq!(
            parse_time_text(b"26/12/02,05:00:00-20"),
            Some((tf(2026, 12, 2, 5, 0, 0), Some(-20), None))
        );
        assert_eq!(
            parse_time_text(b"2026/12/02,05:00:00"),
            Some((tf(2026, 12, 2, 5, 0, 0), None, None))
        );
        for bad in [
            &b"2019/13/13,03:40:48+32"[..],
            b"2019/01/13,24:40:48+32",
            b"2019/01/13,03:40:48+99",
            b"2019/01/13,03:40:48*32",
            b"2019/01/13,03:40:48+32,7",
            b"201/01/13,03:40:48",
            b"2019/01/13 03:40:48",
        ] {
            assert_eq!(parse_time_text(bad), None, "{}", bad.escape_ascii());
        }
    }
}
