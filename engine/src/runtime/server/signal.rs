//! A one-shot, core-local signal: fired once, awaited by any number of tasks
//! on the same executor (the accept loop waits on "stop").
//!
//! Single-threaded (`Rc`, `RefCell`): it never crosses cores, so it needs no
//! atomics. A waiter holds a slot only while its future lives: dropping
//! the future (the race it was part of was won by something else) frees
//! the slot, so a signal awaited in a loop does not grow.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct State {
    fired: bool,
    /// One slot per live waiter future; `None` marks a free slot.
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

/// A signal that fires once.
#[derive(Clone, Default)]
pub struct Signal(Rc<RefCell<State>>);

impl Signal {
    /// Fires the signal, waking every waiter.
    pub fn fire(&self) {
        let wakers: Vec<Waker> = {
            let mut state = self.0.borrow_mut();
            state.fired = true;
            state.slots.iter().flatten().cloned().collect()
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether it has fired.
    pub fn fired(&self) -> bool {
        self.0.borrow().fired
    }

    /// Waiter futures alive now (for `stats`: it must return to its
    /// baseline however many connections came and went).
    pub fn waiters(&self) -> usize {
        let state = self.0.borrow();
        state.slots.len() - state.free.len()
    }

    /// Completes once the signal has fired.
    pub fn wait(&self) -> impl Future<Output = ()> + 'static {
        Wait {
            signal: self.clone(),
            slot: None,
        }
    }
}

struct Wait {
    signal: Signal,
    slot: Option<usize>,
}

impl Future for Wait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut state = this.signal.0.borrow_mut();
        if state.fired {
            return Poll::Ready(());
        }
        match this.slot {
            Some(slot) => match &mut state.slots[slot] {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                stored => *stored = Some(cx.waker().clone()),
            },
            None => {
                let waker = Some(cx.waker().clone());
                let slot = match state.free.pop() {
                    Some(slot) => {
                        state.slots[slot] = waker;
                        slot
                    }
                    None => {
                        state.slots.push(waker);
                        state.slots.len() - 1
                    }
                };
                this.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let mut state = self.signal.0.borrow_mut();
            state.slots[slot] = None;
            state.free.push(slot);
        }
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

    #[test]
    fn dropped_waiters_leave_nothing_behind() {
        let signal = Signal::default();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..1000 {
            let mut waiter = Box::pin(signal.wait());
            assert!(waiter.as_mut().poll(&mut cx).is_pending());
            assert!(waiter.as_mut().poll(&mut cx).is_pending());
            assert_eq!(signal.waiters(), 1);
        }
        assert_eq!(signal.waiters(), 0);
        // A live waiter is still woken and completes.
        let mut waiter = Box::pin(signal.wait());
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
        signal.fire();
        assert!(waiter.as_mut().poll(&mut cx).is_ready());
        drop(waiter);
        assert_eq!(signal.waiters(), 0);
    }
}
