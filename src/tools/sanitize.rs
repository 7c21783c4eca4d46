//! Record contents are data: invisible and bidirectional control characters are stripped from
//! every finished tool result before it reaches the model (`--sanitize on`, the default).
//!
//! Cell text can carry instructions a human never sees: zero-width characters, bidi overrides
//! that reorder what is displayed, and Unicode tag characters (U+E0000–U+E007F), which spell out
//! ASCII invisibly ("ASCII smuggling"). Stripping them once, on the finished result, covers every
//! path by which cell text reaches the model (record reads, search, comments, analysis samples,
//! inline CSV, sync previews, error messages quoting a value) without each tool having to
//! remember. Both copies of a result are cleaned: the structured content, and the text content,
//! which is that JSON serialized (control characters appear there as `\u0001` escapes, so a JSON
//! text is parsed, cleaned and serialized again rather than edited as text).

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value};

/// Whether `c` is stripped: C0 and C1 controls (and DEL) except tab, line feed and carriage
/// return; soft hyphen; zero-width and directional marks (U+200B–U+200F); bidi embeddings and
/// overrides (U+202A–U+202E); word joiner and invisible operators (U+2060–U+2064); bidi isolates
/// (U+2066–U+2069); the byte-order mark / zero-width no-break space (U+FEFF); Unicode tags
/// (U+E0000–U+E007F).
pub(crate) fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}'
        | '\u{b}'..='\u{c}'
        | '\u{e}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{ad}'
        | '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}'
        | '\u{e0000}'..='\u{e007f}')
}

/// Whether `s` may hold a hidden character: every one of them is a control byte or outside
/// ASCII, so text of printable ASCII (most cell text) is cleared by one scan of its bytes,
/// without decoding characters.
fn may_hold_hidden(s: &str) -> bool {
    has_suspect_byte(s.as_bytes()) && s.chars().any(is_hidden)
}

/// A byte that may belong to a hidden character: a control byte other than tab, line feed and
/// carriage return, DEL, or any byte outside ASCII.
fn is_suspect_byte(b: u8) -> bool {
    b >= 0x7f || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
}

/// Whether `bytes` holds a suspect byte ([`is_suspect_byte`]). Eight bytes at a time: a word
/// with no byte at or above 0x80, none below 0x20 and no DEL is passed over with a few
/// arithmetic operations; a word that may have one (the bit tricks can flag a byte next to a
/// real match) is checked byte by byte. Every result and tool text goes through this scan.
fn has_suspect_byte(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let (words, rest) = bytes.as_chunks::<8>();
    for word in words {
        let x = u64::from_le_bytes(*word);
        // A byte below 0x20 borrows in `x - 0x20..`, setting its high bit (ASCII bytes only:
        // a byte with its high bit set is flagged by `x & HIGH` anyway).
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        // DEL: a zero byte of `x ^ 0x7f..`.
        let del = x ^ (ONES * 0x7f);
        let del = del.wrapping_sub(ONES) & !del & HIGH;
        if ((x & HIGH) | below_space | del) != 0 && word.iter().any(|&b| is_suspect_byte(b)) {
            return true;
        }
    }
    rest.iter().any(|&b| is_suspect_byte(b))
}

/// Strip hidden characters from `s` in place; returns how many were removed (no allocation
/// when there are none).
pub(crate) fn strip(s: &mut String) -> usize {
    if !may_hold_hidden(s) {
        return 0;
    }
    let before = s.chars().count();
    s.retain(|c| !is_hidden(c));
    before - s.chars().count()
}

/// Strip hidden characters from every string of `v`, object keys included (a field name is
/// text the model reads too). Returns how many were removed.
pub(crate) fn strip_value(v: &mut Value) -> usize {
    match v {
        Value::String(s) => strip(s),
        Value::Array(items) => items.iter_mut().map(strip_value).sum(),
        Value::Object(map) => {
            let mut n: usize = map.values_mut().map(strip_value).sum();
            if map.keys().any(|k| may_hold_hidden(k)) {
                let old = std::mem::take(map);
                let mut clean = Map::with_capacity(old.len());
                for (mut k, val) in old {
                    n += strip(&mut k);
                    // Two keys equal once cleaned: the first one wins.
                    clean.entry(k).or_insert(val);
                }
                *map = clean;
            }
            n
        }
        _ => 0,
    }
}

/// Whether a JSON text may hold an escaped hidden character (`\u0001`, `\b`, `\f`).
fn may_hold_escapes(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b'\\', bytes).any(|i| matches!(bytes.get(i + 1), Some(b'u' | b'b' | b'f')))
}

/// Strip hidden characters from a text block: a JSON text is parsed, cleaned and serialized
/// again (compact, as rmcp renders structured results); any other text is cleaned as is.
fn strip_text(text: &mut String) -> usize {
    let raw = may_hold_hidden(text);
    if !raw && !may_hold_escapes(text) {
        return 0;
    }
    if let Ok(mut v) = serde_json::from_str::<Value>(text) {
        let n = strip_value(&mut v);
        if n > 0
            && let Ok(clean) = serde_json::to_string(&v)
        {
            *text = clean;
            return n;
        }
        if n == 0 {
            return 0;
        }
    }
    strip(text)
}

/// Strip hidden characters from a finished tool result: structured content and text content.
/// Returns how many characters were removed (counted once per copy).
pub(crate) fn sanitize_result(result: &mut CallToolResult) -> usize {
    let mut n = 0;
    if let Some(v) = &mut result.structured_content {
        n += strip_value(v);
    }
    for c in &mut result.content {
        if let ContentBlock::Text(t) = c {
            n += strip_text(&mut t.text);
        }
    }
    if n > 0 {
        tracing::debug!(
            stripped = n,
            "removed invisible or bidi control characters from a tool result"
        );
    }
    n
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// "hi" followed by the tag characters spelling "ok".
    const TAGGED: &str = "hi\u{e006f}\u{e006b}";

    /// The word-at-a-time scan says what a byte-by-byte scan says: every byte value at every
    /// position of buffers around the word size, among printable ASCII and next to tab, line
    /// feed and carriage return (which are not suspect).
    #[test]
    fn the_word_scan_agrees_with_the_byte_scan() {
        for len in 0..=19 {
            for pos in 0..len {
                for fill in [b'a', b'\t', b'\n', b'\r', b' ', b'~'] {
                    for b in 0..=u8::MAX {
                        let mut buf = vec![fill; len];
                        buf[pos] = b;
                        assert_eq!(
                            has_suspect_byte(&buf),
                            buf.iter().any(|&b| is_suspect_byte(b)),
                            "byte {b:#04x} at {pos} of {len} among {fill:#04x}"
                        );
                    }
                }
            }
        }
        assert!(!has_suspect_byte(b""));
        assert!(!has_suspect_byte(
            b"printable ASCII text, long enough for words: {}[]~"
        ));
        assert!(has_suspect_byte("caf\u{e9} is not ASCII".as_bytes()));
        assert!(has_suspect_byte(b"0123456789abcdef\x7f"));
    }

    #[test]
    fn hidden_characters_go_visible_ones_stay() {
        let mut s = format!(
            "a\u{200b}b\u{202e}c\u{2066}d\u{feff}e\u{ad}f\u{1}g\u{85}h\u{7f}i{TAGGED}\t\n\r é 中 🙂 \u{2014}"
        );
        assert_eq!(strip(&mut s), 10);
        assert_eq!(s, "abcdefghihi\t\n\r é 中 🙂 \u{2014}");
        let mut plain = "nothing to do".to_owned();
        assert_eq!(strip(&mut plain), 0);
    }

    #[test]
    fn values_keys_and_both_copies_of_a_result() {
        let dirty = json!({"records": [{"id": "rec1", "fields": {"Na\u{200d}me": format!("x{TAGGED}\u{1}")}}], "n": 1});
        let mut result = CallToolResult::structured(dirty.clone());
        let text = serde_json::to_string(&dirty).unwrap();
        assert!(text.contains("\\u0001"), "{text}");
        let n = sanitize_result(&mut result);
        let clean = json!({"records": [{"id": "rec1", "fields": {"Name": "xhi"}}], "n": 1});
        assert_eq!(result.structured_content, Some(clean.clone()));
        let text = result.content[0].as_text().unwrap().text.clone();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), clean);
        assert_eq!(text, serde_json::to_string(&clean).unwrap());
        assert_eq!(n, 2 * 4);
    }

    #[test]
    fn plain_text_is_cleaned_as_text() {
        let mut result = CallToolResult::error(vec![ContentBlock::text(format!(
            "bad value \"{TAGGED}\" in \\u0041"
        ))]);
        sanitize_result(&mut result);
        assert_eq!(
            result.content[0].as_text().unwrap().text,
            "bad value \"hi\" in \\u0041"
        );
    }
}
