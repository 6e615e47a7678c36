//! Deliberately broken async wrappers, one per item of the spec's checklist,
//! to prove each probe catches its cause (and only its cause).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{AsyncWrapper, BoxFuture, TracedResult};
use crate::chat::worker::{self, JobTrace, Tracing, observe, thread_tag};
use crate::chat::{ChatRequest, ChatTemplateError, MistralTokenizer, apply_mistral_chat_template};

type Job = Box<dyn FnOnce() + Send>;

/// Every fixture job runs through here, so callgrind can count it
/// (`--toggle-collect`), as it counts the real worker's `run_job`.
#[inline(never)]
pub fn fixture_job(job: Job) {
    job()
}

/// A fixture job's answer: the template's result (or the panic) and its trace.
type Answer = (
    Result<Result<Vec<u32>, ChatTemplateError>, String>,
    Option<JobTrace>,
);
type Reply = oneshot::Sender<Answer>;

/// The job every fixture runs: tokenize, observe where, answer.
fn tokenize_job(
    tokenizer: &'static MistralTokenizer,
    request: &'static ChatRequest,
    tracing: Tracing,
    reply: Reply,
) -> Job {
    Box::new(move || {
        let _ = reply.send(observe(
            || apply_mistral_chat_template(tokenizer, request),
            false,
            tracing,
        ));
    })
}

fn await_reply(answer: oneshot::Receiver<Answer>) -> BoxFuture<TracedResult> {
    Box::pin(async move {
        let (result, trace) = answer.await.map_err(|_| {
            ChatTemplateError::WorkerUnavailable("the fixture's worker stopped".into())
        })?;
        let tokens = result.map_err(ChatTemplateError::JobPanicked)??;
        Ok((tokens, trace))
    })
}

/// Checklist item 1: a new executor (thread) for every request. Jobs still
/// take turns behind one lock, so only the thread-creation probe sees it.
pub struct PerRequestExecutor {
    started: AtomicBool,
}

static PER_REQUEST_TURN: Mutex<()> = Mutex::new(());

impl AsyncWrapper for PerRequestExecutor {
    fn name(&self) -> String {
        "per-request-executor".into()
    }

    fn started(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }

    fn call(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        tracing: Tracing,
    ) -> BoxFuture<TracedResult> {
        self.started.store(true, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let job = tokenize_job(tokenizer, request, tracing, reply);
        std::thread::spawn(move || {
            thread_tag();
            let _turn = PER_REQUEST_TURN.lock().unwrap_or_else(|e| e.into_inner());
            fixture_job(job);
        });
        await_reply(answer)
    }
}

/// Checklist item 3: a pool of several workers, created once, sharing one
/// queue, so concurrent jobs overlap.
pub struct WorkerPool {
    queue: OnceLock<Mutex<mpsc::Sender<Job>>>,
}

pub const POOL_WORKERS: usize = 4;

impl WorkerPool {
    fn sender(&self) -> mpsc::Sender<Job> {
        self.queue
            .get_or_init(|| {
                let (sender, receiver) = mpsc::channel::<Job>();
                let receiver = std::sync::Arc::new(Mutex::new(receiver));
                for _ in 0..POOL_WORKERS {
                    let receiver = receiver.clone();
                    std::thread::spawn(move || {
                        thread_tag();
                        loop {
                            let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                            match job {
                                Ok(job) => fixture_job(job),
                                Err(_) => return,
                            }
                        }
                    });
                }
                Mutex::new(sender)
            })
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl AsyncWrapper for WorkerPool {
    fn name(&self) -> String {
        "worker-pool".into()
    }

    fn started(&self) -> bool {
        self.queue.get().is_some()
    }

    fn call(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        tracing: Tracing,
    ) -> BoxFuture<TracedResult> {
        let (reply, answer) = oneshot::channel();
        let _ = self
            .sender()
            .send(tokenize_job(tokenizer, request, tracing, reply));
        await_reply(answer)
    }
}

/// Checklist item 4: one worker that is not kept warm: it sleeps on a timer
/// between looks at its queue instead of being woken.
pub struct ColdWorker {
    queue: OnceLock<&'static Mutex<VecDeque<Job>>>,
}

pub const COLD_WORKER_TIMER: Duration = Duration::from_millis(5);

impl ColdWorker {
    fn queue(&self) -> &'static Mutex<VecDeque<Job>> {
        self.queue.get_or_init(|| {
            let queue: &'static Mutex<VecDeque<Job>> =
                Box::leak(Box::new(Mutex::new(VecDeque::new())));
            std::thread::spawn(move || {
                thread_tag();
                loop {
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                    match job {
                        Some(job) => fixture_job(job),
                        None => std::thread::sleep(COLD_WORKER_TIMER),
                    }
                }
            });
            queue
        })
    }
}

impl AsyncWrapper for ColdWorker {
    fn name(&self) -> String {
        "cold-worker".into()
    }

    fn started(&self) -> bool {
        self.queue.get().is_some()
    }

    fn call(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        tracing: Tracing,
    ) -> BoxFuture<TracedResult> {
        let (reply, answer) = oneshot::channel();
        self.queue()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(tokenize_job(tokenizer, request, tracing, reply));
        await_reply(answer)
    }
}

/// Checklist item 2: per-byte work on the async path: the request is
/// re-serialized (to JSON and back) for every call, then handed to the real
/// worker.
pub struct PerByteWork;

impl AsyncWrapper for PerByteWork {
    fn name(&self) -> String {
        "per-byte-work".into()
    }

    fn started(&self) -> bool {
        worker::stats().worker_threads_started > 0
    }

    fn call(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        tracing: Tracing,
    ) -> BoxFuture<TracedResult> {
        let copy = ChatRequest::from_json(&request.document().dumps());
        Box::pin(async move {
            let copy = copy?;
            worker::async_apply_mistral_chat_template_traced(tokenizer, copy, tracing).await
        })
    }
}

/// A calibrated slowdown: a call, then its caller spins for `fraction` of
/// the call's own time.
pub struct Slowdown {
    pub fraction: f64,
    pub of: SlowedDown,
}

/// The call a [`Slowdown`] slows down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowedDown {
    /// The real wrapper (`slowdown-N`): what a regression of N% would look
    /// like, for the self-test.
    RealWrapper,
    /// The sync function (`sync-slowdown-N`): a candidate whose overhead
    /// over sync is exactly N%, for `calibrate`.
    Sync,
}

impl AsyncWrapper for Slowdown {
    fn name(&self) -> String {
        let percent = (self.fraction * 100.0).round();
        match self.of {
            SlowedDown::RealWrapper => format!("slowdown-{percent}"),
            SlowedDown::Sync => format!("sync-slowdown-{percent}"),
        }
    }

    fn started(&self) -> bool {
        self.of == SlowedDown::Sync || worker::stats().worker_threads_started > 0
    }

    fn call(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        tracing: Tracing,
    ) -> BoxFuture<TracedResult> {
        let (fraction, of) = (self.fraction, self.of);
        Box::pin(async move {
            let start = Instant::now();
            let outcome = match of {
                SlowedDown::RealWrapper => {
                    worker::async_apply_mistral_chat_template_traced(tokenizer, request, tracing)
                        .await
                }
                SlowedDown::Sync => {
                    apply_mistral_chat_template(tokenizer, request).map(|tokens| (tokens, None))
                }
            };
            let until = start + start.elapsed().mul_f64(1.0 + fraction);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            outcome
        })
    }

    /// The sync function's slowdown is applied to the batch as a whole: its
    /// calls, then `fraction` of their time spinning, so the candidate's
    /// overhead is exactly `fraction` (a clock read per call would itself
    /// add several percent to the small payload's call).
    fn batch(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        runtime: &tokio::runtime::Runtime,
        iterations: usize,
    ) -> Duration {
        match self.of {
            SlowedDown::RealWrapper => {
                super::calls_back_to_back(self, tokenizer, request, runtime, iterations)
            }
            SlowedDown::Sync => {
                let start = Instant::now();
                let took = crate::measure::run::sync_batch(tokenizer, request)(iterations);
                let until = start + took.mul_f64(1.0 + self.fraction);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                start.elapsed()
            }
        }
    }
}

/// The sync function dressed as a candidate: an A/A comparison, whose true
/// overhead is zero (`perfwarden calibrate`).
pub struct SyncAsCandidate;

impl AsyncWrapper for SyncAsCandidate {
    fn name(&self) -> String {
        "sync".into()
    }

    fn started(&self) -> bool {
        true
    }

    fn call(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        _tracing: Tracing,
    ) -> BoxFuture<TracedResult> {
        Box::pin(async move { apply_mistral_chat_template(tokenizer, request).map(|t| (t, None)) })
    }

    fn batch(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        _runtime: &tokio::runtime::Runtime,
        iterations: usize,
    ) -> Duration {
        crate::measure::run::sync_batch(tokenizer, request)(iterations)
    }
}

/// The fixture called `name` (a fresh instance: its first call is cold).
pub fn fixture(name: &str) -> Option<Box<dyn AsyncWrapper>> {
    Some(match name {
        "per-request-executor" => Box::new(PerRequestExecutor {
            started: AtomicBool::new(false),
        }),
        "worker-pool" => Box::new(WorkerPool {
            queue: OnceLock::new(),
        }),
        "cold-worker" => Box::new(ColdWorker {
            queue: OnceLock::new(),
        }),
        "per-byte-work" => Box::new(PerByteWork),
        "sync" => Box::new(SyncAsCandidate),
        other => {
            let (of, percent) = match other.strip_prefix("sync-slowdown-") {
                Some(percent) => (SlowedDown::Sync, percent),
                None => (SlowedDown::RealWrapper, other.strip_prefix("slowdown-")?),
            };
            let percent: f64 = percent.parse().ok()?;
            if !(0.0..=1000.0).contains(&percent) {
                return None;
            }
            Box::new(Slowdown {
                fraction: percent / 100.0,
                of,
            })
        }
    })
}
