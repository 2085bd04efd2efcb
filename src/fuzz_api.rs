//! Entry points for the cargo-fuzz targets in `fuzz/` (not part of the public API).

use crate::at::expect::{Expect, ExpectCell};
use crate::at::feed::{Event, Feeder};
use crate::command::{self, Command};

const EXPECTS: [Expect; 6] = [
    Expect::NONE,
    Expect::BARE,
    Expect::PROMPT,
    Expect::prefixed(b"+CSQ:"),
    Expect::prefixed(b"+CEREG:"),
    Expect::payload(b"+QIRD:"),
];

/// Feeds arbitrary bytes through the digester in arbitrary chunks with an arbitrary command in
/// flight. The first byte picks the command, the second the chunk size. Panics only if the
/// digester breaks its contract (stalls on a full buffer or hands out bytes it was not given).
pub fn digest_bytes(data: &[u8]) {
    let (sel, rest) = match data {
        [a, b, rest @ ..] => ((*a, *b), rest),
        _ => return,
    };
    let shared = ExpectCell::new();
    let expect = EXPECTS[usize::from(sel.0) % EXPECTS.len()];
    shared.begin(expect);
    let mut feeder = Feeder::<'_, 512>::new(&shared);
    let chunk = usize::from(sel.1 % 64) + 1;
    for piece in rest.chunks(chunk) {
        let fed = feeder.feed(piece, |ev| {
            // Every response body must parse as a view without panicking.
            if let Event::Response(Ok(body)) = ev {
                let r = crate::at::Response::new(body, expect);
                let _ = r.final_code();
                let _ = r.lines().count();
                let _ = r.payload();
            }
            if let Event::Urc(line) = ev {
                let _ = crate::at::Urc::parse_line(line);
            }
        });
        assert!(fed.is_ok(), "digester stalled with a full buffer");
        if expect != EXPECTS[0] && shared.current().is_none() {
            shared.begin(expect);
        }
    }
}

fn parse_as<C: Command>(cmd: &C, body: &[u8]) {
    let _ = command::complete(cmd, Ok(body));
}

/// Parses arbitrary bytes as the response of every command that takes no arguments (the first
/// byte picks which). Must never panic.
pub fn parse_responses(data: &[u8]) {
    use crate::command::{general, network, pdp, sim};
    let Some((sel, body)) = data.split_first() else {
        return;
    };
    match sel % 14 {
        0 => parse_as(&general::Identify, body),
        1 => parse_as(&general::Imei, body),
        2 => parse_as(&general::GetLastTcpipError, body),
        3 => parse_as(&sim::GetPinStatus, body),
        4 => parse_as(&sim::Iccid, body),
        5 => parse_as(&sim::Imsi, body),
        6 => parse_as(&network::GetCereg, body),
        7 => parse_as(&network::GetOperator, body),
        8 => parse_as(&network::SignalQuality, body),
        9 => parse_as(&network::ExtendedSignalQuality, body),
        10 => parse_as(&network::NetworkInfo, body),
        11 => parse_as(&pdp::GetActiveContexts, body),
        12 => parse_as(&pdp::GetPdpContexts, body),
        _ => parse_as(&general::GetFunctionality, body),
    }
    let _ = crate::at::Urc::parse_line(body);
}
