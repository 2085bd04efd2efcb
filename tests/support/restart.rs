//! The broker-restart scenario shared by `tests/mqtt.rs` (MQTT 5) and `tests/one_api.rs`
//! (MQTT 3.1.1): what a user writes (a `connect` loop serving an [`Outbox`]) while the broker
//! stops and starts again with QoS 1 messages queued and in flight. Included with `#[path]`
//! next to `mod support`.

use embassy_time::Duration;
use quectel::asynch::Modem;
use quectel::mqtt::{Mqtt, Outbox, QoS};

use crate::support::broker::{Broker, Subscriber};

/// Polls `cond` every 50 ms (without blocking the runtime) for up to `secs` seconds.
pub async fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = embassy_time::Instant::now() + Duration::from_secs(secs);
    while embassy_time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        embassy_time::Timer::after_millis(50).await;
    }
    cond()
}

/// How many of `seen` carry `payload`.
pub fn count(seen: &[(String, Vec<u8>)], payload: &str) -> usize {
    seen.iter().filter(|(_, p)| p == payload.as_bytes()).count()
}

/// Publishes `total` QoS 1 messages `{prefix}{i}` on `topic` through `outbox` while `mqtt`
/// serves it in a reconnect loop: 4 before the outage (seen by `watcher` first), 4 while the
/// broker is stopped (SIGTERM, so its persistence keeps the watcher's session), the rest after it
/// started again; waits until every one was seen, then 1.5 s more for a duplicate to show up.
/// Returns, per connection, whether the broker resumed the session.
#[allow(clippy::too_many_arguments)]
pub async fn across_broker_restart<'c: 'b, 'b>(
    modem: &Modem<'_>,
    mqtt: &mut Mqtt<'c, 'b>,
    outbox: &Outbox<16, 64>,
    broker: &Broker,
    watcher: &Subscriber,
    topic: &str,
    prefix: &str,
    total: usize,
) -> Vec<bool> {
    let mut connections = Vec::new();
    let publish = |i: usize| {
        outbox
            .try_publish(topic, format!("{prefix}{i}").as_bytes(), QoS::AtLeastOnce)
            .unwrap();
    };
    // The device: what a user writes, nothing more.
    let device_loop = async {
        loop {
            let Ok(mut conn) = mqtt.connect(modem).await else {
                continue;
            };
            connections.push(conn.resumed_session());
            eprintln!("connected, resumed: {}", conn.resumed_session());
            let why = conn.serve(outbox, |_, _| {}).await;
            eprintln!("connection ended: {why:?}");
        }
    };
    let scenario = async {
        (0..4).for_each(publish);
        assert!(
            eventually(15, || watcher.messages().len() >= 4).await,
            "before the outage: {:?}",
            watcher.messages()
        );
        // Let the PUBACKs come back: a message the broker forwarded but whose PUBACK was lost
        // in the crash is, by QoS 1's definition, delivered again.
        embassy_time::Timer::after_millis(500).await;
        // SIGTERM: the broker dies, and its persistence keeps the cloud-side watcher's session
        // so that it can count what arrives while it was away. (With SIGKILL the watcher's own
        // session is lost and nothing can be counted.)
        broker.stop();
        for i in 4..8 {
            publish(i);
            embassy_time::Timer::after_millis(200).await;
        }
        broker.start_again();
        (8..total).for_each(publish);
        assert!(
            eventually(30, || (0..total)
                .all(|i| count(&watcher.messages(), &format!("{prefix}{i}")) >= 1))
            .await,
            "after the outage: {:?}",
            watcher.messages()
        );
        // Give a duplicate the chance to show up.
        embassy_time::Timer::after(Duration::from_millis(1500)).await;
    };
    match embassy_futures::select::select(device_loop, scenario).await {
        embassy_futures::select::Either::First(never) => never,
        embassy_futures::select::Either::Second(()) => {}
    }
    connections
}
