//! Socket slots: per-socket receive and transmit rings and state, shared by the digester (which
//! delivers received payloads), the runner (which moves data between the rings and the modem)
//! and the async `Socket` handles of the layer above (which only touch the rings).
//!
//! Slot `i` is the modem's `<connectID>`/`<clientID>` `i`.

use core::cell::RefCell;
use core::task::Waker;

use embassy_sync::blocking_mutex::{Mutex, raw::CriticalSectionRawMutex};
use embassy_sync::waitqueue::{MultiWakerRegistration, WakerRegistration};

use crate::Error;
use crate::at::expect::PayloadSink;
use crate::at::urc::{QiUrc, QsslUrc, Urc};

/// TCP or TLS (terminated in the modem).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Kind {
    /// `AT+QIOPEN` … `"TCP"` (0: the kind of a free slot, all zero bytes).
    Tcp = 0,
    /// `AT+QSSLOPEN`.
    Tls,
}

/// Where a slot is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
// An explicit tag with `Free` = 0, so that a free slot is all zero bytes (`Resources::new()`
// lands in `.bss`); without it the compiler may encode `Free` in `Error`'s spare tag values.
#[repr(u8)]
pub enum Phase {
    /// Unused.
    Free = 0,
    /// `AT+QIOPEN`/`AT+QSSLOPEN` sent, waiting for its URC.
    Opening,
    /// Connected.
    Open,
    /// The peer closed; data may still be waiting in the modem or the ring.
    PeerClosed,
    /// The socket failed (module error, context deactivated, reboot); reads return what is
    /// buffered, then this error.
    Failed(Error),
    /// Its handle was dropped (or its open abandoned): the runner closes it in the modem.
    Abandoned,
}

/// A snapshot of a slot's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SlotState {
    /// Life-cycle phase.
    pub phase: Phase,
    /// TCP or TLS.
    pub kind: Kind,
    /// PDP context the socket lives on.
    pub cid: u8,
    /// Result of the open URC (`+QIOPEN: <id>,<err>`), once it arrived.
    pub open_result: Option<u16>,
    /// The modem may hold unread data (a `recv` URC arrived, or a read filled the request).
    pub recv_pending: bool,
    /// Direct-push mode: the module sends the data inside its `recv` URCs and holds none for
    /// a read (`Config::push_receive` of the handles' layer).
    pub push: bool,
    /// An error from sending that the writer has not seen yet.
    pub tx_error: Option<Error>,
    /// Consecutive `SEND FAIL`s for the chunk being sent.
    pub send_failures: u8,
    /// Bytes received from the modem into the ring, in total.
    pub received: u64,
    /// Of those, bytes dropped from the ring unread because their payload lost bytes on the
    /// UART (the socket failed with [`Error::Corrupted`]).
    pub discarded: u64,
    /// Bytes the modem accepted (`SEND OK`), in total.
    pub sent: u64,
}

impl SlotState {
    const FREE: SlotState = SlotState {
        phase: Phase::Free,
        kind: Kind::Tcp,
        cid: 0,
        open_result: None,
        recv_pending: false,
        push: false,
        tx_error: None,
        send_failures: 0,
        received: 0,
        discarded: 0,
        sent: 0,
    };

    /// Whether the socket is connected or its peer closed (data may still flow in).
    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::PeerClosed)
    }
}

/// A fixed-size byte ring.
struct Ring<const R: usize> {
    buf: [u8; R],
    head: usize,
    len: usize,
}

impl<const R: usize> Ring<R> {
    const fn new() -> Self {
        Self {
            buf: [0; R],
            head: 0,
            len: 0,
        }
    }
    // Invariants: `head < R` (0 when empty), `len <= R`; so `head + len < 2 R` does not
    // overflow, and the `checked_rem` fallbacks are only for `R == 0`.
    fn free(&self) -> usize {
        R.saturating_sub(self.len)
    }
    /// Appends as much of `data` as fits (at most two block copies: up to the end of the
    /// buffer, then from its start).
    fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        let tail = self
            .head
            .saturating_add(self.len)
            .checked_rem(R)
            .unwrap_or(0);
        let Some((start, end)) = self.buf.split_at_mut_checked(tail) else {
            return 0;
        };
        // Up to the end of the buffer, then the rest (at most `tail` bytes) from its start.
        let Some((first, second)) = data
            .get(..n)
            .and_then(|d| d.split_at_checked(n.min(end.len())))
        else {
            return 0;
        };
        let (Some(to_end), Some(to_start)) =
            (end.get_mut(..first.len()), start.get_mut(..second.len()))
        else {
            return 0;
        };
        to_end.copy_from_slice(first);
        to_start.copy_from_slice(second);
        self.len = self.len.saturating_add(n);
        n
    }
    /// Copies the oldest bytes into `out` (at most two block copies).
    fn peek(&self, out: &mut [u8]) -> usize {
        self.peek_at(0, out)
    }
    /// Copies the bytes after the oldest `skip` into `out` (at most two block copies).
    fn peek_at(&self, skip: usize, out: &mut [u8]) -> usize {
        let skip = skip.min(self.len);
        let n = out.len().min(self.len.saturating_sub(skip));
        // `head + skip < 2 R`: no overflow.
        let from = self.head.saturating_add(skip).checked_rem(R).unwrap_or(0);
        let Some((start, end)) = self.buf.split_at_checked(from) else {
            return 0;
        };
        // From `from` to the end of the buffer, then the wrapped part from its start.
        let Some((first, second)) = out
            .get_mut(..n)
            .and_then(|o| o.split_at_mut_checked(n.min(end.len())))
        else {
            return 0;
        };
        let (Some(from_end), Some(from_start)) =
            (end.get(..first.len()), start.get(..second.len()))
        else {
            return 0;
        };
        first.copy_from_slice(from_end);
        second.copy_from_slice(from_start);
        n
    }
    fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = self.head.saturating_add(n).checked_rem(R).unwrap_or(0);
        self.len = self.len.saturating_sub(n);
        if self.len == 0 {
            self.head = 0;
        }
    }
    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

struct Slot<const R: usize> {
    state: SlotState,
    rx: Ring<R>,
    tx: Ring<R>,
    wakers: MultiWakerRegistration<2>,
}

struct Inner<const S: usize, const R: usize> {
    slots: [Slot<R>; S],
    service: WakerRegistration,
    /// Bumped whenever the runner has something to do.
    work: u32,
    /// Received bytes that did not fit a ring (never expected: reads are sized to the room).
    overflowed: u32,
}

/// The slots and their rings: `S` sockets with `R`-byte receive and transmit rings each.
/// Lives in the async layer's `Resources`.
pub(crate) struct Sockets<const S: usize, const R: usize> {
    inner: Mutex<CriticalSectionRawMutex, RefCell<Inner<S, R>>>,
}

impl<const S: usize, const R: usize> Default for Sockets<S, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const S: usize, const R: usize> Sockets<S, R> {
    /// All slots free.
    pub const fn new() -> Self {
        Self {
            inner: Mutex::new(RefCell::new(Inner {
                slots: [const {
                    Slot {
                        state: SlotState::FREE,
                        rx: Ring::new(),
                        tx: Ring::new(),
                        wakers: MultiWakerRegistration::new(),
                    }
                }; S],
                service: WakerRegistration::new(),
                work: 0,
                overflowed: 0,
            })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner<S, R>) -> T) -> T {
        crate::util::lock::with(|cs| f(&mut self.inner.borrow(cs).borrow_mut()))
    }
}

/// Object-safe access to [`Sockets`], so that handles do not carry its sizes in their types.
pub(crate) trait SocketPool: PayloadSink {
    /// Number of slots.
    fn slots(&self) -> usize;
    /// A snapshot of slot `i`.
    fn state(&self, i: usize) -> SlotState;
    /// Changes slot `i`'s state, waking its waiters and the runner.
    fn update(&self, i: usize, f: &mut dyn FnMut(&mut SlotState));
    /// Claims a free slot (ring cleared) for a socket of `kind` on context `cid`.
    fn claim(&self, kind: Kind, cid: u8) -> Option<usize>;
    /// Frees slot `i` (rings cleared).
    fn release(&self, i: usize);
    /// Moves received bytes of slot `i` into `out`.
    fn read(&self, i: usize, out: &mut [u8]) -> usize;
    /// Room in slot `i`'s receive ring.
    fn rx_free(&self, i: usize) -> usize;
    /// Queues bytes to send on slot `i`; returns how many fit.
    fn write(&self, i: usize, data: &[u8]) -> usize;
    /// Copies unsent bytes of slot `i` into `out`, skipping the oldest `skip` (they all stay
    /// queued).
    fn tx_peek(&self, i: usize, skip: usize, out: &mut [u8]) -> usize;
    /// Drops `n` sent bytes of slot `i`.
    fn tx_consume(&self, i: usize, n: usize);
    /// Bytes waiting to be sent on slot `i`.
    fn tx_len(&self, i: usize) -> usize;
    /// Registers a waker for changes of slot `i`.
    fn register(&self, i: usize, waker: &Waker);
    /// Registers the runner's waker and returns the work counter.
    fn register_service(&self, waker: &Waker) -> u32;
    /// The work counter (bumped whenever the runner has something to do).
    fn work(&self) -> u32;
    /// Tells the runner there is something to do.
    fn kick(&self);
    /// Applies a socket-related URC to the slots inside the caller's critical section (the
    /// runner's, which updates the state in the same one): the slots it concerns changed and
    /// their waiters woken, the runner told once.
    fn apply_urc_in(&self, cs: critical_section::CriticalSection<'_>, urc: &Urc);
    /// Received bytes dropped because a ring was full (a driver bug if ever non-zero; the
    /// socket fails with [`Error::Overflow`], which is what users see).
    #[cfg(test)]
    fn overflowed(&self) -> u32;
}

impl<const S: usize, const R: usize> Inner<S, R> {
    fn kick(&mut self) {
        self.work = self.work.wrapping_add(1);
        self.service.wake();
    }
}

/// The most bytes copied into a ring inside one critical section: interrupts stay masked for at
/// most this many byte copies, less than one byte time of a fast UART without FIFO.
pub(crate) const CS_COPY_MAX: usize = 64;

impl<const S: usize, const R: usize> PayloadSink for Sockets<S, R> {
    fn pushes(&self, slot: u8) -> bool {
        self.with(|inner| {
            inner.slots.get(usize::from(slot)).is_some_and(|s| {
                s.state.push
                    && matches!(
                        s.state.phase,
                        Phase::Opening | Phase::Open | Phase::PeerClosed | Phase::Failed(_)
                    )
            })
        })
    }

    fn deliver(&self, slot: u8, data: &[u8]) {
        let mut delivered: usize = 0;
        for piece in data.chunks(CS_COPY_MAX) {
            let n = self.with(|inner| {
                let Some(s) = inner.slots.get_mut(usize::from(slot)) else {
                    return piece.len();
                };
                if s.state.phase == Phase::Failed(Error::Overflow) {
                    // An earlier piece did not fit: the rest would land after a gap.
                    return 0;
                }
                let n = s.rx.push(piece);
                s.state.received = s.state.received.saturating_add(n as u64);
                n
            });
            // `delivered` ≤ `data.len()`.
            delivered = delivered.saturating_add(n);
            if n < piece.len() {
                // The rest would land after a gap: drop all of it (the socket has failed).
                let lost = data.len().saturating_sub(delivered);
                self.with(|inner| {
                    inner.overflowed = inner.overflowed.saturating_add(lost as u32);
                    if let Some(s) = inner.slots.get_mut(usize::from(slot)) {
                        s.state.phase = Phase::Failed(Error::Overflow);
                    }
                });
                break;
            }
        }
    }

    fn corrupted(&self, slot: u8) {
        self.with(|inner| {
            if let Some(s) = inner.slots.get_mut(usize::from(slot)) {
                if matches!(s.state.phase, Phase::Open | Phase::PeerClosed) {
                    s.state.phase = Phase::Failed(Error::Corrupted);
                }
                // What is buffered cannot be told apart from the bytes that took the lost
                // ones' place: none of it is handed out.
                s.state.discarded = s.state.discarded.saturating_add(s.rx.len as u64);
                s.rx.clear();
                s.wakers.wake();
            }
        });
    }

    fn delivered(&self, slot: u8) {
        // Readers are woken once, after the whole payload is in.
        self.with(|inner| {
            if let Some(s) = inner.slots.get_mut(usize::from(slot)) {
                s.wakers.wake();
            }
        });
    }
}

impl<const S: usize, const R: usize> SocketPool for Sockets<S, R> {
    fn slots(&self) -> usize {
        S
    }
    fn state(&self, i: usize) -> SlotState {
        self.with(|inner| {
            inner
                .slots
                .get(i)
                .map(|s| s.state)
                .unwrap_or(SlotState::FREE)
        })
    }
    fn update(&self, i: usize, f: &mut dyn FnMut(&mut SlotState)) {
        self.with(|inner| {
            if let Some(s) = inner.slots.get_mut(i) {
                f(&mut s.state);
                s.wakers.wake();
            }
            inner.kick();
        })
    }
    fn claim(&self, kind: Kind, cid: u8) -> Option<usize> {
        self.with(|inner| {
            let i = inner
                .slots
                .iter()
                .position(|s| s.state.phase == Phase::Free)?;
            let s = inner.slots.get_mut(i)?;
            s.rx.clear();
            s.tx.clear();
            s.state = SlotState {
                phase: Phase::Opening,
                kind,
                cid,
                ..SlotState::FREE
            };
            Some(i)
        })
    }
    fn release(&self, i: usize) {
        self.with(|inner| {
            if let Some(s) = inner.slots.get_mut(i) {
                s.rx.clear();
                s.tx.clear();
                s.state = SlotState::FREE;
                s.wakers.wake();
            }
        })
    }
    fn read(&self, i: usize, out: &mut [u8]) -> usize {
        self.with(|inner| {
            let Some(s) = inner.slots.get_mut(i) else {
                return 0;
            };
            let n = s.rx.peek(out);
            s.rx.consume(n);
            if n > 0 && s.state.recv_pending {
                // Room appeared for data still waiting in the modem.
                inner.kick();
            }
            n
        })
    }
    fn rx_free(&self, i: usize) -> usize {
        self.with(|inner| inner.slots.get(i).map_or(0, |s| s.rx.free()))
    }
    fn write(&self, i: usize, data: &[u8]) -> usize {
        let mut written: usize = 0;
        for piece in data.chunks(CS_COPY_MAX) {
            let n = self.with(|inner| inner.slots.get_mut(i).map_or(0, |s| s.tx.push(piece)));
            // `written` ≤ `data.len()`.
            written = written.saturating_add(n);
            if n < piece.len() {
                break;
            }
        }
        if written > 0 {
            self.kick();
        }
        written
    }
    fn tx_peek(&self, i: usize, skip: usize, out: &mut [u8]) -> usize {
        // In pieces: interrupts stay masked for at most `CS_COPY_MAX` byte copies.
        let mut got: usize = 0;
        for piece in out.chunks_mut(CS_COPY_MAX) {
            let n = self.with(|inner| {
                inner
                    .slots
                    .get(i)
                    .map_or(0, |s| s.tx.peek_at(skip.saturating_add(got), piece))
            });
            // `got` ≤ `out.len()`.
            got = got.saturating_add(n);
            if n < piece.len() {
                break;
            }
        }
        got
    }
    fn tx_consume(&self, i: usize, n: usize) {
        self.with(|inner| {
            if let Some(s) = inner.slots.get_mut(i) {
                s.tx.consume(n);
                s.state.sent = s.state.sent.saturating_add(n as u64);
                s.state.send_failures = 0;
                s.wakers.wake();
            }
        })
    }
    fn tx_len(&self, i: usize) -> usize {
        self.with(|inner| inner.slots.get(i).map_or(0, |s| s.tx.len))
    }
    fn register(&self, i: usize, waker: &Waker) {
        self.with(|inner| {
            if let Some(s) = inner.slots.get_mut(i) {
                s.wakers.register(waker);
            }
        })
    }
    fn register_service(&self, waker: &Waker) -> u32 {
        self.with(|inner| {
            inner.service.register(waker);
            inner.work
        })
    }
    fn work(&self) -> u32 {
        self.with(|inner| inner.work)
    }
    fn kick(&self) {
        self.with(|inner| inner.kick())
    }
    fn apply_urc_in(&self, cs: critical_section::CriticalSection<'_>, urc: &Urc) {
        self.inner.borrow(cs).borrow_mut().apply_urc(urc)
    }
    #[cfg(test)]
    fn overflowed(&self) -> u32 {
        self.with(|inner| inner.overflowed)
    }
}

/// Applies a socket-related URC to the slots (in a critical section of its own; the runner
/// applies it together with the state's update, see [`SocketPool::apply_urc_in`]).
pub(crate) fn apply_urc(pool: &dyn SocketPool, urc: &Urc) {
    if is_socket_urc(urc) {
        crate::util::lock::with(|cs| pool.apply_urc_in(cs, urc));
    }
}

/// Whether [`SocketPool::apply_urc_in`] has anything to do for `urc`.
#[inline]
pub(crate) fn is_socket_urc(urc: &Urc) -> bool {
    matches!(
        urc,
        Urc::QiOpen { .. }
            | Urc::QsslOpen { .. }
            | Urc::QiUrc(QiUrc::Recv(_) | QiUrc::Closed(_) | QiUrc::PdpDeact(_))
            | Urc::QsslUrc(QsslUrc::Recv(_) | QsslUrc::Closed(_))
            | Urc::Ready
    )
}

impl<const S: usize, const R: usize> Inner<S, R> {
    /// [`SocketPool::apply_urc_in`]: the slots `urc` concerns changed, their waiters woken,
    /// the runner kicked. (Inlined into its one caller.)
    #[inline(always)]
    fn apply_urc(&mut self, urc: &Urc) {
        match urc {
            Urc::QiOpen { id, err } | Urc::QsslOpen { id, err } => self.one(*id, |s| {
                if matches!(s.phase, Phase::Opening | Phase::Abandoned) {
                    s.open_result = Some(*err);
                }
            }),
            Urc::QiUrc(QiUrc::Recv(id)) | Urc::QsslUrc(QsslUrc::Recv(id)) => {
                self.one(*id, |s| s.recv_pending = true)
            }
            Urc::QiUrc(QiUrc::Closed(id)) | Urc::QsslUrc(QsslUrc::Closed(id)) => {
                self.one(*id, |s| {
                    if s.phase == Phase::Open {
                        s.phase = Phase::PeerClosed;
                        // Drain whatever the modem still holds before reporting the end (in
                        // push mode it holds nothing: every byte came before this URC).
                        s.recv_pending = !s.push;
                    }
                })
            }
            Urc::QiUrc(QiUrc::PdpDeact(cid)) => self.every(Some(*cid)),
            Urc::Ready => self.every(None),
            _ => {}
        }
    }

    /// [`Inner::apply_urc`] for a URC about every slot: a deactivated context (`cid`) or a
    /// reboot (`None`). Every slot looked at and woken, the runner kicked: one loop for both.
    /// (Out of line: the registers its loop needs are not saved for the URCs about one slot,
    /// nearly all of them.)
    #[inline(never)]
    fn every(&mut self, cid: Option<u8>) {
        for slot in &mut self.slots {
            let s = &mut slot.state;
            match cid {
                Some(cid) => {
                    if s.cid == cid
                        && matches!(s.phase, Phase::Open | Phase::PeerClosed | Phase::Opening)
                    {
                        s.phase = Phase::Failed(Error::ContextDeactivated);
                        s.recv_pending = false;
                    }
                }
                None => {
                    if !matches!(s.phase, Phase::Free | Phase::Abandoned) {
                        s.phase = Phase::Failed(Error::Rebooted);
                        s.recv_pending = false;
                    } else if s.phase == Phase::Abandoned {
                        // Nothing to close in a freshly booted modem.
                        s.open_result = Some(0xffff);
                    }
                }
            }
            slot.wakers.wake();
        }
        self.kick();
    }

    /// Slot `id` changed by `f`, its waiters woken, the runner kicked (an id the pool does not
    /// have is ignored).
    #[inline]
    fn one(&mut self, id: u8, f: impl FnOnce(&mut SlotState)) {
        if let Some(s) = self.slots.get_mut(usize::from(id)) {
            f(&mut s.state);
            s.wakers.wake();
            self.kick();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_wraps() {
        let mut r = Ring::<8>::new();
        assert_eq!(r.push(b"abcdef"), 6);
        let mut out = [0u8; 4];
        assert_eq!(r.peek(&mut out), 4);
        r.consume(4);
        assert_eq!(r.push(b"ghijklmn"), 6);
        let mut out = [0u8; 8];
        assert_eq!(r.peek(&mut out), 8);
        assert_eq!(&out, b"efghijkl");
    }

    #[test]
    fn payloads_longer_than_one_copy_piece_arrive_whole_across_the_ring_edge() {
        extern crate std;
        let pool = Sockets::<1, 2048>::new();
        let i = pool.claim(Kind::Tcp, 1).unwrap();
        pool.update(i, &mut |s| s.phase = Phase::Open);
        // Move the ring's head so that the next payload wraps around its end.
        pool.deliver(0, &[0u8; 1000]);
        let mut sink = [0u8; 1000];
        assert_eq!(pool.read(i, &mut sink), 1000);
        let payload: std::vec::Vec<u8> = (0..1500u32).map(|k| (k * 7 + k / 256) as u8).collect();
        pool.deliver(0, &payload);
        assert_eq!(pool.state(i).received, 2500);
        let mut out = std::vec![0u8; 2048];
        assert_eq!(pool.read(i, &mut out), 1500);
        assert_eq!(&out[..1500], &payload[..]);
        // An overflow keeps what fitted and drops everything after it, not bytes in the middle.
        pool.deliver(0, &payload);
        pool.deliver(0, &payload);
        assert_eq!(pool.state(i).phase, Phase::Failed(Error::Overflow));
        assert_eq!(pool.overflowed(), 952);
        let n = pool.read(i, &mut out);
        assert_eq!(n, 2048);
        assert_eq!(&out[..1500], &payload[..]);
        assert_eq!(&out[1500..2048], &payload[..548]);
        // Writes are copied in pieces too, and take only what fits.
        assert_eq!(pool.write(i, &payload), 1500);
        assert_eq!(pool.write(i, &payload), 548);
        assert_eq!(pool.tx_len(i), 2048);
        // Queued bytes are read from any offset, across the ring's edge, and stay queued.
        let mut peeked = std::vec![0u8; 700];
        assert_eq!(pool.tx_peek(i, 1400, &mut peeked), 648);
        assert_eq!(&peeked[..100], &payload[1400..]);
        assert_eq!(&peeked[100..648], &payload[..548]);
        assert_eq!(pool.tx_peek(i, 2048, &mut peeked), 0);
        assert_eq!(pool.tx_len(i), 2048);
        pool.tx_consume(i, 1000);
        assert_eq!(pool.write(i, &payload[..1000]), 1000);
        // The last 48 bytes of the old ones, then the new ones across the edge.
        assert_eq!(pool.tx_peek(i, 1000, &mut peeked), 700);
        assert_eq!(&peeked[..48], &payload[500..548]);
        assert_eq!(&peeked[48..], &payload[..652]);
    }

    #[test]
    fn delivery_and_urcs() {
        let pool = Sockets::<2, 16>::new();
        let i = pool.claim(Kind::Tcp, 1).unwrap();
        apply_urc(
            &pool,
            &Urc::QiOpen {
                id: i as u8,
                err: 0,
            },
        );
        assert_eq!(pool.state(i).open_result, Some(0));
        pool.update(i, &mut |s| s.phase = Phase::Open);
        pool.deliver(i as u8, b"hello");
        let mut out = [0u8; 16];
        assert_eq!(pool.read(i, &mut out), 5);
        apply_urc(&pool, &Urc::QiUrc(QiUrc::PdpDeact(1)));
        assert_eq!(
            pool.state(i).phase,
            Phase::Failed(Error::ContextDeactivated)
        );
        // Too much data for the ring is an error, never a silent drop.
        let j = pool.claim(Kind::Tcp, 2).unwrap();
        pool.update(j, &mut |s| s.phase = Phase::Open);
        pool.deliver(j as u8, &[0u8; 20]);
        assert_eq!(pool.state(j).phase, Phase::Failed(Error::Overflow));
        assert_eq!(pool.overflowed(), 4);
    }
}
