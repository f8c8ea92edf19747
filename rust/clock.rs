//! Now, in the encodings RQ's data uses: epoch seconds (float) and the hash timestamp
//! `%Y-%m-%dT%H:%M:%S.%fZ` (UTC, microseconds).

use std::time::{SystemTime, UNIX_EPOCH};

/// One reading of the clock, in both encodings.
#[derive(Debug, Clone, PartialEq)]
pub struct Now {
    /// Seconds since the epoch, as RQ writes execution and result times.
    pub epoch: f64,
    /// The same instant as RQ writes it into job hashes.
    pub timestamp: String,
}

impl Now {
    pub fn read() -> Now {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        Now::from_micros(micros as i64)
    }

    pub fn from_micros(micros: i64) -> Now {
        Now {
            epoch: micros as f64 / 1e6,
            timestamp: format_timestamp(micros),
        }
    }

    /// The epoch as text with microsecond precision (what the scripts are given).
    pub fn epoch_text(&self) -> String {
        format!("{:.6}", self.epoch)
    }
}

/// `%Y-%m-%dT%H:%M:%S.%fZ` of microseconds since the epoch (UTC).
pub fn format_timestamp(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:06}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// (year, month, day) of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000000Z");
        // 2026-11-29T07:05:56.589389Z
        assert_eq!(
            format_timestamp(1_795_935_956_589_389),
            "2026-11-29T07:05:56.589389Z"
        );
        // a leap day
        assert_eq!(
            format_timestamp(1_709_164_800_000_001),
            "2024-02-29T00:00:00.000001Z"
        );
    }

    #[test]
    fn epoch_text_keeps_microseconds() {
        assert_eq!(Now::from_micros(1_500_000).epoch_text(), "1.500000");
    }
}
