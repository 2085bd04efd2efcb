#![no_std]
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[macro_use]
mod fmt;

pub mod at;
pub mod command;
mod error;

pub use error::{CmeError, Error};
