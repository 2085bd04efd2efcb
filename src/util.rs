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
