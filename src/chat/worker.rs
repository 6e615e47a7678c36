//! `async_apply_mistral_chat_template`: the chat template run without
//! holding up the caller's event loop for longer than it can afford.
//!
//! # Design
//!
//! What the wrapper costs depends on how a job changes threads. A caller
//! that polls for its answer while a worker runs the job keeps a second
//! CPU busy for the whole job; a caller that sleeps until the worker wakes
//! it pays the wake-up, which on a virtual machine whose CPU has halted
//! takes tens of microseconds: next to nothing for a job of milliseconds,
//! several percent of one of a few hundred microseconds. A job that never
//! changes threads pays neither. So:
//!
//! - **A request that fits the inline budget runs on its caller.** The
//!   event-loop contract lets a request hold the loop for up to 1 ms; a
//!   request predicted to take at most [`INLINE_BUDGET`] (half of that)
//!   runs on the caller's thread, as the sync function would, with no
//!   hand-off at all. The prediction is an average of recent requests' time
//!   per byte of estimated work ([`ChatRequest::work_bytes`]: every string,
//!   number and bracket the template may process); before there is one,
//!   only a request of at most [`INLINE_MAX_BYTES`] runs inline.
//! - **An inline run that outgrows its budget goes on on the worker.** A
//!   prediction can be wrong (text that costs ten times the usual per byte,
//!   docs/tokenizer-cliffs.md), so an inline run has a deadline: the
//!   encoding stops at the first word boundary past it, and before any
//!   long word, and the worker takes it up from there
//!   ([`crate::chat::template::apply_until`]). The tokens are exactly one
//!   call's.
//! - **Every other request goes to one background worker** and its caller
//!   sleeps until answered: the job is longer than the budget, so the
//!   wake-up is a small share of it. The worker runs jobs one at a time in
//!   submission order, and polls briefly after a job ([`WORKER_SPIN`])
//!   before it parks, so a caller that sends requests back to back does not
//!   wait for it to wake.
//! - **`PERFWARDEN_INLINE_BUDGET_US` moves the budget**: higher keeps more
//!   requests off the worker (less wall clock and CPU per request) and lets
//!   each hold its event loop longer; 0 sends everything to the worker.
//!   docs/async-wrapper.md has the measured trade-off.
//! - **Nothing waits forever and nothing is left held.** The worker runs a
//!   job inside `catch_unwind` together with the drop of everything it
//!   captured (a cancelled job's request whose `Drop` panics), and gives
//!   the queue depth back on every path. A wrapper call made from inside a
//!   job (say, from a `Borrow` implementation) would wait for itself; it is
//!   refused with [`ChatTemplateError::CalledFromJob`].
//!
//! Inline runs of different callers may overlap each other and the
//! worker's job, as calls of the sync function on those threads would; the
//! worker's own jobs never overlap ([`WorkerStats::max_concurrent_jobs`]).
//! What each choice measured, against the designs tried before it, is in
//! docs/async-wrapper.md.

use std::borrow::Borrow;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::error::ChatTemplateError;
use super::template::{Applied, ChatRequest, PartialEncoding, apply_until};
use super::tokenizer::MistralTokenizer;
use crate::affinity::current_cpu;
use crate::stack_shift::StackShift;

/// How long the worker polls for the next job after one before it parks.
pub const WORKER_SPIN: Duration = Duration::from_micros(50);
/// The longest a request is predicted to take for it to run on its caller,
/// and the deadline of such a run (half of the event-loop contract's 1 ms,
/// for a run that overshoots a little and a host that is slower).
/// `PERFWARDEN_INLINE_BUDGET_US` overrides it (read once, when the worker
/// starts; 0: nothing runs inline).
pub const INLINE_BUDGET: Duration = Duration::from_micros(500);
/// Before any request has been timed, requests with at most this much
/// estimated work ([`ChatRequest::work_bytes`]) run inline. The slowest
/// text per byte (docs/tokenizer-cliffs.md) keeps such a run far under the
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
    /// Inline runs that outgrew their deadline and were finished by the
    /// worker (counted once, as submitted to the worker).
    pub jobs_continued: u64,
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
    jobs_continued: AtomicU64,
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
    jobs_continued: AtomicU64::new(0),
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
        jobs_continued: load(&c.jobs_continued),
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

/// Whether `request` is predicted to fit the inline `budget`, see
/// [`INLINE_BUDGET`].
pub fn fits_inline(request: &ChatRequest, budget: Duration) -> bool {
    let work = request.work_bytes();
    let fits = match predicted_duration(work) {
        Some(predicted) => predicted <= budget,
        None => work <= INLINE_MAX_BYTES,
    };
    fits && !budget.is_zero()
}

/// A job as the worker receives it.
pub type Job = Box<dyn FnOnce() + Send>;

enum Message {
    Job(Job),
    Stop,
}

/// A single background worker thread and its queue.
pub struct Executor {
    sender: mpsc::Sender<Message>,
    inline_budget: Duration,
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

/// Every job the worker runs goes through here: the instruction-count
/// benchmark turns callgrind's collection on at this function's entry.
#[inline(never)]
pub fn run_job(job: Job) {
    job()
}

/// The recent cost of a request, in picoseconds per byte of estimated work
/// (0 until one has been timed). Inline runs and the worker both write it,
/// without a lock: a lost update only makes the average a little older.
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
                let scope = JobScope::enter();
                // The job catches its own panics; this catches the rest, such
                // as a captured request whose `Drop` panics when the job is
                // skipped, so that nothing stays held and the worker goes on.
                let outcome = catch_unwind(AssertUnwindSafe(|| run_job(job)));
                drop(scope);
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
                // Spin, not yield: with every CPU busy, a yield handed the
                // CPU away for a scheduler slice and left the worker waiting
                // that long again at its next wake-up (a warm dispatch
                // median of 1.3 ms under load). A caller the scheduler puts
                // on this CPU waits out the spin at most.
                std::hint::spin_loop();
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
        let inline_budget = std::env::var("PERFWARDEN_INLINE_BUDGET_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(INLINE_BUDGET, Duration::from_micros);
        Ok(Self {
            sender,
            inline_budget,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The longest a request may run on its caller's thread.
    pub fn inline_budget(&self) -> Duration {
        self.inline_budget
    }

    /// Runs `job` on the worker and returns its value with a trace of where
    /// it ran. A panic comes back as [`ChatTemplateError::JobPanicked`];
    /// dropping the future cancels a job that has not started.
    pub async fn run<T, F>(
        &self,
        tracing: Tracing,
        job: F,
    ) -> Result<(T, Option<JobTrace>), ChatTemplateError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        admit()?;
        answer(self.submit(tracing, job)?).await
    }

    /// Queues `job` for the worker; the reply carries its outcome.
    fn submit<T, F>(
        &self,
        tracing: Tracing,
        job: F,
    ) -> Result<Answer<(T, Option<JobTrace>)>, ChatTemplateError>
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
        COUNTERS.queue_depth.fetch_add(1, Ordering::AcqRel);
        if self.sender.send(Message::Job(task)).is_err() {
            COUNTERS.queue_depth.fetch_sub(1, Ordering::Relaxed);
            return Err(ChatTemplateError::WorkerUnavailable(
                "the worker thread has stopped".into(),
            ));
        }
        Ok(answer)
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

/// The answer of a queued job; the caller sleeps until it comes.
async fn answer<T>(reply: Answer<T>) -> Result<T, ChatTemplateError> {
    reply.await.unwrap_or_else(|_| Err(worker_stopped()))
}

/// Where a queued job's outcome comes back.
type Answer<T> = oneshot::Receiver<Result<T, ChatTemplateError>>;

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

/// [`crate::chat::apply_mistral_chat_template`] without blocking the caller's
/// event loop: the same tokens and the same errors. Takes the
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
/// job ran if `tracing` is on (for a run the worker finished, the worker's
/// part).
pub async fn async_apply_mistral_chat_template_traced<Tk, Rq>(
    tokenizer: Tk,
    request: Rq,
    tracing: Tracing,
) -> Result<(Vec<u32>, Option<JobTrace>), ChatTemplateError>
where
    Tk: Borrow<MistralTokenizer> + Send + 'static,
    Rq: Borrow<ChatRequest> + Send + 'static,
{
    admit()?;
    let executor = global()?;
    let work = request.borrow().work_bytes();
    let budget = executor.inline_budget();
    let mut from = PartialEncoding::default();
    let mut spent_inline = Duration::ZERO;
    if fits_inline(request.borrow(), budget) {
        // A tiny request is neither timed nor given a deadline: at the
        // slowest text per byte it stays far under the budget, and two
        // reads of the clock would be a few percent of its cost.
        let tiny = work <= INLINE_MAX_BYTES;
        let started = (!tiny).then(Instant::now);
        let traced = trace_start(tracing);
        let scope = JobScope::enter();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            apply_until(
                tokenizer.borrow(),
                request.borrow(),
                PartialEncoding::default(),
                started.map(|started| started + budget),
            )
        }));
        drop(scope);
        if let Some(started) = started {
            spent_inline = started.elapsed();
        }
        match outcome.map_err(|panic| panicked(panic.as_ref()))? {
            Ok(Applied::Done(tokens)) => {
                COUNTERS.jobs_inline.fetch_add(1, Ordering::Relaxed);
                if !tiny {
                    learn_duration(work, spent_inline);
                }
                return Ok((tokens, trace_end(traced, true)));
            }
            Ok(Applied::Stopped(partial)) => {
                COUNTERS.jobs_continued.fetch_add(1, Ordering::Relaxed);
                from = partial;
            }
            Err(error) => {
                COUNTERS.jobs_inline.fetch_add(1, Ordering::Relaxed);
                return Err(error);
            }
        }
    }
    let (result, trace) = answer(executor.submit(tracing, move || {
        let started = Instant::now();
        let result = apply_until(tokenizer.borrow(), request.borrow(), from, None);
        // A refused request stops early: its time says nothing of the cost
        // per byte.
        if result.is_ok() {
            learn_duration(work, spent_inline + started.elapsed());
        }
        result
    })?)
    .await?;
    match result? {
        Applied::Done(tokens) => Ok((tokens, trace)),
        Applied::Stopped(_) => unreachable!("an encoding with no deadline runs to the end"),
    }
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
