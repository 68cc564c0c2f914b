//! Sparklines: a metric series drawn in one line of text, for `show RUN` and `compare`.

/// The levels of a Unicode sparkline, lowest first.
const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The levels of an ASCII sparkline, for terminals without UTF-8 and `--color never`.
const ASCII: [char; 8] = ['_', '.', '-', '~', '=', '+', '*', '#'];

/// How many characters a sparkline is wide at most.
pub const WIDTH: usize = 24;

/// Returns `values` (a series in step order) as at most `width` characters, each the
/// mean of its share of the points, scaled between the lowest and highest of those
/// means; a share holding only NaN or infinities is a space. A flat series is a flat
/// line at the middle.
pub fn sparkline(values: &[f64], width: usize, unicode: bool) -> String {
    let levels = if unicode { BLOCKS } else { ASCII };
    let log = log_scale(values);
    let scaled: Vec<f64>;
    let values = if log {
        scaled = values.iter().map(|v| v.ln()).collect();
        &scaled[..]
    } else {
        values
    };
    let width = width.min(values.len());
    if width == 0 {
        return String::new();
    }
    let means: Vec<Option<f64>> = (0..width)
        .map(|i| {
            let share = &values[i * values.len() / width..(i + 1) * values.len() / width];
            let n = share.iter().filter(|v| v.is_finite()).count();
            // Each value divided first: 1e308 + 1e308 would overflow.
            (n > 0).then(|| {
                share
                    .iter()
                    .filter(|v| v.is_finite())
                    .map(|v| v / n as f64)
                    .sum()
            })
        })
        .collect();
    // Scaled between the lowest and highest share drawn, so the line spans its height.
    let (lo, hi) = means
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    means
        .into_iter()
        .map(|mean| {
            let Some(mean) = mean else {
                return ' ';
            };
            // Halved, so a range from -1e308 to 1e308 does not overflow.
            let level = if hi > lo {
                (((mean / 2.0 - lo / 2.0) / (hi / 2.0 - lo / 2.0)) * 7.0).round() as usize
            } else {
                3
            };
            levels[level.min(7)]
        })
        .collect()
}

/// Returns whether a series is drawn on a log scale: every finite value positive, and the
/// largest at least ten times the smallest (a loss falling over decades would otherwise
/// be one drop and a flat line).
pub fn log_scale(values: &[f64]) -> bool {
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    lo > 0.0 && hi >= lo * 10.0
}

/// Returns a series as one line: its sparkline, then first → last and its count, and
/// whether the drawing is on a log scale.
pub fn line(values: &[f64], unicode: bool) -> String {
    let (Some(first), Some(last)) = (values.first(), values.last()) else {
        return String::new();
    };
    let arrow = if unicode { "→" } else { "->" };
    format!(
        "{}  {} {arrow} {}, {}{}",
        sparkline(values, WIDTH, unicode),
        super::diff::short_float(*first),
        super::diff::short_float(*last),
        crate::cli::output::count(values.len() as u64, "point"),
        if log_scale(values) { ", log scale" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_falling_loss_falls_and_extremes_are_the_ends() {
        let loss: Vec<f64> = (0..100).map(|i| 1.0 - f64::from(i) / 100.0).collect();
        let line = sparkline(&loss, 8, true);
        assert_eq!(line.chars().count(), 8);
        assert_eq!(line.chars().next(), Some('█'));
        assert_eq!(line.chars().last(), Some('▁'));
        assert_eq!(sparkline(&[1.0, 2.0, 3.0], 24, true), "▁▅█");
        assert_eq!(sparkline(&[1.0, 2.0, 3.0], 24, false), "_=#");
    }

    #[test]
    fn flat_empty_and_nan_series_draw_without_dividing_by_zero() {
        assert_eq!(sparkline(&[0.5; 5], 24, true), "▄▄▄▄▄");
        assert_eq!(sparkline(&[], 24, true), "");
        assert_eq!(
            sparkline(&[f64::NAN, 1.0, f64::INFINITY, 2.0], 4, false),
            " _ #"
        );
        assert_eq!(line(&[0.9, 0.5, 0.3], false), "#-_  0.9 -> 0.3, 3 points");
    }

    #[test]
    fn a_loss_falling_over_decades_is_drawn_on_a_log_scale() {
        let loss: Vec<f64> = (1..=1000).map(|i| 10.0 / f64::from(i)).collect();
        assert!(log_scale(&loss));
        let drawn = sparkline(&loss, 8, true);
        // Evenly down, not one drop and a flat line.
        assert!(drawn.chars().filter(|c| *c == '▁').count() <= 2, "{drawn}");
        assert!(line(&loss, true).ends_with(", log scale"));
        assert!(!log_scale(&[0.5, 0.9]) && !log_scale(&[-1.0, 100.0]));
    }

    #[test]
    fn values_at_the_ends_of_the_doubles_draw_at_the_ends() {
        assert_eq!(sparkline(&[1e308, -1e308], 24, true), "█▁");
        assert_eq!(sparkline(&[1.7e308, 1.7e308, -1.7e308], 3, true), "██▁");
        assert!(line(&[3.0], false).ends_with(", 1 point"));
    }
}
