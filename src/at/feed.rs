//! Drives the [`Digester`] without the runner: tests, benchmarks and fuzz targets use it.

use super::expect::UrcSink;

/// A [`UrcSink`] that hands every URC line to a closure.
pub(crate) struct UrcFn<F: FnMut(&[u8])>(pub(crate) F);

impl<F: FnMut(&[u8])> UrcSink for UrcFn<F> {
    fn urc(&mut self, line: &[u8], split: Option<super::line::Split<'_>>) -> bool {
        (self.0)(line);
        super::urc::is_unknown_split(line, split)
    }
}
