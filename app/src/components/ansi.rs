//! A small ANSI SGR parser for build and container logs. It turns a line
//! into text segments with fixed class names (`ansi-fg-1`, `ansi-bold`, …);
//! every other escape sequence is dropped. Hand-written (about 150 lines)
//! rather than a crate: `ansi-to-html` pulls `regex` into the browser
//! bundle and writes inline `style` attributes, and a general terminal
//! parser (`vte`) is more than SGR needs. Nothing from the log ever becomes
//! markup: [`markup`] escapes every text segment (`components::html`), and
//! the class names are this file's constants.

use super::html;

/// A run of text with one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    /// Space-separated `ansi-*` classes; empty for unstyled text.
    pub class: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Style {
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

impl Style {
    fn class(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(c) = self.fg {
            parts.push(format!("ansi-fg-{c}"));
        }
        if let Some(c) = self.bg {
            parts.push(format!("ansi-bg-{c}"));
        }
        for (on, name) in [
            (self.bold, "ansi-bold"),
            (self.dim, "ansi-dim"),
            (self.italic, "ansi-italic"),
            (self.underline, "ansi-underline"),
        ] {
            if on {
                parts.push(name.to_string());
            }
        }
        parts.join(" ")
    }

    /// Applies one SGR parameter list (`ESC [ … m`).
    fn apply(&mut self, params: &str) {
        let codes: Vec<Option<u16>> = if params.is_empty() {
            vec![Some(0)]
        } else {
            params.split([';', ':']).map(|p| if p.is_empty() { Some(0) } else { p.parse().ok() }).collect()
        };
        let mut i = 0;
        while i < codes.len() {
            let Some(code) = codes[i] else {
                i += 1;
                continue;
            };
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = Some((code - 30) as u8),
                39 => self.fg = None,
                40..=47 => self.bg = Some((code - 40) as u8),
                49 => self.bg = None,
                90..=97 => self.fg = Some((code - 90 + 8) as u8),
                100..=107 => self.bg = Some((code - 100 + 8) as u8),
                38 | 48 => {
                    let (colour, used) = extended_colour(&codes[i + 1..]);
                    if code == 38 {
                        self.fg = colour;
                    } else {
                        self.bg = colour;
                    }
                    i += used;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// `5;n` (palette) or `2;r;g;b` (true colour) after 38/48: the colour when it
/// is one of the 16 named ones, and how many parameters were consumed.
fn extended_colour(rest: &[Option<u16>]) -> (Option<u8>, usize) {
    match rest.first() {
        Some(Some(5)) => match rest.get(1) {
            Some(Some(n)) if *n < 16 => (Some(*n as u8), 2),
            Some(_) => (None, 2),
            None => (None, 1),
        },
        Some(Some(2)) => (None, rest.len().min(4)),
        _ => (None, 0),
    }
}

/// Splits a log line into styled segments. A carriage return keeps only what
/// follows it (a terminal would have overwritten the start of the line).
pub fn parse(line: &str) -> Vec<Segment> {
    let line = line.trim_end_matches(['\r', '\n']);
    let line = line.rsplit('\r').next().unwrap_or(line);
    let mut out: Vec<Segment> = Vec::new();
    let mut style = Style::default();
    let mut text = String::new();
    let mut chars = line.chars().peekable();
    let flush = |text: &mut String, style: &Style, out: &mut Vec<Segment>| {
        if !text.is_empty() {
            let class = style.class();
            match out.last_mut() {
                Some(last) if last.class == class => last.text.push_str(text),
                _ => out.push(Segment { text: std::mem::take(text), class }),
            }
            text.clear();
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    let mut params = String::new();
                    let mut fin = None;
                    for d in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&d) {
                            fin = Some(d);
                            break;
                        }
                        params.push(d);
                    }
                    if fin == Some('m') && params.chars().all(|p| p.is_ascii_digit() || p == ';' || p == ':')
                    {
                        flush(&mut text, &style, &mut out);
                        style.apply(&params);
                    }
                }
                Some(']') => {
                    // Operating system command: skip to BEL or ESC \.
                    while let Some(d) = chars.next() {
                        if d == '\u{7}' {
                            break;
                        }
                        if d == '\u{1b}' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                // Character set designation: ESC ( B and friends.
                Some('(' | ')' | '*' | '+') => {
                    chars.next();
                }
                _ => {}
            },
            '\t' => text.push(c),
            c if c.is_control() => {}
            c => text.push(c),
        }
    }
    flush(&mut text, &style, &mut out);
    out
}

/// Appends one log line's text with its ANSI colours as
/// `<span class="ansi-…">` elements (unstyled text as plain, escaped text).
pub fn markup(out: &mut String, line: &str) {
    for s in parse(line) {
        if s.class.is_empty() {
            html::text(out, &s.text);
        } else {
            out.push_str("<span class=\"");
            out.push_str(&s.class);
            out.push_str("\">");
            html::text(out, &s.text);
            out.push_str("</span>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str, class: &str) -> Segment {
        Segment { text: text.into(), class: class.into() }
    }

    #[test]
    fn plain_text_is_one_segment() {
        assert_eq!(parse("hello <b>world</b>"), vec![seg("hello <b>world</b>", "")]);
        assert_eq!(parse(""), vec![]);
    }

    #[test]
    fn colours_and_reset() {
        assert_eq!(
            parse("\u{1b}[31merror\u{1b}[0m: done"),
            vec![seg("error", "ansi-fg-1"), seg(": done", "")]
        );
        assert_eq!(
            parse("\u{1b}[1;32mok\u{1b}[22m still green\u{1b}[m"),
            vec![seg("ok", "ansi-fg-2 ansi-bold"), seg(" still green", "ansi-fg-2")]
        );
        assert_eq!(parse("\u{1b}[94;41mx"), vec![seg("x", "ansi-fg-12 ansi-bg-1")]);
    }

    #[test]
    fn extended_colours() {
        assert_eq!(parse("\u{1b}[38;5;9mx"), vec![seg("x", "ansi-fg-9")]);
        assert_eq!(parse("\u{1b}[38;5;200;1mx"), vec![seg("x", "ansi-bold")]);
        assert_eq!(parse("\u{1b}[38;2;1;2;3;4mx"), vec![seg("x", "ansi-underline")]);
        assert_eq!(parse("\u{1b}[48;5;3mx"), vec![seg("x", "ansi-bg-3")]);
    }

    #[test]
    fn other_sequences_are_dropped() {
        assert_eq!(parse("a\u{1b}[2Kb\u{1b}[1Ac"), vec![seg("abc", "")]);
        assert_eq!(parse("\u{1b}]0;title\u{7}x"), vec![seg("x", "")]);
        assert_eq!(parse("\u{1b}]8;;http://x\u{1b}\\link"), vec![seg("link", "")]);
        assert_eq!(parse("a\u{1b}(Bb\u{7}\u{0}c"), vec![seg("abc", "")]);
        assert_eq!(parse("unterminated \u{1b}[31"), vec![seg("unterminated ", "")]);
        assert_eq!(parse("\u{1b}[31;<mx"), vec![seg("x", "")]);
    }

    #[test]
    fn carriage_returns_keep_the_last_part() {
        assert_eq!(parse("10%\r50%\r100%"), vec![seg("100%", "")]);
        assert_eq!(parse("done\r\n"), vec![seg("done", "")]);
    }

    #[test]
    fn markup_escapes_the_text_and_only_adds_spans() {
        let mut out = String::new();
        markup(&mut out, "\u{1b}[1;31m<b>x</b>\u{1b}[0m & <script>\u{1b}[90m'\"");
        assert_eq!(
            out,
            "<span class=\"ansi-fg-1 ansi-bold\">&lt;b&gt;x&lt;/b&gt;</span> &amp; &lt;script&gt;\
             <span class=\"ansi-fg-8\">'\"</span>"
        );
        let mut out = String::new();
        markup(&mut out, "\u{1b}[31mred\u{1b}[0m\n");
        assert_eq!(out, "<span class=\"ansi-fg-1\">red</span>");
    }

    #[test]
    fn same_style_runs_merge() {
        assert_eq!(parse("\u{1b}[31ma\u{1b}[31mb"), vec![seg("ab", "ansi-fg-1")]);
    }
}
