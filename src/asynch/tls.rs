//! Files in the modem and TLS contexts: upload certificates and keys (`AT+QFUPL`), then
//! configure an SSL context (`AT+QSSLCFG`) that [`Remote::Tls`](super::Remote::Tls) sockets use.

use core::fmt;

use super::Modem;
use super::modem::send;
use crate::Error;
use crate::at::expect::Expect;
use crate::at::response::Response;
use crate::command::file::{Delete, FileEntry, List, Upload, UploadData, checksum, listed_file};
use crate::command::general::{Concat, LinePart, Setting};
use crate::command::socket::{SslConfigure, SslOption};
use crate::command::{CmdWriter, Command};
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

/// The file kinds [`Modem::configure_tls`] stores, by name stem.
const STEMS: [&str; 3] = ["qca", "qcrt", "qkey"];

/// The longest name [`tls_file_name`] makes (`UFS:qkey5_0123abcd.pem`).
const NAME_LEN: usize = 24;

/// CRC-32 (IEEE 802.3, the one of zip and `crc32(1)`) of `data`.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// The name under which [`Modem::configure_tls`] stores `data` as file kind `stem` (`qca`,
/// `qcrt`, `qkey`) of SSL context `ctx`: `<prefix><stem><ctx>_<crc32 of data, 8 hex>.pem`, e.g.
/// `qca1_5d3c0a1f.pem` (`UFS:qca1_5d3c0a1f.pem` on EC2x).
fn tls_file_name(
    prefix: &str,
    stem: &str,
    ctx: u8,
    data: &[u8],
) -> Result<heapless::String<NAME_LEN>, Error> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if ctx > 9 {
        return Err(Error::InvalidArgument);
    }
    let digest = crc32(data);
    // The context's digit, then `_<8 hex digits>.pem`: ASCII, written in place.
    let mut tail = *b"0_00000000.pem";
    let [digit, _, digits @ .., _, _, _, _] = &mut tail;
    *digit = b'0'.wrapping_add(ctx);
    let mut shift = 32u32;
    for c in digits.iter_mut() {
        shift = shift.wrapping_sub(4);
        // A nibble: always in the table.
        *c = HEX
            .get((digest.wrapping_shr(shift) & 0xf) as usize)
            .copied()
            .unwrap_or(b'0');
    }
    // Checked once: the three pieces then fit.
    if prefix
        .len()
        .saturating_add(stem.len())
        .saturating_add(tail.len())
        > NAME_LEN
    {
        return Err(Error::Overflow);
    }
    let mut s = heapless::String::new();
    // Through the string's view: the copy code shared with the other strings.
    let v = s.as_mut_view();
    let _ = v.push_str(prefix);
    let _ = v.push_str(stem);
    // The tail is ASCII.
    let _ = v.push_str(core::str::from_utf8(&tail).unwrap_or_default());
    Ok(s)
}

/// Strips the drive prefix the listing may show (`UFS:`).
fn bare(name: &str) -> &str {
    name.strip_prefix("UFS:").unwrap_or(name)
}

/// Whether `name` (bare) is a file [`Modem::configure_tls`] stored for context `ctx`, now
/// (`qca1_<hex>.pem`) or before file names carried a digest (`qca1.pem`).
fn is_ours(name: &str, ctx: u8) -> bool {
    if ctx > 9 {
        return false;
    }
    let digit = [b'0'.wrapping_add(ctx)];
    STEMS.iter().any(|stem| {
        name.as_bytes()
            .strip_prefix(stem.as_bytes())
            .and_then(|r| r.strip_prefix(&digit))
            .is_some_and(|r| r == b".pem" || (r.starts_with(b"_") && r.ends_with(b".pem")))
    })
}

/// `AT+QFLST="<pattern>"`, read for the TLS files of one context: which of the wanted files
/// are there with the right size, and which other files of the context are there (stale: an
/// older certificate, a truncated upload).
struct TlsListing<'n> {
    pattern: &'n str,
    ctx: u8,
    /// Bare name and size of each wanted file.
    wanted: [Option<(&'n str, u32)>; 3],
}

/// Stale files one listing reports (see [`Found::stale`]).
const STALE_MAX: usize = 3;

/// What [`TlsListing`] found.
struct Found {
    present: [bool; 3],
    /// Bare names of the context's other files (more are left for the next call). Three: the
    /// files of one earlier configuration; `configure_tls` keeps this list across its deletes
    /// (28 bytes a name, in every future that awaits it).
    stale: heapless::Vec<heapless::String<NAME_LEN>, STALE_MAX>,
}

impl Found {
    /// No file found.
    const NOTHING: Found = Found {
        present: [false; 3],
        stale: heapless::Vec::new(),
    };
}

impl Command for TlsListing<'_> {
    type Response = Found;
    const EXPECT: Expect = Expect::prefixed(b"+QFLST:");
    const TIMEOUT_MS: u32 = 5_000;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        List {
            pattern: self.pattern,
        }
        .write(w)
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Found, Error> {
        let mut found = Found::NOTHING;
        self.list_into(&mut found, resp)?;
        Ok(found)
    }
    fn fold(&self, acc: &mut Option<Result<Found, Error>>, line: &Response<'_>) {
        // Folded in place (a `Found` per line, merged and dropped, cost more code).
        if acc.is_none() {
            *acc = Some(Ok(Found::NOTHING));
        }
        let Some(Ok(found)) = acc else {
            return;
        };
        if let Err(e) = self.list_into(found, line) {
            *acc = Some(Err(e));
        }
    }
}

impl TlsListing<'_> {
    /// Adds the files the `+QFLST:` lines of `resp` list to `found`; a malformed line is an
    /// error (the lines before it are in `found`).
    fn list_into(&self, found: &mut Found, resp: &Response<'_>) -> Result<(), Error> {
        for line in resp.prefixed(b"+QFLST:") {
            let (name, size) = listed_file(line).ok_or(Error::Parse)?;
            let Ok(name) = core::str::from_utf8(name) else {
                continue;
            };
            let name = bare(name);
            if !is_ours(name, self.ctx) {
                continue;
            }
            let wanted = self
                .wanted
                .iter()
                .position(|w| matches!(w, Some((n, s)) if *n == name && *s == size));
            match wanted {
                Some(i) => {
                    if let Some(present) = found.present.get_mut(i) {
                        *present = true;
                    }
                }
                None => {
                    if let Ok(n) = heapless::String::try_from(name) {
                        let _ = found.stale.push(n);
                    }
                }
            }
        }
        Ok(())
    }
}

impl<'a> Modem<'a> {
    /// The drive prefix file names need on this model (`UFS:` on EC2x/EC600N, none on BG9x).
    pub async fn file_prefix(&self) -> &'static str {
        self.drive_prefix()
    }

    /// [`Self::file_prefix`] for the flows (it awaits nothing; an await is a state of the
    /// flow's future).
    fn drive_prefix(&self) -> &'static str {
        if self.model().params().quirks.ufs_prefix {
            "UFS:"
        } else {
            ""
        }
    }

    /// Uploads `data` as file `name` (replacing a file of that name) and checks the module's
    /// checksum of what it received (`AT+QFDEL`, `AT+QFUPL`).
    pub async fn upload_file(&self, name: &str, data: &[u8]) -> Result<(), Error> {
        self.upload(name, data, true).await
    }

    /// Uploads `data` as file `name` (`AT+QFUPL`). `replace`: deletes a file of that name
    /// first (`AT+QFDEL`; not there, or refused for a reason the upload will report more
    /// precisely, e.g. 407 "file already exists", is no error). Without it the file is not
    /// expected to exist; if it does after all (407), it is deleted and uploaded again.
    ///
    /// One loop with one await of each command, polled out of line (awaited from
    /// [`Self::upload_file`] and from the upload of each of the three TLS files); a plain `fn`
    /// returning an `async move` block: an `async fn` would keep its arguments twice in its
    /// future, which is part of [`Modem::configure_tls`]'s.
    fn upload<'u>(
        &'u self,
        name: &'u str,
        data: &'u [u8],
        replace: bool,
    ) -> super::outline::Outlined<impl core::future::Future<Output = Result<(), Error>> + 'u> {
        super::outline::Outlined(async move {
            let mut delete = replace;
            // The first delete may be refused; the one after a 407 may not.
            let mut first = true;
            loop {
                if delete {
                    match send!(self, Delete { name }) {
                        Ok(()) => {}
                        Err(Error::Cme(_) | Error::Error) if first => {}
                        Err(e) => return Err(e),
                    }
                }
                let size = u32::try_from(data.len()).map_err(|_| Error::Overflow)?;
                // Give slow links time: the modem gives up after this many idle seconds.
                let timeout_s = 10;
                let uploaded = {
                    let mut channel = self.channel().await;
                    match send!(
                        channel,
                        Upload {
                            name,
                            size,
                            timeout_s,
                        }
                    ) {
                        Ok(()) => {
                            let cmd = UploadData {
                                size,
                                checksum: checksum(data),
                                timeout_s,
                            };
                            channel.send_data(&cmd, data).await
                        }
                        Err(e) => Err(e),
                    }
                };
                match uploaded {
                    Err(Error::Cme(crate::CmeError(407))) if first => {
                        delete = true;
                        first = false;
                    }
                    other => return other,
                }
            }
        })
    }

    /// Deletes file `name` (`AT+QFDEL`).
    pub async fn delete_file(&self, name: &str) -> Result<(), Error> {
        send!(self, Delete { name })
    }

    /// The listing of the modem's files (one `AT+QFLST`; `prefix` is [`Modem::file_prefix`])
    /// that reads which TLS files of context `ctx` are there; its answer goes through
    /// [`Self::listed`].
    ///
    /// The command only: the flows await it themselves (`send!`), one future level less than
    /// a listing future of its own (measured: `docs/footprint.md`, "Flash: flows as data").
    fn tls_listing<'n>(
        prefix: &str,
        ctx: u8,
        wanted: [Option<(&'n str, u32)>; 3],
    ) -> TlsListing<'n> {
        TlsListing {
            pattern: if prefix.is_empty() { "*" } else { "UFS:*" },
            ctx,
            wanted,
        }
    }

    /// What a listing found: `+CME ERROR: 405` (nothing matches) is nothing found.
    fn listed(r: Result<Found, Error>) -> Result<Found, Error> {
        match r {
            Err(Error::Cme(crate::CmeError::FILE_NOT_FOUND)) => Ok(Found::NOTHING),
            other => other,
        }
    }

    /// Deletes the CA, client certificate and key files [`Modem::configure_tls`] uploaded for
    /// SSL context `ssl_ctx` (0–5) from the modem's file system (`AT+QFLST`, then `AT+QFDEL`
    /// for each), e.g. before the device is decommissioned or handed on. Files of the naming
    /// of earlier versions (`qca<ctx>.pem`…) go too. A file that is not there is not an error.
    /// The SSL context keeps naming the files: call `configure_tls` again before the next TLS
    /// socket.
    pub async fn delete_tls_files(&self, ssl_ctx: u8) -> Result<(), Error> {
        if ssl_ctx > 5 {
            return Err(Error::InvalidArgument);
        }
        let prefix = self.drive_prefix();
        // A listing names at most 3 files of the context; a few rounds clear any number a
        // context can have gathered (bounded, should a file refuse to go).
        for _ in 0..8 {
            let found = Self::listed(send!(self, Self::tls_listing(prefix, ssl_ctx, [None; 3])))?;
            let full = found.stale.is_full();
            self.delete_all(prefix, &found.stale).await?;
            if !full {
                break;
            }
        }
        Ok(())
    }

    ///
    /// A plain `fn` returning an `async move` block: an `async fn` would keep its arguments
    /// twice in its future, which is part of [`Modem::configure_tls`]'s.
    // Not an `async fn` on purpose (see above).
    #[allow(clippy::manual_async_fn)]
    fn delete_all<'d>(
        &'d self,
        prefix: &'d str,
        names: &'d [heapless::String<NAME_LEN>],
    ) -> impl core::future::Future<Output = Result<(), Error>> + 'd {
        async move {
            for name in names {
                // Checked once: both pieces then fit.
                if prefix.len().saturating_add(name.len()) > NAME_LEN + 4 {
                    return Err(Error::Overflow);
                }
                let mut full: heapless::String<{ NAME_LEN + 4 }> = heapless::String::new();
                let v = full.as_mut_view();
                let _ = v.push_str(prefix);
                let _ = v.push_str(name);
                match send!(self, Delete { name: &full }) {
                    Ok(()) | Err(Error::Cme(crate::CmeError::FILE_NOT_FOUND)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    }

    /// Lists files matching `pattern` (`AT+QFLST`; e.g. `"*"`, or `"UFS:*"` on EC2x).
    pub async fn list_files(&self, pattern: &str) -> Result<heapless::Vec<FileEntry, 16>, Error> {
        send!(self, List { pattern })
    }

    /// Makes sure the certificates and key of `config` are on the modem and sets up SSL
    /// context `ssl_ctx` (0–5) for [`Remote::Tls`](super::Remote::Tls) sockets: security level
    /// 1 (verify the server) or 2 (mutual TLS), all cipher suites, SNI, and the options in
    /// `config`.
    ///
    /// Files are named after their content: `qca<ctx>_<crc>.pem`, `qcrt<ctx>_<crc>.pem`,
    /// `qkey<ctx>_<crc>.pem` (with the model's drive prefix), `<crc>` being the CRC-32 of the
    /// PEM in 8 hex digits. One `AT+QFLST` shows which are there with the right size; only the
    /// missing ones are uploaded (`AT+QFUPL`), and the context's other files (an older
    /// certificate, names of earlier versions) are deleted (`AT+QFDEL`). With the files in
    /// place (every boot after the first) no file is written: no upload time, no flash wear.
    ///
    /// The SSL context itself does not survive a reboot, so its options are set at every boot,
    /// in one command line (`AT+QSSLCFG=…;+QSSLCFG=…`); `negotiatetime` at its documented
    /// default (300) is left out while the context is untouched since a boot the driver saw.
    ///
    /// The PEM inputs are checked first ([`TlsConfig::validate`]): a file that does not parse,
    /// or holds the wrong kind of object, is refused with [`Error::Pem`] before anything is
    /// uploaded (instead of a `Tls(566)` at the first connection).
    pub async fn configure_tls(&self, ssl_ctx: u8, config: &TlsConfig<'_>) -> Result<(), Error> {
        self.configure_tls_flow(ssl_ctx, config).await
    }

    /// [`Self::configure_tls`] as a plain `fn` returning an `async move` block, for the MQTT
    /// client: an `async fn` would keep its arguments twice in its future, which is part of
    /// `Mqtt::connect`'s.
    // Not an `async fn` on purpose (see above).
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn configure_tls_flow<'c>(
        &'c self,
        ssl_ctx: u8,
        config: &'c TlsConfig<'_>,
    ) -> impl core::future::Future<Output = Result<(), Error>> + 'c {
        async move {
            if ssl_ctx > 5 || !(10..=300).contains(&config.negotiate_timeout_s) {
                return Err(Error::InvalidArgument);
            }
            config.validate()?;
            let prefix = self.drive_prefix();
            let ca = match config.server {
                ServerAuth::Verify(pem) => Some(pem),
                ServerAuth::InsecureNoVerify => None,
            };
            let mut names: [heapless::String<NAME_LEN>; 3] = Default::default();
            {
                // In a scope of its own: not kept across the context's configuration below
                // (a value that lives across two awaits has its own room in the future, beside
                // both): 24 B less in every future that awaits this one.
                let data: [Option<&[u8]>; 3] = [ca, config.client_cert, config.client_key];
                for ((name, stem), d) in names.iter_mut().zip(STEMS).zip(data) {
                    if let Some(d) = d {
                        *name = tls_file_name(prefix, stem, ssl_ctx, d)?;
                    }
                }
                self.ensure_files(prefix, ssl_ctx, &names, &data).await?;
            }
            let fresh = self.core.touch_ssl(ssl_ctx);
            self.configure_ssl_context(ssl_ctx, config, &names, fresh)
                .await
        }
    }

    /// Uploads the files of `data` that the modem lacks, and deletes the context's others.
    ///
    /// A plain `fn` returning an `async move` block, as [`Self::delete_all`].
    // Not an `async fn` on purpose (see above).
    #[allow(clippy::manual_async_fn)]
    fn ensure_files<'e>(
        &'e self,
        prefix: &'e str,
        ctx: u8,
        names: &'e [heapless::String<NAME_LEN>; 3],
        data: &'e [Option<&'e [u8]>; 3],
    ) -> impl core::future::Future<Output = Result<(), Error>> + 'e {
        async move {
            if data.iter().all(Option::is_none) {
                // Nothing to store (no verification, no client identity): the file system is
                // left alone ([`Modem::delete_tls_files`] clears it).
                return Ok(());
            }
            let mut wanted: [Option<(&str, u32)>; 3] = [None; 3];
            for ((w, name), d) in wanted.iter_mut().zip(names).zip(data) {
                if let Some(d) = d {
                    let size = u32::try_from(d.len()).map_err(|_| Error::Overflow)?;
                    *w = Some((bare(name), size));
                }
            }
            // No await inside the match, and the listing is not kept across the uploads: a value
            // held across several awaits gets its own room in this future (and in every future
            // that awaits it), which it then has twice (measured with `scripts/footprint.sh`).
            let (present, listed) = {
                let (found, listed) =
                    match Self::listed(send!(self, Self::tls_listing(prefix, ctx, wanted))) {
                        Ok(found) => (found, true),
                        Err(
                            e @ (Error::Timeout | Error::Rebooted | Error::Write | Error::Read),
                        ) => {
                            return Err(e);
                        }
                        // A listing the driver cannot read (too many files for the buffer, say):
                        // upload everything, replacing what may be there.
                        Err(_) => {
                            debug!("file listing not readable: uploading");
                            (Found::NOTHING, false)
                        }
                    };
                // Stale files first: the flash then has room for the new ones.
                self.delete_all(prefix, &found.stale).await?;
                (found.present, listed)
            };
            for ((name, d), present) in names.iter().zip(data).zip(present) {
                match d {
                    Some(d) if !listed || !present => self.upload(name, d, !listed).await?,
                    _ => {}
                }
            }
            Ok(())
        }
    }

    /// Sets the options of SSL context `ctx` in one command line; `fresh`: untouched since the
    /// boot, so options at their defaults can be left out.
    ///
    /// A plain `fn` returning an `async move` block, as [`Self::delete_all`]; the option
    /// builders are scoped so that they are not kept across the sends.
    // Not an `async fn` on purpose (see above).
    #[allow(clippy::manual_async_fn)]
    fn configure_ssl_context<'s>(
        &'s self,
        ctx: u8,
        config: &'s TlsConfig<'_>,
        names: &'s [heapless::String<NAME_LEN>; 3],
        fresh: bool,
    ) -> impl core::future::Future<Output = Result<(), Error>> + 's {
        async move {
            let seclevel = match (config.server, config.client_cert) {
                (ServerAuth::InsecureNoVerify, _) => 0,
                (ServerAuth::Verify(_), None) => 1,
                (ServerAuth::Verify(_), Some(_)) => 2,
            };
            let version = match config.version {
                TlsVersion::Tls12 => 3,
                TlsVersion::Any => 4,
            };
            let set = |option| SslConfigure { ctx, option };
            let client = !names[1].is_empty() && !names[2].is_empty();
            // In line order; `None`: left out.
            let options = [
                (!names[0].is_empty()).then(|| set(SslOption::CaCert(&names[0]))),
                client.then(|| set(SslOption::ClientCert(&names[1]))),
                client.then(|| set(SslOption::ClientKey(&names[2]))),
                // The defaults of these are not documented for every family
                // (`ignorelocaltime` 1 is only seen on the EG800K): they are set, at no extra
                // round trip in this line.
                Some(set(SslOption::SecLevel(seclevel))),
                Some(set(SslOption::Version(version))),
                Some(set(SslOption::CipherSuite(0xffff))),
                Some(set(SslOption::IgnoreLocalTime(config.ignore_local_time))),
                // 300 s is the documented default (BG96 SSL manual).
                (!fresh || config.negotiate_timeout_s != 300)
                    .then(|| set(SslOption::NegotiateTime(config.negotiate_timeout_s))),
            ];
            // The "sni" default differs between models (0 on LTE-Standard Cat-1 modules), so it
            // is always set; last, because not every firmware knows it (BG96 V1.0 does not).
            let sni = set(SslOption::Sni(config.sni));
            let mut parts: heapless::Vec<&dyn LinePart, 9> = heapless::Vec::new();
            for o in options.iter().flatten() {
                let _ = parts.push(o);
            }
            let _ = parts.push(&sni);
            let with_sni = send!(self, Concat { parts: &parts });
            let Err(e) = with_sni else { return Ok(()) };
            if !matches!(e, Error::Error | Error::Cme(_)) {
                return Err(e);
            }
            // Refused: without "sni", then (to find the one that fails) one by one. The SNI
            // option is then sent on its own line in any case: a refusal of the combined line
            // may have been a transient error, and AWS IoT (among others) needs SNI.
            parts.pop();
            let rest_ok = !parts.is_empty() && send!(self, Concat { parts: &parts }).is_ok();
            if !rest_ok {
                // Not `.flatten()`: its iterator, kept across the sends, is larger.
                #[allow(clippy::manual_flatten)]
                for o in &options {
                    if let Some(o) = o {
                        send!(self, Setting(o))?;
                    }
                }
            }
            // Only an explicit refusal to turn SNI on matters, and then the handshake will tell.
            if let Err(e) = send!(self, Setting(&sni)) {
                debug!("sni option not accepted");
                if !matches!(e, Error::Error | Error::Cme(_)) {
                    return Err(e);
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_vectors() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn names() {
        let n = tls_file_name("UFS:", "qkey", 5, b"123456789").unwrap();
        assert_eq!(n.as_str(), "UFS:qkey5_cbf43926.pem");
        assert_eq!(
            tls_file_name("", "qca", 0, b"").unwrap().as_str(),
            "qca0_00000000.pem"
        );
        assert_eq!(
            tls_file_name("", "qca", 10, b""),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            tls_file_name("UFS:long/", "qkey", 5, b""),
            Err(Error::Overflow)
        );
        assert!(is_ours("qkey5_cbf43926.pem", 5));
        assert!(is_ours("qca1.pem", 1));
        assert!(!is_ours("qca1.pem", 2));
        assert!(!is_ours("qca12.pem", 1));
        assert!(!is_ours("qca1_x.txt", 1));
        assert!(!is_ours("rootCA.pem", 1));
        assert_eq!(bare("UFS:qca1.pem"), "qca1.pem");
    }

    #[test]
    fn listing_folds_its_lines() {
        let cmd = TlsListing {
            pattern: "UFS:*",
            ctx: 1,
            wanted: [
                Some(("qca1_00000001.pem", 100)),
                Some(("qcrt1_00000002.pem", 99)),
                None,
            ],
        };
        let wire = b"\r\n+QFLST: \"UFS:qca1_00000001.pem\",100\r\n\
            +QFLST: \"UFS:qcrt1_00000002.pem\",50\r\n\
            +QFLST: \"UFS:other.txt\",5\r\n\
            +QFLST: \"UFS:qca1.pem\",10\r\n\
            +QFLST: \"UFS:qkey1_dead.pem\",7\r\n\
            +QFLST: \"UFS:qkey1.pem\",8\r\n\r\nOK\r\n";
        for chunk in [1, 3, 64] {
            let found = crate::command::run_wire(&cmd, wire, chunk).unwrap();
            // The wanted CA with its size; the certificate's size differs, so it is stale.
            assert_eq!(found.present, [true, false, false]);
            // Not ours: skipped; stale beyond three: left for the next call.
            let stale: heapless::Vec<&str, 3> = found.stale.iter().map(|s| s.as_str()).collect();
            assert_eq!(
                stale.as_slice(),
                ["qcrt1_00000002.pem", "qca1.pem", "qkey1_dead.pem"]
            );
        }
        // A malformed line is an error, also after good ones.
        let bad = b"\r\n+QFLST: \"UFS:qca1_00000001.pem\",100\r\n+QFLST: 12\r\n\r\nOK\r\n";
        assert!(matches!(
            crate::command::run_wire(&cmd, bad, 64),
            Err(Error::Parse)
        ));
        // Nothing listed: nothing found.
        let none = crate::command::run_wire(&cmd, b"\r\nOK\r\n", 64).unwrap();
        assert_eq!(none.present, [false; 3]);
        assert!(none.stale.is_empty());
    }
}
