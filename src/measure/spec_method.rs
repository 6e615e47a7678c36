//! The spec's own measurement, verbatim: 10 timed calls of the sync function,
//! then 10 awaited calls of the async wrapper on a fresh event loop
//! (`asyncio.run`), each reported as mean, median and sample standard deviation.
//! Kept for traceability; verdicts rest on the paired sampler.

use std::time::Instant;

use serde::Serialize;

use crate::chat::{
    ChatRequest, MistralTokenizer, apply_mistral_chat_template, async_apply_mistral_chat_template,
};

/// The iterations the spec uses.
pub const SPEC_ITERATIONS: usize = 10;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpecStats {
    pub times_ns: Vec<f64>,
    pub mean_ns: f64,
    pub median_ns: f64,
    pub stdev_ns: f64,
}

impl SpecStats {
    /// `statistics.mean`, `statistics.median`, `statistics.stdev` (n − 1).
    pub fn from_times(times_ns: Vec<f64>) -> Self {
        let n = times_ns.len() as f64;
        let mean = times_ns.iter().sum::<f64>() / n;
        let mut sorted = times_ns.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        } else {
            sorted[mid]
        };
        let variance = times_ns.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0);
        Self {
            times_ns,
            mean_ns: mean,
            median_ns: median,
            stdev_ns: variance.sqrt(),
        }
    }
}

/// Both sides of the spec's comparison for one payload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpecComparison {
    pub sync: SpecStats,
    pub r#async: SpecStats,
}

impl SpecComparison {
    /// The spec's figure: `(async_mean - sync_mean) / sync_mean`.
    pub fn overhead(&self) -> f64 {
        (self.r#async.mean_ns - self.sync.mean_ns) / self.sync.mean_ns
    }
}

/// Runs the spec's method once for one request.
pub fn measure(
    tokenizer: &'static MistralTokenizer,
    request: &'static ChatRequest,
    iterations: usize,
) -> Result<SpecComparison, crate::chat::ChatTemplateError> {
    let mut sync_times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        std::hint::black_box(apply_mistral_chat_template(tokenizer, request)?);
        sync_times.push(start.elapsed().as_nanos() as f64);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let async_times = runtime.block_on(async {
        let mut times = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let start = Instant::now();
            std::hint::black_box(async_apply_mistral_chat_template(tokenizer, request).await?);
            times.push(start.elapsed().as_nanos() as f64);
        }
        Ok::<_, crate::chat::ChatTemplateError>(times)
    })?;
    Ok(SpecComparison {
        sync: SpecStats::from_times(sync_times),
        r#async: SpecStats::from_times(async_times),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_match_pythons() {
        // statistics.mean/median/stdev of [1, 2, 3, 4, 10]: 4, 3, 3.5355...
        let stats = SpecStats::from_times(vec![1.0, 2.0, 3.0, 4.0, 10.0]);
        assert_eq!(stats.mean_ns, 4.0);
        assert_eq!(stats.median_ns, 3.0);
        assert!((stats.stdev_ns - 3.5355339059327378).abs() < 1e-12);
        assert_eq!(
            SpecStats::from_times(vec![1.0, 2.0, 3.0, 4.0]).median_ns,
            2.5
        );
    }
}
