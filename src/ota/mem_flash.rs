//! A RAM-backed NOR flash with fault injection, for tests, simulations and the QEMU firmware.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// A NOR flash of `N` bytes in RAM, erased in sectors of `ERASE` bytes and programmed in units
/// of `WRITE` bytes, with the semantics of real NOR: erasing sets bytes to `0xFF`, programming
/// can only clear bits (the stored byte becomes `old & new`).
///
/// It implements both the blocking (`embedded_storage`) and the async
/// (`embedded_storage_async`) `NorFlash` traits, so the same memory can be written by the
/// application's [`Updater`](super::Updater) and then swapped by `embassy-boot`'s real
/// (blocking) `BootLoader`, as on a device across a reset. Share it through `&mut MemFlash`
/// (both trait families are implemented for `&mut T`).
///
/// Faults: [`fail_write`](Self::fail_write) and [`fail_erase`](Self::fail_erase) make a chosen
/// later operation fail; a failing write programs the first half of its bytes (rounded to
/// `WRITE`) before it reports [`NorFlashErrorKind::Other`], as a write cut by a power loss or a
/// flash controller error would.
///
/// `N` bytes live inline: put a large one in a `static` (or a `Box` on a host).
pub struct MemFlash<const N: usize, const ERASE: usize, const WRITE: usize> {
    mem: [u8; N],
    writes: u32,
    erases: u32,
    fail_write_at: Option<u32>,
    fail_erase_at: Option<u32>,
}

impl<const N: usize, const ERASE: usize, const WRITE: usize> core::fmt::Debug
    for MemFlash<N, ERASE, WRITE>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemFlash")
            .field("size", &N)
            .field("erase_size", &ERASE)
            .field("write_size", &WRITE)
            .field("writes", &self.writes)
            .field("erases", &self.erases)
            .finish_non_exhaustive()
    }
}

impl<const N: usize, const ERASE: usize, const WRITE: usize> Default for MemFlash<N, ERASE, WRITE> {
    fn default() -> Self {
        Self::new()
    }
}

/// The error of a [`MemFlash`] operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemFlashError(pub NorFlashErrorKind);

impl NorFlashError for MemFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl<const N: usize, const ERASE: usize, const WRITE: usize> MemFlash<N, ERASE, WRITE> {
    /// An erased flash (all bytes `0xFF`).
    pub const fn new() -> Self {
        Self {
            mem: [0xFF; N],
            writes: 0,
            erases: 0,
            fail_write_at: None,
            fail_erase_at: None,
        }
    }

    /// The memory, as the flash holds it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.mem
    }

    /// The memory, to corrupt it on purpose.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.mem
    }

    /// Makes the `nth` write from now fail (0: the next one). One fault at a time.
    pub fn fail_write(&mut self, nth: u32) {
        self.fail_write_at = Some(self.writes.saturating_add(nth));
    }

    /// Makes the `nth` erase from now fail (0: the next one), erasing nothing.
    pub fn fail_erase(&mut self, nth: u32) {
        self.fail_erase_at = Some(self.erases.saturating_add(nth));
    }

    /// Write operations so far (including failed ones).
    pub fn writes(&self) -> u32 {
        self.writes
    }

    /// Erase operations so far (including failed ones).
    pub fn erases(&self) -> u32 {
        self.erases
    }

    fn range(
        &self,
        offset: u32,
        len: usize,
        align: usize,
    ) -> Result<(usize, usize), MemFlashError> {
        let start = offset as usize;
        let end = start
            .checked_add(len)
            .ok_or(MemFlashError(NorFlashErrorKind::OutOfBounds))?;
        if end > N {
            return Err(MemFlashError(NorFlashErrorKind::OutOfBounds));
        }
        if align != 0 && (start.checked_rem(align) != Some(0) || end.checked_rem(align) != Some(0))
        {
            return Err(MemFlashError(NorFlashErrorKind::NotAligned));
        }
        Ok((start, end))
    }

    fn do_read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MemFlashError> {
        let (start, end) = self.range(offset, bytes.len(), 1)?;
        let src = self
            .mem
            .get(start..end)
            .ok_or(MemFlashError(NorFlashErrorKind::OutOfBounds))?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn do_erase(&mut self, from: u32, to: u32) -> Result<(), MemFlashError> {
        let len = to
            .checked_sub(from)
            .ok_or(MemFlashError(NorFlashErrorKind::OutOfBounds))?;
        let (start, end) = self.range(from, len as usize, ERASE)?;
        let this = self.erases;
        self.erases = self.erases.saturating_add(1);
        if self.fail_erase_at == Some(this) {
            self.fail_erase_at = None;
            return Err(MemFlashError(NorFlashErrorKind::Other));
        }
        if let Some(m) = self.mem.get_mut(start..end) {
            m.fill(0xFF);
        }
        Ok(())
    }

    fn do_write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MemFlashError> {
        let (start, _) = self.range(offset, bytes.len(), WRITE)?;
        let this = self.writes;
        self.writes = self.writes.saturating_add(1);
        let fail = self.fail_write_at == Some(this);
        let n = if fail {
            self.fail_write_at = None;
            let half = bytes.len() / 2;
            half.saturating_sub(half.checked_rem(WRITE.max(1)).unwrap_or(0))
        } else {
            bytes.len()
        };
        for (i, b) in bytes.iter().take(n).enumerate() {
            if let Some(m) = self.mem.get_mut(start.saturating_add(i)) {
                *m &= *b;
            }
        }
        if fail {
            Err(MemFlashError(NorFlashErrorKind::Other))
        } else {
            Ok(())
        }
    }
}

impl<const N: usize, const ERASE: usize, const WRITE: usize> ErrorType
    for MemFlash<N, ERASE, WRITE>
{
    type Error = MemFlashError;
}

impl<const N: usize, const ERASE: usize, const WRITE: usize> ReadNorFlash
    for MemFlash<N, ERASE, WRITE>
{
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.do_read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        N
    }
}

impl<const N: usize, const ERASE: usize, const WRITE: usize> NorFlash
    for MemFlash<N, ERASE, WRITE>
{
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.do_erase(from, to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.do_write(offset, bytes)
    }
}

impl<const N: usize, const ERASE: usize, const WRITE: usize>
    embedded_storage_async::nor_flash::ReadNorFlash for MemFlash<N, ERASE, WRITE>
{
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.do_read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        N
    }
}

impl<const N: usize, const ERASE: usize, const WRITE: usize>
    embedded_storage_async::nor_flash::NorFlash for MemFlash<N, ERASE, WRITE>
{
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.do_erase(from, to)
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.do_write(offset, bytes)
    }
}
