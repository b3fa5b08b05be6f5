//! Kinesis sequence numbers are decimal strings of up to 128 digits: compared as big integers
//! (length first), never as strings.

use std::cmp::Ordering;

pub(crate) fn cmp(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_not_lexicographic() {
        assert_eq!(cmp("9", "10"), Ordering::Less);
        assert_eq!(
            cmp(
                "49590338271490256608559692538361571095921575989136588898",
                "49590338271490256608559692540925702759324208523137515618"
            ),
            Ordering::Less
        );
        assert_eq!(cmp("007", "7"), Ordering::Equal);
        assert_eq!(cmp("100", "99"), Ordering::Greater);
    }
}
