//! The statistics behind a verdict: a confidence interval on the overhead
//! from paired samples (the median of per-pair ratios, with the sign test's
//! distribution-free interval).

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine coefficients; relative error ~1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + aa / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function I_x(a, b).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The two-sided p-value of Student's t statistic `t` with `df` degrees of
/// freedom: P(|T| ≥ |t|) = I_{df/(df+t²)}(df/2, 1/2).
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || df <= 0.0 {
        return 1.0;
    }
    if t.is_infinite() {
        return 0.0;
    }
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// P(B ≥ `k`) for B ~ Binomial(`n`, `p`): how often chance alone gives one
/// side at least `k` of `n` events when each falls to it with chance `p`
/// (the one-sided sign test when `p` is 1/2).
pub fn binomial_at_least(k: usize, n: usize, p: f64) -> f64 {
    match k {
        0 => 1.0,
        k if k > n => 0.0,
        // P(B ≥ k) = I_p(k, n − k + 1).
        k => incomplete_beta(k as f64, (n - k + 1) as f64, p.clamp(0.0, 1.0)),
    }
}

/// An estimate of the overhead (candidate / baseline − 1) and its interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct OverheadInterval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    pub pairs: usize,
}

/// The overhead from paired samples and its confidence interval: per pair
/// candidate / baseline − 1 (a ratio, so drift common to both sides cancels),
/// the median of those, and the order statistics around it that cover the
/// true median with at least `confidence` whatever the distribution (the
/// sign test's interval). A median because on a shared host a few pairs land
/// in a stretch where one side runs much slower: the mean of the same pairs
/// followed them, the median did not (docs/methodology.md, Judging). `None` when too few pairs
/// can give an interval at `confidence` (fewer than six at 95%: even the
/// smallest and largest ratio then miss the median more often than allowed).
pub fn paired_overhead(
    baseline: &[f64],
    candidate: &[f64],
    confidence: f64,
) -> Option<OverheadInterval> {
    let ratios: Vec<f64> = baseline
        .iter()
        .zip(candidate)
        .filter(|(b, c)| **b > 0.0 && **c > 0.0)
        .map(|(b, c)| c / b - 1.0)
        .collect();
    median_interval(&ratios, confidence)
}

/// The median of `values` with the sign test's distribution-free interval;
/// `None` when there are too few values for any interval at `confidence`.
pub fn median_interval(values: &[f64], confidence: f64) -> Option<OverheadInterval> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    // [x_(k), x_(n+1-k)] (1-based) misses the median with probability
    // 2 P(B ≤ k − 1) = 2 P(B ≥ n − k + 1) for B ~ Binomial(n, 1/2): take
    // the narrowest interval whose miss is allowed.
    let tail = (1.0 - confidence) / 2.0;
    let k = (1..=n / 2)
        .take_while(|&k| binomial_at_least(n - k + 1, n, 0.5) <= tail)
        .last()?;
    Some(OverheadInterval {
        estimate: median(&sorted)?,
        low: sorted[k - 1],
        high: sorted[n - k],
        pairs: n,
    })
}

pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// The value below which `q` of the values lie (nearest rank).
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tails_match_exact_sums() {
        // Exact: P(B ≤ k) = Σ C(n, i) / 2^n.
        let exact = |k: usize, n: usize| {
            let mut c = 1.0;
            let mut sum = 0.0;
            for i in 0..=k {
                sum += c;
                c = c * (n - i) as f64 / (i + 1) as f64;
            }
            sum / 2f64.powi(n as i32)
        };
        for (k, n) in [
            (0, 6),
            (1, 10),
            (2, 10),
            (21, 60),
            (22, 60),
            (29, 60),
            (5, 7),
        ] {
            // P(B ≤ k) = P(B ≥ n − k) at 1/2.
            let got = binomial_at_least(n - k, n, 0.5);
            assert!((got - exact(k, n)).abs() < 1e-12, "k {k} n {n}: {got}");
        }
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert_eq!(binomial_at_least(0, 4, 0.5), 1.0);
        assert_eq!(binomial_at_least(5, 4, 0.5), 0.0);
        assert!((binomial_at_least(2, 2, 0.5) - 0.25).abs() < 1e-12);
        assert!((binomial_at_least(5, 5, 0.5) - 1.0 / 32.0).abs() < 1e-12);
        // 6 of 8: (C(8,6) + C(8,7) + C(8,8)) / 256 = 37 / 256.
        assert!((binomial_at_least(6, 8, 0.5) - 37.0 / 256.0).abs() < 1e-12);
        // 5 of 5 at 0.9: 0.9^5; 2 of 3 at 0.8: 3 · 0.8² · 0.2 + 0.8³.
        assert!((binomial_at_least(5, 5, 0.9) - 0.9f64.powi(5)).abs() < 1e-12);
        assert!((binomial_at_least(2, 3, 0.8) - (3.0 * 0.64 * 0.2 + 0.512)).abs() < 1e-12);
        assert_eq!(binomial_at_least(1, 3, 0.0), 0.0);
        assert_eq!(binomial_at_least(3, 3, 1.0), 1.0);
    }

    #[test]
    fn the_interval_takes_the_order_statistics_the_sign_test_allows() {
        // Ratios 0.00, 0.01, ... 0.09 in shuffled pairs: with ten pairs the
        // 95% interval is the 2nd to the 9th (P(B ≤ 1) = 11/1024 ≤ 0.025 <
        // P(B ≤ 2) = 56/1024).
        let baseline = vec![100.0; 10];
        let candidate: Vec<f64> = [3, 9, 0, 7, 1, 5, 8, 2, 6, 4]
            .iter()
            .map(|i| 100.0 * (1.0 + *i as f64 / 100.0))
            .collect();
        let interval = paired_overhead(&baseline, &candidate, 0.95).unwrap();
        assert!((interval.estimate - 0.045).abs() < 1e-12, "{interval:?}");
        assert!((interval.low - 0.01).abs() < 1e-12, "{interval:?}");
        assert!((interval.high - 0.08).abs() < 1e-12, "{interval:?}");
        assert_eq!(interval.pairs, 10);
        // The sampler's floor on pairs is the fewest that give an interval.
        let few = crate::measure::paired::MIN_PAIRS;
        assert!(paired_overhead(&vec![1.0; few - 1], &vec![1.0; few - 1], 0.95).is_none());
        let interval = paired_overhead(&vec![1.0; few], &vec![2.0; few], 0.95).unwrap();
        assert_eq!((interval.low, interval.high), (1.0, 1.0));
    }

    #[test]
    fn a_few_outlying_pairs_do_not_move_the_estimate() {
        // 3% slower throughout, but five of sixty pairs caught a baseline
        // batch in a stretch of the host running 30% slower.
        let baseline: Vec<f64> = (0..60)
            .map(|i| if i % 12 == 5 { 130.0 } else { 100.0 })
            .collect();
        let candidate: Vec<f64> = (0..60).map(|i| 103.0 + (i % 3) as f64 * 0.1).collect();
        let interval = paired_overhead(&baseline, &candidate, 0.95).unwrap();
        assert!((interval.estimate - 0.031).abs() < 0.001, "{interval:?}");
        assert!(
            interval.low > 0.029 && interval.high < 0.033,
            "{interval:?}"
        );
    }

    #[test]
    fn paired_overhead_finds_a_known_ratio() {
        // Candidate 10% slower, with drift common to both sides.
        let baseline: Vec<f64> = (0..40).map(|i| 100.0 + (i % 7) as f64 * 5.0).collect();
        let candidate: Vec<f64> = baseline
            .iter()
            .enumerate()
            .map(|(i, b)| b * 1.10 * (1.0 + if i % 2 == 0 { 0.01 } else { -0.01 }))
            .collect();
        let interval = paired_overhead(&baseline, &candidate, 0.95).unwrap();
        assert!((interval.estimate - 0.10).abs() < 0.002, "{interval:?}");
        assert!(interval.low < 0.10 && interval.high > 0.10);
        assert!(interval.high - interval.low < 0.03);
    }

    #[test]
    fn student_t_p_values_match_tables() {
        // Two-sided critical values of Student's t at 5% and 0.1%.
        for (t, df, p) in [
            (12.706, 1.0, 0.05),
            (2.228, 10.0, 0.05),
            (4.587, 10.0, 0.001),
            (3.551, 40.0, 0.001),
        ] {
            let found = student_t_two_sided_p(t, df);
            assert!((found - p).abs() < p * 0.01, "t {t} df {df}: {found}");
        }
        assert_eq!(student_t_two_sided_p(0.0, 5.0), 1.0);
        assert_eq!(student_t_two_sided_p(f64::INFINITY, 5.0), 0.0);
    }

    #[test]
    fn medians_and_quantiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(
            quantile(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.99),
            Some(10.0)
        );
        assert_eq!(quantile(&[5.0, 1.0, 3.0], 0.5), Some(3.0));
    }
}
