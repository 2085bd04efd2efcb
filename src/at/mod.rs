//! The sans-IO AT protocol layer: digester, line classification, responses and URCs.

pub mod digester;
pub mod expect;
pub mod feed;
pub mod line;
pub mod parse;
pub mod response;
pub mod urc;

pub use digester::Digester;
pub use expect::{DigestStats, Expect, ExpectCell, Info, Payload};
pub use line::Final;
pub use response::Response;
pub use urc::Urc;

#[cfg(test)]
mod digester_tests;
