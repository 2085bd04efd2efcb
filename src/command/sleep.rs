//! UART sleep, `AT+QSCLK` (BG96 AT manual §11.5, BG95/BG77 AT manual §9.5): with `1` the
//! module may sleep while DTR is high and its UART idle, and takes no UART input then. BG95/BG77
//! also have `2` (a deeper sleep level, same control); this driver uses `1`.

use super::{CmdWriter, Command};
use crate::Error;
use crate::at::expect::Expect;
use crate::at::parse::{all, uint};
use crate::at::response::Response;

/// `AT+QSCLK=<0|1>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetUartSleep {
    /// `true`: `1` (sleep allowed); `false`: `0`.
    pub enable: bool,
}

impl Command for SetUartSleep {
    type Response = ();
    const EXPECT: Expect = Expect::NONE;
    const TIMEOUT_MS: u32 = 300;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str(if self.enable {
            "AT+QSCLK=1"
        } else {
            "AT+QSCLK=0"
        })
    }
    fn parse(&self, _: &Response<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `AT+QSCLK?` → `+QSCLK: <n>`: the sleep setting (0 off, 1 or 2 on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetUartSleep;

impl Command for GetUartSleep {
    type Response = u8;
    const EXPECT: Expect = Expect::prefixed(b"+QSCLK:");
    const TIMEOUT_MS: u32 = 300;
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error> {
        w.str("AT+QSCLK?")
    }
    fn parse(&self, resp: &Response<'_>) -> Result<u8, Error> {
        match all(uint, resp.first()?)? {
            n @ 0..=2 => Ok(n as u8),
            _ => Err(Error::Parse),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::testing::{Row, table, wrote};

    #[test]
    fn qsclk() {
        assert_eq!(
            wrote(&SetUartSleep { enable: true }).unwrap(),
            b"AT+QSCLK=1"
        );
        assert_eq!(
            wrote(&SetUartSleep { enable: false }).unwrap(),
            b"AT+QSCLK=0"
        );
        let rows: &[Row<u8>] = &[
            (b"\r\n+QSCLK: 1\r\n\r\nOK\r\n", Ok(1)),
            (b"\r\n+QSCLK: 0\r\n\r\nOK\r\n", Ok(0)),
            (b"\r\n+QSCLK: 7\r\n\r\nOK\r\n", Err(Error::Parse)),
        ];
        table(&GetUartSleep, rows);
    }
}
