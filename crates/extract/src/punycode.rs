//! Punycode (RFC 3492) encoding, needed only to check the length of
//! internationalised domain labels the way twitter-text does.

const BASE: u32 = 36;
const T_MIN: u32 = 1;
const T_MAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 128;

fn adapt(mut delta: u32, n_points: u32, first_time: bool) -> u32 {
    delta /= if first_time { DAMP } else { 2 };
    delta += delta / n_points;
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
}

fn digit(value: u32) -> char {
    // Values are below 36 by construction: a-z then 0-9.
    let byte = if value < 26 { b'a' + value as u8 } else { b'0' + (value as u8 - 26) };
    char::from(byte)
}

/// Encodes `input` to Punycode (without the `xn--` prefix); `None` on overflow.
pub(crate) fn encode(input: &str) -> Option<String> {
    let code_points: Vec<u32> = input.chars().map(u32::from).collect();
    let mut output: String = input.chars().filter(char::is_ascii).collect();
    let n_basic = output.len() as u32;
    let mut n_handled = n_basic;
    if n_basic > 0 {
        output.push('-');
    }
    let mut n = INITIAL_N;
    let mut delta: u32 = 0;
    let mut bias = INITIAL_BIAS;
    let total = code_points.len() as u32;
    while n_handled < total {
        let next = code_points.iter().copied().filter(|&point| point >= n).min()?;
        delta = delta.checked_add((next - n).checked_mul(n_handled + 1)?)?;
        n = next;
        for &point in &code_points {
            if point < n {
                delta = delta.checked_add(1)?;
            }
            if point == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    output.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                output.push(digit(q));
                bias = adapt(delta, n_handled + 1, n_handled == n_basic);
                delta = 0;
                n_handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n += 1;
    }
    Some(output)
}

/// Length of the ASCII form of a domain label as punycode.js's `toASCII`
/// gives it: each part (split on the dots it recognises) that has non-ASCII
/// characters becomes `xn--` + Punycode. `None` if encoding overflows.
pub(crate) fn ascii_label_len(label: &str) -> Option<usize> {
    let mut total = 0;
    for (part_idx, part) in label.split(['.', '\u{3002}', '\u{ff0e}', '\u{ff61}']).enumerate() {
        if part_idx > 0 {
            total += 1;
        }
        total += if part.is_ascii() { part.len() } else { 4 + encode(part)?.len() };
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_rfc_examples() {
        assert_eq!(encode("münchen").as_deref(), Some("mnchen-3ya"));
        assert_eq!(encode("bücher").as_deref(), Some("bcher-kva"));
        assert_eq!(encode("☃").as_deref(), Some("n3h"));
        assert_eq!(encode("みんな").as_deref(), Some("q9jyb4c"));
    }

    #[test]
    fn measures_labels() {
        assert_eq!(ascii_label_len("example"), Some(7));
        assert_eq!(ascii_label_len("みんな"), Some(11));
    }
}
