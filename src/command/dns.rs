//! Host-name lookups through the module's resolver (`AT+QIDNSGIP`).
//!
//! The DNS servers a context uses are read and set with [`GetDnsConfig`](super::pdp::GetDnsConfig)
//! and [`SetDnsConfig`](super::pdp::SetDnsConfig) (`AT+QIDNSCFG`), which sit with the other
//! context commands.

use super::{CmdWriter, Command};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::response::Response;

/// Longest host name sent to the modem (the longest DNS name, RFC 1035).
pub const MAX_HOST_NAME: usize = 253;

/// How long the modem may take to report a lookup's result (`+QIURC: "dnsgip"`), from the
/// manual's maximum response time of `AT+QIDNSGIP`: 60 s, set by the network.
pub const LOOKUP_TIMEOUT_MS: u32 = 60_000;

/// `AT+QIDNSGIP=<contextID>,"<hostname>"`: starts a lookup on context `cid`. The modem answers
/// `OK` at once; the result comes later as `+QIURC: "dnsgip",<err>,<IP_count>,<DNS_ttl>` followed
/// by `IP_count` lines `+QIURC: "dnsgip","<hostIPaddr>"`
/// ([`QiUrc::DnsResult`](crate::at::urc::QiUrc::DnsResult),
/// [`QiUrc::DnsAddress`](crate::at::urc::QiUrc::DnsAddress)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResolveHost<'a> {
    /// Context id, 1–16 (it must be active).
    pub cid: u8,
    /// Host name: 1–253 printable ASCII characters, no `"`.
    pub host: &'a str,
}

impl ResolveHost<'_> {
    /// Checks the arguments as [`Command::write`] does, without writing anything.
    pub fn check(&self) -> Result<(), Error> {
        let printable = self
            .host
            .bytes()
            .all(|b| b != b'"' && (0x20..0x7f).contains(&b));
        if !(1..=16).contains(&self.cid)
            || self.host.is_empty()
            || self.host.len() > MAX_HOST_NAME
            || !printable
        {
            return Err(Error::InvalidArgument);
        }
        Ok(())
    }
}

impl Command for ResolveHost<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    // Only the `OK` is waited for here; it normally comes at once, but the manual gives the
    // command 60 s and a module still busy with an earlier lookup may take that long.
    const TIMEOUT_MS: u32 = LOOKUP_TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        self.check()?;
        w.str_uint("AT+QIDNSGIP=", u32::from(self.cid))?;
        w.comma()?;
        w.quoted(self.host)
    }
    fn parse(&self, _resp: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Row, table, wrote};
    use super::*;
    use crate::CmeError;

    #[test]
    fn command_line() {
        let r = |cid, host| wrote(&ResolveHost { cid, host });
        assert_eq!(
            r(1, "device-api.test").unwrap(),
            b"AT+QIDNSGIP=1,\"device-api.test\""
        );
        assert_eq!(
            r(16, "www.quectel.com").unwrap(),
            b"AT+QIDNSGIP=16,\"www.quectel.com\""
        );
        assert_eq!(r(0, "a.test"), Err(Error::InvalidArgument));
        assert_eq!(r(17, "a.test"), Err(Error::InvalidArgument));
        assert_eq!(r(1, ""), Err(Error::InvalidArgument));
        assert_eq!(r(1, "a\"b"), Err(Error::InvalidArgument));
        assert_eq!(r(1, "a\r\nAT+CFUN=0"), Err(Error::InvalidArgument));
        let long = "a".repeat(MAX_HOST_NAME + 1);
        assert_eq!(r(1, &long), Err(Error::InvalidArgument));
        // The longest name fits the driver's command buffer.
        let longest = "a".repeat(MAX_HOST_NAME);
        // 384: the driver's command buffer (`asynch::CMD_BUF`).
        let mut buf = [0u8; 384];
        let mut w = CmdWriter::new(&mut buf);
        ResolveHost {
            cid: 1,
            host: &longest,
        }
        .write(&mut w)
        .unwrap();
        assert_eq!(w.len(), "AT+QIDNSGIP=1,\"\"".len() + MAX_HOST_NAME);
    }

    #[test]
    fn acknowledgement() {
        let rows: &[Row<()>] = &[
            (b"\r\nOK\r\n", Ok(())),
            (b"AT+QIDNSGIP=1,\"a.test\"\r\r\nOK\r\n", Ok(())),
            // The result URCs follow the OK; they are not part of the response.
            (
                b"\r\nOK\r\n\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"127.0.0.1\"\r\n",
                Ok(()),
            ),
            (b"\r\nERROR\r\n", Err(Error::Error)),
            (
                b"\r\n+CME ERROR: 3\r\n",
                Err(Error::Cme(CmeError(3))),
            ),
        ];
        table(
            &ResolveHost {
                cid: 1,
                host: "a.test",
            },
            rows,
        );
    }
}
