//! The shard's item memory: one anonymous mapping, backed by huge pages
//! where the kernel allows.
//!
//! Items are read at random across the whole budget, so with 4 KiB pages
//! nearly every lookup is a TLB miss (and under virtualization a TLB miss is
//! a two-dimensional page walk). Asking for transparent huge pages cuts the
//! number of pages 512-fold. The mapping is reserved, not committed: pages
//! become resident (and NUMA-local to the first core that writes them) as
//! items are written, so an idle shard costs no memory.

use std::cell::Cell;
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
        Memory::map(
            len,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
        )
    }

    /// `mmap` of `len` bytes with `flags` over `fd` (-1 for anonymous
    /// memory), readable and writable, with huge pages asked for.
    fn map(len: usize, flags: i32, fd: i32) -> std::io::Result<Memory> {
        if len == 0 {
            return Ok(Memory {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        // SAFETY: a mapping with no address hint over an anonymous region or
        // an open file the caller sized to `len`; the result is checked
        // against MAP_FAILED. A file mapping keeps the file's pages after
        // the descriptor is closed.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `ptr..ptr+len` is the mapping just created. MADV_HUGEPAGE is
        // advice: failure (no THP support, or tmpfs without huge pages) leaves
        // ordinary pages, so the result is deliberately ignored.
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

impl Memory {
    /// Maps `len` bytes of the file at `path` (created, or resized to
    /// `len`) shared, so what is written lands in the file: with the file
    /// on tmpfs the items outlive the process (warm restart, `-e`). The
    /// contents of an existing file of the same length are kept.
    pub fn map_file(path: &std::path::Path, len: usize) -> std::io::Result<Memory> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if file.metadata()?.len() != len as u64 {
            file.set_len(len as u64)?;
        }
        Memory::map(len, libc::MAP_SHARED, file.as_raw_fd())
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

/// Sets glibc's allocator up for a long-running cache; call it first
/// thing, before other threads exist.
///
/// - Large buffers (a connection's read buffer grown for a big value, a
///   reply holding one) come and go in every size up to the item limit.
///   glibc's default raises its mmap threshold to the largest block freed
///   so far, after which such buffers are carved from the thread's heap,
///   and the holes left between small long-lived allocations keep resident
///   memory creeping up. A fixed threshold keeps every block of 128 KiB or
///   more in a mapping of its own, returned to the kernel when freed.
/// - No fast bins: a request too large for them makes glibc consolidate
///   every fast-bin chunk first, and the index's pieces, growing by
///   doubling, free thousands of small tables: one store took 2-5 ms in
///   that walk (`examples/index_growth`, 10M items), against under 0.6 ms
///   for the slowest growth without fast bins. Nothing on the request path
///   allocates, so their speed is not missed.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; callers run it
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
            libc::mallopt(libc::M_MXFAST, 0);
        }
    }
}

/// The index's allocator: tables of 2 MiB and more get their own mapping
/// with huge pages asked for, smaller ones come from the global allocator.
///
/// The index is read at random like the items (two cache lines a lookup:
/// control bytes, then the slot), and it is sized up front from the memory
/// budget, so it is often tens of MiB: with 4 KiB pages every lookup paid
/// TLB misses (perf at pipeline 16 put a quarter of the server's CPU in
/// `Shard::lookup`). It is allocated once, so a mapping per table costs
/// nothing on the hot path. It also remembers the last block it handed out,
/// so the index can find its own table memory to prefetch from.
#[derive(Clone, Debug, Default)]
pub struct HugePageAlloc {
    /// Address and size of the live block this allocator handed out last;
    /// (0, 0) when none. Plain numbers: only ever used as prefetch hints.
    last_block: Cell<(usize, usize)>,
}

impl HugePageAlloc {
    /// Address and size of the block last allocated and not yet freed;
    /// `None` if there is none.
    pub fn last_block(&self) -> Option<(usize, usize)> {
        let (addr, size) = self.last_block.get();
        (size > 0).then_some((addr, size))
    }
}

/// Allocations from this size up are mapped with huge pages.
const HUGE_ALLOCATION: usize = 2 << 20;

// SAFETY: `allocate` returns memory valid for the layout (page-aligned
// mappings satisfy any alignment up to a page; larger alignments go to the
// global allocator) until `deallocate` is called with the same layout, which
// picks the same branch because the branch depends only on the layout.
// Clones may free each other's blocks: the only state is a hint.
unsafe impl allocator_api2::alloc::Allocator for HugePageAlloc {
    fn allocate(
        &self,
        layout: std::alloc::Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        let block = if layout.size() < HUGE_ALLOCATION || layout.align() > 4096 {
            allocator_api2::alloc::Global.allocate(layout)?
        } else {
            let memory =
                Memory::new(layout.size()).map_err(|_| allocator_api2::alloc::AllocError)?;
            let ptr = memory.ptr;
            // The mapping now belongs to the caller until `deallocate`.
            std::mem::forget(memory);
            NonNull::slice_from_raw_parts(ptr, layout.size())
        };
        self.last_block
            .set((block.cast::<u8>().as_ptr() as usize, layout.size()));
        Ok(block)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: std::alloc::Layout) {
        if self.last_block.get().0 == ptr.as_ptr() as usize {
            self.last_block.set((0, 0));
        }
        if layout.size() < HUGE_ALLOCATION || layout.align() > 4096 {
            // SAFETY: the caller passes a block `allocate` took from the
            // global allocator with this layout.
            unsafe { allocator_api2::alloc::Global.deallocate(ptr, layout) };
            return;
        }
        // Rebuild the `Memory` that `allocate` forgot and let it unmap.
        drop(Memory {
            ptr,
            len: layout.size(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_page_allocator_serves_small_and_large_layouts() {
        use allocator_api2::alloc::Allocator;
        for size in [64, HUGE_ALLOCATION - 1, HUGE_ALLOCATION, 48 << 20] {
            let layout = std::alloc::Layout::from_size_align(size, 16).unwrap();
            let alloc = HugePageAlloc::default();
            let block = alloc.allocate(layout).unwrap();
            assert_eq!(
                alloc.last_block(),
                Some((block.cast::<u8>().as_ptr() as usize, size))
            );
            assert!(block.len() >= size);
            let ptr = block.cast::<u8>().as_ptr();
            assert_eq!(ptr as usize % 16, 0);
            // SAFETY: `block` is `size` writable bytes owned by this test.
            unsafe {
                ptr.write(7);
                ptr.add(size - 1).write(9);
                assert_eq!((ptr.read(), ptr.add(size - 1).read()), (7, 9));
                alloc.deallocate(block.cast(), layout);
            }
            assert_eq!(alloc.last_block(), None);
        }
    }

    #[test]
    fn a_file_mapping_keeps_what_was_written() {
        let path = std::env::temp_dir().join(format!("segcore-memfile-{}", std::process::id()));
        {
            let mut m = Memory::map_file(&path, 8192).unwrap();
            assert!(m.iter().all(|&b| b == 0));
            m[4000..4005].copy_from_slice(b"hello");
        }
        let m = Memory::map_file(&path, 8192).unwrap();
        assert_eq!(&m[4000..4005], b"hello", "kept across mappings");
        drop(m);
        // Another size starts over from a resized file.
        let m = Memory::map_file(&path, 4096).unwrap();
        assert_eq!(m.len(), 4096);
        drop(m);
        std::fs::remove_file(&path).unwrap();
    }

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
