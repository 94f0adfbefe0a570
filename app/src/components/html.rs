//! Static markup written as a string, for the parts of a page that have no
//! event handlers and many elements (history rows, chart bars): they are
//! set with `inner_html`, the same string on the server and in the browser.
//! Server rendering then writes one string instead of building and
//! rendering a view per cell (each element with its boxed attributes), and
//! hydration has nothing to walk there. Every value goes through
//! [`text`] or [`attr`].

/// Appends `value` as element text: `&`, `<` and `>` escaped.
pub fn text(out: &mut String, value: &str) {
    escape(out, value, false);
}

/// Appends `value` for a double-quoted attribute: `&`, `<`, `>`, `"` and
/// `'` escaped.
pub fn attr(out: &mut String, value: &str) {
    escape(out, value, true);
}

fn escape(out: &mut String, value: &str, quotes: bool) {
    let mut rest = value;
    while let Some(i) = rest.find(|c| matches!(c, '&' | '<' | '>') || (quotes && matches!(c, '"' | '\''))) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_cannot_open_markup() {
        let hostile = r#"<script>alert("x")</script> & 'y' <img src=x onerror=alert(1)>"#;
        let mut t = String::new();
        text(&mut t, hostile);
        assert_eq!(
            t,
            r#"&lt;script&gt;alert("x")&lt;/script&gt; &amp; 'y' &lt;img src=x onerror=alert(1)&gt;"#
        );
        let mut a = String::new();
        attr(&mut a, hostile);
        assert!(!a.contains(['<', '>', '"', '\'']), "{a}");
        assert_eq!(a.matches("&quot;").count(), 2);
        assert_eq!(a.matches("&#39;").count(), 2);
        let mut plain = String::from("x=");
        attr(&mut plain, "main-latest ü");
        assert_eq!(plain, "x=main-latest ü");
    }
}
