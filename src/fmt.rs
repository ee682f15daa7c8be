//! Model values as crash prints them, shared by the dashboard and the
//! text report (one formatter each, so the two always agree).

/// Seconds since the epoch as crash's `DATE:` in UTC: `Thu Nov 26 21:21:45 UTC 2026`.
pub fn crash_date(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let wd = WD[days.rem_euclid(7) as usize];
    let mo = MO[(m as usize).clamp(1, 12) - 1];
    format!(
        "{wd} {mo} {d:2} {:02}:{:02}:{:02} UTC {y}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Seconds since the epoch as `2026-11-26 21:21:45` (UTC): sorts as text.
pub(crate) fn iso_date(epoch: i64) -> String {
    let (y, m, d) = civil_from_days(epoch.div_euclid(86_400));
    let secs = epoch.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil: (year, month 1..12, day 1..31).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds as crash's `UPTIME:` (its `convert_time`: `00:00:03`, `2 days, 01:02:03`;
/// crash writes "days" for one day too).
pub(crate) fn crash_uptime(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs as u64
    } else {
        0
    };
    let days = s / 86_400;
    let hms = format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60);
    match days {
        0 => hms,
        d => format!("{d} days, {hms}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_uptimes_as_crash_prints_them() {
        assert_eq!(crash_date(1_795_728_105), "Thu Nov 26 21:21:45 UTC 2026");
        assert_eq!(crash_date(0), "Thu Jan  1 00:00:00 UTC 1970");
        assert_eq!(iso_date(1_795_728_105), "2026-11-26 21:21:45");
        assert_eq!(crash_date(951_782_400), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(crash_uptime(3.9), "00:00:03");
        assert_eq!(crash_uptime(90_061.0), "1 days, 01:01:01");
        assert_eq!(crash_uptime(2.0 * 86_400.0), "2 days, 00:00:00");
    }
}
