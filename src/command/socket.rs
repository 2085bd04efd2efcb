//! TCP/IP and SSL socket commands (buffer-access or direct-push mode).
//!
//! Sending (`AT+QISEND`/`AT+QSSLSEND`) is not a plain command: the channel runs it as a
//! resumable exchange (command, `> ` prompt, payload, `SEND OK`) so that it survives
//! cancellation; see `asynch::channel`.

use super::{CmdWriter, Command};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::response::Response;

/// Time allowed for the immediate `OK` of an open command (the result comes later as a URC).
const OPEN_ACK_MS: u32 = 5_000;
/// Time allowed for a read (the manual gives none; reference drivers allow far more).
const READ_MS: u32 = 10_000;

fn host_port(w: &mut CmdWriter<'_>, host: &str, port: u16) -> Result<(), Error> {
    if host.is_empty() || host.len() > 150 {
        return Err(Error::InvalidArgument);
    }
    w.quoted(host)?;
    w.arg(u32::from(port))
}

fn check_id(id: u8) -> Result<(), Error> {
    if id > 11 {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

/// `AT+QIOPEN=<cid>,<id>,"TCP","<host>",<port>,0,<access_mode>`: opens a TCP client socket in
/// buffer-access mode (0: the data waits in the module for `AT+QIRD`) or direct-push mode (1:
/// it comes inside `+QIURC: "recv",<id>,<n>`). `OK` comes at once; the result arrives as
/// `+QIOPEN: <id>,<err>`.
#[derive(Clone, Copy, Debug)]
pub struct OpenTcp<'a> {
    /// PDP context.
    pub cid: u8,
    /// Socket id (0–11).
    pub id: u8,
    /// Host name or address.
    pub host: &'a str,
    /// Remote port.
    pub port: u16,
    /// Direct-push mode (access mode 1) instead of buffer-access mode (0).
    pub push: bool,
}

fn access_mode(push: bool) -> &'static str {
    if push { ",1" } else { ",0" }
}

impl Command for OpenTcp<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = OPEN_ACK_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_id(self.id)?;
        w.str_uint("AT+QIOPEN=", u32::from(self.cid))?;
        w.arg(u32::from(self.id))?;
        w.str(",\"TCP\",")?;
        host_port(w, self.host, self.port)?;
        w.str(",0")?;
        w.str(access_mode(self.push))
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+QSSLOPEN=<cid>,<ctx>,<id>,"<host>",<port>,<access_mode>`: opens a TLS client socket
/// terminated in the modem, in buffer-access mode (0) or direct-push mode (1: the data comes
/// inside `+QSSLURC: "recv",<id>,<n>`). The result arrives as `+QSSLOPEN: <id>,<err>`.
#[derive(Clone, Copy, Debug)]
pub struct OpenTls<'a> {
    /// PDP context.
    pub cid: u8,
    /// SSL context (0–5) holding the TLS configuration.
    pub ssl_ctx: u8,
    /// Socket id (0–11).
    pub id: u8,
    /// Host name or address.
    pub host: &'a str,
    /// Remote port.
    pub port: u16,
    /// Direct-push mode (access mode 1) instead of buffer-access mode (0).
    pub push: bool,
}

impl Command for OpenTls<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = OPEN_ACK_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_id(self.id)?;
        if self.ssl_ctx > 5 {
            return Err(Error::InvalidArgument);
        }
        w.str_uint("AT+QSSLOPEN=", u32::from(self.cid))?;
        w.arg(u32::from(self.ssl_ctx))?;
        w.arg(u32::from(self.id))?;
        w.comma()?;
        host_port(w, self.host, self.port)?;
        w.str(access_mode(self.push))
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// [`OpenTcp`] or [`OpenTls`], for a flow that opens either: one command type (and one await)
/// for both.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Open<'a> {
    /// `AT+QIOPEN`.
    Tcp(OpenTcp<'a>),
    /// `AT+QSSLOPEN`.
    Tls(OpenTls<'a>),
}

impl Command for Open<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = OPEN_ACK_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        match self {
            Open::Tcp(c) => c.write(w),
            Open::Tls(c) => c.write(w),
        }
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+QICLOSE=<id>,<timeout>` or `AT+QSSLCLOSE=<id>,<timeout>`.
#[derive(Clone, Copy, Debug)]
pub struct Close {
    /// Socket id.
    pub id: u8,
    /// TLS socket (`AT+QSSLCLOSE`).
    pub tls: bool,
    /// Seconds the modem waits for the peer's FIN before forcing the close (0–10 here).
    pub timeout_s: u8,
}

impl Command for Close {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    // The maximum response time is the close timeout; 10 s at most here, plus margin.
    const TIMEOUT_MS: u32 = 12_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_id(self.id)?;
        if self.timeout_s > 10 {
            return Err(Error::InvalidArgument);
        }
        w.str_uint(
            if self.tls {
                "AT+QSSLCLOSE="
            } else {
                "AT+QICLOSE="
            },
            u32::from(self.id),
        )?;
        w.arg(u32::from(self.timeout_s))
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+QIRD=<id>,<len>` / `AT+QSSLRECV=<id>,<len>`: reads up to `len` buffered bytes. The
/// digester copies the payload straight into socket slot `id`'s receive ring; the result is the
/// number of bytes delivered.
#[derive(Clone, Copy, Debug)]
pub struct Read {
    /// Socket id (= slot).
    pub id: u8,
    /// TLS socket (`AT+QSSLRECV`).
    pub tls: bool,
    /// Maximum bytes (1–1500).
    pub len: u16,
}

impl Command for Read {
    type Response = usize;
    const EXPECT: Expect = Expect::payload(b"+QIRD:");
    const TIMEOUT_MS: u32 = READ_MS;
    fn expect(&self) -> Expect {
        let base = if self.tls {
            Expect::payload(b"+QSSLRECV:")
        } else {
            Expect::payload(b"+QIRD:")
        };
        base.to_slot(self.id)
    }
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_id(self.id)?;
        if self.len == 0 || self.len > 1500 {
            return Err(Error::InvalidArgument);
        }
        w.str_uint(
            if self.tls { "AT+QSSLRECV=" } else { "AT+QIRD=" },
            u32::from(self.id),
        )?;
        w.arg(u32::from(self.len))
    }
    fn parse(&self, resp: &Response<'_>) -> Result<usize, Error> {
        // The payload itself goes to the ring, right behind this header line.
        let [n] = crate::at::parse::uints(resp.first()?).ok_or(Error::Parse)?;
        let n = n as usize;
        if n > usize::from(self.len) {
            return Err(Error::Parse);
        }
        Ok(n)
    }
}

/// `AT+QIRD=<id>,0`: how much the modem received, read, and still holds for socket `id`.
#[derive(Clone, Copy, Debug)]
pub struct ReadQuery {
    /// Socket id.
    pub id: u8,
}

/// Answer to [`ReadQuery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReadCounters {
    /// Bytes received in total.
    pub total: u32,
    /// Bytes read by the host.
    pub read: u32,
    /// Bytes waiting.
    pub unread: u32,
}

impl Command for ReadQuery {
    type Response = ReadCounters;
    const EXPECT: Expect = Expect::prefixed(b"+QIRD:");
    const TIMEOUT_MS: u32 = READ_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        check_id(self.id)?;
        w.str_uint("AT+QIRD=", u32::from(self.id))?;
        w.str(",0")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<ReadCounters, Error> {
        let [total, read, unread] = crate::at::parse::uints(resp.first()?).ok_or(Error::Parse)?;
        Ok(ReadCounters {
            total,
            read,
            unread,
        })
    }
}

/// TLS options of an SSL context (`AT+QSSLCFG="<option>",<ctx>,<value>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslOption<'a> {
    /// `"sslversion"`: 0 SSL3.0, 1 TLS1.0, 2 TLS1.1, 3 TLS1.2, 4 all.
    Version(u8),
    /// `"ciphersuite"`: a suite code (`0XC02F`…) or `0xFFFF` for all (written unquoted).
    CipherSuite(u16),
    /// `"seclevel"`: 0 no authentication, 1 verify the server, 2 mutual authentication.
    SecLevel(u8),
    /// `"cacert"`: file with the trusted CA.
    CaCert(&'a str),
    /// `"clientcert"`: file with the client certificate.
    ClientCert(&'a str),
    /// `"clientkey"`: file with the client key.
    ClientKey(&'a str),
    /// `"ignorelocaltime"`: skip the validity-date check (the module's clock is often unset).
    IgnoreLocalTime(bool),
    /// `"negotiatetime"`: handshake timeout in seconds (10–300).
    NegotiateTime(u16),
    /// `"sni"`: send Server Name Indication (needed by most cloud endpoints).
    Sni(bool),
}

/// `AT+QSSLCFG="<option>",<ctx>,<value>`.
#[derive(Clone, Copy, Debug)]
pub struct SslConfigure<'a> {
    /// SSL context (0–5).
    pub ctx: u8,
    /// The option and its value.
    pub option: SslOption<'a>,
}

impl Command for SslConfigure<'_> {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = 300;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        if self.ctx > 5 {
            return Err(Error::InvalidArgument);
        }
        let name = match self.option {
            SslOption::Version(_) => "sslversion",
            SslOption::CipherSuite(_) => "ciphersuite",
            SslOption::SecLevel(_) => "seclevel",
            SslOption::CaCert(_) => "cacert",
            SslOption::ClientCert(_) => "clientcert",
            SslOption::ClientKey(_) => "clientkey",
            SslOption::IgnoreLocalTime(_) => "ignorelocaltime",
            SslOption::NegotiateTime(_) => "negotiatetime",
            SslOption::Sni(_) => "sni",
        };
        w.str("AT+QSSLCFG=\"")?;
        w.str(name)?;
        w.str_uint("\",", u32::from(self.ctx))?;
        w.comma()?;
        match self.option {
            SslOption::Version(v) if v <= 4 => w.uint(u32::from(v)),
            SslOption::SecLevel(v) if v <= 2 => w.uint(u32::from(v)),
            SslOption::CipherSuite(cs) => {
                // Unquoted `0X....`: a quoted suite is rejected by real BG96 firmware.
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                let mut text = *b"0X0000";
                let [_, _, digits @ ..] = &mut text;
                let mut shift = 16u32;
                for c in digits.iter_mut() {
                    shift = shift.wrapping_sub(4);
                    // A nibble: always in the table.
                    *c = HEX
                        .get(usize::from(cs.wrapping_shr(shift) & 0xf))
                        .copied()
                        .unwrap_or(b'0');
                }
                w.raw(&text)
            }
            SslOption::CaCert(f) | SslOption::ClientCert(f) | SslOption::ClientKey(f) => {
                w.quoted(f)
            }
            SslOption::IgnoreLocalTime(b) | SslOption::Sni(b) => w.uint(u32::from(b)),
            SslOption::NegotiateTime(t) if (10..=300).contains(&t) => w.uint(u32::from(t)),
            _ => Err(Error::InvalidArgument),
        }
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::run_wire;
    use super::*;

    fn line<C: Command>(c: &C) -> Result<heapless::String<96>, Error> {
        let mut buf = [0u8; 96];
        let mut w = CmdWriter::new(&mut buf);
        c.write(&mut w)?;
        Ok(core::str::from_utf8(w.as_bytes())
            .unwrap()
            .try_into()
            .unwrap())
    }

    #[test]
    fn command_lines() {
        let open = OpenTcp {
            cid: 1,
            id: 0,
            host: "220.180.239.212",
            port: 8009,
            push: false,
        };
        assert_eq!(
            line(&open).unwrap(),
            "AT+QIOPEN=1,0,\"TCP\",\"220.180.239.212\",8009,0,0"
        );
        assert_eq!(
            line(&OpenTcp { push: true, ..open }).unwrap(),
            "AT+QIOPEN=1,0,\"TCP\",\"220.180.239.212\",8009,0,1"
        );
        let tls = OpenTls {
            cid: 1,
            ssl_ctx: 1,
            id: 4,
            host: "a.example",
            port: 8883,
            push: false,
        };
        assert_eq!(
            line(&tls).unwrap(),
            "AT+QSSLOPEN=1,1,4,\"a.example\",8883,0"
        );
        assert_eq!(
            line(&OpenTls { push: true, ..tls }).unwrap(),
            "AT+QSSLOPEN=1,1,4,\"a.example\",8883,1"
        );
        assert_eq!(
            line(&Close {
                id: 3,
                tls: false,
                timeout_s: 1
            })
            .unwrap(),
            "AT+QICLOSE=3,1"
        );
        assert_eq!(
            line(&Read {
                id: 1,
                tls: true,
                len: 1500
            })
            .unwrap(),
            "AT+QSSLRECV=1,1500"
        );
        assert_eq!(
            line(&Read {
                id: 1,
                tls: false,
                len: 0
            }),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            line(&Read {
                id: 12,
                tls: false,
                len: 5
            }),
            Err(Error::InvalidArgument)
        );
        let cs = SslConfigure {
            ctx: 2,
            option: SslOption::CipherSuite(0xffff),
        };
        assert_eq!(line(&cs).unwrap(), "AT+QSSLCFG=\"ciphersuite\",2,0XFFFF");
        let cs = SslConfigure {
            ctx: 2,
            option: SslOption::CipherSuite(0xc02f),
        };
        assert_eq!(line(&cs).unwrap(), "AT+QSSLCFG=\"ciphersuite\",2,0XC02F");
        let ca = SslConfigure {
            ctx: 1,
            option: SslOption::CaCert("UFS:ca.pem"),
        };
        assert_eq!(line(&ca).unwrap(), "AT+QSSLCFG=\"cacert\",1,\"UFS:ca.pem\"");
        let bad = SslConfigure {
            ctx: 1,
            option: SslOption::SecLevel(3),
        };
        assert_eq!(line(&bad), Err(Error::InvalidArgument));
        let host = OpenTcp {
            cid: 1,
            id: 0,
            host: "bad\"host",
            port: 1,
            push: false,
        };
        assert_eq!(line(&host), Err(Error::InvalidArgument));
    }

    #[test]
    fn read_framing() {
        let r = Read {
            id: 1,
            tls: false,
            len: 1500,
        };
        for chunk in [1, 3, 64] {
            assert_eq!(
                run_wire(&r, b"\r\n+QIRD: 5\r\n\r\nOK\r\n\r\n\r\nOK\r\n", chunk),
                Ok(5)
            );
            assert_eq!(run_wire(&r, b"\r\n+QIRD: 0\r\n\r\nOK\r\n", chunk), Ok(0));
            assert_eq!(run_wire(&r, b"\r\nERROR\r\n", chunk), Err(Error::Error));
        }
        let q = ReadQuery { id: 1 };
        assert_eq!(
            run_wire(&q, b"\r\n+QIRD: 3615,3529,86\r\n\r\nOK\r\n", 2),
            Ok(ReadCounters {
                total: 3615,
                read: 3529,
                unread: 86
            })
        );
    }
}
