//! Validation of every value that comes from a user, a webhook or a repository
//! before it reaches git, Docker, a file path or a container name.
//!
//! Each check returns the normalized value or a [`ValidationError`] naming the
//! field. Messages never echo the rejected value: it may hold credentials or
//! terminal escapes, and it is the caller's to show if it wants to.
//!
//! The grammars are written by hand (no regex) and deliberately narrower than
//! what git or Docker accept where the extra freedom only serves attackers:
//! URLs and paths are ASCII-only, URL paths and relative paths use a small
//! character allowlist, and nothing may start with `-`.

use std::fmt;

/// A rejected value: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        ValidationError { field, message: message.into() }
    }
}

type Result<T> = std::result::Result<T, ValidationError>;

/// Every refused field of one submission: a form is checked whole, so the
/// answer names all its problems at once instead of the first.
#[derive(Debug, Default)]
pub struct Problems(Vec<ValidationError>);

impl Problems {
    pub fn new() -> Self {
        Problems(Vec::new())
    }

    /// The value, or `None` after noting why it was refused.
    pub fn check<T, E: Into<ValidationError>>(&mut self, result: std::result::Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e.into());
                None
            }
        }
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push(ValidationError::new(field, message));
    }

    /// Whether `field` was refused already (a later check of it is moot).
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was refused, else every refusal, in order.
    pub fn finish(self) -> std::result::Result<(), Vec<ValidationError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

/// Several refusals as one message: `field: message; field: message`.
pub fn join(list: &[ValidationError]) -> String {
    list.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Longest accepted git URL, in bytes.
pub const MAX_GIT_URL: usize = 2048;
/// Longest accepted ref name, in bytes.
pub const MAX_GIT_REF: usize = 255;
/// Longest accepted relative path, in bytes.
pub const MAX_REL_PATH: usize = 1024;
/// Longest accepted slug (project or service name).
pub const MAX_SLUG: usize = 40;
/// Longest accepted environment variable or build-arg name.
pub const MAX_ENV_NAME: usize = 128;
/// Longest accepted environment variable value, in bytes.
pub const MAX_ENV_VALUE: usize = 32 * 1024;
/// Longest accepted image reference name part (Docker's own limit).
pub const MAX_IMAGE_NAME: usize = 255;
/// Longest accepted image reference, name, tag and digest together.
pub const MAX_IMAGE_REF: usize = 512;
/// What redacted secrets are replaced with.
pub const REDACTED: &str = "********";

// ---------------------------------------------------------------- shared --

/// Rejects empty values, overlong values (checked first, before any scan),
/// and control characters (C0, DEL, C1 — this covers newlines and NUL).
fn basic(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(ValidationError::new(field, format!("must be at most {max} bytes long")));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(field, "must not contain control characters (newline, NUL, …)"));
    }
    Ok(())
}

fn no_leading_dash(field: &'static str, value: &str) -> Result<()> {
    if value.starts_with('-') {
        return Err(ValidationError::new(field, "must not start with '-'"));
    }
    Ok(())
}

fn ascii_only(field: &'static str, value: &str) -> Result<()> {
    if !value.is_ascii() {
        return Err(ValidationError::new(field, "must contain only ASCII characters"));
    }
    Ok(())
}

fn no_whitespace(field: &'static str, value: &str) -> Result<()> {
    if value.chars().any(char::is_whitespace) {
        return Err(ValidationError::new(field, "must not contain whitespace"));
    }
    Ok(())
}

/// Raw bytes (from the OS, a webhook body, a repo file) as UTF-8 text.
pub fn from_os_bytes<'a>(field: &'static str, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes)
        .map_err(|e| ValidationError::new(field, format!("is not valid UTF-8 (byte {})", e.valid_up_to())))
}

// --------------------------------------------------------------- git url --

const GIT_URL: &str = "git_url";

/// Characters allowed unencoded in a URL path: unreserved plus a few harmless
/// ones. Everything else (`$ ` ; | & ( ) < > ' " \ ? # *` …) must be
/// percent-encoded, which git decodes itself.
fn is_url_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, b'-' | b'.' | b'_' | b'~' | b'/' | b'%' | b'+' | b'@' | b'=' | b',' | b':')
}

/// Characters allowed unencoded in userinfo (user and password).
fn is_userinfo_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'%')
}

fn check_percent_encoding(field: &'static str, part: &str) -> Result<()> {
    let bytes = part.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !ok {
                return Err(ValidationError::new(field, "has a malformed percent-encoding"));
            }
            // An encoded control character (%00, %0a, …) is as bad as a raw one.
            let hi = bytes[i + 1].to_ascii_lowercase();
            if matches!(hi, b'0' | b'1') || bytes[i + 1..i + 3].eq_ignore_ascii_case(b"7f") {
                return Err(ValidationError::new(field, "must not contain encoded control characters"));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// A host name (letters, digits, '-', '.', '_'; no leading '-') or a
/// bracketed IPv6 literal.
fn check_host(field: &'static str, host: &str) -> Result<()> {
    if host.is_empty() {
        return Err(ValidationError::new(field, "must name a host"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let Some(addr) = inner.strip_suffix(']') else {
            return Err(ValidationError::new(field, "has an unterminated IPv6 host"));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(ValidationError::new(field, "has an invalid IPv6 host"));
        }
        return Ok(());
    }
    if host.starts_with('-') {
        return Err(ValidationError::new(field, "host must not start with '-'"));
    }
    let valid = host.len() <= 253
        && host.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        && !host.starts_with('.')
        && !host.contains("..");
    if !valid {
        return Err(ValidationError::new(field, "has an invalid host name"));
    }
    Ok(())
}

fn check_port(field: &'static str, port: &str) -> Result<()> {
    let valid = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|c| c.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
    if !valid {
        return Err(ValidationError::new(field, "has an invalid port"));
    }
    Ok(())
}

/// `host`, `host:port` or `[v6]:port`.
fn check_host_port(field: &'static str, hostport: &str) -> Result<()> {
    if hostport.starts_with('[') {
        return match hostport.find(']') {
            Some(end) => {
                check_host(field, &hostport[..=end])?;
                match &hostport[end + 1..] {
                    "" => Ok(()),
                    rest => match rest.strip_prefix(':') {
                        Some(port) => check_port(field, port),
                        None => Err(ValidationError::new(field, "has an invalid host")),
                    },
                }
            }
            None => Err(ValidationError::new(field, "has an unterminated IPv6 host")),
        };
    }
    match hostport.split_once(':') {
        Some((host, port)) => {
            check_host(field, host)?;
            check_port(field, port)
        }
        None => check_host(field, hostport),
    }
}

fn check_user(field: &'static str, user: &str) -> Result<()> {
    if user.is_empty() {
        return Err(ValidationError::new(field, "has an empty user name"));
    }
    if user.starts_with('-') {
        return Err(ValidationError::new(field, "user name must not start with '-'"));
    }
    if !user.bytes().all(is_userinfo_char) {
        return Err(ValidationError::new(
            field,
            "user name may only contain letters, digits, '-', '.', '_', '~' and percent-encoding",
        ));
    }
    check_percent_encoding(field, user)
}

/// The repository path part of a URL (after the authority, or after the ':'
/// of an scp-like address).
fn check_url_path(field: &'static str, path: &str) -> Result<()> {
    if path.trim_matches('/').is_empty() {
        return Err(ValidationError::new(field, "must name a repository path"));
    }
    if !path.bytes().all(is_url_path_char) {
        return Err(ValidationError::new(
            field,
            "path contains a character that must be percent-encoded (shell metacharacters, '?', '#', …)",
        ));
    }
    check_percent_encoding(field, path)?;
    if path.split('/').any(|segment| segment.starts_with('-')) {
        return Err(ValidationError::new(field, "path segments must not start with '-'"));
    }
    Ok(())
}

/// Splits `scheme://authority/path` into its parts (authority may be empty).
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Some((scheme, authority, path))
}

/// A git remote URL: `https://`, `ssh://`, `git://`, `file://`, or scp-like
/// `[user@]host:path`. Returns the URL with its scheme lowercased.
///
/// Credentials are allowed in https URLs only (`https://user:token@host/…`);
/// never log such a URL without [`redact_url`], and never put it on a
/// command line: take it apart with [`split_credentials`].
pub fn git_url(raw: &str) -> Result<String> {
    let field = GIT_URL;
    basic(field, raw, MAX_GIT_URL)?;
    no_leading_dash(field, raw)?;
    ascii_only(field, raw)?;
    no_whitespace(field, raw)?;
    // git's `<transport>::<address>` remote-helper syntax (`ext::sh -c …`,
    // `fd::`, …) runs arbitrary programs: refuse any form of it.
    let scheme_like =
        raw.bytes().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')).count();
    if raw[scheme_like..].starts_with("::") {
        return Err(ValidationError::new(field, "must not use a '<transport>::' remote helper"));
    }
    let lower = raw.to_ascii_lowercase();
    if lower.contains("--upload-pack")
        || lower.contains("--receive-pack")
        || lower.contains("--config")
        || lower.contains("--exec")
    {
        return Err(ValidationError::new(field, "must not contain git options"));
    }

    if let Some((scheme, authority, path)) = split_url(raw) {
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "https" | "ssh" | "git" => {}
            "file" => {
                if !(authority.is_empty() || authority.eq_ignore_ascii_case("localhost")) {
                    return Err(ValidationError::new(
                        field,
                        "file URLs must have an empty host (file:///path)",
                    ));
                }
                check_url_path(field, path)?;
                return Ok(format!("file://{authority}{path}"));
            }
            _ => return Err(ValidationError::new(field, "scheme must be https, ssh, git or file")),
        }
        let hostport = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                match userinfo.split_once(':') {
                    Some((user, password)) => {
                        if scheme != "https" {
                            return Err(ValidationError::new(field, "only https URLs may carry a password"));
                        }
                        check_user(field, user)?;
                        if password.is_empty() || !password.bytes().all(is_userinfo_char) {
                            return Err(ValidationError::new(
                                field,
                                "password must be non-empty and percent-encoded beyond letters, digits, '-', '.', '_', '~'",
                            ));
                        }
                        check_percent_encoding(field, password)?;
                    }
                    None => {
                        if scheme == "git" {
                            return Err(ValidationError::new(field, "git:// URLs must not carry a user"));
                        }
                        check_user(field, userinfo)?;
                    }
                }
                hostport
            }
            None => authority,
        };
        check_host_port(field, hostport)?;
        check_url_path(field, path)?;
        return Ok(format!("{scheme}://{authority}{path}"));
    }

    if raw.contains(':') {
        return scp_like(raw);
    }
    Err(ValidationError::new(field, "must be an https, ssh, git or file URL, or user@host:path"))
}

/// `[user@]host:path`, which git treats as ssh.
fn scp_like(raw: &str) -> Result<String> {
    let field = GIT_URL;
    let (left, path) = if raw.starts_with('[') {
        // `[v6]:path` or `[user@host]:path` forms are not worth supporting.
        return Err(ValidationError::new(
            field,
            "bracketed scp-like addresses are not supported; use ssh://",
        ));
    } else {
        match raw.split_once(':') {
            Some(parts) => parts,
            None => return Err(ValidationError::new(field, "is not a URL")),
        }
    };
    if left.contains('/') {
        return Err(ValidationError::new(field, "must be an https, ssh, git or file URL, or user@host:path"));
    }
    let host = match left.split_once('@') {
        Some((user, host)) => {
            check_user(field, user)?;
            host
        }
        None => left,
    };
    check_host(field, host)?;
    check_url_path(field, path)?;
    Ok(raw.to_string())
}

/// Credentials taken out of an https URL, percent-decoded. `Debug` hides the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlCredentials {
    pub username: String,
    pub password: Option<String>,
}

impl fmt::Debug for UrlCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlCredentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .finish()
    }
}

fn percent_decode(field: &'static str, s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => out.push(b),
                None => return Err(ValidationError::new(field, "has a malformed percent-encoding")),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ValidationError::new(field, "credentials are not valid UTF-8"))
}

/// Why a `file://` URL is refused on a server that does not allow local
/// repositories (`SLIPWAY_ALLOW_LOCAL_REPOS`).
pub const LOCAL_REPOS_DISABLED: &str =
    "file:// repositories are disabled on this server; an admin can allow them with SLIPWAY_ALLOW_LOCAL_REPOS=true";

/// Whether `url` names a repository on this server's disk (`file://`, any
/// case). Other local forms (bare paths) never pass [`git_url`].
pub fn is_local_repo(url: &str) -> bool {
    url.trim_start().get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("file://"))
}

/// Refuses a local (`file://`) repository unless the server allows them.
/// Checked when a service is saved and again before every checkout.
pub fn local_repo_allowed(url: &str, allowed: bool) -> Result<()> {
    if !allowed && is_local_repo(url) {
        return Err(ValidationError::new(GIT_URL, LOCAL_REPOS_DISABLED));
    }
    Ok(())
}

/// Validates `raw` with [`git_url`] and takes the credentials out of an https
/// URL: returns the URL without userinfo (safe for a command line and logs)
/// and the decoded credentials to hand to git through a credential helper
/// or the environment. Other URLs come back unchanged with `None`.
pub fn split_credentials(raw: &str) -> Result<(String, Option<UrlCredentials>)> {
    let url = git_url(raw)?;
    let Some((scheme, authority, path)) = split_url(&url) else {
        return Ok((url, None));
    };
    if scheme != "https" {
        return Ok((url, None));
    }
    let Some((userinfo, hostport)) = authority.rsplit_once('@') else {
        return Ok((url, None));
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    let credentials = UrlCredentials {
        username: percent_decode(GIT_URL, user)?,
        password: password.map(|p| percent_decode(GIT_URL, p)).transpose()?,
    };
    Ok((format!("https://{hostport}{path}"), Some(credentials)))
}

/// A URL safe to log: the password of any `scheme://user:password@host`
/// URL is replaced with `********`, and so is a bare https user name (it is
/// usually a token, as in `https://<token>@github.com/…`). Works on any
/// string, valid or not; other text is returned unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let scheme = &url[..scheme_end];
    let redacted_userinfo = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:{REDACTED}"),
        None if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http") => {
            REDACTED.to_string()
        }
        None => userinfo.to_string(),
    };
    format!("{}{}{}", &url[..rest_start], redacted_userinfo, &url[rest_start + at..])
}

// ------------------------------------------------------------------ refs --

/// A branch, tag or other ref name, following `git check-ref-format` (one-level
/// names such as `main` allowed). Stricter than git: ASCII only, no leading
/// '-', and no shell metacharacters (`` $ ` ; | & < > ( ) ' " ``), which real
/// branch names do not use and which would only travel into tags and logs.
/// Returned unchanged.
pub fn git_ref(raw: &str) -> Result<String> {
    let field = "git_ref";
    basic(field, raw, MAX_GIT_REF)?;
    no_leading_dash(field, raw)?;
    ascii_only(field, raw)?;
    if raw == "@" {
        return Err(ValidationError::new(field, "must not be '@'"));
    }
    // git's forbidden characters, then shell metacharacters.
    let forbidden = |c: char| {
        matches!(
            c,
            ' ' | '~'
                | '^'
                | ':'
                | '?'
                | '*'
                | '['
                | '\\'
                | '$'
                | '`'
                | ';'
                | '|'
                | '&'
                | '<'
                | '>'
                | '('
                | ')'
                | '\''
                | '"'
        )
    };
    if let Some(c) = raw.chars().find(|c| forbidden(*c)) {
        return Err(ValidationError::new(field, format!("must not contain {c:?}")));
    }
    if raw.contains("..") {
        return Err(ValidationError::new(field, "must not contain '..'"));
    }
    if raw.contains("@{") {
        return Err(ValidationError::new(field, "must not contain '@{'"));
    }
    if raw.starts_with('/') || raw.ends_with('/') {
        return Err(ValidationError::new(field, "must not start or end with '/'"));
    }
    if raw.contains("//") {
        return Err(ValidationError::new(field, "must not contain '//'"));
    }
    if raw.ends_with('.') {
        return Err(ValidationError::new(field, "must not end with '.'"));
    }
    for component in raw.split('/') {
        if component.starts_with('.') {
            return Err(ValidationError::new(field, "components must not start with '.'"));
        }
        if component.ends_with(".lock") {
            return Err(ValidationError::new(field, "components must not end with '.lock'"));
        }
    }
    Ok(raw.to_string())
}

/// A commit id: 7 to 40 hex digits (SHA-1, possibly abbreviated) or 64 (SHA-256).
/// Returned in lowercase.
pub fn commit_sha(raw: &str) -> Result<String> {
    let field = "commit";
    basic(field, raw, 64)?;
    if !raw.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(ValidationError::new(field, "must be hexadecimal"));
    }
    if !((7..=40).contains(&raw.len()) || raw.len() == 64) {
        return Err(ValidationError::new(field, "must be 7 to 40 hex digits, or 64 for SHA-256"));
    }
    Ok(raw.to_ascii_lowercase())
}

// ----------------------------------------------------------------- paths --

fn is_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'/' | b'+' | b'@' | b',' | b'=' | b'~')
}

/// A path inside the repository (build context, Dockerfile): relative, no
/// `..`, normalized (`./`, empty and `.` components dropped). The repository
/// root is returned as `"."`.
pub fn rel_path(field: &'static str, raw: &str) -> Result<String> {
    basic(field, raw, MAX_REL_PATH)?;
    ascii_only(field, raw)?;
    if raw.starts_with('/') {
        return Err(ValidationError::new(field, "must be a relative path"));
    }
    if raw.contains('\\') {
        return Err(ValidationError::new(field, "must use '/' as separator"));
    }
    if !raw.bytes().all(is_path_char) {
        return Err(ValidationError::new(field, "may only contain letters, digits and - . _ / + @ , = ~"));
    }
    let mut parts = Vec::new();
    for component in raw.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                return Err(ValidationError::new(field, "must not contain '..'"));
            }
            c if c.starts_with('-') => {
                return Err(ValidationError::new(field, "components must not start with '-'"));
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Ok(".".to_string());
    }
    Ok(parts.join("/"))
}

// ----------------------------------------------------------------- names --

/// A project or service name: `^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`. Safe in
/// container names, host names and image tags.
pub fn slug(field: &'static str, raw: &str) -> Result<String> {
    basic(field, raw, MAX_SLUG)?;
    let valid_chars = raw.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if !valid_chars {
        return Err(ValidationError::new(field, "may only contain lowercase letters, digits and '-'"));
    }
    if raw.starts_with('-') || raw.ends_with('-') {
        return Err(ValidationError::new(field, "must start and end with a letter or digit"));
    }
    Ok(raw.to_string())
}

/// A DNS host name for the edge router: lower-case labels of
/// `[a-z0-9-]` (1–63 bytes, no leading or trailing '-') joined by '.', at
/// most 253 bytes, at least two labels. Upper case is folded; a final '.'
/// is dropped.
pub fn domain(raw: &str) -> Result<String> {
    let field = "domain";
    basic(field, raw, 253)?;
    let name = raw.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(ValidationError::new(field, "must have at least two labels, e.g. app.example.com"));
    }
    for label in labels {
        if label.is_empty() || label.len() > 63 {
            return Err(ValidationError::new(field, "each label must be 1 to 63 characters"));
        }
        if !label.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
            return Err(ValidationError::new(field, "may only contain letters, digits, '-' and '.'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(ValidationError::new(field, "a label must not start or end with '-'"));
        }
    }
    Ok(name)
}

fn identifier(field: &'static str, raw: &str) -> Result<String> {
    basic(field, raw, MAX_ENV_NAME)?;
    let mut bytes = raw.bytes();
    let first_ok = bytes.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_');
    if !first_ok {
        return Err(ValidationError::new(field, "must start with a letter or '_'"));
    }
    if !bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return Err(ValidationError::new(field, "may only contain letters, digits and '_'"));
    }
    Ok(raw.to_string())
}

/// An environment variable name: `^[A-Za-z_][A-Za-z0-9_]{0,127}$`.
pub fn env_name(raw: &str) -> Result<String> {
    identifier("env_name", raw)
}

/// A Docker build-arg name, same grammar as [`env_name`].
pub fn build_arg_name(raw: &str) -> Result<String> {
    identifier("build_arg", raw)
}

/// A Dockerfile stage name (`FROM … AS <name>`, the build target):
/// `^[A-Za-z][A-Za-z0-9_.-]{0,127}$`.
pub fn stage_name(field: &'static str, raw: &str) -> Result<String> {
    basic(field, raw, 128)?;
    let mut chars = raw.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(ValidationError::new(
            field,
            "must be a stage name: a letter, then letters, digits, '_', '.' or '-'",
        ));
    }
    Ok(raw.to_string())
}

/// An environment variable value: anything but NUL, at most 32 KiB. May be
/// empty and may span lines.
pub fn env_value(raw: &str) -> Result<String> {
    let field = "env_value";
    if raw.len() > MAX_ENV_VALUE {
        return Err(ValidationError::new(field, format!("must be at most {MAX_ENV_VALUE} bytes long")));
    }
    if raw.contains('\0') {
        return Err(ValidationError::new(field, "must not contain NUL"));
    }
    Ok(raw.to_string())
}

/// A TCP port, 1 to 65535.
pub fn port(raw: u32) -> Result<u16> {
    match u16::try_from(raw) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(ValidationError::new("port", "must be between 1 and 65535")),
    }
}

// ----------------------------------------------------------------- image --

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9]` or `[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]`.
fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

fn check_image_domain(field: &'static str, domain: &str) -> Result<()> {
    let (host, port) = if domain.starts_with('[') {
        match domain.find(']') {
            Some(end) => {
                check_host(field, &domain[..=end])?;
                (None, domain[end + 1..].strip_prefix(':'))
            }
            None => return Err(ValidationError::new(field, "has an invalid registry host")),
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        if !host.split('.').all(is_domain_component) {
            return Err(ValidationError::new(field, "has an invalid registry host"));
        }
    }
    if let Some(port) = port {
        check_port(field, port)?;
    }
    Ok(())
}

fn is_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty() && b.len() <= 128 && word(b[0]) && b.iter().all(|c| word(*c) || *c == b'.' || *c == b'-')
}

/// `sha256:`, `sha384:` or `sha512:` and that many lowercase hex digits:
/// the digests the Docker engine resolves (it answers 400 to any other).
fn check_digest(field: &'static str, digest: &str) -> Result<()> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(ValidationError::new(field, "digest must be algorithm:hex"));
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ValidationError::new(field, "digest algorithm must be sha256, sha384 or sha512")),
    };
    if hex.len() != len || !hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
        return Err(ValidationError::new(field, format!("digest must be {len} lowercase hex digits")));
    }
    Ok(())
}

/// A Docker image reference `name[:tag][@digest]`, following the
/// distribution reference grammar: repository path components in lowercase,
/// an optional registry host first (it contains '.' or ':', or is
/// `localhost`). Returned unchanged (no `docker.io/library/` added).
pub fn image_ref(raw: &str) -> Result<String> {
    let field = "image";
    basic(field, raw, MAX_IMAGE_REF)?;
    no_leading_dash(field, raw)?;
    ascii_only(field, raw)?;
    let (rest, digest) = match raw.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (raw, None),
    };
    if let Some(digest) = digest {
        check_digest(field, digest)?;
    }
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|s| colon > s) => (&rest[..colon], Some(&rest[colon + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        if !is_tag(tag) {
            return Err(ValidationError::new(
                field,
                "tag must be 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
            ));
        }
    }
    if name.is_empty() {
        return Err(ValidationError::new(field, "must have a repository name"));
    }
    if name.len() > MAX_IMAGE_NAME {
        return Err(ValidationError::new(field, format!("name must be at most {MAX_IMAGE_NAME} bytes long")));
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        let is_domain = first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.bytes().any(|c| c.is_ascii_uppercase());
        if is_domain {
            check_image_domain(field, first)?;
            components.remove(0);
        }
    }
    if !components.iter().all(|c| is_path_component(c)) {
        return Err(ValidationError::new(
            field,
            "repository components must be lowercase letters and digits joined by '.', '_', '__' or '-'",
        ));
    }
    Ok(raw.to_string())
}

/// An image registry host: `host[:port]` as the Docker engine takes it
/// (`ghcr.io`, `registry.example.com:5000`, `127.0.0.1:5000`), no scheme,
/// user or path. Upper case is folded.
pub fn registry_host(raw: &str) -> Result<String> {
    let field = "registry_host";
    basic(field, raw, 255)?;
    no_leading_dash(field, raw)?;
    ascii_only(field, raw)?;
    if raw.contains("://") || raw.contains('/') || raw.contains('@') {
        return Err(ValidationError::new(field, "must be host[:port] only, without scheme, user or path"));
    }
    if raw.starts_with('[') {
        return Err(ValidationError::new(field, "must be a host name or IPv4 address, not IPv6"));
    }
    let host = raw.to_ascii_lowercase();
    check_image_domain(field, &host)?;
    let name = host.split_once(':').map_or(host.as_str(), |(h, _)| h);
    if name.split('.').any(|label| label.len() > 63) {
        return Err(ValidationError::new(field, "each label must be at most 63 characters"));
    }
    Ok(host)
}

/// An image repository path under a registry (`team/app`): lowercase
/// components of the distribution grammar joined by '/', no tag or digest.
pub fn image_repository(field: &'static str, raw: &str) -> Result<String> {
    basic(field, raw, MAX_IMAGE_NAME - 64)?;
    if !raw.split('/').all(is_path_component) {
        return Err(ValidationError::new(
            field,
            "must be lowercase letters and digits joined by '.', '_', '__' or '-', in components separated by '/'",
        ));
    }
    Ok(raw.to_string())
}

/// A build platform `os/arch[/variant]`, exactly (lower case), that the
/// engine's BuildKit builds:
/// `linux/amd64`, `linux/arm64`, `linux/arm/v7`, `linux/386`,
/// `linux/ppc64le`, `linux/s390x`, `linux/riscv64`.
pub fn platform(raw: &str) -> Result<String> {
    KNOWN_PLATFORMS.iter().find(|p| **p == raw).map(|p| p.to_string()).ok_or_else(|| {
        ValidationError::new(
            "platforms",
            format!("{raw:?} is not a platform; use one of {}", KNOWN_PLATFORMS.join(", ")),
        )
    })
}

/// The platforms [`platform`] accepts.
pub const KNOWN_PLATFORMS: [&str; 8] = [
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Which check a table row goes through.
    #[derive(Debug, Clone, Copy)]
    enum Check {
        Url,
        Ref,
        Sha,
        Context,
        Dockerfile,
        Project,
        Service,
        EnvName,
        EnvValue,
        Image,
        BuildArg,
    }

    fn run(check: Check, value: &str) -> Result<String> {
        match check {
            Check::Url => git_url(value),
            Check::Ref => git_ref(value),
            Check::Sha => commit_sha(value),
            Check::Context => rel_path("context_path", value),
            Check::Dockerfile => rel_path("dockerfile", value),
            Check::Project => slug("project", value),
            Check::Service => slug("service", value),
            Check::EnvName => env_name(value),
            Check::EnvValue => env_value(value),
            Check::Image => image_ref(value),
            Check::BuildArg => build_arg_name(value),
        }
    }

    const SHA256_HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn hostile_values_are_rejected_with_their_field() {
        use Check::*;
        let long_url = format!("https://github.com/{}", "a".repeat(3000));
        let long_ref = "b".repeat(256);
        let long_path = "d/".repeat(513);
        let long_slug = "a".repeat(41);
        let long_env = "X".repeat(129);
        let long_value = "v".repeat(MAX_ENV_VALUE + 1);
        let long_image = format!("{}:tag", "a".repeat(300));
        let cases: Vec<(Check, &str, &str)> = vec![
            // git URLs
            (Url, "", "git_url"),
            (Url, "-oProxyCommand=touch /tmp/x", "git_url"),
            (Url, "--upload-pack=touch /tmp/x", "git_url"),
            (Url, "ext::sh -c touch% /tmp/x", "git_url"),
            (Url, "ext::sh", "git_url"),
            (Url, "fd::17", "git_url"),
            (Url, "ssh://-oProxyCommand=touch/repo", "git_url"),
            (Url, "ssh://-oProxyCommand=touch:22/repo", "git_url"),
            (Url, "git@-oProxyCommand=touch:repo", "git_url"),
            (Url, "-u@host:repo", "git_url"),
            (Url, "ssh://host/--upload-pack=touch", "git_url"),
            (Url, "https://github.com/a/b?--upload-pack=x", "git_url"),
            (Url, "https://github.com/a/b --upload-pack=x", "git_url"),
            (Url, "https://github.com/a/b;touch /tmp/x", "git_url"),
            (Url, "https://github.com/a/b;id", "git_url"),
            (Url, "https://github.com/a/$(touch${IFS}/tmp/x)", "git_url"),
            (Url, "https://github.com/a/`id`", "git_url"),
            (Url, "https://github.com/a/b|nc", "git_url"),
            (Url, "https://github.com/a/b&&id", "git_url"),
            (Url, "https://github.com/a/b\nid", "git_url"),
            (Url, "https://github.com/a/b\r", "git_url"),
            (Url, "https://github.com/a/b\0", "git_url"),
            (Url, "https://github.com/a/b%00", "git_url"),
            (Url, "https://github.com/a/b%0a", "git_url"),
            (Url, "https://github.com/a/b%zz", "git_url"),
            (Url, "https://github.com/-repo", "git_url"),
            (Url, "https://g\u{0456}thub.com/a/b", "git_url"),
            (Url, "\u{FB01}le:///srv/repo", "git_url"),
            (Url, "https://github\u{3002}com/a/b", "git_url"),
            (Url, "https://github.com/a/b\u{200B}", "git_url"),
            (Url, "http://github.com/a/b", "git_url"),
            (Url, "javascript://x/y", "git_url"),
            (Url, "/etc/passwd", "git_url"),
            (Url, "../../etc", "git_url"),
            (Url, "file://evil.example.com/x", "git_url"),
            (Url, "file:///", "git_url"),
            (Url, "https://github.com/", "git_url"),
            (Url, "https:///a/b", "git_url"),
            (Url, "https://host:99999/x", "git_url"),
            (Url, "https://host:0/x", "git_url"),
            (Url, "https://user:pa ss@host/x", "git_url"),
            (Url, "https://user:p$w@host/x", "git_url"),
            (Url, "https://-user:pw@host/x", "git_url"),
            (Url, "ssh://user:pw@host/x", "git_url"),
            (Url, "git://user@host/x", "git_url"),
            (Url, "https://[::1/x", "git_url"),
            (Url, "https://[zz::1]/x", "git_url"),
            (Url, "[::1]:repo", "git_url"),
            (Url, "ho/st:repo", "git_url"),
            (Url, &long_url, "git_url"),
            // refs
            (Ref, "", "git_ref"),
            (Ref, "-delete", "git_ref"),
            (Ref, "--upload-pack=touch /tmp/x", "git_ref"),
            (Ref, "main..dev", "git_ref"),
            (Ref, "..", "git_ref"),
            (Ref, "$(touch /tmp/x)", "git_ref"),
            (Ref, "`id`", "git_ref"),
            (Ref, "main;id", "git_ref"),
            (Ref, "main|id", "git_ref"),
            (Ref, "main&&id", "git_ref"),
            (Ref, "main\nid", "git_ref"),
            (Ref, "main\0", "git_ref"),
            (Ref, "main\u{7f}", "git_ref"),
            (Ref, "ma in", "git_ref"),
            (Ref, "HEAD~1", "git_ref"),
            (Ref, "HEAD^", "git_ref"),
            (Ref, "a:b", "git_ref"),
            (Ref, "a?b", "git_ref"),
            (Ref, "a*", "git_ref"),
            (Ref, "a[b", "git_ref"),
            (Ref, "a\\b", "git_ref"),
            (Ref, "/main", "git_ref"),
            (Ref, "feature/", "git_ref"),
            (Ref, "a//b", "git_ref"),
            (Ref, "main.", "git_ref"),
            (Ref, "main.lock", "git_ref"),
            (Ref, "refs/heads/x.lock/y", "git_ref"),
            (Ref, ".hidden", "git_ref"),
            (Ref, "refs/heads/.hidden", "git_ref"),
            (Ref, "@", "git_ref"),
            (Ref, "main@{1}", "git_ref"),
            (Ref, "m\u{0430}in", "git_ref"),
            (Ref, &long_ref, "git_ref"),
            // commits
            (Sha, "", "commit"),
            (Sha, "abc123", "commit"),
            (Sha, "zzzzzzz", "commit"),
            (Sha, "-123456789", "commit"),
            (Sha, "0123456789abcdef0123456789abcdef012345678", "commit"),
            (Sha, "abc1234\n", "commit"),
            (Sha, "HEAD", "commit"),
            // paths
            (Context, "", "context_path"),
            (Context, "..", "context_path"),
            (Context, "../secret", "context_path"),
            (Context, "a/../../b", "context_path"),
            (Context, "/etc", "context_path"),
            (Context, "//etc/passwd", "context_path"),
            (Context, "..\\..\\windows", "context_path"),
            (Context, "ctx\0", "context_path"),
            (Context, "a\nb", "context_path"),
            (Context, "$(touch /tmp/x)", "context_path"),
            (Context, "app;id", "context_path"),
            (Context, "-f", "context_path"),
            (Context, "sub/--config", "context_path"),
            (Context, "C:/x", "context_path"),
            (Context, "caf\u{e9}", "context_path"),
            (Context, &long_path, "context_path"),
            (Dockerfile, "/Dockerfile", "dockerfile"),
            (Dockerfile, "../Dockerfile", "dockerfile"),
            (Dockerfile, "Dockerfile|id", "dockerfile"),
            (Dockerfile, "Docker file", "dockerfile"),
            // slugs
            (Project, "", "project"),
            (Project, "-app", "project"),
            (Project, "app-", "project"),
            (Project, "App", "project"),
            (Project, "my_app", "project"),
            (Project, "my.app", "project"),
            (Project, "app;id", "project"),
            (Project, "app\n", "project"),
            (Project, "\u{0430}pp", "project"),
            (Project, &long_slug, "project"),
            (Service, "a b", "service"),
            (Service, "../x", "service"),
            (Service, "$(id)", "service"),
            // env / build args
            (EnvName, "", "env_name"),
            (EnvName, "1ABC", "env_name"),
            (EnvName, "A-B", "env_name"),
            (EnvName, "A B", "env_name"),
            (EnvName, "A=B", "env_name"),
            (EnvName, "$(id)", "env_name"),
            (EnvName, "PATH\0", "env_name"),
            (EnvName, "\u{c4}BC", "env_name"),
            (EnvName, &long_env, "env_name"),
            (EnvValue, "a\0b", "env_value"),
            (EnvValue, &long_value, "env_value"),
            (BuildArg, "-X", "build_arg"),
            (BuildArg, "A;B", "build_arg"),
            // images
            (Image, "", "image"),
            (Image, "-image", "image"),
            (Image, "--help", "image"),
            (Image, "Ubuntu", "image"),
            (Image, "library/Ubuntu", "image"),
            (Image, "ubuntu:-tag", "image"),
            (Image, "ubuntu:.tag", "image"),
            (Image, "ubuntu:", "image"),
            (Image, "ubuntu@sha256:abc", "image"),
            (Image, "ubuntu@md5", "image"),
            (Image, "ubuntu;id", "image"),
            (Image, "ubuntu:$(id)", "image"),
            (Image, "ubuntu tag", "image"),
            (Image, "a//b", "image"),
            (Image, "a/../b", "image"),
            (Image, "app_", "image"),
            (Image, "a___b", "image"),
            (Image, "-registry.io/app", "image"),
            (Image, "ubuntu\n", "image"),
            (Image, "\u{FF55}buntu", "image"),
            (Image, &long_image, "image"),
        ];
        assert!(cases.len() >= 40);
        for (check, value, field) in cases {
            match run(check, value) {
                Ok(v) => panic!("{check:?} accepted hostile {value:?} as {v:?}"),
                Err(e) => {
                    assert_eq!(e.field, field, "{check:?} {value:?}: {e}");
                    assert!(!e.message.is_empty());
                }
            }
        }
    }

    #[test]
    fn local_repos_need_the_setting() {
        for url in ["file:///srv/repo", "FILE:///srv/repo", "file://localhost/srv/repo"] {
            let e = local_repo_allowed(url, false).expect_err(url);
            assert_eq!(e.field, "git_url");
            assert!(e.message.contains("SLIPWAY_ALLOW_LOCAL_REPOS"), "{}", e.message);
            assert!(local_repo_allowed(url, true).is_ok(), "{url}");
        }
        for url in ["https://github.com/o/r", "git@github.com:o/r.git", "ssh://host/file:///x"] {
            assert!(local_repo_allowed(url, false).is_ok(), "{url}");
        }
    }

    #[test]
    fn valid_git_urls_are_accepted_and_normalized() {
        let cases = [
            ("https://github.com/owner/repo.git", "https://github.com/owner/repo.git"),
            ("https://github.com/owner/repo", "https://github.com/owner/repo"),
            ("HTTPS://GitHub.com/o/r", "https://GitHub.com/o/r"),
            ("https://gitea.local:3000/org/my-repo_1.git", "https://gitea.local:3000/org/my-repo_1.git"),
            ("https://host/~user/repo", "https://host/~user/repo"),
            ("https://host/a%20b.git", "https://host/a%20b.git"),
            (
                "https://x-access-token:ghp_abc123@github.com/o/r.git",
                "https://x-access-token:ghp_abc123@github.com/o/r.git",
            ),
            (
                "https://oauth2:tok%40en@gitlab.example.com/g/p.git",
                "https://oauth2:tok%40en@gitlab.example.com/g/p.git",
            ),
            ("https://ghp_token@github.com/o/r", "https://ghp_token@github.com/o/r"),
            ("ssh://git@github.com/owner/repo.git", "ssh://git@github.com/owner/repo.git"),
            ("ssh://git@host:2222/owner/repo.git", "ssh://git@host:2222/owner/repo.git"),
            ("ssh://[::1]/repo", "ssh://[::1]/repo"),
            ("ssh://git@[fe80::1]:22/srv/repo", "ssh://git@[fe80::1]:22/srv/repo"),
            ("git://git.kernel.org/pub/scm/git/git.git", "git://git.kernel.org/pub/scm/git/git.git"),
            ("file:///srv/git/repo.git", "file:///srv/git/repo.git"),
            ("FILE:///tmp/x", "file:///tmp/x"),
            ("file://localhost/srv/repo", "file://localhost/srv/repo"),
            ("git@github.com:owner/repo.git", "git@github.com:owner/repo.git"),
            ("github.com:owner/repo.git", "github.com:owner/repo.git"),
            ("deploy@10.0.0.5:/srv/git/app.git", "deploy@10.0.0.5:/srv/git/app.git"),
        ];
        for (raw, want) in cases {
            assert_eq!(git_url(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn valid_refs_and_commits_are_accepted() {
        for r in [
            "main",
            "master",
            "HEAD",
            "feature/login",
            "refs/heads/main",
            "refs/tags/v1.0",
            "release-1.2.3",
            "v1.0.0",
            "fix-#12",
            "dependabot/npm_and_yarn/lodash-4.17.21",
            "foo.lock.bar",
            "a.b",
            "@foo",
            "x@y",
            "_under",
            "UPPER/Case",
            &"r".repeat(255),
        ] {
            assert_eq!(git_ref(r).as_deref(), Ok(r), "{r}");
        }
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(commit_sha("abc1234").as_deref(), Ok("abc1234"));
        assert_eq!(commit_sha(sha1).as_deref(), Ok(sha1));
        assert_eq!(commit_sha(SHA256_HEX).as_deref(), Ok(SHA256_HEX));
        assert_eq!(commit_sha("ABCDEF1").as_deref(), Ok("abcdef1"));
    }

    #[test]
    fn rel_paths_are_normalized() {
        let cases = [
            (".", "."),
            ("./", "."),
            ("./.", "."),
            ("app", "app"),
            ("./services/api/", "services/api"),
            ("a//b/./c", "a/b/c"),
            ("docker/Dockerfile.prod", "docker/Dockerfile.prod"),
            ("Dockerfile", "Dockerfile"),
            (".config/x", ".config/x"),
            ("v1.2_x+y@z,w=q~", "v1.2_x+y@z,w=q~"),
        ];
        for (raw, want) in cases {
            assert_eq!(rel_path("context_path", raw).as_deref(), Ok(want), "{raw}");
        }
        let max = "p".repeat(MAX_REL_PATH);
        assert!(rel_path("dockerfile", &max).is_ok());
    }

    #[test]
    fn valid_names_and_values_are_accepted() {
        for s in ["a", "0", "my-app", "a1-b2", "a--b", &"a".repeat(40)] {
            assert_eq!(slug("service", s).as_deref(), Ok(s), "{s}");
        }
        for n in ["PATH", "_X", "a1", "DATABASE_URL", "_", &"X".repeat(128)] {
            assert_eq!(env_name(n).as_deref(), Ok(n), "{n}");
            assert_eq!(build_arg_name(n).as_deref(), Ok(n), "{n}");
        }
        for v in ["", "multi\nline", "unicode \u{2713}", "$(not a shell)", &"v".repeat(MAX_ENV_VALUE)] {
            assert_eq!(env_value(v).as_deref(), Ok(v));
        }
        assert_eq!(port(1), Ok(1));
        assert_eq!(port(80), Ok(80));
        assert_eq!(port(65535), Ok(65535));
        for bad in [0, 65536, u32::MAX] {
            assert_eq!(port(bad).map_err(|e| e.field), Err("port"));
        }
    }

    #[test]
    fn valid_image_refs_are_accepted() {
        let digest = format!("app@sha256:{SHA256_HEX}");
        let tagged_digest = format!("ghcr.io/o/app:v1@sha256:{SHA256_HEX}");
        for image in [
            "ubuntu",
            "ubuntu:22.04",
            "library/ubuntu",
            "docker.io/library/ubuntu:latest",
            "ghcr.io/owner/app:sha-abc1234",
            "localhost/app",
            "localhost:5000/app",
            "registry.example.com:5000/team/app:v1",
            "Registry.Example.com/app",
            "[::1]:5000/app:x",
            "slipway/myproj-api:build-12",
            "slipway/myproj-api:main-latest",
            "my_app__x.y-z",
            "a--b",
            "a:_tag",
            digest.as_str(),
            tagged_digest.as_str(),
        ] {
            assert_eq!(image_ref(image).as_deref(), Ok(image), "{image}");
        }
    }

    #[test]
    fn non_utf8_bytes_are_rejected() {
        assert_eq!(from_os_bytes("git_ref", b"main"), Ok("main"));
        assert_eq!(from_os_bytes("git_ref", "caf\u{e9}".as_bytes()), Ok("caf\u{e9}"));
        for bad in [&b"\xff\xfe"[..], b"main\xc0", b"\xed\xa0\x80", b"ok\x80"] {
            let e = from_os_bytes("git_ref", bad).expect_err("invalid UTF-8 accepted");
            assert_eq!(e.field, "git_ref");
        }
        // Lossy conversion must not smuggle a value past the checks either.
        let lossy = String::from_utf8_lossy(b"ma\xffin");
        assert!(git_ref(&lossy).is_err());
    }

    #[test]
    fn error_display_names_the_field() {
        let e = git_url("-x").expect_err("leading dash accepted");
        assert_eq!(e.to_string(), "git_url: must not start with '-'");
        let e = rel_path("dockerfile", "../x").expect_err("dot-dot accepted");
        assert_eq!(e.to_string(), "dockerfile: must not contain '..'");
    }

    #[test]
    fn error_messages_do_not_echo_credentials() {
        let e = git_url("https://user:s3cr3t$@host/x").expect_err("accepted");
        assert!(!e.to_string().contains("s3cr3t"));
    }

    #[test]
    fn redact_url_hides_passwords_and_tokens() {
        let cases = [
            ("https://user:secret@host/x", "https://user:********@host/x"),
            ("https://oauth2:tok%40en@gitlab.com/g/p.git", "https://oauth2:********@gitlab.com/g/p.git"),
            ("https://ghp_token@github.com/o/r", "https://********@github.com/o/r"),
            ("http://u:p@h", "http://u:********@h"),
            ("https://a:b@c@host/x", "https://a:********@host/x"),
            ("ssh://git@host/x", "ssh://git@host/x"),
            ("ssh://git:pw@host/x", "ssh://git:********@host/x"),
            ("git@github.com:o/r", "git@github.com:o/r"),
            ("https://host/path@x", "https://host/path@x"),
            ("https://host/x", "https://host/x"),
            ("not a url", "not a url"),
            ("", ""),
            ("https://\u{fc}ser:p\u{e4}ss@h\u{f8}st/", "https://\u{fc}ser:********@h\u{f8}st/"),
        ];
        for (raw, want) in cases {
            assert_eq!(redact_url(raw), want, "{raw}");
        }
    }

    #[test]
    fn split_credentials_separates_userinfo() {
        let (url, creds) =
            split_credentials("https://oauth2:tok%40en@gitlab.com:8443/g/p.git").expect("valid");
        assert_eq!(url, "https://gitlab.com:8443/g/p.git");
        let creds = creds.expect("credentials");
        assert_eq!(creds.username, "oauth2");
        assert_eq!(creds.password.as_deref(), Some("tok@en"));
        assert!(!format!("{creds:?}").contains("tok"));

        let (url, creds) = split_credentials("https://ghp_x@github.com/o/r").expect("valid");
        assert_eq!(url, "https://github.com/o/r");
        assert_eq!(creds, Some(UrlCredentials { username: "ghp_x".into(), password: None }));

        for plain in ["https://github.com/o/r", "ssh://git@host/x", "git@host:x"] {
            assert_eq!(split_credentials(plain), Ok((plain.to_string(), None)));
        }
        assert!(split_credentials("https://u:%ff@host/x").is_err());
        assert!(split_credentials("ext::sh").is_err());
    }
}
