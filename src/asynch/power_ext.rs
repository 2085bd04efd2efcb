//! The power handle's UART sleep (`AT+QSCLK`) and eDRX read-backs (typed cycles and windows).

use core::sync::atomic::Ordering;

use super::Power;
use crate::Error;
use crate::command::edrx::{
    EdrxCycle, EdrxParams, EdrxRequests, EdrxWindowRequest, GetEdrx, GetEdrxWithWindow,
    SetEdrxReporting,
};
use crate::command::power::GetEdrxGrant;
use crate::command::sleep::{GetUartSleep, SetUartSleep};

impl Power<'_> {
    async fn supports(
        &self,
        has: impl Fn(&crate::model::PowerSupport) -> bool,
    ) -> Result<(), Error> {
        if has(&self.modem.params().await.power) {
            Ok(())
        } else {
            Err(Error::Unsupported)
        }
    }

    /// Lets the module sleep while the UART is idle (`AT+QSCLK=1`), or not (`AT+QSCLK=0`).
    /// [`Error::Unsupported`] on a model without it; [`Error::InvalidState`] when enabling
    /// without DTR given to the runner ([`Runner::with_uart_sleep`](super::Runner::with_uart_sleep)):
    /// the module would sleep with DTR open and lose the next command. Nothing is sent then.
    pub async fn set_uart_sleep(&self, enable: bool) -> Result<(), Error> {
        self.supports(|p| p.uart_sleep).await?;
        if enable && !self.modem.core.sleep.load(Ordering::Relaxed) {
            return Err(Error::InvalidState);
        }
        self.modem.send(&SetUartSleep { enable }).await
    }

    /// The module's UART sleep setting (`AT+QSCLK?`: 0 off, 1 or 2 on).
    pub async fn uart_sleep(&self) -> Result<u8, Error> {
        self.supports(|p| p.uart_sleep).await?;
        self.modem.send(&GetUartSleep).await
    }

    /// The eDRX cycles the module requests, per radio (`AT+CEDRXS?`).
    pub async fn edrx_requests(&self) -> Result<EdrxRequests, Error> {
        self.supports(|p| p.edrx).await?;
        self.modem.send(&GetEdrx).await
    }

    /// Asks for eDRX with `cycle` and turns on the `+CEDRXP` report of the network's eDRX
    /// parameters (`AT+CEDRXS=2,…`); the last report is [`Power::edrx_reported`].
    pub async fn set_edrx_reporting(&self, cycle: EdrxCycle) -> Result<(), Error> {
        self.supports(|p| p.edrx).await?;
        self.modem.send(&SetEdrxReporting { cycle }).await
    }

    /// What the network granted in this cell (`AT+CEDRXRDP`), typed: the requested and the
    /// granted cycle and the paging time window. `None` when eDRX is not used in the cell.
    pub async fn edrx_params(&self) -> Result<Option<EdrxParams>, Error> {
        self.supports(|p| p.edrx).await?;
        let g = self.modem.send(&GetEdrxGrant).await?;
        Ok(EdrxParams::from_grant(&g))
    }

    /// The paging time window and cycle requested with `AT+QPTWEDRXS` (read back,
    /// `AT+QPTWEDRXS?`; BG95/BG77).
    pub async fn edrx_window_request(&self) -> Result<Option<EdrxWindowRequest>, Error> {
        self.supports(|p| p.paging_window).await?;
        self.modem.send(&GetEdrxWithWindow).await
    }

    /// The last `+CEDRXP` report (after [`Power::set_edrx_reporting`]), typed; `None` before
    /// any, or when it said eDRX is not used.
    pub fn edrx_reported(&self) -> Option<EdrxParams> {
        self.modem
            .state()
            .edrx
            .and_then(|t| t.edrx())
            .as_ref()
            .and_then(EdrxParams::from_report)
    }
}
