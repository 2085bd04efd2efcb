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
/// [`Error::Parse`](crate::Error::Parse), too long [`Error::Overflow`](crate::Error::Overflow)
/// (what [`crate::at::parse::to_string`] returns, without a copy of it per capacity).
pub(crate) fn set_text(
    out: &mut heapless::string::StringView,
    s: &[u8],
) -> Result<(), crate::Error> {
    let s = core::str::from_utf8(s).map_err(|_| crate::Error::Parse)?;
    out.clear();
    out.push_str(s).map_err(|_| crate::Error::Overflow)
}

/// [`crate::at::parse::to_string`] (the same results) through [`set_text`]: only the empty
/// string is built per capacity.
pub(crate) fn text<const N: usize>(s: &[u8]) -> Result<heapless::String<N>, crate::Error> {
    let mut out = heapless::String::new();
    set_text(out.as_mut_view(), s)?;
    Ok(out)
}

/// Copies `s` into a bounded string, cutting at a character boundary if it does not fit (for
/// display-only fields such as a firmware revision).
pub(crate) fn truncated<const M: usize>(s: &str) -> heapless::String<M> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}
