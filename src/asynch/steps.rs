//! Flows as data: a fixed sequence of setting lines with what each outcome does next, run by
//! one non-generic executor ([`Modem::run_steps`]).
//!
//! Every `await` of a command in a flow is an arm of the flow's state machine (the dispatch,
//! building and dropping the command's future, matching its error), inlined into the
//! application task. A flow that only sends settings (commands answering `OK` alone) and
//! decides what to do next from the outcome class (success, refusal, any other error) is
//! written here as a table of [`Step`]s instead: 6 bytes a step, and one await in the executor
//! for all of them. The lines, their timeouts and the answers' interpretation are those of the
//! flows they replace (`docs/footprint.md`, "Flash: flows as data").

use super::Modem;
use crate::Error;
use crate::command::general::{Concat, LinePart, Setting};
use crate::command::{Acc, DynCommand};

/// What the executor does after a send, by its outcome.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// Go on: the step's next part (a [`Step::each`] step), or the next step.
    Next,
    /// Stop: the program succeeded at this step.
    Done,
    /// Stop: the program fails with this send's error (only for an error outcome).
    Fail,
    /// Leave the rest of this step, and the step after it, out.
    Skip,
}

/// A part index counted from the end of the program's part list: `end(0)` is its length,
/// `end(1)` its last part (for programs whose part list is as long as the options given).
pub(crate) const fn end(n: u8) -> u8 {
    0x80 | n
}

/// A part index of a [`Step`] for a list of `len` parts ([`end`] resolved).
fn index(v: u8, len: usize) -> usize {
    if v & 0x80 != 0 {
        len.saturating_sub(usize::from(v & 0x7f))
    } else {
        usize::from(v)
    }
}

/// One step: the setting parts `from..to` of the program's part list (either may be counted
/// from the end, [`end`]), sent in one command line
/// ([`Concat`], 5 s) or, with `each`, one line per part ([`Setting`], 300 ms); a step whose
/// range is empty sends nothing.
#[derive(Clone, Copy)]
pub(crate) struct Step {
    /// First part.
    pub(crate) from: u8,
    /// One past the last part.
    pub(crate) to: u8,
    /// One line per part instead of one line for all.
    pub(crate) each: bool,
    /// After `OK`.
    pub(crate) ok: Then,
    /// After `ERROR` or `+CME ERROR` (the module refused the line).
    pub(crate) refused: Then,
    /// After any other error (a timeout, a reboot, the UART).
    pub(crate) other: Then,
}

impl Step {
    /// Parts `from..to` in one command line, then `ok`, `refused` or `other`.
    pub(crate) const fn line(from: u8, to: u8, ok: Then, refused: Then, other: Then) -> Self {
        Self {
            from,
            to,
            each: false,
            ok,
            refused,
            other,
        }
    }

    /// Part `at` on a line of its own ([`Setting`], 300 ms), then `ok`, `refused` or `other`.
    pub(crate) const fn alone(at: u8, ok: Then, refused: Then, other: Then) -> Self {
        Self {
            from: at,
            to: at.saturating_add(1),
            each: true,
            ok,
            refused,
            other,
        }
    }

    /// Parts `from..to` one line each; an error of any kind does `on_error`.
    pub(crate) const fn each(from: u8, to: u8, on_error: Then) -> Self {
        Self {
            from,
            to,
            each: true,
            ok: Then::Next,
            refused: on_error,
            other: on_error,
        }
    }
}

impl<'a> Modem<'a> {
    /// Runs `steps` over `parts`. `Ok(i)`: step `i` ended the program with [`Then::Done`]
    /// (`steps.len()` when it ran to the end); `Err`: the error of a send whose outcome said
    /// [`Then::Fail`].
    ///
    /// Polled out of line: one copy for every flow written as steps.
    pub(crate) fn run_steps<'s>(
        &'s self,
        parts: &'s [&'s dyn LinePart],
        steps: &'static [Step],
    ) -> super::outline::Outlined<impl core::future::Future<Output = Result<usize, Error>> + 's>
    {
        super::outline::Outlined(async move {
            let mut i = 0usize;
            while let Some(step) = steps.get(i) {
                let range = parts
                    .get(index(step.from, parts.len())..index(step.to, parts.len()))
                    .unwrap_or(&[]);
                let sends = if step.each {
                    range.len()
                } else {
                    usize::from(!range.is_empty())
                };
                let mut next = i.saturating_add(1);
                for k in 0..sends {
                    let r = {
                        let concat = Concat { parts: range };
                        let single = range.get(k).map(|p| Setting(*p));
                        let cmd: &dyn DynCommand<()> = match &single {
                            Some(s) if step.each => s,
                            _ => &concat,
                        };
                        self.send_dyn(Acc::new(cmd)).await
                    };
                    let then = match &r {
                        Ok(()) => step.ok,
                        Err(Error::Error | Error::Cme(_)) => step.refused,
                        Err(_) => step.other,
                    };
                    match then {
                        Then::Next => {}
                        Then::Done => return Ok(i),
                        Then::Fail => return r.map(|()| i),
                        Then::Skip => {
                            next = next.saturating_add(1);
                            break;
                        }
                    }
                }
                i = next;
            }
            Ok(i)
        })
    }
}
