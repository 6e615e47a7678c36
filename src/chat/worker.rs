//! `async_apply_mistral_chat_template`: the chat template run off the caller's
//! event loop, on one process-wide background worker thread.
//!
//! # Design
//!
//! One worker thread, started when the first job needs it (an inline run
//! does not), runs jobs one at a time in submission order. How a caller
//! waits for its job decides what the wrapper costs: a caller that polls
//! for the whole job keeps a second CPU busy and competes with the worker
//! for it on a loaded machine, and a caller that sleeps until the worker
//! wakes it pays the wake-up, which on a virtual machine whose CPU has
//! halted takes tens of microseconds (docs/async-wrapper.md has the
//! figures). So:
//!
//! - **A caller sleeps through a long job and polls for a short one.** A
//!   caller that polls for its answer keeps a second CPU busy for the whole
//!   job and, on a loaded machine, competes with the worker for it. A caller
//!   that sleeps pays the wake-up instead, which on a virtual machine whose
//!   CPU has halted is tens of microseconds: next to nothing for a job of
//!   milliseconds, several percent of one of a few hundred microseconds. So
//!   the worker keeps an average of its time per byte of estimated work
//!   ([`ChatRequest::work_bytes`]), and a caller whose job goes straight to
//!   an idle worker and is predicted to take at most [`CALLER_POLL`] polls
//!   cooperatively (each poll checks for at most [`POLL_SPIN`], then gives
//!   the event loop back) until a little past the predicted end, then
//!   sleeps. Every other caller sleeps until answered. `PERFWARDEN_CALLER_POLL_US`
//!   moves the threshold: higher buys wall clock with CPU, 0 never polls.
//!   Waking a sleeping caller shortly before the predicted end, from an
//!   alarm thread or from a timer on its own event loop, was measured to
//!   cost more than it saved (docs/async-wrapper.md).
//! - **The worker polls briefly after a job** ([`WORKER_SPIN`]) before it
//!   parks, so the next request of a caller that sends them back to back
//!   starts without a wake-up.
//! - **Tiny requests run inline when the worker is idle.** A request of at
//!   most [`INLINE_MAX_BYTES`] of estimated work blocks the event loop for
//!   well under the event-loop contract's 1 ms, less than the hand-off
//!   would cost. It runs on the caller only when no job is queued or
//!   running, and takes the same run token as the worker, so jobs never
//!   overlap and keep their order. Inline runs are counted in
//!   [`WorkerStats::jobs_inline`].
//! - **Nothing waits forever and nothing is left held.** The worker runs a
//!   job inside `catch_unwind` together with the drop of everything it
//!   captured (a cancelled job's request whose `Drop` panics), and gives the
//!   run token and queue depth back on every path. A wrapper call made from
//!   inside a job (say, from a `Borrow` implementation) would wait for
//!   itself; it is refused with [`ChatTemplateError::CalledFromJob`]. Every
//!   poll loop has a deadline.
//!
//! What each choice measured, against the designs tried before it, is in
//! docs/async-wrapper.md.

use std::borrow::Borrow;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::error::ChatTemplateError;
use super::template::{ChatRequest, apply_mistral_chat_template};
use super::tokenizer::MistralTokenizer;
use crate::affinity::current_cpu;
use crate::stack_shift::StackShift;

/// How long the worker polls for the next job after one before it parks.
pub const WORKER_SPIN: Duration = Duration::from_micros(50);
/// A waiting caller whose job is predicted to take at most this long polls
/// for its answer instead of sleeping. `PERFWARDEN_CALLER_POLL_US`
/// overrides it (read once, when the worker starts; 0: never poll).
pub const CALLER_POLL: Duration = Duration::from_micros(500);
/// How long past its job's predicted end a polling caller goes on polling
/// before it sleeps: a bound on what a wrong prediction costs.
const POLL_OVERRUN: Duration = Duration::from_micros(200);
/// How long one poll of a waiting caller checks for the answer before it
/// gives the event loop back (well under the 1 ms it may block the loop).
pub const POLL_SPIN: Duration = Duration::from_micros(20);
/// Requests with at most this much estimated work
/// ([`ChatRequest::work_bytes`]: every string, number and bracket the
/// template may process) may run inline on an idle worker. The slowest text
/// per byte (docs/tokenizer-cliffs.md) keeps such a run far under the
/// event-loop contract's 1 ms.
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
/// clock twice per job is not free, and the trace is carried back through
/// the futures.
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
    caller_poll: Duration,
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
    fn enter() -> Self {
        IN_JOB.with(|in_job| in_job.set(true));
        JobScope
    }
}

impl Drop for JobScope {
    fn drop(&mut self) {
        IN_JOB.with(|in_job| in_job.set(false));
    }
}

/// Held by whoever runs a job, the worker or an inline caller, so that jobs
/// never overlap.
static RUN_TOKEN: AtomicBool = AtomicBool::new(false);

fn try_take_run_token() -> bool {
    RUN_TOKEN
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

fn release_run_token() {
    RUN_TOKEN.store(false, Ordering::Release);
}

/// The worker waits out an inline run in progress, which is tiny (at most
/// [`INLINE_MAX_BYTES`] of work); yielding lets a preempted inline caller
/// finish on this CPU.
fn take_run_token_for_worker() {
    while !try_take_run_token() {
        std::thread::yield_now();
    }
}

/// How long a caller with a tiny job waits for another caller's inline run
/// to end before it queues its job instead.
const INLINE_WAIT: Duration = Duration::from_micros(20);

/// The run token, taken by a caller that found the worker idle: it may run
/// one job inline. Inline jobs hold the token, which excludes every other
/// job, so they are not counted for concurrency.
struct InlineClaim;

impl InlineClaim {
    /// The token, if no job is queued or running. Held with nothing queued,
    /// it is another caller's inline run, which is tiny: this caller waits
    /// for it up to [`INLINE_WAIT`] rather than queue its own tiny job for
    /// the worker, whose hand-off costs more than the job.
    fn take() -> Option<Self> {
        let mut deadline = None;
        loop {
            if COUNTERS.queue_depth.load(Ordering::Acquire) != 0 {
                return None;
            }
            if try_take_run_token() {
                return Some(InlineClaim);
            }
            let give_up = *deadline.get_or_insert_with(|| Instant::now() + INLINE_WAIT);
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            if Instant::now() >= give_up {
                return None;
            }
        }
    }

    /// Runs `job` here, counts it and gives the token back.
    fn run<T>(self, job: impl FnOnce() -> T) -> Result<T, ChatTemplateError> {
        let scope = JobScope::enter();
        let outcome = catch_unwind(AssertUnwindSafe(job));
        drop(scope);
        if outcome.is_ok() {
            COUNTERS.jobs_inline.fetch_add(1, Ordering::Relaxed);
        }
        release_run_token();
        outcome.map_err(|panic| panicked(panic.as_ref()))
    }
}

/// Every job the worker runs goes through here: the instruction-count
/// benchmark turns callgrind's collection on at this function's entry.
#[inline(never)]
pub fn run_job(job: Job) {
    job()
}

/// The worker's recent cost of a job, in picoseconds per byte of estimated
/// work (0 until a job has been timed). Only the worker writes it.
static PS_PER_WORK_BYTE: AtomicU64 = AtomicU64::new(0);

/// How long a job of `work` bytes should take on the worker, once known.
fn predicted_duration(work: usize) -> Option<Duration> {
    let per_byte = PS_PER_WORK_BYTE.load(Ordering::Relaxed);
    (per_byte != 0).then(|| Duration::from_nanos(per_byte.saturating_mul(work as u64) / 1000))
}

/// Folds a timed job into [`PS_PER_WORK_BYTE`].
fn learn_duration(work: usize, took: Duration) {
    let old = PS_PER_WORK_BYTE.load(Ordering::Relaxed);
    PS_PER_WORK_BYTE.store(per_byte_average(old, work, took), Ordering::Relaxed);
}

/// The cost per byte averaged over the last several jobs (`old` is 0 before
/// the first), so that one slow job moves the prediction only an eighth of
/// the way.
fn per_byte_average(old: u64, work: usize, took: Duration) -> u64 {
    let sample = (took.as_nanos().saturating_mul(1000) / work.max(1) as u128) as u64;
    let average = if old == 0 {
        sample
    } else {
        (old.saturating_mul(7) / 8).saturating_add(sample / 8)
    };
    average.max(1)
}

/// A job that calls the wrapper again would wait for itself: the worker (or
/// the inline caller) is busy with the job that waits.
#[cold]
fn called_from_job() -> ChatTemplateError {
    ChatTemplateError::CalledFromJob
}

/// Whether a job may be given to the executor now: not from inside a job,
/// polled inside a tokio runtime (outside one, nothing would ever poll the
/// future again once the job is queued), and before shutdown.
fn admit() -> Result<(), ChatTemplateError> {
    if IN_JOB.with(Cell::get) {
        return Err(called_from_job());
    }
    if tokio::task::try_id().is_none() && tokio::runtime::Handle::try_current().is_err() {
        return Err(ChatTemplateError::NoRuntime);
    }
    if SHUT_DOWN.load(Ordering::Acquire) {
        return Err(ChatTemplateError::WorkerUnavailable(
            "the worker has shut down".into(),
        ));
    }
    Ok(())
}

/// Set by [`Executor::shutdown`]; there is one executor per process.
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

/// How many jobs the worker runs at one stack depth before it draws another.
const JOBS_PER_STACK_DEPTH: usize = 64;

fn worker_loop(receiver: mpsc::Receiver<Message>) {
    // Jobs run at a stack depth drawn afresh every few dozen jobs: with the
    // one depth the thread starts at, a build's jobs ran slower or faster
    // than the caller's depending on that depth alone (see `stack_shift`
    // and docs/tuning-log.md); keeping a depth for a while keeps the
    // stack's lines in cache.
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
                take_run_token_for_worker();
                let scope = JobScope::enter();
                // The job catches its own panics; this catches the rest, such
                // as a captured request whose `Drop` panics when the job is
                // skipped, so that nothing stays held and the worker goes on.
                let outcome = catch_unwind(AssertUnwindSafe(|| run_job(job)));
                drop(scope);
                release_run_token();
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
    let deadline = Instant::now()
        + if after_job {
            WORKER_SPIN
        } else {
            Duration::ZERO
        };
    loop {
        match receiver.try_recv() {
            Ok(message) => return Some(message),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                // Yield, not just spin: when the scheduler puts a caller on
                // this CPU, spinning would keep it off for a timeslice.
                std::thread::yield_now();
            }
            Err(mpsc::TryRecvError::Empty) => return receiver.recv().ok(),
        }
    }
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
        let caller_poll = std::env::var("PERFWARDEN_CALLER_POLL_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(CALLER_POLL, Duration::from_micros);
        Ok(Self {
            sender,
            caller_poll,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The longest predicted job a waiting caller polls for.
    pub fn caller_poll(&self) -> Duration {
        self.caller_poll
    }

    /// Runs `job` on the worker (or inline, see [`Placement`]) and returns its
    /// value with a trace of where it ran. A panic comes back as
    /// [`ChatTemplateError::JobPanicked`]; dropping the future cancels a job
    /// that has not started. Its caller sleeps until answered: a job of
    /// unknown size has no prediction.
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
        self.run_sized(placement, tracing, None, job).await
    }

    /// [`Executor::run`] for a job of `work` bytes of estimated work: its
    /// caller polls if the job is predicted to be short (see
    /// [`CALLER_POLL`]), and the job's duration refines the prediction.
    async fn run_sized<T, F>(
        &self,
        placement: Placement,
        tracing: Tracing,
        work: Option<usize>,
        job: F,
    ) -> Result<(T, Option<JobTrace>), ChatTemplateError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        admit()?;
        if placement == Placement::InlineWhenIdle
            && let Some(claim) = InlineClaim::take()
        {
            return claim.run(move || {
                let started = trace_start(tracing);
                let value = job();
                (value, trace_end(started, true))
            });
        }
        self.submit(tracing, work, job)?.await
    }

    /// Queues `job` for the worker; the reply carries its outcome.
    fn submit<T, F>(
        &self,
        tracing: Tracing,
        work: Option<usize>,
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
            let started = Instant::now();
            let outcome = execute(job, tracing);
            if let (Some(work), Ok(_)) = (work, &outcome) {
                learn_duration(work, started.elapsed());
            }
            let _ = reply.send(outcome);
        });
        let ahead = COUNTERS.queue_depth.fetch_add(1, Ordering::AcqRel);
        let now = Instant::now();
        // Only a job that goes straight to an idle worker has an end this
        // caller can predict.
        let poll_until = work
            .filter(|_| ahead == 0)
            .and_then(predicted_duration)
            .filter(|&predicted| predicted <= self.caller_poll)
            .map_or(now, |predicted| now + predicted + POLL_OVERRUN);
        if self.sender.send(Message::Job(task)).is_err() {
            COUNTERS.queue_depth.fetch_sub(1, Ordering::Relaxed);
            return Err(ChatTemplateError::WorkerUnavailable(
                "the worker thread has stopped".into(),
            ));
        }
        Ok(Reply { answer, poll_until })
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

/// The answer of a queued job: re-polled cooperatively until `poll_until`
/// (a short job's predicted end and some, see [`CALLER_POLL`]), slept on
/// after.
struct Reply<T> {
    answer: oneshot::Receiver<Result<T, ChatTemplateError>>,
    poll_until: Instant,
}

impl<T> std::future::Future for Reply<T> {
    type Output = Result<T, ChatTemplateError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = self.try_answer() {
            return Poll::Ready(outcome);
        }
        let now = Instant::now();
        if now < self.poll_until {
            // Check here a little with the CPU's pause hint: going round the
            // event loop on every check costs a yield and the runtime's own
            // I/O poll, and picks the answer up later.
            let give_up = now + POLL_SPIN;
            while Instant::now() < give_up {
                for _ in 0..8 {
                    std::hint::spin_loop();
                }
                if let Some(outcome) = self.try_answer() {
                    return Poll::Ready(outcome);
                }
            }
            // Let the worker run if the scheduler put it on this CPU.
            std::thread::yield_now();
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

/// The process-wide executor, created on first use.
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
/// tokenizer and request owned or shared (`Arc`, `&'static`); neither is
/// copied.
pub async fn async_apply_mistral_chat_template<Tk, Rq>(
    tokenizer: Tk,
    request: Rq,
) -> Result<Vec<u32>, ChatTemplateError>
where
    Tk: Borrow<MistralTokenizer> + Send + 'static,
    Rq: Borrow<ChatRequest> + Send + 'static,
{
    async_apply_mistral_chat_template_traced(tokenizer, request, Tracing::Off)
        .await
        .map(|(tokens, _)| tokens)
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
    let work = request.borrow().work_bytes();
    let (result, trace) = global()?
        .run_sized(placement, tracing, Some(work), move || {
            apply_mistral_chat_template(tokenizer.borrow(), request.borrow())
        })
        .await?;
    result.map(|tokens| (tokens, trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prediction_follows_the_jobs_and_one_outlier_moves_it_an_eighth() {
        let first = per_byte_average(0, 1000, 5000 * Duration::from_nanos(1));
        assert_eq!(first, 5000, "5 ns a byte, in picoseconds");
        let steady = per_byte_average(first, 1000, 5000 * Duration::from_nanos(1));
        assert_eq!(steady, 5000);
        let after_outlier = per_byte_average(steady, 1000, 13000 * Duration::from_nanos(1));
        assert_eq!(after_outlier, 6000);
        assert_eq!(
            per_byte_average(0, 0, Duration::ZERO),
            1,
            "never back to unknown"
        );
    }
}
