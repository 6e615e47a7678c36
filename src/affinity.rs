//! The calling thread's CPUs: which it may run on, which it runs on, and
//! narrowing the first. Linux only; elsewhere nothing is known or pinned.

/// The CPUs the calling thread may run on, in ascending order; empty when
/// the OS does not say.
pub fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    // SAFETY: the set lives on this frame; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            return (0..libc::CPU_SETSIZE as usize)
                .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
                .collect();
        }
    }
    Vec::new()
}

/// Lets the calling thread run on `cpus` only (moving it now if it runs
/// elsewhere); false when the OS refuses or cannot pin.
pub fn restrict_to(cpus: &[usize]) -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: as in `allowed_cpus`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus.iter().filter(|&&cpu| cpu < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpus;
        false
    }
}

/// The CPU the calling thread runs on, where the OS tells it. Inlined: the
/// worker's waiting caller asks at every poll.
#[inline]
pub fn current_cpu() -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_getcpu takes no arguments and only reads.
        u32::try_from(unsafe { libc::sched_getcpu() }).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_restricted_to_one_cpu_runs_there_until_widened_again() {
        let allowed = allowed_cpus();
        if cfg!(not(target_os = "linux")) {
            assert!(allowed.is_empty() && current_cpu().is_none());
            return;
        }
        assert!(!allowed.is_empty());
        std::thread::spawn(move || {
            for &cpu in &allowed {
                assert!(restrict_to(&[cpu]));
                assert_eq!(current_cpu(), Some(cpu as u32));
                assert_eq!(allowed_cpus(), vec![cpu]);
            }
            assert!(restrict_to(&allowed));
            assert_eq!(allowed_cpus(), allowed);
        })
        .join()
        .unwrap();
    }
}
