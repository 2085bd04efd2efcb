//! The first half of the customer's QuecPython session, against the mock modem:
//! SIM status, IMEI, ICCID, registration, signal and data-call info.
//!
//! ```text
//! cargo run --example network_info              # a BG96
//! cargo run --example network_info -- ec600n    # or bg95, bg77, ec21, ec25, eg91
//! ```

use std::time::Duration as StdDuration;

use embassy_futures::select::{Either, select};
use embassy_time::Duration;
use quectel::asynch::{self, Apn, Config, Resources};
use quectel_mock::{MockModem, Model as MockModel};

fn mock_model(name: &str) -> Option<MockModel> {
    Some(match name.to_ascii_lowercase().as_str() {
        "bg96" => MockModel::Bg96,
        "bg95" => MockModel::Bg95,
        "bg77" => MockModel::Bg77,
        "ec21" => MockModel::Ec21,
        "ec25" => MockModel::Ec25,
        "eg91" => MockModel::Eg91,
        "ec600n" => MockModel::Ec600n,
        _ => return None,
    })
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "bg96".into());
    let Some(model) = mock_model(&name) else {
        eprintln!("unknown model {name}; use bg96, bg95, bg77, ec21, ec25, eg91 or ec600n");
        std::process::exit(2);
    };
    // A simulated modem behind an in-memory UART. Registration takes a moment, as on air.
    let (rx, tx, _modem) = MockModem::new(model)
        .search_time(StdDuration::from_millis(300))
        .spawn();
    let resources: &'static mut Resources = Box::leak(Box::new(Resources::new()));
    let (runner, modem) = asynch::new(resources, rx, tx, Config::default());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let app = async {
        let id = modem.init().await?;
        println!("modem: Quectel {} ({})", id.model_name, id.revision);

        let sim = modem.sim().status().await?;
        println!(
            ">>> sim.getStatus()\n{}    # {:?}",
            sim.quecpython_code(),
            sim
        );
        println!(">>> modem.getDevImei()\n'{}'", id.imei);
        println!(">>> sim.getIccid()\n'{}'", modem.sim().iccid().await?);

        modem
            .data_call()
            .configure(1, &Apn::new("internet"))
            .await?;
        println!(">>> checkNet.waitNetworkReady(30)");
        match modem
            .network()
            .wait_network_ready(1, Duration::from_secs(30))
            .await
        {
            Ok(()) => println!("(3, 1)    # network ready"),
            Err(e) => println!("({}, 0)    # {:?}", e.stage(), e),
        }
        let reg = modem.network().registration().await?;
        println!(">>> net.getState()\nregistration: {reg:?}");
        let signal = modem.network().signal().await?;
        println!(
            ">>> net.csqQueryPoll()\n{}    # {} dBm",
            signal.rssi,
            signal
                .rssi_dbm()
                .map(|d| d.to_string())
                .unwrap_or_else(|| "unknown".into())
        );
        let info = modem.data_call().info(1).await?;
        println!(">>> dataCall.getInfo(1, 0)");
        println!(
            "[{}, 0, [{}, 0, '{}', '{}', '{}']]",
            info.cid,
            u8::from(info.active),
            info.ipv4.as_deref().unwrap_or("0.0.0.0"),
            info.dns_primary.as_deref().unwrap_or("0.0.0.0"),
            info.dns_secondary.as_deref().unwrap_or("0.0.0.0"),
        );
        Ok::<(), quectel::Error>(())
    };
    let result = rt.block_on(async {
        match select(runner.run(), app).await {
            Either::First(never) => never,
            Either::Second(r) => r,
        }
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
