//! Pure modem state, kept up to date from URCs, and a way to wait for it to change.

use core::cell::RefCell;
use core::future::poll_fn;
use core::task::Poll;

use embassy_sync::blocking_mutex::{Mutex, raw::CriticalSectionRawMutex};
use embassy_sync::waitqueue::MultiWakerRegistration;

use crate::at::urc::{PinCode, QInd, QiUrc, RegDomain, RegStatus, Registration, Urc};

/// What the driver knows about the modem from URCs and from the answers it has seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct State {
    /// How many times `RDY` was seen (each one is a modem (re)boot).
    pub boots: u32,
    /// `APP RDY` seen since the last boot.
    pub app_ready: bool,
    /// Last SIM state reported by `+CPIN:` (URC or answer).
    pub pin: Option<PinCode>,
    /// `+QIND: SMS DONE` seen since the last boot.
    pub sms_ready: bool,
    /// Last registration reported per domain: `[CREG, CGREG, CEREG]`.
    pub registration: [Option<Registration>; 3],
    /// Contexts (bit `cid`) the network deactivated (`+QIURC: "pdpdeact"`) and that have not been
    /// re-activated since.
    pub pdp_deactivated: u32,
    /// How many `+QIURC: "pdpdeact"` were seen.
    pub pdp_deact_events: u32,
    /// Last `+CFUN:` value.
    pub functionality: Option<u8>,
    /// Unknown URCs seen.
    pub unknown_urcs: u32,
    /// Bumped on every change.
    pub generation: u32,
}

impl State {
    const fn new() -> Self {
        Self {
            boots: 0,
            app_ready: false,
            pin: None,
            sms_ready: false,
            registration: [None; 3],
            pdp_deactivated: 0,
            pdp_deact_events: 0,
            functionality: None,
            unknown_urcs: 0,
            generation: 0,
        }
    }

    fn domain_index(d: RegDomain) -> usize {
        match d {
            RegDomain::Cs => 0,
            RegDomain::Ps => 1,
            RegDomain::Eps => 2,
        }
    }

    /// The registration of one domain.
    pub fn registration(&self, d: RegDomain) -> Option<Registration> {
        self.registration[Self::domain_index(d)]
    }

    /// The best registration status over the packet domains (EPS, then GPRS), falling back to
    /// circuit-switched: registered beats searching beats denied beats unknown.
    pub fn best_registration(&self) -> Option<RegStatus> {
        let rank = |s: RegStatus| match s {
            RegStatus::Home | RegStatus::Roaming => 4,
            RegStatus::Searching => 3,
            RegStatus::Denied => 2,
            RegStatus::NotRegistered => 1,
            RegStatus::Unknown => 0,
        };
        [2usize, 1, 0]
            .iter()
            .filter_map(|&i| self.registration[i].map(|r| r.status))
            .max_by_key(|s| rank(*s))
    }

    /// Records an answer or URC for one registration domain.
    pub(crate) fn set_registration(&mut self, d: RegDomain, r: Registration) {
        self.registration[Self::domain_index(d)] = Some(r);
    }

    /// Applies a URC.
    pub(crate) fn apply(&mut self, urc: &Urc) {
        match urc {
            Urc::Ready => {
                let boots = self.boots.wrapping_add(1);
                let unknown = self.unknown_urcs;
                let events = self.pdp_deact_events;
                *self = State::new();
                self.boots = boots;
                self.unknown_urcs = unknown;
                self.pdp_deact_events = events;
                // Every context is gone after a reboot, but none needs the `AT+QIDEACT` clean-up
                // a network deactivation asks for.
                self.pdp_deactivated = 0;
            }
            Urc::AppReady => self.app_ready = true,
            Urc::PoweredDown | Urc::PsmPowerDown => {
                self.app_ready = false;
                self.registration = [None; 3];
            }
            Urc::Cfun(f) => self.functionality = Some(*f),
            Urc::Cpin(code) => self.pin = Some(*code),
            Urc::QInd(QInd::SmsDone) => self.sms_ready = true,
            Urc::Registration(d, r) => self.set_registration(*d, *r),
            Urc::QiUrc(QiUrc::PdpDeact(cid)) => {
                if *cid < 32 {
                    self.pdp_deactivated |= 1 << cid;
                }
                self.pdp_deact_events = self.pdp_deact_events.wrapping_add(1);
            }
            Urc::Unknown(_) => self.unknown_urcs = self.unknown_urcs.wrapping_add(1),
            _ => return,
        }
        self.generation = self.generation.wrapping_add(1);
    }
}

struct Inner {
    state: State,
    wakers: MultiWakerRegistration<8>,
}

/// Shared modem state with change notification. Lives in `Resources`.
pub(crate) struct StateCell {
    inner: Mutex<CriticalSectionRawMutex, RefCell<Inner>>,
}

impl Default for StateCell {
    fn default() -> Self {
        Self::new()
    }
}

impl StateCell {
    /// Empty state.
    pub const fn new() -> Self {
        Self {
            inner: Mutex::new(RefCell::new(Inner {
                state: State::new(),
                wakers: MultiWakerRegistration::new(),
            })),
        }
    }

    /// A snapshot.
    pub fn get(&self) -> State {
        self.inner.lock(|i| i.borrow().state)
    }

    /// Changes the state and wakes everyone waiting on it.
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        self.inner.lock(|i| {
            let mut i = i.borrow_mut();
            let r = f(&mut i.state);
            i.state.generation = i.state.generation.wrapping_add(1);
            i.wakers.wake();
            r
        })
    }

    /// Applies a URC and wakes waiters.
    pub fn apply(&self, urc: &Urc) {
        self.update(|s| s.apply(urc));
    }

    /// Waits until `f` returns `Some`, re-checking after every change. Cancel-safe.
    pub async fn wait_for<T>(&self, mut f: impl FnMut(&State) -> Option<T>) -> T {
        poll_fn(|cx| {
            self.inner.lock(|i| {
                let mut i = i.borrow_mut();
                match f(&i.state) {
                    Some(t) => Poll::Ready(t),
                    None => {
                        i.wakers.register(cx.waker());
                        Poll::Pending
                    }
                }
            })
        })
        .await
    }
}
