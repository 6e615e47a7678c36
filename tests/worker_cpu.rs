//! The worker does not share a CPU with the caller it works for: a worker
//! found on the caller's CPU at the start of a job moves elsewhere. (Its own
//! test binary: it pins the process-wide worker.)
//!
//! Tier 2: the worker leaves the shared CPU by narrowing its affinity and
//! widening it again; the kernel's load balancer may move it back before the
//! job reads its CPU, which it does when the other CPUs are busy. A failure
//! is judged against the host's measured noise (`tests/noise`,
//! docs/testing.md).

mod common;
mod noise;

use std::sync::Arc;

use perfwarden::chat::ChatRequest;
use perfwarden::chat::worker::{self, Tracing};

fn allowed_cpus() -> Vec<usize> {
    // SAFETY: the set lives on this frame; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

fn set_affinity(thread: libc::pid_t, cpus: &[usize]) {
    // SAFETY: as above; `thread` is a kernel thread id of this process.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        assert_eq!(
            libc::sched_setaffinity(thread, size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

#[test]
#[ignore = "tier 2, timing: the kernel's load balancer may move the worker back on a busy host"]
fn a_worker_on_the_callers_cpu_moves_off_it() {
    noise::judged(
        "worker_cpu::a_worker_on_the_callers_cpu_moves_off_it",
        moves_off_the_callers_cpu,
    );
}

fn moves_off_the_callers_cpu() {
    let cpus = allowed_cpus();
    if cpus.len() < 2 {
        eprintln!("one CPU: nothing to move to");
        return;
    }
    let tokenizer = common::tokenizer();
    let request = Arc::new(ChatRequest::single_user_message(
        "Test content ".repeat(5000),
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let call = || {
        runtime
            .block_on(worker::async_apply_mistral_chat_template_traced(
                tokenizer,
                request.clone(),
                Tracing::On,
            ))
            .unwrap()
            .1
            .expect("traced")
    };
    let worker_thread = call().os_thread.expect("the worker's kernel id") as libc::pid_t;
    let shared = cpus[0];
    for _ in 0..5 {
        // Put the worker on the caller's CPU: narrowing its set moves it there,
        // widening it again leaves it there.
        set_affinity(worker_thread, &[shared]);
        set_affinity(worker_thread, &cpus);
        set_affinity(0, &[shared]);
        let trace = call();
        set_affinity(0, &cpus);
        assert_eq!(trace.os_thread, Some(worker_thread as u32));
        assert_ne!(
            trace.cpu,
            Some(shared as u32),
            "the job ran on the caller's CPU"
        );
        assert!(trace.cpu.is_some());
    }
}
