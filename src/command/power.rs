//! Power saving: PSM (`AT+CPSMS`) and eDRX (`AT+CEDRXS`, `AT+CEDRXRDP`, `AT+QPTWEDRXS`), with
//! the 3GPP timer encodings they carry.
//!
//! The module sends and reads timers as quoted bit strings of the TS 24.008 information
//! elements: the periodic TAU (T3412 extended) as a *GPRS Timer 3* octet, the active time
//! (T3324) as a *GPRS Timer 2* octet (§10.5.7.4a and §10.5.7.4: three unit bits, five value
//! bits), and the eDRX cycle and paging time window as 4-bit values (§10.5.5.32). The
//! encoders here take durations and round **up** to the nearest value the octet can hold, so
//! that the device never asks for less than the caller wanted; the network may grant other
//! values anyway (read them back with [`GetPsm`], or from `+CEREG` with `<n>` = 4).
//!
//! Which models have which command is in the model table (`ModelParams::power`); the power
//! handle of the async layer checks it before sending.

use embassy_time::Duration;
use nom::combinator::opt;

use super::{CmdWriter, Command};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::parse::{all, next, quoted, uint};
use crate::at::response::Response;

const TIMEOUT_MS: u32 = 300;

/// One unit of a GPRS timer octet: its three unit bits and its length in seconds.
struct Unit {
    bits: u8,
    secs: u64,
}

/// GPRS Timer 3 units (TS 24.008 §10.5.7.4a), shortest first. `111` is "deactivated".
const TIMER3_UNITS: [Unit; 7] = [
    Unit {
        bits: 0b011,
        secs: 2,
    },
    Unit {
        bits: 0b100,
        secs: 30,
    },
    Unit {
        bits: 0b101,
        secs: 60,
    },
    Unit {
        bits: 0b000,
        secs: 600,
    },
    Unit {
        bits: 0b001,
        secs: 3_600,
    },
    Unit {
        bits: 0b010,
        secs: 36_000,
    },
    Unit {
        bits: 0b110,
        secs: 1_152_000,
    },
];

/// GPRS Timer 2 units (TS 24.008 §10.5.7.4), shortest first. `111` is "deactivated"; the
/// other unit values "shall be interpreted as multiples of 1 minute".
const TIMER2_UNITS: [Unit; 3] = [
    Unit {
        bits: 0b000,
        secs: 2,
    },
    Unit {
        bits: 0b001,
        secs: 60,
    },
    Unit {
        bits: 0b010,
        secs: 360,
    },
];

/// The largest value the five value bits hold.
const MAX_VALUE: u64 = 31;

/// The octet that holds the shortest duration ≥ `secs` among `units` (the first unit wins a
/// tie, so an exact value is kept exact); `None` if even the longest is too short.
fn encode(secs: u64, units: &[Unit]) -> Option<u8> {
    let mut best: Option<(u64, u8)> = None;
    for u in units {
        let value = secs.div_ceil(u.secs);
        if value > MAX_VALUE {
            continue;
        }
        let Some(got) = value.checked_mul(u.secs) else {
            continue;
        };
        if best.is_none_or(|(b, _)| got < b) {
            // `value` ≤ 31 fits the five value bits.
            best = Some((got, (u.bits << 5) | value as u8));
        }
    }
    best.map(|(_, octet)| octet)
}

/// Encodes a periodic TAU (T3412 extended) as a GPRS Timer 3 octet, rounding up: 2 s steps
/// up to 62 s, then 30 s, 1 min, 10 min, 1 h, 10 h and 320 h steps (at most 9 920 h). Zero or
/// longer than 9 920 h is [`Error::InvalidArgument`].
pub fn encode_periodic_tau(tau: Duration) -> Result<u8, Error> {
    let secs = tau.as_secs();
    if secs == 0 {
        return Err(Error::InvalidArgument);
    }
    encode(secs, &TIMER3_UNITS).ok_or(Error::InvalidArgument)
}

/// Decodes a GPRS Timer 3 octet; `None`: the timer is deactivated (`111` unit bits).
pub fn decode_periodic_tau(octet: u8) -> Option<Duration> {
    let value = u64::from(octet & 0x1f);
    let unit = octet >> 5;
    TIMER3_UNITS
        .iter()
        .find(|u| u.bits == unit)
        // `value` ≤ 31 and a unit is at most 320 h: no saturation happens.
        .map(|u| Duration::from_secs(value.saturating_mul(u.secs)))
}

/// Encodes an active time (T3324) as a GPRS Timer 2 octet, rounding up: 2 s steps up to
/// 62 s, then 1 min steps up to 31 min, then 6 min steps (at most 186 min). Zero is allowed
/// (the module enters PSM as soon as it may); longer than 186 min is
/// [`Error::InvalidArgument`].
pub fn encode_active_time(active: Duration) -> Result<u8, Error> {
    encode(active.as_secs(), &TIMER2_UNITS).ok_or(Error::InvalidArgument)
}

/// Decodes a GPRS Timer 2 octet; `None`: the timer is deactivated (`111` unit bits). Unit
/// values the standard does not define count in minutes, as it says.
pub fn decode_active_time(octet: u8) -> Option<Duration> {
    let value = u64::from(octet & 0x1f);
    match octet >> 5 {
        0b111 => None,
        unit => {
            let secs = TIMER2_UNITS
                .iter()
                .find(|u| u.bits == unit)
                .map_or(60, |u| u.secs);
            // `value` ≤ 31 and a unit is at most 6 min: no saturation happens.
            Some(Duration::from_secs(value.saturating_mul(secs)))
        }
    }
}

/// Writes `bits` (the low `n` bits of `v`) as a quoted bit string, most significant first.
fn write_bits(w: &mut CmdWriter<'_>, v: u8, n: u32) -> Result<(), Error> {
    let mut s = [b'0'; 8];
    let n = n.min(8) as usize;
    // The first character is bit `n - 1`, the last bit 0.
    for (bit, c) in (0..n).rev().zip(s.iter_mut()) {
        if v >> bit & 1 == 1 {
            *c = b'1';
        }
    }
    w.raw(b"\"")?;
    w.raw(s.get(..n).unwrap_or(&[]))?;
    w.raw(b"\"")
}

/// Reads a bit string of exactly `n` `0`/`1` characters.
fn parse_bits(s: &[u8], n: usize) -> Result<u8, Error> {
    if s.len() != n || n > 8 {
        return Err(Error::Parse);
    }
    s.iter().try_fold(0u8, |acc, &c| match c {
        b'0' => Ok(acc << 1),
        b'1' => Ok(acc << 1 | 1),
        _ => Err(Error::Parse),
    })
}

/// `AT+CPSMS=1,,,"<T3412>","<T3324>"`: asks the network for PSM with this periodic TAU and
/// active time (encoded with [`encode_periodic_tau`] and [`encode_active_time`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetPsm {
    /// Requested periodic TAU (T3412 extended).
    pub periodic_tau: Duration,
    /// Requested active time (T3324).
    pub active_time: Duration,
}

impl Command for SetPsm {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        let tau = encode_periodic_tau(self.periodic_tau)?;
        let active = encode_active_time(self.active_time)?;
        w.str("AT+CPSMS=1,,,")?;
        write_bits(w, tau, 8)?;
        w.comma()?;
        write_bits(w, active, 8)
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+CPSMS=0`: no PSM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DisablePsm;

impl Command for DisablePsm {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CPSMS=0")
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// What `AT+CPSMS?` reports: the requested settings (not what the network granted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PsmSettings {
    /// PSM requested.
    pub enabled: bool,
    /// Requested periodic TAU; `None` if not given or deactivated.
    pub periodic_tau: Option<Duration>,
    /// Requested active time; `None` if not given or deactivated.
    pub active_time: Option<Duration>,
}

/// `AT+CPSMS?` → `+CPSMS: <mode>,[<RAU>],[<READY>],[<TAU>],[<Active-Time>]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetPsm;

impl Command for GetPsm {
    type Response = PsmSettings;
    const EXPECT: Expect = Expect::prefixed(b"+CPSMS:");
    const TIMEOUT_MS: u32 = TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CPSMS?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<PsmSettings, Error> {
        let field = || opt(next(opt(quoted)));
        let (mode, _rau, _ready, tau, active) =
            all((uint, field(), field(), field(), field()), resp.first()?)?;
        let enabled = match mode {
            0 => false,
            1 => true,
            _ => return Err(Error::Parse),
        };
        let octet = |f: Option<Option<&[u8]>>| -> Result<Option<u8>, Error> {
            match f.flatten() {
                None | Some(b"") => Ok(None),
                Some(s) => parse_bits(s, 8).map(Some),
            }
        };
        Ok(PsmSettings {
            enabled,
            periodic_tau: octet(tau)?.and_then(decode_periodic_tau),
            active_time: octet(active)?.and_then(decode_active_time),
        })
    }
}

/// The radio an eDRX setting is for (`<AcT-type>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EdrxAct {
    /// LTE Cat M1 (E-UTRAN WB-S1 mode), `4`.
    LteM,
    /// LTE Cat NB1 (E-UTRAN NB-S1 mode), `5`.
    NbIot,
}

impl EdrxAct {
    fn code(self) -> u32 {
        match self {
            EdrxAct::LteM => 4,
            EdrxAct::NbIot => 5,
        }
    }

    fn from_code(c: u32) -> Option<Self> {
        match c {
            4 => Some(EdrxAct::LteM),
            5 => Some(EdrxAct::NbIot),
            _ => None,
        }
    }

    /// The eDRX cycle a 4-bit value stands for on this radio (TS 24.008 Table 10.5.5.32):
    /// 5.12 s × 2^k steps with the standard's gaps. On NB-IoT the values the table does not
    /// list for NB-S1 mode are interpreted as `0010` (20.48 s), as the standard says.
    pub fn cycle(self, value: u8) -> Duration {
        // In units of 10 ms (5.12 s = 512).
        const WB: [u64; 16] = [
            512, 1024, 2048, 4096, 6144, 8192, 10240, 12288, 14336, 16384, 32768, 65536, 131072,
            262144, 524288, 1048576,
        ];
        let v = usize::from(value & 0x0f);
        let v = match self {
            EdrxAct::NbIot if matches!(v, 0 | 1 | 4 | 6 | 7 | 8) => 2,
            _ => v,
        };
        // At most 1 048 576 × 10 ms.
        Duration::from_millis(WB.get(v).copied().unwrap_or(512).saturating_mul(10))
    }

    /// The shortest eDRX value whose cycle is at least `cycle` on this radio; `None` if
    /// longer than 10 485.76 s.
    pub fn value_for(self, cycle: Duration) -> Option<u8> {
        (0u8..16)
            .filter(|&v| !matches!(self, EdrxAct::NbIot if matches!(v, 0 | 1 | 4 | 6 | 7 | 8)))
            .find(|&v| self.cycle(v) >= cycle)
    }

    /// The paging time window a 4-bit value stands for (TS 24.008 §10.5.5.32): 1.28 s ×
    /// (value + 1) on LTE-M, 2.56 s × (value + 1) on NB-IoT.
    pub fn paging_window(self, value: u8) -> Duration {
        let step = match self {
            EdrxAct::LteM => 1280u64,
            EdrxAct::NbIot => 2560,
        };
        // `value & 0x0f` ≤ 15: at most 16 steps.
        Duration::from_millis(step.saturating_mul(u64::from(value & 0x0f).saturating_add(1)))
    }
}

/// `AT+CEDRXS=<mode>,<AcT-type>,"<value>"`: eDRX on (`enable`) or off for one radio, with the
/// requested cycle value (see [`EdrxAct::value_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetEdrx {
    /// `true`: mode 1 (on); `false`: mode 0 (off).
    pub enable: bool,
    /// The radio.
    pub act: EdrxAct,
    /// Requested eDRX value, 0–15.
    pub value: u8,
}

impl Command for SetEdrx {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        if self.value > 15 {
            return Err(Error::InvalidArgument);
        }
        w.str_uint(
            if self.enable {
                "AT+CEDRXS=1,"
            } else {
                "AT+CEDRXS=0,"
            },
            self.act.code(),
        )?;
        w.comma()?;
        write_bits(w, self.value, 4)
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// What `AT+CEDRXRDP` reports for the serving cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EdrxGrant {
    /// The radio in use; `None`: eDRX is not used in this cell (`<AcT-type>` 0).
    pub act: Option<EdrxAct>,
    /// The value the device asked for.
    pub requested: Option<u8>,
    /// The value the network gave.
    pub granted: Option<u8>,
    /// The paging time window value the network gave.
    pub paging_window: Option<u8>,
}

/// `AT+CEDRXRDP` → `+CEDRXRDP: <AcT-type>[,"<requested>"[,"<granted>"[,"<PTW>"]]]`: the eDRX
/// parameters the network granted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetEdrxGrant;

impl Command for GetEdrxGrant {
    type Response = EdrxGrant;
    const EXPECT: Expect = Expect::prefixed(b"+CEDRXRDP:");
    const TIMEOUT_MS: u32 = TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CEDRXRDP")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<EdrxGrant, Error> {
        let field = || opt(next(opt(quoted)));
        let (act, requested, granted, ptw) = all((uint, field(), field(), field()), resp.first()?)?;
        let nibble = |f: Option<Option<&[u8]>>| -> Result<Option<u8>, Error> {
            match f.flatten() {
                None | Some(b"") => Ok(None),
                Some(s) => parse_bits(s, 4).map(Some),
            }
        };
        let act = match act {
            0 => None,
            c => Some(EdrxAct::from_code(c).ok_or(Error::Parse)?),
        };
        Ok(EdrxGrant {
            act,
            requested: nibble(requested)?,
            granted: nibble(granted)?,
            paging_window: nibble(ptw)?,
        })
    }
}

/// `AT+QPTWEDRXS=<mode>,<AcT-type>,"<PTW>","<eDRX>"` (BG95/BG77): eDRX with a requested paging
/// time window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetEdrxWithWindow {
    /// `true`: mode 1 (on); `false`: mode 0 (off).
    pub enable: bool,
    /// The radio.
    pub act: EdrxAct,
    /// Requested paging time window value, 0–15 (see [`EdrxAct::paging_window`]).
    pub paging_window: u8,
    /// Requested eDRX value, 0–15.
    pub value: u8,
}

impl Command for SetEdrxWithWindow {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        if self.value > 15 || self.paging_window > 15 {
            return Err(Error::InvalidArgument);
        }
        w.str_uint(
            if self.enable {
                "AT+QPTWEDRXS=1,"
            } else {
                "AT+QPTWEDRXS=0,"
            },
            self.act.code(),
        )?;
        w.comma()?;
        write_bits(w, self.paging_window, 4)?;
        w.comma()?;
        write_bits(w, self.value, 4)
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+QCFG="psm/urc",<0|1>`: whether the module reports the granted timers with
/// `+QPSMTIMER: <tau>,<T3324>` (BG96 AT manual §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetPsmUrc(pub bool);

impl Command for SetPsmUrc {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str(if self.0 {
            "AT+QCFG=\"psm/urc\",1"
        } else {
            "AT+QCFG=\"psm/urc\",0"
        })
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+QPSMCFG=<threshold>,<psm_version>`: the module enters PSM only when it may sleep at
/// least `threshold_s` seconds (Quectel's PSM application notes: 60 s by default); `version`
/// is the PSM feature bit mask (Quectel: 4 for the 3GPP Rel-13 behaviour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetPsmThreshold {
    /// Shortest sleep, in seconds, worth entering PSM for.
    pub threshold_s: u32,
    /// PSM version bit mask.
    pub version: u8,
}

impl Command for SetPsmThreshold {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str_uint("AT+QPSMCFG=", self.threshold_s)?;
        w.arg(u32::from(self.version))
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::testing::{Row, table, wrote};

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    // Worked by hand from TS 24.008 §10.5.7.4a: unit bits 8-6, value bits 5-1.
    #[test]
    fn periodic_tau_boundaries() {
        let cases: &[(u64, u8)] = &[
            (2, 0b011_00001),           // 1 × 2 s
            (62, 0b011_11111),          // 31 × 2 s: the top of the 2 s unit
            (63, 0b100_00011),          // rounds up to 3 × 30 s = 90 s
            (930, 0b100_11111),         // 31 × 30 s
            (931, 0b101_10000),         // 16 × 1 min = 960 s
            (40 * 60, 0b000_00100),     // the manual's example: 4 × 10 min
            (60 * 60, 0b000_00110),     // 1 h: 6 × 10 min (the first exact unit)
            (31 * 3600, 0b001_11111),   // 31 × 1 h
            (310 * 3600, 0b010_11111),  // 31 × 10 h
            (311 * 3600, 0b110_00001),  // 1 × 320 h
            (9920 * 3600, 0b110_11111), // 31 × 320 h: the longest
        ];
        for &(secs, octet) in cases {
            assert_eq!(
                encode_periodic_tau(s(secs)),
                Ok(octet),
                "{secs} s -> {octet:08b}"
            );
            let back = decode_periodic_tau(octet).unwrap().as_secs();
            assert!(
                back >= secs && back < secs + secs / 2 + 2,
                "{secs} s -> {back} s"
            );
        }
        assert_eq!(encode_periodic_tau(s(0)), Err(Error::InvalidArgument));
        assert_eq!(
            encode_periodic_tau(s(9920 * 3600 + 1)),
            Err(Error::InvalidArgument)
        );
        // The BG770A's real answer "00101100": 12 × 1 h.
        assert_eq!(decode_periodic_tau(0b001_01100), Some(s(12 * 3600)));
        assert_eq!(decode_periodic_tau(0b111_00101), None);
    }

    // Worked by hand from TS 24.008 §10.5.7.4.
    #[test]
    fn active_time_boundaries() {
        let cases: &[(u64, u8)] = &[
            (0, 0b000_00000),        // enter PSM at once
            (30, 0b000_01111),       // the manual's example: 15 × 2 s
            (62, 0b000_11111),       // 31 × 2 s
            (63, 0b001_00010),       // rounds up to 2 min
            (31 * 60, 0b001_11111),  // 31 × 1 min
            (32 * 60, 0b010_00110),  // rounds up to 6 × 6 min = 36 min
            (186 * 60, 0b010_11111), // 31 × 6 min: the longest
        ];
        for &(secs, octet) in cases {
            assert_eq!(encode_active_time(s(secs)), Ok(octet), "{secs} s");
        }
        assert_eq!(
            encode_active_time(s(186 * 60 + 1)),
            Err(Error::InvalidArgument)
        );
        // The BG770A's real answer "00001010": 10 × 2 s.
        assert_eq!(decode_active_time(0b000_01010), Some(s(20)));
        assert_eq!(decode_active_time(0b111_00000), None);
        // Undefined units count in minutes.
        assert_eq!(decode_active_time(0b011_00011), Some(s(180)));
    }

    #[test]
    fn edrx_tables() {
        assert_eq!(EdrxAct::LteM.cycle(0b0000), Duration::from_millis(5_120));
        assert_eq!(EdrxAct::LteM.cycle(0b0101), Duration::from_millis(81_920));
        assert_eq!(
            EdrxAct::LteM.cycle(0b1111),
            Duration::from_millis(10_485_760)
        );
        assert_eq!(EdrxAct::NbIot.cycle(0b0000), Duration::from_millis(20_480));
        assert_eq!(EdrxAct::NbIot.cycle(0b1001), Duration::from_millis(163_840));
        assert_eq!(EdrxAct::LteM.value_for(s(60)), Some(0b0100));
        assert_eq!(EdrxAct::NbIot.value_for(s(60)), Some(0b0101));
        assert_eq!(EdrxAct::LteM.value_for(s(20_000)), None);
        assert_eq!(EdrxAct::LteM.paging_window(0), Duration::from_millis(1_280));
        assert_eq!(
            EdrxAct::LteM.paging_window(15),
            Duration::from_millis(20_480)
        );
        assert_eq!(
            EdrxAct::NbIot.paging_window(15),
            Duration::from_millis(40_960)
        );
    }

    #[test]
    fn commands_on_the_wire() {
        let psm = SetPsm {
            periodic_tau: s(40 * 60),
            active_time: s(30),
        };
        // The manual's example line.
        assert_eq!(
            wrote(&psm).unwrap(),
            b"AT+CPSMS=1,,,\"00000100\",\"00001111\""
        );
        let bad = SetPsm {
            periodic_tau: s(0),
            active_time: s(30),
        };
        assert_eq!(wrote(&bad), Err(Error::InvalidArgument));
        assert_eq!(wrote(&DisablePsm).unwrap(), b"AT+CPSMS=0");
        let edrx = SetEdrx {
            enable: true,
            act: EdrxAct::LteM,
            value: 0b0101,
        };
        assert_eq!(wrote(&edrx).unwrap(), b"AT+CEDRXS=1,4,\"0101\"");
        let ptw = SetEdrxWithWindow {
            enable: true,
            act: EdrxAct::NbIot,
            paging_window: 3,
            value: 0b1001,
        };
        assert_eq!(wrote(&ptw).unwrap(), b"AT+QPTWEDRXS=1,5,\"0011\",\"1001\"");
        let out_of_range = SetEdrx { value: 16, ..edrx };
        assert_eq!(wrote(&out_of_range), Err(Error::InvalidArgument));
        assert_eq!(wrote(&SetPsmUrc(true)).unwrap(), b"AT+QCFG=\"psm/urc\",1");
        assert_eq!(wrote(&SetPsmUrc(false)).unwrap(), b"AT+QCFG=\"psm/urc\",0");
        let threshold = SetPsmThreshold {
            threshold_s: 60,
            version: 4,
        };
        assert_eq!(wrote(&threshold).unwrap(), b"AT+QPSMCFG=60,4");
    }

    #[test]
    fn psm_read() {
        let rows: &[Row<PsmSettings>] = &[
            // Real BG770A answer.
            (
                b"\r\n+CPSMS: 0,,,\"00101100\",\"00001010\"\r\n\r\nOK\r\n",
                Ok(PsmSettings {
                    enabled: false,
                    periodic_tau: Some(s(12 * 3600)),
                    active_time: Some(s(20)),
                }),
            ),
            (
                b"\r\n+CPSMS: 1,,,\"00000100\",\"00001111\"\r\n\r\nOK\r\n",
                Ok(PsmSettings {
                    enabled: true,
                    periodic_tau: Some(s(2400)),
                    active_time: Some(s(30)),
                }),
            ),
            (
                b"\r\n+CPSMS: 0\r\n\r\nOK\r\n",
                Ok(PsmSettings {
                    enabled: false,
                    periodic_tau: None,
                    active_time: None,
                }),
            ),
            (b"\r\n+CPSMS: 2,,,,\r\n\r\nOK\r\n", Err(Error::Parse)),
            (
                b"\r\n+CPSMS: 1,,,\"0010\",\"00001010\"\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (
                b"\r\n+CPSMS: 1,,,\"0010110x\",\"00001010\"\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
            (b"\r\nERROR\r\n", Err(Error::Error)),
        ];
        table(&GetPsm, rows);
    }

    #[test]
    fn edrx_grant_read() {
        let rows: &[Row<EdrxGrant>] = &[
            (
                b"\r\n+CEDRXRDP: 4,\"0101\",\"0101\",\"0011\"\r\n\r\nOK\r\n",
                Ok(EdrxGrant {
                    act: Some(EdrxAct::LteM),
                    requested: Some(5),
                    granted: Some(5),
                    paging_window: Some(3),
                }),
            ),
            (
                b"\r\n+CEDRXRDP: 0\r\n\r\nOK\r\n",
                Ok(EdrxGrant {
                    act: None,
                    requested: None,
                    granted: None,
                    paging_window: None,
                }),
            ),
            (b"\r\n+CEDRXRDP: 7\r\n\r\nOK\r\n", Err(Error::Parse)),
            (
                b"\r\n+CEDRXRDP: 5,\"01010\"\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
        ];
        table(&GetEdrxGrant, rows);
    }
}
