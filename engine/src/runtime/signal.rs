//! A one-shot, core-local signal: fired once, awaited by any number of tasks
//! on the same executor (the listener and every connection wait on "stop").
//!
//! Single-threaded (`Rc`, `RefCell`): it never crosses cores, so it needs no
//! atomics.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct State {
    fired: bool,
    wakers: Vec<Waker>,
}

/// A signal that fires once.
#[derive(Clone, Default)]
pub struct Signal(Rc<RefCell<State>>);

impl Signal {
    /// Fires the signal, waking every waiter.
    pub fn fire(&self) {
        let wakers = {
            let mut state = self.0.borrow_mut();
            state.fired = true;
            std::mem::take(&mut state.wakers)
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether it has fired.
    pub fn fired(&self) -> bool {
        self.0.borrow().fired
    }

    /// Completes once the signal has fired.
    pub fn wait(&self) -> impl Future<Output = ()> + 'static {
        Wait(self.clone())
    }
}

struct Wait(Signal);

impl Future for Wait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = (self.0).0.borrow_mut();
        if state.fired {
            return Poll::Ready(());
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_complete_after_fire() {
        let signal = Signal::default();
        let waiter = signal.wait();
        assert!(!signal.fired());
        signal.fire();
        assert!(signal.fired());
        futures_lite::future::block_on(waiter);
        futures_lite::future::block_on(signal.wait());
    }
}
