//! Firmware update over the air with AWS IoT Jobs and MQTT-based file delivery (streams):
//! features `aws` + `ota`.
//!
//! What AWS's own OTA library does, with this crate's MQTT client and the flash path of
//! [`crate::ota`]:
//!
//! 1. [`AwsOta::after_boot`] right after connecting: a new image on its trial boot confirms
//!    itself (it got this far: it booted and reconnected) and reports `SUCCEEDED`; an image the
//!    bootloader rolled back reports `FAILED` (`"reason":"rollback"`).
//! 2. [`AwsOta::next_job`]: subscribes to `$aws/things/<thing>/jobs/notify-next` and the
//!    answers of `$aws/things/<thing>/jobs/$next/get`, asks (`{"clientToken":"<n>:<thing>"}`),
//!    and parses the job document (`afr_ota`: `streamname`, `files[]` with `fileid`,
//!    `filesize`, `filepath`, `certfile`, `sig-sha256-ecdsa`). A job that is not an OTA job is
//!    handed to the application ([`Job::Other`]), not failed.
//! 3. [`AwsOta::download`]: asks the stream for the missing blocks
//!    (`$aws/things/<thing>/streams/<stream>/get/cbor`, a CBOR map `c,f,l,o,b,n` with the
//!    bitmap of wanted blocks as a byte string), writes each block from `.../data/cbor`
//!    (`f,i,l,p`) through the [`Updater`], re-asks only for the missing blocks after
//!    [`with_timeout`](AwsOta::with_timeout) without data, reports `IN_PROGRESS` with
//!    `"receive":"n/total"` (first block, then every
//!    [`with_status_every`](AwsOta::with_status_every) blocks), checks the signature, requests
//!    the swap and reports `IN_PROGRESS` with `"self_test":"ready"`. Reset the device then.
//!    A link loss returns the error: connect again and call it again; it resumes (also after
//!    a reset) and asks only for the blocks not yet in flash.
//!
//! A refused image (signature, size, stream rejected, no data after all retries) is reported
//! `FAILED` with `"reason"` ([`OtaError::reason`]) and the progress record is cleared.
//!
//! ```rust,no_run
//! use quectel::asynch::Modem;
//! use quectel::cloud::CloudError;
//! use quectel::cloud::aws::ota::{AwsOta, Job};
//! use quectel::mqtt::{Mqtt, MqttConfig};
//! use quectel::ota::embedded_storage_async::nor_flash::NorFlash;
//! use quectel::ota::{CodeSigningKey, Updater};
//!
//! async fn update<D: NorFlash, S: NorFlash, R: NorFlash>(
//!     modem: &Modem<'_>,
//!     config: MqttConfig<'_>,
//!     updater: &mut Updater<'_, D, S, R>,
//!     code_signing_cert_pem: &[u8],
//! ) -> Result<(), CloudError> {
//!     let rx = 4608; // room for 4 KiB blocks (see "Block size" below)
//!     let mut buf = [0u8; 2 * 4608];
//!     let mut mqtt = Mqtt::new(config, &mut buf, rx)?;
//!     let mut conn = mqtt.connect(modem).await?;
//!     let mut ota = AwsOta::new("my-thing", rx)?;
//!     // First thing after connecting: confirm a new image and report the last update.
//!     ota.after_boot(&mut conn, updater).await?;
//!     let key = CodeSigningKey::from_certificate_pem(code_signing_cert_pem, &mut [0u8; 1024])?;
//!     let mut job_buf = [0u8; 2048];
//!     match ota.next_job(&mut conn, &mut job_buf).await? {
//!         Job::Ota(job) => {
//!             ota.download(&mut conn, updater, &job, &key).await?;
//!             // Verified and marked: reset now (e.g. `cortex_m::peripheral::SCB::sys_reset()`);
//!             // the bootloader swaps and the new image calls `after_boot` on its first start.
//!         }
//!         Job::Other { job_id, payload } => { /* the application's own job */ }
//!         Job::None => {}
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Block size and the MQTT receive buffer
//!
//! One block arrives as one MQTT PUBLISH, which must fit the MQTT receive buffer (`rx_size` of
//! `Mqtt::new`): the broker drops a larger packet. The packet is the block plus at most
//! `77 + 2 × thing + stream` bytes: fixed header 4 (type, remaining length ≤ 3 bytes), topic
//! length 2, topic `$aws/things/<thing>/streams/<stream>/data/cbor` 31 + thing + stream,
//! packet id 2, MQTT 5 property length 1, the CBOR map around the bytes 22 (map header 1,
//! four one-letter keys 8, `f` ≤ 2, `i` ≤ 5, `l` ≤ 3, the byte string's header ≤ 3), and the
//! client token AWS echoes in `c` (key 2, text header 2, `<n>:<thing>` 11 + thing).
//! [`AwsOta::new`] takes `rx_size` and picks the largest power of two from 256 to 4096 that
//! fits with [`BLOCK_MARGIN`] (those 77 plus 32 for MQTT 5 properties) + 2 × thing +
//! [`MAX_STREAM`] bytes: 1 KiB for `rx_size` 2048, 4 KiB for `rx_size` ≥ 4333 + 2 × thing.
//! Larger blocks cost fewer request round trips and less overhead per byte (see
//! `docs/ota.md`).
//!
//! # JSON streams
//!
//! [`AwsOta::with_json`] switches to `.../get/json`, `.../data/json` and `.../rejected/json`
//! (CBOR stays the default). The request is `{"c","f","l","o","b","n"}` with the bitmap as a
//! hex string, byte 0 first (`"0x130080"`: the same bytes as the CBOR byte string); a block
//! arrives as `{"c","f","l","i","p"}` with `p` in base64 and is decoded into the block buffer
//! given to `with_json` before it is written. The data message is then at most
//! `4 × ⌈block / 3⌉ + 128 + 2 × thing + stream` bytes ([`StreamFormat::message_len`],
//! [`JSON_BLOCK_MARGIN`] = 128): MQTT 40 (fixed header 4, topic length 2, topic 31 + thing +
//! stream, packet id 2, property length 1), the JSON around the text 45 (`{"c":"`, `","f":`
//! and 3 digits, `,"l":` and 4, `,"i":` and 8, `,"p":"`, `"}`), the client token AWS echoes
//! in `c` (`<n>:<thing>`: 11 + thing), and 32 for MQTT 5 properties. So `rx_size` 2048 gives
//! 1 KiB blocks (as in CBOR), 4608 gives 2 KiB, and 4 KiB blocks need `rx_size` ≥ 5720 + 2 ×
//! thing. Every byte of the image costs 4/3 bytes on the wire: about 72 % of the UART bytes
//! are image bytes at 4 KiB blocks, against 96 % in CBOR (`docs/ota.md`).

use core::fmt::Write as _;

use embassy_time::{Duration, Instant, with_timeout};
use embedded_storage_async::nor_flash::NorFlash;
use serde::Deserialize;

use crate::cloud::CloudError;
use crate::mqtt::{MqttConnection, MqttError, MqttIo, QoS};
use crate::ota::{
    BootStatus, Checks, CodeSigningKey, ImageSpec, OtaError, SignatureCheck, Updater,
    decode_base64, image_id,
};

/// Bytes of a CBOR data message besides the block, twice the thing name (topic and client
/// token) and the stream name (see the module documentation), plus room for MQTT 5 properties
/// a broker may add.
pub const BLOCK_MARGIN: usize = 62 + 15 + 32;
/// Bytes of a JSON data message besides the base64 text, twice the thing name (topic and
/// client token) and the stream name (see the module documentation), plus room for MQTT 5
/// properties a broker may add.
pub const JSON_BLOCK_MARGIN: usize = 96 + 32;
/// Longest stream name handled (AWS's OTA library keeps 44; stream ids are at most 128).
pub const MAX_STREAM: usize = 128;
/// Longest thing name (AWS).
pub const MAX_THING: usize = 128;
/// Longest job id (AWS).
pub const MAX_JOB_ID: usize = 64;
/// Smallest and largest block size handled (AWS allows 256 to 131 072).
pub const MIN_BLOCK: u32 = 256;
/// See [`MIN_BLOCK`].
pub const MAX_BLOCK: u32 = 4096;
/// The largest GetStream bitmap sent, in bytes (blocks per request ≤ 8 × this).
pub const MAX_BITMAP: usize = 32;
/// The most blocks one request asks for (`8 * MAX_BITMAP`).
pub const MAX_BLOCKS_PER_REQUEST: u32 = 256;
/// The default wait for data before the missing blocks are asked for again (AWS's library:
/// 10 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

type Topic = heapless::String<320>;

/// A job execution's status (`UpdateJobExecution`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum JobStatus {
    /// `IN_PROGRESS`.
    InProgress,
    /// `SUCCEEDED`.
    Succeeded,
    /// `FAILED`.
    Failed,
    /// `REJECTED`.
    Rejected,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            JobStatus::InProgress => "IN_PROGRESS",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
            JobStatus::Rejected => "REJECTED",
        }
    }
}

/// An OTA job (`afr_ota`), its first file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtaJob<'a> {
    /// The job id.
    pub job_id: &'a str,
    /// The stream that carries the file (`streamname`).
    pub stream: &'a str,
    /// The file's id in the stream (`fileid`, 0–255).
    pub file_id: u8,
    /// Its size in bytes (`filesize`).
    pub size: u32,
    /// Where it goes, as the job says (`filepath`).
    pub file_path: &'a str,
    /// The code-signing certificate's name on the device (`certfile`).
    pub cert_file: &'a str,
    /// The signature, base64 DER (`sig-sha256-ecdsa`).
    pub signature: &'a str,
    /// The job's `statusDetails` carry `self_test` (the job is waiting for a new image's
    /// self-test).
    pub self_test: bool,
}

/// What `$next/get` or `notify-next` said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job<'a> {
    /// No pending job.
    None,
    /// An OTA job.
    Ota(OtaJob<'a>),
    /// Another job: the application's (the whole message, the job document inside it).
    Other {
        /// The job id.
        job_id: &'a str,
        /// The message (`{"execution":{…,"jobDocument":{…}},…}`).
        payload: &'a [u8],
    },
}

#[derive(Deserialize)]
struct NextJob<'a> {
    #[serde(borrow)]
    execution: Option<Execution<'a>>,
}

#[derive(Deserialize)]
struct Execution<'a> {
    #[serde(rename = "jobId")]
    job_id: &'a str,
    #[serde(rename = "jobDocument", borrow)]
    job_document: Option<JobDocument<'a>>,
    #[serde(rename = "statusDetails", borrow)]
    status_details: Option<StatusDetails<'a>>,
}

#[derive(Deserialize)]
struct StatusDetails<'a> {
    self_test: Option<&'a str>,
}

#[derive(Deserialize)]
struct JobDocument<'a> {
    #[serde(borrow)]
    afr_ota: Option<AfrOta<'a>>,
}

#[derive(Deserialize)]
struct AfrOta<'a> {
    streamname: &'a str,
    #[serde(borrow)]
    files: heapless::Vec<FileEntry<'a>, 4>,
}

#[derive(Deserialize)]
struct FileEntry<'a> {
    filepath: Option<&'a str>,
    filesize: u32,
    fileid: u32,
    certfile: Option<&'a str>,
    #[serde(rename = "sig-sha256-ecdsa")]
    signature: Option<&'a str>,
}

fn id_like(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
}

/// Parses a `$next/get/accepted` or `notify-next` message. A malformed message, or an OTA job
/// document without a usable file (no signature, a file id over 255, an empty file, a job id
/// or stream name AWS would not make), is [`OtaError::Protocol`].
pub fn parse_job(payload: &[u8]) -> Result<Job<'_>, OtaError> {
    let (next, _) =
        serde_json_core::from_slice::<NextJob<'_>>(payload).map_err(|_| OtaError::Protocol)?;
    let Some(exec) = next.execution else {
        return Ok(Job::None);
    };
    if !id_like(exec.job_id, MAX_JOB_ID) {
        return Err(OtaError::Protocol);
    }
    let Some(ota) = exec.job_document.and_then(|d| d.afr_ota) else {
        return Ok(Job::Other {
            job_id: exec.job_id,
            payload,
        });
    };
    let file = ota.files.first().ok_or(OtaError::Protocol)?;
    let file_id = u8::try_from(file.fileid).map_err(|_| OtaError::Protocol)?;
    let signature = file.signature.ok_or(OtaError::Protocol)?;
    if !id_like(ota.streamname, MAX_STREAM) || file.filesize == 0 || signature.is_empty() {
        return Err(OtaError::Protocol);
    }
    Ok(Job::Ota(OtaJob {
        job_id: exec.job_id,
        stream: ota.streamname,
        file_id,
        size: file.filesize,
        file_path: file.filepath.unwrap_or(""),
        cert_file: file.certfile.unwrap_or(""),
        signature,
        self_test: exec.status_details.is_some_and(|s| s.self_test.is_some()),
    }))
}

/// One data block from `.../data/cbor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataBlock<'a> {
    /// The file id (`f`).
    pub file_id: u32,
    /// The block index (`i`).
    pub index: u32,
    /// The block's length as announced (`l`).
    pub len: u32,
    /// The bytes (`p`).
    pub payload: &'a [u8],
}

fn cbor_err<E>(_: E) -> OtaError {
    OtaError::Protocol
}

/// Decodes a data block (a CBOR map with `f`, `i`, `l`, `p`; other keys skipped).
/// [`OtaError::Protocol`] for anything else: not CBOR, a missing key, `l` not the length of
/// `p`.
pub fn decode_block(cbor: &[u8]) -> Result<DataBlock<'_>, OtaError> {
    let mut d = minicbor::Decoder::new(cbor);
    let n = d.map().map_err(cbor_err)?.ok_or(OtaError::Protocol)?;
    let (mut f, mut i, mut l, mut p) = (None, None, None, None);
    for _ in 0..n {
        match d.str().map_err(cbor_err)? {
            "f" => f = Some(d.u32().map_err(cbor_err)?),
            "i" => i = Some(d.u32().map_err(cbor_err)?),
            "l" => l = Some(d.u32().map_err(cbor_err)?),
            "p" => p = Some(d.bytes().map_err(cbor_err)?),
            _ => d.skip().map_err(cbor_err)?,
        }
    }
    let (Some(file_id), Some(index), Some(len), Some(payload)) = (f, i, l, p) else {
        return Err(OtaError::Protocol);
    };
    if usize::try_from(len).ok() != Some(payload.len()) {
        return Err(OtaError::Protocol);
    }
    Ok(DataBlock {
        file_id,
        index,
        len,
        payload,
    })
}

/// Why the stream service refused a GetStream request (`.../rejected/cbor`, key `o`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StreamRejection {
    /// `InvalidTopic`.
    InvalidTopic,
    /// `InvalidJson`.
    InvalidJson,
    /// `InvalidCbor`.
    InvalidCbor,
    /// `InvalidRequest`.
    InvalidRequest,
    /// `Unauthorized`.
    Unauthorized,
    /// `BlockSizeOutOfBounds`.
    BlockSizeOutOfBounds,
    /// `OffsetOutOfBounds`.
    OffsetOutOfBounds,
    /// `BlockCountLimitExceeded`.
    BlockCountLimitExceeded,
    /// `BlockBitmapLimitExceeded`.
    BlockBitmapLimitExceeded,
    /// `ResourceNotFound`: no such stream or file.
    ResourceNotFound,
    /// `VersionMismatch`.
    VersionMismatch,
    /// `ETagMismatch`.
    ETagMismatch,
    /// `InternalError`.
    InternalError,
    /// A code not listed here.
    Other,
}

impl StreamRejection {
    const CODES: [(&'static str, StreamRejection); 13] = [
        ("InvalidTopic", StreamRejection::InvalidTopic),
        ("InvalidJson", StreamRejection::InvalidJson),
        ("InvalidCbor", StreamRejection::InvalidCbor),
        ("InvalidRequest", StreamRejection::InvalidRequest),
        ("Unauthorized", StreamRejection::Unauthorized),
        (
            "BlockSizeOutOfBounds",
            StreamRejection::BlockSizeOutOfBounds,
        ),
        ("OffsetOutOfBounds", StreamRejection::OffsetOutOfBounds),
        (
            "BlockCountLimitExceeded",
            StreamRejection::BlockCountLimitExceeded,
        ),
        (
            "BlockBitmapLimitExceeded",
            StreamRejection::BlockBitmapLimitExceeded,
        ),
        ("ResourceNotFound", StreamRejection::ResourceNotFound),
        ("VersionMismatch", StreamRejection::VersionMismatch),
        ("ETagMismatch", StreamRejection::ETagMismatch),
        ("InternalError", StreamRejection::InternalError),
    ];

    /// The rejection for AWS's error code.
    pub fn from_code(code: &str) -> Self {
        Self::CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(StreamRejection::Other, |(_, r)| *r)
    }

    /// AWS's error code (`"Other"` for [`StreamRejection::Other`]).
    pub fn code(self) -> &'static str {
        Self::CODES
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("Other", |(c, _)| c)
    }
}

/// Decodes a `.../rejected/cbor` message: its error code (`o`, or the legacy `code`).
pub fn decode_rejection(cbor: &[u8]) -> Result<StreamRejection, OtaError> {
    let mut d = minicbor::Decoder::new(cbor);
    let n = d.map().map_err(cbor_err)?.ok_or(OtaError::Protocol)?;
    let mut code = None;
    for _ in 0..n {
        match d.str().map_err(cbor_err)? {
            "o" | "code" => code = Some(d.str().map_err(cbor_err)?),
            _ => d.skip().map_err(cbor_err)?,
        }
    }
    code.map(StreamRejection::from_code)
        .ok_or(OtaError::Protocol)
}

/// How the stream service's messages are encoded: the last element of the stream topics
/// (`.../get/cbor` or `.../get/json`). CBOR is the default and what AWS's own OTA library
/// uses; JSON carries each block base64-encoded (4 bytes of text for 3 of the image), so its
/// blocks are smaller for the same MQTT receive buffer and each costs more bytes on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StreamFormat {
    /// CBOR: the block as a byte string (the default).
    #[default]
    Cbor,
    /// JSON: the block as base64 text, the GetStream bitmap as a hex string.
    Json,
}

impl StreamFormat {
    /// The topic suffix: `"cbor"` or `"json"`.
    pub fn suffix(self) -> &'static str {
        match self {
            StreamFormat::Cbor => "cbor",
            StreamFormat::Json => "json",
        }
    }

    /// The largest size of a data message carrying a block of `block` bytes for a thing name
    /// of `thing_len` bytes and a stream name of up to [`MAX_STREAM`] bytes (see the module
    /// documentation): CBOR `block + BLOCK_MARGIN + 2 × thing + MAX_STREAM`, JSON
    /// `4 × ⌈block / 3⌉ + JSON_BLOCK_MARGIN + 2 × thing + MAX_STREAM`. `None` on overflow.
    pub fn message_len(self, block: u32, thing_len: usize) -> Option<usize> {
        let block = usize::try_from(block).ok()?;
        match self {
            StreamFormat::Cbor => block
                .checked_add(BLOCK_MARGIN)?
                .checked_add(thing_len.checked_mul(2)?)?
                .checked_add(MAX_STREAM),
            StreamFormat::Json => block
                .div_ceil(3)
                .checked_mul(4)?
                .checked_add(JSON_BLOCK_MARGIN)?
                .checked_add(thing_len.checked_mul(2)?)?
                .checked_add(MAX_STREAM),
        }
    }
}

/// Decodes a JSON data block (`.../data/json`: `{"c":…,"f":…,"l":…,"i":…,"p":"<base64>"}`,
/// other keys skipped) and its base64 into `out` (a block buffer of at least the block
/// size); [`DataBlock::payload`] borrows `out`. [`OtaError::Protocol`] for anything else: not
/// JSON, a missing key, a number out of range, invalid base64 (the JSON escape `\/` is
/// read as `/`, any other escape is refused), more bytes than `out` holds, `l` not the
/// decoded length.
pub fn decode_block_json<'o>(json: &[u8], out: &'o mut [u8]) -> Result<DataBlock<'o>, OtaError> {
    #[derive(Deserialize)]
    struct Block<'a> {
        f: u32,
        i: u32,
        l: u32,
        p: &'a str,
    }
    let (b, _) = serde_json_core::from_slice::<Block<'_>>(json).map_err(|_| OtaError::Protocol)?;
    let n = decode_base64_text(b.p.as_bytes(), out)?;
    if usize::try_from(b.l).ok() != Some(n) {
        return Err(OtaError::Protocol);
    }
    let payload = out.get(..n).ok_or(OtaError::Protocol)?;
    Ok(DataBlock {
        file_id: b.f,
        index: b.i,
        len: b.l,
        payload,
    })
}

/// Strict base64 (RFC 4648 alphabet, padding optional, no whitespace) as found inside a JSON
/// string, so `\/` stands for `/`. Returns the bytes written to `out`.
fn decode_base64_text(text: &[u8], out: &mut [u8]) -> Result<usize, OtaError> {
    let mut acc: u32 = 0;
    let mut symbols = 0u32;
    let mut pads = 0u32;
    let mut n = 0usize;
    let mut put = |b: u8, n: &mut usize| -> Result<(), OtaError> {
        *out.get_mut(*n).ok_or(OtaError::Protocol)? = b;
        *n = n.checked_add(1).ok_or(OtaError::Protocol)?;
        Ok(())
    };
    let mut it = text.iter().copied();
    while let Some(c) = it.next() {
        let c = if c == b'\\' {
            match it.next() {
                Some(b'/') => b'/',
                _ => return Err(OtaError::Protocol),
            }
        } else {
            c
        };
        let v = match c {
            b'A'..=b'Z' => c.wrapping_sub(b'A'),
            b'a'..=b'z' => c.wrapping_sub(b'a').wrapping_add(26),
            b'0'..=b'9' => c.wrapping_sub(b'0').wrapping_add(52),
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pads = pads.saturating_add(1);
                continue;
            }
            _ => return Err(OtaError::Protocol),
        };
        if pads > 0 {
            return Err(OtaError::Protocol);
        }
        acc = (acc << 6) | u32::from(v);
        symbols = symbols.wrapping_add(1);
        if symbols == 4 {
            for b in [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8] {
                put(b, &mut n)?;
            }
            acc = 0;
            symbols = 0;
        }
    }
    match (symbols, pads) {
        (0, 0) => {}
        (2, 2) | (2, 0) => put((acc >> 4) as u8, &mut n)?,
        (3, 1) | (3, 0) => {
            put((acc >> 10) as u8, &mut n)?;
            put((acc >> 2) as u8, &mut n)?;
        }
        _ => return Err(OtaError::Protocol),
    }
    Ok(n)
}

/// Decodes a `.../rejected/json` message (`{"o":"<code>","m":…,"c":…}`, or the legacy
/// `code`): its error code. [`OtaError::Protocol`] for anything else.
pub fn decode_rejection_json(json: &[u8]) -> Result<StreamRejection, OtaError> {
    #[derive(Deserialize)]
    struct Rejected<'a> {
        o: Option<&'a str>,
        code: Option<&'a str>,
    }
    let (r, _) =
        serde_json_core::from_slice::<Rejected<'_>>(json).map_err(|_| OtaError::Protocol)?;
    r.o.or(r.code)
        .map(StreamRejection::from_code)
        .ok_or(OtaError::Protocol)
}

/// Encodes a GetStream request in JSON: `{"c":"<token>","f":<file id>,"l":<block size>,
/// "o":<first block>,"b":"0x<bitmap in hex>","n":<blocks>}`, the bitmap in the same bit order
/// as [`encode_get_stream`] (bit *i* = block `o + i`, byte 0 holding bits 7…0, written first:
/// blocks 20, 21, 24, 43 from `o` = 20 are `"0x130080"`). `token` must not need escaping
/// (no `"`, `\` or control characters). Returns the length written to `out`;
/// [`OtaError::Protocol`] if `out` is too small or the token needs escaping.
pub fn encode_get_stream_json(
    out: &mut [u8],
    token: &str,
    file_id: u8,
    block_size: u32,
    offset: u32,
    bitmap: &[u8],
    blocks: u32,
) -> Result<usize, OtaError> {
    if token.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return Err(OtaError::Protocol);
    }
    struct Out<'a> {
        buf: &'a mut [u8],
        at: usize,
    }
    impl core::fmt::Write for Out<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.at.checked_add(s.len()).ok_or(core::fmt::Error)?;
            let dst = self.buf.get_mut(self.at..end).ok_or(core::fmt::Error)?;
            dst.copy_from_slice(s.as_bytes());
            self.at = end;
            Ok(())
        }
    }
    let mut w = Out { buf: out, at: 0 };
    let mut go = || -> core::fmt::Result {
        write!(
            w,
            "{{\"c\":\"{token}\",\"f\":{file_id},\"l\":{block_size},\"o\":{offset},\"b\":\"0x"
        )?;
        for b in bitmap {
            write!(w, "{b:02x}")?;
        }
        write!(w, "\",\"n\":{blocks}}}")
    };
    go().map_err(|_| OtaError::Protocol)?;
    Ok(w.at)
}

/// Encodes a GetStream request as AWS's OTA library does: a CBOR map of `c` (client token),
/// `f` (file id), `l` (block size), `o` (first block), `b` (bitmap of wanted blocks from `o`,
/// raw bytes, bit *i* = block `o + i`, byte 0 holding bits 7…0) and `n` (blocks wanted).
/// Returns the length written to `out`.
pub fn encode_get_stream(
    out: &mut [u8],
    token: &str,
    file_id: u8,
    block_size: u32,
    offset: u32,
    bitmap: &[u8],
    blocks: u32,
) -> Result<usize, OtaError> {
    let cursor = minicbor::encode::write::Cursor::new(out);
    let mut e = minicbor::Encoder::new(cursor);
    e.map(6)
        .and_then(|e| e.str("c"))
        .and_then(|e| e.str(token))
        .and_then(|e| e.str("f"))
        .and_then(|e| e.u8(file_id))
        .and_then(|e| e.str("l"))
        .and_then(|e| e.u32(block_size))
        .and_then(|e| e.str("o"))
        .and_then(|e| e.u32(offset))
        .and_then(|e| e.str("b"))
        .and_then(|e| e.bytes(bitmap))
        .and_then(|e| e.str("n"))
        .and_then(|e| e.u32(blocks))
        .map_err(|_| OtaError::Protocol)?;
    Ok(e.writer().position())
}

/// What [`AwsOta::after_boot`] found and reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootReport {
    /// Nothing to report.
    Nothing,
    /// A new image confirmed itself; the job was reported `SUCCEEDED`.
    Succeeded(heapless::String<MAX_JOB_ID>),
    /// The new image did not confirm itself and was rolled back (or the swap never happened);
    /// the job was reported `FAILED`.
    RolledBack(heapless::String<MAX_JOB_ID>),
}

/// Counters of the downloads so far (for tests and logs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtaStats {
    /// GetStream requests sent.
    pub requests: u32,
    /// Blocks written.
    pub blocks: u32,
    /// Blocks that were already in flash.
    pub duplicates: u32,
    /// Data messages refused (malformed CBOR, another file, a wrong length or index).
    pub refused: u32,
    /// Waits that ended without data (each followed by a new request).
    pub timeouts: u32,
}

/// AWS IoT Jobs + MQTT streams OTA for one thing (see the module documentation).
#[derive(Debug)]
pub struct AwsOta<'t> {
    thing: &'t str,
    rx_size: usize,
    format: StreamFormat,
    json_block: Option<BlockBuf<'t>>,
    block_size: u32,
    blocks_per_request: u32,
    timeout: Duration,
    retries: u32,
    status_every: u32,
    token: u32,
    stats: OtaStats,
    rejection: Option<StreamRejection>,
}

/// The block buffer of the JSON format (its `Debug` shows the length only).
struct BlockBuf<'t>(&'t mut [u8]);

impl core::fmt::Debug for BlockBuf<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "BlockBuf({} bytes)", self.0.len())
    }
}

/// The largest power-of-two block from [`MIN_BLOCK`] to [`MAX_BLOCK`] whose CBOR data message
/// fits `rx_size` bytes for this thing name (and the longest stream name); `None` if not even
/// 256 fits. [`block_size_for_format`] for JSON.
pub fn block_size_for(rx_size: usize, thing: &str) -> Option<u32> {
    block_size_for_format(rx_size, thing, StreamFormat::Cbor)
}

/// The largest power-of-two block from [`MIN_BLOCK`] to [`MAX_BLOCK`] whose data message in
/// `format` fits `rx_size` bytes ([`StreamFormat::message_len`]); `None` if not even 256 fits.
/// JSON: 1 KiB for `rx_size` 2048, 4 KiB from `rx_size` 5720 + 2 × thing.
pub fn block_size_for_format(rx_size: usize, thing: &str, format: StreamFormat) -> Option<u32> {
    let mut b = MAX_BLOCK;
    while b >= MIN_BLOCK {
        if format.message_len(b, thing.len())? <= rx_size {
            return Some(b);
        }
        b = b.checked_div(2).unwrap_or(0);
    }
    None
}

impl<'t> AwsOta<'t> {
    /// OTA for `thing_name`, with blocks as large as the MQTT receive buffer `rx_size` allows
    /// ([`block_size_for`]). [`CloudError::InvalidInput`] for a thing name AWS would not accept,
    /// [`CloudError::ResponseTooLarge`] if not even a 256-byte block fits `rx_size`.
    pub fn new(thing_name: &'t str, rx_size: usize) -> Result<Self, CloudError> {
        if !id_like(thing_name, MAX_THING) {
            return Err(CloudError::InvalidInput);
        }
        let block_size =
            block_size_for(rx_size, thing_name).ok_or(CloudError::ResponseTooLarge {
                needed: StreamFormat::Cbor
                    .message_len(MIN_BLOCK, thing_name.len())
                    .unwrap_or(usize::MAX),
                capacity: rx_size,
            })?;
        Ok(Self {
            thing: thing_name,
            rx_size,
            format: StreamFormat::Cbor,
            json_block: None,
            block_size,
            blocks_per_request: requests_for(block_size),
            timeout: DEFAULT_TIMEOUT,
            retries: 5,
            status_every: 64,
            token: 0,
            stats: OtaStats::default(),
            rejection: None,
        })
    }

    /// Another block size (a power of two from 256 to 4096; it must fit the receive buffer:
    /// see [`block_size_for`], and with JSON the block buffer). [`CloudError::InvalidInput`]
    /// otherwise.
    pub fn with_block_size(mut self, block_size: u32) -> Result<Self, CloudError> {
        if !block_size.is_power_of_two()
            || !(MIN_BLOCK..=MAX_BLOCK).contains(&block_size)
            || self
                .json_block
                .as_ref()
                .is_some_and(|b| b.0.len() < block_size as usize)
        {
            return Err(CloudError::InvalidInput);
        }
        self.block_size = block_size;
        Ok(self)
    }

    /// Streams in JSON (`.../get/json`, `.../data/json`, `.../rejected/json`) instead of CBOR.
    /// A block arrives as base64 text and is decoded into `block_buf` before it is written,
    /// so `block_buf` holds at least one block. The block size becomes the largest that fits
    /// both the receive buffer ([`block_size_for_format`]: base64 makes the message 4/3 of the
    /// block, so e.g. `rx_size` 4608 gives 2 KiB blocks where CBOR gets 4 KiB) and
    /// `block_buf`; call [`with_block_size`](Self::with_block_size) after this to choose
    /// another. Call it before [`with_blocks_per_request`](Self::with_blocks_per_request): it
    /// sets the blocks per request to the default for the new block size.
    /// [`CloudError::ResponseTooLarge`] if not even a 256-byte block fits both.
    pub fn with_json(mut self, block_buf: &'t mut [u8]) -> Result<Self, CloudError> {
        let by_rx = block_size_for_format(self.rx_size, self.thing, StreamFormat::Json);
        let mut b = by_rx.unwrap_or(0);
        while b >= MIN_BLOCK && b as usize > block_buf.len() {
            b = b.checked_div(2).unwrap_or(0);
        }
        if b < MIN_BLOCK {
            return Err(CloudError::ResponseTooLarge {
                needed: StreamFormat::Json
                    .message_len(MIN_BLOCK, self.thing.len())
                    .unwrap_or(usize::MAX),
                capacity: self.rx_size,
            });
        }
        self.format = StreamFormat::Json;
        self.json_block = Some(BlockBuf(block_buf));
        self.block_size = b;
        self.blocks_per_request = requests_for(b);
        Ok(self)
    }

    /// The stream format in use ([`StreamFormat::Cbor`] unless
    /// [`with_json`](Self::with_json)).
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// Blocks asked for per request (1 to 256; default: 32 KiB worth).
    pub fn with_blocks_per_request(mut self, n: u32) -> Self {
        self.blocks_per_request = n.clamp(1, MAX_BLOCKS_PER_REQUEST);
        self
    }

    /// The wait for the next block before the missing ones are asked for again (default
    /// [`DEFAULT_TIMEOUT`]); also the wait for a job.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Requests in a row that may go unanswered before the job fails with reason
    /// `"timeout"` (default 5).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Report `IN_PROGRESS` with `"receive":"n/total"` every `n` blocks (and at the first; AWS's
    /// library: 64).
    pub fn with_status_every(mut self, n: u32) -> Self {
        self.status_every = n.max(1);
        self
    }

    /// The block size in use.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Counters so far.
    pub fn stats(&self) -> OtaStats {
        self.stats
    }

    /// Why the stream service last refused a request ([`OtaError::Rejected`]).
    pub fn last_rejection(&self) -> Option<StreamRejection> {
        self.rejection
    }

    fn jobs_topic(&self, suffix: &str) -> Result<Topic, CloudError> {
        let mut t = Topic::new();
        write!(t, "$aws/things/{}/jobs/{}", self.thing, suffix)
            .map_err(|_| CloudError::RequestTooLarge)?;
        Ok(t)
    }

    fn stream_topic(&self, stream: &str, suffix: &str) -> Result<Topic, CloudError> {
        let mut t = Topic::new();
        write!(
            t,
            "$aws/things/{}/streams/{}/{}",
            self.thing, stream, suffix
        )
        .map_err(|_| CloudError::RequestTooLarge)?;
        Ok(t)
    }

    fn next_token(&mut self) -> Result<heapless::String<160>, CloudError> {
        self.token = self.token.wrapping_add(1);
        let mut t = heapless::String::new();
        write!(t, "{}:{}", self.token, self.thing).map_err(|_| CloudError::RequestTooLarge)?;
        Ok(t)
    }

    /// Asks for the next pending job and waits for the answer (at most the timeout). The
    /// message is copied into `buf` (a job document is a few hundred bytes; AWS allows 32 KB),
    /// which the returned job borrows. Subscribes first to `notify-next` and to the answer
    /// topics (again on every call: cheap, and a new session lost them).
    pub async fn next_job<'b, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        buf: &'b mut [u8],
    ) -> Result<Job<'b>, CloudError> {
        let notify = self.jobs_topic("notify-next")?;
        let accepted = self.jobs_topic("$next/get/accepted")?;
        let rejected = self.jobs_topic("$next/get/rejected")?;
        let deadline = Instant::now().saturating_add(self.timeout);
        for t in [&notify, &accepted, &rejected] {
            retry_busy(conn, deadline, async |c| {
                c.subscribe(t, QoS::AtLeastOnce).await
            })
            .await?;
        }
        let get = self.jobs_topic("$next/get")?;
        let token = self.next_token()?;
        let mut body: heapless::String<200> = heapless::String::new();
        write!(body, "{{\"clientToken\":\"{token}\"}}").map_err(|_| CloudError::RequestTooLarge)?;
        retry_busy(conn, deadline, async |c| {
            c.publish(&get, body.as_bytes(), QoS::AtLeastOnce).await
        })
        .await?;
        let deadline = Instant::now().saturating_add(self.timeout);
        let len = loop {
            let Some(msg) = bounded(deadline, conn.poll()).await?? else {
                continue;
            };
            let t = msg.topic();
            if t == rejected.as_str() {
                return Err(CloudError::Rejected { status: 0 });
            }
            if t == accepted.as_str() || t == notify.as_str() {
                let p = msg.payload();
                let capacity = buf.len();
                let dst = buf.get_mut(..p.len()).ok_or(CloudError::ResponseTooLarge {
                    needed: p.len(),
                    capacity,
                })?;
                dst.copy_from_slice(p);
                break p.len();
            }
        };
        let cap = buf.len();
        let msg = buf.get(..len).ok_or(CloudError::ResponseTooLarge {
            needed: len,
            capacity: cap,
        })?;
        Ok(parse_job(msg)?)
    }

    /// Reports `status` for `job_id` on `$aws/things/<thing>/jobs/<jobId>/update` with
    /// `statusDetails` made of `details` (keys and values without `"` or `\`), QoS 1, and
    /// waits until the broker acknowledged it.
    pub async fn report<IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        job_id: &str,
        status: JobStatus,
        details: &[(&str, &str)],
    ) -> Result<(), CloudError> {
        if !id_like(job_id, MAX_JOB_ID)
            || details
                .iter()
                .any(|(k, v)| k.contains(['"', '\\']) || v.contains(['"', '\\']))
        {
            return Err(CloudError::InvalidInput);
        }
        let mut t = Topic::new();
        write!(t, "$aws/things/{}/jobs/{}/update", self.thing, job_id)
            .map_err(|_| CloudError::RequestTooLarge)?;
        let mut body: heapless::String<512> = heapless::String::new();
        let too_large = |_| CloudError::RequestTooLarge;
        write!(
            body,
            "{{\"status\":\"{}\",\"statusDetails\":{{",
            status.as_str()
        )
        .map_err(too_large)?;
        for (n, (k, v)) in details.iter().enumerate() {
            let sep = if n == 0 { "" } else { "," };
            write!(body, "{sep}\"{k}\":\"{v}\"").map_err(too_large)?;
        }
        body.push_str("}}")
            .map_err(|_| CloudError::RequestTooLarge)?;
        debug!("job update: {}", status.as_str());
        let deadline = Instant::now().saturating_add(self.timeout);
        retry_busy(conn, deadline, async |c| {
            c.publish(&t, body.as_bytes(), QoS::AtLeastOnce).await
        })
        .await?;
        while !conn.all_acknowledged() {
            bounded(deadline, conn.poll()).await??;
        }
        Ok(())
    }

    /// After a boot: reports what the last update came to (see [`BootReport`]). A new image on
    /// its trial boot is confirmed here (`mark_booted`) — call this once the application's own
    /// self-test passed; being connected is part of it — and the job reported `SUCCEEDED`
    /// only then. The progress record is cleared once the report is acknowledged.
    pub async fn after_boot<DFU: NorFlash, STATE: NorFlash, REC: NorFlash, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        updater: &mut Updater<'_, DFU, STATE, REC>,
    ) -> Result<BootReport, CloudError> {
        let (rec, ok) = match updater.boot_status().await? {
            BootStatus::Normal => return Ok(BootReport::Nothing),
            BootStatus::Trial(None) => {
                updater.confirm().await?;
                return Ok(BootReport::Nothing);
            }
            BootStatus::Trial(Some(rec)) => {
                updater.confirm().await?;
                (rec, true)
            }
            BootStatus::Updated(rec) => (rec, true),
            BootStatus::RolledBack(rec) | BootStatus::NotApplied(rec) => (rec, false),
        };
        let job = core::str::from_utf8(rec.tag()).map_err(|_| OtaError::Protocol)?;
        let mut id = heapless::String::new();
        id.push_str(job).map_err(|_| OtaError::Protocol)?;
        if ok {
            self.report(conn, job, JobStatus::Succeeded, &[("self_test", "passed")])
                .await?;
        } else {
            self.report(conn, job, JobStatus::Failed, &[("reason", "rollback")])
                .await?;
        }
        updater.clear().await?;
        Ok(if ok {
            BootReport::Succeeded(id)
        } else {
            BootReport::RolledBack(id)
        })
    }

    /// Downloads the job's image into the update partition, checks its signature with `key`,
    /// requests the swap, and reports `IN_PROGRESS` with `"self_test":"ready"`: reset the
    /// device then. Resumes a download begun before (same job, stream, file, size, block size
    /// and signature).
    ///
    /// A link failure returns its error with the download resumable (connect again and call
    /// again). A refused image or stream, or no data after the retries, is reported `FAILED`
    /// with a reason, the record is cleared, and the error returned
    /// ([`CloudError::Ota`]). A flash error is reported as `IN_PROGRESS` with
    /// `"reason":"storage"`; the block is asked for again, and only more than
    /// [`with_retries`](Self::with_retries) failures in a row end the call with the error
    /// (resumable: call again).
    pub async fn download<DFU: NorFlash, STATE: NorFlash, REC: NorFlash, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        updater: &mut Updater<'_, DFU, STATE, REC>,
        job: &OtaJob<'_>,
        key: &CodeSigningKey,
    ) -> Result<(), CloudError> {
        // Lent to the download for its duration (it borrows `self` too), then given back.
        let mut json_block = self.json_block.take();
        let r = self
            .download_inner(
                conn,
                updater,
                job,
                key,
                json_block.as_mut().map(|b| &mut *b.0),
            )
            .await;
        self.json_block = json_block;
        match r {
            Ok(()) => Ok(()),
            Err(CloudError::Ota(e @ OtaError::Storage(_))) => {
                let _ = self
                    .report(
                        conn,
                        job.job_id,
                        JobStatus::InProgress,
                        &[("reason", e.reason())],
                    )
                    .await;
                Err(CloudError::Ota(e))
            }
            Err(CloudError::Ota(e)) => {
                let status = if matches!(e, OtaError::Size) {
                    JobStatus::Rejected
                } else {
                    JobStatus::Failed
                };
                // The image is refused: a retry of the job starts afresh.
                let _ = updater.clear().await;
                match (e, self.rejection) {
                    (OtaError::Rejected, Some(why)) => {
                        let details = [("reason", e.reason()), ("code", why.code())];
                        self.report(conn, job.job_id, status, &details).await?;
                    }
                    _ => {
                        self.report(conn, job.job_id, status, &[("reason", e.reason())])
                            .await?;
                    }
                }
                Err(CloudError::Ota(e))
            }
            Err(e) => Err(e),
        }
    }

    async fn download_inner<DFU: NorFlash, STATE: NorFlash, REC: NorFlash, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        updater: &mut Updater<'_, DFU, STATE, REC>,
        job: &OtaJob<'_>,
        key: &CodeSigningKey,
        mut json_block: Option<&mut [u8]>,
    ) -> Result<(), CloudError> {
        self.rejection = None;
        let format = self.format;
        if format == StreamFormat::Json
            && json_block
                .as_ref()
                .is_none_or(|b| b.len() < self.block_size as usize)
        {
            return Err(CloudError::InvalidInput);
        }
        let mut sig = [0u8; 80];
        let sig = decode_base64(job.signature.as_bytes(), &mut sig)?;
        if !id_like(job.stream, MAX_STREAM) {
            return Err(OtaError::Protocol.into());
        }
        let spec = ImageSpec {
            // The job id too: the record's tag names the job the outcome is reported to, so
            // another job for the same file starts afresh instead of inheriting a stale tag.
            id: image_id(&[
                job.job_id.as_bytes(),
                job.stream.as_bytes(),
                &[job.file_id],
                &job.size.to_le_bytes(),
                &self.block_size.to_le_bytes(),
                job.signature.as_bytes(),
            ]),
            size: job.size,
            block_size: self.block_size,
            tag: job.job_id.as_bytes(),
        };
        let mut progress = updater.begin(&spec).await?;
        let (data, rejected, get) = match format {
            StreamFormat::Cbor => ("data/cbor", "rejected/cbor", "get/cbor"),
            StreamFormat::Json => ("data/json", "rejected/json", "get/json"),
        };
        let data = self.stream_topic(job.stream, data)?;
        let rejected = self.stream_topic(job.stream, rejected)?;
        let get = self.stream_topic(job.stream, get)?;
        let deadline = Instant::now().saturating_add(self.timeout);
        retry_busy(conn, deadline, async |c| {
            c.subscribe(&data, QoS::AtMostOnce).await
        })
        .await?;
        retry_busy(conn, deadline, async |c| {
            c.subscribe(&rejected, QoS::AtMostOnce).await
        })
        .await?;
        let mut reported_first = false;
        let mut since_report = 0u32;
        let mut misses = 0u32;
        let mut storage_failures = 0u32;
        let file_id = u32::from(job.file_id);
        while !progress.is_complete() {
            // Ask for the missing blocks from the first missing one.
            let Some(first) = updater.next_missing(0).await? else {
                break;
            };
            let mut bitmap = [0u8; MAX_BITMAP];
            let bytes = usize::try_from(self.blocks_per_request.div_ceil(8))
                .unwrap_or(MAX_BITMAP)
                .min(MAX_BITMAP);
            let bitmap = bitmap.get_mut(..bytes).ok_or(OtaError::Config)?;
            let wanted = updater
                .missing(first, bitmap)
                .await?
                .min(self.blocks_per_request);
            let last_bit = bitmap_last(bitmap);
            let bitmap = bitmap.get(..last_bit).ok_or(OtaError::Config)?;
            let token = self.next_token()?;
            // JSON: 60 bytes of keys and numbers, the token, the bitmap in hex.
            let mut req = [0u8; 64 + 160 + 2 * MAX_BITMAP];
            let encode = match format {
                StreamFormat::Cbor => encode_get_stream,
                StreamFormat::Json => encode_get_stream_json,
            };
            let n = encode(
                &mut req,
                &token,
                job.file_id,
                self.block_size,
                first,
                bitmap,
                wanted,
            )?;
            let req = req.get(..n).ok_or(OtaError::Config)?;
            let deadline = Instant::now().saturating_add(self.timeout);
            retry_busy(conn, deadline, async |c| {
                c.publish(&get, req, QoS::AtMostOnce).await
            })
            .await?;
            self.stats.requests = self.stats.requests.saturating_add(1);
            // Take blocks until every requested one came (new, duplicate or refused), or the
            // stream is quiet for the timeout.
            let mut answered = 0u32;
            let mut new_blocks = 0u32;
            let mut storage_error = None;
            while answered < wanted {
                let msg = match with_timeout(self.timeout, conn.poll()).await {
                    Err(_) => break,
                    Ok(r) => r?,
                };
                let Some(msg) = msg else { continue };
                if msg.topic() == rejected.as_str() {
                    let why = match format {
                        StreamFormat::Cbor => decode_rejection(msg.payload()),
                        StreamFormat::Json => decode_rejection_json(msg.payload()),
                    }
                    .unwrap_or(StreamRejection::Other);
                    warn!("stream rejected the request: {}", why.code());
                    self.rejection = Some(why);
                    return Err(OtaError::Rejected.into());
                }
                if msg.topic() != data.as_str() {
                    continue;
                }
                answered = answered.saturating_add(1);
                let decoded = match json_block.as_deref_mut() {
                    Some(buf) if format == StreamFormat::Json => {
                        decode_block_json(msg.payload(), buf)
                    }
                    _ => decode_block(msg.payload()),
                };
                let block = match decoded {
                    Ok(b) if b.file_id == file_id => b,
                    _ => {
                        self.stats.refused = self.stats.refused.saturating_add(1);
                        continue;
                    }
                };
                match updater.write_block(block.index, block.payload).await {
                    Ok(crate::ota::BlockWritten::New) => {
                        new_blocks = new_blocks.saturating_add(1);
                        self.stats.blocks = self.stats.blocks.saturating_add(1);
                    }
                    Ok(crate::ota::BlockWritten::Duplicate) => {
                        self.stats.duplicates = self.stats.duplicates.saturating_add(1);
                    }
                    Err(OtaError::BlockLength { .. } | OtaError::BlockIndex(_)) => {
                        self.stats.refused = self.stats.refused.saturating_add(1);
                    }
                    Err(e @ OtaError::Storage(_)) => {
                        // The block stays missing and is asked for again; the other blocks
                        // of this request are kept. Reported after the round (a report now
                        // would wait for its PUBACK while blocks arrive). Only repeated
                        // failures end the download.
                        storage_failures = storage_failures.saturating_add(1);
                        if storage_failures > self.retries {
                            return Err(e.into());
                        }
                        storage_error = Some(e);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if answered < wanted {
                self.stats.timeouts = self.stats.timeouts.saturating_add(1);
            }
            if new_blocks == 0 {
                misses = misses.saturating_add(1);
                if misses > self.retries {
                    return Err(OtaError::Timeout.into());
                }
            } else {
                misses = 0;
            }
            progress = updater.progress().ok_or(OtaError::State)?;
            if let Some(e) = storage_error {
                let mut r: heapless::String<24> = heapless::String::new();
                let _ = write!(r, "{}/{}", progress.received, progress.total);
                self.report(
                    conn,
                    job.job_id,
                    JobStatus::InProgress,
                    &[("receive", &r), ("reason", e.reason())],
                )
                .await?;
            } else if new_blocks > 0 {
                storage_failures = 0;
            }
            since_report = since_report.saturating_add(new_blocks);
            if new_blocks > 0 && (!reported_first || since_report >= self.status_every) {
                reported_first = true;
                since_report = 0;
                let mut r: heapless::String<24> = heapless::String::new();
                let _ = write!(r, "{}/{}", progress.received, progress.total);
                self.report(conn, job.job_id, JobStatus::InProgress, &[("receive", &r)])
                    .await?;
            }
        }
        let checks = Checks {
            digest: None,
            signature: Some(SignatureCheck { key, der: sig }),
        };
        updater.finish(&checks).await?;
        self.report(
            conn,
            job.job_id,
            JobStatus::InProgress,
            &[("self_test", "ready")],
        )
        .await?;
        Ok(())
    }
}

/// Blocks per request by default: 32 KiB worth.
fn requests_for(block_size: u32) -> u32 {
    32_768u32
        .checked_div(block_size)
        .unwrap_or(1)
        .clamp(1, MAX_BLOCKS_PER_REQUEST)
}

/// Bytes of `bitmap` up to its last non-zero one.
fn bitmap_last(bitmap: &[u8]) -> usize {
    bitmap
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i.saturating_add(1))
}

fn busy(e: &MqttError) -> bool {
    matches!(
        e,
        MqttError::NotReady | MqttError::InflightExhausted | MqttError::BufferTooSmall
    )
}

/// `op` until minimq has room (acknowledgements come in meanwhile), or `deadline`.
async fn retry_busy<IO: MqttIo>(
    conn: &mut MqttConnection<'_, '_, IO>,
    deadline: Instant,
    mut op: impl AsyncFnMut(&mut MqttConnection<'_, '_, IO>) -> Result<(), MqttError>,
) -> Result<(), CloudError> {
    loop {
        match bounded(deadline, op(conn)).await? {
            Err(e) if busy(&e) => {
                bounded(deadline, conn.poll()).await??;
            }
            r => return Ok(r?),
        }
    }
}

/// `fut`, unless `deadline` passes first ([`CloudError::NoResponse`]).
async fn bounded<F: core::future::Future>(
    deadline: Instant,
    fut: F,
) -> Result<F::Output, CloudError> {
    let now = Instant::now();
    if now >= deadline {
        return Err(CloudError::NoResponse);
    }
    with_timeout(deadline.saturating_duration_since(now), fut)
        .await
        .map_err(|_| CloudError::NoResponse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_stream_request_is_the_cbor_aws_library_sends() {
        // AWS's example: blocks 20, 21, 24, 43 from offset 20 -> bitmap 13 00 80.
        let mut out = [0u8; 64];
        let n = encode_get_stream(&mut out, "1:t", 1, 256, 20, &[0x13, 0x00, 0x80], 4).unwrap();
        let want: &[u8] = &[
            0xA6, // map(6)
            0x61, b'c', 0x63, b'1', b':', b't', // "c": "1:t"
            0x61, b'f', 0x01, // "f": 1
            0x61, b'l', 0x19, 0x01, 0x00, // "l": 256
            0x61, b'o', 0x14, // "o": 20
            0x61, b'b', 0x43, 0x13, 0x00, 0x80, // "b": h'130080'
            0x61, b'n', 0x04, // "n": 4
        ];
        assert_eq!(&out[..n], want);
        // Too small a buffer is an error, not a cut request.
        assert_eq!(
            encode_get_stream(&mut out[..10], "1:t", 1, 256, 20, &[1], 4),
            Err(OtaError::Protocol)
        );
    }

    #[test]
    fn data_blocks_decode_and_malformed_ones_are_errors() {
        let mut msg = [
            0xA5, 0x61, b'f', 0x00, 0x61, b'i', 0x05, 0x61, b'x', 0x80, 0x61, b'l', 0x03, 0x61,
            b'p', 0x43, 1, 2, 3,
        ];
        let b = decode_block(&msg).unwrap();
        assert_eq!(
            (b.file_id, b.index, b.len, b.payload),
            (0, 5, 3, &[1u8, 2, 3][..])
        );
        // Length that does not match, truncation, not a map.
        msg[12] = 4;
        assert_eq!(decode_block(&msg), Err(OtaError::Protocol));
        msg[12] = 3;
        for n in 0..msg.len() {
            assert_eq!(decode_block(&msg[..n]), Err(OtaError::Protocol));
        }
        assert_eq!(decode_block(&[0x80]), Err(OtaError::Protocol));
        let rej = [
            0xA1, 0x61, b'o', 0x68, b'N', b'o', b't', b'F', b'o', b'u', b'n', b'd',
        ];
        assert_eq!(decode_rejection(&rej), Ok(StreamRejection::Other));
        let rej = [
            0xA1, 0x61, b'o', 0x70, b'R', b'e', b's', b'o', b'u', b'r', b'c', b'e', b'N', b'o',
            b't', b'F', b'o', b'u', b'n', b'd',
        ];
        assert_eq!(
            decode_rejection(&rej),
            Ok(StreamRejection::ResourceNotFound)
        );
        for (code, r) in StreamRejection::CODES {
            assert_eq!((StreamRejection::from_code(code), r.code()), (r, code));
        }
    }

    #[test]
    fn job_documents() {
        let ota = br#"{"clientToken":"1:t","timestamp":5,"execution":{"jobId":"j-1","status":"IN_PROGRESS","statusDetails":{"self_test":"ready"},"queuedAt":1,"jobDocument":{"afr_ota":{"protocols":["MQTT"],"streamname":"s-1","files":[{"filepath":"f","filesize":300,"fileid":2,"certfile":"c","attr":0,"sig-sha256-ecdsa":"QUJD"}]}}}}"#;
        let Job::Ota(j) = parse_job(ota).unwrap() else {
            panic!()
        };
        assert_eq!(
            (j.job_id, j.stream, j.file_id, j.size),
            ("j-1", "s-1", 2, 300)
        );
        assert_eq!((j.file_path, j.cert_file, j.signature), ("f", "c", "QUJD"));
        assert!(j.self_test);
        let other =
            br#"{"execution":{"jobId":"x","jobDocument":{"operation":"reboot","n":[1,{"a":2}]}}}"#;
        assert!(matches!(
            parse_job(other),
            Ok(Job::Other { job_id: "x", .. })
        ));
        assert_eq!(
            parse_job(br#"{"timestamp":1,"clientToken":"1:t"}"#),
            Ok(Job::None)
        );
        // No signature, file id over 255, empty, not JSON, a job id AWS would not make.
        for bad in [
            &br#"{"execution":{"jobId":"j","jobDocument":{"afr_ota":{"streamname":"s","files":[{"filesize":3,"fileid":0}]}}}}"#[..],
            br#"{"execution":{"jobId":"j","jobDocument":{"afr_ota":{"streamname":"s","files":[{"filesize":3,"fileid":256,"sig-sha256-ecdsa":"QQ"}]}}}}"#,
            br#"{"execution":{"jobId":"j","jobDocument":{"afr_ota":{"streamname":"s","files":[]}}}}"#,
            br#"{"execution":{"jobId":"j/../x","jobDocument":{}}}"#,
            b"not json",
        ] {
            assert_eq!(parse_job(bad), Err(OtaError::Protocol), "{:?}", core::str::from_utf8(bad));
        }
    }

    /// `b64` of `data` (test helper, with padding).
    fn b64(data: &[u8]) -> std::string::String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = std::string::String::new();
        for c in data.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for k in 0..4 {
                s.push(if k <= c.len() {
                    T[(n >> (18 - 6 * k) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        s
    }

    extern crate std;

    #[test]
    fn get_stream_request_in_json_has_the_hex_bitmap_in_the_cbor_bit_order() {
        // AWS's example: blocks 20, 21, 24, 43 from offset 20 -> "0x130080". The bitmap is
        // made the way `Updater::missing` makes it (bit i = block o + i, LSB first), so both
        // formats ask for the same blocks.
        let mut bitmap = [0u8; 3];
        for block in [20u32, 21, 24, 43] {
            let bit = block - 20;
            bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
        }
        assert_eq!(bitmap, [0x13, 0x00, 0x80]);
        let mut out = [0u8; 128];
        let n = encode_get_stream_json(&mut out, "1:t", 1, 256, 20, &bitmap, 4).unwrap();
        let want = br#"{"c":"1:t","f":1,"l":256,"o":20,"b":"0x130080","n":4}"#;
        assert_eq!(&out[..n], want);
        let mut cbor = [0u8; 64];
        let m = encode_get_stream(&mut cbor, "1:t", 1, 256, 20, &bitmap, 4).unwrap();
        assert!(cbor[..m].ends_with(&[0x43, 0x13, 0x00, 0x80, 0x61, b'n', 0x04]));
        // Hex digits of every byte value, leading zeros kept; the largest numbers.
        let n =
            encode_get_stream_json(&mut out, "t", 255, 4096, u32::MAX, &[0x0a, 0xff], 9).unwrap();
        assert_eq!(
            &out[..n],
            br#"{"c":"t","f":255,"l":4096,"o":4294967295,"b":"0x0aff","n":9}"#
        );
        // Every buffer too small by any amount is an error, never a cut request.
        for cap in 0..n {
            assert_eq!(
                encode_get_stream_json(&mut out[..cap], "t", 255, 4096, u32::MAX, &[0x0a, 0xff], 9),
                Err(OtaError::Protocol),
                "{cap}"
            );
        }
        // A token that would need escaping.
        for bad in ["a\"b", "a\\b", "a\nb"] {
            assert_eq!(
                encode_get_stream_json(&mut out, bad, 0, 256, 0, &[1], 1),
                Err(OtaError::Protocol)
            );
        }
        // The largest request fits the buffer `download` uses.
        let token = std::format!("{}:{}", u32::MAX, "t".repeat(MAX_THING));
        let mut req = [0u8; 64 + 160 + 2 * MAX_BITMAP];
        assert!(
            encode_get_stream_json(
                &mut req,
                &token,
                255,
                MAX_BLOCK,
                u32::MAX,
                &[0xff; MAX_BITMAP],
                u32::MAX
            )
            .is_ok()
        );
    }

    #[test]
    fn json_data_blocks_decode_their_base64_and_malformed_ones_are_errors() {
        let data: std::vec::Vec<u8> = (0..=255u8).cycle().take(1024).collect();
        let msg = std::format!(
            r#"{{"c":"7:t","f":2,"l":1024,"i":9,"x":[1,{{"y":null}}],"p":"{}"}}"#,
            b64(&data)
        );
        let mut buf = [0u8; 1024];
        let b = decode_block_json(msg.as_bytes(), &mut buf).unwrap();
        assert_eq!((b.file_id, b.index, b.len), (2, 9, 1024));
        assert_eq!(b.payload, &data[..]);
        // Tails of 1, 2 and 3 bytes, with and without padding; "\/" is "/".
        for len in 1..=7usize {
            let d: std::vec::Vec<u8> = (0..len as u8).map(|x| x.wrapping_mul(97) | 0x3f).collect();
            let text = b64(&d);
            for t in [
                text.clone(),
                text.trim_end_matches('=').into(),
                text.replace('/', "\\/"),
            ] {
                let m = std::format!(r#"{{"f":0,"i":0,"l":{len},"p":"{t}"}}"#);
                let mut out = [0u8; 8];
                let b = decode_block_json(m.as_bytes(), &mut out)
                    .unwrap_or_else(|e| panic!("{m}: {e:?}"));
                assert_eq!(b.payload, &d[..], "{m}");
            }
        }
        // The JSON escape of "/" (allowed, if rare) is read as "/": "P/8=" is 3F FF.
        let mut out = [0u8; 8];
        let m = br#"{"f":0,"i":0,"l":2,"p":"P\/8="}"#;
        assert_eq!(
            decode_block_json(m, &mut out).unwrap().payload,
            &[0x3f, 0xff]
        );
        let ok = |p: &str, l: u32| std::format!(r#"{{"f":0,"i":0,"l":{l},"p":"{p}"}}"#);
        assert!(decode_block_json(ok("AQID", 3).as_bytes(), &mut out).is_ok());
        for bad in [
            ok("AQID", 4),                                       // l is not the decoded length
            ok("AQI", 3),                                        // 2 bytes, not 3
            ok("AQIDB", 4),                                      // one symbol left over
            ok("AQ=D", 3),                                       // data after padding
            ok("AQ===", 1),                                      // too much padding
            ok("AQ I", 2),                                       // whitespace
            ok("AQ\\nI", 2),                                     // another JSON escape
            ok("AQ\\", 1),                                       // a lone backslash
            ok("AQ-_", 3),                                       // the URL alphabet
            ok("AQIDBAUGBwgJ", 9),                               // 9 bytes into 8: overlong
            r#"{"f":0,"i":0,"p":"AQID"}"#.into(),                // no l
            r#"{"f":0,"i":-1,"l":3,"p":"AQID"}"#.into(),         // negative
            r#"{"f":4294967296,"i":0,"l":3,"p":"AQID"}"#.into(), // over u32
            r#"{"f":0,"i":0,"l":3,"p":3}"#.into(),               // p not a string
            r#"[1,2]"#.into(),
            "".into(),
        ] {
            assert_eq!(
                decode_block_json(bad.as_bytes(), &mut out),
                Err(OtaError::Protocol),
                "{bad}"
            );
        }
        // Cut anywhere: an error.
        for n in 0..msg.len() {
            assert_eq!(
                decode_block_json(&msg.as_bytes()[..n], &mut buf),
                Err(OtaError::Protocol)
            );
        }
        // Rejections: "o", the legacy "code", neither.
        assert_eq!(
            decode_rejection_json(br#"{"o":"ResourceNotFound","m":"no","c":"1:t"}"#),
            Ok(StreamRejection::ResourceNotFound)
        );
        assert_eq!(
            decode_rejection_json(br#"{"code":"VersionMismatch","clientToken":"1:t"}"#),
            Ok(StreamRejection::VersionMismatch)
        );
        assert_eq!(
            decode_rejection_json(br#"{"o":"Whatever"}"#),
            Ok(StreamRejection::Other)
        );
        assert_eq!(
            decode_rejection_json(br#"{"m":"x"}"#),
            Err(OtaError::Protocol)
        );
        assert_eq!(decode_rejection_json(b"\xa1"), Err(OtaError::Protocol));
    }

    #[test]
    fn json_blocks_are_smaller_for_the_same_receive_buffer() {
        let json = StreamFormat::Json;
        assert_eq!(block_size_for_format(2048, "thing", json), Some(1024));
        assert_eq!(block_size_for_format(4608, "thing", json), Some(2048));
        assert_eq!(block_size_for_format(5720 + 10, "thing", json), Some(4096));
        assert_eq!(block_size_for_format(5720 + 9, "thing", json), Some(2048));
        assert_eq!(
            json.message_len(4096, 5),
            Some(4 * 1366 + JSON_BLOCK_MARGIN + 10 + MAX_STREAM)
        );
        // The worst-case data message (longest token, 8-digit index) fits message_len.
        let thing = "t".repeat(20);
        let stream = "s".repeat(MAX_STREAM);
        let body = std::format!(
            r#"{{"c":"{}:{thing}","f":255,"l":4096,"i":16777215,"p":"{}"}}"#,
            u32::MAX,
            b64(&[0u8; 4096])
        );
        let topic = std::format!("$aws/things/{thing}/streams/{stream}/data/json");
        let packet = 4 + 2 + topic.len() + 2 + 1 + body.len();
        assert!(
            packet + 32 <= json.message_len(4096, thing.len()).unwrap(),
            "{packet}"
        );
        // The block buffer bounds the block too.
        let mut small = [0u8; 1024];
        let ota = AwsOta::new("thing", 8192).unwrap();
        assert_eq!((ota.block_size(), ota.format()), (4096, StreamFormat::Cbor));
        let ota = ota.with_json(&mut small).unwrap();
        assert_eq!((ota.block_size(), ota.format()), (1024, StreamFormat::Json));
        assert!(ota.with_block_size(2048).is_err());
        let mut tiny = [0u8; 255];
        assert!(
            AwsOta::new("thing", 8192)
                .unwrap()
                .with_json(&mut tiny)
                .is_err()
        );
        let mut big = [0u8; 4096];
        assert!(
            AwsOta::new("thing", 600)
                .unwrap()
                .with_json(&mut big)
                .is_err()
        );
        assert!(
            !std::format!(
                "{:?}",
                AwsOta::new("thing", 8192)
                    .unwrap()
                    .with_json(&mut big)
                    .unwrap()
            )
            .contains("0, 0")
        );
    }

    #[test]
    fn block_size_follows_the_receive_buffer() {
        assert_eq!(block_size_for(2048, "thing"), Some(1024));
        assert_eq!(
            block_size_for(4096 + BLOCK_MARGIN + 2 * 5 + MAX_STREAM, "thing"),
            Some(4096)
        );
        assert_eq!(
            block_size_for(4096 + BLOCK_MARGIN + 2 * 5 + MAX_STREAM - 1, "thing"),
            Some(2048)
        );
        // The echoed client token counts the thing name a second time.
        let long = "t".repeat(100);
        assert_eq!(block_size_for(4608, &long), Some(4096));
        assert_eq!(block_size_for(4096 + 256 + 100, &long), Some(2048));
        assert_eq!(block_size_for(400, "thing"), None);
        assert!(AwsOta::new("thing", 400).is_err());
        assert!(AwsOta::new("bad thing", 4096).is_err());
        assert!(
            AwsOta::new("t", 4096)
                .unwrap()
                .with_block_size(3000)
                .is_err()
        );
    }
}
