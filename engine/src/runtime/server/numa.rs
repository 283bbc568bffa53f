//! Where each core runs and where its memory lives: the CPU its executor
//! is pinned to, that CPU's NUMA node (from /sys), and the node holding its
//! shard's memory (asked of the kernel for the first segment's page). An
//! operator checks these to see that NUMA pinning did what they meant:
//! every core's memory on its own CPU's node.

/// One core's placement, found once when the core starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// The CPU the core's thread runs on.
    pub cpu: Option<usize>,
    /// That CPU's NUMA node.
    pub cpu_node: Option<usize>,
    /// The node of the shard's first memory page.
    pub memory_node: Option<usize>,
}

/// The CPU the calling thread runs on (pinned, so it stays there).
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes nothing and returns a CPU number or -1.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

/// The NUMA node of `cpu`, from the `nodeN` entry sysfs keeps in each
/// CPU's directory; `None` on a kernel without NUMA.
pub fn node_of_cpu(cpu: usize) -> Option<usize> {
    let dir = std::fs::read_dir(format!("/sys/devices/system/cpu/cpu{cpu}")).ok()?;
    dir.filter_map(Result::ok).find_map(|entry| {
        entry
            .file_name()
            .to_str()?
            .strip_prefix("node")?
            .parse()
            .ok()
    })
}

/// The NUMA node of the page holding `addr`, faulting it in from the
/// calling thread if it was not yet (so asking on the owning core is also
/// the first touch). `None` where the kernel will not say (no NUMA, or a
/// sandbox that filters the call).
pub fn node_of_address(addr: usize) -> Option<usize> {
    const MPOL_F_NODE: libc::c_ulong = 1;
    const MPOL_F_ADDR: libc::c_ulong = 2;
    let mut node: libc::c_int = -1;
    // SAFETY: get_mempolicy writes one int into `node` (we pass no node
    // mask, so maxnode is 0); `addr` is only looked up in the page tables
    // (an unmapped address is an EFAULT, not a read).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut node as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_ulong>(),
            0 as libc::c_ulong,
            addr,
            MPOL_F_NODE | MPOL_F_ADDR,
        )
    };
    if rc == 0 {
        usize::try_from(node).ok()
    } else {
        None
    }
}

impl Placement {
    /// The calling thread's placement, with `memory` the address of the
    /// shard's first memory page.
    pub fn here(memory: usize) -> Placement {
        let cpu = current_cpu();
        Placement {
            cpu,
            cpu_node: cpu.and_then(node_of_cpu),
            memory_node: node_of_address(memory),
        }
    }
}

/// How a value that may be unknown is shown: memcached-style `-1`.
pub fn shown(value: Option<usize>) -> String {
    value.map_or_else(|| "-1".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_agrees_with_the_kernel() {
        let cpu = current_cpu().expect("sched_getcpu works on Linux");
        assert!(cpu < 4096);
        // Where sysfs lists nodes, the CPU is on one of them.
        if std::path::Path::new("/sys/devices/system/node/node0").exists() {
            let node = node_of_cpu(cpu).expect("the CPU's node");
            assert!(std::path::Path::new(&format!("/sys/devices/system/node/node{node}")).exists());
        }
        // Memory this thread touched is on some node the system has (when
        // the kernel answers at all).
        let page = vec![1u8; 4096];
        if let Some(node) = node_of_address(page.as_ptr() as usize) {
            assert!(std::path::Path::new(&format!("/sys/devices/system/node/node{node}")).exists());
        }
        assert_eq!(shown(None), "-1");
        assert_eq!(shown(Some(3)), "3");
    }
}
