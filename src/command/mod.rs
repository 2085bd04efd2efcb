//! Typed AT commands, one module per chapter of the Quectel manuals.
//!
//! Every command is a value implementing [`Command`]: it writes its own command line into a
//! bounded buffer ([`CmdWriter`]) and parses its own response ([`Response`]) with `nom`. The
//! maximum response times are Quectel's (see `docs/architecture.md` for where they come from).
//!
//! This is the low-level layer under the handles: use it through `modem.send(&cmd)` for a
//! command no handle wraps, or implement [`Command`] for one the crate does not have.

use crate::Error;
use crate::at::expect::Expect;
use crate::at::response::Response;

pub mod dns;
pub mod edrx;
pub mod file;
pub mod general;
pub mod nettime;
pub mod network;
pub mod pdp;
pub mod power;
pub mod sim;
pub mod sleep;
pub mod socket;
pub mod time;

/// A typed AT command.
pub trait Command {
    /// What a successful response parses into.
    type Response;
    /// What the command answers with (information-line prefix, payload, prompt).
    const EXPECT: Expect;
    /// Maximum response time in milliseconds, from the manual.
    const TIMEOUT_MS: u32;
    /// The command line carries a secret (a PIN, a PUK, a password): the driver wipes the
    /// buffer it was written from as soon as it is on the wire.
    const SECRET: bool = false;
    /// What this particular command value expects (defaults to [`Command::EXPECT`]; a read
    /// into a socket slot adds its target).
    fn expect(&self) -> Expect {
        Self::EXPECT
    }
    /// Writes the command line, without the `\r` terminator (the channel adds it).
    fn write(&self, w: &mut CmdWriter<'_>) -> Result<(), Error>;
    /// Parses a response. The driver calls it for each information line as the line arrives
    /// (through [`Command::fold`]; `resp` then holds that one line), or, for a response without
    /// information lines, once with `resp` holding only the final result code (`OK`,
    /// `CONNECT` or `SEND OK`).
    fn parse(&self, resp: &Response<'_>) -> Result<Self::Response, Error>;
    /// Folds one information line (`line` holds just that line) into the result so far. The
    /// default keeps the first line that [`Command::parse`] accepts (and the error of the last
    /// one that it refused, if none was accepted): right for commands that answer one line,
    /// and for those whose answer is the first well-formed line among noise. Commands that
    /// answer a list of lines override it (and append).
    fn fold(&self, acc: &mut Option<Result<Self::Response, Error>>, line: &Response<'_>) {
        if !matches!(acc, Some(Ok(_))) {
            *acc = Some(self.parse(line));
        }
    }
    /// The result once the final result code `done` (a success) arrived: what the lines
    /// folded into, or, without information lines, [`Command::parse`] of the final result
    /// code alone.
    fn finish(
        &self,
        acc: Option<Result<Self::Response, Error>>,
        done: &Response<'_>,
    ) -> Result<Self::Response, Error> {
        match acc {
            Some(r) => r,
            None => self.parse(done),
        }
    }
}

/// [`Command::fold`] for commands whose answer is a list of lines: appends what `parsed` (the
/// command's [`Command::parse`] of one line) found to the list so far; the first error wins.
pub(crate) fn fold_list<T, const K: usize>(
    acc: &mut Option<Result<heapless::Vec<T, K>, Error>>,
    parsed: Result<heapless::Vec<T, K>, Error>,
) {
    match (acc.as_mut(), parsed) {
        (Some(Err(_)), _) => {}
        (_, Err(e)) => *acc = Some(Err(e)),
        (None, Ok(v)) => *acc = Some(Ok(v)),
        (Some(Ok(list)), Ok(v)) => {
            for item in v {
                if list.push(item).is_err() {
                    *acc = Some(Err(Error::Overflow));
                    return;
                }
            }
        }
    }
}

/// A field of a parameter list: quoted (the text between the quotes), bare or empty, and
/// trimmed; returns the rest and the field. Never fails: an unterminated quote is an empty
/// field with the rest starting at the quote (what nom's `alt((quoted, take_while(|b| b != b','
/// && b != b'"')))` followed by a trim gives, read by hand).
pub(crate) fn field(i: &[u8]) -> (&[u8], &[u8]) {
    let (f, rest) = match i.strip_prefix(b"\"") {
        Some(q) => match q.iter().position(|&b| b == b'"') {
            Some(end) => {
                let (f, rest) = q.split_at(end);
                (f, rest.get(1..).unwrap_or_default())
            }
            None => (&[][..], i),
        },
        None => {
            let end = i
                .iter()
                .position(|&b| b == b',' || b == b'"')
                .unwrap_or(i.len());
            i.split_at(end)
        }
    };
    (rest, crate::error::trim_ascii(f))
}

/// A hand reader over a response line's comma-separated fields, one for the command parsers
/// (what `all((uint, next(uint), opt(next(field)), …), line)` reads, without a nom parser
/// compiled per tuple).
pub(crate) struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    /// A reader at the start of `line`.
    pub(crate) fn new(line: &'a [u8]) -> Self {
        Self(line)
    }

    /// An unsigned decimal number ([`crate::at::parse::uint`]) at the reader.
    pub(crate) fn uint(&mut self) -> Result<u32, Error> {
        let (rest, v) = crate::at::parse::uint(self.0).map_err(|_| Error::Parse)?;
        self.0 = rest;
        Ok(v)
    }

    /// A separator and an unsigned decimal number.
    pub(crate) fn next_uint(&mut self) -> Result<u32, Error> {
        self.0 = crate::at::parse::after_comma(self.0).ok_or(Error::Parse)?;
        self.uint()
    }

    /// A separator and a [`field`], or `None` (nothing read) when no separator follows.
    pub(crate) fn next_field(&mut self) -> Option<&'a [u8]> {
        let (rest, f) = field(crate::at::parse::after_comma(self.0)?);
        self.0 = rest;
        Some(f)
    }

    /// Nothing but spaces and tabs left: the line was read whole.
    pub(crate) fn end(&self) -> Result<(), Error> {
        if crate::at::parse::skip_space(self.0).is_empty() {
            Ok(())
        } else {
            Err(Error::Parse)
        }
    }
}

/// A bounded writer for command lines: running out of room is [`Error::Overflow`], never a panic
/// or a truncated command.
pub struct CmdWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

/// Shows the length only: a command line can hold a PIN (`AT+CPIN`) or a password
/// (`AT+QICSGP`).
impl core::fmt::Debug for CmdWriter<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CmdWriter")
            .field("len", &self.len)
            .field("capacity", &self.buf.len())
            .finish()
    }
}

impl<'a> CmdWriter<'a> {
    /// A writer over `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// How many bytes were written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self.len.checked_add(bytes.len()).ok_or(Error::Overflow)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(Error::Overflow)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Appends text as it is.
    pub fn str(&mut self, s: &str) -> Result<(), Error> {
        self.raw(s.as_bytes())
    }

    /// Appends a double-quoted string. Quectel has no escape for `"` inside strings, so a `"`, a
    /// control character or a non-ASCII byte is [`Error::InvalidArgument`].
    pub fn quoted(&mut self, s: &str) -> Result<(), Error> {
        if s.bytes().any(|b| b == b'"' || !(0x20..0x7f).contains(&b)) {
            return Err(Error::InvalidArgument);
        }
        self.raw(b"\"")?;
        self.raw(s.as_bytes())?;
        self.raw(b"\"")
    }

    /// Appends an unsigned decimal number.
    pub fn uint(&mut self, mut v: u32) -> Result<(), Error> {
        // At most 10 digits, written from the end.
        let mut digits = [0u8; 10];
        let mut used: usize = 0;
        for d in digits.iter_mut().rev() {
            // `v % 10` < 10: the digit is an ASCII digit.
            *d = b'0'.wrapping_add((v % 10) as u8);
            v /= 10;
            used = used.saturating_add(1);
            if v == 0 {
                break;
            }
        }
        let start = digits.len().saturating_sub(used);
        self.raw(digits.get(start..).unwrap_or_default())
    }

    /// Removes the `AT` at `start` of what was written since (a command about to be appended
    /// to a concatenated line); what follows it must be an extended command (`+…`).
    pub(crate) fn cut_at_prefix(&mut self, start: usize) -> Result<(), Error> {
        let part = self
            .buf
            .get(start..self.len)
            .ok_or(Error::InvalidArgument)?;
        let [a, t, b'+', ..] = part else {
            return Err(Error::InvalidArgument);
        };
        // `A` or `a`, `T` or `t` (setting bit 5 maps exactly these to the lower case letter).
        if *a | 0x20 != b'a' || *t | 0x20 != b't' {
            return Err(Error::InvalidArgument);
        }
        // `part` has at least 3 bytes, so `start + 2 < self.len`.
        self.buf
            .copy_within(start.saturating_add(2)..self.len, start);
        self.len = self.len.saturating_sub(2);
        Ok(())
    }

    /// Appends a comma.
    pub fn comma(&mut self) -> Result<(), Error> {
        self.raw(b",")
    }

    /// Appends text and an unsigned decimal number (`AT+QIDEACT=` and the context, in one call).
    pub(crate) fn str_uint(&mut self, s: &str, v: u32) -> Result<(), Error> {
        self.str(s)?;
        self.uint(v)
    }

    /// Appends a comma and an unsigned decimal number (one call for the most common argument).
    pub(crate) fn arg(&mut self, v: u32) -> Result<(), Error> {
        self.comma()?;
        self.uint(v)
    }
}

/// What a type-erased command line expects back, how long it may take, and whether it holds a
/// secret.
#[derive(Clone, Copy)]
pub(crate) struct LineSpec {
    pub(crate) expect: Expect,
    pub(crate) timeout_ms: u32,
    pub(crate) secret: bool,
}

/// The command-type side of an exchange, called through one `&mut dyn` by the type-erased rest
/// (the line writer and the response listener are compiled once, not once per command type).
pub(crate) trait Folding {
    /// Writes the command line into `w` ([`Command::write`]), and tells what the command
    /// expects back, how long it may take, and whether the line holds a secret (also when the
    /// line did not fit: what was written of a secret is wiped).
    fn render(&self, w: &mut CmdWriter<'_>) -> (LineSpec, Result<(), Error>);
    /// Takes one step of the response: folds an information line ([`Command::fold`]), finishes
    /// on success ([`Command::finish`]) or keeps the command's error.
    fn take(&mut self, step: Result<Step<'_>, Error>, expect: Expect);
}

/// A command with its type erased down to its response type, for [`Acc`]: commands with the
/// same response type (all those that answer `OK` alone, for one) share one exchange.
pub(crate) trait DynCommand<R> {
    /// [`Folding::render`].
    fn dyn_render(&self, w: &mut CmdWriter<'_>) -> (LineSpec, Result<(), Error>);
    /// Takes one step of the response into `acc`: folds an information line
    /// ([`Command::fold`]), finishes on success ([`Command::finish`]) or keeps the command's
    /// error.
    fn dyn_take(
        &self,
        acc: &mut Option<Result<R, Error>>,
        step: Result<Step<'_>, Error>,
        expect: Expect,
    );
}

impl<C: Command> DynCommand<C::Response> for C {
    fn dyn_render(&self, w: &mut CmdWriter<'_>) -> (LineSpec, Result<(), Error>) {
        let spec = LineSpec {
            expect: self.expect(),
            timeout_ms: C::TIMEOUT_MS,
            secret: C::SECRET,
        };
        (spec, self.write(w))
    }

    fn dyn_take(
        &self,
        acc: &mut Option<Result<C::Response, Error>>,
        step: Result<Step<'_>, Error>,
        expect: Expect,
    ) {
        match step {
            Ok(Step::Line(l)) => self.fold(acc, &Response::new(l, expect)),
            Ok(Step::Done(text)) => {
                let r = self.finish(acc.take(), &Response::new(text, expect));
                *acc = Some(r);
            }
            Err(e) => *acc = Some(Err(e)),
        }
    }
}

/// What a command's response folds into while it streams in: the driver's side of
/// [`Command::fold`] and [`Command::finish`], one per response type (the rest of the exchange
/// is type-erased, through [`Folding`]).
pub(crate) struct Acc<'c, R> {
    cmd: &'c dyn DynCommand<R>,
    acc: Option<Result<R, Error>>,
}

impl<'c, R> Acc<'c, R> {
    pub(crate) fn new(cmd: &'c dyn DynCommand<R>) -> Self {
        Self { cmd, acc: None }
    }

    /// The result once the response ended (the exchange succeeded and [`Listen::done`] holds).
    #[inline(never)]
    pub(crate) fn into_result(self) -> Result<R, Error> {
        self.acc.unwrap_or(Err(Error::Parse))
    }

    /// The result if the response ended (`done`: [`Listen::done`]).
    pub(crate) fn result(self, done: bool) -> Option<Result<R, Error>> {
        if done { self.acc } else { None }
    }
}

impl<R> Folding for Acc<'_, R> {
    fn render(&self, w: &mut CmdWriter<'_>) -> (LineSpec, Result<(), Error>) {
        self.cmd.dyn_render(w)
    }

    fn take(&mut self, step: Result<Step<'_>, Error>, expect: Expect) {
        self.cmd.dyn_take(&mut self.acc, step, expect);
    }
}

/// A command and what its response folds into, for the driver's flows (`send!`): the
/// command's [`Folding`] directly, without an [`Acc`] and its `&dyn DynCommand` in between (a
/// vtable per command type, none per response type; the command's `render` and `take` are
/// what [`DynCommand`] compiles for it).
pub(crate) struct Typed<'c, C: Command> {
    cmd: &'c C,
    acc: Option<Result<C::Response, Error>>,
}

impl<'c, C: Command> Typed<'c, C> {
    pub(crate) fn new(cmd: &'c C) -> Self {
        Self { cmd, acc: None }
    }

    /// [`Acc::into_result`]; out of line, as that one (identical copies, those of the commands
    /// answered `OK` alone, are folded into one by the linker).
    #[inline(never)]
    pub(crate) fn into_result(self) -> Result<C::Response, Error> {
        self.acc.unwrap_or(Err(Error::Parse))
    }
}

impl<C: Command> Folding for Typed<'_, C> {
    fn render(&self, w: &mut CmdWriter<'_>) -> (LineSpec, Result<(), Error>) {
        self.cmd.dyn_render(w)
    }

    fn take(&mut self, step: Result<Step<'_>, Error>, expect: Expect) {
        self.cmd.dyn_take(&mut self.acc, step, expect);
    }
}

/// A command's response listener, the same for every command type: reads the events of the
/// response and hands what is type-specific to the command's [`Folding`].
///
/// The [`Expect`]'s fields are kept one by one, with `done` in what would be the `Expect`'s
/// padding: 24 bytes, not 28. Every command's future keeps a `Listen` next to its exchange,
/// and at 28 bytes the exchange future that follows it lost another 4 to its 8-byte
/// alignment, at every level of every command's future chain.
pub(crate) struct Listen<'a> {
    /// Taken while a step is folded (a re-entrant call finds it empty and does nothing).
    acc: core::cell::Cell<Option<&'a mut dyn Folding>>,
    prefix: &'static [u8],
    info: crate::at::Info,
    payload: crate::at::Payload,
    prompt: bool,
    target: u8,
    call: bool,
    answers_line: bool,
    done: core::cell::Cell<bool>,
}

impl<'a> Listen<'a> {
    /// Listens for the response of the command behind `acc`, which expects `expect`.
    pub(crate) fn new(acc: &'a mut dyn Folding, expect: Expect) -> Self {
        let Expect {
            prefix,
            info,
            payload,
            prompt,
            target,
            call,
            answers_line,
        } = expect;
        Self {
            acc: core::cell::Cell::new(Some(acc)),
            prefix,
            info,
            payload,
            prompt,
            target,
            call,
            answers_line,
            done: core::cell::Cell::new(false),
        }
    }

    /// What the command expects back.
    pub(crate) fn expect(&self) -> Expect {
        Expect {
            prefix: self.prefix,
            info: self.info,
            payload: self.payload,
            prompt: self.prompt,
            target: self.target,
            call: self.call,
            answers_line: self.answers_line,
        }
    }

    /// Takes one event of the response.
    pub(crate) fn on(&self, ev: crate::at::expect::Event<'_>) {
        let Some(step) = step(ev, &self.done) else {
            return;
        };
        if let Some(acc) = self.acc.take() {
            acc.take(step, self.expect());
            self.acc.set(Some(acc));
        }
    }

    /// Whether the response ended (the result is then in the [`Acc`]).
    pub(crate) fn done(&self) -> bool {
        self.done.get()
    }
}

impl crate::at::expect::OnEvent for Listen<'_> {
    fn on_event(&self, ev: crate::at::expect::Event<'_>) {
        self.on(ev)
    }
}

/// What a response event means for [`Listen`], independent of the command type.
pub(crate) enum Step<'b> {
    /// Fold this information line.
    Line(&'b [u8]),
    /// The command succeeded with this final result code.
    Done(&'static [u8]),
}

/// Reads `ev` for [`Listen::on`]: `None` when there is nothing to do, `Err` for a failed command.
fn step<'b>(
    ev: crate::at::expect::Event<'b>,
    done: &core::cell::Cell<bool>,
) -> Option<Result<Step<'b>, Error>> {
    use crate::at::expect::Event;
    match ev {
        Event::Line(l) if !done.get() => Some(Ok(Step::Line(l))),
        // Payloads without a socket target are not kept (no command of the crate has one).
        Event::Line(_) | Event::Payload(_) => None,
        Event::End(outcome) => {
            if done.replace(true) {
                return None;
            }
            Some(match outcome {
                Ok(f) if f.is_success() => Ok(Step::Done(match f {
                    crate::at::Final::Connect => b"CONNECT",
                    crate::at::Final::SendOk => b"SEND OK",
                    _ => b"OK",
                })),
                Ok(f) => Err(f.into_error().unwrap_or(Error::Error)),
                Err(e) => Err(e),
            })
        }
    }
}

/// Runs `wire` (what the modem sends) through a digester with a line buffer of `N` bytes,
/// fragmented into chunks of `chunk` bytes, and returns `cmd`'s result (or `None` if no final
/// result code came). The same path the driver takes; tests and fuzz targets use it.
pub(crate) fn run_wire_in<C: Command, const N: usize>(
    cmd: &C,
    wire: &[u8],
    chunk: usize,
) -> Option<Result<C::Response, Error>> {
    let shared = crate::at::ExpectCell::new();
    let mut acc = Acc::<C::Response>::new(cmd);
    let listen = Listen::new(&mut acc, cmd.expect());
    let on = |ev: crate::at::expect::Event<'_>| listen.on(ev);
    {
        let _guard = shared.listen(&on);
        shared.begin(cmd.expect());
        let mut buf = [0u8; N];
        let mut d = crate::at::Digester::new(&shared, &mut buf, crate::at::feed::UrcFn(|_| {}));
        for piece in wire.chunks(chunk.max(1)) {
            let _ = d.feed(piece);
            if shared.current().is_none() {
                break;
            }
        }
    }
    let done = listen.done();
    acc.result(done)
}

/// Test helper: [`run_wire_in`] with a 2 KiB buffer; no final result code is a timeout.
#[cfg(test)]
pub(crate) fn run_wire<C: Command>(
    cmd: &C,
    wire: &[u8],
    chunk: usize,
) -> Result<C::Response, Error> {
    run_wire_in::<C, 2048>(cmd, wire, chunk).unwrap_or(Err(Error::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-read field agrees with the nom form it replaces.
    #[test]
    fn field_as_nom_reads_it() {
        use nom::Parser;
        let nom_field = |i| -> nom::IResult<&[u8], &[u8]> {
            let (i, f) = nom::branch::alt((
                crate::at::parse::quoted,
                nom::bytes::complete::take_while(|b| b != b',' && b != b'"'),
            ))
            .parse(i)?;
            Ok((i, crate::error::trim_ascii(f)))
        };
        for i in [
            &b"\"10.0.0.1\",x"[..],
            b"\" a b \"",
            b"\"\"",
            b"\"",
            b"\"open,",
            b"bare , 2",
            b" bare\"q\"",
            b"",
            b",",
            b"\t\r",
            b"::1",
        ] {
            assert_eq!(Ok(field(i)), nom_field(i), "{i:?}");
        }
        let mut f = Fields::new(b"1, 2 ,\"a\" ,b ");
        assert_eq!(f.uint(), Ok(1));
        assert_eq!(f.next_uint(), Ok(2));
        assert_eq!(f.next_field(), Some(&b"a"[..]));
        assert_eq!(f.next_field(), Some(&b"b"[..]));
        assert_eq!(f.next_field(), None);
        assert_eq!(f.end(), Ok(()));
        let mut f = Fields::new(b"1x");
        assert_eq!(f.uint(), Ok(1));
        assert_eq!(f.next_uint(), Err(Error::Parse));
        assert_eq!(f.end(), Err(Error::Parse));
    }

    /// `util::text`, which the parsers use, gives what `at::parse::to_string` gave.
    #[test]
    fn text_as_to_string() {
        for s in [
            &b""[..],
            b"abc",
            b"abcd",
            b"abcde",
            b"\xff",
            "é".as_bytes(),
            b"a\xffb",
        ] {
            assert_eq!(
                crate::util::text::<4>(s),
                crate::at::parse::to_string::<4>(s),
                "{s:?}"
            );
        }
    }

    /// The concatenation cut takes `AT`, in any case, and nothing else.
    #[test]
    fn cut_at_prefix_takes_at_in_any_case() {
        for a in 0..=255u8 {
            for t in [b'T', b't', b'U', b'4', b'\x54' | 0x80, a] {
                let mut buf = [0u8; 8];
                let mut w = CmdWriter::new(&mut buf);
                w.raw(b";").unwrap();
                w.raw(&[a, t, b'+', b'X']).unwrap();
                let want = a.eq_ignore_ascii_case(&b'A') && t.eq_ignore_ascii_case(&b'T');
                assert_eq!(w.cut_at_prefix(1).is_ok(), want, "{a} {t}");
                if want {
                    assert_eq!(w.as_bytes(), b";+X");
                }
            }
        }
    }

    #[test]
    fn writer_bounds() {
        let mut buf = [0u8; 8];
        let mut w = CmdWriter::new(&mut buf);
        w.str("AT+X=").unwrap();
        w.uint(42).unwrap();
        assert_eq!(w.as_bytes(), b"AT+X=42");
        assert_eq!(w.uint(123), Err(Error::Overflow));
        assert_eq!(w.as_bytes(), b"AT+X=42");
        let mut buf = [0u8; 32];
        let mut w = CmdWriter::new(&mut buf);
        assert_eq!(w.quoted("a\"b"), Err(Error::InvalidArgument));
        assert_eq!(w.quoted("a\rb"), Err(Error::InvalidArgument));
        w.quoted("internet").unwrap();
        assert_eq!(w.as_bytes(), b"\"internet\"");
        let mut w = CmdWriter::new(&mut buf);
        w.uint(0).unwrap();
        w.comma().unwrap();
        w.uint(u32::MAX).unwrap();
        assert_eq!(w.as_bytes(), b"0,4294967295");
    }
}

/// Helpers shared by the command modules' byte-table tests.
#[cfg(test)]
pub(crate) mod testing {
    extern crate std;

    use core::fmt::Debug;
    use std::vec::Vec;

    use super::{CmdWriter, Command, run_wire};
    use crate::Error;

    /// One table row: the bytes the modem sends and the expected result.
    pub type Row<'a, T> = (&'a [u8], Result<T, Error>);

    /// Runs every `(wire, expected)` row through the digester in chunks of 1, 3 and 64 bytes.
    pub fn table<C: Command>(cmd: &C, rows: &[Row<C::Response>])
    where
        C::Response: PartialEq + Debug,
    {
        for (wire, want) in rows {
            for chunk in [1, 3, 64] {
                let got = run_wire(cmd, wire, chunk);
                assert_eq!(
                    &got,
                    want,
                    "wire `{}`, chunk {}",
                    wire.escape_ascii(),
                    chunk
                );
            }
        }
    }

    /// What `cmd` writes into a 128-byte buffer (tables check the overflow error with it).
    pub fn wrote<C: Command>(cmd: &C) -> Result<Vec<u8>, Error> {
        let mut buf = [0u8; 128];
        let mut w = CmdWriter::new(&mut buf);
        cmd.write(&mut w)?;
        Ok(w.as_bytes().to_vec())
    }

    /// A bounded string for expected values.
    pub fn s<const N: usize>(t: &str) -> heapless::String<N> {
        heapless::String::try_from(t).unwrap()
    }
}
