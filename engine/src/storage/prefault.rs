//! Faults segment memory in ahead of its first write, off the request
//! path.
//!
//! Segment memory is reserved, not committed, so the first write to each
//! huge page stops the core while the kernel finds, compacts and zeroes
//! 2 MiB (with THP's `defrag=madvise`, direct compaction: 1-20 ms measured
//! on the bench VM). When a core opens a segment, it hands the next fresh
//! segment to a helper thread, which asks the kernel to populate it
//! (`MADV_POPULATE_WRITE`: pages are faulted in writable, their contents
//! untouched) while the open one fills.
//!
//! One helper per core thread, created by it: it inherits the core's CPU
//! affinity, so pages come from the core's NUMA node as they would from its
//! own first touch, and it runs under `SCHED_IDLE`, so it only ever uses
//! time the core leaves idle. A saturated core starves its helper and
//! faults its pages itself, as it did without one. Kernels before 5.14
//! lack the advice: the helper then stops and nothing changes.

use std::cell::OnceCell;
use std::sync::mpsc::{channel, Sender};

/// A range of one mapping, as plain numbers: the helper never
/// dereferences it, it only passes it to `madvise`.
struct Range {
    addr: usize,
    len: usize,
}

thread_local! {
    static HELPER: OnceCell<Option<Sender<Range>>> = const { OnceCell::new() };
}

/// Asks this thread's helper to fault `len` bytes at `addr` in. The range
/// must lie in an anonymous private mapping: populating it never changes
/// what it holds, so the owner may read and write it meanwhile. Should the
/// mapping go away first, `madvise` fails on the unmapped range and
/// nothing happens.
pub fn ahead(addr: *const u8, len: usize) {
    HELPER.with(|helper| {
        if let Some(helper) = helper.get_or_init(start) {
            // A helper that stopped (old kernel) drops its end: ignored.
            let _ = helper.send(Range {
                addr: addr as usize,
                len,
            });
        }
    });
}

fn start() -> Option<Sender<Range>> {
    let (tx, rx) = channel::<Range>();
    std::thread::Builder::new()
        .name("segcore-prefault".into())
        .spawn(move || {
            idle_priority();
            // Ends when the core thread (the sender's owner) exits.
            for range in rx {
                if !populate(&range) {
                    return;
                }
            }
        })
        .ok()?;
    Some(tx)
}

/// Runs this thread only when its CPU has nothing else to run.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sets this thread's own policy with a valid parameter
        // block; failure leaves the normal policy, which is still correct.
        unsafe {
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
        }
    }
}

/// Populates `range`; false when the kernel does not know the advice.
fn populate(range: &Range) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: MADV_POPULATE_WRITE faults pages in without writing to
        // them, so it cannot change memory any thread is using; an address
        // that is no longer mapped makes the call fail, nothing more.
        let rc = unsafe {
            libc::madvise(
                range.addr as *mut libc::c_void,
                range.len,
                libc::MADV_POPULATE_WRITE,
            )
        };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = range;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::Memory;

    /// Pages of `memory` that are resident (mincore).
    fn resident_pages(memory: &Memory) -> usize {
        let pages = memory.len().div_ceil(4096);
        let mut vec = vec![0u8; pages];
        // SAFETY: `memory` is one mapping of `len` bytes, page-aligned, and
        // `vec` has a byte per page.
        let rc = unsafe {
            libc::mincore(
                memory.as_ptr() as *mut libc::c_void,
                memory.len(),
                vec.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0);
        vec.iter().filter(|&&b| b & 1 == 1).count()
    }

    /// Populating makes a fresh range resident without changing a byte of
    /// it (or of what the owner wrote there before).
    #[test]
    fn populating_faults_memory_in_and_changes_nothing() {
        let mut memory = Memory::new(4 << 20).unwrap();
        // Resident: the first page (or huge page) only.
        memory[5] = 7;
        assert!(
            resident_pages(&memory) <= 512,
            "fresh memory is not resident"
        );
        let range = Range {
            addr: memory.as_ptr() as usize,
            len: memory.len(),
        };
        assert!(populate(&range), "kernel without MADV_POPULATE_WRITE");
        assert_eq!(resident_pages(&memory), 1024, "all 4 MiB resident");
        assert_eq!(memory[5], 7);
        assert_eq!(memory.iter().map(|&b| u64::from(b)).sum::<u64>(), 7);
    }

    /// `ahead` hands the range to the helper thread, which populates it
    /// when the CPU has time (the wait is a deadline, not a measurement).
    #[test]
    fn the_helper_populates_what_it_is_handed() {
        let memory = Memory::new(2 << 20).unwrap();
        ahead(memory.as_ptr(), memory.len());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while resident_pages(&memory) < 512 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(resident_pages(&memory), 512);
    }
}
