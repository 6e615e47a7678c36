//! The calling thread's CPUs: which it may run on, which it runs on, and
//! narrowing the first (another thread's too). Linux only; elsewhere
//! nothing is known or pinned.

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
    restrict_thread_to(0, cpus)
}

/// As [`restrict_to`], for the thread with kernel id `tid` (0: the calling
/// thread; a process's id names its main thread).
pub fn restrict_thread_to(tid: u32, cpus: &[usize]) -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: as in `allowed_cpus`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus.iter().filter(|&&cpu| cpu < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(cpu, &mut set);
        }
        let Ok(tid) = libc::pid_t::try_from(tid) else {
            return false;
        };
        libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set) == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (tid, cpus);
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

    #[test]
    fn another_thread_is_restricted_by_its_kernel_id() {
        let allowed = allowed_cpus();
        if cfg!(not(target_os = "linux")) {
            assert!(!restrict_thread_to(1, &[0]));
            return;
        }
        let cpu = *allowed.last().unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (pinned_tx, pinned_rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            // SAFETY: gettid takes no arguments and only reads.
            tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
            pinned_rx.recv().unwrap();
            (allowed_cpus(), current_cpu())
        });
        assert!(restrict_thread_to(tid_rx.recv().unwrap(), &[cpu]));
        pinned_tx.send(()).unwrap();
        assert_eq!(other.join().unwrap(), (vec![cpu], Some(cpu as u32)));
        // The calling thread kept its own CPUs.
        assert_eq!(allowed_cpus(), allowed);
    }
}
