//! SIM commands: PIN state and entry, ICCID, IMSI, remaining attempts.
//!
//! Commands that carry a PIN or PUK implement `Debug` by hand and print `***` instead of the
//! secret; they do not implement `defmt::Format`.

use core::fmt;

use heapless::String;

use super::{CmdWriter, Command};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::parse::{all, next, quoted, uint};
use crate::at::response::Response;
use crate::at::urc::PinCode;

/// Maximum response time of `AT+CPIN`.
const CPIN_MS: u32 = 5_000;
/// Maximum response time of local commands.
const LOCAL_MS: u32 = 300;

/// Checks a PIN (4 to 8 digits) or a PUK (exactly 8 digits).
fn check_digits(s: &str, min: usize, max: usize) -> Result<(), Error> {
    if (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::InvalidArgument)
    }
}

/// `AT+CPIN?`: what the SIM waits for (`+CPIN: READY`, `+CPIN: SIM PIN`, ...). No SIM is
/// `Err(Error::Cme(CmeError::SIM_NOT_INSERTED))`, a SIM still starting typically
/// `CmeError::SIM_BUSY`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetPinStatus;

impl Command for GetPinStatus {
    type Response = PinCode;
    const EXPECT: Expect = Expect::prefixed(b"+CPIN:");
    const TIMEOUT_MS: u32 = CPIN_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CPIN?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<PinCode, Error> {
        let text = resp.first()?;
        if text.is_empty() {
            return Err(Error::Parse);
        }
        Ok(PinCode::from_text(text))
    }
}

/// `AT+CPIN="<pin>"`: enters the SIM PIN (4 to 8 digits, otherwise
/// [`Error::InvalidArgument`]). The `OK` is followed later by the `+CPIN: READY` URC; a wrong
/// PIN is `Err(Error::Cme(CmeError::INCORRECT_PASSWORD))`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EnterPin<'a> {
    /// The PIN.
    pub pin: &'a str,
}

impl fmt::Debug for EnterPin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterPin").field("pin", &"***").finish()
    }
}

impl Command for EnterPin<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = CPIN_MS;
    const SECRET: bool = true;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_digits(self.pin, 4, 8)?;
        w.str("AT+CPIN=")?;
        w.quoted(self.pin)
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+CPIN="<puk>","<newpin>"`: unblocks a SIM that asks for its PUK (8 digits) and sets a new
/// PIN (4 to 8 digits). Other lengths or non-digits are [`Error::InvalidArgument`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EnterPuk<'a> {
    /// The PUK.
    pub puk: &'a str,
    /// The new PIN.
    pub new_pin: &'a str,
}

impl fmt::Debug for EnterPuk<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterPuk")
            .field("puk", &"***")
            .field("new_pin", &"***")
            .finish()
    }
}

impl Command for EnterPuk<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = CPIN_MS;
    const SECRET: bool = true;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_digits(self.puk, 8, 8)?;
        check_digits(self.new_pin, 4, 8)?;
        w.str("AT+CPIN=")?;
        w.quoted(self.puk)?;
        w.comma()?;
        w.quoted(self.new_pin)
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+QCCID`: the SIM's ICCID (`+QCCID: 89860025128306012474`). 18 to 22 hexadecimal
/// characters are accepted (ICCIDs are 19 or 20 digits; some SIMs pad with a trailing `F`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Iccid;

impl Command for Iccid {
    type Response = String<24>;
    const EXPECT: Expect = Expect::prefixed(b"+QCCID:");
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+QCCID")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<String<24>, Error> {
        let text = resp.first()?;
        if !(18..=22).contains(&text.len()) || !text.iter().all(u8::is_ascii_hexdigit) {
            return Err(Error::Parse);
        }
        crate::util::text(text)
    }
}

/// `AT+CIMI`: the subscriber identity (IMSI), a bare line of 6 to 15 digits. The first
/// all-digit line is taken, so noise before it is skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Imsi;

impl Command for Imsi {
    type Response = String<16>;
    const EXPECT: Expect = Expect::BARE;
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CIMI")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<String<16>, Error> {
        resp.lines()
            .find(|l| (6..=15).contains(&l.len()) && l.iter().all(u8::is_ascii_digit))
            .ok_or(Error::Parse)
            .and_then(crate::util::text)
    }
}

/// Remaining SIM PIN and PUK attempts (`+QPINC: "SC",<pincounter>,<pukcounter>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PinAttempts {
    /// PIN attempts left (usually 3 at most).
    pub pin: u8,
    /// PUK attempts left (usually 10 at most).
    pub puk: u8,
}

/// `AT+QPINC="SC"`: remaining attempts for the SIM PIN and PUK.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PinCounter;

impl Command for PinCounter {
    type Response = PinAttempts;
    const EXPECT: Expect = Expect::prefixed(b"+QPINC:");
    const TIMEOUT_MS: u32 = LOCAL_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+QPINC=\"SC\"")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<PinAttempts, Error> {
        // Only the "SC" line counts (a firmware may list "P2" too).
        for line in resp.prefixed(b"+QPINC:") {
            let Ok((facility, pin, puk)) = all((quoted, next(uint), next(uint)), line) else {
                return Err(Error::Parse);
            };
            if facility.eq_ignore_ascii_case(b"SC") {
                return Ok(PinAttempts {
                    pin: u8::try_from(pin).map_err(|_| Error::Parse)?,
                    puk: u8::try_from(puk).map_err(|_| Error::Parse)?,
                });
            }
        }
        Err(Error::Parse)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;

    use super::*;
    use crate::CmeError;

    use super::super::testing::{Row, s, table, wrote};

    #[test]
    fn writes() {
        assert_eq!(wrote(&GetPinStatus).unwrap(), b"AT+CPIN?");
        assert_eq!(
            wrote(&EnterPin { pin: "1234" }).unwrap(),
            b"AT+CPIN=\"1234\""
        );
        assert_eq!(
            wrote(&EnterPin { pin: "12345678" }).unwrap(),
            b"AT+CPIN=\"12345678\""
        );
        for bad in ["", "123", "123456789", "12a4", "12\"4", " 1234", "１２３４"] {
            assert_eq!(
                wrote(&EnterPin { pin: bad }),
                Err(Error::InvalidArgument),
                "{bad}"
            );
        }
        assert_eq!(
            wrote(&EnterPuk {
                puk: "26601934",
                new_pin: "1234"
            })
            .unwrap(),
            b"AT+CPIN=\"26601934\",\"1234\""
        );
        for (puk, new_pin) in [
            ("2660193", "1234"),
            ("266019345", "1234"),
            ("2660193x", "1234"),
            ("26601934", "123"),
            ("26601934", "123456789"),
            ("26601934", "12,4"),
        ] {
            assert_eq!(
                wrote(&EnterPuk { puk, new_pin }),
                Err(Error::InvalidArgument)
            );
        }
        assert_eq!(wrote(&Iccid).unwrap(), b"AT+QCCID");
        assert_eq!(wrote(&Imsi).unwrap(), b"AT+CIMI");
        assert_eq!(wrote(&PinCounter).unwrap(), b"AT+QPINC=\"SC\"");
        assert_eq!(GetPinStatus::TIMEOUT_MS, 5_000);
        assert_eq!(EnterPin::TIMEOUT_MS, 5_000);
        assert_eq!(EnterPuk::TIMEOUT_MS, 5_000);
        assert_eq!(Iccid::TIMEOUT_MS, 300);
        assert_eq!(Imsi::EXPECT, Expect::BARE);
    }

    #[test]
    fn secrets_not_in_debug() {
        let pin = format!("{:?}", EnterPin { pin: "9876" });
        assert!(!pin.contains("9876"), "{pin}");
        assert!(pin.contains("***"));
        let puk = format!(
            "{:?}",
            EnterPuk {
                puk: "26601934",
                new_pin: "5555"
            }
        );
        assert!(!puk.contains("26601934") && !puk.contains("5555"), "{puk}");
        let pin = format!("{:#?}", EnterPin { pin: "9876" });
        assert!(!pin.contains("9876"));
    }

    #[test]
    fn pin_status() {
        let rows: &[Row<PinCode>] = &[
            (b"\r\n+CPIN: READY\r\n\r\nOK\r\n", Ok(PinCode::Ready)),
            (
                b"AT+CPIN?\r\r\n+CPIN: READY\r\n\r\nOK\r\n",
                Ok(PinCode::Ready),
            ),
            (b"\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n", Ok(PinCode::SimPin)),
            (b"\r\n+CPIN: SIM PUK\r\nOK\r\n", Ok(PinCode::SimPuk)),
            (b"\r\n+CPIN: SIM PIN2\r\n\r\nOK\r\n", Ok(PinCode::SimPin2)),
            (b"\r\n+CPIN: SIM PUK2\r\n\r\nOK\r\n", Ok(PinCode::SimPuk2)),
            (
                b"\r\n+CPIN: PH-NET PIN\r\n\r\nOK\r\n",
                Ok(PinCode::Personalisation),
            ),
            (
                b"\r\n+CPIN: PH-CORP PUK\r\n\r\nOK\r\n",
                Ok(PinCode::Personalisation),
            ),
            (b"\r\n+CPIN: NOT READY\r\n\r\nOK\r\n", Ok(PinCode::NotReady)),
            (b"\r\n+CPIN: WHATEVER\r\n\r\nOK\r\n", Ok(PinCode::Other)),
            (
                b"\r\n+CPIN: READY\r\n\r\nERrOR\r\n\r\nOK\r\n",
                Ok(PinCode::Ready),
            ),
            (
                b"\r\n+CPIN: READY\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                Ok(PinCode::Ready),
            ),
            (b"\r\n+CPIN:\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CME ERROR: 10\r\n", Err(Error::Cme(CmeError(10)))),
            (
                b"\r\n+CME ERROR: SIM not inserted\r\n",
                Err(Error::Cme(CmeError(10))),
            ),
            (
                b"\r\n+CME ERROR: 13\r\n",
                Err(Error::Cme(CmeError::SIM_FAILURE)),
            ),
            (
                b"\r\n+CME ERROR: 14\r\n",
                Err(Error::Cme(CmeError::SIM_BUSY)),
            ),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&GetPinStatus, rows);
    }

    #[test]
    fn pin_entry() {
        let rows: &[Row<()>] = &[
            (b"\r\nOK\r\n", Ok(())),
            (b"AT+CPIN=\"1234\"\r\r\nOK\r\n", Ok(())),
            (b"\r\nOK\r\n\r\n+CPIN: READY\r\n", Ok(())),
            (
                b"\r\n+CME ERROR: 16\r\n",
                Err(Error::Cme(CmeError::INCORRECT_PASSWORD)),
            ),
            (
                b"\r\n+CME ERROR: incorrect password\r\n",
                Err(Error::Cme(CmeError(16))),
            ),
            (
                b"\r\n+CME ERROR: 3\r\n",
                Err(Error::Cme(CmeError::NOT_ALLOWED)),
            ),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&EnterPin { pin: "1234" }, rows);
        table(
            &EnterPuk {
                puk: "26601934",
                new_pin: "1234",
            },
            rows,
        );
    }

    #[test]
    fn iccid() {
        let rows: &[Row<String<24>>] = &[
            (
                b"\r\n+QCCID: 89860025128306012474\r\n\r\nOK\r\n",
                Ok(s("89860025128306012474")),
            ),
            (
                b"AT+QCCID\r\r\n+QCCID: 89860025128306012474\r\n\r\nOK\r\n",
                Ok(s("89860025128306012474")),
            ),
            (
                b"\r\n+QCCID: 89860025128306012474\r\nOK\r\n",
                Ok(s("89860025128306012474")),
            ),
            (
                b"\r\n+QCCID: 8986002512830601247F\r\n\r\nOK\r\n",
                Ok(s("8986002512830601247F")),
            ),
            (
                b"\r\n+QCCID: 8944500102198304826\r\n\r\nOK\r\n",
                Ok(s("8944500102198304826")),
            ),
            (
                b"\r\n+QCCID: 89860025128306012474\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                Ok(s("89860025128306012474")),
            ),
            (
                b"\r\nERrOR\r\n+QCCID: 89860025128306012474\r\n\r\nOK\r\n",
                Ok(s("89860025128306012474")),
            ),
            // Limits: 18 and 22 characters are accepted, 17 and 23 are not.
            (
                b"\r\n+QCCID: 898600251283060124\r\n\r\nOK\r\n",
                Ok(s("898600251283060124")),
            ),
            (
                b"\r\n+QCCID: 8986002512830601247412\r\n\r\nOK\r\n",
                Ok(s("8986002512830601247412")),
            ),
            (
                b"\r\n+QCCID: 89860025128306012\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+QCCID: 89860025128306012474123\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+QCCID: 8986002512830601247G\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+QCCID: \"89860025128306012474\"\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nERROR\r\n", Err(Error::Error)),
            (b"\r\n+CME ERROR: 10\r\n", Err(Error::Cme(CmeError(10)))),
        ];
        table(&Iccid, rows);
    }

    #[test]
    fn imsi() {
        let rows: &[Row<String<16>>] = &[
            (
                b"\r\n460023210226023\r\n\r\nOK\r\n",
                Ok(s("460023210226023")),
            ),
            (
                b"AT+CIMI\r\r\n460023210226023\r\n\r\nOK\r\n",
                Ok(s("460023210226023")),
            ),
            (b"\r\n460023210226023\r\nOK\r\n", Ok(s("460023210226023"))),
            (
                b"\r\nERrOR\r\n460023210226023\r\n\r\nOK\r\n",
                Ok(s("460023210226023")),
            ),
            (
                b"\r\n12\r\n460023210226023\r\n\r\nOK\r\n",
                Ok(s("460023210226023")),
            ),
            (
                b"\r\n460023210226023\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
                Ok(s("460023210226023")),
            ),
            (b"\r\n460023\r\n\r\nOK\r\n", Ok(s("460023"))),
            (b"\r\n46002\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n4600232102260231\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n46002321022602x\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (
                b"\r\n+CME ERROR: 11\r\n",
                Err(Error::Cme(CmeError::SIM_PIN_REQUIRED)),
            ),
            (
                b"\r\n+CME ERROR: SIM not inserted\r\n",
                Err(Error::Cme(CmeError(10))),
            ),
        ];
        table(&Imsi, rows);
    }

    #[test]
    fn pin_counter() {
        let a = |pin, puk| Ok(PinAttempts { pin, puk });
        let rows: &[Row<PinAttempts>] = &[
            (b"\r\n+QPINC: \"SC\",3,10\r\n\r\nOK\r\n", a(3, 10)),
            (b"\r\n+QPINC: \"SC\",0,0\r\nOK\r\n", a(0, 0)),
            (
                b"\r\n+QPINC: \"P2\",3,10\r\n+QPINC: \"SC\",2,10\r\n\r\nOK\r\n",
                a(2, 10),
            ),
            (b"\r\n+QPINC: \"SC\",255,255\r\n\r\nOK\r\n", a(255, 255)),
            (
                b"\r\n+QPINC: \"SC\",256,10\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (b"\r\n+QPINC: \"SC\",3\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+QPINC: \"P2\",3,10\r\n\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\nOK\r\n", Err(Error::Parse)),
            (b"\r\n+CME ERROR: 10\r\n", Err(Error::Cme(CmeError(10)))),
        ];
        table(&PinCounter, rows);
    }
}
