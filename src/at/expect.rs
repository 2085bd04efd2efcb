//! What the command in flight expects back: shared between the command side and the digester.
//!
//! The digester has to tell a solicited information line from a URC that looks the same
//! (`+CPIN: READY` is both the answer to `AT+CPIN?` and a URC), recognise the `> ` prompt only when
//! a command asked for it, and know when a line announces a binary payload. The command side
//! publishes an [`Expect`] before it writes a command; the digester reads it.

use core::cell::{Cell, RefCell};
use core::sync::atomic::{AtomicU32, Ordering};

use embassy_sync::blocking_mutex::{Mutex, raw::CriticalSectionRawMutex};
use embassy_sync::waitqueue::MultiWakerRegistration;

/// The tasks waiting on an [`ExpectCell`].
type Wakers = MultiWakerRegistration<2>;

use super::line::Final;

/// The shape of the information lines a command answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Info {
    /// No information lines: only a final result code (e.g. `ATE0`).
    None,
    /// Lines that start with the command's prefix (e.g. `+CSQ: 15,3`).
    Prefixed,
    /// Lines without a prefix (e.g. the IMEI from `AT+CGSN`, the three lines of `ATI`).
    Bare,
}

/// Whether a response carries a length-prefixed binary payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Payload {
    /// Text only.
    None,
    /// `<prefix> <n>\r\n` followed by exactly `n` raw bytes (`+QIRD: <n>`, `+QSSLRECV: <n>`).
    /// The header line must hold a single decimal number for a payload to follow.
    LengthPrefixed,
}

/// What the command in flight expects back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Expect {
    /// Prefix of the information lines including the colon (`b"+CSQ:"`); empty for bare lines.
    pub prefix: &'static [u8],
    /// Shape of the information lines.
    pub info: Info,
    /// Whether a binary payload may follow the prefixed header line.
    pub payload: Payload,
    /// Whether the command answers with the `> ` data prompt before its final result.
    pub prompt: bool,
    /// Where a payload goes: the socket slot whose receive ring the digester copies it into
    /// ([`Expect::NO_TARGET`]: nowhere; the pieces go to the command's listener).
    pub target: u8,
    /// The command can end with `NO CARRIER`, `BUSY`, `NO ANSWER` or `NO DIALTONE` (a dial or
    /// data-mode command). For every other command these lines are URCs (a call or data
    /// connection ended), never its final result code.
    pub call: bool,
    /// The command always answers an information line before a successful final result code
    /// (a sequence marker such as `AT+CMEE?`): an `OK` before any line is a late answer of an
    /// earlier, abandoned command, and is dropped (counted in
    /// [`DigestStats::unsolicited_finals`]) instead of ending this one.
    pub answers_line: bool,
}

impl Expect {
    /// No payload target.
    pub const NO_TARGET: u8 = 0xff;

    /// The same expectation, for a command that can end with `NO CARRIER`, `BUSY`,
    /// `NO ANSWER` or `NO DIALTONE` (see [`Expect::call`]).
    pub const fn with_call(mut self) -> Expect {
        self.call = true;
        self
    }

    /// The same expectation, for a command that always answers an information line before a
    /// successful final result code (see [`Expect::answers_line`]).
    pub const fn with_line(mut self) -> Expect {
        self.answers_line = true;
        self
    }

    /// The same expectation, with payloads delivered to socket slot `slot`.
    pub const fn to_slot(mut self, slot: u8) -> Expect {
        self.target = slot;
        self
    }

    /// A command that answers only with a final result code.
    pub const NONE: Expect = Expect {
        prefix: b"",
        info: Info::None,
        payload: Payload::None,
        prompt: false,
        target: Expect::NO_TARGET,
        call: false,
        answers_line: false,
    };

    /// A command whose information lines carry `prefix` (with the colon, e.g. `b"+CSQ:"`).
    pub const fn prefixed(prefix: &'static [u8]) -> Expect {
        Expect {
            prefix,
            info: Info::Prefixed,
            payload: Payload::None,
            prompt: false,
            target: Expect::NO_TARGET,
            call: false,
            answers_line: false,
        }
    }

    /// A command whose information lines have no prefix.
    pub const BARE: Expect = Expect {
        prefix: b"",
        info: Info::Bare,
        payload: Payload::None,
        prompt: false,
        target: Expect::NO_TARGET,
        call: false,
        answers_line: false,
    };

    /// A command answering `<prefix> <n>\r\n<n bytes>` (e.g. `b"+QIRD:"`).
    pub const fn payload(prefix: &'static [u8]) -> Expect {
        Expect {
            prefix,
            info: Info::Prefixed,
            payload: Payload::LengthPrefixed,
            prompt: false,
            target: Expect::NO_TARGET,
            call: false,
            answers_line: false,
        }
    }

    /// A command that answers with the `> ` prompt first.
    pub const PROMPT: Expect = Expect {
        prefix: b"",
        info: Info::None,
        payload: Payload::None,
        prompt: true,
        target: Expect::NO_TARGET,
        call: false,
        answers_line: false,
    };
}

/// Counters kept by the digester: what it skipped or could not deliver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DigestStats {
    /// Lines that were neither a response, a URC nor an echo (noise on the UART).
    pub garbage_lines: u32,
    /// URCs with a prefix the driver does not know (delivered as [`Urc::Unknown`](crate::at::urc::Urc::Unknown)).
    pub unknown_urcs: u32,
    /// Command echo lines skipped.
    pub echo_lines: u32,
    /// Responses that lost an information line longer than the ingress buffer (the command
    /// ended with [`Error::Overflow`](crate::Error::Overflow)).
    pub overflows: u32,
    /// Final result codes that arrived with no command in flight.
    pub unsolicited_finals: u32,
    /// URCs that arrived inside a response (between its lines; delivered at once, in order).
    pub deferred_urcs: u32,
    /// Bytes discarded while resynchronising (over-long lines).
    pub discarded_bytes: u32,
    /// Lines longer than the ingress buffer (dropped; parsing resumed at the next line).
    pub long_lines: u32,
    /// Socket payloads that did not end where their header said (bytes lost on the UART); the
    /// socket failed with [`Error::Corrupted`](crate::Error::Corrupted).
    pub corrupted_payloads: u32,
}

#[derive(Clone, Copy)]
struct Pending {
    expect: Option<Expect>,
    completed: u32,
    last_final: Option<Final>,
    prompt_seen: bool,
    listener: Option<ListenerPtr>,
    /// Commands begun so far.
    generation: u32,
}

/// What the digester hands the command in flight while its response streams in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'b> {
    /// One information line, trimmed.
    Line(&'b [u8]),
    /// A piece of a binary payload that has no socket target (see [`Expect::target`]).
    Payload(&'b [u8]),
    /// The response ended: its final result code, or [`Error::Overflow`](crate::Error::Overflow)
    /// when one of its lines did not fit the ingress buffer (the line was dropped and the
    /// digester resynchronised at the next one).
    End(Result<Final, crate::Error>),
}

/// The listener of the command in flight: a closure, or the command's listen guard
/// (`command::Listen`), that lives in the command's future.
pub(crate) type Listener<'c> = dyn OnEvent + 'c;

/// Takes the events of the command in flight (see [`Listener`]). Any `Fn(Event)` closure is
/// one; the command layer's listen guard is one itself, so a command's future keeps no
/// closure next to it.
pub(crate) trait OnEvent {
    /// Takes one event.
    fn on_event(&self, ev: Event<'_>);
}

impl<F: Fn(Event<'_>)> OnEvent for F {
    fn on_event(&self, ev: Event<'_>) {
        self(ev)
    }
}

/// A registered listener with its lifetime erased (see [`ExpectCell::listen`] for why this is
/// sound).
#[derive(Clone, Copy)]
struct ListenerPtr(core::ptr::NonNull<Listener<'static>>);

// SAFETY: the pointer is only dereferenced inside the cell's critical section, and the guard
// that registered it unregisters it (inside the same critical section) before the closure it
// points to can go away; see `ExpectCell::listen`.
unsafe impl Send for ListenerPtr {}

/// Unregisters a listener when dropped (see [`ExpectCell::listen`]).
pub(crate) struct ListenGuard<'c> {
    cell: &'c ExpectCell,
}

impl Drop for ListenGuard<'_> {
    fn drop(&mut self) {
        self.cell.unlisten();
    }
}

impl<'c> ListenGuard<'c> {
    /// Hands the unregistering over to a [`Listening`], which knows the cell from elsewhere
    /// (it keeps no reference of its own; see [`Listening`]).
    pub(crate) fn into_listening(self) -> Listening<'c> {
        core::mem::forget(self);
        Listening(core::marker::PhantomData)
    }
}

/// A listener registration whose holder unregisters it ([`ExpectCell::unlisten`]) before it
/// is dropped or forgotten: made from a [`ListenGuard`] (whose lifetime it keeps, so that it
/// cannot outlive the listener), for a holder that already keeps a way to the cell and has no
/// room for the guard's reference. Dropping it without unregistering is a bug the holder's
/// `Drop` must make impossible.
pub(crate) struct Listening<'c>(core::marker::PhantomData<&'c ExpectCell>);

/// One of the digester's counters (its index in [`Counters`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stat {
    GarbageLines = 0,
    UnknownUrcs = 1,
    EchoLines = 2,
    Overflows = 3,
    UnsolicitedFinals = 4,
    DeferredUrcs = 5,
    DiscardedBytes = 6,
    LongLines = 7,
    CorruptedPayloads = 8,
}

/// The digester's counters, one word each. Only the digester writes them (a load and a store,
/// which every target has, even without compare-and-swap), and nobody waits on them, so
/// counting costs no critical section.
struct Counters([AtomicU32; 9]);

impl Counters {
    const fn new() -> Self {
        Self([const { AtomicU32::new(0) }; 9])
    }

    fn get(&self) -> DigestStats {
        let [a, b, c, d, e, f, g, h, i] = &self.0;
        let l = |x: &AtomicU32| x.load(Ordering::Relaxed);
        DigestStats {
            long_lines: l(h),
            corrupted_payloads: l(i),
            garbage_lines: l(a),
            unknown_urcs: l(b),
            echo_lines: l(c),
            overflows: l(d),
            unsolicited_finals: l(e),
            deferred_urcs: l(f),
            discarded_bytes: l(g),
        }
    }
}

/// Shared between the command side (writer) and the digester (reader). Lives in `Resources`.
pub struct ExpectCell {
    inner: Mutex<CriticalSectionRawMutex, Cell<Pending>>,
    wakers: Mutex<CriticalSectionRawMutex, RefCell<Wakers>>,
    stats: Counters,
    /// Bumped (inside the critical section) on every change of the command bookkeeping, so
    /// that the digester re-reads the command in flight only when it changed.
    changes: AtomicU32,
}

impl Default for ExpectCell {
    fn default() -> Self {
        Self::new()
    }
}

impl ExpectCell {
    /// A cell with no command in flight.
    pub const fn new() -> Self {
        Self {
            inner: Mutex::new(Cell::new(Pending {
                expect: None,
                completed: 0,
                last_final: None,
                prompt_seen: false,
                listener: None,
                generation: 0,
            })),
            wakers: Mutex::new(RefCell::new(MultiWakerRegistration::new())),
            stats: Counters::new(),
            changes: AtomicU32::new(0),
        }
    }

    /// Waits until `done(command in flight, prompt seen)` holds, re-checked whenever the
    /// command bookkeeping changes. Cancel-safe. A plain function, not a closure: every wait
    /// is the same future type, polled out of line (one copy in the firmware).
    pub fn wait_until(&self, done: fn(Option<Expect>, bool) -> bool) -> WaitUntil<'_> {
        WaitUntil { cell: self, done }
    }

    /// Whether `done` holds now.
    fn holds(&self, done: fn(Option<Expect>, bool) -> bool) -> bool {
        let p = self.cell(|c| c.get());
        done(p.expect, p.prompt_seen)
    }

    /// The bookkeeping alone, in a critical section (`util::lock::with`: the cell borrowed
    /// inside it rather than through `Mutex::lock`).
    #[inline]
    fn cell<R>(&self, f: impl FnOnce(&Cell<Pending>) -> R) -> R {
        crate::util::lock::with(|cs| f(self.inner.borrow(cs)))
    }

    /// The bookkeeping and the wakers in one critical section (the wakers borrowed with it,
    /// not locked again inside it: a nested section is an acquire and a release more).
    #[inline]
    fn locked<R>(&self, f: impl FnOnce(&Cell<Pending>, &RefCell<Wakers>) -> R) -> R {
        crate::util::lock::with(|cs| f(self.inner.borrow(cs), self.wakers.borrow(cs)))
    }

    fn update<R>(&self, f: impl FnOnce(&mut Pending) -> R) -> R {
        // One critical section: the wake runs inside it.
        self.locked(|c, w| {
            let mut p = c.get();
            let r = f(&mut p);
            c.set(p);
            // Load and store: every target has them, and the critical section orders writers.
            let n = self.changes.load(Ordering::Relaxed).wrapping_add(1);
            self.changes.store(n, Ordering::Release);
            w.borrow_mut().wake();
            r
        })
    }

    /// Marks a command as in flight (called just before it is written).
    pub fn begin(&self, expect: Expect) {
        self.update(|p| {
            p.expect = Some(expect);
            p.prompt_seen = false;
            p.generation = p.generation.wrapping_add(1);
        });
    }

    /// Registers `listener` for the lines, payload pieces and end of the next command's
    /// response, until the returned guard is dropped.
    ///
    /// The digester calls the listener from the runner (another task, or an interrupt that
    /// feeds `Runner::ingest`) while the command's future
    /// waits. This is sound because the listener is only called inside this cell's critical
    /// section, and the guard, which borrows the listener, clears the registration inside the
    /// same critical section when it is dropped: a future is pinned while it is polled, so it
    /// is dropped (running the guard's `Drop`) before the memory of the closure is reused,
    /// even if the future is cancelled. (Leaking the future leaks the closure too, which then
    /// stays valid.)
    pub(crate) fn listen<'c>(&'c self, listener: &'c Listener<'c>) -> ListenGuard<'c> {
        let ptr: core::ptr::NonNull<Listener<'c>> = core::ptr::NonNull::from(listener);
        // SAFETY: only the lifetime is erased; see above for why the pointer never outlives
        // the closure.
        let ptr: core::ptr::NonNull<Listener<'static>> = unsafe { core::mem::transmute(ptr) };
        self.cell(|c| {
            let mut p = c.get();
            p.listener = Some(ListenerPtr(ptr));
            c.set(p);
        });
        ListenGuard { cell: self }
    }

    /// Unregisters the listener (what a [`ListenGuard`] does when dropped).
    pub(crate) fn unlisten(&self) {
        self.cell(|c| {
            let mut p = c.get();
            p.listener = None;
            c.set(p);
        });
    }

    /// Hands `ev` to the registered listener, if there is one.
    pub(crate) fn notify(&self, ev: Event<'_>) {
        self.cell(|c| {
            if let Some(ListenerPtr(ptr)) = c.get().listener {
                // SAFETY: registered by `listen` and not yet unregistered, so the closure is
                // alive; we are inside the critical section that unregistering takes.
                let f: &Listener<'static> = unsafe { ptr.as_ref() };
                f.on_event(ev);
            }
        })
    }

    /// The command in flight, if any.
    pub fn current(&self) -> Option<Expect> {
        self.cell(|c| c.get().expect)
    }

    /// Writes the command in flight into `expect` (the digester's copy, written in place
    /// rather than returned and copied); returns how many commands were begun so far.
    pub(crate) fn current_into(&self, expect: &mut Option<Expect>) -> u32 {
        self.cell(|c| {
            let p = c.get();
            *expect = p.expect;
            p.generation
        })
    }

    /// A number that changes whenever the command in flight may have changed (read it before
    /// [`ExpectCell::current`] to cache the latter).
    pub fn changes(&self) -> u32 {
        self.changes.load(Ordering::Acquire)
    }

    /// Marks the command in flight as finished (called by the digester on a final result code,
    /// and by the command side when it gives up after a reboot).
    pub fn complete(&self) {
        self.update(|p| {
            if p.expect.take().is_some() {
                p.completed = p.completed.wrapping_add(1);
            }
        });
    }

    /// Ends the command in flight with `code`: hands [`Event::End`]`(outcome)` to its listener and
    /// marks it finished (as [`ExpectCell::complete`] does, recording `code` as the last final
    /// result code), in one critical section (called by the digester). Returns the change count after it ([`ExpectCell::changes`]), at which no
    /// command is in flight.
    pub(crate) fn end_with(&self, outcome: Result<Final, crate::Error>, code: Final) -> u32 {
        self.locked(|c, w| {
            if let Some(ListenerPtr(ptr)) = c.get().listener {
                // SAFETY: as in `notify`: registered by `listen` and not yet unregistered, and
                // we are inside the critical section that unregistering takes.
                let f: &Listener<'static> = unsafe { ptr.as_ref() };
                f.on_event(Event::End(outcome));
            }
            let mut p = c.get();
            if p.expect.take().is_some() {
                p.completed = p.completed.wrapping_add(1);
                p.last_final = Some(code);
            }
            c.set(p);
            let n = self.changes.load(Ordering::Relaxed).wrapping_add(1);
            self.changes.store(n, Ordering::Release);
            w.borrow_mut().wake();
            n
        })
    }

    /// The final result code of the last completed command.
    pub fn last_final(&self) -> Option<Final> {
        self.cell(|c| c.get().last_final)
    }

    /// Records that the `> ` prompt arrived for the command in flight.
    pub fn prompt(&self) {
        self.update(|p| p.prompt_seen = true);
    }

    /// Whether the `> ` prompt arrived for the command in flight.
    pub fn prompt_seen(&self) -> bool {
        self.cell(|c| c.get().prompt_seen)
    }

    /// A snapshot of the digester's counters.
    pub fn stats(&self) -> DigestStats {
        self.stats.get()
    }

    /// Adds `n` to one of the digester's counters (only the digester calls this): a load and a
    /// store of that one counter, saturating.
    #[inline]
    pub(crate) fn add(&self, stat: Stat, n: u32) {
        if let Some(c) = self.stats.0.get(stat as usize) {
            c.store(
                c.load(Ordering::Relaxed).saturating_add(n),
                Ordering::Relaxed,
            );
        }
    }

    /// Corrupted input seen so far: garbage lines, unknown URCs and discarded bytes (a sum
    /// that changes whenever one of them does; three loads, no critical section).
    pub fn noise(&self) -> u32 {
        let [a, b, _, _, _, _, g, _, _] = &self.stats.0;
        let l = |x: &AtomicU32| x.load(Ordering::Relaxed);
        l(a).wrapping_add(l(b)).wrapping_add(l(g))
    }
}

/// Receives binary payloads the digester extracted for a socket slot.
pub trait PayloadSink {
    /// Whether socket slot `slot` is in direct-push mode, i.e. the data that follows its
    /// `+QIURC: "recv",<id>,<n>` / `+QSSLURC: "recv",<id>,<n>` is its own (`false`: the bytes
    /// are dropped and counted).
    fn pushes(&self, slot: u8) -> bool;
    /// `data`, the next piece of a `+QIRD`/`+QSSLRECV` payload (or of a direct-push `recv`
    /// URC), arrived for socket slot `slot`.
    fn deliver(&self, slot: u8, data: &[u8]);
    /// The payload for `slot` is complete (wake its readers).
    fn delivered(&self, slot: u8);
    /// The payload for `slot` did not end where its header said (bytes were lost on the UART):
    /// its stream is corrupted.
    fn corrupted(&self, slot: u8);
}

/// Receives URCs straight from the digester, so that no bounded channel stands between the
/// ingress and what the URCs update (the runner applies them to its state and socket slots).
pub trait UrcSink {
    /// `line` (trimmed, never empty) is a URC; `split` is its `+XXX:` prefix and text, as the
    /// digester found them (`None` for a line without such a prefix). Returns `true` if it is a
    /// URC the driver does not know or cannot read (the digester counts it as noise).
    fn urc(&mut self, line: &[u8], split: Option<super::line::Split<'_>>) -> bool;
}

/// The future of [`ExpectCell::wait_until`].
#[must_use = "futures do nothing unless awaited"]
pub struct WaitUntil<'a> {
    cell: &'a ExpectCell,
    done: fn(Option<Expect>, bool) -> bool,
}

impl core::future::Future for WaitUntil<'_> {
    type Output = ();

    #[inline(never)]
    fn poll(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<()> {
        if self.cell.holds(self.done) {
            return core::task::Poll::Ready(());
        }
        self.cell
            .wakers
            .lock(|w| w.borrow_mut().register(cx.waker()));
        // Re-check: a change between the test and the registration must not be missed.
        if self.cell.holds(self.done) {
            core::task::Poll::Ready(())
        } else {
            core::task::Poll::Pending
        }
    }
}
