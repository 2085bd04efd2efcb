//! Per-model parameters, in one place.
//!
//! Figures come from Quectel's manuals as summarised in the project's AT reference (§13).

use core::ops::RangeInclusive;

/// A Quectel module family member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Model {
    /// BG96 (Cat-M1 / NB1 / EGPRS).
    Bg96,
    /// BG95 (BG95-M1/M2/M3…).
    Bg95,
    /// BG77.
    Bg77,
    /// EC21.
    Ec21,
    /// EC25.
    Ec25,
    /// EG91.
    Eg91,
    /// EC600N (LTE Cat 1; parameters taken from its documented relative EC200U).
    Ec600n,
    /// Not recognised from `ATI`: conservative BG96-like parameters.
    Unknown,
}

/// Known quirks a driver has to work around.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Quirks {
    /// The module sends `APP RDY` after `RDY` when its application core is up.
    pub app_rdy: bool,
    /// File names need the `UFS:` drive prefix.
    pub ufs_prefix: bool,
    /// Access technology strings of `AT+QCSQ`/`AT+QNWINFO` (e.g. `"CAT-M1"`, `"eMTC"`, `"FDD LTE"`).
    pub lte_act_name: &'static str,
}

/// Which power-saving features a model has (issue 12's model table). Calls for one it lacks
/// are refused with [`Error::Unsupported`](crate::Error::Unsupported) before anything is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PowerSupport {
    /// PSM, `AT+CPSMS` (the LTE-M/NB-IoT modules: BG96, BG95, BG77).
    pub psm: bool,
    /// eDRX, `AT+CEDRXS`/`AT+CEDRXRDP` (BG96, BG95, BG77).
    pub edrx: bool,
    /// eDRX with a requested paging time window, `AT+QPTWEDRXS` (BG95, BG77).
    pub paging_window: bool,
    /// UART sleep with DTR, `AT+QSCLK=1` (every supported model).
    pub uart_sleep: bool,
    /// The `+QPSMTIMER` URC switch, `AT+QCFG="psm/urc"` (BG96: BG96 AT manual §4.2; BG95/BG77:
    /// assumed from the shared BG96-family command set, not confirmed in their manuals).
    pub psm_urc: bool,
    /// Quectel's PSM entry threshold and version, `AT+QPSMCFG` (BG96, BG95, BG77; per the
    /// modules' PSM application notes, not confirmed on real firmware).
    pub psm_threshold: bool,
}

/// Parameters that differ between models.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ModelParams {
    /// Number of sockets (`<connectID>` 0..n-1).
    pub sockets: u8,
    /// Largest payload of one `AT+QISEND`.
    pub max_send: u16,
    /// Largest payload of one `AT+QIRD`.
    pub max_read: u16,
    /// Valid PDP context ids.
    pub context_ids: RangeInclusive<u8>,
    /// How long to wait for `RDY` after power-on, in milliseconds.
    pub boot_timeout_ms: u32,
    /// Maximum response time of `AT+QIACT`, in milliseconds.
    pub activate_timeout_ms: u32,
    /// Maximum time until `+QIOPEN:` arrives, in milliseconds.
    pub open_timeout_ms: u32,
    /// Known quirks.
    pub quirks: Quirks,
    /// Power-saving features.
    pub power: PowerSupport,
}

impl Model {
    /// Recognises the model from the second line of `ATI` (e.g. `BG96`, `BG95-M3`, `EC25`).
    pub fn from_ati(model_line: &str) -> Model {
        let m = model_line.trim_ascii();
        let starts = |p: &str| {
            m.as_bytes()
                .get(..p.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(p.as_bytes()))
        };
        if starts("BG96") {
            Model::Bg96
        } else if starts("BG95") {
            Model::Bg95
        } else if starts("BG77") {
            Model::Bg77
        } else if starts("EC21") {
            Model::Ec21
        } else if starts("EC25") {
            Model::Ec25
        } else if starts("EG91") {
            Model::Eg91
        } else if starts("EC600N") {
            Model::Ec600n
        } else {
            Model::Unknown
        }
    }

    /// This model's parameters.
    pub fn params(self) -> ModelParams {
        let bg = Quirks {
            app_rdy: true,
            ufs_prefix: false,
            lte_act_name: "eMTC",
        };
        let ec = Quirks {
            app_rdy: false,
            ufs_prefix: true,
            lte_act_name: "FDD LTE",
        };
        // LTE-M/NB-IoT modules have PSM and eDRX; the Cat 1/Cat 4 ones (EC2x, EG91, EC600N)
        // only UART sleep in this table (their manuals do not list AT+CPSMS for our firmware).
        let lpwa = PowerSupport {
            psm: true,
            edrx: true,
            paging_window: true,
            uart_sleep: true,
            psm_urc: true,
            psm_threshold: true,
        };
        let sleep_only = PowerSupport {
            psm: false,
            edrx: false,
            paging_window: false,
            uart_sleep: true,
            psm_urc: false,
            psm_threshold: false,
        };
        let base = ModelParams {
            sockets: 12,
            max_send: 1460,
            max_read: 1500,
            context_ids: 1..=16,
            boot_timeout_ms: 30_000,
            activate_timeout_ms: 150_000,
            open_timeout_ms: 150_000,
            quirks: bg,
            power: lpwa,
        };
        match self {
            Model::Bg96 | Model::Unknown => ModelParams {
                quirks: Quirks {
                    lte_act_name: "CAT-M1",
                    ..bg
                },
                // AT+QPTWEDRXS is a BG95/BG77 command.
                power: PowerSupport {
                    paging_window: false,
                    ..lpwa
                },
                ..base
            },
            Model::Bg95 | Model::Bg77 => base,
            Model::Ec21 | Model::Ec25 | Model::Eg91 => ModelParams {
                quirks: ec,
                power: sleep_only,
                ..base
            },
            Model::Ec600n => ModelParams {
                context_ids: 1..=7,
                quirks: ec,
                power: sleep_only,
                ..base
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(Model::from_ati("BG96"), Model::Bg96);
        assert_eq!(Model::from_ati("BG95-M3"), Model::Bg95);
        assert_eq!(Model::from_ati("BG77"), Model::Bg77);
        assert_eq!(Model::from_ati("EC25"), Model::Ec25);
        assert_eq!(Model::from_ati("EG91"), Model::Eg91);
        assert_eq!(Model::from_ati("EC21"), Model::Ec21);
        assert_eq!(Model::from_ati("EC600N"), Model::Ec600n);
        assert_eq!(Model::from_ati("SIM7000"), Model::Unknown);
        assert_eq!(Model::Ec600n.params().context_ids, 1..=7);
        assert_eq!(Model::Bg96.params().max_send, 1460);
        assert!(Model::Bg95.params().power.paging_window);
        assert!(!Model::Bg96.params().power.paging_window);
        assert!(Model::Bg96.params().power.psm);
        assert!(!Model::Ec25.params().power.psm);
        assert!(Model::Ec600n.params().power.uart_sleep);
        assert!(Model::Bg95.params().power.psm_urc);
        assert!(!Model::Eg91.params().power.psm_urc);
        assert!(!Model::Ec21.params().power.psm_threshold);
    }
}
