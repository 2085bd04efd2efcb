//! Firmware update over the air into the update (DFU) partition of
//! [`embassy-boot`](https://docs.rs/embassy-boot), independent of the cloud: feature `ota`.
//!
//! [`http`] fetches an image in byte ranges over HTTPS through the modem's TLS (Aliyun OTA).
//!
//! The cloud protocols (`cloud::aws::ota`: AWS IoT Jobs + MQTT streams; Aliyun OTA) turn their
//! messages into calls on an [`Updater`]:
//!
//! 1. [`Updater::boot_status`] at start-up: a trial boot of a new image (self-test, then
//!    [`Updater::confirm`]), an update that was confirmed or rolled back (report it, then
//!    [`Updater::clear`]), or a normal boot.
//! 2. [`Updater::begin`] with the image's identity ([`ImageSpec`]): a new image erases the
//!    update partition once; the same image as before resumes where it stopped (after a link
//!    loss or a reset).
//! 3. [`Updater::write_block`] for each block, in any order; [`Updater::missing`] gives the
//!    bitmap of blocks still to ask for.
//! 4. [`Updater::finish`]: SHA-256 of what the flash holds, the expected digest, the ECDSA
//!    P-256 signature; only then the swap is requested (`mark_updated`).
//!
//! ```rust,no_run
//! use quectel::ota::embassy_boot::AlignedBuffer;
//! use quectel::ota::{
//!     BootStatus, Checks, CodeSigningKey, ImageSpec, MemFlash, OtaError, SignatureCheck, Updater,
//!     image_id,
//! };
//!
//! async fn example(image: &[u8], signature_der: &[u8], cert_der: &[u8]) -> Result<(), OtaError> {
//!     // On a device: embassy-boot's partitions of the MCU's flash; here RAM.
//!     let mut dfu = MemFlash::<{ 132 * 1024 }, 4096, 4>::new();
//!     let mut state = MemFlash::<4096, 4096, 4>::new();
//!     let mut record = MemFlash::<4096, 4096, 4>::new();
//!     let mut aligned = AlignedBuffer([0u8; 4]);
//!     let mut up = Updater::new(&mut dfu, &mut state, &mut record, &mut aligned.0)?;
//!     if let BootStatus::Trial(_) = up.boot_status().await? {
//!         up.confirm().await?; // after the self-test
//!     }
//!     let spec = ImageSpec {
//!         id: image_id(&[b"stream-1", &(image.len() as u32).to_le_bytes(), signature_der]),
//!         size: image.len() as u32,
//!         block_size: 1024,
//!         tag: b"job-1",
//!     };
//!     up.begin(&spec).await?;
//!     // Blocks come in any order (here: backwards).
//!     for (i, block) in image.chunks(1024).enumerate().rev() {
//!         up.write_block(i as u32, block).await?;
//!     }
//!     let key = CodeSigningKey::from_certificate_der(cert_der)?;
//!     let checks = Checks {
//!         digest: None,
//!         signature: Some(SignatureCheck { key: &key, der: signature_der }),
//!     };
//!     up.finish(&checks).await?; // swap requested: reset
//!     Ok(())
//! }
//! ```
//!
//! # Why embassy-boot's state API and not `FirmwareUpdater::write_firmware`
//!
//! `write_firmware` erases every sector it enters unless it is the last one it erased, which
//! is right for an image written front to back and wrong for blocks that arrive in any order
//! (a block for an earlier sector would erase the blocks already there), and after a reset it
//! would erase again. The updater therefore erases the update partition once, when a new image
//! starts (an STM32F4 sector is up to 128 KiB: erasing per block is out of the question), writes
//! blocks with plain NOR writes, and uses embassy-boot's [`FirmwareState`] for the state
//! partition (`get_state`, `mark_updated`, `mark_booted`): the bootloader's own format.
//!
//! # The progress record
//!
//! Which blocks are in flash is kept in a small NOR region the caller gives (a sector or two of
//! its own, outside the active, update and state partitions: the record must survive the swap,
//! the new image reads it to report the outcome). Layout, in units of the region's write size:
//!
//! | Offset | What |
//! |---|---|
//! | 0 | header (128 bytes): magic, image size, block size, image id (32 bytes), tag (≤ 64 bytes: e.g. the job id), checksum |
//! | 128 | "swap requested" cell |
//! | 128 + W | "confirmed" cell |
//! | 128 + 2W + i·W | block *i* is in flash |
//!
//! A cell is one write unit (`W` = the region's `WRITE_SIZE`), erased (`0xFF`) until it is
//! programmed to zero, once. That is the NOR trick: recording a block costs one small write and
//! never an erase, and a cell is written only after its block's data was written, so a cell
//! that is not erased means the block is in flash even if the power failed during the cell's
//! own write. The region is erased only when a new image starts (or by [`Updater::clear`]). A
//! record holds `(capacity − 128) / W − 2` blocks: a 4 KiB region with 4-byte writes holds
//! 990 blocks (3.9 MiB at 4 KiB blocks, 990 KiB at 1 KiB).
//!
//! The image id is a SHA-256 over what names the image in its protocol ([`image_id`]: stream,
//! file id, size and signature for AWS; URL, version and digest for Aliyun), so that a different
//! image starts from zero and the same image resumes.
//!
//! # Why the digest is computed by reading the flash back
//!
//! Blocks arrive out of order and across resets, so a hash "while writing" would need the
//! blocks in order and a hash state that survives a reset. Reading the partition back at the
//! end costs one pass over the image, and it checks what the flash really holds, which is what
//! the bootloader will copy: a write that silently failed or bits that did not program are
//! caught before the swap.

pub mod http;
mod mem_flash;
mod verify;

use embassy_boot::{FirmwareState, FirmwareUpdaterError, State};
use embedded_storage::nor_flash::NorFlashErrorKind;
use embedded_storage_async::nor_flash::NorFlash;
use sha2::Digest as _;

/// embassy-boot (0.7), whose partitions and state the updater works with: `AlignedBuffer`,
/// and the `BootLoader` itself for a host simulation.
pub use embassy_boot;
/// The blocking NOR flash traits (embedded-storage 0.3), which [`MemFlash`] also implements.
pub use embedded_storage;
/// The async NOR flash traits (embedded-storage-async 0.4) the [`Updater`] takes.
pub use embedded_storage_async;
pub use mem_flash::{MemFlash, MemFlashError};
pub use verify::{Checks, CodeSigningKey, Digest, SignatureCheck, decode_base64};

/// Why an update stopped. [`OtaError::reason`] gives the short reason a cloud status report
/// carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtaError {
    /// The signature is malformed or does not verify with the code-signing key.
    Signature,
    /// The image's digest is not the expected one.
    Digest,
    /// The image does not fit the update partition or the progress record, or its size or
    /// block size is invalid.
    Size,
    /// A block of the wrong length (every block is full except the last). The block stays
    /// missing.
    BlockLength {
        /// The block.
        index: u32,
        /// Its length in bytes.
        expected: u32,
        /// What came.
        got: u32,
    },
    /// A block index beyond the image.
    BlockIndex(u32),
    /// [`Updater::finish`] before every block arrived.
    Incomplete {
        /// Blocks still missing.
        missing: u32,
    },
    /// A flash operation failed.
    Storage(NorFlashErrorKind),
    /// The bootloader state does not allow it (a new image on trial boot must be confirmed
    /// before another update), or no image was begun.
    State,
    /// The code-signing certificate or key is malformed or not P-256.
    Key,
    /// The flashes' geometry is not supported (read or write size not dividing 128, or the
    /// aligned buffer is not the state partition's write size).
    Config,
    /// No check given to [`Updater::finish`].
    NoCheck,
    /// The cloud did not answer in time.
    Timeout,
    /// The cloud refused a request, or the job was cancelled.
    Rejected,
    /// The cloud's message was malformed or did not fit its buffer.
    Protocol,
}

impl OtaError {
    /// A short reason for a cloud status report: `"signature"`, `"digest"`, `"size"` (also
    /// for a block of the wrong length or index), `"incomplete"`, `"storage"`, `"state"`,
    /// `"key"`, `"config"` (also for [`OtaError::NoCheck`]), `"timeout"`, `"rejected"` or
    /// `"protocol"`.
    pub fn reason(&self) -> &'static str {
        match self {
            OtaError::Signature => "signature",
            OtaError::Digest => "digest",
            OtaError::Size | OtaError::BlockLength { .. } | OtaError::BlockIndex(_) => "size",
            OtaError::Incomplete { .. } => "incomplete",
            OtaError::Storage(_) => "storage",
            OtaError::State => "state",
            OtaError::Key => "key",
            OtaError::Config | OtaError::NoCheck => "config",
            OtaError::Timeout => "timeout",
            OtaError::Rejected => "rejected",
            OtaError::Protocol => "protocol",
        }
    }
}

impl core::fmt::Display for OtaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OtaError::BlockLength {
                index,
                expected,
                got,
            } => write!(f, "block {index}: {got} bytes, {expected} expected"),
            OtaError::BlockIndex(i) => write!(f, "block {i} is beyond the image"),
            OtaError::Incomplete { missing } => write!(f, "{missing} blocks missing"),
            OtaError::Storage(kind) => write!(f, "flash: {kind:?}"),
            other => write!(f, "ota: {}", other.reason()),
        }
    }
}

impl core::error::Error for OtaError {}

#[cfg(feature = "defmt")]
impl defmt::Format for OtaError {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "OtaError({=str})", self.reason())
    }
}

impl From<FirmwareUpdaterError> for OtaError {
    fn from(e: FirmwareUpdaterError) -> Self {
        match e {
            FirmwareUpdaterError::Flash(kind) => OtaError::Storage(kind),
            FirmwareUpdaterError::Signature(_) => OtaError::Signature,
            FirmwareUpdaterError::BadState => OtaError::State,
        }
    }
}

fn storage<E: embedded_storage::nor_flash::NorFlashError>(e: E) -> OtaError {
    OtaError::Storage(e.kind())
}

/// The longest tag a record keeps (an AWS job id is at most 64 characters).
pub const TAG_LEN: usize = 64;

/// A SHA-256 over `parts`, each prefixed by its length: the id of an image from what names it
/// in its protocol.
pub fn image_id(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// The image to download.
#[derive(Clone, Copy, Debug)]
pub struct ImageSpec<'a> {
    /// Its identity ([`image_id`]).
    pub id: [u8; 32],
    /// Its size in bytes.
    pub size: u32,
    /// The block size in bytes (every block is full except the last).
    pub block_size: u32,
    /// What the protocol needs after the reboot to report the outcome (e.g. the job id), at most
    /// [`TAG_LEN`] bytes.
    pub tag: &'a [u8],
}

/// Download progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Progress {
    /// Blocks in flash.
    pub received: u32,
    /// Blocks in the image.
    pub total: u32,
}

impl Progress {
    /// Every block is in flash.
    pub fn is_complete(&self) -> bool {
        self.received >= self.total
    }
}

/// What [`Updater::write_block`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BlockWritten {
    /// The block was new and is in flash now.
    New,
    /// The block was already in flash (a duplicate); nothing was written.
    Duplicate,
}

/// An image as its progress record names it.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// Its identity.
    pub id: [u8; 32],
    /// Its size in bytes.
    pub size: u32,
    /// Its block size.
    pub block_size: u32,
    tag: heapless::Vec<u8, TAG_LEN>,
}

impl ImageRecord {
    /// The tag given in [`ImageSpec::tag`].
    pub fn tag(&self) -> &[u8] {
        &self.tag
    }
}

impl core::fmt::Debug for ImageRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ImageRecord")
            .field("size", &self.size)
            .field("block_size", &self.block_size)
            .field("tag_len", &self.tag.len())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ImageRecord {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(
            f,
            "ImageRecord {{ size: {}, block_size: {} }}",
            self.size,
            self.block_size
        )
    }
}

/// What the last update came to, as seen after a boot ([`Updater::boot_status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BootStatus {
    /// No update pending or to report (a download may be in progress: [`Updater::begin`]
    /// resumes it).
    Normal,
    /// The bootloader swapped in a new image and this is its trial boot: run the self-test,
    /// then [`Updater::confirm`]. A reset before that rolls back. `None` if the record does not
    /// name the image.
    Trial(Option<ImageRecord>),
    /// The new image confirmed itself: report success, then [`Updater::clear`].
    Updated(ImageRecord),
    /// The new image did not confirm itself and the bootloader restored the old one: report
    /// failure, then [`Updater::clear`].
    RolledBack(ImageRecord),
    /// A swap was recorded as requested but the bootloader never saw the request (a reset
    /// between the two writes): report failure, then [`Updater::clear`].
    NotApplied(ImageRecord),
}

/// Record geometry.
const HEADER: u32 = 128;
/// The header without its checksum.
const HEADER_BODY: usize = 124;
const MAGIC: &[u8; 4] = b"QOTA";
const VERSION: u8 = 1;
const CELL_SWAP: u32 = 0;
const CELL_CONFIRMED: u32 = 1;
const FIRST_BLOCK_CELL: u32 = 2;
/// DFU chunk for writes and read-back.
const CHUNK: usize = 256;

#[repr(C, align(32))]
struct Aligned<const N: usize>([u8; N]);

#[derive(Clone)]
struct Current {
    rec: ImageRecord,
    blocks: u32,
    received: u32,
}

/// Receives an image block by block into embassy-boot's update partition, resumably, and
/// requests the swap only for an image whose digest and signature check out.
///
/// `DFU`, `STATE`: embassy-boot's update and state partitions (the bootloader's layout: `DFU`
/// one erase page larger than the active partition). `REC`: the progress record's region (see
/// the module documentation). All three are async `NorFlash`; their read and write sizes must
/// divide 128 (every NOR flash of an MCU qualifies).
pub struct Updater<'d, DFU: NorFlash, STATE: NorFlash, REC: NorFlash> {
    dfu: DFU,
    state: FirmwareState<'d, STATE>,
    record: REC,
    current: Option<Current>,
}

impl<DFU: NorFlash, STATE: NorFlash, REC: NorFlash> core::fmt::Debug
    for Updater<'_, DFU, STATE, REC>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Updater")
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}

fn cfg_ok(read: usize, write: usize) -> bool {
    read != 0
        && write != 0
        && (HEADER as usize).checked_rem(read) == Some(0)
        && (HEADER as usize).checked_rem(write) == Some(0)
        && write.checked_rem(read) == Some(0)
}

fn round_up(n: u32, to: u32) -> Option<u32> {
    let rem = n.checked_rem(to)?;
    if rem == 0 {
        Some(n)
    } else {
        n.checked_add(to.checked_sub(rem)?)
    }
}

impl<'d, DFU: NorFlash, STATE: NorFlash, REC: NorFlash> Updater<'d, DFU, STATE, REC> {
    /// An updater over the update partition `dfu`, the bootloader's `state` partition and the
    /// progress `record` region. `aligned` is embassy-boot's work buffer for the state partition:
    /// exactly `max(STATE::WRITE_SIZE, STATE::READ_SIZE)` bytes, aligned as the flash needs
    /// (`embassy_boot::AlignedBuffer`). [`OtaError::Config`] if a geometry is not supported.
    pub fn new(
        dfu: DFU,
        state: STATE,
        record: REC,
        aligned: &'d mut [u8],
    ) -> Result<Self, OtaError> {
        if aligned.len() != STATE::WRITE_SIZE.max(STATE::READ_SIZE)
            || !cfg_ok(DFU::READ_SIZE, DFU::WRITE_SIZE)
            || !cfg_ok(REC::READ_SIZE, REC::WRITE_SIZE)
            || CHUNK.checked_rem(DFU::WRITE_SIZE) != Some(0)
        {
            return Err(OtaError::Config);
        }
        Ok(Self {
            dfu,
            state: FirmwareState::new(state, aligned),
            record,
            current: None,
        })
    }

    /// Gives the flashes back.
    pub fn release(self) -> (DFU, REC) {
        (self.dfu, self.record)
    }

    fn cell(&self, index: u32) -> Option<u32> {
        let w = u32::try_from(REC::WRITE_SIZE).ok()?;
        HEADER.checked_add(index.checked_mul(w)?)
    }

    async fn read_header(&mut self) -> Result<Option<ImageRecord>, OtaError> {
        let mut buf = Aligned([0u8; HEADER as usize]);
        if self.record.capacity() < HEADER as usize {
            return Err(OtaError::Size);
        }
        self.record.read(0, &mut buf.0).await.map_err(storage)?;
        Ok(parse_header(&buf.0))
    }

    async fn cell_done(&mut self, index: u32) -> Result<bool, OtaError> {
        let at = self.cell(index).ok_or(OtaError::Size)?;
        let mut buf = Aligned([0u8; HEADER as usize]);
        let cell = buf.0.get_mut(..REC::WRITE_SIZE).ok_or(OtaError::Config)?;
        self.record.read(at, cell).await.map_err(storage)?;
        Ok(cell.iter().any(|&b| b != 0xFF))
    }

    async fn set_cell(&mut self, index: u32) -> Result<(), OtaError> {
        let at = self.cell(index).ok_or(OtaError::Size)?;
        let buf = Aligned([0u8; HEADER as usize]);
        let cell = buf.0.get(..REC::WRITE_SIZE).ok_or(OtaError::Config)?;
        self.record.write(at, cell).await.map_err(storage)
    }

    /// What the last update came to. Call it once after every boot, before anything else of
    /// the updater.
    pub async fn boot_status(&mut self) -> Result<BootStatus, OtaError> {
        let state = self.state.get_state().await?;
        let rec = self.read_header().await?;
        let Some(rec) = rec else {
            return Ok(if state == State::Swap {
                BootStatus::Trial(None)
            } else {
                BootStatus::Normal
            });
        };
        let swap = self.cell_done(CELL_SWAP).await?;
        if state == State::Swap {
            return Ok(BootStatus::Trial(Some(rec).filter(|_| swap)));
        }
        if !swap {
            return Ok(BootStatus::Normal);
        }
        if state == State::Revert {
            return Ok(BootStatus::RolledBack(rec));
        }
        if self.cell_done(CELL_CONFIRMED).await? {
            Ok(BootStatus::Updated(rec))
        } else {
            Ok(BootStatus::NotApplied(rec))
        }
    }

    /// Confirms the running image (embassy-boot's `mark_booted`): call it on a trial boot once
    /// the self-test passed (the connection works). Harmless on a normal boot. The record notes
    /// the confirmation first, so a reset between the two writes leaves the bootloader's
    /// trial state and ends in a rollback, never in a success reported for an image that will
    /// be rolled back.
    pub async fn confirm(&mut self) -> Result<(), OtaError> {
        if self.state.get_state().await? == State::Swap
            && self.read_header().await?.is_some()
            && !self.cell_done(CELL_CONFIRMED).await?
        {
            self.set_cell(CELL_CONFIRMED).await?;
        }
        self.state.mark_booted().await?;
        Ok(())
    }

    /// Erases the progress record: after an outcome was reported, or to drop a download.
    pub async fn clear(&mut self) -> Result<(), OtaError> {
        let erase = u32::try_from(REC::ERASE_SIZE).map_err(|_| OtaError::Config)?;
        let cap = u32::try_from(self.record.capacity()).map_err(|_| OtaError::Size)?;
        let end = round_up(HEADER, erase).ok_or(OtaError::Size)?.min(cap);
        // Only the sectors that hold something: the header sector and those of set cells.
        let used = match &self.current {
            Some(c) => self
                .cell(FIRST_BLOCK_CELL.saturating_add(c.blocks))
                .ok_or(OtaError::Size)?,
            None => cap,
        };
        let end = round_up(used, erase)
            .ok_or(OtaError::Size)?
            .min(cap)
            .max(end);
        self.record.erase(0, end).await.map_err(storage)?;
        self.current = None;
        Ok(())
    }

    /// Starts or resumes the download of `image`. The same image as the record names (same id,
    /// size and block size) resumes with the blocks already in flash; any other image erases
    /// the record and the needed part of the update partition once, then starts from zero.
    /// [`OtaError::State`] on a trial boot that was not confirmed yet; [`OtaError::Size`] if the
    /// image does not fit the update partition or the record.
    pub async fn begin(&mut self, image: &ImageSpec<'_>) -> Result<Progress, OtaError> {
        self.current = None;
        if image.size == 0 || image.block_size == 0 || image.tag.len() > TAG_LEN {
            return Err(OtaError::Size);
        }
        if image.size as usize > self.dfu.capacity() {
            return Err(OtaError::Size);
        }
        let blocks = image.size.div_ceil(image.block_size);
        let end_cell = self
            .cell(FIRST_BLOCK_CELL.saturating_add(blocks))
            .ok_or(OtaError::Size)?;
        if end_cell as usize > self.record.capacity() {
            return Err(OtaError::Size);
        }
        if self.state.get_state().await? == State::Swap {
            return Err(OtaError::State);
        }
        let mut tag = heapless::Vec::new();
        tag.extend_from_slice(image.tag)
            .map_err(|_| OtaError::Size)?;
        let rec = ImageRecord {
            id: image.id,
            size: image.size,
            block_size: image.block_size,
            tag,
        };
        if let Some(old) = self.read_header().await?
            && old.id == rec.id
            && old.size == rec.size
            && old.block_size == rec.block_size
            && !self.cell_done(CELL_SWAP).await?
        {
            let mut received = 0u32;
            let mut next = 0u32;
            while let Some(i) = self.scan(next, blocks, true).await? {
                received = received.saturating_add(1);
                next = i.saturating_add(1);
            }
            self.current = Some(Current {
                rec: old,
                blocks,
                received,
            });
            return Ok(Progress {
                received,
                total: blocks,
            });
        }
        // A new image: record first (a reset after this finds no header and starts again), then
        // the update partition, then the header (a header means the partition is erased).
        self.current = Some(Current {
            rec: rec.clone(),
            blocks,
            received: 0,
        });
        self.clear().await?;
        let dfu_erase = u32::try_from(DFU::ERASE_SIZE).map_err(|_| OtaError::Config)?;
        let dfu_end = round_up(image.size, dfu_erase)
            .ok_or(OtaError::Size)?
            .min(u32::try_from(self.dfu.capacity()).unwrap_or(u32::MAX));
        self.dfu.erase(0, dfu_end).await.map_err(storage)?;
        let buf = Aligned(render_header(&rec));
        self.record.write(0, &buf.0).await.map_err(storage)?;
        self.current = Some(Current {
            rec,
            blocks,
            received: 0,
        });
        Ok(Progress {
            received: 0,
            total: blocks,
        })
    }

    /// The first block at or after `from` (below `blocks`) whose cell is set (`done`) or
    /// erased (`!done`).
    async fn scan(&mut self, from: u32, blocks: u32, done: bool) -> Result<Option<u32>, OtaError> {
        let w = REC::WRITE_SIZE;
        let per = (HEADER as usize).checked_div(w).ok_or(OtaError::Config)?;
        let per32 = u32::try_from(per).map_err(|_| OtaError::Config)?;
        let mut buf = Aligned([0u8; HEADER as usize]);
        let mut i = from;
        while i < blocks {
            let n = per32.min(blocks.saturating_sub(i));
            let at = self
                .cell(FIRST_BLOCK_CELL.saturating_add(i))
                .ok_or(OtaError::Size)?;
            let len = (n as usize).saturating_mul(w);
            let chunk = buf.0.get_mut(..len).ok_or(OtaError::Config)?;
            self.record.read(at, chunk).await.map_err(storage)?;
            for (k, cell) in chunk.chunks(w).enumerate() {
                if cell.iter().any(|&b| b != 0xFF) == done {
                    return Ok(Some(i.saturating_add(k as u32)));
                }
            }
            i = i.saturating_add(n);
        }
        Ok(None)
    }

    /// The download in progress, if [`begin`](Self::begin) was called.
    pub fn progress(&self) -> Option<Progress> {
        self.current.as_ref().map(|c| Progress {
            received: c.received,
            total: c.blocks,
        })
    }

    /// The image being downloaded.
    pub fn image(&self) -> Option<&ImageRecord> {
        self.current.as_ref().map(|c| &c.rec)
    }

    /// The first missing block at or after `from`.
    pub async fn next_missing(&mut self, from: u32) -> Result<Option<u32>, OtaError> {
        let blocks = self.current.as_ref().ok_or(OtaError::State)?.blocks;
        self.scan(from, blocks, false).await
    }

    /// Fills `bitmap` with the missing blocks from block `first` on, bit *i* = block
    /// `first + i`, byte 0 holding bits 7…0 (AWS's GetStream bitmap order), and returns how
    /// many bits are set. Blocks beyond the image are not set.
    pub async fn missing(&mut self, first: u32, bitmap: &mut [u8]) -> Result<u32, OtaError> {
        let blocks = self.current.as_ref().ok_or(OtaError::State)?.blocks;
        bitmap.fill(0);
        let span = u32::try_from(bitmap.len().saturating_mul(8)).unwrap_or(u32::MAX);
        let end = first.saturating_add(span).min(blocks);
        let mut count = 0u32;
        let mut from = first;
        while let Some(i) = self.scan(from, end, false).await? {
            let bit = i.saturating_sub(first);
            if let Some(b) = bitmap.get_mut((bit / 8) as usize) {
                *b |= 1 << (bit % 8);
            }
            count = count.saturating_add(1);
            from = i.saturating_add(1);
        }
        Ok(count)
    }

    /// Writes block `index` into the update partition and records it. Every block is
    /// `block_size` bytes except the last; a block of another length is refused
    /// ([`OtaError::BlockLength`]) and stays missing. A block already in flash is not written
    /// again ([`BlockWritten::Duplicate`]). A flash error leaves the block missing: write it
    /// again (NOR programs the same bytes over a half-written block to the same result).
    pub async fn write_block(&mut self, index: u32, data: &[u8]) -> Result<BlockWritten, OtaError> {
        let cur = self.current.as_ref().ok_or(OtaError::State)?;
        if index >= cur.blocks {
            return Err(OtaError::BlockIndex(index));
        }
        let offset = index
            .checked_mul(cur.rec.block_size)
            .ok_or(OtaError::Size)?;
        let expected = cur.rec.size.saturating_sub(offset).min(cur.rec.block_size);
        let got = u32::try_from(data.len()).unwrap_or(u32::MAX);
        if got != expected {
            return Err(OtaError::BlockLength {
                index,
                expected,
                got,
            });
        }
        let cell = FIRST_BLOCK_CELL.saturating_add(index);
        if self.cell_done(cell).await? {
            return Ok(BlockWritten::Duplicate);
        }
        let mut buf = Aligned([0xFFu8; CHUNK]);
        let mut at = offset;
        for piece in data.chunks(CHUNK) {
            buf.0.fill(0xFF);
            let dst = buf.0.get_mut(..piece.len()).ok_or(OtaError::Size)?;
            dst.copy_from_slice(piece);
            let len = round_up(piece.len() as u32, DFU::WRITE_SIZE as u32).ok_or(OtaError::Size)?;
            let src = buf.0.get(..len as usize).ok_or(OtaError::Config)?;
            self.dfu.write(at, src).await.map_err(storage)?;
            at = at.saturating_add(piece.len() as u32);
        }
        self.set_cell(cell).await?;
        if let Some(c) = self.current.as_mut() {
            c.received = c.received.saturating_add(1);
        }
        Ok(BlockWritten::New)
    }

    /// Reads the image back from the update partition, returns its SHA-256 and, when
    /// `checks` pass (the expected digest, the signature over the SHA-256), requests the swap:
    /// the record notes "swap requested", then embassy-boot's `mark_updated`. On any failure
    /// nothing is marked and the state partition is untouched. Reset after `Ok` to let the
    /// bootloader swap.
    pub async fn finish(&mut self, checks: &Checks<'_>) -> Result<[u8; 32], OtaError> {
        let cur = self.current.as_ref().ok_or(OtaError::State)?;
        if checks.digest.is_none() && checks.signature.is_none() {
            return Err(OtaError::NoCheck);
        }
        let size = cur.rec.size;
        let blocks = cur.blocks;
        let missing = match self.scan(0, blocks, false).await? {
            None => 0,
            Some(first) => {
                let mut n = 0u32;
                let mut from = first;
                while let Some(i) = self.scan(from, blocks, false).await? {
                    n = n.saturating_add(1);
                    from = i.saturating_add(1);
                }
                n
            }
        };
        if missing > 0 {
            return Err(OtaError::Incomplete { missing });
        }
        let mut sha = sha2::Sha256::new();
        #[cfg(feature = "aliyun")]
        let mut md5 = md5::Md5::new();
        let mut buf = Aligned([0u8; CHUNK]);
        let mut at = 0u32;
        while at < size {
            let want = size.saturating_sub(at).min(CHUNK as u32);
            let len = round_up(want, DFU::READ_SIZE as u32).ok_or(OtaError::Size)?;
            let chunk = buf.0.get_mut(..len as usize).ok_or(OtaError::Config)?;
            self.dfu.read(at, chunk).await.map_err(storage)?;
            let data = chunk.get(..want as usize).ok_or(OtaError::Config)?;
            sha.update(data);
            #[cfg(feature = "aliyun")]
            md5.update(data);
            at = at.saturating_add(want);
        }
        let digest: [u8; 32] = sha.finalize().into();
        match checks.digest {
            None => {}
            Some(Digest::Sha256(d)) if d != digest => return Err(OtaError::Digest),
            Some(Digest::Sha256(_)) => {}
            #[cfg(feature = "aliyun")]
            Some(Digest::Md5(d)) => {
                let got: [u8; 16] = md5.finalize().into();
                if d != got {
                    return Err(OtaError::Digest);
                }
            }
        }
        if let Some(sig) = checks.signature {
            sig.key.verify(&digest, sig.der)?;
        }
        if self.state.get_state().await? == State::Swap {
            return Err(OtaError::State);
        }
        self.set_cell(CELL_SWAP).await?;
        self.state.mark_updated().await?;
        Ok(digest)
    }
}

fn header_check(body: &[u8]) -> [u8; 4] {
    let d: [u8; 32] = sha2::Sha256::digest(body).into();
    let [a, b, c, e, ..] = d;
    [a, b, c, e]
}

fn render_header(rec: &ImageRecord) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    let (body, check) = h.split_at_mut(HEADER_BODY);
    let mut w = Writer { buf: body, at: 0 };
    w.put(MAGIC);
    w.put(&[VERSION, rec.tag.len() as u8, 0, 0]);
    w.put(&rec.size.to_le_bytes());
    w.put(&rec.block_size.to_le_bytes());
    w.put(&rec.id);
    w.put(&rec.tag);
    let c = header_check(body);
    check.copy_from_slice(&c);
    h
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.at..end) {
            dst.copy_from_slice(bytes);
        }
        self.at = end;
    }
}

fn parse_header(h: &[u8; HEADER as usize]) -> Option<ImageRecord> {
    let (body, check) = h.split_at_checked(HEADER_BODY)?;
    if body.get(..4)? != MAGIC || body.get(4)? != &VERSION || header_check(body) != check {
        return None;
    }
    let tag_len = usize::from(*body.get(5)?);
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            body.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let size = u32_at(8)?;
    let block_size = u32_at(12)?;
    let id: [u8; 32] = body.get(16..48)?.try_into().ok()?;
    let mut tag = heapless::Vec::new();
    tag.extend_from_slice(body.get(48..48usize.checked_add(tag_len)?)?)
        .ok()?;
    if size == 0 || block_size == 0 {
        return None;
    }
    Some(ImageRecord {
        id,
        size,
        block_size,
        tag,
    })
}
