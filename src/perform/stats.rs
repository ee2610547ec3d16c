//! The statistics the performance features and measures share: one definition of each, so the
//! model's inputs and its figures count alike.

/// The known values of a series.
pub fn known(values: &[Option<f64>]) -> impl Iterator<Item = f64> + Clone + '_ {
    values.iter().flatten().copied()
}

/// The mean of `values` (NaN for none).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The mean and the population standard deviation of `values` (NaN for none).
pub fn mean_and_spread(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    (mean, (values.map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt())
}

/// The population standard deviation of `values` (NaN for none).
pub fn spread(values: impl Iterator<Item = f64> + Clone) -> f64 {
    mean_and_spread(values).1
}

/// The median of `values`, the upper one of an even count (0 for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Pearson's correlation of the pairs where both are known (NaN for fewer than 3 or no spread).
pub fn correlation(x: &[Option<f64>], y: &[Option<f64>]) -> f64 {
    let pairs: Vec<(f64, f64)> =
        x.iter().zip(y).filter_map(|(a, b)| Some(((*a)?, (*b)?))).filter(|(a, b)| a.is_finite() && b.is_finite()).collect();
    if pairs.len() < 3 {
        return f64::NAN;
    }
    let n = pairs.len() as f64;
    let (mx, my) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in pairs {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// Every value known (the tests' series).
#[cfg(test)]
pub fn all_known(values: &[f64]) -> Vec<Option<f64>> {
    values.iter().map(|&v| Some(v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_spreads_and_medians_of_some_values_and_of_none() {
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
        assert_eq!(mean_and_spread([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0].into_iter()), (5.0, 2.0), "the population sd");
        assert_eq!(median(vec![3.0, 1.0, 4.0, 2.0]), 3.0);
        assert!(mean(&[]).is_nan() && spread(std::iter::empty()).is_nan());
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn correlation_skips_unknown_values() {
        assert!((correlation(&all_known(&[1.0, 2.0, 3.0, 4.0]), &all_known(&[2.0, 4.0, 6.0, 8.0])) - 1.0).abs() < 1e-12);
        let with_gap = vec![Some(1.0), None, Some(3.0), Some(2.0)];
        assert!((correlation(&with_gap, &all_known(&[-1.0, 99.0, -3.0, -2.0])) + 1.0).abs() < 1e-12);
        assert!(correlation(&all_known(&[1.0, 1.0, 1.0]), &all_known(&[1.0, 2.0, 3.0])).is_nan());
    }
}
