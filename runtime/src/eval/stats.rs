//! The statistics of a report: the Wilson score interval for an accuracy, percentiles.

/// The 95% Wilson score interval for `k` successes out of `n` (z = 1.959964). Unlike the normal
/// approximation it stays inside [0, 1] and is sensible at 0/n and n/n, which small task sets hit.
pub fn wilson_95(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    const Z: f64 = 1.959_963_984_540_054;
    let (n, p) = (n as f64, k as f64 / n as f64);
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The `q`-quantile (0..=1) of `values` by linear interpolation between closest ranks (numpy's
/// default); 0 for no values.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: tests/eval/wilson_reference.py (Python's floats and NormalDist, checked
    // against statsmodels' proportion_confint(method="wilson") where it is installed).
    #[test]
    fn wilson_matches_the_reference() {
        let cases = [
            (0, 10, 2.7755575615628914e-17, 0.27753279986288915),
            (10, 10, 0.7224672001371109, 1.0),
            (7, 10, 0.39677814746114537, 0.8922087325936989),
            (81, 164, 0.4184045401918173, 0.569679452797444),
        ];
        for (k, n, lo, hi) in cases {
            let (l, h) = wilson_95(k, n);
            assert!(
                (l - lo).abs() < 1e-12 && (h - hi).abs() < 1e-12,
                "{k}/{n}: {l} {h}"
            );
        }
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.95), 4.8);
        assert_eq!(quantile(&v, 1.0), 5.0);
        assert_eq!(quantile(&[7.0], 0.95), 7.0);
    }
}
