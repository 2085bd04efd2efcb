//! The sans-IO AT protocol layer: digester, line classification, responses and URCs.
//!
//! Low level. Public here is what a `Command` implementation (module `command`) sees
//! ([`Response`], [`Expect`], [`Final`], [`Info`], [`Payload`]), the digester's counters
//! ([`DigestStats`], from `modem.stats()`) and the typed URCs ([`urc`]) that the driver's
//! `State` is made of. The digester itself is internal.

pub(crate) mod digester;
pub(crate) mod expect;
pub(crate) mod feed;
pub(crate) mod line;
pub(crate) mod parse;
pub(crate) mod response;
pub mod urc;
mod urc_ext;

pub(crate) use digester::Digester;
pub use expect::{DigestStats, Expect, Info, Payload};
pub(crate) use expect::{ExpectCell, UrcSink};
pub use line::Final;
pub use response::Response;
pub use urc::Urc;

#[cfg(test)]
mod digester_tests;

/// The randomised tests' byte source (xorshift32: deterministic, no dependency): advances
/// `x` and returns it.
#[cfg(test)]
pub(crate) fn xorshift32(x: &mut u32) -> u32 {
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    *x
}

#[cfg(test)]
extern crate std;

/// `per_len` random lines of each length below `max_len`, of bytes drawn from `alphabet`
/// (seeded: the same lines every run), for the randomised tests that check a hand-written
/// reader against its reference.
#[cfg(test)]
pub(crate) fn random_lines(
    seed: u32,
    max_len: usize,
    per_len: usize,
    alphabet: &[u8],
) -> impl Iterator<Item = std::vec::Vec<u8>> + '_ {
    let mut x = seed;
    (0..max_len)
        .flat_map(move |len| core::iter::repeat_n(len, per_len))
        .map(move |len| {
            (0..len)
                .map(|_| alphabet[xorshift32(&mut x) as usize % alphabet.len()])
                .collect()
        })
}
