//! Recycled storage for the future that serves one batch of a connection.
//!
//! A task's future is as large as its largest await, and a connection's
//! task spends nearly all its life waiting for input. Serving a batch
//! (parse, forward, execute, write) needs several hundred bytes of state
//! that an idle connection would otherwise carry for nothing. So that
//! state lives in a slot borrowed from the core for the length of the
//! batch: the idle task holds a small future, and the core holds one slot
//! per connection that is serving a batch right now. Slots are recycled,
//! so serving allocates nothing in steady state.

use std::alloc::Layout;
use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// Bytes in a slot: room for the batch-serving future with a margin. A
/// future that outgrows it fails to compile (see [`SlotPool::put`]).
pub const SLOT_SIZE: usize = 768;
/// Alignment of a slot.
pub const SLOT_ALIGN: usize = 16;
/// Most free slots a core keeps.
pub const MAX_FREE_SLOTS: usize = 256;

const LAYOUT: Layout = match Layout::from_size_align(SLOT_SIZE, SLOT_ALIGN) {
    Ok(layout) => layout,
    Err(_) => panic!("invalid slot layout"),
};

/// One core's free slots.
#[derive(Debug, Default)]
pub struct SlotPool {
    free: RefCell<Vec<NonNull<u8>>>,
}

impl SlotPool {
    /// Moves `future` into a slot; the returned handle polls it in place
    /// and frees the slot when dropped.
    pub fn put<F: Future>(&self, future: F) -> InSlot<'_, F> {
        const {
            assert!(
                std::mem::size_of::<F>() <= SLOT_SIZE,
                "the future does not fit a slot: raise SLOT_SIZE"
            );
            assert!(std::mem::align_of::<F>() <= SLOT_ALIGN);
        }
        let block = self.free.borrow_mut().pop().unwrap_or_else(|| {
            // SAFETY: LAYOUT has a non-zero size.
            let raw = unsafe { std::alloc::alloc(LAYOUT) };
            NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(LAYOUT))
        });
        let slot = block.cast::<F>();
        // SAFETY: the block is SLOT_SIZE bytes aligned to SLOT_ALIGN, which
        // the const assertions show is enough for an F, and it is not in
        // use (it came off the free list or was just allocated).
        unsafe { slot.as_ptr().write(future) };
        InSlot {
            slot,
            pool: self,
            _owns: PhantomData,
        }
    }

    /// Free slots kept now.
    #[cfg(test)]
    pub fn free(&self) -> usize {
        self.free.borrow().len()
    }

    fn give_back(&self, block: NonNull<u8>) {
        let mut free = self.free.borrow_mut();
        if free.len() < MAX_FREE_SLOTS {
            free.push(block);
        } else {
            // SAFETY: every block was allocated with LAYOUT and is no
            // longer in use.
            unsafe { std::alloc::dealloc(block.as_ptr(), LAYOUT) };
        }
    }
}

impl Drop for SlotPool {
    fn drop(&mut self) {
        for block in self.free.get_mut().drain(..) {
            // SAFETY: as in give_back; the pool is going away, and no
            // InSlot outlives it (it borrows the pool).
            unsafe { std::alloc::dealloc(block.as_ptr(), LAYOUT) };
        }
    }
}

/// A future living in a slot of a [`SlotPool`].
pub struct InSlot<'p, F> {
    slot: NonNull<F>,
    pool: &'p SlotPool,
    _owns: PhantomData<F>,
}

impl<F: Future> Future for InSlot<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: the slot holds a live F written by `put` and dropped only
        // by our Drop; it never moves while in the slot (the handle moves,
        // the slot does not), so pinning it is sound.
        let future = unsafe { Pin::new_unchecked(&mut *self.slot.as_ptr()) };
        future.poll(cx)
    }
}

impl<F> Drop for InSlot<'_, F> {
    fn drop(&mut self) {
        // SAFETY: the slot holds a live F (written by `put`), dropped here
        // exactly once; afterwards the block is only memory again.
        unsafe { std::ptr::drop_in_place(self.slot.as_ptr()) };
        self.pool.give_back(self.slot.cast());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn a_future_runs_in_a_slot_and_the_slot_is_reused() {
        let pool = SlotPool::default();
        let value = futures_lite::future::block_on(pool.put(async { 40 + 2 }));
        assert_eq!(value, 42);
        assert_eq!(pool.free(), 1);
        let first = *pool.free.borrow().last().expect("a free slot");
        let handle = pool.put(async { 1 });
        assert_eq!(handle.slot.cast::<u8>(), first, "the free slot was reused");
        assert_eq!(pool.free(), 0);
        drop(handle);
        assert_eq!(pool.free(), 1);
    }

    #[test]
    fn an_unfinished_future_is_dropped_in_place() {
        let pool = SlotPool::default();
        let alive = Rc::new(());
        let held = alive.clone();
        let mut waiting = Box::pin(pool.put(async move {
            let _held = held;
            futures_lite::future::pending::<()>().await;
        }));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert_eq!(Rc::strong_count(&alive), 2);
        drop(waiting);
        assert_eq!(Rc::strong_count(&alive), 1, "its captures were dropped");
        assert_eq!(pool.free(), 1);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_free_slots() {
        let pool = SlotPool::default();
        let handles: Vec<_> = (0..MAX_FREE_SLOTS + 10)
            .map(|i| pool.put(async move { i }))
            .collect();
        drop(handles);
        assert_eq!(pool.free(), MAX_FREE_SLOTS);
    }
}
