//! Typed AT commands, one module per chapter of the Quectel manuals.
//!
//! Every command is a value implementing [`Command`]: it writes its own command line into a
//! bounded buffer ([`CmdWriter`]) and parses its own response ([`Response`]) with `nom`. The
//! maximum response times are Quectel's (see `docs/architecture.md` for where they come from).
//!
//! This is the low-level layer under the handles: use it through `modem.send(&cmd)` for a
//! command no handle wraps, or implement [`Command`] for one the crate does not have.

use crate::Error;
use crate::at::expect::Expect;
use crate::at::response::Response;

pub mod dns;
pub mod file;
pub mod general;
pub mod network;
pub mod pdp;
pub mod power;
pub mod sim;
pub mod socket;
pub mod time;

/// A typed AT command.
pub trait Command {
    /// What a successful response parses into.
    type Response;
    /// What the command answers with (information-line prefix, payload, prompt).
    const EXPECT: Expect;
    /// Maximum response time in milliseconds, from the manual.
    const TIMEOUT_MS: u32;
    /// The command line carries a secret (a PIN, a PUK, a password): the driver wipes the
    /// buffer it was written from as soon as it is on the wire.
    const SECRET: bool = false;
    /// What this particular command value expects (defaults to [`Command::EXPECT`]; a read
    /// into a socket slot adds its target).
    fn expect(&self) -> Expect {
        Self::EXPECT
    }
    /// Writes the command line, without the `\r` terminator (the channel adds it).
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error>;
    /// Parses a successful response (its final result code was `OK`, `CONNECT` or `SEND OK`).
    fn parse(&self, resp: &Response<'_>) -> Result<Self::Response, Error>;
}

/// A bounded writer for command lines: running out of room is [`Error::Overflow`], never a panic
/// or a truncated command.
pub struct CmdWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

/// Shows the length only: a command line can hold a PIN (`AT+CPIN`) or a password
/// (`AT+QICSGP`).
impl core::fmt::Debug for CmdWriter<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CmdWriter")
            .field("len", &self.len)
            .field("capacity", &self.buf.len())
            .finish()
    }
}

impl<'a> CmdWriter<'a> {
    /// A writer over `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// How many bytes were written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self.len.checked_add(bytes.len()).ok_or(Error::Overflow)?;
        if end > self.buf.len() {
            return Err(Error::Overflow);
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Appends text as it is.
    pub fn str(&mut self, s: &str) -> Result<(), Error> {
        self.raw(s.as_bytes())
    }

    /// Appends a double-quoted string. Quectel has no escape for `"` inside strings, so a `"`, a
    /// control character or a non-ASCII byte is [`Error::InvalidArgument`].
    pub fn quoted(&mut self, s: &str) -> Result<(), Error> {
        if s.bytes().any(|b| b == b'"' || !(0x20..0x7f).contains(&b)) {
            return Err(Error::InvalidArgument);
        }
        self.raw(b"\"")?;
        self.raw(s.as_bytes())?;
        self.raw(b"\"")
    }

    /// Appends an unsigned decimal number.
    pub fn uint(&mut self, mut v: u32) -> Result<(), Error> {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.raw(&digits[i..])
    }

    /// Removes the `AT` at `start` of what was written since (a command about to be appended
    /// to a concatenated line); what follows it must be an extended command (`+…`).
    pub(crate) fn cut_at_prefix(&mut self, start: usize) -> Result<(), Error> {
        let part = self
            .buf
            .get(start..self.len)
            .ok_or(Error::InvalidArgument)?;
        if part.len() < 3 || !part[..2].eq_ignore_ascii_case(b"AT") || part[2] != b'+' {
            return Err(Error::InvalidArgument);
        }
        self.buf.copy_within(start + 2..self.len, start);
        self.len -= 2;
        Ok(())
    }

    /// Appends a comma.
    pub fn comma(&mut self) -> Result<(), Error> {
        self.raw(b",")
    }
}

/// Turns what the digester delivered for `cmd` into its typed result.
pub(crate) fn complete<C: Command>(
    cmd: &C,
    delivered: Result<&[u8], atat::InternalError<'_>>,
) -> Result<C::Response, Error> {
    match delivered {
        Ok(body) => {
            let resp = Response::new(body, cmd.expect());
            match resp.final_code() {
                Some(f) if f.is_success() => cmd.parse(&resp),
                Some(f) => Err(f.into_error().unwrap_or(Error::Parse)),
                // An empty body is the data prompt.
                None if body.is_empty() && cmd.expect().prompt => cmd.parse(&resp),
                None => Err(Error::Parse),
            }
        }
        Err(atat::InternalError::Custom(body)) => {
            let resp = Response::new(body, cmd.expect());
            Err(resp
                .final_code()
                .and_then(crate::at::Final::into_error)
                .unwrap_or(Error::Error))
        }
        Err(atat::InternalError::Capacity) => Err(Error::Overflow),
        Err(atat::InternalError::Timeout) => Err(Error::Timeout),
        Err(atat::InternalError::Read) => Err(Error::Read),
        Err(atat::InternalError::Write) => Err(Error::Write),
        Err(_) => Err(Error::Error),
    }
}

/// Test helper: runs `wire` (what the modem sends) through a digester, fragmented into chunks
/// of `chunk` bytes, and parses the first response as `cmd`'s.
#[cfg(test)]
pub(crate) fn run_wire<C: Command>(
    cmd: &C,
    wire: &[u8],
    chunk: usize,
) -> Result<C::Response, Error> {
    extern crate std;
    use std::vec::Vec;
    let shared = crate::at::ExpectCell::new();
    shared.begin(cmd.expect());
    let mut feeder = crate::at::feed::Feeder::<'_, 2048>::new(&shared);
    let mut first: Option<Result<Vec<u8>, Vec<u8>>> = None;
    let mut overflow = false;
    for piece in wire.chunks(chunk.max(1)) {
        feeder
            .feed(piece, |ev| {
                if let crate::at::feed::Event::Response(r) = ev
                    && first.is_none()
                {
                    match r {
                        Ok(b) => first = Some(Ok(b.to_vec())),
                        Err(atat::InternalError::Custom(b)) => first = Some(Err(b.to_vec())),
                        Err(_) => overflow = true,
                    }
                }
            })
            .expect("digester stalled");
    }
    if overflow {
        return Err(Error::Overflow);
    }
    match first {
        Some(Ok(b)) => complete(cmd, Ok(&b)),
        Some(Err(b)) => complete(cmd, Err(atat::InternalError::Custom(&b))),
        None => Err(Error::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_bounds() {
        let mut buf = [0u8; 8];
        let mut w = CmdWriter::new(&mut buf);
        w.str("AT+X=").unwrap();
        w.uint(42).unwrap();
        assert_eq!(w.as_bytes(), b"AT+X=42");
        assert_eq!(w.uint(123), Err(Error::Overflow));
        assert_eq!(w.as_bytes(), b"AT+X=42");
        let mut buf = [0u8; 32];
        let mut w = CmdWriter::new(&mut buf);
        assert_eq!(w.quoted("a\"b"), Err(Error::InvalidArgument));
        assert_eq!(w.quoted("a\rb"), Err(Error::InvalidArgument));
        w.quoted("internet").unwrap();
        assert_eq!(w.as_bytes(), b"\"internet\"");
        let mut w = CmdWriter::new(&mut buf);
        w.uint(0).unwrap();
        w.comma().unwrap();
        w.uint(u32::MAX).unwrap();
        assert_eq!(w.as_bytes(), b"0,4294967295");
    }
}

/// Helpers shared by the command modules' byte-table tests.
#[cfg(test)]
pub(crate) mod testing {
    extern crate std;

    use core::fmt::Debug;
    use std::vec::Vec;

    use super::{CmdWriter, Command, run_wire};
    use crate::Error;

    /// One table row: the bytes the modem sends and the expected result.
    pub type Row<'a, T> = (&'a [u8], Result<T, Error>);

    /// Runs every `(wire, expected)` row through the digester in chunks of 1, 3 and 64 bytes.
    pub fn table<C: Command>(cmd: &C, rows: &[Row<C::Response>])
    where
        C::Response: PartialEq + Debug,
    {
        for (wire, want) in rows {
            for chunk in [1, 3, 64] {
                let got = run_wire(cmd, wire, chunk);
                assert_eq!(
                    &got,
                    want,
                    "wire `{}`, chunk {}",
                    wire.escape_ascii(),
                    chunk
                );
            }
        }
    }

    /// What `cmd` writes into a 128-byte buffer (tables check the overflow error with it).
    pub fn wrote<C: Command>(cmd: &C) -> Result<Vec<u8>, Error> {
        let mut buf = [0u8; 128];
        let mut w = CmdWriter::new(&mut buf);
        cmd.write(&mut w)?;
        Ok(w.as_bytes().to_vec())
    }

    /// A bounded string for expected values.
    pub fn s<const N: usize>(t: &str) -> heapless::String<N> {
        heapless::String::try_from(t).unwrap()
    }
}
