//! Portable shared-memory segment names.

use crate::ring::event::Fnv1a;

/// Conservative shared-memory segment-name budget that stays portable on macOS (`PSHMNAMLEN`
/// is 31 there), counting the leading '/'.
pub const PORTABLE_SHM_SEGMENT_NAME_MAX_LEN: usize = 31;

/// Generate a shared-memory segment name that fits the portable macOS-safe budget.
///
/// Deterministic: the same `base` always gives the same name, so separate processes derive it
/// independently. Characters outside `[A-Za-z0-9_.-]` become `_`. A base that fits is kept as
/// is (`"demo"` → `"/demo"`); a longer one is cut and suffixed with 8 hex digits of its hash,
/// so distinct long bases stay distinct.
pub fn portable_shm_segment_name(base: &str) -> String {
    let clean: String = base
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = if clean.is_empty() {
        "myelon".to_string()
    } else {
        clean
    };
    if clean.len() < PORTABLE_SHM_SEGMENT_NAME_MAX_LEN {
        return format!("/{clean}");
    }
    let mut h = Fnv1a::new();
    h.write(base.as_bytes());
    let tag = format!("{:08x}", h.finish() as u32);
    let keep = PORTABLE_SHM_SEGMENT_NAME_MAX_LEN - 1 - 1 - tag.len();
    format!("/{}_{}", &clean[..keep], tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_are_deterministic() {
        let cases = [
            ("demo", "/demo"),
            ("/demo", "/demo"),
            ("a b/c", "/a_b_c"),
            ("", "/myelon"),
        ];
        for (input, want) in cases {
            assert_eq!(portable_shm_segment_name(input), want, "{input:?}");
        }
        let long = "x".repeat(100);
        let n = portable_shm_segment_name(&long);
        assert_eq!(n.len(), PORTABLE_SHM_SEGMENT_NAME_MAX_LEN);
        assert_eq!(n, portable_shm_segment_name(&long));
        assert_ne!(n, portable_shm_segment_name(&"x".repeat(101)));
        let exact = "y".repeat(PORTABLE_SHM_SEGMENT_NAME_MAX_LEN - 1);
        assert_eq!(portable_shm_segment_name(&exact), format!("/{exact}"));
    }

    #[test]
    fn unicode_is_replaced_not_split() {
        let n = portable_shm_segment_name(&"é".repeat(40));
        assert!(n.len() <= PORTABLE_SHM_SEGMENT_NAME_MAX_LEN);
        assert!(n.is_ascii());
    }
}
