//! Cost per request byte of adversarial requests (`perfwarden::measure::adversarial`)
//! against the contract's large payload, through `apply_mistral_chat_template`
//! on a `ChatRequest` parsed beforehand.
//!
//! Besides Criterion's report it prints, per payload, the median ns per
//! request byte with a cold word cache (a freshly loaded tokenizer: the
//! worst case for new words) and a warm one (the same request again), the
//! cold figure's ratio to the large payload's, and the peak heap bytes per
//! request byte of one cold call, counted by the allocator below.
//! `cargo bench --bench cliffs -- --quick` runs it in a couple of minutes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use perfwarden::chat::acquire::ModelSearch;
use perfwarden::chat::{ChatRequest, MistralTokenizer, apply_mistral_chat_template};
use perfwarden::measure::adversarial::Cliff;

/// The system allocator, counting the bytes in use and their high-water mark.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are
// only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Counted as a copy: old and new blocks both live for a moment.
            grew(new_size);
            shrank(layout.size());
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes allocated at the high-water mark of `f`, above what was in use
/// when it started.
fn peak_heap_of<T>(f: impl FnOnce() -> T) -> usize {
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    drop(black_box(f()));
    PEAK.load(Ordering::Relaxed) - before
}

struct Figures {
    name: &'static str,
    bytes: usize,
    /// Cold: each call on a freshly loaded tokenizer, so its word cache is
    /// empty, as for a new process or new words.
    cold_ns_per_byte: Vec<f64>,
    /// Warm: the same request again, as Criterion measures it.
    warm_ns_per_byte: Vec<f64>,
    cold_peak_heap: usize,
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn range(samples: &[f64]) -> String {
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(0.0, f64::max);
    format!("{min:.2}..{max:.2}")
}

/// A call slower than this is timed without Criterion.
const SLOW_CALL: Duration = Duration::from_secs(2);

/// For the summary: calls for about a second and at least 5, or 2 when one
/// call is slow, each on `shared` or, without it, on a tokenizer from
/// `load`; only the call is timed.
fn timed_calls(
    shared: Option<&MistralTokenizer>,
    load: &dyn Fn() -> MistralTokenizer,
    request: &ChatRequest,
    bytes: usize,
    slow: bool,
) -> Vec<f64> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let min_samples = if slow { 2 } else { 5 };
    while samples.len() < min_samples || (!slow && started.elapsed() < Duration::from_secs(1)) {
        let fresh;
        let tokenizer = match shared {
            Some(tokenizer) => tokenizer,
            None => {
                fresh = load();
                &fresh
            }
        };
        let t = Instant::now();
        black_box(apply_mistral_chat_template(tokenizer, black_box(request)))
            .expect("the payload tokenizes");
        samples.push(t.elapsed().as_nanos() as f64 / bytes as f64);
    }
    samples
}

fn cliffs(c: &mut Criterion) {
    let located = ModelSearch::from_env(std::env::var_os("PERFWARDEN_TOKENIZER").map(Into::into))
        .locate(&mut |note| eprintln!("{note}"))
        .expect("the tokenizer model is available");
    let model = std::fs::read(&located.path).expect("the model file reads");
    let load = || MistralTokenizer::from_model_bytes(&model).expect("the tokenizer model loads");
    let tokenizer = load();
    let mut figures = Vec::new();
    for cliff in Cliff::ALL {
        let json = cliff.request_json();
        let request = ChatRequest::from_json(&json).expect("the payload parses");
        let fresh = load();
        let started = Instant::now();
        let cold_peak_heap = peak_heap_of(|| apply_mistral_chat_template(&fresh, &request));
        let slow = started.elapsed() > SLOW_CALL;
        // Warms the shared tokenizer's word cache, as the contract's
        // wall-clock benchmark does, outside the measurement.
        apply_mistral_chat_template(&tokenizer, &request).expect("the payload tokenizes");
        if slow {
            // Criterion's 10 samples would take minutes; the summary's timed
            // calls still measure it.
            eprintln!(
                "cliffs/{}: one call takes {:.1?}, timed without Criterion",
                cliff.name(),
                started.elapsed()
            );
        } else {
            let mut group = c.benchmark_group(format!("cliffs/{}", cliff.name()));
            group.bench_function("sync", |b| {
                b.iter(|| apply_mistral_chat_template(&tokenizer, black_box(&request)))
            });
            group.finish();
        }
        figures.push(Figures {
            name: cliff.name(),
            bytes: json.len(),
            cold_ns_per_byte: timed_calls(None, &load, &request, json.len(), slow),
            warm_ns_per_byte: timed_calls(Some(&tokenizer), &load, &request, json.len(), slow),
            cold_peak_heap,
        });
    }

    let reference = figures
        .iter()
        .find(|f| f.name == Cliff::Large.name())
        .map(|f| median(&f.cold_ns_per_byte))
        .expect("the large payload is measured");
    println!();
    println!(
        "per request byte; cold = fresh tokenizer (empty word cache), warm = the same request again"
    );
    println!(
        "{:<26} {:>8} {:>9} {:>14} {:>9} {:>14} {:>8} {:>10}",
        "payload",
        "bytes",
        "cold ns",
        "(min..max)",
        "warm ns",
        "(min..max)",
        "x large",
        "peak heap"
    );
    for f in &figures {
        let cold = median(&f.cold_ns_per_byte);
        println!(
            "{:<26} {:>8} {:>9.2} {:>14} {:>9.2} {:>14} {:>8.2} {:>10.2}",
            f.name,
            f.bytes,
            cold,
            range(&f.cold_ns_per_byte),
            median(&f.warm_ns_per_byte),
            range(&f.warm_ns_per_byte),
            cold / reference,
            f.cold_peak_heap as f64 / f.bytes as f64,
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .without_plots()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = cliffs
}
criterion_main!(benches);
