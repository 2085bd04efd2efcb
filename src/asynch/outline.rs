//! A future whose `poll` is never inlined into its caller.
//!
//! The driver's flows await the same few non-generic futures (the AT exchange above all) from
//! dozens of places. With `opt-level = "z"` and LTO, LLVM still inlines such a future's whole
//! state machine into a caller now and then, which keeps a second (or third) copy of the
//! exchange in the firmware. Wrapping the future in [`Outlined`] keeps one copy: every caller
//! calls the same `poll`. Measured with `scripts/footprint.sh` (`docs/footprint.md`).

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

/// `F`, polled through one out-of-line function.
#[must_use = "futures do nothing unless awaited"]
pub(crate) struct Outlined<F>(pub(crate) F);

impl<F: Future> Future for Outlined<F> {
    type Output = F::Output;

    #[inline(never)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: structural pinning of the only field: `Outlined` never moves `F` out, has
        // no `Drop` impl and is `Unpin` only when `F` is, so `F` stays pinned as long as
        // `self` is.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        inner.poll(cx)
    }
}
