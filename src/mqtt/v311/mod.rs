//! MQTT 3.1.1 client: the crate's own codec and session (feature `mqtt311`).
//!
//! Work in progress: see issue 13. The API mirrors the minimq session used for MQTT 5 so that
//! [`Mqtt`](super::Mqtt) drives either version with one user API.
