//! Files in the modem and TLS contexts: upload certificates and keys (`AT+QFUPL`), then
//! configure an SSL context (`AT+QSSLCFG`) that [`Remote::Tls`](super::Remote::Tls) sockets use.

use core::fmt;

use super::Modem;
use crate::Error;
use crate::command::file::{Delete, FileEntry, List, Upload, UploadData, checksum};
use crate::command::socket::{SslConfigure, SslOption};
use crate::pem::{self, PemKind};

/// TLS versions the modem may negotiate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TlsVersion {
    /// TLS 1.2 only.
    Tls12,
    /// Whatever the module supports (`sslversion` 4).
    Any,
}

/// How the modem authenticates the server. `Debug` shows the CA's length, not its text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ServerAuth<'c> {
    /// Verify the server's chain against this CA (PEM). The default, and what you want.
    Verify(&'c [u8]),
    /// Accept any server certificate. Only for tests: anyone on the path can read and change
    /// the traffic.
    InsecureNoVerify,
}

impl fmt::Debug for ServerAuth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAuth::Verify(ca) => write!(f, "Verify(<{} bytes of CA PEM>)", ca.len()),
            ServerAuth::InsecureNoVerify => f.write_str("InsecureNoVerify"),
        }
    }
}

/// A TLS client configuration for an SSL context. `Debug` never shows the client key.
#[derive(Clone, Copy)]
pub struct TlsConfig<'c> {
    /// Server authentication.
    pub server: ServerAuth<'c>,
    /// Client certificate (PEM), for mutual TLS.
    pub client_cert: Option<&'c [u8]>,
    /// Client private key (PEM), for mutual TLS.
    pub client_key: Option<&'c [u8]>,
    /// Send Server Name Indication (cloud endpoints need it). Default on.
    pub sni: bool,
    /// Allowed versions. Default [`TlsVersion::Any`].
    pub version: TlsVersion,
    /// Skip the certificate validity-date check (the module's clock is often unset after
    /// boot). Default on.
    pub ignore_local_time: bool,
    /// Handshake timeout in seconds (10–300). Default 60.
    pub negotiate_timeout_s: u16,
}

impl<'c> TlsConfig<'c> {
    /// Verify the server against `ca_pem`; no client certificate.
    pub fn new(ca_pem: &'c [u8]) -> Self {
        Self {
            server: ServerAuth::Verify(ca_pem),
            client_cert: None,
            client_key: None,
            sni: true,
            version: TlsVersion::Any,
            ignore_local_time: true,
            negotiate_timeout_s: 60,
        }
    }

    /// Adds a client certificate and key (PEM) for mutual TLS.
    pub fn with_client_identity(mut self, cert_pem: &'c [u8], key_pem: &'c [u8]) -> Self {
        self.client_cert = Some(cert_pem);
        self.client_key = Some(key_pem);
        self
    }

    /// Checks the PEM inputs without a modem ([`Modem::configure_tls`] does this before it
    /// uploads anything): the CA and the client certificate must be `CERTIFICATE` blocks, the
    /// client key one unencrypted private key (`PRIVATE KEY`, `EC PRIVATE KEY` or
    /// `RSA PRIVATE KEY`), and each must decode ([`crate::pem::check`]).
    ///
    /// Errors, checked in this order: [`Error::Pem`] for the CA, the client certificate, then
    /// the key; [`Error::InvalidArgument`] for a certificate without its key or the reverse.
    pub fn validate(&self) -> Result<(), Error> {
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(Error::InvalidArgument);
        }
        if let ServerAuth::Verify(ca) = self.server {
            pem::check(ca, PemKind::Certificate)?;
        }
        if let Some(cert) = self.client_cert {
            pem::check(cert, PemKind::Certificate)?;
        }
        if let Some(key) = self.client_key {
            pem::check(key, PemKind::PrivateKey)?;
        }
        Ok(())
    }
}

impl fmt::Debug for TlsConfig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field(
                "server",
                &match self.server {
                    ServerAuth::Verify(ca) => ("verify", ca.len()),
                    ServerAuth::InsecureNoVerify => ("INSECURE no verification", 0),
                },
            )
            .field("client_cert", &self.client_cert.map(<[u8]>::len))
            .field("client_key", &self.client_key.map(|_| "***"))
            .field("sni", &self.sni)
            .field("version", &self.version)
            .field("ignore_local_time", &self.ignore_local_time)
            .field("negotiate_timeout_s", &self.negotiate_timeout_s)
            .finish()
    }
}

/// Writes `<prefix><base><ctx>.pem` (e.g. `UFS:qca1.pem`).
fn file_name(prefix: &str, base: &str, ctx: u8) -> Result<heapless::String<24>, Error> {
    let mut s = heapless::String::new();
    s.push_str(prefix).map_err(|_| Error::Overflow)?;
    s.push_str(base).map_err(|_| Error::Overflow)?;
    s.push(char::from(b'0' + ctx))
        .map_err(|_| Error::Overflow)?;
    s.push_str(".pem").map_err(|_| Error::Overflow)?;
    Ok(s)
}

impl<'a> Modem<'a> {
    /// The drive prefix file names need on this model (`UFS:` on EC2x/EC600N, none on BG9x).
    pub async fn file_prefix(&self) -> &'static str {
        if self.params().await.quirks.ufs_prefix {
            "UFS:"
        } else {
            ""
        }
    }

    /// Uploads `data` as file `name` (replacing a file of that name) and checks the module's
    /// checksum of what it received (`AT+QFDEL`, `AT+QFUPL`).
    pub async fn upload_file(&self, name: &str, data: &[u8]) -> Result<(), Error> {
        let size = u32::try_from(data.len()).map_err(|_| Error::Overflow)?;
        match self.send(&Delete { name }).await {
            // Not there (405), or refused for a reason the upload will report more precisely
            // (e.g. 407 "file already exists").
            Ok(()) | Err(Error::Cme(_)) | Err(Error::Error) => {}
            Err(e) => return Err(e),
        }
        // Give slow links time: the modem gives up after this many idle seconds.
        let timeout_s = 10;
        let mut channel = self.channel().await;
        channel
            .send(&Upload {
                name,
                size,
                timeout_s,
            })
            .await?;
        channel
            .send_data(
                &UploadData {
                    size,
                    checksum: checksum(data),
                    timeout_s,
                },
                data,
            )
            .await
    }

    /// Deletes file `name` (`AT+QFDEL`).
    pub async fn delete_file(&self, name: &str) -> Result<(), Error> {
        self.send(&Delete { name }).await
    }

    /// Deletes the CA, client certificate and key files [`Modem::configure_tls`] uploaded for
    /// SSL context `ssl_ctx` (0–5) from the modem's file system (`AT+QFDEL`), e.g. before the
    /// device is decommissioned or handed on. A file that is not there is not an error. The SSL
    /// context keeps naming the files: call `configure_tls` again before the next TLS socket.
    pub async fn delete_tls_files(&self, ssl_ctx: u8) -> Result<(), Error> {
        if ssl_ctx > 5 {
            return Err(Error::InvalidArgument);
        }
        let prefix = self.file_prefix().await;
        for base in ["qca", "qcrt", "qkey"] {
            let name = file_name(prefix, base, ssl_ctx)?;
            match self.send(&Delete { name: &name }).await {
                Ok(()) | Err(Error::Cme(crate::CmeError::FILE_NOT_FOUND)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Lists files matching `pattern` (`AT+QFLST`; e.g. `"*"`, or `"UFS:*"` on EC2x).
    pub async fn list_files(&self, pattern: &str) -> Result<heapless::Vec<FileEntry, 16>, Error> {
        self.send(&List { pattern }).await
    }

    /// Uploads the certificates and key of `config` and sets up SSL context `ssl_ctx` (0–5) for
    /// [`Remote::Tls`](super::Remote::Tls) sockets: files `qca<ctx>.pem`, `qcrt<ctx>.pem`,
    /// `qkey<ctx>.pem` (with the model's drive prefix), security level 1 (verify the server) or
    /// 2 (mutual TLS), all cipher suites, SNI, and the options in `config`.
    ///
    /// The PEM inputs are checked first ([`TlsConfig::validate`]): a file that does not parse,
    /// or holds the wrong kind of object, is refused with [`Error::Pem`] before anything is
    /// uploaded (instead of a `Tls(566)` at the first connection).
    pub async fn configure_tls(&self, ssl_ctx: u8, config: &TlsConfig<'_>) -> Result<(), Error> {
        if ssl_ctx > 5 || !(10..=300).contains(&config.negotiate_timeout_s) {
            return Err(Error::InvalidArgument);
        }
        config.validate()?;
        let prefix = self.file_prefix().await;
        let ca = file_name(prefix, "qca", ssl_ctx)?;
        let cert = file_name(prefix, "qcrt", ssl_ctx)?;
        let key = file_name(prefix, "qkey", ssl_ctx)?;
        let set = |option| SslConfigure {
            ctx: ssl_ctx,
            option,
        };
        let seclevel = match (config.server, config.client_cert) {
            (ServerAuth::InsecureNoVerify, _) => 0,
            (ServerAuth::Verify(_), None) => 1,
            (ServerAuth::Verify(_), Some(_)) => 2,
        };
        if let ServerAuth::Verify(pem) = config.server {
            self.upload_file(&ca, pem).await?;
            self.send(&set(SslOption::CaCert(&ca))).await?;
        }
        if let (Some(c), Some(k)) = (config.client_cert, config.client_key) {
            self.upload_file(&cert, c).await?;
            self.upload_file(&key, k).await?;
            self.send(&set(SslOption::ClientCert(&cert))).await?;
            self.send(&set(SslOption::ClientKey(&key))).await?;
        }
        let version = match config.version {
            TlsVersion::Tls12 => 3,
            TlsVersion::Any => 4,
        };
        self.send(&set(SslOption::Version(version))).await?;
        self.send(&set(SslOption::CipherSuite(0xffff))).await?;
        self.send(&set(SslOption::SecLevel(seclevel))).await?;
        self.send(&set(SslOption::IgnoreLocalTime(config.ignore_local_time)))
            .await?;
        self.send(&set(SslOption::NegotiateTime(config.negotiate_timeout_s)))
            .await?;
        // Not every firmware knows "sni" (BG96 V1.0 does not): only an explicit refusal to turn
        // it on matters, and then the handshake itself will tell.
        if let Err(e) = self.send(&set(SslOption::Sni(config.sni))).await {
            debug!("sni option not accepted");
            if !matches!(e, Error::Error | Error::Cme(_)) {
                return Err(e);
            }
        }
        Ok(())
    }
}
