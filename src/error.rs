//! The core error: what can go wrong in the AT, SIM, network, data-call and socket layers.
//!
//! The layers above have their own error types, each wrapping the one below it with `From`:
//! `tls::TlsError` (feature `mcu-tls`), `mqtt::MqttError` (feature `mqtt`) and
//! `cloud::CloudError` (features `aws`, `aliyun`). This file names none of them: the core does
//! not depend on the layers built on it.

use core::fmt;

/// A `+CME ERROR` code (3GPP TS 27.007 §9.2 and Quectel's extensions).
///
/// Verbose forms (`AT+CMEE=2`, e.g. `+CME ERROR: SIM not inserted`) are mapped back to their numeric
/// code; a verbose text the driver does not know becomes [`CmeError::UNKNOWN`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CmeError(pub u16);

impl CmeError {
    /// 3: operation not allowed.
    pub const NOT_ALLOWED: Self = Self(3);
    /// 4: operation not supported.
    pub const NOT_SUPPORTED: Self = Self(4);
    /// 10: (U)SIM not inserted.
    pub const SIM_NOT_INSERTED: Self = Self(10);
    /// 11: (U)SIM PIN required.
    pub const SIM_PIN_REQUIRED: Self = Self(11);
    /// 12: (U)SIM PUK required.
    pub const SIM_PUK_REQUIRED: Self = Self(12);
    /// 13: (U)SIM failure.
    pub const SIM_FAILURE: Self = Self(13);
    /// 14: (U)SIM busy.
    pub const SIM_BUSY: Self = Self(14);
    /// 15: (U)SIM wrong.
    pub const SIM_WRONG: Self = Self(15);
    /// 16: incorrect password (wrong PIN or PUK).
    pub const INCORRECT_PASSWORD: Self = Self(16);
    /// 30: no network service.
    pub const NO_NETWORK_SERVICE: Self = Self(30);
    /// 100: unknown error (also used for verbose texts this driver does not recognise).
    pub const UNKNOWN: Self = Self(100);
    /// 405: file not found.
    pub const FILE_NOT_FOUND: Self = Self(405);
    /// 407: file already exists.
    pub const FILE_EXISTS: Self = Self(407);

    /// A short English description of the code, if known.
    pub fn description(self) -> Option<&'static str> {
        cme_texts()
            .take(CME_DESCRIBED)
            .find(|(code, _)| *code == self.0)
            .map(|(_, text)| text)
    }

    /// Maps a verbose `+CME ERROR` text (as printed with `AT+CMEE=2`) to its code, ignoring case
    /// and a leading `(U)`.
    pub fn from_verbose(text: &[u8]) -> Self {
        let text = trim_ascii(text);
        let text = text.strip_prefix(b"(U)").unwrap_or(text);
        // Descriptions first, then the firmware variants seen in logs. Each as the modem prints
        // it (a plain comparison), else in another case (the case-insensitive comparison runs
        // over every byte, with no early exit).
        // Texts of another length are skipped by their length alone (no byte of them read).
        let mut at = 0usize;
        for (&code, &len) in CME_CODES.iter().zip(&CME_LENS) {
            let len = usize::from(len);
            // (`at + len` is within `CME_TEXT`, a constant: no saturation in practice.)
            let end = at.saturating_add(len);
            if text.len() == len
                && let Some(known) = CME_TEXT.as_bytes().get(at..end)
                && (text == known || text.eq_ignore_ascii_case(known))
            {
                return Self(code);
            }
            at = end.saturating_add(1);
        }
        Self::UNKNOWN
    }
}

/// How many of [`CME_CODES`] are descriptions; the rest are aliases (firmware variants seen in
/// logs), read by [`CmeError::from_verbose`] only.
const CME_DESCRIBED: usize = 45;

/// The codes of the verbose `+CME ERROR` texts, in the order of the lines of [`CME_TEXT`] (one
/// string and a code array instead of a table of `(u16, &str)`: the 8 bytes of pointer and
/// length per text were in every firmware that reads errors).
const CME_CODES: [u16; 48] = [
    0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 30, 31, 32, 100, 400,
    401, 402, 403, 405, 406, 407, 409, 410, 411, 413, 414, 416, 417, 418, 419, 420, 421, 423, 425,
    426, 10, 32, 50,
];

/// The byte lengths of the lines of [`CME_TEXT`] (without their `\n`), so that a search
/// skips a text of another length without reading it (checked by a test).
const CME_LENS: [u8; 48] = [
    13, 22, 27, 21, 23, 19, 16, 16, 16, 11, 8, 9, 18, 17, 17, 11, 13, 9, 14, 20, 18, 15, 42, 7, 19,
    32, 14, 10, 14, 17, 20, 22, 21, 21, 49, 18, 23, 21, 23, 21, 8, 8, 14, 17, 19, 17, 44, 20,
];

/// The verbose texts of [`CME_CODES`], one per line (`\n` after each).
const CME_TEXT: &str = concat!(
    "phone failure\n",
    "no connection to phone\n",
    "phone-adaptor link reserved\n",
    "operation not allowed\n",
    "operation not supported\n",
    "PH-SIM PIN required\n",
    "SIM not inserted\n",
    "SIM PIN required\n",
    "SIM PUK required\n",
    "SIM failure\n",
    "SIM busy\n",
    "SIM wrong\n",
    "incorrect password\n",
    "SIM PIN2 required\n",
    "SIM PUK2 required\n",
    "memory full\n",
    "invalid index\n",
    "not found\n",
    "memory failure\n",
    "text string too long\n",
    "no network service\n",
    "network timeout\n",
    "network not allowed - emergency calls only\n",
    "unknown\n",
    // File system (AT+QF...), Quectel's table.
    "invalid input value\n",
    "larger than the size of the file\n",
    "read zero byte\n",
    "drive full\n",
    "file not found\n",
    "invalid file name\n",
    "file already existed\n",
    "fail to write the file\n",
    "fail to open the file\n",
    "fail to read the file\n",
    "reach the max number of file allowed to be opened\n",
    "the file read only\n",
    "invalid file descriptor\n",
    "fail to list the file\n",
    "fail to delete the file\n",
    "fail to get disk info\n",
    "no space\n",
    "time out\n",
    "file too large\n",
    "invalid parameter\n",
    "file already opened\n",
    // Firmware variants seen in logs (aliases: never a description).
    "SIM not inserted.\n",
    "network not allowed – emergency calls only\n",
    "incorrect parameters\n",
);

/// `(code, text)` of the known verbose texts: descriptions first, then aliases.
fn cme_texts() -> impl Iterator<Item = (u16, &'static str)> {
    let mut at = 0usize;
    CME_CODES.iter().zip(CME_LENS).map(move |(&code, len)| {
        let end = at.saturating_add(usize::from(len));
        let text = CME_TEXT.get(at..end).unwrap_or_default();
        at = end.saturating_add(1);
        (code, text)
    })
}

impl fmt::Debug for CmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description() {
            Some(text) => write!(f, "CmeError({}: {})", self.0, text),
            None => write!(f, "CmeError({})", self.0),
        }
    }
}

/// Everything that can go wrong talking to the modem: AT commands, SIM, network registration,
/// the data call and sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
// Tags start at 1, so that `None::<Error>` is a zero byte: a free socket slot, which holds an
// `Option<Error>`, is then all zero bytes and `Resources::new()` lands in `.bss`.
#[repr(u8)]
pub enum Error {
    /// No final result code arrived within the command's maximum response time.
    Timeout = 1,
    /// Writing to the UART failed or timed out.
    Write,
    /// Reading from the UART failed.
    Read,
    /// The modem answered `ERROR` (use `AT+QIGETERROR` for socket commands).
    Error,
    /// The modem answered `+CME ERROR: <code>`.
    Cme(CmeError),
    /// The modem answered `+CMS ERROR: <code>`.
    Cms(u16),
    /// The modem answered `NO CARRIER`, `BUSY`, `NO ANSWER` or `NO DIALTONE`.
    NoCarrier,
    /// The modem answered `SEND FAIL` (its send buffer is full).
    SendFail,
    /// The response did not have the shape the command expects.
    Parse,
    /// A bounded buffer was too small: a command line longer than the command buffer, or an
    /// information line longer than the ingress (line) buffer. Nothing was truncated silently.
    Overflow,
    /// An argument cannot be sent (e.g. a string containing `"` or a control character).
    InvalidArgument,
    /// The modem rebooted (`RDY`) while the operation was waiting.
    Rebooted,
    /// The modem did not answer `AT` during start-up.
    NotResponding,
    /// The operation needs a state the modem is not in (e.g. PIN entry without a PIN request).
    InvalidState,
    /// The caller gave a value outside the range the modem model accepts.
    OutOfRange,
    /// A TCP/IP error code of the module (`+QIOPEN: <id>,<err>`, `+QIURC: "dnsgip",<err>`,
    /// `AT+QIGETERROR`), e.g. 565 DNS parse failed, 566 socket connect failed, 563 socket
    /// identity in use.
    Ip(u16),
    /// The TLS connection could not be set up in the modem (`+QSSLOPEN: <id>,<err>`): handshake
    /// or certificate verification failed (usually 566), or another module error code.
    Tls(u16),
    /// The peer closed the connection (writes after that fail with this error).
    ConnectionClosed,
    /// The network deactivated the PDP context the socket was on (`+QIURC: "pdpdeact"`).
    ContextDeactivated,
    /// Every socket slot is in use.
    NoSocket,
    /// A certificate or key in PEM was refused before use: not PEM, or not the kind of object
    /// its place needs (see [`crate::pem`]). Nothing was uploaded to the modem.
    Pem(crate::pem::PemError),
    /// A host name resolved (`+QIURC: "dnsgip",0,...`), but to no address of the requested type
    /// (e.g. only IPv6 addresses when IPv4 was asked for). A failed lookup is
    /// [`Error::Ip`] with the module's code (565 DNS parse failed, ...).
    NoAddress,
    /// The modem has no command for this operation (e.g. reverse DNS lookups).
    Unsupported,
    /// Bytes of a socket payload were lost on the UART (an overrun): the payload did not end
    /// where its `+QIRD`/`+QSSLRECV` header said. The socket's stream can no longer be
    /// trusted; connect again.
    Corrupted,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout => f.write_str("timed out waiting for the modem"),
            Error::Write => f.write_str("UART write failed"),
            Error::Read => f.write_str("UART read failed"),
            Error::Error => f.write_str("modem answered ERROR"),
            Error::Cme(e) => write!(f, "modem answered {e:?}"),
            Error::Cms(code) => write!(f, "modem answered +CMS ERROR: {code}"),
            Error::NoCarrier => f.write_str("modem answered NO CARRIER"),
            Error::SendFail => f.write_str("modem answered SEND FAIL"),
            Error::Parse => f.write_str("unexpected response from the modem"),
            Error::Overflow => f.write_str("buffer too small"),
            Error::InvalidArgument => f.write_str("invalid argument"),
            Error::Rebooted => f.write_str("the modem rebooted"),
            Error::NotResponding => f.write_str("the modem does not respond"),
            Error::InvalidState => f.write_str("the modem is not in the required state"),
            Error::OutOfRange => f.write_str("value out of range for this modem"),
            Error::Ip(code) => write!(f, "module TCP/IP error {code}"),
            Error::Tls(code) => write!(f, "TLS connection failed in the module (error {code})"),
            Error::ConnectionClosed => f.write_str("connection closed by the peer"),
            Error::ContextDeactivated => f.write_str("PDP context deactivated by the network"),
            Error::NoSocket => f.write_str("no free socket"),
            Error::Pem(e) => write!(f, "{e}"),
            Error::NoAddress => f.write_str("the host name has no address of the requested type"),
            Error::Unsupported => f.write_str("not supported by the modem"),
            Error::Corrupted => f.write_str("socket data lost on the UART"),
        }
    }
}

impl core::error::Error for Error {}

impl From<crate::pem::PemError> for Error {
    fn from(e: crate::pem::PemError) -> Self {
        Error::Pem(e)
    }
}

impl embedded_io::Error for Error {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            Error::Timeout => ErrorKind::TimedOut,
            Error::Parse => ErrorKind::InvalidData,
            Error::InvalidArgument | Error::OutOfRange => ErrorKind::InvalidInput,
            Error::Overflow => ErrorKind::OutOfMemory,
            Error::NoCarrier => ErrorKind::ConnectionReset,
            Error::Rebooted | Error::ContextDeactivated => ErrorKind::ConnectionAborted,
            Error::ConnectionClosed => ErrorKind::BrokenPipe,
            Error::Ip(566) | Error::Tls(_) => ErrorKind::ConnectionRefused,
            Error::NoSocket => ErrorKind::AddrInUse,
            Error::Pem(crate::pem::PemError::BufferTooSmall) => ErrorKind::OutOfMemory,
            Error::Pem(_) => ErrorKind::InvalidData,
            Error::NoAddress => ErrorKind::NotFound,
            Error::Unsupported => ErrorKind::Unsupported,
            Error::Corrupted => ErrorKind::InvalidData,
            _ => ErrorKind::Other,
        }
    }
}

#[inline]
pub(crate) fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cme_texts_pair_with_their_codes() {
        // One text per code, none empty, none left over.
        assert_eq!(CME_TEXT.lines().count(), CME_CODES.len());
        assert_eq!(cme_texts().count(), CME_CODES.len());
        assert!(
            CME_TEXT
                .lines()
                .map(str::len)
                .eq(CME_LENS.iter().map(|&l| usize::from(l)))
        );
        assert!(cme_texts().zip(CME_TEXT.lines()).all(|((_, t), l)| t == l));
        assert!(cme_texts().all(|(_, t)| !t.is_empty() && !t.contains('\n')));
        assert_eq!(CmeError(0).description(), Some("phone failure"));
        assert_eq!(CmeError(10).description(), Some("SIM not inserted"));
        assert_eq!(CmeError(426).description(), Some("file already opened"));
        // Aliases are read, never described.
        assert_eq!(CmeError(50).description(), None);
        assert_eq!(CmeError(6).description(), None);
        // Every description reads back as its code.
        for (code, text) in cme_texts().take(CME_DESCRIBED) {
            assert_eq!(CmeError::from_verbose(text.as_bytes()), CmeError(code));
        }
    }

    #[test]
    fn verbose_cme_texts() {
        let read = |t: &str| CmeError::from_verbose(t.as_bytes());
        assert_eq!(read(" (U)SIM not inserted "), CmeError::SIM_NOT_INSERTED);
        assert_eq!(read("sim PIN required"), CmeError::SIM_PIN_REQUIRED);
        assert_eq!(read("SIM not inserted."), CmeError::SIM_NOT_INSERTED);
        assert_eq!(
            read("network not allowed – emergency calls only"),
            CmeError(32)
        );
        assert_eq!(read("incorrect parameters"), CmeError(50));
        assert_eq!(read("file not found"), CmeError::FILE_NOT_FOUND);
        assert_eq!(read("no such thing"), CmeError::UNKNOWN);
        assert_eq!(read(""), CmeError::UNKNOWN);
    }
}
