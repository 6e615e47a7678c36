//! Escaping for strings that come from outside perfwarden (branch names,
//! run notes, machine strings, probe evidence, contract and case names)
//! before they go into markdown that GitHub renders: the summary and the
//! pull-request comment. Pure functions.
//!
//! - [`text`]: one line of markdown text that stays text: no HTML, links,
//!   images, emphasis, code, math or table cells, and no `@mentions` or
//!   `#references` (a zero-width space follows each `@` and a `#` before a
//!   digit, so GitHub neither notifies anyone nor links an issue).
//! - [`code`]: a plain name as inline code, anything else as [`text`].
//! - [`mermaid_label`]: a label inside a mermaid chart's double quotes.
//! - [`link_url`]: a link target, or nothing when it is not http(s).

/// Breaks a mention or an issue reference without changing what is seen.
const ZERO_WIDTH_SPACE: char = '\u{200B}';

/// `raw` as one line of inert markdown text.
pub fn text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 8);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '|' | '~' | '!' | '$' | '('
            | ')' => {
                out.push('\\');
                out.push(c);
            }
            '@' => {
                out.push('@');
                out.push(ZERO_WIDTH_SPACE);
            }
            '#' => {
                out.push('#');
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    out.push(ZERO_WIDTH_SPACE);
                }
            }
            '\r' | '\n' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `raw` as inline code when it is a plain name (letters, digits, `-`, `_`,
/// `.`, `/`), such as a commit or a branch; else as [`text`].
pub fn code(raw: &str) -> String {
    let plain = !raw.is_empty()
        && raw
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if plain { format!("`{raw}`") } else { text(raw) }
}

/// `raw` as a label inside a mermaid chart's double quotes: letters, digits
/// and a few harmless marks kept, anything else (quotes, brackets, backticks,
/// line breaks) replaced by `_`.
pub fn mermaid_label(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '%' | '+' | '/' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `raw` as a markdown link target: an http(s) URL with spaces, brackets,
/// quotes and angle brackets percent-encoded; `None` for anything else
/// (`javascript:`, relative paths, text).
pub fn link_url(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let lower = raw.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            ' ' | '(' | ')' | '<' | '>' | '"' | '\'' | '`' | '\\' | '[' | ']' | '|' => {
                out.push_str(&format!("%{:02X}", c as u32));
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_unchanged() {
        for name in [
            "performance-001",
            "main",
            "feature/faster-worker",
            "Intel(R)",
        ] {
            let escaped = text(name);
            assert_eq!(escaped.replace('\\', ""), name, "{escaped}");
        }
        assert_eq!(text("performance-001"), "performance-001");
        assert_eq!(text("v1.2 x86_64"), "v1.2 x86\\_64");
    }

    #[test]
    fn html_images_and_code_stay_text() {
        let branch = "x`<img/src=evil.example/p.gif>`@octo-org/everyone";
        let escaped = text(branch);
        assert_eq!(
            escaped,
            "x\\`\\<img/src=evil.example/p.gif\\>\\`@\u{200B}octo-org/everyone"
        );
        assert!(!escaped.replace("\\<", "").contains('<'));
        assert!(!escaped.contains("@octo"));
        assert_eq!(
            text("![x](http://e/p.gif)"),
            "\\!\\[x\\]\\(http://e/p.gif\\)"
        );
        assert_eq!(text("<script>&amp;"), "\\<script\\>\\&amp;");
        assert_eq!(text("$\\sqrt{x}$"), "\\$\\\\sqrt{x}\\$");
    }

    #[test]
    fn mentions_and_references_are_broken() {
        assert_eq!(text("@alice"), "@\u{200B}alice");
        assert_eq!(text("fixes #12"), "fixes #\u{200B}12");
        assert_eq!(text("# heading"), "# heading");
    }

    #[test]
    fn one_line_and_no_table_cells() {
        assert_eq!(text("a|b\nc\r\td\u{7}"), "a\\|b c  d\u{FFFD}");
        assert!(!text("x\n## heading").contains('\n'));
    }

    #[test]
    fn only_plain_names_become_code() {
        assert_eq!(code("feature/faster-worker"), "`feature/faster-worker`");
        assert_eq!(code("1a2b3c4d5e"), "`1a2b3c4d5e`");
        let hostile = code("x`<img/src=evil.example/p.gif>`@octo-org/everyone");
        assert_eq!(
            hostile,
            text("x`<img/src=evil.example/p.gif>`@octo-org/everyone")
        );
        assert_eq!(code(""), "");
    }

    #[test]
    fn mermaid_labels_cannot_leave_their_quotes() {
        assert_eq!(mermaid_label("small"), "small");
        assert_eq!(mermaid_label("1 KB (user)"), "1 KB _user_");
        let hostile = "a\"]\n```\n<img src=x>";
        let label = mermaid_label(hostile);
        assert!(!label.contains(['"', '\n', '`', '<', ']']), "{label}");
        assert_eq!(mermaid_label("größe"), "größe");
    }

    #[test]
    fn links_are_http_only_and_cannot_close_the_parenthesis() {
        assert_eq!(
            link_url("https://o.github.io/r/"),
            Some("https://o.github.io/r/".into())
        );
        assert_eq!(
            link_url("https://e.example/a b)(\"x\")"),
            Some("https://e.example/a%20b%29%28%22x%22%29".into())
        );
        assert_eq!(link_url("javascript:alert(1)"), None);
        assert_eq!(link_url("reports/x.html"), None);
    }
}
