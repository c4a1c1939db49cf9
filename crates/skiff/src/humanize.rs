//! Sizes and ages for people, in the forms docker users read every day.

use chrono::{DateTime, Utc};

/// Bytes for people: 1.2 MiB.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// A duration as docker's go-units `HumanDuration` says it ("About a minute", "3 days").
pub fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    let minutes = d.num_minutes();
    // go-units rounds to the nearest hour from here on.
    let hours = (d + chrono::Duration::minutes(30)).num_hours();
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", d.num_hours() / 24 / 365),
    }
}

/// An RFC 3339 time as docker's CREATED column shows it ("5 minutes ago"); the text itself when it
/// is not a time (an empty or odd field from an older daemon).
pub fn ago(rfc3339: &str, now: DateTime<Utc>) -> String {
    match DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => format!("{} ago", human_duration(now.signed_duration_since(t))),
        Err(_) => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn durations_read_as_docker_says_them() {
        for (d, want) in [
            (Duration::milliseconds(300), "Less than a second"),
            (Duration::seconds(-5), "Less than a second"),
            (Duration::seconds(1), "1 second"),
            (Duration::seconds(59), "59 seconds"),
            (Duration::seconds(90), "About a minute"),
            (Duration::minutes(5), "5 minutes"),
            (Duration::minutes(59), "59 minutes"),
            (Duration::minutes(89), "About an hour"),
            (Duration::minutes(91), "2 hours"),
            (Duration::hours(47), "47 hours"),
            (Duration::hours(48), "2 days"),
            (Duration::days(13), "13 days"),
            (Duration::days(14), "2 weeks"),
            (Duration::days(59), "8 weeks"),
            (Duration::days(60), "2 months"),
            (Duration::days(729), "24 months"),
            (Duration::days(365 * 3), "3 years"),
        ] {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn ages_from_rfc3339() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").expect("now").with_timezone(&Utc);
        assert_eq!(ago("2024-05-01T11:55:00.123456789Z", now), "4 minutes ago");
        assert_eq!(ago("2024-05-01T13:00:00+02:00", now), "About an hour ago");
        assert_eq!(ago("", now), "");
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
