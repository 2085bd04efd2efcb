//! A minimal ingress loop around the [`Digester`], without atat's channels.
//!
//! It mirrors what `atat::Ingress` does with a digester (append, digest until nothing is
//! consumed, shift) and hands each event to a closure. Tests, benchmarks and fuzz targets use it
//! to drive the digester alone; the driver itself uses `atat::Ingress`.

use atat::InternalError;
use atat::digest::{DigestResult, Digester as _};

use super::Digester;

/// One thing the digester delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'b> {
    /// An unsolicited result code (its line, trimmed).
    Urc(&'b [u8]),
    /// A command's response.
    Response(Result<&'b [u8], InternalError<'b>>),
    /// The data prompt.
    Prompt,
}

/// The digester left a full buffer without consuming anything (a digester bug; never expected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stalled;

/// Whether received bytes can complete something the digester delivers: a line (`\n`) or the
/// data prompt (`>`). Bytes that cannot are only appended to the ingress buffer and handed to
/// the digester with the next bytes that can (or when the buffer is full), so a byte arriving
/// alone costs a copy and a comparison. Longer pieces are handed over at once.
pub(crate) fn completes(bytes: &[u8]) -> bool {
    bytes.len() > 16 || bytes.iter().any(|&b| b == b'\n' || b == b'>')
}

/// A fixed-size ingress buffer and a digester.
pub struct Feeder<'a, const N: usize> {
    buf: [u8; N],
    /// Bytes handed to the digester.
    len: usize,
    /// Bytes after them, received but not yet handed to the digester (see [`completes`]).
    pending: usize,
    digester: Digester<'a>,
}

impl<'a, const N: usize> Feeder<'a, N> {
    /// A feeder whose digester reads the command in flight from `shared`.
    pub fn new(shared: &'a super::ExpectCell) -> Self {
        Self {
            buf: [0; N],
            len: 0,
            pending: 0,
            digester: Digester::new(shared, N),
        }
    }

    /// Feeds `bytes`, calling `on` for every event. Returns an error if the digester left the
    /// buffer full without consuming anything (a digester bug; never expected).
    #[inline]
    pub fn feed(&mut self, mut bytes: &[u8], mut on: impl FnMut(Event<'_>)) -> Result<(), Stalled> {
        // A byte arriving alone that completes nothing: append it, nothing else.
        // (The last free byte is left to the loop below, which hands a full buffer over.)
        if let [b] = bytes
            && *b != b'\n'
            && *b != b'>'
            && self.len + self.pending + 1 < N
        {
            self.buf[self.len + self.pending] = *b;
            self.pending += 1;
            return Ok(());
        }
        while !bytes.is_empty() {
            let at = self.len + self.pending;
            let room = N - at;
            if room == 0 {
                self.commit(&mut on)?;
                if self.len == N {
                    return Err(Stalled);
                }
                continue;
            }
            let n = room.min(bytes.len());
            let (now, rest) = bytes.split_at(n);
            if let [b] = now {
                self.buf[at] = *b;
            } else {
                self.buf[at..at + n].copy_from_slice(now);
            }
            self.pending += n;
            bytes = rest;
            if completes(now) || at + n == N {
                self.commit(&mut on)?;
            }
        }
        Ok(())
    }

    /// Hands the pending bytes to the digester and digests until nothing is consumed.
    fn commit(&mut self, on: &mut impl FnMut(Event<'_>)) -> Result<(), Stalled> {
        self.len += core::mem::take(&mut self.pending);
        while self.len > 0 {
            let (result, used) = self.digester.digest(&self.buf[..self.len]);
            if used > self.len {
                return Err(Stalled);
            }
            match result {
                DigestResult::None => {}
                DigestResult::Urc(u) => on(Event::Urc(u)),
                DigestResult::Response(r) => on(Event::Response(r)),
                DigestResult::Prompt(_) => on(Event::Prompt),
            }
            if used == 0 {
                break;
            }
            self.buf.copy_within(used..self.len, 0);
            self.len -= used;
        }
        Ok(())
    }
}
