//! The run token: whoever holds it runs a job, the worker or an inline
//! caller, so jobs never overlap.
//!
//! A plain token is taken with an atomic compare-and-swap, and on x86 that
//! locked instruction waits for every store the caller has pending. On the
//! small payload, beside the sync call, the inline path measured about 0.5%
//! (8 ns) slower with it than without it. So the token is biased, as some
//! JVMs bias their locks: a thread that has run [`BIAS_AFTER_RUNS`] inline
//! jobs in a row, with no other job between them, becomes the token's owner,
//! and the owner takes the token with plain stores and loads, raising a flag
//! of its own. Anyone else takes the token with the compare-and-swap and then
//! revokes the bias: a `membarrier` system call either makes the owner's
//! raised flag visible or makes the owner see the revocation, and the revoker
//! waits while the flag is up. That costs 12–30 µs here when the owner is
//! running, so a thread is biased only after a long streak, and an owner that
//! queues a job for the worker gives its bias up itself, at no cost. Without
//! `membarrier` (old kernels, seccomp filters) no thread is ever biased.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, Ordering, compiler_fence};

use super::worker::thread_tag;

/// How many inline runs in a row make their thread the token's owner: a
/// revocation costs about what the owner's way in saves over this many runs.
pub const BIAS_AFTER_RUNS: u64 = 4096;

/// Held by the worker, or by an inline caller that took the CAS.
static TOKEN: AtomicBool = AtomicBool::new(false);
/// The owner's flag, up while the owner runs a job (and briefly while it
/// tries to take the token); null when the token is not biased. Flags are
/// leaked, one per thread ever biased, so a revoker never reads a flag that
/// died with its thread.
static OWNER: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());
/// The thread of the last inline runs and how many it ran in a row. Written
/// only by the token's holder.
static STREAK_THREAD: AtomicU64 = AtomicU64::new(0);
static STREAK_RUNS: AtomicU64 = AtomicU64::new(0);
/// Revocations that needed the system call, for the probes.
static REVOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's owner flag, once the token has been biased toward it.
    static OWN_FLAG: Cell<*mut AtomicBool> = const { Cell::new(std::ptr::null_mut()) };
}

/// The token as an inline caller holds it.
pub(crate) enum InlineHold {
    /// Taken by the owner with plain stores: its flag is up.
    Owner(&'static AtomicBool),
    /// Taken with the compare-and-swap.
    Shared,
}

/// Takes the token for an inline run, if no one holds it.
#[inline]
pub(crate) fn try_take_inline() -> Option<InlineHold> {
    if let Some(flag) = own_flag_if_biased() {
        if flag.load(Ordering::Relaxed) {
            // A job of this thread's is running and asks for another: it
            // must wait for the token like anyone's (only this thread
            // writes its flag, so the load and the store below cannot race).
            return None;
        }
        flag.store(true, Ordering::Relaxed);
        // The flag's store stays before the check in the program; the
        // revoker's `membarrier` orders the two on the CPU.
        compiler_fence(Ordering::SeqCst);
        if std::ptr::eq(OWNER.load(Ordering::Acquire), flag) {
            return Some(InlineHold::Owner(flag));
        }
        flag.store(false, Ordering::Release);
    }
    take_shared()
}

/// This thread's flag, if the token is biased toward it now.
#[inline]
fn own_flag_if_biased() -> Option<&'static AtomicBool> {
    let owner = OWNER.load(Ordering::Relaxed);
    if owner.is_null() || owner != OWN_FLAG.with(Cell::get) {
        return None;
    }
    // SAFETY: flags are leaked, so they live as long as the process.
    Some(unsafe { &*owner })
}

/// The way in for everyone but the owner: the compare-and-swap, then the
/// bias revoked.
#[inline(never)]
fn take_shared() -> Option<InlineHold> {
    TOKEN
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .ok()?;
    revoke_bias();
    Some(InlineHold::Shared)
}

/// Gives the token back after an inline run.
#[inline]
pub(crate) fn release_inline(hold: InlineHold) {
    match hold {
        InlineHold::Owner(flag) => flag.store(false, Ordering::Release),
        InlineHold::Shared => {
            count_streak();
            TOKEN.store(false, Ordering::Release);
        }
    }
}

/// Takes the token for a job on the worker, waiting out a run in progress.
pub(crate) fn take_for_worker() {
    while TOKEN
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
    STREAK_RUNS.store(0, Ordering::Relaxed);
    revoke_bias();
}

pub(crate) fn release_for_worker() {
    TOKEN.store(false, Ordering::Release);
}

/// Gives up this thread's bias, if it has it. A caller does this before it
/// queues a job, so the worker need not revoke the bias with a system call.
#[inline]
pub(crate) fn give_up_bias() {
    if let Some(flag) = own_flag_if_biased()
        && !flag.load(Ordering::Relaxed)
    {
        // The owner is here and not running a job: clearing is enough. (A
        // job of its own that queues another keeps the bias: the worker
        // revokes it and waits for that job, as the plain token would.)
        let _ = OWNER.compare_exchange(
            std::ptr::from_ref(flag).cast_mut(),
            std::ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

/// Ends the bias, if any, and waits for the owner's run in progress. Called
/// with the token held, so no thread is biased meanwhile.
fn revoke_bias() {
    // Acquire: an owner that gave its bias up made its last job's writes
    // before clearing OWNER.
    if OWNER.load(Ordering::Acquire).is_null() {
        return;
    }
    let owner = OWNER.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if owner.is_null() {
        return;
    }
    // The owner raises its flag, then reads OWNER, with no fence between:
    // after this call each running thread has passed a full barrier, so
    // either the raised flag shows here or the owner reads null.
    if !membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) {
        // Registered, so this cannot fail; if it did, jobs could overlap.
        eprintln!("perfwarden: membarrier failed after registration; aborting");
        std::process::abort();
    }
    REVOCATIONS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: flags are leaked, so they live as long as the process.
    let flag = unsafe { &*owner };
    while flag.load(Ordering::Acquire) {
        std::hint::spin_loop();
    }
}

/// Counts an inline run by the calling thread, and biases the token toward
/// it after a long enough streak. Called with the token held.
fn count_streak() {
    let me = thread_tag();
    let runs = if STREAK_THREAD.load(Ordering::Relaxed) == me {
        STREAK_RUNS.load(Ordering::Relaxed) + 1
    } else {
        STREAK_THREAD.store(me, Ordering::Relaxed);
        1
    };
    STREAK_RUNS.store(runs, Ordering::Relaxed);
    if runs >= BIAS_AFTER_RUNS && membarrier_registered() {
        let own = OWN_FLAG.with(|own| {
            if own.get().is_null() {
                own.set(Box::into_raw(Box::new(AtomicBool::new(false))));
            }
            own.get()
        });
        OWNER.store(own, Ordering::Release);
    }
}

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

fn membarrier(command: libc::c_int) -> bool {
    // SAFETY: these membarrier commands take no pointers.
    unsafe { libc::syscall(libc::SYS_membarrier, command, 0, 0) == 0 }
}

const NOT_ASKED: u8 = 0;
const REGISTERING: u8 = 1;
const REGISTERED: u8 = 2;
const UNAVAILABLE: u8 = 3;
/// Where the registration for the expedited `membarrier` stands.
static MEMBARRIER: AtomicU8 = AtomicU8::new(NOT_ASKED);

/// Whether this process may use the expedited `membarrier`. Registering
/// takes 12–22 ms in a process with threads (the kernel waits for a grace
/// period), far too long for an event loop, so the first call starts it on a
/// thread of its own and says no until it has succeeded.
fn membarrier_registered() -> bool {
    match MEMBARRIER.load(Ordering::Acquire) {
        REGISTERED => true,
        NOT_ASKED => {
            if MEMBARRIER
                .compare_exchange(NOT_ASKED, REGISTERING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                let spawned = std::thread::Builder::new()
                    .name("perfwarden-membarrier".into())
                    .spawn(|| {
                        let done = if membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) {
                            REGISTERED
                        } else {
                            UNAVAILABLE
                        };
                        MEMBARRIER.store(done, Ordering::Release);
                    });
                if spawned.is_err() {
                    MEMBARRIER.store(UNAVAILABLE, Ordering::Release);
                }
            }
            false
        }
        _ => false,
    }
}

/// Whether the token can never be biased in this process: the `membarrier`
/// registration (started by the first long streak) has failed. A thread
/// that keeps running inline is biased once the registration succeeds; this
/// says when that will not happen, so a caller can wait for the bias itself.
pub fn bias_unavailable() -> bool {
    MEMBARRIER.load(Ordering::Acquire) == UNAVAILABLE
}

/// Whether the token is biased toward the calling thread now.
pub fn is_biased_to_this_thread() -> bool {
    own_flag_if_biased().is_some()
}

/// How many times a bias was revoked with the system call; part of
/// [`super::worker::stats`].
pub(crate) fn revocations() -> u64 {
    REVOCATIONS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only unit test that takes the token, so no other breaks its streak.
    #[test]
    fn an_owner_inside_its_own_run_neither_takes_the_token_again_nor_drops_the_bias() {
        // Biased after the streak once the registration has finished, however
        // long that takes on a busy host; never, if it failed.
        while !is_biased_to_this_thread() {
            assert!(
                !bias_unavailable(),
                "never biased: membarrier is unavailable"
            );
            if let Some(hold) = try_take_inline() {
                release_inline(hold);
            }
        }
        let outer = try_take_inline().expect("the owner takes the token");
        assert!(matches!(outer, InlineHold::Owner(_)));
        assert!(
            try_take_inline().is_none(),
            "one thread took the token twice"
        );
        give_up_bias();
        assert!(
            is_biased_to_this_thread(),
            "the bias was given up while the owner's job runs"
        );
        release_inline(outer);
        give_up_bias();
        assert!(!is_biased_to_this_thread());
    }
}
