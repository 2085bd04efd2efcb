//! General commands: liveness, echo, error format, identification, functionality, power-down.
//!
//! Maximum response times are Quectel's: 300 ms for everything local, 15 s for `AT+CFUN`.

use heapless::String;
use nom::{combinator::opt, combinator::rest, sequence::preceded};

use super::{CmdWriter, Command};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::parse::{all, comma, uint};
use crate::at::response::Response;
use crate::error::trim_ascii;

/// Maximum response time of local commands.
const LOCAL_MS: u32 = 300;

fn u8_of(v: u32) -> Result<u8, Error> {
    u8::try_from(v).map_err(|_| Error::Parse)
}

/// `AT`: checks that the modem answers. Response: `OK`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct At;

impl Command for At {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT")
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `ATE0`: switches the command echo off. The echo of this very line still comes back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EchoOff;

impl Command for EchoOff {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("ATE0")
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `ATE0` / `ATE1`: switches the command echo off (`false`) or on (`true`, the factory default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Echo(pub bool);

impl Command for Echo {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str(if self.0 { "ATE1" } else { "ATE0" })
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+CMEE=<n>`: error report format. 0 plain `ERROR`, 1 numeric `+CME ERROR: <n>`, 2 verbose
/// text. Other values are [`Error::InvalidArgument`]. The driver uses 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetCmee(pub u8);

impl Command for SetCmee {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        if self.0 > 2 {
            return Err(Error::InvalidArgument);
        }
        w.str_uint("AT+CMEE=", u32::from(self.0))
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// What `ATI` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Identification {
    /// First line, `Quectel`.
    pub manufacturer: String<16>,
    /// Second line, the module (`BG96`, `BG770A-GL`, `EC25`, `EC600N`, ...).
    pub model: String<24>,
    /// Third line without `Revision: ` (`BG96MAR02A07M1G`).
    pub revision: String<32>,
}

/// Strips a case-insensitive `Revision:` label and the spaces after it.
fn strip_revision(line: &[u8]) -> Option<&[u8]> {
    const LABEL: &[u8] = b"Revision:";
    match line.split_at_checked(LABEL.len()) {
        Some((label, rest)) if label.eq_ignore_ascii_case(LABEL) => Some(trim_ascii(rest)),
        _ => None,
    }
}

/// Whether a line looks like a firmware identifier (`BG95M3LAR02A03_01.204.01.204`).
fn is_revision_text(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `ATI`: product identification, three bare lines (`Quectel`, model, `Revision: ...`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Identify;

impl Command for Identify {
    type Response = Identification;
    const EXPECT: Expect = Expect::BARE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("ATI")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Identification, Error> {
        // The two lines before the `Revision:` line are manufacturer and model; anything earlier
        // is noise.
        let (mut before2, mut before1): (Option<&[u8]>, Option<&[u8]>) = (None, None);
        for line in resp.lines() {
            if let Some(rev) = strip_revision(line) {
                let (Some(manufacturer), Some(model)) = (before2, before1) else {
                    return Err(Error::Parse);
                };
                if !is_revision_text(rev) || manufacturer.is_empty() || model.is_empty() {
                    return Err(Error::Parse);
                }
                return Ok(Identification {
                    manufacturer: crate::util::text(manufacturer)?,
                    model: crate::util::text(model)?,
                    revision: crate::util::text(rev)?,
                });
            }
            before2 = before1;
            before1 = Some(line);
        }
        Err(Error::Parse)
    }
    /// The lines arrive one by one: the two lines before the `Revision:` line are kept in the
    /// partial result (manufacturer, model; revision still empty).
    fn fold(&self, acc: &mut Option<Result<Identification, Error>>, line: &Response<'_>) {
        // Folded in place (the identification is not moved out and back for every line).
        if !matches!(acc, Some(Ok(_))) {
            *acc = Some(Ok(Identification::default()));
        }
        let Some(Ok(id)) = acc else {
            return;
        };
        if !id.revision.is_empty() {
            return;
        }
        for text in line.lines() {
            let Identification {
                manufacturer,
                model,
                revision,
            } = id;
            if let Some(rev) = strip_revision(text) {
                let read = if !is_revision_text(rev) || manufacturer.is_empty() || model.is_empty()
                {
                    Err(Error::Parse)
                } else {
                    crate::util::set_text(revision.as_mut_view(), rev)
                };
                if let Err(e) = read {
                    *acc = Some(Err(e));
                }
                return;
            }
            // Shift: manufacturer <- model <- this line (a line too long for either field is
            // noise, but it still pushes the earlier lines out: too long, or not UTF-8, is an
            // empty field). Through the strings' views: one copy of the code for both.
            let _ = crate::util::set_text(manufacturer.as_mut_view(), model.as_bytes());
            let _ = crate::util::set_text(model.as_mut_view(), text);
        }
    }
    fn finish(
        &self,
        acc: Option<Result<Identification, Error>>,
        _done: &Response<'_>,
    ) -> Result<Identification, Error> {
        match acc {
            Some(Ok(id)) if !id.revision.is_empty() => Ok(id),
            Some(Err(e)) => Err(e),
            _ => Err(Error::Parse),
        }
    }
}

/// Parses a bare firmware line: the first line that is a firmware identifier, with an optional
/// `Revision: ` label removed.
fn firmware_line<const N: usize>(resp: &Response<'_>) -> Result<String<N>, Error> {
    for line in resp.lines() {
        let text = strip_revision(line).unwrap_or(line);
        if is_revision_text(text) {
            return crate::util::text(text);
        }
    }
    Err(Error::Parse)
}

/// `AT+CGMR`: firmware revision, a bare line (`BG95M3LAR02A03`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FirmwareRevision;

impl Command for FirmwareRevision {
    type Response = String<40>;
    const EXPECT: Expect = Expect::BARE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CGMR")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<String<40>, Error> {
        firmware_line(resp)
    }
}

/// `AT+QGMR`: Quectel's detailed firmware revision, a bare line
/// (`BG95M3LAR02A03_01.204.01.204`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QuectelFirmwareRevision;

impl Command for QuectelFirmwareRevision {
    type Response = String<40>;
    const EXPECT: Expect = Expect::BARE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+QGMR")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<String<40>, Error> {
        firmware_line(resp)
    }
}

/// `AT+CGSN`: the IMEI, a bare line of digits (15; 14 to 17 accepted for IMEI without check
/// digit and IMEISV). The first all-digit line is taken, so noise before it is skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Imei;

impl Command for Imei {
    type Response = String<17>;
    const EXPECT: Expect = Expect::BARE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CGSN")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<String<17>, Error> {
        resp.lines()
            .find(|l| (14..=17).contains(&l.len()) && l.iter().all(u8::is_ascii_digit))
            .ok_or(Error::Parse)
            .and_then(crate::util::text)
    }
}

/// `AT+CFUN=<fun>[,<rst>]`: sets the functionality level (0 minimum, 1 full, 4 RF off).
/// `reset` reboots the module first and is only valid with `fun` = 1 (otherwise
/// [`Error::InvalidArgument`]); after a reset the boot URCs (`RDY`, ...) follow the `OK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetFunctionality {
    /// `<fun>`: 0 minimum, 1 full, 4 RF off.
    pub fun: u8,
    /// `<rst>` = 1: reset the module before switching.
    pub reset: bool,
}

impl Command for SetFunctionality {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = 15_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        if self.reset && self.fun != 1 {
            return Err(Error::InvalidArgument);
        }
        w.str_uint("AT+CFUN=", u32::from(self.fun))?;
        if self.reset {
            w.str(",1")?;
        }
        Ok(())
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+CFUN?`: the functionality level (`+CFUN: <fun>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetFunctionality;

impl Command for GetFunctionality {
    type Response = u8;
    const EXPECT: Expect = Expect::prefixed(b"+CFUN:");
    const TIMEOUT_MS: u32 = 15_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CFUN?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<u8, Error> {
        u8_of(all(uint, resp.first()?)?)
    }
}

/// The last TCP/IP error (`+QIGETERROR: <err>,<description>`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TcpipError {
    /// 0 on success, else 550–574 (see the TCP/IP manual's error table).
    pub code: u16,
    /// The modem's description (`invalid parameters`), leading spaces removed; empty if the
    /// modem sent none.
    pub text: String<48>,
}

/// `AT+QIGETERROR`: the error code of the last TCP/IP or SSL command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetLastTcpipError;

impl Command for GetLastTcpipError {
    type Response = TcpipError;
    const EXPECT: Expect = Expect::prefixed(b"+QIGETERROR:");
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+QIGETERROR")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<TcpipError, Error> {
        let (code, text) = all((uint, opt(preceded(comma, rest))), resp.first()?)?;
        Ok(TcpipError {
            code: u16::try_from(code).map_err(|_| Error::Parse)?,
            text: crate::util::text(trim_ascii(text.unwrap_or(b"")))?,
        })
    }
}

/// `AT+QPOWD=1`: normal power-down. The `OK` comes at once; `POWERED DOWN` follows as a URC
/// after network de-registration (up to 60 s, 65 s on EC2x). Do not cut power before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PowerDown;

impl Command for PowerDown {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+QPOWD=1")
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// One command of a [`Concat`] line: any [`Command`] that answers only `OK`.
pub trait LinePart {
    /// Writes the command as [`Command::write`] does (with its `AT` prefix).
    fn write_part(&self, w: &mut CmdWriter<'_>) -> Result<(), Error>;
}

impl<C: Command<Response = ()>> LinePart for C {
    fn write_part(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        self.write(w)
    }
}

/// One [`LinePart`] sent on its own, as its command would be (a local setting: 300 ms), so
/// that a flow sending several settings one by one compiles one command type, not one per
/// setting.
#[derive(Clone, Copy)]
pub(crate) struct Setting<'c>(pub(crate) &'c dyn LinePart);

impl Command for Setting<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        self.0.write_part(w)
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// Several set commands on one command line, `AT+A=1;+B=2;+C=3` (concatenation as V.250 §5.4.1
/// defines it; Quectel's manuals use it, e.g. `AT+IPR=921600;&W`): one round trip instead of
/// one per command. Every command after the first must be an extended one (`AT+…`), and none
/// may answer with information lines, enter a data mode or answer later.
///
/// The module runs them in order and answers one final result code: `OK` when all of them
/// succeeded; otherwise it stops at the first that failed and answers that one's error, and
/// which one failed is not known: send them one by one then (the ones that ran already are
/// settings, so running them again does no harm).
#[derive(Clone, Copy)]
pub struct Concat<'c> {
    /// The commands, in order.
    pub parts: &'c [&'c dyn LinePart],
}

impl core::fmt::Debug for Concat<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Concat")
            .field("parts", &self.parts.len())
            .finish()
    }
}

impl Command for Concat<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    /// Local settings answer within 300 ms each; a line holds up to a dozen of them.
    const TIMEOUT_MS: u32 = 5_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        let Some((first, rest)) = self.parts.split_first() else {
            return Err(Error::InvalidArgument);
        };
        first.write_part(w)?;
        for part in rest {
            w.raw(b";")?;
            let start = w.len();
            part.write_part(w)?;
            // `AT+X…` becomes `+X…`.
            w.cut_at_prefix(start)?;
        }
        Ok(())
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::CmeError;

    use super::super::testing::{Row, s, table, wrote};

    #[test]
    fn writes() {
        assert_eq!(wrote(&At).unwrap(), b"AT");
        assert_eq!(wrote(&EchoOff).unwrap(), b"ATE0");
        assert_eq!(wrote(&Echo(false)).unwrap(), b"ATE0");
        assert_eq!(wrote(&Echo(true)).unwrap(), b"ATE1");
        assert_eq!(wrote(&SetCmee(0)).unwrap(), b"AT+CMEE=0");
        assert_eq!(wrote(&SetCmee(2)).unwrap(), b"AT+CMEE=2");
        assert_eq!(wrote(&SetCmee(3)), Err(Error::InvalidArgument));
        assert_eq!(wrote(&Identify).unwrap(), b"ATI");
        assert_eq!(wrote(&FirmwareRevision).unwrap(), b"AT+CGMR");
        assert_eq!(wrote(&QuectelFirmwareRevision).unwrap(), b"AT+QGMR");
        assert_eq!(wrote(&Imei).unwrap(), b"AT+CGSN");
        let cfun = |fun, reset| SetFunctionality { fun, reset };
        assert_eq!(wrote(&cfun(1, false)).unwrap(), b"AT+CFUN=1");
        assert_eq!(wrote(&cfun(0, false)).unwrap(), b"AT+CFUN=0");
        assert_eq!(wrote(&cfun(4, false)).unwrap(), b"AT+CFUN=4");
        assert_eq!(wrote(&cfun(1, true)).unwrap(), b"AT+CFUN=1,1");
        assert_eq!(wrote(&cfun(0, true)), Err(Error::InvalidArgument));
        assert_eq!(wrote(&GetFunctionality).unwrap(), b"AT+CFUN?");
        assert_eq!(wrote(&GetLastTcpipError).unwrap(), b"AT+QIGETERROR");
        assert_eq!(wrote(&PowerDown).unwrap(), b"AT+QPOWD=1");
        // A buffer too small is an overflow, not a truncated line.
        let mut buf = [0u8; 5];
        let mut w = CmdWriter::new(&mut buf);
        assert_eq!(PowerDown.write(&mut w), Err(Error::Overflow));
    }

    #[test]
    fn timeouts() {
        assert_eq!(At::TIMEOUT_MS, 300);
        assert_eq!(SetFunctionality::TIMEOUT_MS, 15_000);
        assert_eq!(GetFunctionality::TIMEOUT_MS, 15_000);
        assert_eq!(PowerDown::TIMEOUT_MS, 300);
        assert_eq!(Imei::EXPECT, Expect::BARE);
        assert_eq!(Identify::EXPECT, Expect::BARE);
        assert_eq!(At::EXPECT, Expect::NONE);
        assert_eq!(GetFunctionality::EXPECT, Expect::prefixed(b"+CFUN:"));
    }

    #[test]
    fn ok_only() {
        let rows: &[Row<()>] = &[
            (b"\r\nOK\r\n", Ok(())),
            (b"AT\r\r\nOK\r\n", Ok(())),
            (b"ATE0\r\r\nOK\r\n", Ok(())),
            (b"\r\nERROR\r\n", Err(Error::Error)),
            (b"\r\n+CME ERROR: 3\r\n", Err(Error::Cme(CmeError(3)))),
            (
                b"\r\n+CME ERROR: operation not allowed\r\n",
                Err(Error::Cme(CmeError(3))),
            ),
            (b"\r\nERrOR\r\n\r\nOK\r\n", Ok(())),
            (b"\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n", Ok(())),
        ];
        table(&At, rows);
        table(&EchoOff, rows);
        table(&Echo(true), rows);
        table(&SetCmee(1), rows);
        table(
            &SetFunctionality {
                fun: 1,
                reset: true,
            },
            rows,
        );
        table(&PowerDown, rows);
    }

    #[test]
    fn identify() {
        let bg96 = Ok(Identification {
            manufacturer: s("Quectel"),
            model: s("BG96"),
            revision: s("BG96MAR02A07M1G"),
        });
        let rows: &[Row<Identification>] = &[
            (b"\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n", bg96.clone()),
            (b"ATI\r\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n", bg96.clone()),
            (b"\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\nOK\r\n", bg96.clone()),
            (
                b"\r\nQuectel\r\nBG96\r\n\r\n+QIURC: \"recv\",0\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n",
                bg96.clone(),
            ),
            (b"\r\nxx\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n", bg96),
            (
                b"\r\nQuectel\r\nBG770A-GL\r\nRevision: BG770AGLAAR01A05\r\n\r\nOK\r\n",
                Ok(Identification {
                    manufacturer: s("Quectel"),
                    model: s("BG770A-GL"),
                    revision: s("BG770AGLAAR01A05"),
                }),
            ),
            (
                b"\r\nQuectel\r\nEC600N\r\nRevision:EC600NCNLAR03A06M08\r\n\r\nOK\r\n",
                Ok(Identification {
                    manufacturer: s("Quectel"),
                    model: s("EC600N"),
                    revision: s("EC600NCNLAR03A06M08"),
                }),
            ),
            // 32 characters fit, 33 do not.
            (
                b"\r\nQuectel\r\nBG96\r\nRevision: ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\r\n\r\nOK\r\n",
                Ok(Identification {
                    manufacturer: s("Quectel"),
                    model: s("BG96"),
                    revision: s("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
                }),
            ),
            (
                b"\r\nQuectel\r\nBG96\r\nRevision: ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\r\n\r\nOK\r\n",
                Err(Error::Overflow),
            ),
            (b"\r\nQuectel\r\nBG96\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nQuectel\r\nBG96\r\nRevision: \r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&Identify, rows);
    }

    #[test]
    fn firmware() {
        let rows: &[Row<String<40>>] = &[
            (b"\r\nBG95M3LAR02A03\r\n\r\nOK\r\n", Ok(s("BG95M3LAR02A03"))),
            (
                b"AT+CGMR\r\r\nBG95M3LAR02A03\r\n\r\nOK\r\n",
                Ok(s("BG95M3LAR02A03")),
            ),
            (
                b"\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n",
                Ok(s("BG96MAR02A07M1G")),
            ),
            (b"\r\nBG95M3LAR02A03\r\nOK\r\n", Ok(s("BG95M3LAR02A03"))),
            (
                b"\r\n\x01\x02\r\nBG95M3LAR02A03\r\n\r\nOK\r\n",
                Ok(s("BG95M3LAR02A03")),
            ),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CME ERROR: 4\r\n", Err(Error::Cme(CmeError(4)))),
        ];
        table(&FirmwareRevision, rows);
        let rows: &[Row<String<40>>] = &[
            (
                b"\r\nBG95M3LAR02A03_01.204.01.204\r\n\r\nOK\r\n",
                Ok(s("BG95M3LAR02A03_01.204.01.204")),
            ),
            (
                b"\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-X\r\n\r\nOK\r\n",
                Ok(s("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-X")),
            ),
            (
                b"\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-XY\r\n\r\nOK\r\n",
                Err(Error::Overflow),
            ),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&QuectelFirmwareRevision, rows);
    }

    #[test]
    fn imei() {
        let rows: &[Row<String<17>>] = &[
            (
                b"\r\n861234567890123\r\n\r\nOK\r\n",
                Ok(s("861234567890123")),
            ),
            (
                b"AT+CGSN\r\r\n861234567890123\r\n\r\nOK\r\n",
                Ok(s("861234567890123")),
            ),
            (b"\r\n861234567890123\r\nOK\r\n", Ok(s("861234567890123"))),
            // Noise before the IMEI is not taken for it.
            (
                b"\r\nERrOR\r\n861234567890123\r\n\r\nOK\r\n",
                Ok(s("861234567890123")),
            ),
            (
                b"\r\n12345\r\n861234567890123\r\n\r\nOK\r\n",
                Ok(s("861234567890123")),
            ),
            (
                b"\r\n861234567890123\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                Ok(s("861234567890123")),
            ),
            // Length limits: 14 and 17 digits are accepted, 13 and 18 are not.
            (b"\r\n86123456789012\r\n\r\nOK\r\n", Ok(s("86123456789012"))),
            (
                b"\r\n86123456789012345\r\n\r\nOK\r\n",
                Ok(s("86123456789012345")),
            ),
            (b"\r\n8612345678901\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n861234567890123456\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n86123456789012X\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&Imei, rows);
    }

    #[test]
    fn concatenated_lines() {
        use crate::at::urc::RegDomain;
        use crate::command::network::SetRegistrationUrc;
        let cmee = SetCmee(2);
        let creg = SetRegistrationUrc {
            domain: RegDomain::Cs,
            mode: 2,
        };
        assert_eq!(
            wrote(&Concat {
                parts: &[&cmee, &creg, &cmee]
            })
            .unwrap(),
            b"AT+CMEE=2;+CREG=2;+CMEE=2"
        );
        assert_eq!(wrote(&Concat { parts: &[&cmee] }).unwrap(), b"AT+CMEE=2");
        assert_eq!(wrote(&Concat { parts: &[] }), Err(Error::InvalidArgument));
        // A basic command (`ATE0`) cannot follow.
        assert_eq!(
            wrote(&Concat {
                parts: &[&cmee, &Echo(false)]
            }),
            Err(Error::InvalidArgument)
        );
        // One answer for the line.
        let c = Concat {
            parts: &[&cmee, &creg],
        };
        let rows: &[Row<()>] = &[
            (b"\r\nOK\r\n", Ok(())),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&c, rows);
    }

    #[test]
    fn cfun() {
        let rows: &[Row<u8>] = &[
            (b"\r\n+CFUN: 1\r\n\r\nOK\r\n", Ok(1)),
            (b"AT+CFUN?\r\r\n+CFUN: 4\r\n\r\nOK\r\n", Ok(4)),
            (b"\r\n+CFUN: 0\r\nOK\r\n", Ok(0)),
            (b"\r\n+CFUN: 255\r\n\r\nOK\r\n", Ok(255)),
            (b"\r\n+CFUN: 256\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CFUN: x\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CFUN: 1,0\r\n\r\nOK\r\n", Err(Error::Parse)),
            (
                b"\r\n+CFUN: 1\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                Ok(1),
            ),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CME ERROR: 10\r\n", Err(Error::Cme(CmeError(10)))),
        ];
        table(&GetFunctionality, rows);
    }

    #[test]
    fn qigeterror() {
        let e = |code, text: &str| {
            Ok(TcpipError {
                code,
                text: s(text),
            })
        };
        let rows: &[Row<TcpipError>] = &[
            (b"\r\n+QIGETERROR: 552, invalid parameters\r\n\r\nOK\r\n", e(552, "invalid parameters")),
            (b"\r\n+QIGETERROR: 552,invalid parameters\r\n\r\nOK\r\n", e(552, "invalid parameters")),
            (b"\r\n+QIGETERROR: 0,operate successfully\r\n\r\nOK\r\n", e(0, "operate successfully")),
            (b"AT+QIGETERROR\r\r\n+QIGETERROR: 566,socket connect failed\r\nOK\r\n", e(566, "socket connect failed")),
            (b"\r\n+QIGETERROR: 561\r\n\r\nOK\r\n", e(561, "")),
            (b"\r\n+QIGETERROR: 65535,x\r\n\r\nOK\r\n", e(65535, "x")),
            (b"\r\n+QIGETERROR: 65536,x\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QIGETERROR: ,x\r\n\r\nOK\r\n", Err(Error::Parse)),
            (
                b"\r\n+QIGETERROR: 550,0123456789012345678901234567890123456789012345678\r\n\r\nOK\r\n",
                Err(Error::Overflow),
            ),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&GetLastTcpipError, rows);
    }
}
