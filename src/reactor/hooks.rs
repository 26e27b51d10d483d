//! Calling the handler: every hook goes through [`Core::call_hook`], which
//! catches a panic (with [`Config::catch_panics`](crate::Config::catch_panics))
//! so that it closes only the connection concerned; close hooks wait in a
//! queue until the loop is at a point where the handler may be called.

use std::panic::{self, AssertUnwindSafe};

use crate::handler::{Context, Handler};
use crate::reactor::Core;

/// The text of a panic payload, for the log.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

impl Core {
    /// Runs the close hooks of connections closed since the last call. A
    /// hook may close more connections; their hooks run here too.
    pub(crate) fn run_close_hooks<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
    ) {
        while let Some((id, reason)) = self.close_hooks.pop_front() {
            self.call_hook(handler, "on_close", |h, cx| h.on_close(cx, id, &reason));
        }
    }

    /// Calls one handler hook. With [`Config::catch_panics`](crate::Config::catch_panics)
    /// a panic is caught, logged and counted, and `false` returned so the
    /// caller can close the connection concerned; without, it propagates
    /// (and the reactor refuses further turns: see
    /// [`Reactor::run_once`](crate::Reactor::run_once)).
    pub(crate) fn call_hook<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        hook: &'static str,
        call: impl FnOnce(&mut H, &mut Context<'_>),
    ) -> bool {
        if !self.config.catch_panics {
            call(handler, &mut Context { core: self });
            return true;
        }
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            call(handler, &mut Context { core: self })
        }));
        match outcome {
            Ok(()) => true,
            Err(payload) => {
                self.stats.handler_panics += 1;
                warn!("handler panicked in {hook}: {}", panic_text(&*payload));
                false
            }
        }
    }
}
