//! Which CPUs the cores run on: `--cores` lists, `-t` counts, and the
//! CPUs this process may use (its affinity mask).

/// A CPU list as `--cores` takes it (`0,2`, `0-3`), each CPU once in the
/// order given.
pub fn cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("invalid CPU list {text:?} (expected e.g. 0,2 or 0-3)");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    // Each CPU once, in the order given: "0-1,0" must not start two
    // executors on CPU 0.
    let mut seen = std::collections::HashSet::new();
    cpus.retain(|cpu| seen.insert(*cpu));
    if cpus.is_empty() {
        return Err(format!("empty CPU list {text:?}"));
    }
    Ok(cpus)
}

/// The CPUs this process may run on (its affinity mask; CPU 0 when that
/// cannot be read).
pub fn allowed_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if cpus.is_empty() {
        cpus.push(0);
    }
    cpus
}

/// `--cores LIST`: the CPUs listed, each of which this process must be
/// allowed to run on (a core pinned to a CPU it may not use would never
/// start).
pub fn usable_cpus(list: &str, allowed: &[usize]) -> Result<Vec<usize>, String> {
    let cpus = cpu_list(list)?;
    match cpus.iter().find(|cpu| !allowed.contains(cpu)) {
        Some(cpu) => Err(format!(
            "--cores {list}: CPU {cpu} is not one this process may run on (it may use {})",
            cpu_ranges(allowed)
        )),
        None => Ok(cpus),
    }
}

/// `-t N`: one core per CPU, on the first N CPUs this process may use. Each
/// core is an executor pinned to its CPU that polls it; two on one CPU take
/// turns, each serving about half as much, and starting dozens of them on a
/// few CPUs took minutes (the cores' meshes connect every pair). So more
/// than there are CPUs runs one per CPU, and says so.
pub fn threads_on(n: usize, allowed: &[usize]) -> Vec<usize> {
    if n > allowed.len() {
        log::warn!(
            "-t {n}: this process may use {} CPU(s) ({}); running {} core(s), one per CPU \
             (segcore pins one executor per core: more would share CPUs and serve less each)",
            allowed.len(),
            cpu_ranges(allowed),
            allowed.len()
        );
    }
    allowed.iter().copied().take(n).collect()
}

/// CPUs as `0-3,6`.
pub fn cpu_ranges(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        parts.push(if sorted[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", sorted[i])
        });
        i += 1;
    }
    parts.join(",")
}
