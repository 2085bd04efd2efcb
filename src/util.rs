//! Small helpers.

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
