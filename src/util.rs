//! Small helpers.

pub(crate) mod lock;

/// The value of ASCII decimal digits; `None` if empty, not all digits, or more than `u32` holds.
pub(crate) fn decimal(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u32, |a, &d| {
        a.checked_mul(10)?.checked_add(char::from(d).to_digit(10)?)
    })
}

/// Sets a bounded string (any capacity, through its view) to the text `s`: not UTF-8 is
/// [`Error::Parse`](crate::Error::Parse), too long [`Error::Overflow`](crate::Error::Overflow),
/// and the string is then empty. One copy of the code for every capacity.
pub(crate) fn set_text(
    out: &mut heapless::string::StringView,
    s: &[u8],
) -> Result<(), crate::Error> {
    out.clear();
    let s = core::str::from_utf8(s).map_err(|_| crate::Error::Parse)?;
    out.push_str(s).map_err(|_| crate::Error::Overflow)
}

/// A bounded string holding the text `s` ([`set_text`]'s errors): only the empty string is
/// built per capacity.
pub(crate) fn text<const N: usize>(s: &[u8]) -> Result<heapless::String<N>, crate::Error> {
    let mut out = heapless::String::new();
    set_text(out.as_mut_view(), s)?;
    Ok(out)
}

/// Copies `s` into a bounded string, cutting at a character boundary if it does not fit (for
/// display-only fields such as a firmware revision).
pub(crate) fn truncated<const M: usize>(s: &str) -> heapless::String<M> {
    let mut out = heapless::String::new();
    truncate_into(out.as_mut_view(), s);
    out
}

/// [`truncated`] into an empty string of any capacity: the longest prefix of `s` that fits and
/// ends at a character boundary (what pushing its characters until one does not fit gives).
fn truncate_into(out: &mut heapless::string::StringView, s: &str) {
    let mut end = s.len().min(out.capacity());
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let _ = out.push_str(s.get(..end).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cut at a character boundary is what pushing the characters one by one until one
    /// does not fit gave.
    #[test]
    fn truncated_and_text_as_before() {
        fn by_chars<const M: usize>(s: &str) -> heapless::String<M> {
            let mut out = heapless::String::new();
            for c in s.chars() {
                if out.push(c).is_err() {
                    break;
                }
            }
            out
        }
        for s in [
            "",
            "BG96",
            "BG96MAR02A07M1G",
            "ééééé",
            "aé",
            "a€b",
            "€€€",
            "abcdef",
        ] {
            assert_eq!(truncated::<4>(s), by_chars::<4>(s), "{s}");
            assert_eq!(truncated::<5>(s), by_chars::<5>(s), "{s}");
            assert_eq!(truncated::<0>(s), by_chars::<0>(s), "{s}");
        }
    }
}
