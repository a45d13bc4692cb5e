//! Durations as written in runbooks: "30s", "5m", "1h 30m", "2h".

use std::time::Duration;

/// Parses a human-friendly duration ("30s", "1h 30m", "1h30m", "2 hours").
pub fn parse(text: &str) -> Result<Duration, String> {
    let span: jiff::Span = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let signed = jiff::SignedDuration::try_from(span)
        .map_err(|_| format!("`{text}` must use hours, minutes or seconds, not calendar units"))?;
    Duration::try_from(signed).map_err(|_| format!("`{text}` is negative"))
}

/// Formats a duration compactly for plans: "45s", "5m", "1h 30m".
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = [(h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_friendly_forms() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("2 hours").unwrap(), Duration::from_secs(7200));
        assert!(parse("soon").is_err());
        assert!(parse("-5m").is_err());
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(format(Duration::from_secs(45)), "45s");
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
