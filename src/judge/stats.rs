//! The statistics behind a verdict: a confidence interval on the overhead
//! from paired samples (the mean of per-pair log ratios, Student's t).

/// Φ⁻¹(p), the standard normal quantile (Acklam's rational approximation,
/// relative error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Student's t quantile: exact for 1 and 2 degrees of freedom, the
/// Cornish-Fisher expansion above (error below 1e-3 from 3 on).
pub fn t_quantile(p: f64, df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        1 => (std::f64::consts::PI * (p - 0.5)).tan(),
        2 => (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt(),
        _ => {
            let z = normal_quantile(p);
            let n = df as f64;
            let (z3, z5, z7, z9) = (z.powi(3), z.powi(5), z.powi(7), z.powi(9));
            z + (z3 + z) / (4.0 * n)
                + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * n * n)
                + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * n.powi(3))
                + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z)
                    / (92160.0 * n.powi(4))
        }
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
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-6);
        assert!((normal_quantile(0.005) + 2.575829).abs() < 1e-6);
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
                (got - expected).abs() < 2e-3,
                "df {df}: {got} vs {expected}"
            );
        }
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
