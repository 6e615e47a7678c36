//! The async wrapper as a user's server runs it: a plain tokio runtime
//! (current-thread and multi-thread), no CPU pinning, no stack shifting.
//! Prints, per payload, what the wrapper costs over the sync call in wall
//! clock and in process CPU time (all threads), the longest an event-loop
//! ticker waited while medium and large requests ran (performance-003's
//! measurement), and the throughput of concurrent callers against one
//! thread calling the sync function back to back.
//!
//! `cargo bench --bench user_view [-- --quick]`. The inline budget is the
//! knob between the event loop's stalls and the wrapper's wall clock and
//! CPU: `PERFWARDEN_INLINE_BUDGET_US` (`docs/async-wrapper.md` has what it
//! measured).

use std::sync::Arc;
use std::time::{Duration, Instant};

use perfwarden::chat::{
    ChatRequest, MistralTokenizer, apply_mistral_chat_template, async_apply_mistral_chat_template,
};
use perfwarden::judge::contract::Variants;
use perfwarden::measure::payload::Variant;
use perfwarden::measure::subject::ChatTemplate;
use perfwarden::metric::MeasureContext;
use perfwarden::metric::cpu_time::process_cpu_time;

#[derive(Clone, Copy)]
struct Cost {
    wall: Duration,
    cpu: Duration,
}

/// Runs `calls` requests and returns the wall and process CPU time they took.
fn measure(calls: usize, mut run: impl FnMut(usize)) -> Cost {
    let (wall, cpu) = (Instant::now(), process_cpu_time());
    run(calls);
    Cost {
        wall: wall.elapsed(),
        cpu: process_cpu_time() - cpu,
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn quartiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.75))
}

fn percent(ratio: f64) -> String {
    format!("{:+.1}%", (ratio - 1.0) * 100.0)
}

/// Alternating batches of sync and async calls on `runtime`: the median and
/// quartiles of the per-pair ratios, for wall clock and for CPU time.
fn overhead(
    runtime: &tokio::runtime::Runtime,
    tokenizer: &'static MistralTokenizer,
    request: &Arc<ChatRequest>,
    pairs: usize,
    batch: Duration,
) -> String {
    let sync = |calls: usize| {
        let request = request.clone();
        runtime.block_on(async move {
            for _ in 0..calls {
                std::hint::black_box(apply_mistral_chat_template(tokenizer, &request).unwrap());
            }
        })
    };
    let asynchronous = |calls: usize| {
        let request = request.clone();
        runtime.block_on(async move {
            for _ in 0..calls {
                std::hint::black_box(
                    async_apply_mistral_chat_template(tokenizer, request.clone())
                        .await
                        .unwrap(),
                );
            }
        })
    };
    // Warm both, then size batches on the sync call.
    let probe = measure(3, sync);
    measure(3, asynchronous);
    let calls = ((batch.as_secs_f64() / (probe.wall.as_secs_f64() / 3.0)) as usize).max(1);
    let (mut wall, mut cpu, mut busy) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..pairs {
        let (s, a) = if pair % 2 == 0 {
            let s = measure(calls, sync);
            (s, measure(calls, asynchronous))
        } else {
            let a = measure(calls, asynchronous);
            (measure(calls, sync), a)
        };
        wall.push(a.wall.as_secs_f64() / s.wall.as_secs_f64());
        cpu.push(a.cpu.as_secs_f64() / s.cpu.as_secs_f64());
        busy.push(a.cpu.as_secs_f64() / a.wall.as_secs_f64());
    }
    let (wall_q1, wall_q3) = quartiles(&mut wall);
    let (cpu_q1, cpu_q3) = quartiles(&mut cpu);
    format!(
        "wall {} [{}, {}]  cpu {} [{}, {}]  async keeps {:.2} CPUs busy  ({calls} calls a batch, {pairs} pairs)",
        percent(median(&mut wall)),
        percent(wall_q1),
        percent(wall_q3),
        percent(median(&mut cpu)),
        percent(cpu_q1),
        percent(cpu_q3),
        median(&mut busy),
    )
}

/// The event-loop contract's own measurement (performance-003's metric) of
/// `request`, async judged and sync beside it: the median over rounds of each
/// round's longest ticker delay, in ms.
fn event_loop_stall(
    tokenizer: &'static MistralTokenizer,
    request: &'static ChatRequest,
    quick: bool,
) -> (f64, f64) {
    let subject: &'static ChatTemplate = Box::leak(Box::new(ChatTemplate::new(tokenizer)));
    let context = MeasureContext {
        subject,
        quick,
        child: None,
    };
    let variants = Variants::Compare {
        baseline: Variant::Sync,
        candidate: Variant::Async,
    };
    let mut samples = perfwarden::metric::event_loop_stall::measure(&context, &variants, request);
    (
        median(&mut samples.judged) / 1e6,
        median(&mut samples.other) / 1e6,
    )
}

/// Requests per second of `callers` concurrent callers on a multi-thread
/// runtime, against one thread calling the sync function back to back, and
/// the callers' p99 latency.
fn throughput(
    tokenizer: &'static MistralTokenizer,
    request: &Arc<ChatRequest>,
    callers: usize,
    span: Duration,
) -> String {
    let started = Instant::now();
    let mut dedicated = 0u64;
    while started.elapsed() < span {
        std::hint::black_box(apply_mistral_chat_template(tokenizer, request).unwrap());
        dedicated += 1;
    }
    let dedicated_rate = dedicated as f64 / started.elapsed().as_secs_f64();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (count, mut latencies) = runtime.block_on(async {
        let started = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let request = request.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while started.elapsed() < span {
                        let call = Instant::now();
                        async_apply_mistral_chat_template(tokenizer, request.clone())
                            .await
                            .unwrap();
                        latencies.push(call.elapsed().as_secs_f64());
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        (all.len(), all)
    });
    let rate = count as f64 / span.as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies[(latencies.len() - 1) * 99 / 100];
    format!(
        "{callers} callers {rate:.0}/s against one sync thread {dedicated_rate:.0}/s: {:.1}% (p99 latency {:.2} ms)",
        rate / dedicated_rate * 100.0,
        p99 * 1e3
    )
}

/// CPU time per request when requests come one at a time, `gap` apart (a
/// server that is mostly idle): sync, async and `tokio::task::spawn_blocking`.
fn sporadic(
    tokenizer: &'static MistralTokenizer,
    request: &Arc<ChatRequest>,
    requests: usize,
    gap: Duration,
) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let per_request = |mode: u8| {
        let request = request.clone();
        let cost = measure(requests, |n| {
            runtime.block_on(async {
                for _ in 0..n {
                    match mode {
                        0 => {
                            apply_mistral_chat_template(tokenizer, &request).unwrap();
                        }
                        1 => {
                            async_apply_mistral_chat_template(tokenizer, request.clone())
                                .await
                                .unwrap();
                        }
                        _ => {
                            let request = request.clone();
                            tokio::task::spawn_blocking(move || {
                                apply_mistral_chat_template(tokenizer, &request).unwrap()
                            })
                            .await
                            .unwrap();
                        }
                    }
                    tokio::time::sleep(gap).await;
                }
            })
        });
        cost.cpu.as_secs_f64() / requests as f64
    };
    let (sync, asynchronous, blocking) = (per_request(0), per_request(1), per_request(2));
    format!(
        "CPU per request, one every {} ms: sync {:.0} µs, async {:.0} µs ({}), spawn_blocking {:.0} µs ({})",
        gap.as_millis(),
        sync * 1e6,
        asynchronous * 1e6,
        percent(asynchronous / sync),
        blocking * 1e6,
        percent(blocking / sync)
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let tokenizer: &'static MistralTokenizer = Box::leak(Box::new(
        perfwarden::chat::load_tokenizer(None, &mut |note| eprintln!("{note}"))
            .expect("the tokenizer model"),
    ));
    let payloads = [
        ("small", "Hello ".repeat(50)),
        ("medium", "Test content ".repeat(5000)),
        ("large", "Large test content ".repeat(20000)),
    ];
    let (pairs, batch) = if quick {
        (6, Duration::from_millis(10))
    } else {
        (30, Duration::from_millis(20))
    };
    println!(
        "inline budget: {} µs (PERFWARDEN_INLINE_BUDGET_US)",
        perfwarden::chat::worker::global()
            .expect("the worker starts")
            .inline_budget()
            .as_micros()
    );
    for (flavor, runtime) in [
        (
            "current-thread",
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        ),
        (
            "multi-thread",
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap(),
        ),
    ] {
        for (name, content) in &payloads {
            let request = Arc::new(ChatRequest::single_user_message(content.clone()));
            println!(
                "{flavor:14} {name:6} {}",
                overhead(&runtime, tokenizer, &request, pairs, batch)
            );
        }
    }
    for (name, content) in &payloads[1..] {
        let request: &'static ChatRequest =
            Box::leak(Box::new(ChatRequest::single_user_message(content.clone())));
        let (stall, sync_stall) = event_loop_stall(tokenizer, request, quick);
        println!(
            "event loop, {name} (performance-003's measurement): ticker delay async {stall:.3} ms, sync {sync_stall:.3} ms (reference)"
        );
    }
    let medium = Arc::new(ChatRequest::single_user_message(payloads[1].1.clone()));
    let span = if quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    };
    let small = Arc::new(ChatRequest::single_user_message(payloads[0].1.clone()));
    println!("load, small: {}", throughput(tokenizer, &small, 8, span));
    println!("load, medium: {}", throughput(tokenizer, &medium, 8, span));
    let requests = if quick { 30 } else { 200 };
    println!(
        "sporadic, medium: {}",
        sporadic(tokenizer, &medium, requests, Duration::from_millis(10))
    );
}
