//! File commands (`AT+QF…`): certificates and keys live in the module's file system.

use super::{CmdWriter, Command};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::response::Response;

/// The module's upload checksum: XOR of the data taken as big-endian 16-bit words (an odd last
/// byte is the high byte of a word whose low byte is 0).
pub fn checksum(data: &[u8]) -> u16 {
    data.chunks(2).fold(0u16, |x, w| {
        let high = w.first().copied().unwrap_or(0);
        let low = w.get(1).copied().unwrap_or(0);
        x ^ u16::from_be_bytes([high, low])
    })
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 84 || name.contains('*') {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

/// `AT+QFUPL="<name>",<size>,<timeout>`: starts an upload; the modem answers `CONNECT` and then
/// takes exactly `size` raw bytes (see [`UploadData`]).
#[derive(Clone, Copy, Debug)]
pub struct Upload<'a> {
    /// File name (with the `UFS:` prefix on models that need it).
    pub name: &'a str,
    /// Bytes that will follow.
    pub size: u32,
    /// Seconds the modem waits for input before it gives up.
    pub timeout_s: u16,
}

impl Command for Upload<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = 5_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_name(self.name)?;
        if self.size == 0 || self.timeout_s == 0 {
            return Err(Error::InvalidArgument);
        }
        w.str("AT+QFUPL=")?;
        w.quoted(self.name)?;
        w.arg(self.size)?;
        w.arg(u32::from(self.timeout_s))
    }
    fn parse(&self, resp: &Response<'_>) -> Result<(), Error> {
        match resp.final_code() {
            Some(crate::at::Final::Connect) => Ok(()),
            _ => Err(Error::Parse),
        }
    }
}

/// The data phase of an upload: the bytes written after `CONNECT`, answered by
/// `+QFUPL: <size>,<checksum>`. The answer is checked against the data that was sent.
#[derive(Clone, Copy, Debug)]
pub struct UploadData {
    /// Bytes sent.
    pub size: u32,
    /// Their checksum ([`checksum`]).
    pub checksum: u16,
    /// Seconds the modem may wait for input (the answer can take that long).
    pub timeout_s: u16,
}

impl Command for UploadData {
    type Response = ();
    const EXPECT: Expect = Expect::prefixed(b"+QFUPL:");
    const TIMEOUT_MS: u32 = 60_000;
    fn write(&self, _: &mut CmdWriter<'_>) -> Result<(), Error> {
        Ok(())
    }
    fn parse(&self, resp: &Response<'_>) -> Result<(), Error> {
        let text = resp.first()?;
        let comma = text.iter().position(|&b| b == b',').ok_or(Error::Parse)?;
        let (size, hex) = text.split_at(comma);
        let [size] = crate::at::parse::uints(size).ok_or(Error::Parse)?;
        // What `u16::from_str_radix(_, 16)` takes (an optional `+`, hex digits), by hand.
        let hex = crate::error::trim_ascii(hex.get(1..).unwrap_or_default());
        let sum = crate::at::urc::hex_u32(hex)
            .and_then(|v| u16::try_from(v).ok())
            .ok_or(Error::Parse)?;
        if size != self.size {
            // The modem stopped early (its input timeout) and kept a truncated file.
            return Err(Error::Overflow);
        }
        if sum != self.checksum {
            return Err(Error::Parse);
        }
        Ok(())
    }
}

/// `AT+QFDEL="<name>"`.
#[derive(Clone, Copy, Debug)]
pub struct Delete<'a> {
    /// File name.
    pub name: &'a str,
}

impl Command for Delete<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = 5_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_name(self.name)?;
        w.str("AT+QFDEL=")?;
        w.quoted(self.name)
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// A file as `AT+QFLST` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Name as the module prints it.
    pub name: heapless::String<88>,
    /// Size in bytes.
    pub size: u32,
}

/// A `+QFLST: "<name>",<size>` line's name and size (after the prefix; trailing spaces
/// allowed), read by hand: what `all((quoted, next(uint)), line)` accepts, without a nom parser.
pub(crate) fn listed_file(line: &[u8]) -> Option<(&[u8], u32)> {
    let quoted = line.strip_prefix(b"\"")?;
    let end = quoted.iter().position(|&b| b == b'"')?;
    let (name, rest) = quoted.split_at(end);
    let rest = crate::at::parse::after_comma(rest.get(1..)?)?;
    let (rest, size) = crate::at::parse::read_uint(rest)?;
    crate::at::parse::skip_space(rest)
        .is_empty()
        .then_some((name, size))
}

/// `AT+QFLST="<pattern>"` (e.g. `"*"` or `"UFS:*"`): up to 16 files.
#[derive(Clone, Copy, Debug)]
pub struct List<'a> {
    /// Pattern.
    pub pattern: &'a str,
}

impl Command for List<'_> {
    type Response = heapless::Vec<FileEntry, 16>;
    const EXPECT: Expect = Expect::prefixed(b"+QFLST:");
    const TIMEOUT_MS: u32 = 5_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+QFLST=")?;
        w.quoted(self.pattern)
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Self::Response, Error> {
        let mut out = heapless::Vec::new();
        for line in resp.prefixed(b"+QFLST:") {
            let (name, size) = listed_file(line).ok_or(Error::Parse)?;
            out.push(FileEntry {
                name: crate::util::text(name)?,
                size,
            })
            .map_err(|_| Error::Overflow)?;
        }
        Ok(out)
    }
    fn fold(&self, acc: &mut Option<Result<Self::Response, Error>>, line: &Response<'_>) {
        super::fold_list(acc, self.parse(line));
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::run_wire;
    use super::*;

    /// The hand-read `+QFLST` line and upload size agree with the nom forms they replace.
    #[test]
    fn hand_readers_as_nom_reads_them() {
        use crate::at::parse::{all, next, quoted, uint};
        for line in [
            &b"\"UFS:a.pem\",100"[..],
            b"\"a\" , 7  ",
            b"\"a\",7x",
            b"\"a\",",
            b"\"a\"7",
            b"\"a,7",
            b"a,7",
            b" \"a\",7",
            b"\"\",0",
            b"\"a\",4294967296",
            b"",
        ] {
            let nom = all((quoted, next(uint)), line).ok();
            assert_eq!(listed_file(line), nom, "{}", line.escape_ascii());
        }
        for size in [&b"10"[..], b"10 ", b" 10", b"1x", b"", b"4294967296"] {
            let nom = all(uint, size).ok();
            assert_eq!(
                crate::at::parse::uints::<1>(size).map(|[v]| v),
                nom,
                "{}",
                size.escape_ascii()
            );
        }
    }

    #[test]
    fn checksum_vectors() {
        assert_eq!(checksum(b"1234567890"), 0x3938);
        assert_eq!(checksum(b"hello"), 0x6b09);
        assert_eq!(checksum(b"0123456789"), 0x3839);
        assert_eq!(checksum(b"abc"), 0x262);
        assert_eq!(checksum(b"A"), 0x4100);
        assert_eq!(checksum(b""), 0);
    }

    #[test]
    fn upload_answers() {
        let d = UploadData {
            size: 10,
            checksum: 0x3938,
            timeout_s: 5,
        };
        for chunk in [1, 64] {
            assert_eq!(
                run_wire(&d, b"\r\n+QFUPL: 10,3938\r\n\r\nOK\r\n", chunk),
                Ok(())
            );
            assert_eq!(
                run_wire(&d, b"\r\n+QFUPL: 10,3939\r\n\r\nOK\r\n", chunk),
                Err(Error::Parse)
            );
            assert_eq!(
                run_wire(&d, b"\r\n+QFUPL: 9,3938\r\n\r\nOK\r\n", chunk),
                Err(Error::Overflow)
            );
            assert_eq!(
                run_wire(&d, b"\r\n+CME ERROR: 407\r\n", chunk),
                Err(Error::Cme(crate::CmeError(407)))
            );
        }
        // The checksum as `u16::from_str_radix(_, 16)` reads it (the parser's earlier form).
        let d = |checksum| UploadData {
            size: 1,
            checksum,
            timeout_s: 5,
        };
        for (hex, want) in [
            (&b"ab0F"[..], Some(0xab0f)),
            (b" +1a ", Some(0x1a)),
            (b"0", Some(0)),
            (b"FFFF", Some(0xffff)),
            (b"10000", None),
            (b"123456789", None),
            (b"", None),
            (b"+", None),
            (b"-1", None),
            (b"1g", None),
            (b"1 2", None),
        ] {
            let reference = core::str::from_utf8(hex)
                .ok()
                .and_then(|t| u16::from_str_radix(t.trim_ascii(), 16).ok());
            assert_eq!(reference, want, "{hex:?}");
            let mut wire = std::vec::Vec::from(&b"\r\n+QFUPL: 1,"[..]);
            wire.extend_from_slice(hex);
            wire.extend_from_slice(b"\r\n\r\nOK\r\n");
            let got = run_wire(&d(want.unwrap_or(0)), &wire, 64);
            assert_eq!(got, want.map(|_| ()).ok_or(Error::Parse), "{hex:?}");
        }
        let u = Upload {
            name: "UFS:ca.pem",
            size: 1267,
            timeout_s: 100,
        };
        assert_eq!(run_wire(&u, b"\r\nCONNECT\r\n", 1), Ok(()));
        assert_eq!(run_wire(&u, b"\r\nOK\r\n", 1), Err(Error::Parse));
    }

    #[test]
    fn listing() {
        let l = List { pattern: "*" };
        let got = run_wire(
            &l,
            b"\r\n+QFLST: \"rootCA.pem\",1220\r\n+QFLST: \"security/\",2\r\n\r\nOK\r\n",
            3,
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name.as_str(), "rootCA.pem");
        assert_eq!(got[0].size, 1220);
    }
}
