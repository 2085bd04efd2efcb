//! nom 8 building blocks for Quectel parameter lists (`1,"IP","internet",0`), used by the URC
//! parsers here and by the typed commands of the layer above.
//!
//! All parsers work on complete lines (`nom::*::complete`), never panic, and reject trailing
//! garbage when used through [`all`].

use nom::{
    IResult, Parser,
    bytes::complete::take_while,
    character::complete::{char, digit1},
    combinator::{map_res, opt, recognize},
    sequence::{delimited, preceded},
};

use crate::Error;

/// A double-quoted string without escapes (Quectel has none); returns the text between quotes.
pub fn quoted(i: &[u8]) -> IResult<&[u8], &[u8]> {
    delimited(char('"'), take_while(|b| b != b'"'), char('"')).parse(i)
}

/// An unsigned decimal integer fitting `u32` (read by hand: no UTF-8 check and `str::parse`
/// for what are ASCII digits already).
pub fn uint(i: &[u8]) -> IResult<&[u8], u32> {
    match read_uint(i) {
        Some(found) => Ok(found),
        None => {
            let kind = if i.first().is_some_and(u8::is_ascii_digit) {
                nom::error::ErrorKind::MapRes
            } else {
                nom::error::ErrorKind::Digit
            };
            Err(nom::Err::Error(nom::error::Error::new(i, kind)))
        }
    }
}

/// [`uint`] without nom's result (the hand-read parsers' form: returned in registers, no error
/// value built): the rest and the value, or `None` (no digit, or above `u32::MAX`).
#[inline]
pub(crate) fn read_uint(i: &[u8]) -> Option<(&[u8], u32)> {
    // One pass: a digit's value is its byte less `'0'`, below 10 (anything else ends the
    // number); an overflow is `None`, as it was when the digits were counted first.
    // (The rest kept as a slice as the digits are taken: no index to slice at afterwards,
    // no fallback for a slicing that cannot fail.)
    let mut v: u32 = 0;
    let mut rest = i;
    while let [b, tail @ ..] = rest {
        let d = b.wrapping_sub(b'0');
        if d >= 10 {
            break;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(d))?;
        rest = tail;
    }
    if rest.len() == i.len() {
        return None;
    }
    Some((rest, v))
}

/// A signed decimal integer fitting `i32`.
pub fn int(i: &[u8]) -> IResult<&[u8], i32> {
    map_res(recognize((opt(char('-')), digit1)), |d: &[u8]| {
        core::str::from_utf8(d)
            .map_err(|_| ())
            .and_then(|s| s.parse::<i32>().map_err(|_| ()))
    })
    .parse(i)
}

/// `i` without its leading spaces and tabs (what nom's `space0` skips).
#[inline]
pub(crate) fn skip_space(i: &[u8]) -> &[u8] {
    let n = i.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    i.get(n..).unwrap_or_default()
}

/// What follows a field separator (a comma with optional spaces and tabs around it), read by
/// hand: [`comma`] without nom.
#[inline]
pub(crate) fn after_comma(i: &[u8]) -> Option<&[u8]> {
    match i {
        // The usual separator, a bare comma, without the space loops.
        [b',', rest @ ..] if !matches!(rest.first(), Some(b' ' | b'\t')) => Some(rest),
        _ => skip_space(i).strip_prefix(b",").map(skip_space),
    }
}

/// A field separator: a comma with optional spaces around it.
pub fn comma(i: &[u8]) -> IResult<&[u8], ()> {
    match after_comma(i) {
        Some(rest) => Ok((rest, ())),
        None => Err(nom::Err::Error(nom::error::Error::new(
            skip_space(i),
            nom::error::ErrorKind::Char,
        ))),
    }
}

/// Exactly `N` comma-separated unsigned integers (trailing spaces allowed): what
/// `all((uint, next(uint), …), i)` accepts, read without nom.
pub(crate) fn uints<const N: usize>(i: &[u8]) -> Option<[u32; N]> {
    let mut out = [0u32; N];
    let mut i = i;
    for (k, v) in out.iter_mut().enumerate() {
        if k > 0 {
            i = after_comma(i)?;
        }
        let (rest, n) = read_uint(i)?;
        *v = n;
        i = rest;
    }
    skip_space(i).is_empty().then_some(out)
}

/// [`uints::<2>`](uints) with its usual form, `<a>,<b>` and nothing after (a `+QIOPEN`'s id
/// and error, a `"csq"` report's two numbers), read in place: no loop, no array, no separator
/// or trailing-space loop; any other form by [`uints`].
#[inline]
pub(crate) fn uint_pair(i: &[u8]) -> Option<[u32; 2]> {
    if let Some((rest, a)) = read_uint(i)
        && let Some((rest, b)) = rest.strip_prefix(b",").and_then(read_uint)
        && rest.is_empty()
    {
        return Some([a, b]);
    }
    uints::<2>(i)
}

/// `, <p>` — a following field.
pub fn next<'a, O, P>(
    p: P,
) -> impl Parser<&'a [u8], Output = O, Error = nom::error::Error<&'a [u8]>>
where
    P: Parser<&'a [u8], Output = O, Error = nom::error::Error<&'a [u8]>>,
{
    preceded(comma, p)
}

/// Runs `p` over the whole input (trailing spaces allowed); anything left over is
/// [`Error::Parse`].
pub fn all<'a, O, P>(mut p: P, input: &'a [u8]) -> Result<O, Error>
where
    P: Parser<&'a [u8], Output = O, Error = nom::error::Error<&'a [u8]>>,
{
    match p.parse(input) {
        Ok((rest, out)) if skip_space(rest).is_empty() => Ok(out),
        _ => Err(Error::Parse),
    }
}

/// Copies text into a bounded `heapless::String`; too long is [`Error::Overflow`]. Kept for the
/// tests only, as the reference `util::text` (the driver's one setter) is checked against.
#[cfg(test)]
pub fn to_string<const N: usize>(s: &[u8]) -> Result<heapless::String<N>, Error> {
    let s = core::str::from_utf8(s).map_err(|_| Error::Parse)?;
    heapless::String::try_from(s).map_err(|_| Error::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_uint` (the rest kept as a slice) reads what `str::parse` reads of the digits it
    /// starts with: their value and the rest, `None` without a digit or above `u32::MAX`.
    #[test]
    fn read_uint_agrees_with_str_parse() {
        let check = |t: &[u8]| {
            let n = t.iter().take_while(|b| b.is_ascii_digit()).count();
            let want = core::str::from_utf8(&t[..n])
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .map(|v| (&t[n..], v));
            assert_eq!(read_uint(t), want, "{t:?}");
        };
        for t in crate::at::random_lines(0x0de1_0a7e, 14, 500, b"0012999,x ") {
            check(&t);
        }
        for t in [
            &b"4294967295"[..],
            b"4294967296",
            b"0000000000004294967295,",
            b"",
            b"x1",
        ] {
            check(t);
        }
    }

    #[test]
    fn bare_comma_shortcut_agrees_with_the_space_loops() {
        for line in crate::at::random_lines(0x00c0_3a3a, 8, 200, b", \t1x") {
            let want = skip_space(&line).strip_prefix(b",").map(skip_space);
            assert_eq!(after_comma(&line), want, "{line:?}");
        }
    }

    #[test]
    fn a_pair_read_in_place_agrees_with_uints() {
        for line in crate::at::random_lines(0x9a12_5e07, 16, 3000, b",, \t0129x") {
            assert_eq!(uint_pair(&line), uints::<2>(&line), "{line:?}");
        }
        for line in [
            &b"1,0"[..],
            b"20,99",
            b"4294967295,4294967295",
            b"4294967296,1",
            b"1,4294967296",
            b"1,2 ",
            b"1 ,2",
            b"1, 2",
            b"1,2,3",
            b",2",
            b"1,",
        ] {
            assert_eq!(uint_pair(line), uints::<2>(line), "{line:?}");
        }
    }

    #[test]
    fn fields() {
        let r = all((uint, next(quoted), next(int)), b"1,\"IP\",-52").unwrap();
        assert_eq!(r, (1, &b"IP"[..], -52));
        assert_eq!(all(uint, b"1x"), Err(Error::Parse));
        assert_eq!(all(uint, b"99999999999"), Err(Error::Parse));
        assert_eq!(all(uint, b"4294967295"), Ok(u32::MAX));
        assert_eq!(all(uint, b"4294967296"), Err(Error::Parse));
        assert_eq!(all(uint, b"007"), Ok(7));
        assert_eq!(all(uint, b""), Err(Error::Parse));
        assert_eq!(all(uint, b"-1"), Err(Error::Parse));
        assert_eq!(all(quoted, b"\"unterminated"), Err(Error::Parse));
        // The hand-read separator and lists agree with the nom forms.
        let nom_comma = |i| -> IResult<&[u8], ()> {
            let (i, _) = (
                nom::character::complete::space0,
                char(','),
                nom::character::complete::space0,
            )
                .parse(i)?;
            Ok((i, ()))
        };
        for i in [&b", 1"[..], b" \t,\t 2", b",", b"", b"x,", b" ", b"  ,x"] {
            assert_eq!(comma(i).ok(), nom_comma(i).ok(), "{i:?}");
        }
        for i in [
            &b"1,2"[..],
            b"1 , 2  ",
            b"1,2,",
            b"1,",
            b",2",
            b"1;2",
            b"1\t,\t2\t",
            b"4294967296,1",
            b"",
        ] {
            let nom2 = all((uint, next(uint)), i).ok().map(|(a, b)| [a, b]);
            assert_eq!(uints::<2>(i), nom2, "{i:?}");
            assert_eq!(uints::<1>(i), all(uint, i).ok().map(|a| [a]), "{i:?}");
        }
    }
}
