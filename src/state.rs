//! Pure modem state, kept up to date from URCs, and a way to wait for it to change.

use core::cell::RefCell;
use core::future::poll_fn;
use core::task::Poll;

use embassy_sync::blocking_mutex::{Mutex, raw::CriticalSectionRawMutex};
use embassy_sync::waitqueue::MultiWakerRegistration;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use embassy_time::Instant;

use crate::at::urc::{PinCode, QInd, QiUrc, RegDomain, RegStatus, Registration, Urc};

pub(crate) mod clock;

/// The result of one host-name lookup (`AT+QIDNSGIP`), as its `+QIURC: "dnsgip"` URCs reported
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DnsAnswer {
    /// 0 on success, else the module's error code (e.g. 565 DNS parse failed).
    pub(crate) err: u16,
    /// How many addresses the modem announced.
    pub(crate) count: u8,
    /// How many address lines arrived (fewer than `count` if some were lost).
    pub(crate) received: u8,
    /// The first address reported.
    pub(crate) first: Option<IpAddr>,
    /// The first IPv4 address reported.
    pub(crate) ipv4: Option<Ipv4Addr>,
    /// The first IPv6 address reported.
    pub(crate) ipv6: Option<Ipv6Addr>,
}

impl DnsAnswer {
    const fn new(err: u16, count: u8) -> Self {
        Self {
            err,
            count,
            received: 0,
            first: None,
            ipv4: None,
            ipv6: None,
        }
    }

    fn add(&mut self, addr: Option<IpAddr>) {
        self.received = self.received.saturating_add(1);
        let Some(addr) = addr else { return };
        self.first.get_or_insert(addr);
        match addr {
            IpAddr::V4(a) => {
                self.ipv4.get_or_insert(a);
            }
            IpAddr::V6(a) => {
                self.ipv6.get_or_insert(a);
            }
        }
    }
}

/// Host-name lookup bookkeeping: which `+QIURC: "dnsgip"` results belong to which lookup.
///
/// The modem's results carry no host name, so they are matched by order: a lookup is only sent
/// when every earlier one has its result (or can no longer get one), and it takes the next
/// result that completes. Kept in the [`StateCell`] next to the [`State`], not in it: it is the
/// driver's bookkeeping, not something the modem reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DnsState {
    /// Results completed since start-up (a failure, or a success with all its address lines).
    pub(crate) completed: u32,
    /// Results the driver waits for: lookups it sent (or may have sent, when cut off while
    /// sending) since start-up, kept at least `completed`.
    pub(crate) issued: u32,
    /// Until when a result still owed (`issued > completed`) may arrive.
    pub(crate) pending_until: Option<Instant>,
    /// A result whose header arrived and whose address lines have not all arrived yet.
    pub(crate) collecting: Option<DnsAnswer>,
    /// The last completed result.
    pub(crate) last: Option<DnsAnswer>,
    /// A lookup holds the resolver (one at a time).
    pub(crate) busy: bool,
}

impl DnsState {
    const fn new() -> Self {
        Self {
            completed: 0,
            issued: 0,
            pending_until: None,
            collecting: None,
            last: None,
            busy: false,
        }
    }

    /// Results owed (negative after a result nobody waited for; counters wrap).
    fn owed(&self) -> i32 {
        self.issued.wrapping_sub(self.completed) as i32
    }

    /// Whether every result owed has come.
    pub(crate) fn settled(&self) -> bool {
        self.owed() <= 0
    }

    /// Gives up on results still owed (their time is over, or the modem rebooted).
    pub(crate) fn resync(&mut self) {
        self.issued = self.completed;
        self.collecting = None;
        self.pending_until = None;
    }

    fn complete(&mut self, answer: DnsAnswer) {
        self.last = Some(answer);
        self.completed = self.completed.wrapping_add(1);
        // A result nobody waited for any more (it came after its time): nothing is owed now.
        if self.owed() < 0 {
            self.issued = self.completed;
        }
        if self.settled() {
            self.pending_until = None;
        }
    }

    /// Takes a `"dnsgip"` URC into account.
    fn apply(&mut self, urc: &QiUrc) {
        match *urc {
            QiUrc::DnsResult { err, count } => {
                if let Some(partial) = self.collecting.take() {
                    // Address lines were lost: the earlier result ends with what it got.
                    self.complete(partial);
                }
                let answer = DnsAnswer::new(err, count);
                if err != 0 || count == 0 {
                    self.complete(answer);
                } else {
                    self.collecting = Some(answer);
                }
            }
            // An address line without a header before it has nothing to attach to.
            QiUrc::DnsAddress(addr) => {
                if let Some(c) = self.collecting.as_mut() {
                    c.add(addr);
                    if c.received >= c.count {
                        let done = *c;
                        self.collecting = None;
                        self.complete(done);
                    }
                }
            }
            _ => {}
        }
    }
}

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
    /// The last `+CEDRXP` report (the network's eDRX parameters), as text
    /// ([`UrcText::edrx`](crate::at::urc::UrcText::edrx) types it).
    pub edrx: Option<crate::at::urc::UrcText>,
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
            edrx: None,
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
        self.registration
            .get(Self::domain_index(d))
            .copied()
            .flatten()
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
            .filter_map(|&i| self.registration.get(i).copied().flatten())
            .map(|r| r.status)
            .max_by_key(|s| rank(*s))
    }

    /// Records an answer or URC for one registration domain.
    pub(crate) fn set_registration(&mut self, d: RegDomain, r: Registration) {
        if let Some(slot) = self.registration.get_mut(Self::domain_index(d)) {
            *slot = Some(r);
        }
    }

    /// Applies a URC.
    pub(crate) fn apply(&mut self, urc: &Urc) {
        match urc {
            Urc::Ready => {
                let boots = self.boots.wrapping_add(1);
                let unknown = self.unknown_urcs;
                let events = self.pdp_deact_events;
                // Kept (and bumped below): a waiter on a change of the generation must see the
                // reboot.
                let generation = self.generation;
                *self = State::new();
                self.boots = boots;
                self.unknown_urcs = unknown;
                self.pdp_deact_events = events;
                self.generation = generation;
                // Every context is gone after a reboot, but none needs the `AT+QIDEACT` clean-up
                // a network deactivation asks for.
                self.pdp_deactivated = 0;
            }
            Urc::AppReady => self.app_ready = true,
            Urc::PoweredDown
            | Urc::PsmPowerDown
            | Urc::Notice(
                crate::at::urc::Notice::UnderVoltagePowerDown
                | crate::at::urc::Notice::OverVoltagePowerDown,
            ) => {
                self.app_ready = false;
                self.registration = [None; 3];
            }
            Urc::Cfun(f) => self.functionality = Some(*f),
            Urc::Cpin(code) => self.pin = Some(*code),
            Urc::QInd(QInd::SmsDone) | Urc::Notice(crate::at::urc::Notice::SmsReady) => {
                self.sms_ready = true
            }
            Urc::Registration(d, r) => self.set_registration(*d, *r),
            Urc::QiUrc(QiUrc::PdpDeact(cid)) => {
                if *cid < 32 {
                    self.pdp_deactivated |= 1 << cid;
                }
                self.pdp_deact_events = self.pdp_deact_events.wrapping_add(1);
            }
            Urc::Unknown(_) => self.unknown_urcs = self.unknown_urcs.wrapping_add(1),
            Urc::Edrx(r) => self.edrx = Some(*r),
            // The network clock is program-wide, not part of the state: no change here.
            Urc::TimeZone(t) => return clock::observe(t),
            _ => return,
        }
        self.generation = self.generation.wrapping_add(1);
    }
}

struct Inner {
    state: State,
    dns: DnsState,
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
                dns: DnsState::new(),
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
        self.inner.lock(|i| {
            let mut i = i.borrow_mut();
            let i = &mut *i;
            i.state.apply(urc);
            match urc {
                // No lookup result comes after a reboot (the lookup holding the resolver keeps
                // it; it sees the reboot).
                Urc::Ready => i.dns.resync(),
                Urc::QiUrc(q) => i.dns.apply(q),
                _ => {}
            }
            i.state.generation = i.state.generation.wrapping_add(1);
            i.wakers.wake();
        })
    }

    /// The host-name lookup bookkeeping.
    pub(crate) fn dns(&self) -> DnsState {
        self.inner.lock(|i| i.borrow().dns)
    }

    /// Changes the host-name lookup bookkeeping and wakes everyone waiting.
    pub(crate) fn update_dns<R>(&self, f: impl FnOnce(&mut DnsState) -> R) -> R {
        self.inner.lock(|i| {
            let mut i = i.borrow_mut();
            let r = f(&mut i.dns);
            i.state.generation = i.state.generation.wrapping_add(1);
            i.wakers.wake();
            r
        })
    }

    /// [`StateCell::wait_for`] over the state and the host-name lookup bookkeeping.
    pub(crate) async fn wait_dns<T>(&self, mut f: impl FnMut(&State, &DnsState) -> Option<T>) -> T {
        poll_fn(|cx| {
            self.inner.lock(|i| {
                let mut i = i.borrow_mut();
                match f(&i.state, &i.dns) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `urc_state` fuzz target (`+CFUN: 1` then `RDY`): a reboot reset the
    /// generation to what it was after one earlier URC, so `wait_registered`, which waits for
    /// the generation to change, did not see the reboot until its next poll.
    #[test]
    fn a_reboot_changes_the_generation() {
        let cell = StateCell::new();
        cell.apply(&Urc::Cfun(1));
        let before = cell.get().generation;
        cell.apply(&Urc::Ready);
        assert_ne!(cell.get().generation, before);
        let before = cell.get().generation;
        cell.apply(&Urc::Ready);
        assert_ne!(cell.get().generation, before);
        assert_eq!(cell.get().boots, 2);
    }

    fn dns(d: &mut DnsState, line: &[u8]) {
        if let Some(Urc::QiUrc(q)) = Urc::parse_line(line) {
            d.apply(&q);
        }
    }

    #[test]
    fn dns_results_are_collected_in_order() {
        let mut d = DnsState::new();
        d.issued = 1;
        dns(&mut d, b"+QIURC: \"dnsgip\",0,3,600");
        assert_eq!(d.completed, 0);
        assert!(!d.settled());
        dns(&mut d, b"+QIURC: \"dnsgip\",\"2001:db8::1\"");
        dns(&mut d, b"+QIURC: \"dnsgip\",\"10.0.0.1\"");
        assert_eq!(d.completed, 0, "one address line still missing");
        dns(&mut d, b"+QIURC: \"dnsgip\",\"10.0.0.2\"");
        assert_eq!(d.completed, 1);
        assert!(d.settled());
        let a = d.last.unwrap();
        assert_eq!((a.err, a.count, a.received), (0, 3, 3));
        assert_eq!(a.first, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(a.ipv4, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(a.ipv6, Some("2001:db8::1".parse().unwrap()));

        // A failure completes at once, with no address.
        d.issued = 2;
        dns(&mut d, b"+QIURC: \"dnsgip\",565");
        assert_eq!(d.completed, 2);
        assert_eq!(d.last.unwrap().err, 565);
        assert_eq!(d.last.unwrap().first, None);

        // An address line without a header is not taken for anything.
        let before = d;
        dns(&mut d, b"+QIURC: \"dnsgip\",\"10.9.9.9\"");
        assert_eq!(d, before);
    }

    #[test]
    fn lost_address_lines_and_unowed_results() {
        let mut d = DnsState::new();
        d.issued = 2;
        dns(&mut d, b"+QIURC: \"dnsgip\",0,2,600");
        dns(&mut d, b"+QIURC: \"dnsgip\",\"10.0.0.1\"");
        // The next header ends the first result with the one address it got.
        dns(&mut d, b"+QIURC: \"dnsgip\",0,1,600");
        assert_eq!(d.completed, 1);
        assert_eq!(d.last.unwrap().received, 1);
        dns(&mut d, b"+QIURC: \"dnsgip\",\"10.0.0.2\"");
        assert_eq!(d.completed, 2);
        assert_eq!(d.last.unwrap().ipv4, Some("10.0.0.2".parse().unwrap()));
        // A result nobody waits for leaves nothing owed.
        dns(&mut d, b"+QIURC: \"dnsgip\",565,0,0");
        assert_eq!((d.completed, d.issued), (3, 3));
        assert!(d.settled());
    }

    #[test]
    fn a_reboot_ends_every_lookup_but_keeps_the_resolver_holder() {
        let cell = StateCell::new();
        let urc = |line: &[u8]| cell.apply(&Urc::parse_line(line).unwrap());
        cell.update_dns(|d| {
            d.busy = true;
            d.issued = 1;
        });
        urc(b"+QIURC: \"dnsgip\",0,1,600");
        urc(b"RDY");
        let d = cell.dns();
        assert!(d.settled());
        assert!(d.busy);
        assert_eq!(d.collecting, None);
        // The address line of the lost lookup is ignored.
        urc(b"+QIURC: \"dnsgip\",\"10.0.0.1\"");
        assert_eq!(cell.dns().completed, 0);
    }
}
