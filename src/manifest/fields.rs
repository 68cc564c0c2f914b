//! Checks of field values that a record's types alone accept: a time must be a time,
//! a duration a finite number of seconds. Records are untrusted input, and a reader
//! told which field is wrong can fix it; one that prints a nonsense time cannot.

use anyhow::{Result, bail};

/// The longest duration a run may record: a century, in seconds.
const LONGEST_RUN_S: f64 = 100.0 * 365.25 * 86_400.0;

/// Refuses a time that is not an RFC 3339 UTC time (`2026-01-01T00:00:00Z`, with or
/// without fractions of a second), naming the field.
pub fn time(field: &str, value: &str) -> Result<()> {
    if humantime::parse_rfc3339(value).is_err() {
        bail!("{field} is {value:?}, which is not a time such as 2026-01-01T00:00:00Z");
    }
    Ok(())
}

/// Refuses a duration that is not a finite number of seconds between zero and a
/// century, naming the field.
pub fn duration(field: &str, seconds: f64) -> Result<()> {
    if !seconds.is_finite() || !(0.0..=LONGEST_RUN_S).contains(&seconds) {
        bail!("{field} is {seconds}, which is not a duration in seconds between 0 and a century");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_a_writer_could_get_wrong_are_named() {
        assert!(time("start", "2026-12-02T08:16:05.041Z").is_ok());
        assert!(time("start", "2026-12-02T08:16:05Z").is_ok());
        for bad in ["bogus", "99999-01-01T00:00:00Z", "", "2026-13-01T00:00:00Z"] {
            let err = time("start", bad).unwrap_err().to_string();
            assert!(err.starts_with("start is "), "{err}");
        }
        assert!(duration("end.duration_s", 0.0).is_ok());
        assert!(duration("end.duration_s", 3600.5).is_ok());
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e308] {
            assert!(duration("end.duration_s", bad).is_err(), "{bad}");
        }
    }
}
