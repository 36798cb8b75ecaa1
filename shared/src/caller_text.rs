//! Caller-written text on its way into storage, logs and answers: the one place that finds key
//! material (percent-encoded or not) and redacts it, and that strips the invisible format
//! characters which hide or reorder text from whoever reads it later (a brand, or an AI assistant).
//!
//! The last 6 characters of a key are a public checksum of the 34 before them, so a key's prefix
//! and any long run of its characters are as good as the key. Redaction therefore runs on the
//! whole text before it is cut to a stored length, and treats `tk_` followed by
//! [`KEY_FRAGMENT_MIN_CHARS`] or more alphanumerics as key material, whole key or not.

use std::borrow::Cow;

use crate::token::KEY_PREFIX;

/// `tk_` followed by at least this many alphanumerics is redacted. Below it, fewer than 20 of a
/// key's 40 characters remain: at least 14 random base62 characters (over 80 bits) stay unknown.
pub const KEY_FRAGMENT_MIN_CHARS: usize = 20;
/// What key material is replaced with.
pub const REDACTED: &str = "tk_<redacted>";

/// Whether `c` is a format character that hides or reorders text without being seen: Unicode tag
/// characters ("ASCII smuggling"), bidirectional embeddings, overrides, isolates and marks,
/// zero-width spaces and joiners other than ZWJ and ZWNJ (which emoji and several scripts need),
/// invisible operators, the byte-order mark, soft hyphen, interlinear annotation controls, the
/// deprecated format controls, and the supplementary variation selectors (used to smuggle bytes;
/// the emoji variation selectors U+FE00-FE0F stay).
pub fn is_hidden_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'
            | '\u{200E}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// The first hidden format character in `text`, if any (for refusing brand-written fields).
pub fn first_hidden_format_char(text: &str) -> Option<char> {
    text.chars().find(|&c| is_hidden_format_char(c))
}

/// `text` without its hidden format characters (borrowed when it has none).
pub fn without_hidden_format_chars(text: &str) -> Cow<'_, str> {
    if first_hidden_format_char(text).is_none() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .filter(|&c| !is_hidden_format_char(c))
            .collect(),
    )
}

/// `text` with every piece of key material replaced by [`REDACTED`]: `tk_` and at least
/// [`KEY_FRAGMENT_MIN_CHARS`] alphanumerics, read through percent-encoding (`%74k_…`, `tk%5F…`,
/// `%41` inside the body), the one encoding a decoder downstream (paths, query strings, URLs in
/// stored fields) would undo. Borrowed when there is nothing to redact.
pub fn redact_keys(text: &str) -> Cow<'_, str> {
    let spans = key_spans(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut written = 0;
    for (start, end) in spans {
        out.push_str(&text[written..start]);
        out.push_str(REDACTED);
        written = end;
    }
    out.push_str(&text[written..]);
    Cow::Owned(out)
}

/// Whether `text` holds key material (what [`redact_keys`] would replace).
pub fn contains_key_material(text: &str) -> bool {
    !key_spans(text).is_empty()
}

/// Caller text as it may be stored, logged or echoed: hidden format characters stripped, key
/// material redacted on the whole text, then cut to at most `max_chars` characters, then redacted
/// again in case the cut left a key-shaped tail (it cannot after the first pass; the second pass
/// keeps the guarantee independent of that reasoning).
pub fn for_record(text: &str, max_chars: usize) -> String {
    cut_and_redacted(text, max_chars, None)
}

/// Like [`for_record`], ending a cut text with `…` (within `max_chars`) so a reader sees it was cut.
pub fn for_record_marked(text: &str, max_chars: usize) -> String {
    cut_and_redacted(text, max_chars, Some('…'))
}

fn cut_and_redacted(text: &str, max_chars: usize, marker: Option<char>) -> String {
    let visible = without_hidden_format_chars(text);
    let redacted = redact_keys(&visible);
    let Some((at, _)) = redacted.char_indices().nth(max_chars) else {
        return redacted.into_owned();
    };
    let kept = match marker {
        Some(_) => redacted[..at]
            .char_indices()
            .nth(max_chars.saturating_sub(1))
            .map_or(at, |(before_last, _)| before_last),
        None => at,
    };
    let mut cut = redact_keys(&redacted[..kept]).into_owned();
    cut.extend(marker);
    cut
}

/// Raw header bytes as text: UTF-8 kept, invalid bytes and control characters escaped as `\xNN`,
/// so a user agent with one odd byte is still recorded (and searchable) rather than `unknown`.
pub fn escaped_header_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c.is_ascii() {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// Byte spans of `text` (start, end) holding key material, in order, not overlapping.
fn key_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    // Key material starts only at a raw `t` or at a `%` (a percent-encoded `t`; a `%XX` holds
    // neither inside it), so the scan jumps from one to the next: an MCP answer of a few
    // kilobytes is scanned on every response, and trying each byte showed up in its profile.
    let next_start = |from: usize| {
        bytes
            .get(from..)
            .and_then(|rest| memchr::memchr2(b't', b'%', rest))
            .map_or(bytes.len(), |offset| from + offset)
    };
    let mut at = next_start(0);
    while at < bytes.len() {
        match key_at(bytes, at) {
            Some(end) => {
                spans.push((at, end));
                at = next_start(end);
            }
            None => at = next_start(at + unit_at(bytes, at).map_or(1, |(_, len)| len)),
        }
    }
    spans
}

/// If key material starts at byte `at`, where it ends.
fn key_at(bytes: &[u8], at: usize) -> Option<usize> {
    let mut position = at;
    for expected in KEY_PREFIX.bytes() {
        let (byte, len) = unit_at(bytes, position)?;
        if byte != expected {
            return None;
        }
        position += len;
    }
    let mut run = 0;
    while let Some((byte, len)) = unit_at(bytes, position) {
        if !byte.is_ascii_alphanumeric() {
            break;
        }
        run += 1;
        position += len;
    }
    (run >= KEY_FRAGMENT_MIN_CHARS).then_some(position)
}

/// The decoded byte at `at` and how many raw bytes it takes: `%XX` is one byte, anything else is
/// itself.
fn unit_at(bytes: &[u8], at: usize) -> Option<(u8, usize)> {
    let first = *bytes.get(at)?;
    if first == b'%'
        && let (Some(high), Some(low)) = (
            bytes.get(at + 1).and_then(|&b| hex_value(b)),
            bytes.get(at + 2).and_then(|&b| hex_value(b)),
        )
    {
        return Some((high * 16 + low, 3));
    }
    Some((first, 1))
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::generate_key;

    fn key() -> String {
        generate_key().unwrap().expose_secret().to_owned()
    }

    /// Every way the decoders downstream accept the same key: plain, fully percent-encoded,
    /// prefix encoded, body characters encoded, lower- and upper-case hex.
    fn encodings(key: &str) -> Vec<String> {
        let encode_all = |text: &str, upper: bool| -> String {
            text.bytes()
                .map(|b| {
                    if upper {
                        format!("%{b:02X}")
                    } else {
                        format!("%{b:02x}")
                    }
                })
                .collect()
        };
        vec![
            key.to_owned(),
            encode_all(key, false),
            encode_all(key, true),
            format!("%74k_{}", &key[3..]),
            format!("tk%5F{}", &key[3..]),
            format!(
                "{}{}{}",
                &key[..10],
                encode_all(&key[10..20], false),
                &key[20..]
            ),
            format!("\u{200B}t\u{E0041}k_{}", &key[3..]),
        ]
    }

    /// 20-character windows of the key, which must never survive.
    fn windows(key: &str) -> Vec<&str> {
        (0..=key.len() - KEY_FRAGMENT_MIN_CHARS)
            .map(|start| &key[start..start + KEY_FRAGMENT_MIN_CHARS])
            .collect()
    }

    /// Pseudo-random printable filler, with characters that sit next to keys in real text.
    fn filler(seed: &mut u64, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcXYZ019 /?=&%._-tk";
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                char::from(ALPHABET[(*seed % ALPHABET.len() as u64) as usize])
            })
            .collect()
    }

    /// The property the review asked for: a key at any position, in any accepted encoding, cut at
    /// any length, leaves nothing of 20 or more of its characters in the output, whether decoded
    /// or not.
    #[test]
    fn no_key_survives_any_position_encoding_or_cut() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for round in 0..24 {
            let key = key();
            for encoded in encodings(&key) {
                let before = filler(&mut seed, round * 7 % 53);
                let after = filler(&mut seed, round * 11 % 41);
                let text = format!("{before}{encoded}{after}");
                let total = text.chars().count();
                for cut in 0..=total + 1 {
                    let outputs = [for_record(&text, cut), for_record_marked(&text, cut)];
                    for output in outputs {
                        let decoded: String = form_urlencoded::parse(
                            format!("x={}", output.replace('+', "%2B")).as_bytes(),
                        )
                        .map(|(_, value)| value.into_owned())
                        .collect();
                        for window in windows(&key) {
                            assert!(
                                !output.contains(window) && !decoded.contains(window),
                                "{window} survived in {output:?} (cut {cut} of {text:?})"
                            );
                        }
                        assert!(output.chars().count() <= cut.max(1) || cut == 0);
                    }
                }
            }
        }
    }

    /// The scan jumps from one `t` or `%` to the next: a key right after a near-miss (a lone `%`,
    /// a broken escape, a `t`, a `%74` that starts no key) is still found, in every encoding.
    #[test]
    fn a_key_after_a_near_miss_is_found() {
        let key = key();
        for encoded in encodings(&key) {
            for lead in [
                "%", "%2", "%7", "t", "tk", "tk%", "%74", "%74k", "%%", "T", "\u{e9}t",
            ] {
                let text = format!("{{\"status\":\"{lead}{encoded}\",\"total\":3}}");
                let redacted = for_record(&text, usize::MAX);
                assert!(!redacted.contains(&key[3..]), "{text} -> {redacted}");
                assert!(redacted.contains(REDACTED), "{text} -> {redacted}");
            }
        }
    }

    #[test]
    fn text_without_keys_is_borrowed_and_unchanged() {
        for text in [
            "",
            "no keys here",
            "tk_",
            "tk_short",
            "tk_0123456789abcdefghi", // 19: below the fragment length
            "100% done, %zz, %7",
            "https://shop.example/?utm_source=tk_promo&x=1",
        ] {
            assert!(matches!(redact_keys(text), Cow::Borrowed(_)), "{text}");
            assert!(!contains_key_material(text), "{text}");
        }
    }

    #[test]
    fn fragments_and_runs_are_redacted_whole() {
        let key = key();
        assert_eq!(redact_keys(&key), REDACTED);
        assert_eq!(redact_keys(&key[..37]), REDACTED);
        assert_eq!(redact_keys("tk_0123456789abcdefghij"), REDACTED);
        assert_eq!(
            redact_keys(&format!("a{key}xyz/b")),
            format!("a{REDACTED}/b")
        );
        assert_eq!(
            redact_keys(&format!("tk_tk_{}", &key[3..])),
            format!("tk_{REDACTED}")
        );
        assert_eq!(
            redact_keys(&format!("/p/%74k_{}?q", &key[3..])),
            format!("/p/{REDACTED}?q")
        );
        assert_eq!(
            redact_keys(&format!("{key} and {key}")),
            format!("{REDACTED} and {REDACTED}")
        );
    }

    #[test]
    fn hidden_format_characters_are_stripped_and_joiners_kept() {
        let text = "a\u{E0041}\u{E0042}b\u{202E}c\u{2066}d\u{200B}e\u{2060}f\u{FEFF}g\u{200F}h";
        assert_eq!(without_hidden_format_chars(text), "abcdefgh");
        // ZWJ in a family emoji, ZWNJ in Persian, VS16 on a heart: all kept.
        for kept in [
            "👨\u{200D}👩\u{200D}👧",
            "می\u{200C}خواهم",
            "❤\u{FE0F}",
            "plain",
        ] {
            assert!(matches!(
                without_hidden_format_chars(kept),
                Cow::Borrowed(_)
            ));
            assert_eq!(first_hidden_format_char(kept), None);
        }
        assert_eq!(first_hidden_format_char("x\u{E0001}"), Some('\u{E0001}'));
    }

    #[test]
    fn cut_text_is_marked_within_its_bound() {
        assert_eq!(for_record_marked("abcdef", 4), "abc…");
        assert_eq!(for_record_marked("abcd", 4), "abcd");
        assert_eq!(for_record("abcdef", 4), "abcd");
    }

    #[test]
    fn header_bytes_are_escaped_not_lost() {
        assert_eq!(escaped_header_text(b"curl/8.0"), "curl/8.0");
        assert_eq!(escaped_header_text("agent é".as_bytes()), "agent é");
        assert_eq!(
            escaped_header_text(b"bad \xff byte\x7f"),
            "bad \\xff byte\\x7f"
        );
    }
}
