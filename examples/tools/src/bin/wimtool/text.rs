//! Text formatting shared by the commands: FILETIMEs as dates, attribute names.

use wim_image::defs::{filetime_to_unix, FileAttributes};

/// A FILETIME as `Sun Nov 22 09:41:37 2026 UTC` (the format `wimlib-imagex` prints).
pub fn filetime(ft: u64) -> String {
    let (secs, _) = filetime_to_unix(ft);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {} UTC",
        WD[days.rem_euclid(7) as usize],
        MO[(m - 1) as usize],
        d,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        y
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The names of the attributes set, as `FILE_ATTRIBUTE_*`.
pub fn attribute_names(a: FileAttributes) -> Vec<String> {
    a.iter_names()
        .map(|(n, _)| format!("FILE_ATTRIBUTE_{n}"))
        .collect()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        // 2026-11-22 09:41:37 UTC.
        let unix = 1_795_340_497u64;
        let ft = unix * 10_000_000 + 116_444_736_000_000_000;
        assert_eq!(filetime(ft), "Sun Nov 22 09:41:37 2026 UTC");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
