//! Pure modem state, kept up to date from URCs, and a way to wait for it to change.

use core::cell::RefCell;
use core::future::poll_fn;
use core::task::Poll;

use embassy_sync::blocking_mutex::{Mutex, raw::CriticalSectionRawMutex};
use embassy_sync::waitqueue::MultiWakerRegistration;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use embassy_time::Instant;

use crate::at::urc::{PinCode, QInd, QiUrc, RegDomain, RegStatus, Registration, Urc};
use crate::util::lock;

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
    /// The first address reported is IPv6 (it is then `ipv6`, else `ipv4`): a flag, not a
    /// third copy of an address.
    first_v6: bool,
    /// Every address line announced has arrived, or the result ended without them: the
    /// result is complete.
    done: bool,
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
            first_v6: false,
            done: false,
            ipv4: None,
            ipv6: None,
        }
    }

    fn add(&mut self, addr: Option<IpAddr>) {
        self.received = self.received.saturating_add(1);
        let Some(addr) = addr else { return };
        if self.ipv4.is_none() && self.ipv6.is_none() {
            self.first_v6 = addr.is_ipv6();
        }
        match addr {
            IpAddr::V4(a) => {
                self.ipv4.get_or_insert(a);
            }
            IpAddr::V6(a) => {
                self.ipv6.get_or_insert(a);
            }
        }
    }

    /// The first address reported.
    pub(crate) fn first(&self) -> Option<IpAddr> {
        if self.first_v6 {
            self.ipv6.map(IpAddr::V6)
        } else {
            self.ipv4.map(IpAddr::V4)
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
    /// Until when a result still owed (`issued > completed`) may arrive, in whole seconds
    /// since boot, rounded up; 0 (the boot, which no deadline is) when there is none: 4 bytes,
    /// not an `Option<Instant>`'s 16 (and no 8-byte alignment for the state cell). A second
    /// of rounding at most lengthens the wait for a result owed to a dropped lookup; 32 bits of
    /// seconds last 136 years.
    pending_until: u32,
    /// The result whose header arrived last: still collecting its address lines (not
    /// `done`), or complete (`done`: the last completed result). One slot for both, not two
    /// (28 B each): a header is only expected once the lookup that waited for the last result
    /// has read it (lookups take the resolver one at a time); a header nobody asked for ends
    /// that result's keeping early.
    answer: Option<DnsAnswer>,
    /// A lookup holds the resolver (one at a time).
    pub(crate) busy: bool,
}

impl DnsState {
    const fn new() -> Self {
        Self {
            completed: 0,
            issued: 0,
            pending_until: 0,
            answer: None,
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
        self.drop_collecting();
        self.set_pending_until(None);
    }

    /// Until when a result still owed may arrive (`None`: no deadline is set).
    pub(crate) fn pending_until(&self) -> Option<Instant> {
        (self.pending_until != 0).then(|| Instant::from_secs(u64::from(self.pending_until)))
    }

    /// Sets (or clears) the deadline of the results still owed.
    pub(crate) fn set_pending_until(&mut self, until: Option<Instant>) {
        self.pending_until = match until {
            None => 0,
            Some(t) => u32::try_from(t.as_millis().div_ceil(1000))
                .unwrap_or(u32::MAX)
                .max(1),
        };
    }

    /// The result being collected: its header arrived, not all its address lines yet.
    pub(crate) fn collecting(&self) -> Option<&DnsAnswer> {
        self.answer.as_ref().filter(|a| !a.done)
    }

    /// Forgets the result being collected, if any (the last completed one stays).
    pub(crate) fn drop_collecting(&mut self) {
        if self.collecting().is_some() {
            self.answer = None;
        }
    }

    /// The last completed result.
    pub(crate) fn last(&self) -> Option<DnsAnswer> {
        self.answer.filter(|a| a.done)
    }

    /// Completes the result in `answer` (in place, no copy of it).
    fn complete(&mut self) {
        if let Some(a) = &mut self.answer {
            a.done = true;
        }
        self.completed = self.completed.wrapping_add(1);
        // A result nobody waited for any more (it came after its time): nothing is owed now.
        if self.owed() < 0 {
            self.issued = self.completed;
        }
        if self.settled() {
            self.set_pending_until(None);
        }
    }

    /// Takes a `"dnsgip"` URC into account.
    fn apply(&mut self, urc: &QiUrc) {
        match *urc {
            QiUrc::DnsResult { err, count } => {
                if self.collecting().is_some() {
                    // Address lines were lost: the earlier result ends with what it got.
                    self.complete();
                }
                self.answer = Some(DnsAnswer::new(err, count));
                if err != 0 || count == 0 {
                    self.complete();
                }
            }
            // An address line without a header before it has nothing to attach to.
            QiUrc::DnsAddress(addr) => {
                if let Some(c) = self.answer.as_mut().filter(|a| !a.done) {
                    c.add(addr);
                    if c.received >= c.count {
                        self.complete();
                    }
                }
            }
            _ => {}
        }
    }
}

/// PSM timers granted by the network, in seconds; `None`: that timer is deactivated (or, from
/// `+CEREG`, not given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PsmGrant {
    /// Periodic TAU (T3412 extended): how long the module may sleep before it wakes to tell
    /// the network it is still there.
    pub periodic_tau_s: Option<u32>,
    /// Active time (T3324): how long the module stays reachable after activity before it
    /// enters PSM.
    pub active_time_s: Option<u32>,
}

/// The PSM timers of a `+CEREG` line with `<n>` = 4 (URC form,
/// `+CEREG: <stat>,[<tac>],[<ci>],[<AcT>],[<cause_type>],[<reject_cause>],"<Active-Time>","<Periodic-TAU>"`):
/// the granted active time (GPRS Timer 2 octet) and periodic TAU (GPRS Timer 3 octet) decoded.
/// `None` when the line is not such a `+CEREG` or carries no timer.
#[cfg(test)]
pub(crate) fn cereg_psm_grant(line: &[u8]) -> Option<PsmGrant> {
    cereg_psm_grant_fields(crate::error::trim_ascii(line).strip_prefix(b"+CEREG:")?)
}

/// `cereg_psm_grant` (the tests' reader of a whole line) of the text after `+CEREG:` (the URC's fields, as the digester split
/// them).
pub(crate) fn cereg_psm_grant_fields(rest: &[u8]) -> Option<PsmGrant> {
    // (A line with fewer than six commas has no field 6 or 7, which the split below leaves
    // empty: `None`. The runner counts the commas before it calls this, as nearly every
    // `+CEREG` has four fields or fewer.)
    // Fields split at commas outside quotes; the timers are fields 6 and 7 (0-based).
    let mut fields: [&[u8]; 8] = [&[]; 8];
    let mut n = 0usize;
    let mut start = 0usize;
    let mut in_q = false;
    for (i, &b) in rest.iter().enumerate() {
        match b {
            b'"' => in_q = !in_q,
            b',' if !in_q => {
                *fields.get_mut(n)? = rest.get(start..i)?;
                n = n.checked_add(1)?;
                start = i.checked_add(1)?;
            }
            _ => {}
        }
    }
    *fields.get_mut(n)? = rest.get(start..)?;
    let bits = |f: &[u8]| -> Option<u8> {
        let f = crate::error::trim_ascii(f);
        let f = f.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        if f.len() != 8 {
            return None;
        }
        f.iter().try_fold(0u8, |acc, &c| match c {
            b'0' => Some(acc << 1),
            b'1' => Some(acc << 1 | 1),
            _ => None,
        })
    };
    let active = bits(fields.get(6)?);
    let tau = bits(fields.get(7)?);
    if active.is_none() && tau.is_none() {
        return None;
    }
    // TS 24.008 units in seconds (`None`: deactivated); Timer 2 units other than these count
    // in minutes, as the standard says. Kept in `u32` (at most 31 × 320 h fits).
    let timer = |octet: u8, units: &[(u8, u32)], other: Option<u32>| -> Option<u32> {
        let unit = units
            .iter()
            .find(|(bits, _)| *bits == octet >> 5)
            .map(|(_, secs)| *secs)
            .or(other)?;
        unit.checked_mul(u32::from(octet & 0x1f))
    };
    const TIMER2: [(u8, u32); 3] = [(0b000, 2), (0b001, 60), (0b010, 360)];
    const TIMER3: [(u8, u32); 7] = [
        (0b011, 2),
        (0b100, 30),
        (0b101, 60),
        (0b000, 600),
        (0b001, 3_600),
        (0b010, 36_000),
        (0b110, 1_152_000),
    ];
    Some(PsmGrant {
        active_time_s: active
            .filter(|o| o >> 5 != 0b111)
            .and_then(|o| timer(o, &TIMER2, Some(60))),
        periodic_tau_s: tau.and_then(|o| timer(o, &TIMER3, None)),
    })
}

/// A registration report in 11 bytes (an `Option<Registration>` is 20, with its two
/// `Option<u32>`s): the state keeps one per domain, for the firmware's life.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedReg {
    area: [u8; 4],
    cell: [u8; 4],
    /// The status's number ([`RegStatus`] in declaration order) plus one; 0 for no report (so
    /// that the empty state is all zeros: `Core::init` writes it in place, no copy on the
    /// stack).
    status: u8,
    act: u8,
    /// Which of `area` (bit 0), `cell` (bit 1) and `act` (bit 2) are present.
    present: u8,
}

impl PackedReg {
    const NONE: PackedReg = PackedReg {
        area: [0; 4],
        cell: [0; 4],
        status: 0,
        act: 0,
        present: 0,
    };

    fn of(r: Registration) -> Self {
        let status = match r.status {
            RegStatus::NotRegistered => 1,
            RegStatus::Home => 2,
            RegStatus::Searching => 3,
            RegStatus::Denied => 4,
            RegStatus::Unknown => 5,
            RegStatus::Roaming => 6,
        };
        PackedReg {
            area: r.area.unwrap_or(0).to_ne_bytes(),
            cell: r.cell.unwrap_or(0).to_ne_bytes(),
            status,
            act: r.act.unwrap_or(0),
            present: u8::from(r.area.is_some())
                | u8::from(r.cell.is_some()) << 1
                | u8::from(r.act.is_some()) << 2,
        }
    }

    fn get(&self) -> Option<Registration> {
        let code = self.status.checked_sub(1)?;
        Some(Registration {
            status: RegStatus::from_code(u32::from(code)),
            area: (self.present & 1 != 0).then(|| u32::from_ne_bytes(self.area)),
            cell: (self.present & 2 != 0).then(|| u32::from_ne_bytes(self.cell)),
            act: (self.present & 4 != 0).then_some(self.act),
        })
    }
}

impl core::fmt::Debug for PackedReg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for PackedReg {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "{}", self.get())
    }
}

/// The PSM timers granted, in 9 bytes (an `Option<PsmGrant>` is 16).
#[derive(Clone, Copy, PartialEq, Eq)]
struct PackedGrant {
    periodic_tau_s: [u8; 4],
    active_time_s: [u8; 4],
    /// Bit 0: a grant was seen; bit 1: `periodic_tau_s` present; bit 2: `active_time_s`.
    present: u8,
}

impl PackedGrant {
    const NONE: PackedGrant = PackedGrant {
        periodic_tau_s: [0; 4],
        active_time_s: [0; 4],
        present: 0,
    };

    fn of(g: Option<PsmGrant>) -> Self {
        match g {
            None => Self::NONE,
            Some(g) => PackedGrant {
                periodic_tau_s: g.periodic_tau_s.unwrap_or(0).to_ne_bytes(),
                active_time_s: g.active_time_s.unwrap_or(0).to_ne_bytes(),
                present: 1
                    | u8::from(g.periodic_tau_s.is_some()) << 1
                    | u8::from(g.active_time_s.is_some()) << 2,
            },
        }
    }

    fn get(&self) -> Option<PsmGrant> {
        (self.present & 1 != 0).then(|| PsmGrant {
            periodic_tau_s: (self.present & 2 != 0)
                .then(|| u32::from_ne_bytes(self.periodic_tau_s)),
            active_time_s: (self.present & 4 != 0).then(|| u32::from_ne_bytes(self.active_time_s)),
        })
    }
}

impl core::fmt::Debug for PackedGrant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for PackedGrant {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "{}", self.get())
    }
}

/// What the driver knows about the modem from URCs and from the answers it has seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct State {
    /// How many times the modem (re)booted: a `RDY` that did not end a PSM sleep.
    pub boots: u32,
    /// How many times the modem woke from PSM: a `RDY` after `PSM POWER DOWN`. Echo, `AT+CMEE`,
    /// URC and TLS settings are lost as after a boot; registration and PDP contexts are kept.
    pub wakes: u32,
    /// The modem announced `PSM POWER DOWN` and has not woken since (it takes no command until
    /// PWRKEY/PON_TRIG or the periodic TAU wakes it).
    pub psm_asleep: bool,
    /// How many times the modem entered PSM (`PSM POWER DOWN`).
    pub psm_entries: u32,
    /// The PSM timers the network granted (read with [`State::psm_grant`]), packed.
    psm_grant: PackedGrant,
    /// `APP RDY` seen since the last boot.
    pub app_ready: bool,
    /// Last SIM state reported by `+CPIN:` (URC or answer).
    pub pin: Option<PinCode>,
    /// `+QIND: SMS DONE` seen since the last boot.
    pub sms_ready: bool,
    /// Last registration reported per domain: `[CREG, CGREG, CEREG]` (read with
    /// [`State::registration`]), packed.
    pub(crate) registration: [PackedReg; 3],
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
            wakes: 0,
            psm_asleep: false,
            psm_entries: 0,
            psm_grant: PackedGrant::NONE,
            app_ready: false,
            pin: None,
            sms_ready: false,
            registration: [PackedReg::NONE; 3],
            pdp_deactivated: 0,
            pdp_deact_events: 0,
            functionality: None,
            unknown_urcs: 0,
            edrx: None,
            generation: 0,
        }
    }

    /// Every `RDY` seen, boots and PSM wakes: what the module forgets (echo, `AT+CMEE`, URC
    /// and TLS settings, sockets, lookups in flight) is keyed on this count.
    pub fn starts(&self) -> u32 {
        self.boots.wrapping_add(self.wakes)
    }

    fn domain_index(d: RegDomain) -> usize {
        match d {
            RegDomain::Cs => 0,
            RegDomain::Ps => 1,
            RegDomain::Eps => 2,
        }
    }

    /// The PSM timers the network granted, as last reported by `+CEREG` with `<n>` = 4 or by
    /// `+QPSMTIMER`; `None` until one is seen.
    pub fn psm_grant(&self) -> Option<PsmGrant> {
        self.psm_grant.get()
    }

    /// Records the PSM timers the network granted.
    pub(crate) fn set_psm_grant(&mut self, g: PsmGrant) {
        self.psm_grant = PackedGrant::of(Some(g));
    }

    /// The registration last reported for one domain.
    pub fn registration(&self, d: RegDomain) -> Option<Registration> {
        self.registration
            .get(Self::domain_index(d))
            .and_then(|r| r.get())
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
            .filter_map(|&i| self.registration.get(i).and_then(|r| r.get()))
            .map(|r| r.status)
            .max_by_key(|s| rank(*s))
    }

    /// Records an answer or URC for one registration domain.
    pub(crate) fn set_registration(&mut self, d: RegDomain, r: Registration) {
        if let Some(slot) = self.registration.get_mut(Self::domain_index(d)) {
            *slot = PackedReg::of(r);
        }
    }

    /// Applies a URC: the fields it changes. The generation is left alone: the cell bumps it
    /// once per URC ([`StateCell::apply_in`]), whatever the URC changed.
    pub(crate) fn apply(&mut self, urc: &Urc) {
        match urc {
            Urc::Ready if self.psm_asleep => {
                // A PSM wake: the module kept its registration (and PDP contexts), lost its
                // AT settings; the SIM and SMS stay as they were.
                self.wakes = self.wakes.wrapping_add(1);
                self.psm_asleep = false;
                self.app_ready = false;
            }
            Urc::Ready => {
                // What a reboot resets, field by field (the destructuring names every field, so
                // a new one must be placed here): the counters, the granted PSM timers and the
                // generation are kept (a waiter on a change of the generation must see the
                // reboot; the cell bumps it). Every context is gone after a reboot, but none
                // needs the `AT+QIDEACT` clean-up a network deactivation asks for. (Written
                // field by field rather than as `State::new()` with the kept fields copied
                // back: a smaller update on firmware.)
                let State {
                    boots,
                    wakes: _,
                    psm_asleep,
                    psm_entries: _,
                    psm_grant: _,
                    app_ready,
                    pin,
                    sms_ready,
                    registration,
                    pdp_deactivated,
                    pdp_deact_events: _,
                    functionality,
                    unknown_urcs: _,
                    edrx,
                    generation: _,
                } = self;
                *boots = boots.wrapping_add(1);
                *psm_asleep = false;
                *app_ready = false;
                *pin = None;
                *sms_ready = false;
                *registration = [PackedReg::NONE; 3];
                *pdp_deactivated = 0;
                *functionality = None;
                *edrx = None;
            }
            Urc::AppReady => self.app_ready = true,
            Urc::PsmPowerDown => {
                // Registered still (the network keeps the UE attached through PSM), but
                // unreachable until it wakes.
                self.psm_asleep = true;
                self.psm_entries = self.psm_entries.wrapping_add(1);
                self.app_ready = false;
            }
            Urc::QPsmTimer {
                periodic_tau_s,
                active_time_s,
            } => self.set_psm_grant(PsmGrant {
                periodic_tau_s: Some(*periodic_tau_s),
                active_time_s: Some(*active_time_s),
            }),
            Urc::PoweredDown
            | Urc::Notice(
                crate::at::urc::Notice::UnderVoltagePowerDown
                | crate::at::urc::Notice::OverVoltagePowerDown,
            ) => {
                self.app_ready = false;
                self.psm_asleep = false;
                self.registration = [PackedReg::NONE; 3];
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
            Urc::TimeZone(t) => clock::observe(t),
            _ => {}
        }
    }
}

/// Whether [`StateCell::apply_in`] changes nothing but the generation for `urc` (neither the
/// state nor the DNS bookkeeping): a socket's `+QIOPEN`/`+QSSLOPEN`, `recv` or `closed`, which
/// only the socket slots take, and the reports the state does not keep (`+QIND: "csq"`,
/// `+QUSIM`): the first two arms of its `match`, listed again for the tests.
#[cfg(test)]
pub(crate) fn leaves_alone(urc: &Urc) -> bool {
    matches!(
        urc,
        Urc::QiOpen { .. }
            | Urc::QsslOpen { .. }
            | Urc::QiUrc(QiUrc::Recv(_) | QiUrc::Closed(_))
            | Urc::QsslUrc(_)
            | Urc::QInd(QInd::Csq { .. })
            | Urc::QUsim(_)
    )
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

    /// The cell, in a critical section ([`lock::with`]).
    #[inline]
    fn locked<R>(&self, f: impl FnOnce(&RefCell<Inner>) -> R) -> R {
        lock::with(|cs| f(self.inner.borrow(cs)))
    }

    /// A snapshot.
    pub fn get(&self) -> State {
        self.locked(|i| i.borrow().state)
    }

    /// Changes the state and wakes everyone waiting on it.
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        self.locked(|i| {
            let mut i = i.borrow_mut();
            let r = f(&mut i.state);
            i.state.generation = i.state.generation.wrapping_add(1);
            i.wakers.wake();
            r
        })
    }

    /// Applies a URC and wakes waiters (the state and the lookup bookkeeping; the socket slots
    /// are the runner's, see [`StateCell::apply_in`]).
    pub fn apply(&self, urc: &Urc) {
        lock::with(|cs| self.apply_in(cs, urc, None, None))
    }

    /// Applies a URC inside the caller's critical section: to the state and the lookup
    /// bookkeeping, with the PSM timers a `+CEREG` granted (`grant`), and to the socket slots
    /// (`pool`, the runner's, in the same section); the generation bumped once and the waiters
    /// woken, whatever it changed.
    ///
    /// One `match` on the URC for all three (inlined into the runner's URC sink, its one caller
    /// on firmware): a socket's own URC, `recv`, `closed`, `+QIOPEN`/`+QSSLOPEN`, goes to the
    /// slots without the state's dispatch, a report the state does not keep (`+QIND: "csq"`,
    /// `+QUSIM`) to neither, and the state's own URCs to the slots only when they are `RDY`
    /// or `pdpdeact`.
    #[inline(always)]
    pub(crate) fn apply_in(
        &self,
        cs: critical_section::CriticalSection<'_>,
        urc: &Urc,
        grant: Option<PsmGrant>,
        pool: Option<&dyn crate::socket::SocketPool>,
    ) {
        let mut i = self.inner.borrow(cs).borrow_mut();
        let i = &mut *i;
        match urc {
            Urc::QiOpen { .. }
            | Urc::QsslOpen { .. }
            | Urc::QiUrc(QiUrc::Recv(_) | QiUrc::Closed(_))
            | Urc::QsslUrc(_) => {
                if let Some(pool) = pool {
                    pool.apply_urc_in(cs, urc);
                }
            }
            Urc::QInd(QInd::Csq { .. }) | Urc::QUsim(_) => {}
            _ => {
                i.state.apply(urc);
                if let Some(grant) = grant {
                    i.state.set_psm_grant(grant);
                }
                match urc {
                    // No lookup result comes after a reboot (the lookup holding the resolver
                    // keeps it; it sees the reboot).
                    Urc::Ready => i.dns.resync(),
                    Urc::QiUrc(q) => i.dns.apply(q),
                    _ => {}
                }
                if let Some(pool) = pool
                    && matches!(urc, Urc::Ready | Urc::QiUrc(QiUrc::PdpDeact(_)))
                {
                    pool.apply_urc_in(cs, urc);
                }
            }
        }
        i.state.generation = i.state.generation.wrapping_add(1);
        i.wakers.wake();
    }

    /// The host-name lookup bookkeeping.
    pub(crate) fn dns(&self) -> DnsState {
        self.locked(|i| i.borrow().dns)
    }

    /// Changes the host-name lookup bookkeeping and wakes everyone waiting.
    pub(crate) fn update_dns<R>(&self, f: impl FnOnce(&mut DnsState) -> R) -> R {
        self.locked(|i| {
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
            self.locked(|i| {
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

    /// Waits until `until(state, arg)` holds, re-checking after every change. Cancel-safe.
    ///
    /// The driver's own waits (a reboot, a new registration generation, the SIM ready) are
    /// this one future type with a plain function and one argument, polled out of line: one
    /// copy in the firmware, where [`Self::wait_for`] with a closure is one per caller.
    pub(crate) fn until(&self, until: fn(&State, u32) -> bool, arg: u32) -> Until<'_> {
        Until {
            cell: self,
            until,
            arg,
        }
    }

    /// Waits until `f` returns `Some`, re-checking after every change. Cancel-safe.
    pub async fn wait_for<T>(&self, mut f: impl FnMut(&State) -> Option<T>) -> T {
        poll_fn(|cx| {
            self.locked(|i| {
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
impl StateCell {
    /// What the runner's URC sink does to the cell for `urc` (read from `line`), written as its
    /// parts, one after the other, for the tests that check the sink against it:
    /// `State::apply`, the PSM timers of a `+CEREG`, the lookup bookkeeping, the generation.
    pub(crate) fn apply_as_parts(&self, urc: &Urc, line: &[u8]) {
        self.locked(|i| {
            let mut i = i.borrow_mut();
            let i = &mut *i;
            i.state.apply(urc);
            if let Urc::Registration(crate::at::urc::RegDomain::Eps, _) = urc
                && let Some(g) = cereg_psm_grant(line)
            {
                i.state.set_psm_grant(g);
            }
            match urc {
                Urc::Ready => i.dns.resync(),
                Urc::QiUrc(q) => i.dns.apply(q),
                _ => {}
            }
            i.state.generation = i.state.generation.wrapping_add(1);
        })
    }
}

/// The future of [`StateCell::until`].
#[must_use = "futures do nothing unless awaited"]
pub(crate) struct Until<'a> {
    cell: &'a StateCell,
    until: fn(&State, u32) -> bool,
    arg: u32,
}

impl core::future::Future for Until<'_> {
    type Output = ();

    #[inline(never)]
    fn poll(self: core::pin::Pin<&mut Self>, cx: &mut core::task::Context<'_>) -> Poll<()> {
        self.cell.locked(|i| {
            let mut i = i.borrow_mut();
            if (self.until)(&i.state, self.arg) {
                Poll::Ready(())
            } else {
                i.wakers.register(cx.waker());
                Poll::Pending
            }
        })
    }
}

/// For [`StateCell::until`]: the module started (booted or woke) again since `starts`.
pub(crate) fn started_since(s: &State, starts: u32) -> bool {
    s.starts() != starts
}

/// For [`StateCell::until`]: the module booted again since `boots`.
pub(crate) fn booted_since(s: &State, boots: u32) -> bool {
    s.boots != boots
}

/// For [`StateCell::until`]: the state changed since generation `generation`.
pub(crate) fn changed_since(s: &State, generation: u32) -> bool {
    s.generation != generation
}

/// For [`StateCell::until`]: the SIM is ready (`+CPIN: READY`).
pub(crate) fn sim_ready(s: &State, _: u32) -> bool {
    s.pin == Some(PinCode::Ready)
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

    /// Every URC changes the generation exactly once (it was bumped twice for a URC the
    /// state keeps: by `State::apply` and again by the cell), whatever it changes: one the
    /// state keeps, one it leaves alone, one it ignores, a time zone, an unknown one.
    #[test]
    fn every_urc_changes_the_generation_once() {
        let lines: [&[u8]; 16] = [
            b"RDY",
            b"+CFUN: 1",
            b"+CPIN: READY",
            b"+QIND: SMS DONE",
            b"+CEREG: 1,\"1A2B\",\"01A2D102\",8",
            b"+QIURC: \"pdpdeact\",1",
            b"+QIURC: \"dnsgip\",0,1,600",
            b"+QIURC: \"recv\",0",
            b"+QIOPEN: 1,0",
            b"+QIND: \"csq\",20,99",
            b"+QUSIM: 1",
            b"RING",
            b"+CTZV: -20",
            b"+FOO: 1",
            b"PSM POWER DOWN",
            b"RDY",
        ];
        let cell = StateCell::new();
        for line in lines {
            let before = cell.get().generation;
            cell.apply(&Urc::parse_line(line).unwrap());
            assert_eq!(cell.get().generation, before.wrapping_add(1), "{line:?}");
        }
        // `State::apply` leaves it to the cell.
        let mut s = State::new();
        for line in lines {
            s.apply(&Urc::parse_line(line).unwrap());
            assert_eq!(s.generation, 0, "{line:?}");
        }
    }

    /// A reboot resets, field by field, what `State::new()` with the kept fields copied back
    /// reset.
    #[test]
    fn a_reboot_resets_what_it_did_before() {
        let mut s = State::new();
        for urc in [
            &b"+CFUN: 1"[..],
            b"+CPIN: READY",
            b"+QIND: SMS DONE",
            b"APP RDY",
            b"+CEREG: 1,\"1A2B\",\"01A2D102\",8",
            b"+CREG: 5",
            b"+QIURC: \"pdpdeact\",1",
            b"+QPSMTIMER: 3600,60",
            b"+CEDRXP: 5,\"0101\",\"0001\"",
            b"+FOO: 1",
            b"PSM POWER DOWN",
            b"RDY",
            b"PSM POWER DOWN",
        ] {
            s.apply(&Urc::parse_line(urc).unwrap());
        }
        // Set again after the wake above.
        for urc in [&b"+CFUN: 1"[..], b"+CPIN: READY", b"APP RDY", b"+CGREG: 1"] {
            s.apply(&Urc::parse_line(urc).unwrap());
        }
        s.psm_asleep = false;
        let before = s;
        let mut want = State::new();
        want.boots = before.boots.wrapping_add(1);
        want.wakes = before.wakes;
        want.psm_entries = before.psm_entries;
        want.psm_grant = before.psm_grant;
        want.unknown_urcs = before.unknown_urcs;
        want.pdp_deact_events = before.pdp_deact_events;
        // (The generation is the cell's to bump, once per URC.)
        want.generation = before.generation;
        s.apply(&Urc::Ready);
        assert_eq!(s, want);
        assert_ne!(before.functionality, None);
        assert_ne!(before.edrx, None);
        assert_ne!(before.pdp_deactivated, 0);
        assert!(before.sms_ready && before.app_ready && before.wakes == 1);
    }

    /// `+CEREG` with `<n>` = 4: the granted timers decoded (TS 24.008: Active-Time
    /// `00100010` = 2 × 1 min, Periodic-TAU `00000110` = 6 × 10 min; `111` units: deactivated).
    #[test]
    fn granted_psm_timers_from_cereg_and_qpsmtimer() {
        let g = cereg_psm_grant(b"+CEREG: 1,\"D509\",\"80D413D\",8,,,\"00100010\",\"00000110\"")
            .unwrap();
        assert_eq!(g.active_time_s, Some(120));
        assert_eq!(g.periodic_tau_s, Some(3600));
        let g = cereg_psm_grant(b"+CEREG: 5,\"1A2B\",\"01A2D101\",9,0,0,\"11100000\",\"01011111\"")
            .unwrap();
        assert_eq!(g.active_time_s, None, "deactivated");
        assert_eq!(g.periodic_tau_s, Some(310 * 3600));
        // n = 2 lines carry no timers; a garbled timer is not taken.
        assert_eq!(cereg_psm_grant(b"+CEREG: 1,\"D509\",\"80D413D\",8"), None);
        assert_eq!(
            cereg_psm_grant(b"+CEREG: 1,\"D509\",\"80D413D\",8,,,\"0010001x\",\"0000011\""),
            None
        );
        assert_eq!(cereg_psm_grant(b"+CGREG: 1"), None);

        let mut s = State::new();
        s.apply(&Urc::parse_line(b"+QPSMTIMER: 3600,60").unwrap());
        assert_eq!(
            s.psm_grant(),
            Some(PsmGrant {
                periodic_tau_s: Some(3600),
                active_time_s: Some(60)
            })
        );
    }

    #[test]
    fn packed_registration_and_grant_read_back_what_was_stored() {
        let mut s = State::new();
        assert_eq!(s.registration(RegDomain::Eps), None);
        assert_eq!(s.psm_grant(), None);
        for r in [
            Registration {
                status: RegStatus::Roaming,
                area: Some(0xffff_ffff),
                cell: None,
                act: Some(0),
            },
            Registration {
                status: RegStatus::Unknown,
                area: None,
                cell: Some(0x0800_d413),
                act: None,
            },
            Registration {
                status: RegStatus::NotRegistered,
                area: Some(0),
                cell: Some(0),
                act: Some(255),
            },
        ] {
            s.set_registration(RegDomain::Eps, r);
            assert_eq!(s.registration(RegDomain::Eps), Some(r));
            assert_eq!(s.registration(RegDomain::Cs), None);
        }
        for g in [
            PsmGrant {
                periodic_tau_s: None,
                active_time_s: Some(0),
            },
            PsmGrant {
                periodic_tau_s: Some(u32::MAX),
                active_time_s: None,
            },
        ] {
            s.set_psm_grant(g);
            assert_eq!(s.psm_grant(), Some(g));
        }
    }

    /// `RDY` after `PSM POWER DOWN` is a wake (registration kept), any other `RDY` a boot.
    #[test]
    fn a_psm_wake_is_not_a_reboot() {
        let cell = StateCell::new();
        let urc = |line: &[u8]| cell.apply(&Urc::parse_line(line).unwrap());
        urc(b"RDY");
        urc(b"+CEREG: 1,\"D509\",\"80D413D\",8");
        assert_eq!((cell.get().boots, cell.get().wakes), (1, 0));
        urc(b"PSM POWER DOWN");
        let s = cell.get();
        assert!(s.psm_asleep);
        assert_eq!(s.psm_entries, 1);
        assert_eq!(s.best_registration(), Some(RegStatus::Home));
        urc(b"RDY");
        let s = cell.get();
        assert_eq!((s.boots, s.wakes, s.starts()), (1, 1, 2));
        assert!(!s.psm_asleep);
        assert_eq!(s.best_registration(), Some(RegStatus::Home), "kept");
        // A second RDY with no PSM before it is a reboot: registration forgotten.
        urc(b"RDY");
        let s = cell.get();
        assert_eq!((s.boots, s.wakes, s.starts()), (2, 1, 3));
        assert_eq!(s.best_registration(), None);
        assert_eq!(s.psm_entries, 1, "counters survive the reboot");
    }

    /// The PSM timers the runner reads from a `+CEREG` with fields after its report (`more`)
    /// are those it read when it counted six commas first (the gate it replaced), on random
    /// texts and on reports with random tails.
    #[test]
    fn psm_timers_gated_by_the_report_tail_agree_with_the_comma_count() {
        use crate::at::urc::RegDomain;
        let grant = cereg_psm_grant_fields;
        let check = |text: &[u8]| {
            let line = [&b"+CEREG: "[..], text].concat();
            let line = crate::error::trim_ascii(&line);
            let split = crate::at::line::split_prefix(line);
            let mut more = false;
            let urc = Urc::parse_split_more(line, split, &mut more);
            assert_eq!(urc, Urc::parse_split(line, split), "{line:?}");
            let text = split.map_or(&b""[..], |s| s.text);
            let old = match urc {
                Some(Urc::Registration(RegDomain::Eps, _))
                    if crate::at::line::commas(text) >= 6 =>
                {
                    grant(text)
                }
                _ => None,
            };
            let new = if more { grant(text) } else { None };
            assert_eq!(new, old, "{line:?}");
        };
        for text in crate::at::random_lines(0xce2e_6001, 40, 600, b"01,\",\"1A \t") {
            check(&text);
        }
        let heads: [&[u8]; 5] = [
            b"1",
            b"1,\"1A2B\",\"01A2D102\",8",
            b"5,\"D509\",\"80D413D\",9",
            b"2,,,7",
            b"1,\"1A2B\"",
        ];
        for tail in crate::at::random_lines(0xce2e_6002, 30, 300, b"01,,\"\"x ") {
            for head in heads {
                check(&[head, &tail].concat());
            }
        }
        for text in [
            &b"1,\"D509\",\"80D413D\",8,,,\"00100010\",\"00000110\""[..],
            b"5,\"1A2B\",\"01A2D101\",9,0,0,\"11100000\",\"01011111\"",
            b"1,,,,,,\"00100010\"",
            b"1,\"1A2B\",\"01A2D102\",8",
            b"1,\"1,2\",\"3,4\",8,,,\"00100010\"",
        ] {
            check(text);
        }
    }

    /// A URC that `leaves_alone` (which `apply_in` does not dispatch to the state) changes
    /// the state and the DNS bookkeeping as its parts do, the generation only, whatever came
    /// before it; every other URC as its parts do too.
    #[test]
    fn urcs_left_alone_change_only_the_generation() {
        let before: [&[u8]; 5] = [
            b"RDY",
            b"PSM POWER DOWN",
            b"+QIURC: \"dnsgip\",0,2,600",
            b"+CEREG: 1,\"D509\",\"80D413D\",8",
            b"+QIURC: \"pdpdeact\",1",
        ];
        let lines: [&[u8]; 18] = [
            b"+QUSIM: 1",
            b"+QIND: \"csq\",31,99",
            b"+QIOPEN: 0,0",
            b"+QIOPEN: 1,566",
            b"+QSSLOPEN: 4,0",
            b"+QIURC: \"recv\",0",
            b"+QIURC: \"closed\",3",
            b"+QSSLURC: \"recv\",1",
            b"+QSSLURC: \"closed\",1",
            b"+QSSLURC: \"other\"",
            b"+QIURC: \"pdpdeact\",1",
            b"+QIURC: \"dnsgip\",\"10.0.0.1\"",
            b"+QIURC: \"incoming full\"",
            b"+QIURC: \"other\"",
            b"RDY",
            b"+CPIN: READY",
            b"+QIND: \"csq\",20,99",
            b"+FOO: 1",
        ];
        let mut left = 0u32;
        for prior in before {
            for line in lines {
                let urc = Urc::parse_line(line).unwrap();
                let (a, b, c) = (StateCell::new(), StateCell::new(), StateCell::new());
                for cell in [&a, &b, &c] {
                    cell.apply(&Urc::parse_line(prior).unwrap());
                    cell.update_dns(|d| d.busy = true);
                }
                a.apply(&urc);
                b.apply_as_parts(&urc, line);
                assert_eq!(a.get(), b.get(), "{prior:?} then {line:?}");
                assert_eq!(a.dns(), b.dns(), "{prior:?} then {line:?}");
                if leaves_alone(&urc) {
                    left = left.wrapping_add(1);
                    c.update(|_| ());
                    assert_eq!(a.get(), c.get(), "{prior:?} then {line:?}");
                    assert_eq!(a.dns(), c.dns(), "{prior:?} then {line:?}");
                }
            }
        }
        assert_eq!(left, 5 * 11);
        // The state's own URCs are not left alone.
        for line in [
            &b"RDY"[..],
            b"+QIURC: \"pdpdeact\",1",
            b"+QIURC: \"dnsgip\",0,1,60",
            b"+QIND: SMS DONE",
            b"+CPIN: READY",
        ] {
            assert!(!leaves_alone(&Urc::parse_line(line).unwrap()), "{line:?}");
        }
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
        let a = d.last().unwrap();
        assert_eq!((a.err, a.count, a.received), (0, 3, 3));
        assert_eq!(a.first(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(a.ipv4, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(a.ipv6, Some("2001:db8::1".parse().unwrap()));

        // A failure completes at once, with no address.
        d.issued = 2;
        dns(&mut d, b"+QIURC: \"dnsgip\",565");
        assert_eq!(d.completed, 2);
        assert_eq!(d.last().unwrap().err, 565);
        assert_eq!(d.last().unwrap().first(), None);

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
        // The next header ends the first result with the one address it got (a dropped
        // lookup's: the lookup waiting now is the second, so the first is not kept).
        dns(&mut d, b"+QIURC: \"dnsgip\",0,1,600");
        assert_eq!(d.completed, 1);
        assert_eq!(d.collecting().map(|a| (a.count, a.received)), Some((1, 0)));
        dns(&mut d, b"+QIURC: \"dnsgip\",\"10.0.0.2\"");
        assert_eq!(d.completed, 2);
        assert_eq!(d.last().unwrap().ipv4, Some("10.0.0.2".parse().unwrap()));
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
        assert_eq!(d.collecting(), None);
        // The address line of the lost lookup is ignored.
        urc(b"+QIURC: \"dnsgip\",\"10.0.0.1\"");
        assert_eq!(cell.dns().completed, 0);
    }
}
