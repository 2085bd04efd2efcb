//! Aliyun IoT OTA (features `aliyun` + `ota`): the messages of the platform's OTA topics, and
//! the download of the image over HTTPS into the update partition.
//!
//! # The protocol (Aliyun's "OTA 升级的 Topic 和数据格式", help.aliyun.com document 89307)
//!
//! - **Version** (device → cloud) on `/ota/device/inform/${productKey}/${deviceName}`:
//!   `{"id":"<n>","params":{"version":"<v>","module":"<m>"}}` ([`AliyunOta::inform`]; `module`
//!   left out for the default module). This is how the platform learns that an upgrade
//!   succeeded: the new image reports its new version after it booted and confirmed itself.
//! - **Upgrade** (cloud → device) on `/ota/device/upgrade/${productKey}/${deviceName}`:
//!   `{"code":"1000","data":{"size":…,"version":"…","url":"https://…","md5":"…","sign":"…",
//!   "signMethod":"MD5"|"Md5"|"SHA256","module":"…","extData":{…}},"id":…,"message":"success"}`
//!   ([`AliyunOta::parse_upgrade`] into an owned [`Upgrade`]). The document spells the method
//!   `MD5` in its reference and `Md5` in its worked example (document "overview-10" of the OTA
//!   use cases), so the method is compared without case. An upgrade delivered over MQTT streams
//!   (`"dProtocol":"mqtt"`, no `url`) is refused ([`OtaMessageError::Unsupported`]).
//! - **Progress** (device → cloud) on `/ota/device/progress/${productKey}/${deviceName}`:
//!   `{"id":"<n>","params":{"step":"<s>","desc":"<d>","module":"<m>"}}` with `step` `"1"` …
//!   `"100"`, or `"-1"` upgrade failed, `"-2"` download failed, `"-3"` verification failed,
//!   `"-4"` flash write failed ([`Step`], [`AliyunOta::progress`]).
//!
//! # Signature policy
//!
//! Aliyun's `sign` is a digest (MD5 or SHA-256 of the file), not a signature: anyone who can
//! change the file on its way (or in the bucket) can change the digest with it. This crate
//! marks an image for the swap only after an **ECDSA P-256 signature** over the image's
//! SHA-256 (ASN.1 DER, base64: the form AWS code signing produces) has been verified against
//! the key the firmware was built with, **and** the platform's digest matched. The signature
//! travels in the upgrade message's `extData`: Aliyun delivers the *batch tags* of an upgrade
//! batch (`Tag.N.Key` / `Tag.N.Value` of `CreateOTAStaticUpgradeJob`, "批次标签将在向设备推送
//! 升级通知时下发给设备") as `extData` key/value pairs. Tag keys may hold only letters, digits
//! and `.` (1–30 characters), values up to 1 024 characters, so the key is
//! [`SIGNATURE_TAG`] (`sig.sha256.ecdsa`); the AWS spelling `sig-sha256-ecdsa` is accepted too,
//! for packages pushed by other means. An upgrade without it is refused with
//! [`OtaMessageError::NoSignature`] and progress `-3`, before anything is downloaded.
//!
//! # On the device
//!
//! 1. After every boot, [`Updater::boot_status`]: on a trial boot run the self-test (the
//!    platform is reachable), then [`Updater::confirm`]; after
//!    [`BootStatus::RolledBack`](crate::ota::BootStatus) publish [`Step::UpgradeFailed`]
//!    (`-1`), then [`Updater::clear`].
//! 2. Publish [`AliyunOta::inform`] with the running version; subscribe to
//!    [`AliyunOta::upgrade_topic`].
//! 3. On an upgrade message, [`AliyunOta::parse_upgrade`]; a refusal is published with
//!    [`AliyunOtaError::step`] (`-3` for a missing signature).
//! 4. [`AliyunOta::download`] (progress through its `report` callback, typically into an
//!    [`Outbox`](crate::mqtt::Outbox)), then reset: embassy-boot swaps, and step 1 runs on the
//!    new image, which reports the new version.
//!
//! `tests/ota_aliyun.rs` runs this flow against the Aliyun stand-in with every fault of
//! issue 14; `docs/ota.md` has the guide and the measured UART cost.

use core::fmt::{self, Write as _};

use embassy_time::Duration;
use embedded_storage_async::nor_flash::NorFlash;
use serde::{Deserialize, Serialize};

use super::{Device, Topic};
use crate::asynch::Modem;
use crate::ota::http::{HttpError, HttpsSource, Url};
use crate::ota::{Checks, CodeSigningKey, Digest, ImageSpec, OtaError, SignatureCheck, Updater};

/// The `extData` key (an upgrade batch tag) that carries the image's signature.
pub const SIGNATURE_TAG: &str = "sig.sha256.ecdsa";

/// Longest download URL kept (a signed OSS URL with an STS token is 300–700 bytes).
pub const URL_MAX: usize = 1024;

/// Longest version string (`DestVersion` of `CreateOTAFirmware`: 1–64 characters).
pub const VERSION_MAX: usize = 64;

/// Longest module name kept.
pub const MODULE_MAX: usize = 64;

/// Longest DER ECDSA P-256 signature (two 33-byte integers and their headers).
pub const SIGNATURE_MAX: usize = 72;

/// Why an OTA message was refused. Holds no secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OtaMessageError {
    /// Not the JSON the platform documents (missing field, wrong type, bad hex or base64).
    Malformed,
    /// `code` is not `"1000"`: the platform's error code, if numeric.
    Code(u32),
    /// A field is longer than its bound ([`URL_MAX`], [`VERSION_MAX`], [`MODULE_MAX`]).
    TooLong,
    /// A delivery this crate does not do (MQTT streams, a method other than MD5 / SHA256).
    Unsupported,
    /// No signature in `extData` (see the module documentation): refused.
    NoSignature,
    /// The caller's output buffer is too small for the message.
    BufferTooSmall,
}

impl fmt::Display for OtaMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OtaMessageError::Malformed => f.write_str("malformed OTA message"),
            OtaMessageError::Code(c) => write!(f, "OTA upgrade message with code {c}"),
            OtaMessageError::TooLong => f.write_str("OTA message field too long"),
            OtaMessageError::Unsupported => f.write_str("OTA delivery not supported"),
            OtaMessageError::NoSignature => f.write_str("OTA package carries no signature"),
            OtaMessageError::BufferTooSmall => f.write_str("buffer too small for the OTA message"),
        }
    }
}

impl core::error::Error for OtaMessageError {}

/// The digest the platform gives with the package (`sign` with `signMethod`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PackageDigest {
    /// MD5 of the file.
    Md5([u8; 16]),
    /// SHA-256 of the file.
    Sha256([u8; 32]),
}

impl fmt::Debug for PackageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, bytes): (&str, &[u8]) = match self {
            PackageDigest::Md5(d) => ("Md5", d),
            PackageDigest::Sha256(d) => ("Sha256", d),
        };
        f.write_str(name)?;
        f.write_char('(')?;
        for b in bytes {
            write!(f, "{b:02x}")?;
        }
        f.write_char(')')
    }
}

/// An upgrade the platform pushed, owned (it outlives the MQTT message). `Debug` shows the
/// URL's host only: the query of a signed OSS URL is a bearer credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The file's size in bytes.
    pub size: u32,
    /// The version the package brings.
    pub version: heapless::String<VERSION_MAX>,
    /// The module (`default` when the message names none).
    pub module: heapless::String<MODULE_MAX>,
    /// The `https://` URL of the file.
    pub url: heapless::String<URL_MAX>,
    /// The platform's digest of the file.
    pub digest: PackageDigest,
    /// The ECDSA P-256 signature (DER) over the file's SHA-256, from `extData`.
    pub signature: heapless::Vec<u8, SIGNATURE_MAX>,
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = crate::ota::http::Url::parse(&self.url)
            .map(|u| u.host)
            .unwrap_or("<invalid>");
        f.debug_struct("Upgrade")
            .field("size", &self.size)
            .field("version", &self.version.as_str())
            .field("module", &self.module.as_str())
            .field("host", &host)
            .field("digest", &self.digest)
            .field("signature_len", &self.signature.len())
            .finish()
    }
}

/// A progress step (`params.step` of the progress message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Step {
    /// Percent done, 1–100 (0 is sent as 1, more than 100 as 100).
    Percent(u8),
    /// `-1`: the upgrade failed (e.g. the new image did not confirm itself and was rolled back).
    UpgradeFailed,
    /// `-2`: the download failed.
    DownloadFailed,
    /// `-3`: verification failed (digest, signature, size).
    VerifyFailed,
    /// `-4`: writing the flash failed.
    FlashFailed,
}

impl Step {
    /// The value of `params.step`.
    pub fn value(self) -> i8 {
        match self {
            Step::Percent(p) => p.clamp(1, 100) as i8,
            Step::UpgradeFailed => -1,
            Step::DownloadFailed => -2,
            Step::VerifyFailed => -3,
            Step::FlashFailed => -4,
        }
    }
}

/// A message to publish: topic and payload (in the caller's buffer).
#[derive(Debug)]
pub struct OtaMessage<'b> {
    topic: Topic,
    payload: &'b [u8],
}

impl<'b> OtaMessage<'b> {
    /// The topic.
    pub fn topic(&self) -> &str {
        self.topic.as_str()
    }
    /// The payload (JSON).
    pub fn payload(&self) -> &'b [u8] {
        self.payload
    }
}

#[derive(Deserialize)]
struct ExtData<'a> {
    #[serde(rename = "sig.sha256.ecdsa", borrow)]
    tag: Option<&'a str>,
    #[serde(rename = "sig-sha256-ecdsa", borrow)]
    aws: Option<&'a str>,
}

#[derive(Deserialize)]
struct Data<'a> {
    size: u64,
    #[serde(borrow)]
    version: &'a str,
    #[serde(borrow)]
    url: Option<&'a str>,
    #[serde(borrow)]
    md5: Option<&'a str>,
    #[serde(borrow)]
    sign: Option<&'a str>,
    #[serde(rename = "signMethod", borrow)]
    sign_method: Option<&'a str>,
    #[serde(borrow)]
    module: Option<&'a str>,
    #[serde(rename = "extData", borrow)]
    ext_data: Option<ExtData<'a>>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    code: &'a str,
    #[serde(borrow)]
    data: Option<Data<'a>>,
}

#[derive(Serialize)]
struct InformParams<'a> {
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<&'a str>,
}

#[derive(Serialize)]
struct ProgressParams<'a> {
    step: &'a str,
    desc: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<&'a str>,
}

#[derive(Serialize)]
struct Request<'a, P> {
    id: &'a str,
    params: P,
}

fn hex_nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(c.wrapping_sub(b'a').wrapping_add(10)),
        b'A'..=b'F' => Some(c.wrapping_sub(b'A').wrapping_add(10)),
        _ => None,
    }
}

fn hex<const N: usize>(s: &str) -> Result<[u8; N], OtaMessageError> {
    let mut out = [0u8; N];
    let b = s.as_bytes();
    if b.len() != N.saturating_mul(2) {
        return Err(OtaMessageError::Malformed);
    }
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [h, l] => (hex_nibble(*h), hex_nibble(*l)),
            _ => (None, None),
        };
        *o = hi
            .zip(lo)
            .map(|(h, l)| (h << 4) | l)
            .ok_or(OtaMessageError::Malformed)?;
    }
    Ok(out)
}

fn owned<const N: usize>(s: &str) -> Result<heapless::String<N>, OtaMessageError> {
    heapless::String::try_from(s).map_err(|_| OtaMessageError::TooLong)
}

/// The OTA topics and messages of one device.
#[derive(Debug)]
pub struct AliyunOta<'a> {
    device: Device<'a>,
    next_id: core::cell::Cell<u32>,
}

impl<'a> AliyunOta<'a> {
    /// The OTA side of `device`.
    pub fn new(device: Device<'a>) -> Self {
        AliyunOta {
            device,
            next_id: core::cell::Cell::new(1),
        }
    }

    fn topic(&self, kind: &str) -> Result<Topic, OtaMessageError> {
        let mut t = Topic::new();
        write!(
            t,
            "/ota/device/{kind}/{}/{}",
            self.device.product_key(),
            self.device.device_name()
        )
        .map_err(|_| OtaMessageError::TooLong)?;
        Ok(t)
    }

    /// `/ota/device/upgrade/${productKey}/${deviceName}`: subscribe to it.
    pub fn upgrade_topic(&self) -> Result<Topic, OtaMessageError> {
        self.topic("upgrade")
    }

    /// `/ota/device/inform/${productKey}/${deviceName}`.
    pub fn inform_topic(&self) -> Result<Topic, OtaMessageError> {
        self.topic("inform")
    }

    /// `/ota/device/progress/${productKey}/${deviceName}`.
    pub fn progress_topic(&self) -> Result<Topic, OtaMessageError> {
        self.topic("progress")
    }

    fn id(&self) -> heapless::String<10> {
        let n = self.next_id.get();
        self.next_id.set(n.wrapping_add(1));
        let mut s = heapless::String::new();
        let _ = write!(s, "{n}");
        s
    }

    /// The version report: `{"id":"<n>","params":{"version":"<v>"[,"module":"<m>"]}}`.
    pub fn inform<'b>(
        &self,
        version: &str,
        module: Option<&str>,
        out: &'b mut [u8],
    ) -> Result<OtaMessage<'b>, OtaMessageError> {
        let id = self.id();
        let req = Request {
            id: &id,
            params: InformParams { version, module },
        };
        let n =
            serde_json_core::to_slice(&req, out).map_err(|_| OtaMessageError::BufferTooSmall)?;
        let payload: &'b [u8] = out.get(..n).ok_or(OtaMessageError::BufferTooSmall)?;
        Ok(OtaMessage {
            topic: self.inform_topic()?,
            payload,
        })
    }

    /// A progress report: `{"id":"<n>","params":{"step":"<s>","desc":"<d>"[,"module":"<m>"]}}`.
    pub fn progress<'b>(
        &self,
        step: Step,
        desc: &str,
        module: Option<&str>,
        out: &'b mut [u8],
    ) -> Result<OtaMessage<'b>, OtaMessageError> {
        let id = self.id();
        let mut s: heapless::String<4> = heapless::String::new();
        write!(s, "{}", step.value()).map_err(|_| OtaMessageError::BufferTooSmall)?;
        let req = Request {
            id: &id,
            params: ProgressParams {
                step: &s,
                desc,
                module,
            },
        };
        let n =
            serde_json_core::to_slice(&req, out).map_err(|_| OtaMessageError::BufferTooSmall)?;
        let payload: &'b [u8] = out.get(..n).ok_or(OtaMessageError::BufferTooSmall)?;
        Ok(OtaMessage {
            topic: self.progress_topic()?,
            payload,
        })
    }

    /// Whether `topic` is this device's upgrade topic.
    pub fn is_upgrade(&self, topic: &str) -> bool {
        self.upgrade_topic().is_ok_and(|t| t.as_str() == topic)
    }

    /// Parses an upgrade message (see the module documentation). `Ok(None)` if `topic` is not
    /// this device's upgrade topic.
    ///
    /// Refused: `code` other than `"1000"` ([`OtaMessageError::Code`]), no `url` or a URL that
    /// is not `https://` ([`OtaMessageError::Unsupported`]), a size of 0 or over 4 GiB, a digest
    /// that is not hex of the right length, an unknown `signMethod`, `md5` and `sign` that
    /// disagree ([`OtaMessageError::Malformed`]), and no signature
    /// ([`OtaMessageError::NoSignature`]).
    pub fn parse_upgrade(
        &self,
        topic: &str,
        payload: &[u8],
    ) -> Result<Option<Upgrade>, OtaMessageError> {
        if !self.is_upgrade(topic) {
            return Ok(None);
        }
        parse_upgrade(payload).map(Some)
    }
}

/// Parses the payload of an upgrade message (see [`AliyunOta::parse_upgrade`]).
pub fn parse_upgrade(payload: &[u8]) -> Result<Upgrade, OtaMessageError> {
    let (env, _) = serde_json_core::from_slice::<Envelope<'_>>(payload)
        .map_err(|_| OtaMessageError::Malformed)?;
    if env.code != "1000" {
        return Err(OtaMessageError::Code(env.code.parse().unwrap_or(0)));
    }
    let data = env.data.ok_or(OtaMessageError::Malformed)?;
    let url = data.url.ok_or(OtaMessageError::Unsupported)?;
    crate::ota::http::Url::parse(url).map_err(|_| OtaMessageError::Unsupported)?;
    let size = u32::try_from(data.size).map_err(|_| OtaMessageError::Malformed)?;
    if size == 0 {
        return Err(OtaMessageError::Malformed);
    }
    let method = data.sign_method.unwrap_or("MD5");
    let sign = data.sign.or(data.md5).ok_or(OtaMessageError::Malformed)?;
    let digest = if method.eq_ignore_ascii_case("md5") {
        let d = hex::<16>(sign)?;
        // `md5` is the file's MD5 too: if both are there, they agree.
        if let Some(m) = data.md5
            && hex::<16>(m)? != d
        {
            return Err(OtaMessageError::Malformed);
        }
        PackageDigest::Md5(d)
    } else if method.eq_ignore_ascii_case("sha256") {
        PackageDigest::Sha256(hex::<32>(sign)?)
    } else {
        return Err(OtaMessageError::Unsupported);
    };
    let sig = data
        .ext_data
        .and_then(|e| e.tag.or(e.aws))
        .filter(|s| !s.trim().is_empty())
        .ok_or(OtaMessageError::NoSignature)?;
    let mut der = [0u8; SIGNATURE_MAX];
    let der = crate::ota::decode_base64(sig.as_bytes(), &mut der)
        .map_err(|_| OtaMessageError::Malformed)?;
    if der.is_empty() {
        return Err(OtaMessageError::NoSignature);
    }
    let mut signature = heapless::Vec::new();
    signature
        .extend_from_slice(der)
        .map_err(|_| OtaMessageError::TooLong)?;
    Ok(Upgrade {
        size,
        version: owned(data.version)?,
        module: owned(data.module.unwrap_or("default"))?,
        url: owned(url)?,
        digest,
        signature,
    })
}

/// Why a download or an upgrade stopped; [`AliyunOtaError::step`] is the progress step to
/// report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AliyunOtaError {
    /// The upgrade message was refused.
    Message(OtaMessageError),
    /// The download failed (after the retries, or at once for an answer that will not change:
    /// a redirect, a status, a server that ignores `Range`).
    Http(HttpError),
    /// The server's file is not the size the upgrade message announced.
    SizeMismatch,
    /// The OTA core refused: flash (`Storage`), verification (`Digest`, `Signature`), state.
    Ota(OtaError),
}

impl AliyunOtaError {
    /// The progress step that reports this failure: `-2` for the download, `-3` for a refused
    /// message, a size mismatch, a digest or a signature, `-4` for the flash, `-1` otherwise.
    pub fn step(&self) -> Step {
        match self {
            AliyunOtaError::Http(_) => Step::DownloadFailed,
            AliyunOtaError::SizeMismatch => Step::VerifyFailed,
            AliyunOtaError::Message(OtaMessageError::Code(_) | OtaMessageError::Unsupported) => {
                Step::UpgradeFailed
            }
            AliyunOtaError::Message(_) => Step::VerifyFailed,
            AliyunOtaError::Ota(OtaError::Storage(_)) => Step::FlashFailed,
            AliyunOtaError::Ota(
                OtaError::Digest
                | OtaError::Signature
                | OtaError::Size
                | OtaError::BlockLength { .. },
            ) => Step::VerifyFailed,
            AliyunOtaError::Ota(_) => Step::UpgradeFailed,
        }
    }

    /// A short description for the progress message's `desc`.
    pub fn desc(&self) -> &'static str {
        match self {
            AliyunOtaError::Message(OtaMessageError::NoSignature) => "no signature",
            AliyunOtaError::Message(_) => "upgrade message refused",
            AliyunOtaError::Http(HttpError::Timeout) => "download timeout",
            AliyunOtaError::Http(_) => "download failed",
            AliyunOtaError::SizeMismatch => "size",
            AliyunOtaError::Ota(e) => e.reason(),
        }
    }
}

impl fmt::Display for AliyunOtaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AliyunOtaError::Message(e) => write!(f, "{e}"),
            AliyunOtaError::Http(e) => write!(f, "download: {e}"),
            AliyunOtaError::SizeMismatch => f.write_str("file size is not the announced size"),
            AliyunOtaError::Ota(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for AliyunOtaError {}

impl From<OtaError> for AliyunOtaError {
    fn from(e: OtaError) -> Self {
        AliyunOtaError::Ota(e)
    }
}

impl From<HttpError> for AliyunOtaError {
    fn from(e: HttpError) -> Self {
        AliyunOtaError::Http(e)
    }
}

impl From<OtaMessageError> for AliyunOtaError {
    fn from(e: OtaMessageError) -> Self {
        AliyunOtaError::Message(e)
    }
}

/// How the image is fetched.
#[derive(Clone, Copy, Debug)]
pub struct DownloadConfig {
    /// PDP context of the data call.
    pub cid: u8,
    /// SSL context for the download, configured by the application with
    /// [`Modem::configure_tls`] (the CA of the OSS endpoint, [`TlsVersion::Tls12`](crate::asynch::TlsVersion)).
    pub ssl_ctx: u8,
    /// Bytes per `Range` request and per flash block (1 KiB to 4 KiB are sensible; 4 KiB reaches
    /// 0.90 of the UART in payload, see docs/ota.md). The caller's buffer holds one block
    /// plus [`HEAD_MAX`].
    pub block_size: u32,
    /// The longest wait for any byte (and for the socket's write).
    pub timeout: Duration,
    /// Failed fetches in a row (link loss, timeout, short body) before the download gives up
    /// with `-2`; each retry asks again from the first missing byte.
    pub retries: u8,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig {
            cid: 1,
            ssl_ctx: 2,
            block_size: 4096,
            timeout: Duration::from_secs(30),
            retries: 5,
        }
    }
}

/// The part of the caller's buffer that holds a response head.
pub const HEAD_MAX: usize = 512;

/// The image id the progress record keeps for `upgrade`: its size, version, module, digest and
/// signature, **not** the URL (Aliyun pushes a freshly signed URL every time, and the same
/// image must resume).
pub fn upgrade_image_id(upgrade: &Upgrade) -> [u8; 32] {
    let digest: &[u8] = match &upgrade.digest {
        PackageDigest::Md5(d) => d,
        PackageDigest::Sha256(d) => d,
    };
    crate::ota::image_id(&[
        b"aliyun",
        &upgrade.size.to_le_bytes(),
        upgrade.version.as_bytes(),
        upgrade.module.as_bytes(),
        digest,
        &upgrade.signature,
    ])
}

fn transient(e: &HttpError) -> bool {
    matches!(
        e,
        HttpError::Transport(_) | HttpError::Timeout | HttpError::ShortBody | HttpError::Malformed
    )
}

impl AliyunOta<'_> {
    /// Downloads `upgrade` into `updater` and, if the platform's digest and the signature
    /// (checked with `key`) match what the flash holds, requests the swap; returns the image's
    /// SHA-256. Reset afterwards to let the bootloader swap.
    ///
    /// The download resumes: blocks already in flash (from before a link loss or a reset, as
    /// the progress record says) are not fetched again; each missing block is one `Range`
    /// request over a kept-alive TLS connection. `report` is called with each step to publish
    /// ([`AliyunOta::progress`]): every tenth of the image (1–99), 100 when the swap is
    /// requested, and the failure step of the error before it is returned
    /// ([`AliyunOtaError::step`]). A failure leaves the record as it is (the next attempt
    /// resumes), except a digest or signature failure, which clears it: the bytes in flash are
    /// not the image, so the next attempt downloads all of it again.
    #[allow(clippy::too_many_arguments)]
    pub async fn download<DFU, STATE, REC>(
        &self,
        modem: Modem<'_>,
        config: &DownloadConfig,
        upgrade: &Upgrade,
        updater: &mut Updater<'_, DFU, STATE, REC>,
        key: &CodeSigningKey,
        buf: &mut [u8],
        mut report: impl FnMut(Step, &str),
    ) -> Result<[u8; 32], AliyunOtaError>
    where
        DFU: NorFlash,
        STATE: NorFlash,
        REC: NorFlash,
    {
        let r = self
            .download_inner(modem, config, upgrade, updater, key, buf, &mut report)
            .await;
        match &r {
            Ok(_) => report(Step::Percent(100), "verified, swap requested"),
            Err(e) => {
                if matches!(
                    e,
                    AliyunOtaError::Ota(OtaError::Digest | OtaError::Signature)
                ) {
                    let _ = updater.clear().await;
                }
                report(e.step(), e.desc());
            }
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    async fn download_inner<DFU, STATE, REC>(
        &self,
        modem: Modem<'_>,
        config: &DownloadConfig,
        upgrade: &Upgrade,
        updater: &mut Updater<'_, DFU, STATE, REC>,
        key: &CodeSigningKey,
        buf: &mut [u8],
        report: &mut impl FnMut(Step, &str),
    ) -> Result<[u8; 32], AliyunOtaError>
    where
        DFU: NorFlash,
        STATE: NorFlash,
        REC: NorFlash,
    {
        let bs = config.block_size;
        let block_len = usize::try_from(bs).map_err(|_| OtaError::Size)?;
        if bs == 0 || buf.len() < HEAD_MAX.saturating_add(block_len) {
            return Err(HttpError::BufferTooSmall.into());
        }
        let (head, body) = buf.split_at_mut(HEAD_MAX);
        let url = Url::parse(&upgrade.url).map_err(|_| OtaMessageError::Unsupported)?;
        let spec = ImageSpec {
            id: upgrade_image_id(upgrade),
            size: upgrade.size,
            block_size: bs,
            tag: upgrade.version.as_bytes(),
        };
        let mut progress = updater.begin(&spec).await?;
        let mut src = HttpsSource::new(modem, config.cid, config.ssl_ctx, url, config.timeout);
        let mut failures = 0u8;
        let mut next = 0u32;
        let mut reported = tenth(progress.received, progress.total);
        while let Some(index) = updater.next_missing(next).await? {
            let first = u64::from(index).saturating_mul(u64::from(bs));
            let end = first
                .saturating_add(u64::from(bs))
                .min(u64::from(upgrade.size));
            let last = end.saturating_sub(1);
            let fetched = match src.fetch(first, last, head, body).await {
                Ok(f) => f,
                Err(e) if transient(&e) && failures < config.retries => {
                    failures = failures.saturating_add(1);
                    continue;
                }
                Err(e) => {
                    src.close().await;
                    return Err(e.into());
                }
            };
            failures = 0;
            if fetched.total.is_some_and(|t| t != u64::from(upgrade.size)) {
                src.close().await;
                return Err(AliyunOtaError::SizeMismatch);
            }
            let data = body.get(..fetched.len).ok_or(HttpError::BufferTooSmall)?;
            if let Err(e) = updater.write_block(index, data).await {
                src.close().await;
                return Err(e.into());
            }
            next = index.saturating_add(1);
            progress = updater.progress().unwrap_or(progress);
            let now = tenth(progress.received, progress.total);
            if now > reported && now < 10 {
                reported = now;
                report(Step::Percent(now.saturating_mul(10)), "downloading");
            }
        }
        src.close().await;
        let digest = match upgrade.digest {
            PackageDigest::Md5(d) => Digest::Md5(d),
            PackageDigest::Sha256(d) => Digest::Sha256(d),
        };
        let checks = Checks {
            digest: Some(digest),
            signature: Some(SignatureCheck {
                key,
                der: &upgrade.signature,
            }),
        };
        Ok(updater.finish(&checks).await?)
    }
}

/// Tenths of `total` in `received` (0–10).
fn tenth(received: u32, total: u32) -> u8 {
    if total == 0 {
        return 0;
    }
    let t = u64::from(received)
        .saturating_mul(10)
        .checked_div(u64::from(total))
        .unwrap_or(0);
    u8::try_from(t.min(10)).unwrap_or(10)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::string::String;

    const MSG: &str = r#"{"code":"1000","data":{"size":432945,"version":"2.0.0","isDiff":1,"url":"https://iotx-ota.oss-cn-shanghai.aliyuncs.com/ota/x.bin?Expires=1502955804&OSSAccessKeyId=k&Signature=XfgJu7P6DW%3D","md5":"93230c3bde425a9d7984a594ac55ea1e","digestsign":"A4WOP","sign":"93230c3bde425a9d7984a594ac55ea1e","signMethod":"Md5","module":"MCU","extData":{"key1":"value1","_package_udi":"{\"ota_notice\":\"x\"}","sig.sha256.ecdsa":"MEUCIQ=="}},"id":1626969597470,"message":"success"}"#;

    fn ota() -> AliyunOta<'static> {
        AliyunOta::new(Device::new("a1X2bEnP82z", "dev1").unwrap())
    }

    #[test]
    fn upgrade_message_as_documented() {
        let o = ota();
        assert_eq!(o.parse_upgrade("/other", MSG.as_bytes()), Ok(None));
        let u = o
            .parse_upgrade("/ota/device/upgrade/a1X2bEnP82z/dev1", MSG.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(u.size, 432945);
        assert_eq!(u.version, "2.0.0");
        assert_eq!(u.module, "MCU");
        assert!(u.url.starts_with("https://iotx-ota"));
        assert_eq!(
            u.digest,
            PackageDigest::Md5(hex::<16>("93230c3bde425a9d7984a594ac55ea1e").unwrap())
        );
        assert_eq!(&u.signature[..], &[0x30, 0x45, 0x02, 0x21]);
        // The URL's query (a credential) is not in Debug.
        assert!(!format!("{u:?}").contains("Signature"));
    }

    #[test]
    fn refusals() {
        let swap = |a: &str, b: &str| MSG.replace(a, b);
        let cases = [
            (
                swap(r#""code":"1000""#, r#""code":"9201""#),
                OtaMessageError::Code(9201),
            ),
            (
                swap(r#","sig.sha256.ecdsa":"MEUCIQ==""#, ""),
                OtaMessageError::NoSignature,
            ),
            (
                swap("https://iotx", "http://iotx"),
                OtaMessageError::Unsupported,
            ),
            (
                swap(r#""signMethod":"Md5""#, r#""signMethod":"CRC""#),
                OtaMessageError::Unsupported,
            ),
            (
                swap(r#""sign":"93230c3b"#, r#""sign":"03230c3b"#),
                OtaMessageError::Malformed,
            ),
            (
                swap(r#""size":432945"#, r#""size":0"#),
                OtaMessageError::Malformed,
            ),
            (
                swap(r#""size":432945"#, r#""size":4294967296"#),
                OtaMessageError::Malformed,
            ),
            (swap("MEUCIQ==", "ME!CIQ=="), OtaMessageError::Malformed),
            (swap("MEUCIQ==", ""), OtaMessageError::NoSignature),
            (
                swap(
                    r#""version":"2.0.0""#,
                    &format!(r#""version":"{}""#, "9".repeat(65)),
                ),
                OtaMessageError::TooLong,
            ),
            (String::from("{"), OtaMessageError::Malformed),
        ];
        for (msg, want) in cases {
            assert_eq!(parse_upgrade(msg.as_bytes()), Err(want), "{msg}");
        }
        let sha = MSG
            .replace(r#""signMethod":"Md5""#, r#""signMethod":"SHA256""#)
            .replace(
                r#""sign":"93230c3bde425a9d7984a594ac55ea1e""#,
                &format!(r#""sign":"{}""#, "ab".repeat(32)),
            );
        assert_eq!(
            parse_upgrade(sha.as_bytes()).unwrap().digest,
            PackageDigest::Sha256([0xab; 32])
        );
    }

    #[test]
    fn inform_and_progress() {
        let o = ota();
        let mut buf = [0u8; 128];
        let m = o.inform("1.0.0", None, &mut buf).unwrap();
        assert_eq!(m.topic(), "/ota/device/inform/a1X2bEnP82z/dev1");
        assert_eq!(m.payload(), br#"{"id":"1","params":{"version":"1.0.0"}}"#);
        let m = o
            .progress(Step::Percent(42), "downloading", Some("MCU"), &mut buf)
            .unwrap();
        assert_eq!(m.topic(), "/ota/device/progress/a1X2bEnP82z/dev1");
        assert_eq!(
            m.payload(),
            br#"{"id":"2","params":{"step":"42","desc":"downloading","module":"MCU"}}"#
        );
        let m = o
            .progress(Step::VerifyFailed, "signature", None, &mut buf)
            .unwrap();
        assert_eq!(
            m.payload(),
            br#"{"id":"3","params":{"step":"-3","desc":"signature"}}"#
        );
        assert_eq!(Step::Percent(0).value(), 1);
        assert_eq!(Step::Percent(200).value(), 100);
        let mut small = [0u8; 8];
        assert_eq!(
            o.inform("1", None, &mut small).err(),
            Some(OtaMessageError::BufferTooSmall)
        );
    }
}
