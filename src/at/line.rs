//! Line classification shared by the digester and the response parsers.
//!
//! Both sides must agree on which line is a URC, which is an echo, which is noise and which is
//! an information line of the command in flight; this module is the single place that decides.

use crate::at::expect::{Expect, Info};
use crate::error::{CmeError, trim_ascii};

/// A final result code: it ends a command's response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Final {
    /// `OK`
    Ok,
    /// `CONNECT` (the port enters data mode, e.g. `AT+QFUPL`)
    Connect,
    /// `SEND OK`
    SendOk,
    /// `ERROR`
    Error,
    /// `+CME ERROR: <n>` or its verbose form
    Cme(CmeError),
    /// `+CMS ERROR: <n>`
    Cms(u16),
    /// `SEND FAIL`
    SendFail,
    /// `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE`
    NoCarrier,
}

impl Final {
    /// Whether the command succeeded.
    pub fn is_success(self) -> bool {
        matches!(self, Final::Ok | Final::Connect | Final::SendOk)
    }

    /// The error this final code stands for, if it is one.
    pub fn into_error(self) -> Option<crate::Error> {
        Some(match self {
            Final::Ok | Final::Connect | Final::SendOk => return None,
            Final::Error => crate::Error::Error,
            Final::Cme(e) => crate::Error::Cme(e),
            Final::Cms(c) => crate::Error::Cms(c),
            Final::SendFail => crate::Error::SendFail,
            Final::NoCarrier => crate::Error::NoCarrier,
        })
    }
}

fn parse_u16(s: &[u8]) -> Option<u16> {
    if s.is_empty() || s.len() > 5 {
        return None;
    }
    let mut v: u32 = 0;
    for &b in s {
        // At most five digits: `v` stays below 100 000.
        v = v
            .checked_mul(10)?
            .checked_add(char::from(b).to_digit(10)?)?;
    }
    u16::try_from(v).ok()
}

/// The bare words (lines without a `+XXX:` prefix) the driver knows, final result codes and
/// URCs, as one table: each is its length, then its bytes; its number ([`word`]) is its place.
/// One lookup ([`bare_word`]) recognises any of them, where a `match` on the line in each of
/// [`parse_final`], the bare-URC test and the URC parser compiled to about 3.5 KB of inlined
/// comparisons in row 3's firmware.
const WORDS: &[u8] = b"\x02OK\x05ERROR\x07CONNECT\x07SEND OK\x09SEND FAIL\x0aNO CARRIER\x04BUSY\
\x09NO ANSWER\x0bNO DIALTONE\x03RDY\x07APP RDY\x0cPOWERED DOWN\x11NORMAL POWER DOWN\
\x0ePSM POWER DOWN\x04RING\x0aCall Ready\x09SMS Ready\x15UNDER-VOLTAGE WARNING\
\x18UNDER-VOLTAGE POWER DOWN\x14OVER-VOLTAGE WARNING\x17OVER-VOLTAGE POWER DOWN";

/// The numbers of [`WORDS`]' entries, in its order.
pub(crate) mod word {
    pub(crate) const OK: u8 = 0;
    pub(crate) const ERROR: u8 = 1;
    pub(crate) const CONNECT: u8 = 2;
    pub(crate) const SEND_OK: u8 = 3;
    pub(crate) const SEND_FAIL: u8 = 4;
    /// `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE`: this and the next three.
    pub(crate) const NO_CARRIER: u8 = 5;
    pub(crate) const NO_DIALTONE: u8 = 8;
    pub(crate) const RDY: u8 = 9;
    pub(crate) const APP_RDY: u8 = 10;
    pub(crate) const POWERED_DOWN: u8 = 11;
    pub(crate) const NORMAL_POWER_DOWN: u8 = 12;
    pub(crate) const PSM_POWER_DOWN: u8 = 13;
    pub(crate) const RING: u8 = 14;
    pub(crate) const CALL_READY: u8 = 15;
    pub(crate) const SMS_READY: u8 = 16;
    pub(crate) const UNDER_VOLTAGE_WARNING: u8 = 17;
    pub(crate) const UNDER_VOLTAGE_POWER_DOWN: u8 = 18;
    pub(crate) const OVER_VOLTAGE_WARNING: u8 = 19;
    pub(crate) const OVER_VOLTAGE_POWER_DOWN: u8 = 20;
}

/// Bit `n` set when some entry of [`WORDS`] is `n` bytes long (all are shorter than 32): a
/// line of another length is turned away with one test.
const WORD_LENGTHS: u32 = {
    let mut mask = 0u32;
    let mut rest = WORDS;
    while let Some((&n, tail)) = rest.split_first() {
        // (A length of 32 or more fails the build here.)
        mask |= 1u32
            .checked_shl(n as u32)
            .expect("a bare word of 32 bytes or more");
        rest = match tail.split_at_checked(n as usize) {
            Some((_, next)) => next,
            None => panic!("WORDS ends inside an entry"),
        };
    }
    mask
};

/// The number ([`word`]) of the bare word `line` is exactly (case-sensitive, no white space),
/// or `None`. A line of a length no entry has (most lines) is turned away inline.
#[inline]
pub(crate) fn bare_word(line: &[u8]) -> Option<u8> {
    let n = line.len();
    if n >= 32 || WORD_LENGTHS >> n & 1 == 0 {
        return None;
    }
    find_word(line)
}

/// [`bare_word`]'s search of the table.
#[inline(never)]
fn find_word(line: &[u8]) -> Option<u8> {
    find_in(WORDS, line)
}

/// The place of `s` in `table` (entries of a length byte and that many bytes, searched in
/// order), or `None`.
#[inline(never)]
pub(crate) fn find_in(table: &[u8], s: &[u8]) -> Option<u8> {
    let mut rest = table;
    let mut k = 0u8;
    while let Some((&len, tail)) = rest.split_first() {
        let (w, next) = tail.split_at_checked(usize::from(len))?;
        if w == s {
            return Some(k);
        }
        rest = next;
        k = k.wrapping_add(1);
    }
    None
}

/// Recognises a final result code. `line` must be trimmed; the match is exact and case-sensitive,
/// so noise such as `ERrOR` is not taken for `ERROR`.
pub fn parse_final(line: &[u8]) -> Option<Final> {
    final_of(line, bare_word(line))
}

/// [`parse_final`] of `line`, whose [`bare_word`] is `w`.
fn final_of(line: &[u8], w: Option<u8>) -> Option<Final> {
    if let Some(w) = w {
        return Some(match w {
            word::OK => Final::Ok,
            word::ERROR => Final::Error,
            word::CONNECT => Final::Connect,
            word::SEND_OK => Final::SendOk,
            word::SEND_FAIL => Final::SendFail,
            word::NO_CARRIER..=word::NO_DIALTONE => Final::NoCarrier,
            _ => return None,
        });
    }
    Some(if let Some(rest) = line.strip_prefix(b"+CME ERROR:") {
        let rest = trim_ascii(rest);
        if rest.is_empty() {
            return None;
        }
        match parse_u16(rest) {
            Some(code) => Final::Cme(CmeError(code)),
            None if rest.first().is_some_and(u8::is_ascii_digit) => return None,
            None => Final::Cme(CmeError::from_verbose(rest)),
        }
    } else if let Some(rest) = line.strip_prefix(b"+CMS ERROR:") {
        Final::Cms(parse_u16(trim_ascii(rest))?)
    } else if let Some(rest) = line.strip_prefix(b"CONNECT ") {
        parse_u16(rest)?;
        Final::Connect
    } else {
        return None;
    })
}

/// The position of the first `\n` in `buf`, a machine word at a time (the reference the
/// fused scan, [`find_lf_printable`], was written from; in the tests only).
#[cfg(test)]
pub fn find_lf(buf: &[u8]) -> Option<usize> {
    const W: usize = core::mem::size_of::<usize>();
    const ONES: usize = usize::MAX / 0xff;
    const HIGHS: usize = ONES << 7;
    const LFS: usize = ONES * (b'\n' as usize);
    let mut i: usize = 0;
    // Whole words by value (`as_chunks`: no copy through a call to `memcpy`), the first byte
    // in the low bits.
    let (words, tail) = buf.as_chunks::<W>();
    for w in words {
        let x = usize::from_le_bytes(*w) ^ LFS;
        // A zero byte in `x` (a `\n` in the word) sets its high bit here, exactly for the first
        // zero byte (a false positive can only follow a true one): the lowest bit set is the
        // first `\n`.
        let hit = x.wrapping_sub(ONES) & !x & HIGHS;
        if hit != 0 {
            // `i + k < buf.len()`: no wrap.
            return Some(i.wrapping_add((hit.trailing_zeros() / 8) as usize));
        }
        // `i` stays at most `buf.len()`: it cannot wrap (wrapping, as `+` is in release: this is
        // the per-word loop of the receive path).
        i = i.wrapping_add(W);
    }
    tail.iter()
        .position(|&c| c == b'\n')
        .map(|k| i.wrapping_add(k))
}

/// Bytes of a word below `0x20` or equal to `0x7f` (not printable; a tab is among them): their
/// high bits are set, and a false positive (from a borrow) can only sit above a true one.
#[inline]
fn unprintable_bits(x: usize) -> usize {
    const ONES: usize = usize::MAX / 0xff;
    const HIGHS: usize = ONES << 7;
    let below = x.wrapping_sub(ONES * 0x20) & !x;
    let del = x ^ (ONES * 0x7f);
    let is_del = del.wrapping_sub(ONES) & !del;
    (below | is_del) & HIGHS
}

/// The first `\n` in `buf[from..to]` and whether every byte of `buf[from..nl - 1]` (a line up
/// to its `\r`, when the scan starts at the line) is printable, both in one pass a machine
/// word at a time. `false` means "not known": the exact check then runs (a tab, a `\n` in the
/// first byte of a word or a line near the end of `buf` give it). Whole words are read up to
/// the end of `buf`, past `to` (bytes there are left over and ignored: a `\n` among them is
/// not taken), so that a line's last bytes need no byte loop.
#[inline]
pub fn find_lf_printable(buf: &[u8], from: usize, to: usize) -> Option<(usize, bool)> {
    const W: usize = core::mem::size_of::<usize>();
    const ONES: usize = usize::MAX / 0xff;
    const HIGHS: usize = ONES << 7;
    const LFS: usize = ONES * (b'\n' as usize);
    // The high bit of a word's last byte.
    const TOP: usize = 0x80 << (8 * (W - 1));
    let rest = buf.get(from..)?;
    let (words, tail) = rest.as_chunks::<W>();
    // Unprintable bits of the words before the previous one, and of the previous one.
    let mut older: usize = 0;
    let mut prev: usize = 0;
    let mut i = from;
    for w in words {
        if i >= to {
            return None;
        }
        let x = usize::from_le_bytes(*w);
        let y = x ^ LFS;
        // As in `find_lf`: the lowest bit set is the first `\n`.
        let hit = y.wrapping_sub(ONES) & !y & HIGHS;
        let bad = unprintable_bits(x);
        if hit != 0 {
            // The `\n`'s high bit: bit `8 k + 7` for the `\n` in byte `k`.
            let tz = hit.trailing_zeros();
            let k = (tz / 8) as usize;
            // `i < to <= buf.len()` and `k < W`: no wrap.
            let nl = i.wrapping_add(k);
            if nl >= to {
                return None;
            }
            // The bytes before the one before the `\n`: the bits below `8 (k - 1)` of this
            // word, or, for a `\n` first in its word, the previous word but its last byte.
            let clean = match tz.checked_sub(15) {
                Some(bits) => {
                    (older | prev | (bad & 1usize.wrapping_shl(bits).wrapping_sub(1))) == 0
                }
                None => (older | (prev & !TOP)) == 0,
            };
            return Some((nl, clean));
        }
        older |= prev;
        prev = bad;
        // `i < to <= buf.len()`: no wrap.
        i = i.wrapping_add(W);
    }
    // Fewer than a word left in `buf`: byte by byte.
    let n = to.saturating_sub(i);
    let nl = tail.get(..n)?.iter().position(|&c| c == b'\n')?;
    Some((i.wrapping_add(nl), false))
}

/// How many commas `s` holds, a machine word at a time (a `+CEREG` needs six for its PSM
/// timers, and nearly none has them).
#[cfg(test)]
pub(crate) fn commas(s: &[u8]) -> usize {
    const W: usize = core::mem::size_of::<usize>();
    const ONES: usize = usize::MAX / 0xff;
    const LOW7: usize = ONES * 0x7f;
    const COMMAS: usize = ONES * (b',' as usize);
    let (words, tail) = s.as_chunks::<W>();
    let mut n: usize = 0;
    for w in words {
        let y = usize::from_le_bytes(*w) ^ COMMAS;
        // The high bit of each zero byte (a comma), exactly: no carry crosses a byte.
        let zero = !((y & LOW7).wrapping_add(LOW7) | y | LOW7);
        // One per comma, summed into the top byte (at most `W`: no carry out of it).
        n = n.wrapping_add((zero >> 7).wrapping_mul(ONES) >> (8 * (W - 1)));
    }
    n.wrapping_add(tail.iter().filter(|&&b| b == b',').count())
}

/// What a (trimmed) line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LineClass {
    /// Empty.
    Blank,
    /// The echo of a command (`AT...`).
    Echo,
    /// A final result code.
    Final(Final),
    /// An unsolicited result code.
    Urc,
    /// An information line of the command in flight.
    Info,
    /// Noise: not a response, not a URC.
    Garbage,
}

/// The `+XXX:` prefix of a line, with the colon, if it has one. A space before the colon is
/// tolerated (`+QSIMSTAT : 1,0` in one manual) and not part of the returned prefix.
/// (The one-pass [`split_prefix`] is what the driver uses; this is its reference in the tests.)
#[cfg(test)]
pub fn prefix_of(line: &[u8]) -> Option<&[u8]> {
    // One pass: `+`, at least one alphanumeric, spaces, `:`.
    let (&b'+', rest) = line.split_first()? else {
        return None;
    };
    let name = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if name == 0 {
        return None;
    }
    let spaces = rest.get(name..)?.iter().take_while(|&&b| b == b' ').count();
    // `name + spaces < line.len()`: the sum cannot wrap (once per line on the receive path).
    let colon = name.wrapping_add(spaces).wrapping_add(1);
    match line.get(colon) {
        Some(b':') => line.get(..=colon),
        _ => None,
    }
}

/// A `+XXX:` line split once: what `prefix_of`, `prefix_name` and [`after_prefix`] give,
/// found in one pass (the digester hands it on with the URC, so that the URC parser does not
/// look for the prefix again).
///
/// (The prefix as written, `+XXX:` or `+XXX :`, is not kept in it: only the comparison with
/// an expected prefix needs it, where the split is made. The split the classification returns
/// is two slices, not three.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split<'l> {
    /// The name, `+XXX` (without the colon and any space before it).
    pub name: &'l [u8],
    /// The text after the colon, without surrounding white space.
    pub text: &'l [u8],
}

/// Whether a line split into `split`, whose prefix as written is `head` (up to and including
/// the colon), has the prefix `prefix` (`+CSQ:`), tolerating a space before the colon (as
/// [`has_prefix`]).
#[inline]
fn prefix_is(split: &Split<'_>, head: &[u8], prefix: &[u8]) -> bool {
    match prefix.split_last() {
        Some((_, name)) if !name.is_empty() && split.name == name => true,
        _ => head == prefix,
    }
}

/// [`prefix_is`] with the word comparison ([`same`]): the classification's, once a line on
/// the receive path (in the response parsers it would only add code).
#[inline(always)]
fn prefix_is_word(split: &Split<'_>, head: &[u8], prefix: &[u8]) -> bool {
    match prefix.split_last() {
        // Names of the same length that differ: the prefixes as written differ too (`head` is
        // the name, spaces and the colon; equal lengths leave no room for a space), so they
        // are not compared.
        Some((_, name)) if !name.is_empty() => {
            same(split.name, name) || (split.name.len() != name.len() && head == prefix)
        }
        _ => head == prefix,
    }
}

/// `a == b`; for 4 to 8 bytes (every `+XXX` name and most prefixes) as two overlapping 4-byte
/// words each, without the call to `memcmp`.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (4..=8).contains(&n) {
        // The first four bytes and the last four (`n - 4 + 4 == n`: in bounds of both).
        let at = n.wrapping_sub(4);
        let w = |s: &[u8], i: usize| match s.get(i..i.wrapping_add(4)) {
            Some(&[x0, x1, x2, x3]) => u32::from_ne_bytes([x0, x1, x2, x3]),
            _ => 0,
        };
        return (w(a, 0) ^ w(b, 0)) | (w(a, at) ^ w(b, at)) == 0;
    }
    a == b
}

/// High bits of the bytes of `x` that are not ASCII letters or digits (exact: every byte is
/// computed apart, no borrow or carry crosses a byte).
#[inline]
fn not_alnum_bits(x: usize) -> usize {
    const ONES: usize = usize::MAX / 0xff;
    const HIGHS: usize = ONES << 7;
    // `v + ONES * (0x80 - lo)` sets a byte's high bit where it is at least `lo`, and
    // `v + ONES * (0x7f - hi)` where it is above `hi` (each byte's sum stays below 0x100).
    const AT_LEAST_0: usize = ONES * (0x80 - 0x30);
    const ABOVE_9: usize = ONES * (0x7f - 0x39);
    const AT_LEAST_A: usize = ONES * (0x80 - 0x61);
    const ABOVE_Z: usize = ONES * (0x7f - 0x7a);
    // The low seven bits of each byte (a byte with its high bit set is no ASCII character).
    let low = x & !HIGHS;
    let digit = low.wrapping_add(AT_LEAST_0) & !low.wrapping_add(ABOVE_9);
    // A letter in either case is a lower-case letter with bit 5 set.
    let lower = low | (ONES * 0x20);
    let letter = lower.wrapping_add(AT_LEAST_A) & !lower.wrapping_add(ABOVE_Z);
    !((digit | letter) & !x) & HIGHS
}

/// How many ASCII letters and digits `s` starts with: a machine word at a time while a whole
/// word is there (a `+XXX` name ends within the first or second on a 64-bit machine), then
/// byte by byte. The first word here, the rest out of line ([`alnum_len_from`]): without a
/// loop, the word's constants need no saved registers.
#[inline]
fn alnum_len(s: &[u8]) -> usize {
    const W: usize = core::mem::size_of::<usize>();
    match s.first_chunk::<W>() {
        Some(w) => match not_alnum_bits(usize::from_le_bytes(*w)) {
            0 => alnum_len_from(s, W),
            bad => (bad.trailing_zeros() / 8) as usize,
        },
        None => alnum_len_from(s, 0),
    }
}

/// [`alnum_len`] of `s`, whose first `n` bytes are letters or digits.
#[inline(never)]
fn alnum_len_from(s: &[u8], mut n: usize) -> usize {
    const W: usize = core::mem::size_of::<usize>();
    let mut rest = s.get(n..).unwrap_or_default();
    while let Some((w, tail)) = rest.split_first_chunk::<W>() {
        let bad = not_alnum_bits(usize::from_le_bytes(*w));
        if bad != 0 {
            // `n + k <= s.len()`: no wrap.
            return n.wrapping_add((bad.trailing_zeros() / 8) as usize);
        }
        n = n.wrapping_add(W);
        rest = tail;
    }
    n.wrapping_add(
        rest.iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count(),
    )
}

/// Splits a `+XXX:` line (see [`Split`]); `None` for a line without such a prefix.
#[inline(always)]
pub fn split_prefix(line: &[u8]) -> Option<Split<'_>> {
    split_prefix_as::<false>(line).map(|(s, _)| s)
}

/// [`split_prefix`]; with `USUAL_TEXT` (the classification's, on the receive path), the text
/// in its usual form (one space, no white space at either end) is taken without
/// `trim_ascii` (elsewhere the shortcut would only add code). With the prefix as written, up to
/// and including the colon.
#[inline(always)]
fn split_prefix_as<const USUAL_TEXT: bool>(line: &[u8]) -> Option<(Split<'_>, &[u8])> {
    let (&b'+', rest) = line.split_first()? else {
        return None;
    };
    let name = alnum_len(rest);
    if name == 0 {
        return None;
    }
    // `name < line.len()`: no wrap. The colon usually follows the name at once; spaces
    // before it are tolerated.
    let after_name = name.wrapping_add(1);
    let mut colon = after_name;
    if line.get(colon) != Some(&b':') {
        let spaces = line
            .get(colon..)?
            .iter()
            .take_while(|&&b| b == b' ')
            .count();
        colon = colon.wrapping_add(spaces);
        if line.get(colon) != Some(&b':') {
            return None;
        }
    }
    let (head, text) = line.split_at_checked(colon.wrapping_add(1))?;
    let name = head.get(..after_name)?;
    Some((
        Split {
            name,
            // The usual text: one space, then no white space at its start (the classification
            // takes trimmed lines: no white space at their end). (A byte up to `0x20` after the
            // space takes the trimming, which answers the same for one that is not white space.)
            text: match text {
                [b' ', rest @ ..] if USUAL_TEXT && rest.first().is_some_and(|&b| b > b' ') => rest,
                _ => trim_ascii(text),
            },
        },
        head,
    ))
}

/// The name in a prefix found by `prefix_of` (`+CSQ` for `+CSQ :` or `+CSQ:`).
#[cfg(test)]
pub fn prefix_name(found: &[u8]) -> &[u8] {
    trim_ascii(found.split_last().map_or(found, |(_, name)| name))
}

/// Compares a line's prefix with an expected one (`+CSQ:`), tolerating a space before the colon.
pub fn has_prefix(line: &[u8], prefix: &[u8]) -> bool {
    split_prefix_as::<false>(line).is_some_and(|(s, head)| prefix_is(&s, head, prefix))
}

/// The text after a line's prefix, without leading spaces.
pub fn after_prefix(line: &[u8]) -> &[u8] {
    match line.iter().position(|&b| b == b':') {
        Some(i) => trim_ascii(line.get(i.saturating_add(1)..).unwrap_or_default()),
        None => line,
    }
}

/// [`is_printable`], out of line (one copy for the classification and the digester's
/// information line taken by its prefix, when the word pass did not find it printable: a line
/// split between two pieces, say).
#[inline(never)]
pub(crate) fn printable(line: &[u8]) -> bool {
    is_printable(line)
}

/// High bits of the bytes of `x` that are not printable (below `0x20` but a tab, or `0x7f`),
/// exactly: every byte is computed apart (from its low seven bits, so that no carry crosses a
/// byte), and a byte of `0x80` or above is printable.
#[inline]
fn unprintable_exact(x: usize) -> usize {
    const ONES: usize = usize::MAX / 0xff;
    const HIGHS: usize = ONES << 7;
    let low = x & !HIGHS;
    // High bit set where `low >= 0x20`, where `low == 0x7f`, where `low != b'\t'`.
    let printing = low.wrapping_add(ONES * 0x60);
    let del = low.wrapping_add(ONES);
    let not_tab = (low ^ (ONES * 0x09)).wrapping_add(ONES * 0x7f);
    ((!printing & not_tab) | del) & !x & HIGHS
}

/// Whether every byte of `line` is printable (a tab is; below `0x20` and `0x7f` are not), a
/// machine word at a time (each word exactly: no byte loop after a word with a tab).
#[inline]
fn is_printable(line: &[u8]) -> bool {
    const W: usize = core::mem::size_of::<usize>();
    let ok = |w: &[u8; W]| unprintable_exact(usize::from_ne_bytes(*w)) == 0;
    let (words, tail) = line.as_chunks::<W>();
    if !words.iter().all(ok) {
        return false;
    }
    // The last bytes: as one word overlapping the ones checked when the line has a whole word,
    // else one by one.
    match line.last_chunk::<W>() {
        Some(last) => tail.is_empty() || ok(last),
        None => tail.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
    }
}

/// A `+CxREG:` line is a read response when its second field is a bare integer (`<n>,<stat>`);
/// the URC has `<stat>` first and a quoted location second, or a single field.
fn looks_like_registration_read(rest: &[u8]) -> bool {
    // The usual read answer, one digit each (`2,1,...`), without the field split.
    if let [n, b',', stat, tail @ ..] = rest
        && n.is_ascii_digit()
        && stat.is_ascii_digit()
        && matches!(tail.first(), None | Some(b','))
    {
        return true;
    }
    registration_read_fields(rest)
}

/// [`looks_like_registration_read`] by its fields (the reference for its shortcut).
fn registration_read_fields(rest: &[u8]) -> bool {
    let mut fields = rest.split(|&b| b == b',');
    let first = fields.next().map(trim_ascii).unwrap_or(b"");
    let second = fields.next().map(trim_ascii);
    match second {
        Some(s) => {
            !first.is_empty()
                && first.iter().all(u8::is_ascii_digit)
                && !s.is_empty()
                && s.iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

/// Whether `line` (trimmed, printable, the line of a command expecting lines prefixed by
/// `prefix`, [`Info::Prefixed`]) is one of its information lines, told without the
/// classification: it starts with `prefix`, and `prefix` is of the plain form, `+`, letters
/// and digits, `:`, and not a registration report's (`+CREG:`, `+CGREG:`, `+CEREG:`, whose read
/// answers are told from their URCs by their fields; any prefix ending with `REG:` is left to
/// the classification). [`classify_split`] answers [`LineClass::Info`] for such a line (no final
/// result code starts so, and the split finds the prefix's name as the line's); `false` means
/// "ask it". The prefix's form is checked on the line's bytes (equal to it).
#[inline(always)]
pub(crate) fn info_by_prefix(line: &[u8], prefix: &[u8]) -> bool {
    let Some(head) = line.get(..prefix.len()) else {
        return false;
    };
    if !same(head, prefix) {
        return false;
    }
    let ([b'+', .., r, e, g, b':'], [_, rest @ ..]) = (head, line) else {
        return false;
    };
    // The name, `line[1..n - 1]`: letters and digits up to the colon (`n >= 5`: no wrap). (By
    // `alnum_len`, out of line: its first word checked here took 0.1 instruction per byte off
    // and cost 196 B of flash in row 3.)
    [*r, *e, *g] != *b"REG" && alnum_len(rest) == head.len().wrapping_sub(2)
}

/// Classifies a trimmed line.
///
/// `expect` is the command in flight (if any); `in_response` tells whether information lines of
/// that command have already been seen (an echo can only come before them).
pub fn classify(line: &[u8], expect: Option<&Expect>, in_response: bool) -> LineClass {
    classify_split(line, expect, in_response, false).0
}

/// [`classify`], with the [`Split`] of a `+XXX:` line (URC or information line). `printable`:
/// the line is known to be printable (from [`find_lf_printable`]), so it is not checked again.
pub fn classify_split<'l>(
    line: &'l [u8],
    expect: Option<&Expect>,
    in_response: bool,
    printable: bool,
) -> (LineClass, Option<Split<'l>>) {
    let Some(&first) = line.first() else {
        return (LineClass::Blank, None);
    };
    if !printable && !self::printable(line) {
        return (LineClass::Garbage, None);
    }
    if first == b'+' {
        // `+CME ERROR:`/`+CMS ERROR:` are the only finals with a `+`.
        if line.get(1..3) == Some(b"CM")
            && let Some(f) = parse_final(line)
        {
            return (LineClass::Final(f), None);
        }
        let Some((split, head)) = split_prefix_as::<true>(line) else {
            return (LineClass::Garbage, None);
        };
        if let Some(expect) = expect
            && expect.info == Info::Prefixed
            && prefix_is_word(&split, head, expect.prefix)
        {
            if matches!(expect.prefix, b"+CREG:" | b"+CGREG:" | b"+CEREG:")
                && !looks_like_registration_read(split.text)
            {
                return (LineClass::Urc, Some(split));
            }
            return (LineClass::Info, Some(split));
        }
        return (LineClass::Urc, Some(split));
    }
    (classify_bare(line, first, expect, in_response), None)
}

/// [`classify`] for a printable line that does not start with `+`.
fn classify_bare(line: &[u8], first: u8, expect: Option<&Expect>, in_response: bool) -> LineClass {
    // One lookup for the final result codes and the bare URCs.
    let w = bare_word(line);
    if let Some(f) = final_of(line, w) {
        // `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE` end only a command that can
        // produce them (dial, data mode); otherwise a call or data connection ended.
        if f == Final::NoCarrier && !expect.is_some_and(|e| e.call) {
            return LineClass::Urc;
        }
        return LineClass::Final(f);
    }
    if !in_response && line.get(..2).is_some_and(|s| s.eq_ignore_ascii_case(b"AT")) {
        return LineClass::Echo;
    }
    if w.is_some_and(|w| w >= word::RDY) {
        return LineClass::Urc;
    }
    match expect {
        Some(e) if e.info == Info::Bare => LineClass::Info,
        // Outside a command, a bare line that starts like a word is a URC the driver does not
        // know: reported as such (`Urc::Unknown`), never merged into the next answer.
        None if first.is_ascii_alphabetic() => LineClass::Urc,
        None => LineClass::Garbage,
        // Inside a command that answers no bare lines: noise.
        Some(_) => LineClass::Garbage,
    }
}

/// If `line` is the header of a length-prefixed payload for `expect` (`+QIRD: 5`), the length.
pub fn payload_len(line: &[u8], expect: &Expect) -> Option<usize> {
    if expect.payload != crate::at::expect::Payload::LengthPrefixed
        || !has_prefix(line, expect.prefix)
    {
        return None;
    }
    let rest = after_prefix(line);
    if rest.is_empty() || rest.len() > 5 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    parse_u16(rest).map(usize::from)
}

/// The header of a direct-push `recv` URC, `+QIURC: "recv",<id>,<n>[,"<ip>",<port>]` or
/// `+QSSLURC: "recv",<id>,<n>`: `(id, n)`, with `n` raw bytes following it. In buffer-access
/// mode the `recv` URC carries no length (the driver never turns on `tcp/recvind`, whose URC
/// would), so a length always means data follows.
pub fn push_header(line: &[u8]) -> Option<(u8, usize)> {
    let rest = line
        .strip_prefix(b"+QIURC: \"recv\",")
        .or_else(|| line.strip_prefix(b"+QSSLURC: \"recv\","))?;
    let mut fields = rest.split(|&b| b == b',');
    let id = fields.next().map(trim_ascii)?;
    let n = fields.next().map(trim_ascii)?;
    if id.is_empty() || id.len() > 2 || n.is_empty() || n.len() > 5 {
        return None;
    }
    let id = u8::try_from(parse_u16(id)?).ok()?;
    Some((id, usize::from(parse_u16(n)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_headers() {
        assert_eq!(push_header(b"+QIURC: \"recv\",0,4"), Some((0, 4)));
        assert_eq!(push_header(b"+QSSLURC: \"recv\",4,1500"), Some((4, 1500)));
        assert_eq!(
            push_header(b"+QIURC: \"recv\",2,16,\"10.0.0.1\",5683"),
            Some((2, 16))
        );
        // Buffer-access mode: no length, nothing follows.
        assert_eq!(push_header(b"+QIURC: \"recv\",0"), None);
        assert_eq!(push_header(b"+QSSLURC: \"recv\",1"), None);
        assert_eq!(push_header(b"+QIURC: \"closed\",0"), None);
        assert_eq!(push_header(b"+QIURC: \"recv\",0,"), None);
        assert_eq!(push_header(b"+QIURC: \"recv\",0,x4"), None);
        assert_eq!(push_header(b"+QIURC: \"recv\",300,4"), None);
        assert_eq!(push_header(b"+QIURC: \"recv\",0,999999"), None);
    }

    /// The `match`es the table of bare words replaced.
    fn old_final(line: &[u8]) -> Option<Final> {
        Some(match line {
            b"OK" => Final::Ok,
            b"ERROR" => Final::Error,
            b"CONNECT" => Final::Connect,
            b"SEND OK" => Final::SendOk,
            b"SEND FAIL" => Final::SendFail,
            b"NO CARRIER" | b"BUSY" | b"NO ANSWER" | b"NO DIALTONE" => Final::NoCarrier,
            _ => return None,
        })
    }

    fn old_is_bare_urc(line: &[u8]) -> bool {
        matches!(
            line,
            b"RDY"
                | b"APP RDY"
                | b"POWERED DOWN"
                | b"NORMAL POWER DOWN"
                | b"PSM POWER DOWN"
                | b"RING"
                | b"Call Ready"
                | b"SMS Ready"
                | b"UNDER-VOLTAGE WARNING"
                | b"UNDER-VOLTAGE POWER DOWN"
                | b"OVER-VOLTAGE WARNING"
                | b"OVER-VOLTAGE POWER DOWN"
        )
    }

    /// Every entry of the table of bare words, each cut short, lengthened and with a byte
    /// changed, and random lines, answer as the `match`es did.
    #[test]
    fn bare_words_agree_with_the_matches_they_replaced() {
        extern crate std;
        use std::vec::Vec;
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut rest = WORDS;
        let mut n = 0;
        while let Some((&len, tail)) = rest.split_first() {
            let (w, next) = tail.split_at(usize::from(len));
            assert_eq!(bare_word(w), Some(n), "{w:?}");
            lines.push(w.to_vec());
            lines.push(w[..w.len() - 1].to_vec());
            lines.push([w, b" "].concat());
            lines.push([b" ", w].concat());
            for i in 0..w.len() {
                let mut v = w.to_vec();
                v[i] ^= 0x20;
                lines.push(v);
            }
            rest = next;
            n += 1;
        }
        assert_eq!(n, word::OVER_VOLTAGE_POWER_DOWN + 1);
        lines.extend(crate::at::random_lines(
            0x0b0a_7d00,
            26,
            3000,
            b"OKRDYNG E-",
        ));
        for line in &lines {
            let line = &line[..];
            let w = bare_word(line);
            assert_eq!(final_of(line, w), old_final(line), "{line:?}");
            assert_eq!(
                w.is_some_and(|w| w >= word::RDY),
                old_is_bare_urc(line),
                "{line:?}"
            );
        }
    }

    #[test]
    fn finals() {
        assert_eq!(parse_final(b"OK"), Some(Final::Ok));
        assert_eq!(parse_final(b"ERROR"), Some(Final::Error));
        assert_eq!(parse_final(b"ERrOR"), None);
        assert_eq!(parse_final(b"OK "), None);
        assert_eq!(
            parse_final(b"+CME ERROR: 10"),
            Some(Final::Cme(CmeError(10)))
        );
        assert_eq!(
            parse_final(b"+CME ERROR: SIM not inserted"),
            Some(Final::Cme(CmeError(10)))
        );
        assert_eq!(
            parse_final(b"+CME ERROR: operation not allowed"),
            Some(Final::Cme(CmeError(3)))
        );
        assert_eq!(parse_final(b"+CME ERROR: 12x"), None);
        assert_eq!(parse_final(b"+CME ERROR:"), None);
        assert_eq!(parse_final(b"+CMS ERROR: 302"), Some(Final::Cms(302)));
        assert_eq!(parse_final(b"SEND FAIL"), Some(Final::SendFail));
        assert_eq!(parse_final(b"CONNECT 10"), Some(Final::Connect));
        assert_eq!(parse_final(b"CONNECT x"), None);
    }

    #[test]
    fn registration_disambiguation() {
        let e = Expect::prefixed(b"+CREG:");
        assert_eq!(classify(b"+CREG: 2,1", Some(&e), false), LineClass::Info);
        assert_eq!(
            classify(b"+CREG: 2,1,\"D509\",\"80D413D\",7", Some(&e), false),
            LineClass::Info
        );
        assert_eq!(classify(b"+CREG: 1", Some(&e), false), LineClass::Urc);
        assert_eq!(
            classify(b"+CREG: 1,\"D509\",\"80D413D\",7", Some(&e), false),
            LineClass::Urc
        );
        assert_eq!(classify(b"+CREG: 2,1", None, false), LineClass::Urc);
    }

    #[test]
    fn urc_vs_info() {
        let cpin = Expect::prefixed(b"+CPIN:");
        assert_eq!(
            classify(b"+CPIN: READY", Some(&cpin), false),
            LineClass::Info
        );
        assert_eq!(classify(b"+CPIN: READY", None, false), LineClass::Urc);
        let csq = Expect::prefixed(b"+CSQ:");
        assert_eq!(
            classify(b"+QIURC: \"recv\",0", Some(&csq), true),
            LineClass::Urc
        );
        assert_eq!(classify(b"RDY", Some(&csq), true), LineClass::Urc);
        assert_eq!(classify(b"ERrOR", Some(&csq), true), LineClass::Garbage);
        assert_eq!(
            classify(b"ERrOR", Some(&Expect::BARE), true),
            LineClass::Info
        );
        assert_eq!(classify(b"AT+CSQ", Some(&csq), false), LineClass::Echo);
        assert_eq!(classify(b"\x01\x02", None, false), LineClass::Garbage);
        assert_eq!(classify(b"+QSIMSTAT : 1,0", None, false), LineClass::Urc);
        assert_eq!(classify(b"+FOO: 1", None, false), LineClass::Urc);
        assert_eq!(classify(b"+ +", None, false), LineClass::Garbage);
    }

    /// The exact word check flags exactly the unprintable bytes of a word: every byte value at
    /// every position, among random neighbours (a borrow or carry crossing bytes would show).
    #[test]
    fn exact_unprintable_bits_flag_exactly_the_unprintable_bytes() {
        const W: usize = core::mem::size_of::<usize>();
        let bad = |b: u8| !(b == b'\t' || (b >= 0x20 && b != 0x7f));
        let mut x: u32 = 0x0bad_cafe;
        for pos in 0..W {
            for v in 0..=255u8 {
                for _ in 0..8 {
                    let mut w = [0u8; W];
                    for b in &mut w {
                        *b = crate::at::xorshift32(&mut x) as u8;
                    }
                    w[pos] = v;
                    let want = w
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| bad(**b))
                        .fold(0usize, |m, (i, _)| m | (0x80 << (8 * i)));
                    let got = unprintable_exact(usize::from_le_bytes(w));
                    assert_eq!(got, want, "{w:?}");
                }
            }
        }
    }

    #[test]
    fn word_at_a_time_scans_agree_with_byte_loops() {
        let mut x: u32 = 0x1234_5679;
        for len in 0..64 {
            for _ in 0..200 {
                extern crate std;
                let line: std::vec::Vec<u8> = (0..len)
                    .map(|_| {
                        crate::at::xorshift32(&mut x);
                        // Mostly printable, now and then a control byte, DEL, LF or high byte.
                        match x % 23 {
                            0 => (x >> 8) as u8 % 0x20,
                            1 => 0x7f,
                            2 => b'\n',
                            3 => 0x80 | (x >> 8) as u8,
                            _ => 0x20 + ((x >> 8) as u8 % 0x5f),
                        }
                    })
                    .collect();
                let printable = line.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
                assert_eq!(is_printable(&line), printable, "{line:?}");
                let lf = line.iter().position(|&b| b == b'\n');
                assert_eq!(find_lf(&line), lf, "{line:?}");
                // The fused scan, from anywhere, up to anywhere (bytes past `to` ignored).
                let from = (x as usize) % (len + 1);
                let to = from + ((x >> 8) as usize) % (len + 1 - from);
                let nl = line[from..to].iter().position(|&b| b == b'\n');
                let got = find_lf_printable(&line, from, to);
                assert_eq!(
                    got.map(|g| g.0),
                    nl.map(|k| from + k),
                    "{line:?} {from} {to}"
                );
                if let (Some((nl, clean)), Some(_)) = (got, nl) {
                    let before = &line[from..nl.saturating_sub(1).max(from)];
                    let good = before.iter().all(|&b| b >= 0x20 && b != 0x7f);
                    // Never claims a line printable that is not; claims it whenever its bytes
                    // are all printable, but a tab, and a whole word can be read at the `\n`.
                    assert!(!clean || good, "{line:?} {from} {to}");
                    if good && nl + 8 <= line.len() {
                        assert!(clean, "{line:?} {from} {to}");
                    }
                }
            }
        }
    }

    /// The digester's shortcut for an information line by its prefix answers what the
    /// classification answers, for prefixes of every form and lines that start with them or
    /// nearly.
    #[test]
    fn info_by_prefix_agrees_with_the_classification() {
        extern crate std;
        use std::vec::Vec;
        let prefixes: [&[u8]; 20] = [
            b"+CSQ:",
            b"+QIACT:",
            b"+QISTATE:",
            b"+QSSLSTATE:",
            b"+CPIN:",
            b"+QIRD:",
            b"+CEREG:",
            b"+CGREG:",
            b"+CREG:",
            b"+C5G:",
            b"+QSIMSTAT :",
            b"+CME ERROR:",
            b"+CMS:",
            b"+A:",
            b"+:",
            b"+",
            b"",
            b"CSQ:",
            b"+CSQ",
            b"+C-Q:",
        ];
        let tails: [&[u8]; 12] = [
            b"",
            b" 20,99",
            b" 1,\"1A2B\",\"01A2D102\",8",
            b" 2,1",
            b" READY",
            b"1",
            b":",
            b" ERROR: 3",
            b"X: 1",
            b" : 1",
            b"  5",
            b",0",
        ];
        let mut x: u32 = 0x2545_f491;
        let mut taken = 0;
        for p in prefixes {
            for t in tails {
                for cut in 0..=p.len() {
                    // The prefix, a bit of it replaced now and then, then a tail.
                    let mut line: Vec<u8> = p.to_vec();
                    crate::at::xorshift32(&mut x);
                    if x.is_multiple_of(3) && cut < line.len() {
                        line[cut] = b"+: A0z "[(x >> 8) as usize % 7];
                    }
                    line.extend_from_slice(t);
                    let line = trim_ascii(&line);
                    if line.is_empty() || !is_printable(line) {
                        continue;
                    }
                    if !info_by_prefix(line, p) {
                        continue;
                    }
                    taken += 1;
                    for e in [Expect::prefixed(p), Expect::payload(p)] {
                        for in_response in [false, true] {
                            assert_eq!(
                                classify_split(line, Some(&e), in_response, true).0,
                                LineClass::Info,
                                "{:?} {:?}",
                                std::string::String::from_utf8_lossy(line),
                                std::string::String::from_utf8_lossy(p),
                            );
                        }
                    }
                }
            }
        }
        // Taken for the plain prefixes (not the registration reports' nor the odd ones).
        assert!(info_by_prefix(b"+CSQ: 20,99", b"+CSQ:"));
        assert!(info_by_prefix(b"+QISTATE: 0,\"TCP\"", b"+QISTATE:"));
        assert!(info_by_prefix(b"+QSSLSTATE: 1", b"+QSSLSTATE:"));
        assert!(info_by_prefix(b"+QIRD:", b"+QIRD:"));
        assert!(!info_by_prefix(b"+CEREG: 2,1", b"+CEREG:"));
        assert!(!info_by_prefix(b"+QSIMSTAT : 1", b"+QSIMSTAT :"));
        assert!(!info_by_prefix(b"+CSQ 1", b"+CSQ"));
        assert!(!info_by_prefix(b"+CSQX: 1", b"+CSQ:"));
        assert!(!info_by_prefix(b"+C-Q: 1", b"+C-Q:"));
        assert!(!info_by_prefix(b"+CSQ: 1", b""));
        assert!(taken > 100, "{taken}");
    }

    /// The digester takes a printable line that starts with a digit as an information line of
    /// a bare command (`Expect::BARE`) without the classification: the classification agrees,
    /// before and after the command's first line, whatever follows the digit.
    #[test]
    fn a_bare_line_starting_with_a_digit_is_information() {
        let bare = Expect::BARE;
        let mut n = 0;
        for line in crate::at::random_lines(0xd161_7a1e, 24, 300, b"0159 AT+OK:ER,\"\tRDY") {
            let line = trim_ascii(&line);
            if !line.first().is_some_and(u8::is_ascii_digit) || !is_printable(line) {
                continue;
            }
            n += 1;
            for in_response in [false, true] {
                assert_eq!(
                    classify_split(line, Some(&bare), in_response, false).0,
                    LineClass::Info,
                    "{line:?}"
                );
            }
        }
        assert!(n > 1000, "{n}");
    }

    /// The one-digit shortcut of the registration read test agrees with the field split, on
    /// every short text of digits, commas, spaces, quotes and letters.
    #[test]
    fn registration_read_shortcut_agrees_with_the_fields() {
        extern crate std;
        let alphabet = b"12,  \"A";
        let mut taken = 0;
        let mut text = std::vec::Vec::new();
        for len in 0..=6u32 {
            for mut k in 0..(alphabet.len() as u32).pow(len) {
                text.clear();
                for _ in 0..len {
                    text.push(alphabet[(k % alphabet.len() as u32) as usize]);
                    k /= alphabet.len() as u32;
                }
                let fields = registration_read_fields(&text);
                assert_eq!(looks_like_registration_read(&text), fields, "{text:?}");
                if fields && text.get(1) == Some(&b',') && text.first() != Some(&b' ') {
                    taken += 1;
                }
            }
        }
        assert!(taken > 100, "{taken}");
        assert!(looks_like_registration_read(b"2,1,\"1A2B\",\"01A2D102\",8"));
        assert!(looks_like_registration_read(b"0,1"));
        assert!(!looks_like_registration_read(b"1,\"1A2B\",\"01A2D102\",8"));
        assert!(!looks_like_registration_read(b"1"));
    }

    /// The classification's prefix comparison (by words) agrees with the response parsers'
    /// (`prefix_is`), and with the prefix as written.
    #[test]
    fn word_prefix_comparison_agrees_with_the_plain_one() {
        let lines: [&[u8]; 8] = [
            b"+CSQ: 1",
            b"+CSQ : 1",
            b"+CSQ  :1",
            b"+QIURC: \"recv\",0",
            b"+CPIN: READY",
            b"+QSIMSTAT : 1,0",
            b"+C:",
            b"+CSQX: 2",
        ];
        // (Also names of the line's name's length that differ from it, with and without a
        // space before the colon: the comparison skips the prefixes as written for them.)
        let prefixes: [&[u8]; 14] = [
            b"+CSX:",
            b"+CSX :",
            b"+QIURX :",
            b"+CSQ:",
            b"+CSQ :",
            b"+CSQ  :",
            b"+QIURC:",
            b"+QIRD:",
            b"+CPIN:",
            b"+QSIMSTAT :",
            b"+C:",
            b":",
            b"",
            b"+CSQ;",
        ];
        let mut equal_heads = 0;
        for line in lines {
            let (split, head) = split_prefix_as::<true>(line).unwrap();
            for p in prefixes {
                let word = prefix_is_word(&split, head, p);
                assert_eq!(word, prefix_is(&split, head, p), "{line:?} {p:?}");
                // A prefix as written always matches.
                if head == p {
                    equal_heads += 1;
                    assert!(word, "{line:?} {p:?}");
                }
            }
        }
        assert_eq!(equal_heads, 7);
    }

    #[test]
    fn word_comparison_agrees_with_slice_equality() {
        let words: [&[u8]; 12] = [
            b"",
            b"+",
            b"+C",
            b"+CSQ",
            b"+CSQ:",
            b"+CSR",
            b"+QIRD",
            b"+QIRD:",
            b"+CEREG",
            b"+CGREG",
            b"+QISTATE",
            b"+QISTATE:",
        ];
        for a in words {
            for b in words {
                assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn word_comma_count_agrees_with_the_byte_loop() {
        for line in crate::at::random_lines(0x5eed_c0de, 40, 100, b",\xac\x2d\x00a\"\xff") {
            let want = line.iter().filter(|&&b| b == b',').count();
            assert_eq!(commas(&line), want, "{line:?}");
        }
    }

    #[test]
    fn word_alnum_scan_agrees_with_the_byte_loop() {
        // Every byte value at every position of a word, the rest alphanumeric; in the first
        // word, and past it (its continuation, `alnum_len_from`, a word and bytes).
        for word in [&b"QSSLOPENabc9Z"[..], b"QSSLOPENabc9ZQSSLURC1x"] {
            for b in 0..=255u8 {
                for at in 0..word.len() {
                    let mut s = word.to_vec();
                    s[at] = b;
                    let want = s.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
                    assert_eq!(alnum_len(&s), want, "{b:#x} at {at}");
                    assert_eq!(alnum_len(&s[..at]), at.min(want), "{b:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn split_prefix_agrees_with_the_prefix_helpers() {
        for line in crate::at::random_lines(0x0bad_cafe, 24, 400, b"+C1: ,\"a \t") {
            let line = trim_ascii(&line);
            let expected = prefix_of(line).map(|p| (prefix_name(p), p, after_prefix(line)));
            let split = split_prefix_as::<false>(line).map(|(s, head)| (s.name, head, s.text));
            assert_eq!(split, expected, "{line:?}");
        }
        // The classification's split (the usual text taken without the trimming) gives the
        // same, control bytes after the space included.
        for tail in crate::at::random_lines(0x5eed_1234, 8, 400, b" ,\"a\t\x01\x0b\x1f\x7f") {
            let line = [&b"+C1:"[..], &tail].concat();
            let line = trim_ascii(&line);
            assert_eq!(
                split_prefix_as::<true>(line),
                split_prefix_as::<false>(line),
                "{line:?}"
            );
        }
        let split = |l| split_prefix(l).map(|s| (s.name, s.text));
        assert_eq!(
            split(b"+QSIMSTAT : 1,0"),
            Some((&b"+QSIMSTAT"[..], &b"1,0"[..]))
        );
        assert_eq!(split(b"+CSQ:"), Some((&b"+CSQ"[..], &b""[..])));
    }

    #[test]
    fn payload_header() {
        let e = Expect::payload(b"+QIRD:");
        assert_eq!(payload_len(b"+QIRD: 5", &e), Some(5));
        assert_eq!(payload_len(b"+QIRD: 0", &e), Some(0));
        assert_eq!(payload_len(b"+QIRD: 3615,3529,86", &e), None);
        assert_eq!(payload_len(b"+QIRD: 99999999", &e), None);
        assert_eq!(payload_len(b"+QIRD: 5", &Expect::prefixed(b"+QIRD:")), None);
    }
}
