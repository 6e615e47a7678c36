//! The statistics behind a verdict: a confidence interval on the overhead
//! from paired samples (the mean of per-pair log ratios, Student's t).

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

/// Student's t distribution function with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: usize) -> f64 {
    let n = df as f64;
    let tail = 0.5 * incomplete_beta(n / 2.0, 0.5, n / (n + t * t));
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// Student's t quantile, by bisection on [`t_cdf`] (to 1e-12).
pub fn t_quantile(p: f64, df: usize) -> f64 {
    if df == 0 {
        return f64::INFINITY;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    let (mut low, mut high) = (0.0, 1.0);
    while t_cdf(high, df) < p {
        high *= 2.0;
        if high > 1e12 {
            return f64::INFINITY;
        }
    }
    while high - low > 1e-12 * high.max(1.0) {
        let mid = 0.5 * (low + high);
        if t_cdf(mid, df) < p {
            low = mid;
        } else {
            high = mid;
        }
    }
    0.5 * (low + high)
}

/// An estimate of the overhead (candidate / baseline − 1) and its interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct OverheadInterval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    pub pairs: usize,
}

/// The confidence interval of the overhead from paired samples: per pair
/// the log of candidate / baseline (a ratio, so drift common to both cancels),
/// their mean with a t interval, mapped back to a fraction.
pub fn paired_overhead(
    baseline: &[f64],
    candidate: &[f64],
    confidence: f64,
) -> Option<OverheadInterval> {
    let logs: Vec<f64> = baseline
        .iter()
        .zip(candidate)
        .filter(|(b, c)| **b > 0.0 && **c > 0.0)
        .map(|(b, c)| (c / b).ln())
        .collect();
    let n = logs.len();
    if n < 2 {
        return None;
    }
    let mean = logs.iter().sum::<f64>() / n as f64;
    let variance = logs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t_quantile(0.5 + confidence / 2.0, n - 1) * (variance / n as f64).sqrt();
    Some(OverheadInterval {
        estimate: mean.exp() - 1.0,
        low: (mean - half).exp() - 1.0,
        high: (mean + half).exp() - 1.0,
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
    fn quantiles_match_tables() {
        // t tables: t(0.975, df)
        for (df, expected) in [
            (1, 12.7062),
            (2, 4.3027),
            (3, 3.1824),
            (5, 2.5706),
            (10, 2.2281),
            (30, 2.0423),
            (100, 1.9840),
        ] {
            let got = t_quantile(0.975, df);
            assert!(
                (got - expected).abs() < 1e-4,
                "df {df}: {got} vs {expected}"
            );
        }
        assert!((t_quantile(0.995, 9) - 3.2498).abs() < 1e-4);
        assert!((t_quantile(0.025, 10) + 2.2281).abs() < 1e-4);
        assert!((t_cdf(0.0, 4) - 0.5).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
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
        assert!(interval.high - interval.low < 0.01);
        assert!(paired_overhead(&[1.0], &[1.0], 0.95).is_none());
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
