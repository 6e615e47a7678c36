//! `async_apply_mistral_chat_template`: the chat template run off the caller's
//! event loop, on one process-wide background worker thread.
//!
//! # Design
//!
//! One worker thread, started when the first job needs it (an inline run
//! does not), runs jobs one at a time in submission order. A hand-off to a
//! parked thread and back costs tens of microseconds on small VMs (a futex
//! wake each way), several times the small request's whole tokenization and
//! a tenth of the medium one's, so:
//!
//! - **Small requests run inline when the worker is idle.** A request whose
//!   estimated work ([`ChatRequest::work_bytes`]: every string, number and
//!   bracket the template may process) is at most [`INLINE_MAX_BYTES`]
//!   blocks the event loop for well under 1 ms, less than a hand-off would
//!   cost. It runs on the caller only when no job is queued or running, and
//!   takes the same run token as the worker, so jobs never overlap and keep
//!   their order.
//! - **The worker polls briefly after a job** ([`WORKER_SPIN`]) before it
//!   parks, so a request that follows another starts without a wake-up.
//! - **The waiting caller wakes shortly before its answer.** It sleeps until
//!   [`CALLER_SPIN`] before its job is predicted to end (from the worker's
//!   recent pace per work byte and the jobs queued ahead), woken by an alarm
//!   thread, then checks for the answer and re-schedules itself instead of
//!   sleeping, for at most twice that budget: the answer is picked up
//!   without waking a parked runtime thread, other tasks on the event loop
//!   run between its polls, and the CPU it spends is bounded by the budget,
//!   not by the job's length. The budget is the knob between wall clock and
//!   CPU time (`PERFWARDEN_CALLER_SPIN_US`); `docs/async-wrapper.md` has the
//!   measured curve and why the default is where it is.
//! - **Nothing waits forever and nothing is left held.** A job runs inside
//!   `catch_unwind`, its captured request and tokenizer are dropped there
//!   too, and the run token and queue depth are given back on every path. A
//!   wrapper call made from inside a job (say, from a `Borrow`
//!   implementation) would wait for itself; it is refused with
//!   [`ChatTemplateError::CalledFromJob`].

use std::borrow::Borrow;
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, mpsc};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::error::ChatTemplateError;
use super::template::{ChatRequest, apply_mistral_chat_template};
use super::tokenizer::MistralTokenizer;
use crate::affinity::current_cpu;
use crate::stack_shift::StackShift;

/// How long the worker polls for the next job after one before it parks.
pub const WORKER_SPIN: Duration = Duration::from_micros(200);
/// The caller's spin budget: a waiting caller is woken this long before its
/// job is predicted to end and then polls for the answer for at most twice
/// as long before it sleeps until the answer wakes it. 0 never polls; a
/// budget longer than the job polls from the start. The knob between wall
/// clock and CPU time; `PERFWARDEN_CALLER_SPIN_US` overrides it (read once,
/// when the worker starts).
pub const CALLER_SPIN: Duration = Duration::from_micros(60);
/// How long one poll of a waiting caller checks for the answer before it
/// gives the event loop back (well under the 1 ms it may block the loop).
pub const POLL_SPIN: Duration = Duration::from_micros(20);
/// Requests with at most this much estimated work may run inline on an idle
/// worker. The slowest bytes found cost ~180 ns each here (a run of spaces;
/// plain prose ~4.5), so an inline request blocks the event loop for under
/// 0.4 ms.
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

/// Whoever holds the run token runs a job, the worker or an inline caller,
/// so jobs never overlap. A caller only ever tries it; the worker waits for
/// it asleep (an inline job is short).
static RUN_TOKEN: Mutex<()> = Mutex::new(());

fn take_run_token() -> MutexGuard<'static, ()> {
    // Jobs run inside `catch_unwind`, so no panic unwinds through a holder;
    // a poisoned token would still be a free one.
    RUN_TOKEN.lock().unwrap_or_else(PoisonError::into_inner)
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

/// A job that calls the wrapper again would wait for itself: the worker (or
/// the inline caller) is busy with the job that waits.
#[cold]
fn called_from_job() -> ChatTemplateError {
    ChatTemplateError::CalledFromJob
}

/// The run token, taken by a caller that found the worker idle: it may run
/// one job inline. Inline jobs hold the token, which excludes every other
/// job, so they are not counted for concurrency.
struct InlineClaim {
    _token: MutexGuard<'static, ()>,
}

impl InlineClaim {
    /// The token, if no job is queued or running.
    #[inline]
    fn take() -> Option<Self> {
        if COUNTERS.queue_depth.load(Ordering::Acquire) != 0 {
            return None;
        }
        RUN_TOKEN
            .try_lock()
            .ok()
            .map(|token| Self { _token: token })
    }

    /// Runs `job` here, counts it and gives the token back.
    #[inline]
    fn run<T>(self, job: impl FnOnce() -> T) -> Result<T, ChatTemplateError> {
        let scope = JobScope::enter();
        let outcome = catch_unwind(AssertUnwindSafe(job));
        drop(scope);
        drop(self);
        match outcome {
            Ok(result) => {
                COUNTERS.jobs_inline.fetch_add(1, Ordering::Relaxed);
                Ok(result)
            }
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

/// Whether a job may be given to the executor now: not from inside a job,
/// inside a tokio runtime, and before shutdown. The inline path needs no
/// more of the executor than this, so it does not look the executor up.
#[inline]
fn admit() -> Result<(), ChatTemplateError> {
    if IN_JOB.with(Cell::get) {
        return Err(called_from_job());
    }
    if !in_runtime() {
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
                let token = take_run_token();
                let scope = JobScope::enter();
                // The job catches its own panics; this catches the rest, such
                // as a captured request whose `Drop` panics when the job is
                // skipped, so that nothing stays held and the worker goes on.
                let outcome = catch_unwind(AssertUnwindSafe(|| run_job(job)));
                drop(scope);
                drop(token);
                COUNTERS.queue_depth.fetch_sub(1, Ordering::Release);
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
        dispatch(Some(self), placement, tracing, None, job).await
    }

    /// Queues `job` for the worker; the reply carries its outcome.
    fn submit<T, F>(
        &self,
        tracing: Tracing,
        work_bytes: Option<usize>,
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
            if let Some(work_bytes) = work_bytes {
                PACE.learn(work_bytes, started.elapsed());
            }
            let _ = reply.send(outcome);
        });
        let predicted_end = work_bytes.map(|bytes| PACE.predict_end(bytes));
        COUNTERS.queue_depth.fetch_add(1, Ordering::AcqRel);
        if self.sender.send(Message::Job(task)).is_err() {
            COUNTERS.queue_depth.fetch_sub(1, Ordering::Relaxed);
            return Err(ChatTemplateError::WorkerUnavailable(
                "the worker thread has stopped".into(),
            ));
        }
        let wake_at = predicted_end.map_or_else(Instant::now, |end| {
            end.checked_sub(self.caller_spin).unwrap_or(end)
        });
        Ok(Reply {
            answer,
            wake_at,
            spin_until: wake_at + 2 * self.caller_spin,
            alarm: None,
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

/// Runs `job` inline if `placement` allows it and the worker is idle, or on
/// `executor` (the process-wide one when `None`, started only then).
/// `work_bytes`, when known, predicts when a queued job ends.
async fn dispatch<T, F>(
    executor: Option<&Executor>,
    placement: Placement,
    tracing: Tracing,
    work_bytes: Option<usize>,
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
    let executor = match executor {
        Some(executor) => executor,
        None => global()?,
    };
    executor.submit(tracing, work_bytes, job)?.await
}

/// The answer of a queued job. The caller sleeps until shortly before the
/// job is predicted to end ([`CALLER_SPIN`] before it, woken by the
/// [`AlarmClock`]), then polls cooperatively for the answer, for a bounded
/// time, and after that sleeps until the answer wakes it.
struct Reply<T> {
    answer: oneshot::Receiver<Result<T, ChatTemplateError>>,
    wake_at: Instant,
    spin_until: Instant,
    alarm: Option<Arc<AtomicBool>>,
}

impl<T> Future for Reply<T> {
    type Output = Result<T, ChatTemplateError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = self.try_answer() {
            return Poll::Ready(outcome);
        }
        let now = Instant::now();
        if now >= self.wake_at && now < self.spin_until {
            // Wait here a little with the CPU's pause hint: a caller that
            // went round the event loop on every check (a yield and the
            // runtime's own I/O poll, two system calls) picked the answer
            // up later and slowed the job on the other CPU.
            let give_up = (now + POLL_SPIN).min(self.spin_until);
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
        if now < self.wake_at && self.alarm.is_none() {
            self.alarm = Some(alarm_clock().set(self.wake_at, cx.waker().clone()));
        }
        match Pin::new(&mut self.answer).poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            Poll::Ready(Err(_)) => Poll::Ready(Err(worker_stopped())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        // An alarm still pending would only wake the task for nothing.
        if let Some(cancelled) = &self.alarm {
            cancelled.store(true, Ordering::Relaxed);
        }
    }
}

/// Nanoseconds per byte of estimated work ([`ChatRequest::work_bytes`]) of
/// the worker's recent jobs, and when the jobs queued so far should end:
/// what a waiting caller needs to wake shortly before its answer comes.
struct Pace {
    /// `f64` bits of the nanoseconds per work byte, an exponential average.
    ns_per_byte: AtomicU64,
    /// When the last queued job should end, in nanoseconds after `epoch`.
    backlog_end: AtomicU64,
    epoch: OnceLock<Instant>,
}

static PACE: Pace = Pace {
    // Plain prose runs at ~4.5 ns a byte here; the first job corrects it.
    ns_per_byte: AtomicU64::new(0x4014_0000_0000_0000), // 5.0
    backlog_end: AtomicU64::new(0),
    epoch: OnceLock::new(),
};

impl Pace {
    fn now_ns(&self) -> u64 {
        self.epoch.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    fn learn(&self, work_bytes: usize, took: Duration) {
        if work_bytes == 0 {
            return;
        }
        let observed = took.as_nanos() as f64 / work_bytes as f64;
        let old = f64::from_bits(self.ns_per_byte.load(Ordering::Relaxed));
        let new = 0.75 * old + 0.25 * observed;
        self.ns_per_byte.store(new.to_bits(), Ordering::Relaxed);
    }

    /// When a job of `work_bytes` queued now should end, behind the jobs
    /// queued before it.
    fn predict_end(&self, work_bytes: usize) -> Instant {
        let rate = f64::from_bits(self.ns_per_byte.load(Ordering::Relaxed));
        let duration = (work_bytes as f64 * rate) as u64;
        let now = self.now_ns();
        let previous = self
            .backlog_end
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |end| {
                Some(end.max(now) + duration)
            })
            .unwrap_or_else(|end| end);
        let end = previous.max(now) + duration;
        *self.epoch.get_or_init(Instant::now) + Duration::from_nanos(end)
    }
}

/// One thread that wakes waiting callers at set times, with a timer slack
/// of a microsecond (the default 50 µs would make every wake-up late).
struct AlarmClock {
    alarms: Mutex<BinaryHeap<Reverse<Alarm>>>,
    changed: Condvar,
}

struct Alarm {
    at: Instant,
    waker: Waker,
    cancelled: Arc<AtomicBool>,
}

impl PartialEq for Alarm {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Alarm {}

impl PartialOrd for Alarm {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Alarm {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

impl AlarmClock {
    /// Wakes `waker` at `at` unless the returned flag is set first.
    fn set(&self, at: Instant, waker: Waker) -> Arc<AtomicBool> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut alarms = self.alarms.lock().unwrap_or_else(PoisonError::into_inner);
        let earliest = alarms.peek().is_none_or(|Reverse(first)| at < first.at);
        alarms.push(Reverse(Alarm {
            at,
            waker,
            cancelled: cancelled.clone(),
        }));
        drop(alarms);
        if earliest {
            self.changed.notify_one();
        }
        cancelled
    }

    fn ring(&self) {
        // SAFETY: PR_SET_TIMERSLACK takes an integer and affects this thread.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
        let mut alarms = self.alarms.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            match alarms.peek() {
                None => {
                    alarms = self
                        .changed
                        .wait(alarms)
                        .unwrap_or_else(PoisonError::into_inner)
                }
                Some(Reverse(first)) if first.at <= now => {
                    let Reverse(alarm) = alarms.pop().expect("peeked");
                    if !alarm.cancelled.load(Ordering::Relaxed) {
                        alarm.waker.wake();
                    }
                }
                Some(Reverse(first)) => {
                    let wait = first.at - now;
                    alarms = self
                        .changed
                        .wait_timeout(alarms, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }
}

/// The process-wide alarm clock, its thread started on first use. If the
/// thread cannot start, alarms never ring and callers sleep until their
/// answer wakes them.
fn alarm_clock() -> &'static AlarmClock {
    static CLOCK: OnceLock<&'static AlarmClock> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let clock: &'static AlarmClock = Box::leak(Box::new(AlarmClock {
            alarms: Mutex::new(BinaryHeap::new()),
            changed: Condvar::new(),
        }));
        let _ = std::thread::Builder::new()
            .name("perfwarden-alarm".into())
            .spawn(move || clock.ring());
        clock
    })
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

/// Whether the caller runs inside a tokio runtime: outside one, nothing
/// would ever poll a queued job's future again.
fn in_runtime() -> bool {
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
pub async fn async_apply_mistral_chat_template<Tk, Rq>(
    tokenizer: Tk,
    request: Rq,
) -> Result<Vec<u32>, ChatTemplateError>
where
    Tk: Borrow<MistralTokenizer> + Send + 'static,
    Rq: Borrow<ChatRequest> + Send + 'static,
{
    let (tokens, _) =
        async_apply_mistral_chat_template_traced(tokenizer, request, Tracing::Off).await?;
    Ok(tokens)
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
    let work_bytes = Some(request.borrow().work_bytes());
    let (result, trace) = dispatch(None, placement, tracing, work_bytes, move || {
        apply_mistral_chat_template(tokenizer.borrow(), request.borrow())
    })
    .await?;
    result.map(|tokens| (tokens, trace))
}
