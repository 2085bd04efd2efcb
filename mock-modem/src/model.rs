//! Per-model identity and behaviour differences.

use std::fmt;
use std::str::FromStr;

/// The module being simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// BG96 (LTE Cat-M1/NB1).
    Bg96,
    /// BG95-M3.
    Bg95,
    /// BG77.
    Bg77,
    /// EC21 (LTE Cat 1).
    Ec21,
    /// EC25 (LTE Cat 4).
    Ec25,
    /// EG91 (LTE Cat 1).
    Eg91,
    /// EC600N (LTE Cat 1, LTE Standard family).
    Ec600n,
}

/// Families that share behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Bg96,
    Bg9x,
    Ec2x,
}

impl Model {
    /// All models, for iteration in tests.
    pub const ALL: [Model; 7] = [
        Model::Bg96,
        Model::Bg95,
        Model::Bg77,
        Model::Ec21,
        Model::Ec25,
        Model::Eg91,
        Model::Ec600n,
    ];

    pub(crate) fn family(self) -> Family {
        match self {
            Model::Bg96 => Family::Bg96,
            Model::Bg95 | Model::Bg77 => Family::Bg9x,
            Model::Ec21 | Model::Ec25 | Model::Eg91 | Model::Ec600n => Family::Ec2x,
        }
    }

    /// Second line of `ATI` (object id), also `AT+CGMM`.
    pub fn ati_name(self) -> &'static str {
        match self {
            Model::Bg96 => "BG96",
            Model::Bg95 => "BG95-M3",
            Model::Bg77 => "BG77",
            Model::Ec21 => "EC21",
            Model::Ec25 => "EC25",
            Model::Eg91 => "EG91",
            Model::Ec600n => "EC600N",
        }
    }

    /// Firmware revision (`AT+CGMR`, `ATI` third line after `Revision: `).
    pub fn revision(self) -> &'static str {
        match self {
            Model::Bg96 => "BG96MAR02A07M1G",
            Model::Bg95 => "BG95M3LAR02A03",
            Model::Bg77 => "BG77LAR02A04",
            Model::Ec21 => "EC21EFAR06A06M4G",
            Model::Ec25 => "EC25EFAR06A06M4G",
            Model::Eg91 => "EG91EXGAR08A05M1G",
            Model::Ec600n => "EC600NCNLAR03A06M08",
        }
    }

    /// `AT+QGMR` output (revision plus sub-version suffix).
    pub fn qgmr(self) -> String {
        format!("{}_01.204.01.204", self.revision())
    }

    /// `<AcT>` of `+CREG`/`+CGREG`/`+CEREG`/`+COPS` when registered.
    pub fn act(self) -> u8 {
        match self.family() {
            Family::Bg96 | Family::Bg9x => 8,
            Family::Ec2x => 7,
        }
    }

    /// `<sysmode>` of `+QCSQ` when registered.
    pub fn qcsq_mode(self) -> &'static str {
        match self.family() {
            Family::Bg96 => "CAT-M1",
            Family::Bg9x => "eMTC",
            Family::Ec2x => "LTE",
        }
    }

    /// `<AcT>` of `+QNWINFO` when registered.
    pub fn qnwinfo_act(self) -> &'static str {
        match self.family() {
            Family::Bg96 => "CAT-M1",
            Family::Bg9x => "eMTC",
            Family::Ec2x => "FDD LTE",
        }
    }

    /// `+QNWINFO` when not registered.
    pub fn qnwinfo_no_service(self) -> &'static str {
        match self.family() {
            Family::Bg9x => "+QNWINFO: \"No Service\"",
            _ => "+QNWINFO: \"NONE\"",
        }
    }

    /// Highest valid PDP context id (contexts are 1..=max).
    pub fn max_cid(self) -> u8 {
        match self {
            Model::Ec600n => 7,
            _ => 16,
        }
    }

    /// Boot URCs up to (not including) the SIM status.
    pub fn boot_prefix(self) -> &'static [&'static str] {
        match self.family() {
            Family::Bg96 => &["RDY", "+CFUN: 1", "APP RDY"],
            Family::Bg9x => &["RDY", "APP RDY", "+CFUN: 1"],
            Family::Ec2x => &["RDY", "+CFUN: 1"],
        }
    }

    /// URCs emitted when the SIM becomes ready (starting with `+CPIN: READY`).
    pub fn sim_ready_urcs(self) -> &'static [&'static str] {
        match self.family() {
            Family::Bg96 => &["+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE"],
            Family::Bg9x => &["+CPIN: READY", "+QIND: SMS DONE"],
            Family::Ec2x => &[
                "+CPIN: READY",
                "+QUSIM: 1",
                "+QIND: PB DONE",
                "+QIND: SMS DONE",
            ],
        }
    }

    /// Whether file names need the `UFS:` drive prefix (EC21/EC25/EG91/EC600N)
    /// rather than bare names (BG96/BG95/BG77).
    pub fn ufs_prefix(self) -> bool {
        self.family() == Family::Ec2x
    }

    /// Default of `AT+QSSLCFG="sni"`: 0 on the LTE-Standard EC600N (as seen
    /// on EG800K), 1 elsewhere.
    pub fn default_sni(self) -> u8 {
        u8::from(self != Model::Ec600n)
    }

    /// `+QINISTAT` value once everything is ready.
    pub(crate) fn inistat_ready(self) -> u8 {
        match self.family() {
            Family::Ec2x => 7,
            _ => 3,
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ati_name())
    }
}

impl FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "bg96" => Model::Bg96,
            "bg95" | "bg95-m3" | "bg95m3" => Model::Bg95,
            "bg77" => Model::Bg77,
            "ec21" => Model::Ec21,
            "ec25" => Model::Ec25,
            "eg91" => Model::Eg91,
            "ec600n" => Model::Ec600n,
            other => return Err(format!("unknown model {other:?}")),
        })
    }
}

/// Verbose `+CME ERROR` text for `AT+CMEE=2`.
pub fn cme_text(code: u16) -> &'static str {
    match code {
        0 => "phone failure",
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        15 => "SIM wrong",
        16 => "incorrect password",
        17 => "SIM PIN2 required",
        18 => "SIM PUK2 required",
        30 => "no network service",
        31 => "network timeout",
        50 => "incorrect parameters",
        400 => "invalid input value",
        401 => "larger than the size of the file",
        402 => "read zero byte",
        403 => "drive full",
        405 => "file not found",
        406 => "invalid file name",
        407 => "file already existed",
        409 => "fail to write the file",
        421 => "time out",
        423 => "file too large",
        425 => "invalid parameter",
        _ => "unknown",
    }
}

/// Description text of `+QIGETERROR` for a TCP/IP error code.
pub fn ip_error_text(code: u16) -> &'static str {
    match code {
        0 => "operate successfully",
        550 => "unknown error",
        551 => "operation blocked",
        552 => "invalid parameters",
        553 => "memory not enough",
        554 => "create socket failed",
        555 => "operation not supported",
        556 => "socket bind failed",
        557 => "socket listen failed",
        558 => "socket write failed",
        559 => "socket read failed",
        560 => "socket accept failed",
        561 => "open pdp context failed",
        562 => "close pdp context failed",
        563 => "socket identity has been used",
        564 => "dns busy",
        565 => "dns parse failed",
        566 => "socket connect failed",
        567 => "socket has been closed",
        568 => "operation busy",
        569 => "operation timeout",
        570 => "pdp context broken down",
        571 => "cancel send",
        572 => "operation not allowed",
        573 => "apn not configured",
        574 => "port busy",
        _ => "unknown error",
    }
}
