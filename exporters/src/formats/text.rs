//! Small text helpers shared by the renderers.

/// Replaces control characters (and other invisible format characters that
/// can reorder or hide text, such as bidi overrides) with a visible
/// `\u{..}` escape, so a one-line field stays one line and shows what the
/// host sent. Other text is kept as is.
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_invisible(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Control characters, bidi controls and the BOM/zero-width characters.
pub(crate) fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}
