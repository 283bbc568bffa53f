//! The shard's item memory: one anonymous mapping, backed by huge pages
//! where the kernel allows.
//!
//! Items are read at random across the whole budget, so with 4 KiB pages
//! nearly every lookup is a TLB miss (and under virtualization a TLB miss is
//! a two-dimensional page walk). Asking for transparent huge pages cuts the
//! number of pages 512-fold. The mapping is reserved, not committed: pages
//! become resident (and NUMA-local to the first core that writes them) as
//! items are written, so an idle shard costs no memory.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// A zero-initialized, page-aligned byte region owned by one shard.
pub struct Memory {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `Memory` owns its mapping exclusively (like a `Box<[u8]>`); moving
// it to another thread moves that ownership. It is not `Sync`-shared here.
unsafe impl Send for Memory {}

impl Memory {
    /// Maps `len` bytes (rounded up to a page), asking for huge pages.
    pub fn new(len: usize) -> std::io::Result<Memory> {
        if len == 0 {
            return Ok(Memory {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        // SAFETY: an anonymous private mapping with no address hint has no
        // preconditions; the result is checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `ptr..ptr+len` is the mapping just created. MADV_HUGEPAGE is
        // advice: failure (no THP support) leaves ordinary pages, so the
        // result is deliberately ignored.
        unsafe {
            libc::madvise(ptr, len, libc::MADV_HUGEPAGE);
        }
        Ok(Memory {
            // SAFETY: mmap succeeded, so `ptr` is not null.
            ptr: unsafe { NonNull::new_unchecked(ptr.cast::<u8>()) },
            len,
        })
    }
}

impl Deref for Memory {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` bytes mapped readable and writable
        // for as long as `self` lives (zero-filled by the kernel, so
        // initialized); `&self` prevents concurrent mutation.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Memory {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmaps exactly the region `new` mapped; no borrow of it
            // can outlive `self`.
            unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), self.len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_memory_is_zeroed_writable_and_freed() {
        let mut m = Memory::new(8 << 20).unwrap();
        assert_eq!(m.len(), 8 << 20);
        assert!(m.iter().step_by(4096).all(|&b| b == 0));
        m[0] = 1;
        let last = m.len() - 1;
        m[last] = 2;
        assert_eq!((m[0], m[last]), (1, 2));
        drop(m);
        let empty = Memory::new(0).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn large_reservations_cost_no_resident_memory() {
        // 64 GiB of address space, untouched: must succeed on a 24 GiB box.
        let m = Memory::new(64 << 30).unwrap();
        assert_eq!(m.len(), 64 << 30);
    }
}
