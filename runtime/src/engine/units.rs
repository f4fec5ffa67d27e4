//! Sizes printed as Docker prints them (its go-units library): `HumanSize` in decimal
//! units for image sizes, NET I/O and BLOCK I/O; `BytesSize` in binary units for memory.
//! Shared by the CLI and by the tests that check its output.

/// go-units' `HumanSizeWithPrecision(size, 3)`: decimal units, 3 significant digits
/// (Docker's image sizes, NET I/O and BLOCK I/O).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    scaled(bytes, 1000.0, &UNITS)
}

/// go-units' `BytesSize`: binary units, 3 significant digits (Docker's MEM USAGE / LIMIT).
pub fn bytes_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    scaled(bytes, 1024.0, &UNITS)
}

fn scaled(bytes: u64, base: f64, units: &[&str; 7]) -> String {
    #[allow(clippy::cast_precision_loss)] // sizes are shown to 3 digits
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    // %.3g: 3 significant digits, trailing zeros dropped.
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_go_units_prints_them() {
        assert_eq!(human_size(4_261_888), "4.26MB");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(12_300), "12.3kB");
        assert_eq!(human_size(100_000_000), "100MB");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(0), "0B");
        assert_eq!(bytes_size(64 * 1024 * 1024), "64MiB");
        assert_eq!(bytes_size(10_485_760 + 524_288), "10.5MiB");
        assert_eq!(bytes_size(1023), "1023B");
    }
}
