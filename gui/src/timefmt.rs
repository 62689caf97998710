//! How times read in the app: "14:05" today, "Yesterday", weekday names this week, dates before.

use chrono::{DateTime, Datelike, Local, NaiveDate, TimeZone};

fn local(ms: u64) -> Option<DateTime<Local>> {
    Local.timestamp_millis_opt(i64::try_from(ms).ok()?).single()
}

/// The local calendar day of a unix-millisecond time.
pub fn day_of(ms: u64) -> Option<NaiveDate> {
    local(ms).map(|t| t.date_naive())
}

/// The label of a date separator: "Today", "Yesterday", or the date.
pub fn day_label(day: NaiveDate, today: NaiveDate) -> String {
    match (today - day).num_days() {
        0 => "Today".to_owned(),
        1 => "Yesterday".to_owned(),
        _ if day.year() == today.year() => day.format("%A, %-d %B").to_string(),
        _ => day.format("%-d %B %Y").to_string(),
    }
}

/// The time of day of a message ("14:05").
pub fn clock(ms: u64) -> String {
    local(ms).map_or_else(String::new, |t| t.format("%H:%M").to_string())
}

/// The short time in the conversation list: the clock today, "Yesterday", the weekday within a week,
/// else the date.
pub fn list_time(ms: u64, now_ms: u64) -> String {
    let (Some(day), Some(today)) = (day_of(ms), day_of(now_ms)) else {
        return String::new();
    };
    match (today - day).num_days() {
        0 => clock(ms),
        1 => "Yesterday".to_owned(),
        2..=6 => day.format("%a").to_string(),
        _ => day.format("%d/%m/%y").to_string(),
    }
}

/// When a message was written, with its date: "Today 20:17", "Yesterday 09:02", "Mon 3 Dec 20:17"
/// this year, "3 Dec 2025 20:17" before (for search results, where the clock alone says too little).
pub fn when(ms: u64, now_ms: u64) -> String {
    let (Some(day), Some(today)) = (day_of(ms), day_of(now_ms)) else {
        return String::new();
    };
    let date = match (today - day).num_days() {
        0 => "Today".to_owned(),
        1 => "Yesterday".to_owned(),
        _ if day.year() == today.year() => day.format("%a %-d %b").to_string(),
        _ => day.format("%-d %b %Y").to_string(),
    };
    format!("{date} {}", clock(ms))
}

/// A time in full, to the second: "Sunday 6 December 2026, 19:30:05" (a message's "Info").
pub fn full(ms: u64) -> String {
    local(ms).map_or_else(String::new, |t| {
        t.format("%A %-d %B %Y, %H:%M:%S").to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_name_today_yesterday_then_dates() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        assert_eq!(day_label(today, today), "Today");
        assert_eq!(day_label(today.pred_opt().unwrap(), today), "Yesterday");
        assert_eq!(
            day_label(NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(), today),
            "Friday, 20 November"
        );
        assert_eq!(
            day_label(NaiveDate::from_ymd_opt(2025, 1, 3).unwrap(), today),
            "3 January 2025"
        );
    }

    #[test]
    fn list_times_shorten_with_age() {
        let now = 1_800_000_000_000u64;
        assert_eq!(list_time(now, now), clock(now));
        assert_eq!(list_time(now - 86_400_000, now), "Yesterday");
        assert_eq!(list_time(now - 40 * 86_400_000, now).len(), 8);
    }

    #[test]
    fn search_times_carry_the_date() {
        let now = 1_800_000_000_000u64;
        assert_eq!(when(now, now), format!("Today {}", clock(now)));
        let older = now - 400 * 86_400_000;
        let year = day_of(older).unwrap().year().to_string();
        assert!(when(older, now).ends_with(&format!("{year} {}", clock(older))));
    }
}
