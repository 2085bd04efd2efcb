//! The blocking facade against the mock modem: same handles, no executor, no threads.

use std::time::Duration as StdDuration;

use embassy_time::Duration;
use quectel::asynch::{Apn, Config, NotReady, Resources, SimStatus};
use quectel::at::urc::RegStatus;
use quectel::blocking;
use quectel::model::Model;
use quectel_mock::{MockModem, Model as MockModel, SimState, reg};

fn modem(mock: MockModem) -> (blocking::Modem<'static>, quectel_mock::ModemHandle) {
    let (rx, tx, h) = mock.search_time(StdDuration::from_millis(50)).spawn();
    let res: &'static mut Resources = Box::leak(Box::new(Resources::new()));
    (
        blocking::new(
            res,
            Box::leak(Box::new(quectel::blocking::Halves::new(rx, tx))),
            Config::default(),
        ),
        h,
    )
}

#[test]
fn blocking_customer_flow() {
    let (mut m, _h) = modem(MockModem::new(MockModel::Ec600n).pin(Some("1234")));
    let id = m.init().unwrap();
    assert_eq!(id.model, Model::Ec600n);
    assert_eq!(m.sim().status().unwrap(), SimStatus::PinRequired);
    m.sim().unlock("1234").unwrap();
    assert_eq!(m.sim().status().unwrap(), SimStatus::Ready);
    assert!(!m.sim().iccid().unwrap().is_empty());
    m.data_call().configure(1, &Apn::new("cmnet")).unwrap();
    m.network()
        .wait_network_ready(1, Duration::from_secs(10))
        .unwrap();
    assert!(m.network().registration().unwrap().is_registered());
    let info = m.data_call().info(1).unwrap();
    assert!(info.active);
    assert!(info.ipv4.is_some());
    m.data_call().deactivate(1).unwrap();
    assert!(!m.data_call().info(1).unwrap().active);
}

#[test]
fn blocking_wait_network_ready_stages() {
    let (mut m, _h) = modem(MockModem::new(MockModel::Bg96).sim(SimState::NotInserted));
    m.init().unwrap();
    assert_eq!(
        m.network().wait_network_ready(1, Duration::from_secs(3)),
        Err(NotReady::Sim(SimStatus::NotInserted))
    );
    let (mut m, _h) = modem(MockModem::new(MockModel::Bg96).registration(reg::DENIED));
    m.init().unwrap();
    assert_eq!(
        m.network().wait_network_ready(1, Duration::from_secs(3)),
        Err(NotReady::Registration(RegStatus::Denied))
    );
}

#[test]
fn blocking_state_follows_urcs() {
    let (mut m, h) = modem(MockModem::new(MockModel::Bg96));
    m.init().unwrap();
    m.network().wait_registered(Duration::from_secs(5)).unwrap();
    h.inject_urc("+QIURC: \"pdpdeact\",1");
    let deadline = std::time::Instant::now() + StdDuration::from_secs(2);
    while m.state().pdp_deact_events == 0 {
        assert!(std::time::Instant::now() < deadline, "URC not seen");
        std::thread::sleep(StdDuration::from_millis(10));
    }
}
