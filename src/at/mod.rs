//! The sans-IO AT protocol layer: digester, line classification, responses and URCs.

pub(crate) mod digester;
pub(crate) mod expect;
pub(crate) mod feed;
pub(crate) mod line;
pub(crate) mod response;
pub mod urc;

pub(crate) use digester::Digester;
pub(crate) use expect::ExpectCell;
pub use expect::{DigestStats, Expect, Info, Payload};
pub use line::Final;
pub use response::Response;
pub use urc::Urc;

#[cfg(test)]
mod digester_tests;
