//! A view of one command's response as the digester delivered it.
//!
//! The digester hands over everything from the first information line to the final result code,
//! inclusive. URC lines that arrived in the middle are still in those bytes (they were delivered
//! separately); this view skips them with the same classification the digester used.

use crate::Error;
use crate::at::expect::Expect;
use crate::at::line::{self, Final, LineClass};
use crate::error::trim_ascii;

/// One response: information lines, an optional binary payload, and the final result code.
#[derive(Clone, Copy)]
pub struct Response<'a> {
    body: &'a [u8],
    expect: Expect,
}

/// An item of a response body.
enum Item<'a> {
    Line(&'a [u8]),
    Payload(&'a [u8]),
}

struct Items<'a> {
    rest: &'a [u8],
    expect: Expect,
    pending_payload: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = Item<'a>;
    fn next(&mut self) -> Option<Item<'a>> {
        if self.pending_payload > 0 {
            let n = self.pending_payload.min(self.rest.len());
            let (data, rest) = self.rest.split_at(n);
            self.rest = rest;
            self.pending_payload = 0;
            return Some(Item::Payload(data));
        }
        if self.rest.is_empty() {
            return None;
        }
        let (raw, rest) = match self.rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let (raw, rest) = self.rest.split_at(i);
                (raw, rest.get(1..).unwrap_or_default())
            }
            None => (self.rest, &b""[..]),
        };
        self.rest = rest;
        let text = trim_ascii(raw);
        if let Some(n) = line::payload_len(text, &self.expect) {
            self.pending_payload = n;
        }
        Some(Item::Line(text))
    }
}

/// Shows the size and the final result code, not the text: a response can hold credentials
/// (`AT+QICSGP` reads back the APN password).
impl core::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Response")
            .field("len", &self.body.len())
            .field("final_code", &self.final_code())
            .finish_non_exhaustive()
    }
}

impl<'a> Response<'a> {
    /// Wraps a body delivered by the digester for a command that expects `expect`.
    pub fn new(body: &'a [u8], expect: Expect) -> Self {
        Self { body, expect }
    }

    fn items(&self) -> Items<'a> {
        Items {
            rest: self.body,
            expect: self.expect,
            pending_payload: 0,
        }
    }

    /// The raw bytes of the response (information lines through the final result code).
    pub fn raw(&self) -> &'a [u8] {
        self.body
    }

    /// The final result code, if the body ends with one.
    pub fn final_code(&self) -> Option<Final> {
        let mut last = None;
        for item in self.items() {
            if let Item::Line(l) = item
                && let Some(f) = line::parse_final(l)
            {
                last = Some(f);
            }
        }
        last
    }

    /// The information lines (trimmed), without blank lines, URCs, echoes, noise and the final
    /// result code.
    pub fn lines(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let expect = self.expect;
        self.items().filter_map(move |item| match item {
            Item::Line(l) => match line::classify(l, Some(&expect), true) {
                LineClass::Info => Some(l),
                _ => None,
            },
            Item::Payload(_) => None,
        })
    }

    /// The text after `prefix` (e.g. `b"+CSQ:"`) of every information line that carries it,
    /// without leading spaces.
    pub fn prefixed(&self, prefix: &'static [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.lines()
            .filter(move |l| line::has_prefix(l, prefix))
            .map(line::after_prefix)
    }

    /// The text after the command's own prefix of the first line that carries it.
    pub fn first(&self) -> Result<&'a [u8], Error> {
        self.prefixed(self.expect.prefix).next().ok_or(Error::Parse)
    }

    /// The binary payload announced by a `<prefix> <n>` header, if any (`Some(&[])` for `<n>` = 0).
    pub fn payload(&self) -> Option<&'a [u8]> {
        let mut saw_header = false;
        for item in self.items() {
            match item {
                Item::Line(l) => {
                    if line::payload_len(l, &self.expect).is_some() {
                        saw_header = true;
                        if line::payload_len(l, &self.expect) == Some(0) {
                            return Some(&[]);
                        }
                    }
                }
                Item::Payload(p) => return Some(p),
            }
        }
        if saw_header { Some(&[]) } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_skip_urcs_and_blanks() {
        let r = Response::new(
            b"+CSQ: 15,3\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK",
            Expect::prefixed(b"+CSQ:"),
        );
        let lines: heapless::Vec<&[u8], 4> = r.lines().collect();
        assert_eq!(lines.as_slice(), &[&b"+CSQ: 15,3"[..]]);
        assert_eq!(r.first().unwrap(), b"15,3");
        assert_eq!(r.final_code(), Some(Final::Ok));
    }

    #[test]
    fn payload_with_ok_inside() {
        let body = b"+QIRD: 8\r\n\r\nOK\r\n\x00\xff\r\n\r\nOK";
        let r = Response::new(body, Expect::payload(b"+QIRD:"));
        assert_eq!(r.payload().unwrap(), b"\r\nOK\r\n\x00\xff");
        assert_eq!(r.final_code(), Some(Final::Ok));
    }

    #[test]
    fn bare_lines() {
        let r = Response::new(
            b"Quectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK",
            Expect::BARE,
        );
        let lines: heapless::Vec<&[u8], 4> = r.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2], b"Revision: BG96MAR02A07M1G");
    }
}
