#![no_std]
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![warn(missing_debug_implementations)]
// The no-panic contract (docs/architecture.md, "No-panic contract"): outside tests, the crate
// does not unwrap, index, slice or do unchecked arithmetic; an input that does not fit is a typed
// error. `cargo clippy ... -D warnings` in `.ci/run` enforces it.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

#[macro_use]
mod fmt;

pub mod asynch;
pub mod at;
pub mod blocking;
#[cfg(any(feature = "aws", feature = "aliyun"))]
pub mod cloud;
pub mod command;
mod debug_impls;
mod error;
pub mod model;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "ota")]
pub mod ota;
pub mod pem;
pub mod socket;
pub mod state;
#[cfg(all(test, any(feature = "mqtt", feature = "mcu-tls")))]
mod test_util;
#[cfg(feature = "mcu-tls")]
pub mod tls;
mod util;

pub use error::{CmeError, Error};

// Foreign crates and types that appear in the public API, at the versions this crate uses.
/// Timeouts and intervals.
pub use embassy_time::Duration;
/// The blocking UART traits (`Read`, `ReadReady`, `Write`) the [`blocking`] facade takes.
pub use embedded_io;
/// The async UART and stream traits (`Read`, `Write`) the [`asynch`] handles and sockets use.
pub use embedded_io_async;
/// Bounded strings and vectors (`heapless::String<N>`, `heapless::Vec<T, N>`) returned by the
/// handles.
pub use heapless;
/// The random-number trait (`rand_core::CryptoRngCore`, rand_core 0.6) that MCU TLS and the AWS
/// key generation take.
#[cfg(any(feature = "mcu-tls", feature = "aws"))]
pub use rand_core;

// The guides in docs/ (English and Chinese): their Rust code blocks are doctests.
#[cfg(doctest)]
mod doc_guides;

#[doc(hidden)]
#[path = "fuzz_api.rs"]
pub mod __fuzz;
