#![no_std]
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[macro_use]
mod fmt;

pub mod asynch;
pub mod at;
pub mod blocking;
#[cfg(any(feature = "aws", feature = "aliyun"))]
pub mod cloud;
pub mod command;
mod error;
pub mod model;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(any(feature = "mcu-tls", feature = "aws"))]
mod pem;
pub mod socket;
pub mod state;
#[cfg(feature = "mcu-tls")]
pub mod tls;
mod util;

pub use error::{CmeError, Error};

// The guides in docs/ (English and Chinese): their Rust code blocks are doctests.
#[cfg(doctest)]
mod doc_guides;

#[doc(hidden)]
#[path = "fuzz_api.rs"]
pub mod __fuzz;
