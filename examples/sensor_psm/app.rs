//! The sensor application of `examples/sensor_psm` (also run by `tests/power_day.rs`): wake,
//! publish one QoS 1 reading (plus any earlier one not yet delivered), take any downlink,
//! sleep in PSM.
//!
//! One wake is [`Sensor::wake`]; the 15-minute sleep between two wakes is the caller's (on a
//! board: `embassy_time::Timer::after` with the MCU in its low-power mode; over the mock modem:
//! `ModemHandle::advance`, which skips the time at once in the modem's virtual clock — the one
//! place where time is skipped). The driver does the PSM part: the modem enters PSM by itself
//! after the active time; the next `Mqtt::connect` wakes it through PWRKEY, re-applies what it
//! forgot and resumes the MQTT session (clean start off, session expiry longer than the sleep),
//! so the broker keeps the subscription and any QoS 1 downlink sent while the device slept.

#![allow(dead_code)]

use std::collections::VecDeque;

use embassy_time::{Duration, with_timeout};
use quectel::asynch::Modem;
use quectel::mqtt::{Mqtt, MqttError, QoS};

/// Time between two readings.
pub const PERIOD: Duration = Duration::from_secs(15 * 60);
/// Requested periodic TAU: longer than the period (the application wakes the modem itself).
pub const PERIODIC_TAU: Duration = Duration::from_secs(3 * 3600);
/// Requested active time: short, the application waits for its downlinks itself.
pub const ACTIVE_TIME: Duration = Duration::from_secs(10);
/// The MQTT session must outlive the sleep: 1 h covers a 15-minute period with margin, and a
/// missed wake or two.
pub const SESSION_EXPIRY_S: u32 = 3600;
/// How long a wake waits for a downlink after its readings are acknowledged.
pub const DOWNLINK_WAIT: Duration = Duration::from_millis(50);

/// What one wake did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WakeOutcome {
    /// Readings the broker acknowledged in this wake (sequence numbers).
    pub delivered: Vec<u32>,
    /// Downlinks received.
    pub downlinks: Vec<Vec<u8>>,
    /// The broker resumed the session (no re-subscription was needed).
    pub resumed: bool,
    /// The connection failed (the readings stay queued for the next wake).
    pub error: Option<MqttError>,
}

/// The application state kept across sleeps (in RAM that PSM does not touch: it is the
/// MCU's, not the modem's).
#[derive(Debug, Default)]
pub struct Sensor {
    next: u32,
    /// Readings taken and not yet handed to an MQTT session.
    queued: VecDeque<u32>,
}

impl Sensor {
    /// Readings taken so far.
    pub fn taken(&self) -> u32 {
        self.next
    }

    /// Readings waiting for a connection.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// The payload of reading `seq` (a made-up temperature).
    pub fn payload(seq: u32) -> String {
        format!("{{\"seq\":{seq},\"t\":{}}}", 20 + seq % 7)
    }

    /// One wake: take a reading, connect (the driver wakes the modem from PSM and resumes),
    /// publish every queued reading at QoS 1 and wait for the acknowledgements, take the
    /// downlinks that come, and return. The modem goes back to PSM by itself after the
    /// active time.
    pub async fn wake<'c: 'b, 'b>(
        &mut self,
        modem: &Modem<'_>,
        mqtt: &mut Mqtt<'c, 'b>,
        topic: &str,
    ) -> WakeOutcome {
        self.queued.push_back(self.next);
        self.next += 1;
        let mut out = WakeOutcome::default();
        let mut conn = match mqtt.connect(modem).await {
            Ok(c) => c,
            Err(e) => {
                out.error = Some(e);
                return out;
            }
        };
        out.resumed = conn.resumed_session();
        while let Some(&seq) = self.queued.front() {
            // Once `publish` took it, the session owns the message: it is resent after a
            // broken link if the broker kept the session, so it is not queued here again.
            match conn
                .publish(topic, Self::payload(seq).as_bytes(), QoS::AtLeastOnce)
                .await
            {
                Ok(()) => {
                    self.queued.pop_front();
                    out.delivered.push(seq);
                }
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
        }
        while !conn.all_acknowledged() {
            match with_timeout(Duration::from_secs(10), conn.poll()).await {
                Ok(Ok(Some(m))) => out.downlinks.push(m.payload().to_vec()),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    out.error = Some(e);
                    return out;
                }
                Err(_) => {
                    out.error = Some(MqttError::AckTimeout);
                    return out;
                }
            }
        }
        // Downlinks queued by the broker while the device slept arrive right after CONNACK.
        while let Ok(r) = with_timeout(DOWNLINK_WAIT, conn.poll()).await {
            match r {
                Ok(Some(m)) => out.downlinks.push(m.payload().to_vec()),
                Ok(None) => {}
                Err(e) => {
                    out.error = Some(e);
                    break;
                }
            }
        }
        out
    }
}
