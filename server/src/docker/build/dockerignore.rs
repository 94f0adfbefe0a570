//! `.dockerignore` with Docker's pattern semantics.

/// `.dockerignore` rules with Docker's semantics: lines starting with `#`
/// are comments; surrounding whitespace is trimmed; patterns are cleaned
/// (`./`, `//`, `..`) and a leading `/` dropped; `*` and `?` match within one
/// path component, `[...]` is a character class, `**` any number of
/// components, `\` escapes; a pattern matching a directory excludes all
/// below it; `!` makes an exception; the last matching rule wins.
#[derive(Debug, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    exception: bool,
    /// The cleaned pattern text (for prefix checks of exceptions).
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    /// `?`: one character except '/'.
    One,
    /// `*`: any run of characters except '/'.
    Star,
    /// `**` followed by more pattern: any run of whole components, or none
    /// (Docker's `(.*/)?`).
    Dirs,
    /// `**` at the end: anything.
    Rest,
    /// `[...]`: ranges, negated with a leading `!` or `^`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Self {
        let mut ignore = DockerIgnore::default();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if pattern.is_empty() {
                continue;
            }
            ignore.push(exception, pattern);
        }
        ignore
    }

    pub(super) fn add_exception(&mut self, path: &str) {
        // A literal path: escape the pattern characters.
        let escaped: String = path
            .chars()
            .flat_map(|c| if matches!(c, '*' | '?' | '[' | '\\') { vec!['\\', c] } else { vec![c] })
            .collect();
        self.push(true, &escaped);
    }

    fn push(&mut self, exception: bool, pattern: &str) {
        let cleaned = clean_pattern(pattern);
        let tokens = compile(&cleaned);
        self.rules.push(Rule { exception, text: cleaned, tokens });
    }

    /// Whether `path` (relative, '/'-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let parents: Vec<&str> =
            path.char_indices().filter(|&(_, c)| c == '/').map(|(i, _)| &path[..i]).collect();
        let mut excluded = false;
        for rule in &self.rules {
            let hit = matches(&rule.tokens, path) || parents.iter().any(|p| matches(&rule.tokens, p));
            if hit {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// Whether an exception could re-include something below the excluded
    /// directory `dir`, so it must still be walked.
    pub(super) fn may_include_below(&self, dir: &str) -> bool {
        self.rules.iter().filter(|r| r.exception).any(|r| {
            // Patterns with wildcards before their last '/' could match
            // anywhere; literal ones only below their own prefix.
            let literal_prefix: String =
                r.text.chars().take_while(|c| !matches!(c, '*' | '?' | '[' | '\\')).collect();
            if literal_prefix.len() < r.text.len() {
                // Wildcards: be safe when the literal part is compatible.
                literal_prefix.starts_with(&format!("{dir}/"))
                    || format!("{dir}/").starts_with(&literal_prefix)
            } else {
                r.text.starts_with(&format!("{dir}/"))
            }
        })
    }
}

/// Go's `filepath.Clean` plus dropping a leading '/'.
fn clean_pattern(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !pattern.starts_with('/') {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return ".".into();
    }
    parts.join("/")
}

fn compile(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i >= chars.len() { Token::Rest } else { Token::Dirs });
                continue;
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            '\\' => {
                i += 1;
                if let Some(&c) = chars.get(i) {
                    tokens.push(Token::Char(c));
                }
            }
            '[' => match parse_class(&chars[i + 1..]) {
                Some((token, used)) => {
                    tokens.push(token);
                    i += used + 1;
                    continue;
                }
                // An unterminated class matches a literal '['.
                None => tokens.push(Token::Char('[')),
            },
            c => tokens.push(Token::Char(c)),
        }
        i += 1;
    }
    tokens
}

/// Parses a class after its '['; returns the token and the characters used
/// including the closing ']'.
fn parse_class(chars: &[char]) -> Option<(Token, usize)> {
    let mut i = 0;
    let negated = matches!(chars.first(), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            *chars.get(i)?
        } else {
            c
        };
        i += 1;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']') {
            i += 1;
            let mut hi = *chars.get(i)?;
            if hi == '\\' {
                i += 1;
                hi = *chars.get(i)?;
            }
            i += 1;
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
}

/// Whole-string match of `path` against `tokens` (dynamic programming over
/// positions, so no pattern can make it exponential).
fn matches(tokens: &[Token], path: &str) -> bool {
    let text: Vec<char> = path.chars().collect();
    // reachable[j]: the tokens so far can match text[..j].
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    for token in tokens {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            if !reachable[j] {
                continue;
            }
            match token {
                Token::Char(c) => {
                    if text.get(j) == Some(c) {
                        next[j + 1] = true;
                    }
                }
                Token::One => {
                    if text.get(j).is_some_and(|&c| c != '/') {
                        next[j + 1] = true;
                    }
                }
                Token::Class { negated, ranges } => {
                    if let Some(&c) = text.get(j) {
                        let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                        if c != '/' && inside != *negated {
                            next[j + 1] = true;
                        }
                    }
                }
                Token::Star => {
                    next[j] = true;
                    let mut k = j;
                    while k < text.len() && text[k] != '/' {
                        k += 1;
                        next[k] = true;
                    }
                }
                Token::Dirs => {
                    // Nothing, or anything ending with '/'.
                    next[j] = true;
                    for k in j..text.len() {
                        if text[k] == '/' {
                            next[k + 1] = true;
                        }
                    }
                }
                Token::Rest => {
                    for slot in next.iter_mut().skip(j) {
                        *slot = true;
                    }
                }
            }
        }
        reachable = next;
    }
    reachable[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text)
    }

    #[test]
    fn dockerignore_follows_docker_pattern_semantics() {
        let rules = ignore(
            "# comment\n  \n*.log\n!keep.log\nsecret.txt\n/build/\ntmp?\ndocs/**/*.md\n**/node_modules\n\
             ./cache//x\n[a-c]z.txt\n[!a-c]y.txt\n",
        );
        let excluded = [
            "app.log",
            "secret.txt",
            "build",
            "build/out/bin",
            "tmp1",
            "docs/a.md",
            "docs/x/y/a.md",
            "node_modules",
            "web/node_modules/react/index.js",
            "cache/x",
            "bz.txt",
            "dy.txt",
        ];
        let included = [
            "keep.log",
            "sub/app.log",
            "sub/secret.txt",
            "tmp12",
            "docs/a.txt",
            "src/main.rs",
            "dz.txt",
            "ay.txt",
            "# comment",
        ];
        for path in excluded {
            assert!(rules.excludes(path), "{path} should be excluded");
        }
        for path in included {
            assert!(!rules.excludes(path), "{path} should be included");
        }
    }

    #[test]
    fn last_matching_rule_wins_and_exceptions_reach_below_excluded_dirs() {
        let rules = ignore("vendor\n!vendor/keep\n*.md\n!README.md\nREADME.md\n");
        assert!(rules.excludes("vendor/a"));
        assert!(!rules.excludes("vendor/keep"));
        assert!(rules.may_include_below("vendor"));
        assert!(!rules.may_include_below("other"));
        assert!(rules.excludes("README.md"));
        assert!(rules.excludes("CHANGES.md"));
    }

    #[test]
    fn star_does_not_cross_directories_but_double_star_does() {
        assert!(matches(&compile("a/*/c"), "a/b/c"));
        assert!(!matches(&compile("a/*/c"), "a/b/x/c"));
        assert!(matches(&compile("a/**/c"), "a/c"));
        assert!(matches(&compile("a/**/c"), "a/b/x/c"));
        assert!(matches(&compile("**"), "any/thing"));
        assert!(matches(&compile("a\\*"), "a*"));
        assert!(!matches(&compile("a\\*"), "ab"));
    }
}
