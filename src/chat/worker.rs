//! `async_apply_mistral_chat_template`: the chat template run off the caller's
//! event loop, on one process-wide background worker thread.
//!
//! # Design
//!
//! One worker thread, started when the first job needs it (an inline run
//! does not), runs jobs one at a time in submission order. A hand-off to a
//! sleeping thread and back costs tens of microseconds on small VMs (a futex
//! wake each way), which is several times the small request's whole
//! tokenization and a few percent of the large one's, so:
//!
//! - **The worker stays warm.** After each job it polls the queue for
//!   [`WORKER_SPIN`] before it parks, so a request that follows another
//!   starts without a wake-up.
//! - **The caller polls cooperatively.** The waiting future checks for the
//!   answer and, for up to [`CALLER_SPIN`], re-schedules itself instead of
//!   sleeping: other tasks on the event loop keep running between its polls,
//!   and the answer is picked up without waking a parked runtime thread.
//!   Each poll keeps checking for up to [`POLL_SPIN`] with the CPU's pause
//!   hint before it yields: going round the event loop costs two system
//!   calls, and a caller that did so on every check picked the answer up
//!   later and slowed the job running on the other CPU.
//!   After that it sleeps on the channel like any future.
//! - **Tiny requests run inline when the worker is idle.** A request of at
//!   most [`INLINE_MAX_BYTES`] of estimated work blocks the event loop for well under
//!   1 ms, less than the hand-off would cost. It runs on the caller only when
//!   no job is queued or running, and takes the same run token as the worker,
//!   so jobs still never overlap and keep their order. Inline runs are
//!   counted in [`WorkerStats::jobs_inline`]. This path is what the small
//!   request pays for, so it is kept to a few dozen instructions, none of
//!   them locked once a thread runs inline steadily (the token is then
//!   biased toward that thread, see [`super::run_token`]): the runtime check
//!   is remembered per waker, the inline count is a plain increment under
//!   the run token, and [`async_apply_mistral_chat_template`]'s future is
//!   written by hand ([`AsyncApply`]): its first poll runs the request
//!   itself instead of going through [`Executor::run`], so the tokens come
//!   back as the sync function returns them, without a trace slot or a
//!   nested future.
//! - **The worker keeps its own CPU.** A caller that wakes the parked worker
//!   often gets it placed on the caller's CPU; polling each other there, both
//!   run at half speed until the scheduler separates them (seconds, here).
//!   The worker moves itself off the caller's CPU when it finds itself there
//!   at the start of a job.
//!
//! - **Nothing waits forever and nothing is left held.** The worker runs a
//!   job inside `catch_unwind` together with the drop of everything it
//!   captured (a cancelled job's request whose `Drop` panics), and gives the
//!   run token and queue depth back on every path. A wrapper call made from
//!   inside a job (say, from a `Borrow` implementation) would wait for
//!   itself; it is refused with [`ChatTemplateError::CalledFromJob`].
//!
//! Measured with the paired sampler (240 alternating pairs of sync and async
//! batches, `perfwarden report`, a 2-core VM), the wrapper costs +0.36% to
//! +0.46% over the sync call on the contract's small payload, +0.16% to
//! +0.73% on the medium one and +0.11% to +0.35% on the large one (six
//! reports); the effect of each step is in docs/tuning-log.md.

use std::borrow::Borrow;
use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::task::{Context, Poll, RawWakerVTable, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::error::ChatTemplateError;
use super::run_token;
use super::template::{ChatRequest, apply_mistral_chat_template};
use super::tokenizer::MistralTokenizer;
use crate::affinity::{self, current_cpu};
use crate::stack_shift::StackShift;

/// How long the worker polls for the next job before it parks.
pub const WORKER_SPIN: Duration = Duration::from_millis(1);
/// How long a waiting caller re-polls before it sleeps until woken;
/// `PERFWARDEN_CALLER_SPIN_US` overrides it (read once, when the worker starts).
pub const CALLER_SPIN: Duration = Duration::from_millis(5);
/// How long one poll of a waiting caller checks for the answer before it
/// gives the event loop back (well under the 1 ms it may block the loop).
pub const POLL_SPIN: Duration = Duration::from_micros(20);
/// Requests with at most this much estimated work
/// ([`ChatRequest::work_bytes`]: every string, number and bracket the
/// template may process) may run inline on an idle worker.
/// The slowest text found costs ~35 ns a byte here (one long word or a run
/// of spaces, `docs/tokenizer-cliffs.md`; the contract's payloads ~5), so an
/// inline request blocks the event loop for under 0.1 ms.
pub const INLINE_MAX_BYTES: usize = 2 * 1024;

/// Counters of the process-wide executor, for the diagnosis probes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkerStats {
    pub executors_created: u64,
    pub worker_threads_started: u64,
    pub jobs_submitted: u64,
    /// Jobs that finished without panicking, inline ones included.
    pub jobs_completed: u64,
    pub jobs_inline: u64,
    pub jobs_cancelled: u64,
    pub jobs_panicked: u64,
    /// The most jobs ever seen running at the same time.
    pub max_concurrent_jobs: u64,
    /// Jobs queued or running on the worker right now.
    pub queue_depth: u64,
    /// Times the run token's bias was revoked with a system call (see
    /// [`super::run_token`]).
    pub bias_revocations: u64,
}

#[derive(Default)]
struct Counters {
    executors_created: AtomicU64,
    worker_threads_started: AtomicU64,
    jobs_submitted: AtomicU64,
    jobs_completed: AtomicU64,
    jobs_inline: AtomicU64,
    jobs_cancelled: AtomicU64,
    jobs_panicked: AtomicU64,
    running_now: AtomicU64,
    max_concurrent_jobs: AtomicU64,
    queue_depth: AtomicU64,
}

static COUNTERS: Counters = Counters {
    executors_created: AtomicU64::new(0),
    worker_threads_started: AtomicU64::new(0),
    jobs_submitted: AtomicU64::new(0),
    jobs_completed: AtomicU64::new(0),
    jobs_inline: AtomicU64::new(0),
    jobs_cancelled: AtomicU64::new(0),
    jobs_panicked: AtomicU64::new(0),
    running_now: AtomicU64::new(0),
    max_concurrent_jobs: AtomicU64::new(0),
    queue_depth: AtomicU64::new(0),
};

/// A snapshot of the executor's counters (relaxed atomics, no locks).
pub fn stats() -> WorkerStats {
    let c = &COUNTERS;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    // Inline jobs are counted once, on the path that must stay cheapest.
    let inline = load(&c.jobs_inline);
    WorkerStats {
        executors_created: load(&c.executors_created),
        worker_threads_started: load(&c.worker_threads_started),
        jobs_submitted: load(&c.jobs_submitted) + inline,
        jobs_completed: load(&c.jobs_completed) + inline,
        jobs_inline: inline,
        jobs_cancelled: load(&c.jobs_cancelled),
        jobs_panicked: load(&c.jobs_panicked),
        max_concurrent_jobs: load(&c.max_concurrent_jobs),
        queue_depth: load(&c.queue_depth),
        bias_revocations: run_token::revocations(),
    }
}

/// A small number unique to the calling OS thread, assigned on first use.
pub fn thread_tag() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        // Zero until first use; a const initializer keeps the read cheap.
        static TAG: Cell<u64> = const { Cell::new(0) };
    }
    TAG.with(|tag| {
        if tag.get() == 0 {
            tag.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        tag.get()
    })
}

/// Where and when one job ran, as observed by the thread that ran it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobTrace {
    pub thread: u64,
    pub inline: bool,
    pub span: (Instant, Instant),
    /// The kernel's id of the thread: ids grow as threads are created, so a
    /// job on a thread newer than a snapshot ran on a new thread.
    pub os_thread: Option<u32>,
    /// The CPU the job started on.
    pub cpu: Option<u32>,
}

/// The calling thread's kernel id (`/proc/thread-self` names it).
pub fn os_thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Runs `job` on this thread and, if asked, records where and when it ran.
/// A panic is caught and returned as its message.
#[inline]
pub fn observe<T>(
    job: impl FnOnce() -> T,
    inline: bool,
    tracing: Tracing,
) -> (Result<T, String>, Option<JobTrace>) {
    let started = trace_start(tracing);
    let result = catch_unwind(AssertUnwindSafe(job)).map_err(|p| panic_message(p.as_ref()));
    (result, trace_end(started, inline))
}

/// The start of a trace, if `tracing` asks for one.
#[inline]
fn trace_start(tracing: Tracing) -> Option<(Instant, Option<u32>)> {
    (tracing == Tracing::On).then(|| (Instant::now(), current_cpu()))
}

/// The trace of a job that started at `started` and ends now.
#[inline]
fn trace_end(started: Option<(Instant, Option<u32>)>, inline: bool) -> Option<JobTrace> {
    started.map(|(start, cpu)| JobTrace {
        thread: thread_tag(),
        inline,
        span: (start, Instant::now()),
        os_thread: os_thread_id(),
        cpu,
    })
}

/// Whether to trace a job. Off on every path a caller measures: reading the
/// clock twice costs about 50 ns here, and even carrying an empty trace back
/// through the futures cost the inline path a few nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracing {
    Off,
    On,
}

/// Whether a job may run on the caller when the worker is idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    Worker,
    InlineWhenIdle,
}

/// A job as the worker receives it.
pub type Job = Box<dyn FnOnce() + Send>;

impl Placement {
    /// Tiny requests may run inline; the rest always go to the worker.
    pub fn for_request(request: &ChatRequest) -> Self {
        if request.work_bytes() <= INLINE_MAX_BYTES {
            Placement::InlineWhenIdle
        } else {
            Placement::Worker
        }
    }
}

enum Message {
    Job(Job),
    Stop,
}

/// A single background worker thread and its queue.
pub struct Executor {
    sender: mpsc::Sender<Message>,
    caller_spin: Duration,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs a job on the worker, counting it and recording where it ran.
fn execute<T>(
    job: impl FnOnce() -> T,
    tracing: Tracing,
) -> Result<(T, Option<JobTrace>), ChatTemplateError> {
    let running = COUNTERS.running_now.fetch_add(1, Ordering::Relaxed) + 1;
    if running > COUNTERS.max_concurrent_jobs.load(Ordering::Relaxed) {
        COUNTERS
            .max_concurrent_jobs
            .fetch_max(running, Ordering::Relaxed);
    }
    let started = trace_start(tracing);
    let result = catch_unwind(AssertUnwindSafe(job));
    COUNTERS.running_now.fetch_sub(1, Ordering::Relaxed);
    match result {
        Ok(value) => {
            COUNTERS.jobs_completed.fetch_add(1, Ordering::Relaxed);
            Ok((value, trace_end(started, false)))
        }
        Err(panic) => Err(panicked(panic.as_ref())),
    }
}

/// Counts a panicked job and turns its payload into the caller's error.
#[cold]
fn panicked(payload: &(dyn std::any::Any + Send)) -> ChatTemplateError {
    COUNTERS.jobs_panicked.fetch_add(1, Ordering::Relaxed);
    ChatTemplateError::JobPanicked(panic_message(payload))
}

thread_local! {
    /// Set while this thread runs a job, inline or on the worker.
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as running a job until dropped.
struct JobScope;

impl JobScope {
    #[inline]
    fn enter() -> Self {
        IN_JOB.with(|in_job| in_job.set(true));
        JobScope
    }
}

impl Drop for JobScope {
    #[inline]
    fn drop(&mut self) {
        IN_JOB.with(|in_job| in_job.set(false));
    }
}

/// A job that calls the wrapper again would wait for itself: the worker (or
/// the inline caller) is busy with the job that waits.
#[cold]
fn called_from_job() -> ChatTemplateError {
    ChatTemplateError::CalledFromJob
}

/// The run token, taken by a caller that found the worker idle: it may run
/// one job inline. Inline jobs hold the token (or, biased, the owner's
/// flag), which excludes every other job, so they are not counted for
/// concurrency.
struct InlineClaim(run_token::InlineHold);

impl InlineClaim {
    /// The token, if no job is queued or running.
    #[inline]
    fn take() -> Option<Self> {
        if COUNTERS.queue_depth.load(Ordering::Acquire) != 0 {
            return None;
        }
        run_token::try_take_inline().map(Self)
    }

    /// Runs `job` here, counts it and gives the token back.
    #[inline]
    fn run<T>(self, job: impl FnOnce() -> T) -> Result<T, ChatTemplateError> {
        self.run_fallible(|| Ok(job()))
    }

    /// [`InlineClaim::run`] for a job that can fail: its error comes back
    /// as is, with no nested `Result` to move through the future.
    #[inline]
    fn run_fallible<T>(
        self,
        job: impl FnOnce() -> Result<T, ChatTemplateError>,
    ) -> Result<T, ChatTemplateError> {
        let scope = JobScope::enter();
        let outcome = catch_unwind(AssertUnwindSafe(job));
        drop(scope);
        if outcome.is_ok() {
            // Only the token's holder writes this counter, so a plain
            // increment, made before the token is given back, is exact and
            // skips a locked instruction (~5 ns).
            let inline_jobs = &COUNTERS.jobs_inline;
            inline_jobs.store(inline_jobs.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        run_token::release_inline(self.0);
        match outcome {
            Ok(result) => result,
            Err(panic) => Err(panicked(panic.as_ref())),
        }
    }
}

/// Every job the worker runs goes through here: the instruction-count
/// benchmark turns callgrind's collection on at this function's entry.
#[inline(never)]
pub fn run_job(job: Job) {
    job()
}

/// The CPU of the last caller that queued a job, and the CPU the worker
/// started its last job on (`u32::MAX`: none yet).
static CALLER_CPU: AtomicU32 = AtomicU32::new(u32::MAX);
static WORKER_CPU: AtomicU32 = AtomicU32::new(u32::MAX);

/// Moves the worker off `cpu` (keeping it on the CPUs it may use otherwise).
/// A caller that wakes the parked worker often gets it placed on its own CPU
/// (the scheduler's wake-affine rule), and there the two share one CPU while
/// the other idles until the load balancer notices, which measured here took
/// seconds, with each job ~1.6x slower. The worker is the one that waits for
/// no one, so it steps aside, only when sharing: two affinity calls, and a
/// sporadic request's dispatch then takes tens of microseconds more.
fn leave_cpu(cpu: u32) {
    let allowed = affinity::allowed_cpus();
    let elsewhere: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|&other| other != cpu as usize)
        .collect();
    // Narrowing the set moves the thread now; widening it again does not
    // move it back.
    if !elsewhere.is_empty() && affinity::restrict_to(&elsewhere) {
        affinity::restrict_to(&allowed);
    }
}

/// Whether a job may be given to the executor now: not from inside a job,
/// polled inside a runtime (`in_runtime`, from [`in_runtime`]), and before
/// shutdown. The inline path
/// needs no more of the executor than this, so it does not look the executor
/// up.
#[inline]
fn admit(in_runtime: bool) -> Result<(), ChatTemplateError> {
    if IN_JOB.with(Cell::get) {
        return Err(called_from_job());
    }
    if !in_runtime {
        return Err(no_runtime());
    }
    if SHUT_DOWN.load(Ordering::Acquire) {
        return Err(shut_down());
    }
    Ok(())
}

#[cold]
fn no_runtime() -> ChatTemplateError {
    ChatTemplateError::NoRuntime
}

#[cold]
fn shut_down() -> ChatTemplateError {
    ChatTemplateError::WorkerUnavailable("the worker has shut down".into())
}

/// Set by [`Executor::shutdown`]; there is one executor per process.
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

/// How many jobs the worker runs at one stack depth before it draws another.
const JOBS_PER_STACK_DEPTH: usize = 64;

fn worker_loop(receiver: mpsc::Receiver<Message>) {
    // Jobs run at a stack depth drawn afresh every few dozen jobs. With the
    // one depth the thread starts at, a build's jobs ran 0.5% to 4.8% slower
    // than the caller's depending on that depth alone (see `stack_shift`);
    // keeping a depth for a while keeps the stack's lines in cache.
    let mut shift = StackShift::default();
    // Polling follows a job only: a worker that has run none yet parks at
    // once, so starting it (as the benchmarks' setup does) leaves no thread
    // busy beside the measured one.
    let mut after_job = false;
    while shift.run(|| serve(&receiver, JOBS_PER_STACK_DEPTH, &mut after_job)) {}
}

/// Runs up to `jobs` jobs; false once the worker is to stop.
fn serve(receiver: &mpsc::Receiver<Message>, jobs: usize, after_job: &mut bool) -> bool {
    for _ in 0..jobs {
        match next_message(receiver, *after_job) {
            Some(Message::Job(job)) => {
                run_token::take_for_worker();
                let mut cpu = current_cpu();
                if let Some(shared) = cpu
                    && shared == CALLER_CPU.load(Ordering::Relaxed)
                {
                    leave_cpu(shared);
                    cpu = current_cpu();
                }
                if let Some(cpu) = cpu {
                    WORKER_CPU.store(cpu, Ordering::Relaxed);
                }
                let scope = JobScope::enter();
                // The job catches its own panics; this catches the rest, such
                // as a captured request whose `Drop` panics when the job is
                // skipped, so that nothing stays held and the worker goes on.
                let outcome = catch_unwind(AssertUnwindSafe(|| run_job(job)));
                drop(scope);
                run_token::release_for_worker();
                COUNTERS.queue_depth.fetch_sub(1, Ordering::Relaxed);
                if let Err(panic) = outcome {
                    panicked(panic.as_ref());
                }
                *after_job = true;
            }
            Some(Message::Stop) | None => return false,
        }
    }
    true
}

/// The next message, polling for [`WORKER_SPIN`] after a job before parking;
/// `None` once every sender is gone.
fn next_message(receiver: &mpsc::Receiver<Message>, after_job: bool) -> Option<Message> {
    match receiver.try_recv() {
        Ok(message) => return Some(message),
        Err(mpsc::TryRecvError::Disconnected) => return None,
        Err(mpsc::TryRecvError::Empty) => {}
    }
    let deadline = Instant::now()
        + if after_job {
            WORKER_SPIN
        } else {
            Duration::ZERO
        };
    while Instant::now() < deadline {
        if let Ok(message) = receiver.try_recv() {
            return Some(message);
        }
        // Yield, not just spin: when the scheduler puts the caller on this
        // CPU, spinning would keep it off for a timeslice.
        std::thread::yield_now();
    }
    receiver.recv().ok()
}

impl Executor {
    fn start() -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("perfwarden-tokenize".into())
            .spawn(move || {
                COUNTERS
                    .worker_threads_started
                    .fetch_add(1, Ordering::Relaxed);
                thread_tag();
                // On exit, for whatever reason, the receiver is dropped: queued
                // jobs are dropped with it and their callers get an error.
                worker_loop(receiver);
            })?;
        COUNTERS.executors_created.fetch_add(1, Ordering::Relaxed);
        let caller_spin = std::env::var("PERFWARDEN_CALLER_SPIN_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(CALLER_SPIN, Duration::from_micros);
        Ok(Self {
            sender,
            caller_spin,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `job` on the worker (or inline, see [`Placement`]) and returns its
    /// value with a trace of where it ran. A panic comes back as
    /// [`ChatTemplateError::JobPanicked`]; dropping the future cancels a job
    /// that has not started.
    pub async fn run<T, F>(
        &self,
        placement: Placement,
        tracing: Tracing,
        job: F,
    ) -> Result<(T, Option<JobTrace>), ChatTemplateError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        admit(std::future::poll_fn(|cx| Poll::Ready(in_runtime(cx.waker()))).await)?;
        if placement == Placement::InlineWhenIdle
            && let Some(claim) = InlineClaim::take()
        {
            return claim.run(move || {
                let started = trace_start(tracing);
                let value = job();
                (value, trace_end(started, true))
            });
        }
        self.submit(tracing, job)?.await
    }

    /// Queues `job` for the worker; the reply carries its outcome.
    fn submit<T, F>(
        &self,
        tracing: Tracing,
        job: F,
    ) -> Result<Reply<(T, Option<JobTrace>)>, ChatTemplateError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        COUNTERS.jobs_submitted.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let task: Job = Box::new(move || {
            if reply.is_closed() {
                COUNTERS.jobs_cancelled.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let _ = reply.send(execute(job, tracing));
        });
        if let Some(cpu) = current_cpu() {
            CALLER_CPU.store(cpu, Ordering::Relaxed);
        }
        run_token::give_up_bias();
        COUNTERS.queue_depth.fetch_add(1, Ordering::AcqRel);
        if self.sender.send(Message::Job(task)).is_err() {
            COUNTERS.queue_depth.fetch_sub(1, Ordering::Relaxed);
            return Err(ChatTemplateError::WorkerUnavailable(
                "the worker thread has stopped".into(),
            ));
        }
        Ok(Reply {
            answer,
            spin_until: Instant::now() + self.caller_spin,
        })
    }

    /// Stops accepting jobs, lets the queued ones finish and joins the worker.
    /// Later calls fail with [`ChatTemplateError::WorkerUnavailable`].
    pub fn shutdown(&self) {
        SHUT_DOWN.store(true, Ordering::Release);
        let _ = self.sender.send(Message::Stop);
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// The answer of a queued job: re-polled cooperatively for [`CALLER_SPIN`],
/// then awaited normally.
struct Reply<T> {
    answer: oneshot::Receiver<Result<T, ChatTemplateError>>,
    spin_until: Instant,
}

impl<T> Future for Reply<T> {
    type Output = Result<T, ChatTemplateError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = self.try_answer() {
            return Poll::Ready(outcome);
        }
        let now = Instant::now();
        if now < self.spin_until {
            if current_cpu().is_some_and(|cpu| cpu == WORKER_CPU.load(Ordering::Relaxed)) {
                // Sharing the worker's CPU (the scheduler moved one of us):
                // yielding leaves the two polling each other at half speed.
                // A short sleep gives the worker the CPU, and a timer wake-up
                // (unlike the worker's) is free to put the caller on an idle
                // CPU. 50 µs blocks the event loop far less than the 1 ms
                // allowed.
                std::thread::sleep(Duration::from_micros(50));
            } else {
                // Wait here a little with the CPU's pause hint: a caller that
                // went round the event loop on every check (a yield and the
                // runtime's own I/O poll, two system calls) picked the answer
                // up ~2 µs late and slowed the job on the other CPU by ~1%.
                let give_up = now + POLL_SPIN;
                while Instant::now() < give_up {
                    for _ in 0..8 {
                        std::hint::spin_loop();
                    }
                    if let Some(outcome) = self.try_answer() {
                        return Poll::Ready(outcome);
                    }
                }
                // Let the worker run if it comes to share this CPU.
                std::thread::yield_now();
            }
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match Pin::new(&mut self.answer).poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            Poll::Ready(Err(_)) => Poll::Ready(Err(worker_stopped())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Reply<T> {
    /// The job's outcome, if it has come (or the worker is gone).
    fn try_answer(&mut self) -> Option<Result<T, ChatTemplateError>> {
        match self.answer.try_recv() {
            Ok(result) => Some(result),
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(worker_stopped())),
            Err(oneshot::error::TryRecvError::Empty) => None,
        }
    }
}

#[cold]
fn worker_stopped() -> ChatTemplateError {
    ChatTemplateError::WorkerUnavailable("the worker stopped before answering".into())
}

/// Whether the future is polled inside a tokio runtime (outside one, nothing
/// would ever poll it again once the job is queued). Asking tokio costs
/// ~12 ns, as much as the rest of the inline path: it clones the runtime's
/// handle, two atomic operations on a counter all runtime threads share. So
/// the last waker seen inside a runtime on this thread is trusted from then
/// on (a waker belongs to its runtime; `block_on`'s is the same for every
/// call); a spawned task's id proves a new one cheaply.
#[inline]
fn in_runtime(waker: &Waker) -> bool {
    type WakerKey = (*const (), *const RawWakerVTable);
    thread_local! {
        static RUNTIME_WAKER: Cell<WakerKey> = const { Cell::new((std::ptr::null(), std::ptr::null())) };
    }
    let key: WakerKey = (waker.data(), waker.vtable());
    RUNTIME_WAKER.with(|seen| {
        if seen.get() == key {
            return true;
        }
        let inside = asks_tokio_in_runtime();
        if inside {
            seen.set(key);
        }
        inside
    })
}

/// Tokio's own answer to [`in_runtime`], for a waker not seen before on this
/// thread: kept out of line so the check every request makes stays small.
#[cold]
#[inline(never)]
fn asks_tokio_in_runtime() -> bool {
    tokio::task::try_id().is_some() || tokio::runtime::Handle::try_current().is_ok()
}

/// The process-wide executor, created on first use.
#[inline]
pub fn global() -> Result<&'static Executor, ChatTemplateError> {
    static GLOBAL: OnceLock<Result<Executor, String>> = OnceLock::new();
    match GLOBAL.get_or_init(|| Executor::start().map_err(|e| e.to_string())) {
        Ok(executor) => Ok(executor),
        Err(e) => Err(ChatTemplateError::WorkerUnavailable(format!(
            "cannot start the worker thread: {e}"
        ))),
    }
}

/// [`apply_mistral_chat_template`] on the background worker: the same tokens
/// and the same errors, without blocking the caller's event loop. Takes the
/// tokenizer and request owned or shared (`Arc`, `&'static`); neither is copied.
/// Await the returned future like an `async fn`'s.
pub fn async_apply_mistral_chat_template<Tk, Rq>(tokenizer: Tk, request: Rq) -> AsyncApply<Tk, Rq>
where
    Tk: Borrow<MistralTokenizer> + Send + 'static,
    Rq: Borrow<ChatRequest> + Send + 'static,
{
    AsyncApply(ApplyState::Start { tokenizer, request })
}

/// The future of [`async_apply_mistral_chat_template`]. Written by hand, not
/// as an `async fn`: the inline path then runs in its first poll with no
/// nested future or trace slot around it, and one state write (to `Done`,
/// which drops the tokenizer and request). Callgrind counted 20 fewer
/// instructions a call than the `async fn`, a fifth of what the inline path
/// added to the sync call.
#[must_use = "futures do nothing unless awaited"]
pub struct AsyncApply<Tk, Rq>(ApplyState<Tk, Rq>);

enum ApplyState<Tk, Rq> {
    Start { tokenizer: Tk, request: Rq },
    Queued(TokensReply),
    Done,
}

/// The answer of a queued tokenization (untraced: its trace is `None`).
type TokensReply = Reply<(Result<Vec<u32>, ChatTemplateError>, Option<JobTrace>)>;

// The tokenizer and request are never pinned: they are only borrowed, or
// moved into a job, and only from an unstarted future.
impl<Tk, Rq> Unpin for AsyncApply<Tk, Rq> {}

impl<Tk, Rq> Future for AsyncApply<Tk, Rq>
where
    Tk: Borrow<MistralTokenizer> + Send + 'static,
    Rq: Borrow<ChatRequest> + Send + 'static,
{
    type Output = Result<Vec<u32>, ChatTemplateError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let state = &mut self.get_mut().0;
        if let ApplyState::Start { tokenizer, request } = state {
            let (tokenizer, request) = (&*tokenizer, &*request);
            if let Err(e) = admit(in_runtime(cx.waker())) {
                *state = ApplyState::Done;
                return Poll::Ready(Err(e));
            }
            if Placement::for_request(request.borrow()) == Placement::InlineWhenIdle
                && let Some(claim) = InlineClaim::take()
            {
                let result = claim.run_fallible(|| {
                    apply_mistral_chat_template(tokenizer.borrow(), request.borrow())
                });
                *state = ApplyState::Done;
                return Poll::Ready(result);
            }
            let ApplyState::Start { tokenizer, request } =
                std::mem::replace(state, ApplyState::Done)
            else {
                unreachable!("matched above")
            };
            let job = move || apply_mistral_chat_template(tokenizer.borrow(), request.borrow());
            match global().and_then(|executor| executor.submit(Tracing::Off, job)) {
                Ok(reply) => *state = ApplyState::Queued(reply),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        match state {
            ApplyState::Queued(reply) => {
                let outcome = std::task::ready!(Pin::new(reply).poll(cx));
                *state = ApplyState::Done;
                Poll::Ready(outcome.and_then(|(result, _)| result))
            }
            _ => panic!("async_apply_mistral_chat_template's future polled after it completed"),
        }
    }
}

/// [`async_apply_mistral_chat_template`], also telling where and when the
/// job ran if `tracing` is on.
pub async fn async_apply_mistral_chat_template_traced<Tk, Rq>(
    tokenizer: Tk,
    request: Rq,
    tracing: Tracing,
) -> Result<(Vec<u32>, Option<JobTrace>), ChatTemplateError>
where
    Tk: Borrow<MistralTokenizer> + Send + 'static,
    Rq: Borrow<ChatRequest> + Send + 'static,
{
    let placement = Placement::for_request(request.borrow());
    let (result, trace) = global()?
        .run(placement, tracing, move || {
            apply_mistral_chat_template(tokenizer.borrow(), request.borrow())
        })
        .await?;
    result.map(|tokens| (tokens, trace))
}
