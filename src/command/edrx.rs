//! eDRX as typed values: the cycle and paging-time-window tables of LTE-M and NB-IoT, the
//! read forms of `AT+CEDRXS?` and `AT+QPTWEDRXS?`, and `AT+CEDRXS=2` (eDRX with the `+CEDRXP`
//! URC).
//!
//! The tables are 3GPP TS 24.008 §10.5.5.32 (*Extended DRX parameters*), which TS 36.304 §7.3
//! applies to paging:
//!
//! * **eDRX cycle** (`T_eDRX`, 4 bits). WB-S1 mode (LTE-M): every value is defined, 5.12 s ×
//!   {1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 64, 128, 256, 512, 1024, 2048}. NB-S1 mode (NB-IoT):
//!   only `0010`, `0011`, `0101` and `1001`–`1111` are defined (20.48 s, 40.96 s, 81.92 s, then
//!   163.84 s × 2ⁿ up to 10 485.76 s): the NB-IoT table **starts at 20.48 s**. A network value
//!   outside the NB-S1 list is "interpreted as `0010`" by the standard ([`EdrxCycle::from_network`]);
//!   a requested one is refused ([`EdrxCycle::new`]).
//! * **Paging time window** (PTW, 4 bits): WB-S1 mode 1.28 s × (value + 1), 1.28 s to 20.48 s;
//!   NB-S1 mode 2.56 s × (value + 1), 2.56 s to 40.96 s.

use embassy_time::Duration;
use nom::combinator::opt;

use super::power::EdrxAct;
use super::{CmdWriter, Command};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::parse::{all, next, quoted, uint};
use crate::at::response::Response;

const TIMEOUT_MS: u32 = 300;

/// `T_eDRX` of each 4-bit value in WB-S1 mode, in units of 10 ms (5.12 s = 512).
const WB_CYCLE: [u32; 16] = [
    512, 1_024, 2_048, 4_096, 6_144, 8_192, 10_240, 12_288, 14_336, 16_384, 32_768, 65_536,
    131_072, 262_144, 524_288, 1_048_576,
];

/// Whether a 4-bit eDRX value is defined on this radio.
fn defined(act: EdrxAct, value: u8) -> bool {
    value <= 15 && !(act == EdrxAct::NbIot && matches!(value, 0 | 1 | 4 | 6 | 7 | 8))
}

/// An eDRX cycle of one radio: a 4-bit value the table defines for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EdrxCycle {
    act: EdrxAct,
    value: u8,
}

impl EdrxCycle {
    /// The cycle of `value` on `act`; [`Error::InvalidArgument`] for a value above 15 or one
    /// the NB-S1 table does not define (`0000`, `0001`, `0100`, `0110`–`1000`).
    pub fn new(act: EdrxAct, value: u8) -> Result<Self, Error> {
        if defined(act, value) {
            Ok(Self { act, value })
        } else {
            Err(Error::InvalidArgument)
        }
    }

    /// A value the network sent: one the NB-S1 table does not define reads as `0010`
    /// (20.48 s), as TS 24.008 says; only the low 4 bits count.
    pub fn from_network(act: EdrxAct, value: u8) -> Self {
        let value = value & 0x0f;
        let value = if defined(act, value) { value } else { 2 };
        Self { act, value }
    }

    /// The shortest cycle of at least `cycle` on `act`; `None` if longer than 10 485.76 s.
    pub fn at_least(act: EdrxAct, cycle: Duration) -> Option<Self> {
        (0u8..16)
            .filter_map(|v| Self::new(act, v).ok())
            .find(|c| c.duration() >= cycle)
    }

    /// The radio.
    pub fn act(self) -> EdrxAct {
        self.act
    }

    /// The 4-bit value sent on the wire.
    pub fn value(self) -> u8 {
        self.value
    }

    /// The cycle's length.
    pub fn duration(self) -> Duration {
        let tens = WB_CYCLE
            .get(usize::from(self.value))
            .copied()
            .unwrap_or(512);
        Duration::from_millis(u64::from(tens).saturating_mul(10))
    }
}

/// A paging time window of one radio (any 4-bit value is defined).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PagingWindow {
    act: EdrxAct,
    value: u8,
}

impl PagingWindow {
    /// The window of `value` on `act`; [`Error::InvalidArgument`] above 15.
    pub fn new(act: EdrxAct, value: u8) -> Result<Self, Error> {
        if value <= 15 {
            Ok(Self { act, value })
        } else {
            Err(Error::InvalidArgument)
        }
    }

    /// The shortest window of at least `window`; `None` if longer than 20.48 s (LTE-M) or
    /// 40.96 s (NB-IoT).
    pub fn at_least(act: EdrxAct, window: Duration) -> Option<Self> {
        (0u8..16)
            .map(|value| Self { act, value })
            .find(|w| w.duration() >= window)
    }

    /// The radio.
    pub fn act(self) -> EdrxAct {
        self.act
    }

    /// The 4-bit value sent on the wire.
    pub fn value(self) -> u8 {
        self.value
    }

    /// The window's length: 1.28 s (LTE-M) or 2.56 s (NB-IoT) × (value + 1).
    pub fn duration(self) -> Duration {
        let step: u64 = match self.act {
            EdrxAct::LteM => 1_280,
            EdrxAct::NbIot => 2_560,
        };
        // value ≤ 15.
        Duration::from_millis(step.saturating_mul(u64::from(self.value).saturating_add(1)))
    }
}

fn act_of(code: u32) -> Result<EdrxAct, Error> {
    match code {
        4 => Ok(EdrxAct::LteM),
        5 => Ok(EdrxAct::NbIot),
        _ => Err(Error::Parse),
    }
}

/// Reads a quoted bit string of exactly four `0`/`1` characters.
pub(crate) fn nibble(s: &[u8]) -> Result<u8, Error> {
    if s.len() != 4 {
        return Err(Error::Parse);
    }
    s.iter().try_fold(0u8, |acc, &c| match c {
        b'0' => Ok(acc << 1),
        b'1' => Ok(acc << 1 | 1),
        _ => Err(Error::Parse),
    })
}

fn write_nibble(w: &mut CmdWriter<'_>, v: u8) -> Result<(), Error> {
    let mut s = [b'0'; 4];
    // The first character is bit 3, the last bit 0.
    for (bit, c) in (0..4u8).rev().zip(s.iter_mut()) {
        if v >> bit & 1 == 1 {
            *c = b'1';
        }
    }
    w.raw(b"\"")?;
    w.raw(&s)?;
    w.raw(b"\"")
}

/// The eDRX requests the module holds (`AT+CEDRXS?`), at most one per radio (`<AcT-type>` 4
/// LTE-M, 5 NB-IoT; lines for other radios are skipped).
pub type EdrxRequests = heapless::Vec<EdrxCycle, 2>;

/// `AT+CEDRXS?` → zero or more `+CEDRXS: <AcT-type>,"<Requested_eDRX_value>"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetEdrx;

impl Command for GetEdrx {
    type Response = EdrxRequests;
    const EXPECT: Expect = Expect::prefixed(b"+CEDRXS:");
    const TIMEOUT_MS: u32 = TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+CEDRXS?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<EdrxRequests, Error> {
        let mut out = EdrxRequests::new();
        let Ok(line) = resp.first() else {
            // `OK` alone: no request held.
            return Ok(out);
        };
        let (act, value) = all((uint, opt(next(quoted))), line)?;
        // Another radio (GSM 2, UMTS 3): not one this driver asks eDRX for.
        if let (Ok(act), Some(v)) = (act_of(act), value) {
            let c = EdrxCycle::from_network(act, nibble(v)?);
            out.push(c).map_err(|_| Error::Overflow)?;
        }
        Ok(out)
    }
    fn fold(&self, acc: &mut Option<Result<EdrxRequests, Error>>, line: &Response<'_>) {
        let got = self.parse(line);
        match (acc.as_mut(), got) {
            (Some(Ok(list)), Ok(more)) => {
                for c in more {
                    // One line per radio; a repeated radio keeps its last line.
                    list.retain(|x| x.act() != c.act());
                    if list.push(c).is_err() {
                        *acc = Some(Err(Error::Overflow));
                        return;
                    }
                }
            }
            (Some(Err(_)), _) => {}
            (None, got) => *acc = Some(got),
            (Some(Ok(_)), Err(e)) => *acc = Some(Err(e)),
        }
    }
}

/// `AT+CEDRXS=2,<AcT-type>,"<value>"`: eDRX on, and the module reports every change of the
/// network's eDRX parameters with `+CEDRXP:` (see [`Urc::Edrx`](crate::at::urc::Urc::Edrx)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetEdrxReporting {
    /// The requested cycle (its radio is the `<AcT-type>`).
    pub cycle: EdrxCycle,
}

impl Command for SetEdrxReporting {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str_uint(
            "AT+CEDRXS=2,",
            match self.cycle.act() {
                EdrxAct::LteM => 4,
                EdrxAct::NbIot => 5,
            },
        )?;
        w.comma()?;
        write_nibble(w, self.cycle.value())
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// One line of `AT+QPTWEDRXS?`: the requested paging time window and cycle of one radio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EdrxWindowRequest {
    /// The requested paging time window.
    pub paging_window: PagingWindow,
    /// The requested cycle.
    pub cycle: EdrxCycle,
}

/// `AT+QPTWEDRXS?` (BG95/BG77) → `+QPTWEDRXS: <AcT-type>,"<PTW>","<eDRX>"` (the first line
/// for LTE-M or NB-IoT; `None` with no such line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetEdrxWithWindow;

impl Command for GetEdrxWithWindow {
    type Response = Option<EdrxWindowRequest>;
    const EXPECT: Expect = Expect::prefixed(b"+QPTWEDRXS:");
    const TIMEOUT_MS: u32 = TIMEOUT_MS;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+QPTWEDRXS?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<Option<EdrxWindowRequest>, Error> {
        let Ok(line) = resp.first() else {
            return Ok(None);
        };
        let (act, ptw, edrx) = all((uint, next(quoted), next(quoted)), line)?;
        let Ok(act) = act_of(act) else {
            return Ok(None);
        };
        Ok(Some(EdrxWindowRequest {
            paging_window: PagingWindow::new(act, nibble(ptw)?)?,
            cycle: EdrxCycle::from_network(act, nibble(edrx)?),
        }))
    }
}

/// The network's eDRX parameters as a `+CEDRXP:` URC (or `AT+CEDRXRDP`) reports them, typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EdrxParams {
    /// The radio.
    pub act: EdrxAct,
    /// The cycle the device asked for.
    pub requested: Option<EdrxCycle>,
    /// The cycle the network gave (what paging follows).
    pub granted: Option<EdrxCycle>,
    /// The paging time window the network gave.
    pub paging_window: Option<PagingWindow>,
}

impl EdrxParams {
    /// Types the raw fields of a `+CEDRXP:` URC; `None` when eDRX is not used (`<AcT-type>`
    /// 0) or the radio is not LTE-M or NB-IoT.
    pub fn from_report(r: &crate::at::urc::EdrxReport) -> Option<Self> {
        let act = act_of(u32::from(r.act)).ok()?;
        Some(Self {
            act,
            requested: r.requested.map(|v| EdrxCycle::from_network(act, v)),
            granted: r.granted.map(|v| EdrxCycle::from_network(act, v)),
            paging_window: r
                .paging_window
                .and_then(|v| PagingWindow::new(act, v & 0x0f).ok()),
        })
    }

    /// Types what `AT+CEDRXRDP` read ([`GetEdrxGrant`](super::power::GetEdrxGrant)); `None`
    /// when eDRX is not used in the cell.
    pub fn from_grant(g: &super::power::EdrxGrant) -> Option<Self> {
        let act = g.act?;
        Some(Self {
            act,
            requested: g.requested.map(|v| EdrxCycle::from_network(act, v)),
            granted: g.granted.map(|v| EdrxCycle::from_network(act, v)),
            paging_window: g
                .paging_window
                .and_then(|v| PagingWindow::new(act, v & 0x0f).ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::testing::{Row, table, wrote};

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    // TS 24.008 Table 10.5.5.32, WB-S1 mode, every row.
    #[test]
    fn lte_m_cycle_table() {
        let secs_x100: [u64; 16] = [
            512, 1024, 2048, 4096, 6144, 8192, 10240, 12288, 14336, 16384, 32768, 65536, 131072,
            262144, 524288, 1048576,
        ];
        for (v, cs) in secs_x100.iter().enumerate() {
            let c = EdrxCycle::new(EdrxAct::LteM, v as u8).unwrap();
            assert_eq!(c.duration(), ms(cs * 10), "value {v:04b}");
        }
        assert_eq!(
            EdrxCycle::new(EdrxAct::LteM, 16),
            Err(Error::InvalidArgument)
        );
    }

    // TS 24.008 Table 10.5.5.32, NB-S1 mode: starts at 20.48 s, with holes.
    #[test]
    fn nb_iot_cycle_table() {
        let defined: &[(u8, u64)] = &[
            (0b0010, 20_480),
            (0b0011, 40_960),
            (0b0101, 81_920),
            (0b1001, 163_840),
            (0b1010, 327_680),
            (0b1011, 655_360),
            (0b1100, 1_310_720),
            (0b1101, 2_621_440),
            (0b1110, 5_242_880),
            (0b1111, 10_485_760),
        ];
        for &(v, m) in defined {
            assert_eq!(EdrxCycle::new(EdrxAct::NbIot, v).unwrap().duration(), ms(m));
        }
        for v in [0b0000, 0b0001, 0b0100, 0b0110, 0b0111, 0b1000] {
            assert_eq!(
                EdrxCycle::new(EdrxAct::NbIot, v),
                Err(Error::InvalidArgument),
                "{v:04b}"
            );
            // From the network: read as 0010.
            assert_eq!(EdrxCycle::from_network(EdrxAct::NbIot, v).value(), 0b0010);
        }
        // The shortest NB-IoT cycle is 20.48 s, LTE-M's 5.12 s.
        assert_eq!(
            EdrxCycle::at_least(EdrxAct::NbIot, ms(1))
                .unwrap()
                .duration(),
            ms(20_480)
        );
        assert_eq!(
            EdrxCycle::at_least(EdrxAct::LteM, ms(1))
                .unwrap()
                .duration(),
            ms(5_120)
        );
        // Boundaries: exact values stay, one millisecond more rounds up to the next row.
        assert_eq!(
            EdrxCycle::at_least(EdrxAct::LteM, ms(20_480))
                .unwrap()
                .value(),
            0b0010
        );
        assert_eq!(
            EdrxCycle::at_least(EdrxAct::LteM, ms(20_481))
                .unwrap()
                .value(),
            0b0011
        );
        // 81.92 s + 1 ms on NB-IoT skips the undefined 0110-1000 to 163.84 s.
        assert_eq!(
            EdrxCycle::at_least(EdrxAct::NbIot, ms(81_921))
                .unwrap()
                .value(),
            0b1001
        );
        assert!(EdrxCycle::at_least(EdrxAct::NbIot, ms(10_485_760)).is_some());
        assert!(EdrxCycle::at_least(EdrxAct::NbIot, ms(10_485_761)).is_none());
    }

    #[test]
    fn paging_window_tables() {
        let w = |a, v| PagingWindow::new(a, v).unwrap().duration();
        assert_eq!(w(EdrxAct::LteM, 0), ms(1_280));
        assert_eq!(w(EdrxAct::LteM, 1), ms(2_560));
        assert_eq!(w(EdrxAct::LteM, 15), ms(20_480));
        assert_eq!(w(EdrxAct::NbIot, 0), ms(2_560));
        assert_eq!(w(EdrxAct::NbIot, 15), ms(40_960));
        assert_eq!(
            PagingWindow::new(EdrxAct::LteM, 16),
            Err(Error::InvalidArgument)
        );
        let at = |a, m| PagingWindow::at_least(a, ms(m)).map(PagingWindow::value);
        assert_eq!(at(EdrxAct::LteM, 1_280), Some(0));
        assert_eq!(at(EdrxAct::LteM, 1_281), Some(1));
        assert_eq!(at(EdrxAct::LteM, 20_481), None);
        assert_eq!(at(EdrxAct::NbIot, 20_481), Some(8));
        assert_eq!(at(EdrxAct::NbIot, 40_961), None);
    }

    #[test]
    fn edrx_read_lists_one_request_per_radio() {
        let c = |a, v| EdrxCycle::new(a, v).unwrap();
        let both: EdrxRequests =
            heapless::Vec::from_slice(&[c(EdrxAct::LteM, 5), c(EdrxAct::NbIot, 9)]).unwrap();
        let lte: EdrxRequests = heapless::Vec::from_slice(&[c(EdrxAct::LteM, 2)]).unwrap();
        let rows: &[Row<EdrxRequests>] = &[
            (
                b"\r\n+CEDRXS: 4,\"0101\"\r\n+CEDRXS: 5,\"1001\"\r\n\r\nOK\r\n",
                Ok(both),
            ),
            // A GSM line is skipped.
            (
                b"\r\n+CEDRXS: 2,\"0001\"\r\n+CEDRXS: 4,\"0010\"\r\n\r\nOK\r\n",
                Ok(lte),
            ),
            (b"\r\nOK\r\n", Ok(EdrxRequests::new())),
            (b"\r\n+CEDRXS: 4,\"01012\"\r\n\r\nOK\r\n", Err(Error::Parse)),
        ];
        table(&GetEdrx, rows);
        assert_eq!(wrote(&GetEdrx).unwrap(), b"AT+CEDRXS?");
        let cmd = SetEdrxReporting {
            cycle: c(EdrxAct::NbIot, 0b1001),
        };
        assert_eq!(wrote(&cmd).unwrap(), b"AT+CEDRXS=2,5,\"1001\"");
    }

    #[test]
    fn paging_window_read() {
        let rows: &[Row<Option<EdrxWindowRequest>>] = &[
            (
                b"\r\n+QPTWEDRXS: 5,\"0011\",\"1001\"\r\n\r\nOK\r\n",
                Ok(Some(EdrxWindowRequest {
                    paging_window: PagingWindow::new(EdrxAct::NbIot, 3).unwrap(),
                    cycle: EdrxCycle::new(EdrxAct::NbIot, 9).unwrap(),
                })),
            ),
            (b"\r\nOK\r\n", Ok(None)),
            (
                b"\r\n+QPTWEDRXS: 4,\"0011\",\"10x1\"\r\n\r\nOK\r\n",
                Err(Error::Parse),
            ),
        ];
        table(&GetEdrxWithWindow, rows);
        assert_eq!(wrote(&GetEdrxWithWindow).unwrap(), b"AT+QPTWEDRXS?");
    }
}
