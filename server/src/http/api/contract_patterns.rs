//! The regular expressions of the OpenAPI document (ECMA-262 syntax that
//! Python's `re` reads the same way), one per validator of
//! [`crate::validate`] and the domain. Each states what its validator
//! accepts; where a grammar is too large for one expression (IPv6 hosts in
//! git URLs and image registries, RFC 3339 times for `since`) the pattern
//! accepts a documented subset and never more than the validator does.
//!
//! Every pattern ends with one top-level `$`, so generators that read `$`
//! as Python does never add a final newline.

/// A project or service name ([`crate::validate::slug`]).
pub const SLUG: &str = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$";

/// A pipeline step's name ([`crate::build_report::step_filter`]).
pub const STEP_NAME: &str = r"^[A-Za-z0-9_.-]{1,63}$";

/// An environment variable or build-arg name ([`crate::validate::env_name`]).
pub const IDENTIFIER: &str = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$";

/// Anything but NUL ([`crate::validate::env_value`]).
pub const NO_NUL: &str = r"^[^\x00]*$";

/// A health command's program: not empty, not an option, no NUL.
pub const PROGRAM: &str = r"^[^\x00\-][^\x00]*$";

// Rust's `char::is_whitespace` (what `str::trim` removes), and `char::is_control`.
macro_rules! ws {
    () => {
        r"[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    };
}
// Neither control nor whitespace.
macro_rules! visible {
    () => {
        r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    };
}
// Not a control character.
macro_rules! no_control {
    () => {
        r"[^\x00-\x1f\x7f-\x9f]"
    };
}

/// 1 to 60 characters once trimmed, none of them a control character
/// (token and notification target names).
pub const NAME_60: &str =
    concat!("^", ws!(), "*", visible!(), "(?:", no_control!(), "{0,58}", visible!(), ")?", ws!(), "*$");

/// At most 500 characters once trimmed, none of them a control character;
/// blank means none (a deploy or rollback reason).
pub const REASON: &str =
    concat!("^", ws!(), "*(?:", visible!(), "(?:", no_control!(), "{0,498}", visible!(), ")?)?", ws!(), "*$");

// A ref; its lookaheads read the end as "only whitespace follows" (the build
// trigger trims its ref; a branch has no whitespace to trim).
macro_rules! ref_body {
    () => {
        concat!(
            "(?!-)(?!@",
            ws!(),
            r"*$)(?![^\n]*\.\.)(?![^\n]*@\{)(?![^\n]*\.",
            ws!(),
            r"*$)(?![^\n]*\.lock(?:/|",
            ws!(),
            r"*$))(?!\.)[!#%+,\-.0-9=@A-Z\]_a-z{}]+(?:/(?!\.)[!#%+,\-.0-9=@A-Z\]_a-z{}]+)*"
        )
    };
}

/// A branch, tag or commit ([`crate::validate::git_ref`]).
pub const GIT_REF: &str = concat!("^", ref_body!(), "$");

/// A ref, trimmed; blank means the service's branch.
pub const OPTIONAL_GIT_REF: &str = concat!("^", ws!(), "*(?:", ref_body!(), ")?", ws!(), "*$");

/// A path in the repository ([`crate::validate::rel_path`]).
pub const REL_PATH: &str = r"^(?!/)(?!(?:[^\n]*/)?\.\.(?:/|$))(?!(?:[^\n]*/)?-)[A-Za-z0-9._/+@,=~\-]+$";

/// A health probe's request path.
pub const HEALTH_PATH: &str = r"^(?![^?]*/\.\.(?:[/?]|$))/[A-Za-z0-9._~/%?=&+,:@\-]*$";

macro_rules! label {
    () => {
        r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
    };
}

/// A DNS name of two labels or more (final dots dropped), or blank
/// ([`crate::validate::domain`]).
pub const OPTIONAL_DOMAIN: &str =
    concat!("^", ws!(), "*(?:", label!(), r"(?:\.", label!(), r")+\.*)?", ws!(), "*$");

/// A Dockerfile stage name ([`crate::validate::stage_name`]), or empty.
pub const OPTIONAL_STAGE: &str = r"^(?:[A-Za-z][A-Za-z0-9_.\-]{0,127})?$";

/// `since` as an age of at most 366 days.
pub const SINCE: &str =
    r"^(?:[0-9]{1,7}s|[0-9]{1,5}m|[0-9]{1,3}h|(?:[0-9]{1,2}|[12][0-9]{2}|3[0-5][0-9]|36[0-6])d)$";

/// An http(s) URL with a host name whose last label starts with a letter
/// (so it never reads as an IPv4 number) and no IDNA (`xn--`) label.
pub const HTTP_URL: &str = concat!(
    r"^[Hh][Tt][Tt][Pp][Ss]?://(?![Xx][Nn]--)(?![^/?#]*\.[Xx][Nn]--)",
    r"(?:",
    label!(),
    r"\.)*[A-Za-z](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?::[0-9]{1,4})?(?:[/?#][!-~]*)?$"
);

macro_rules! pct {
    () => {
        r"%(?:[2-689A-Fa-f][0-9A-Fa-f]|7[0-9A-Ea-e])"
    };
}
macro_rules! userinfo {
    () => {
        concat!(r"(?:[A-Za-z0-9._~\-]|", pct!(), ")+")
    };
}
macro_rules! user {
    () => {
        concat!("(?!-)", userinfo!())
    };
}
macro_rules! host {
    () => {
        r"(?![\-.])(?![A-Za-z0-9._\-]*\.\.)[A-Za-z0-9._\-]{1,253}"
    };
}
macro_rules! port {
    () => {
        r"(?!0+/)(?:[0-9]{1,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
    };
}
macro_rules! segment {
    () => {
        concat!(r"(?!-)(?:[A-Za-z0-9._~+@=,:\-]|", pct!(), ")*")
    };
}
macro_rules! url_path {
    () => {
        concat!(r"(?=/*[^/])(?:/", segment!(), ")+")
    };
}

/// A git remote ([`crate::validate::git_url`]), without IPv6 hosts.
pub const GIT_URL: &str = concat!(
    r"^(?![A-Za-z0-9+.\-]*::)",
    r"(?![^\n]*--(?:[Uu][Pp][Ll][Oo][Aa][Dd]-[Pp][Aa][Cc][Kk]|[Rr][Ee][Cc][Ee][Ii][Vv][Ee]-[Pp][Aa][Cc][Kk]|[Cc][Oo][Nn][Ff][Ii][Gg]|[Ee][Xx][Ee][Cc]))",
    "(?:",
    // https://[user[:password]@]host[:port]/path
    r"[Hh][Tt][Tt][Pp][Ss]://(?:",
    user!(),
    "(?::",
    userinfo!(),
    ")?@)?",
    host!(),
    "(?::",
    port!(),
    ")?",
    url_path!(),
    // ssh://[user@]host[:port]/path
    r"|[Ss][Ss][Hh]://(?:",
    user!(),
    "@)?",
    host!(),
    "(?::",
    port!(),
    ")?",
    url_path!(),
    // git://host[:port]/path
    r"|[Gg][Ii][Tt]://",
    host!(),
    "(?::",
    port!(),
    ")?",
    url_path!(),
    // file:///path or file://localhost/path
    r"|[Ff][Ii][Ll][Ee]://(?:[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt])?",
    url_path!(),
    // [user@]host:path
    r"|(?![^\n]*://)(?:",
    user!(),
    "@)?",
    host!(),
    r":(?=/*[^/])",
    segment!(),
    "(?:/",
    segment!(),
    ")*",
    ")$"
);

macro_rules! component {
    () => {
        r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    };
}

/// An image registry `host[:port]` ([`crate::validate::registry_host`]).
pub const REGISTRY_HOST: &str = concat!("^", label!(), r"(?:\.", label!(), ")*(?::(?!0+$)", port!(), ")?$");

/// An image repository path ([`crate::validate::image_repository`]).
pub const IMAGE_REPOSITORY: &str = concat!("^", component!(), "(?:/", component!(), ")*$");

/// A registry user name: no ':' and no control characters.
pub const REGISTRY_USERNAME: &str = r"^[^:\x00-\x1f\x7f-\x9f]*$";

/// No control characters.
pub const NO_CONTROL: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// A `watch_paths` glob (`projects::spec::watch_paths`): no leading `/`, and
/// `**` only as a whole segment.
pub const WATCH_PATH: &str = r"^(?!/)(?!.*(?:[^/]\*\*|\*\*[^/]))[A-Za-z0-9._/*?\-]+$";

/// A volume's container path (`projects::kind::volume_path`).
pub const VOLUME_PATH: &str = r"^(?:/[A-Za-z0-9_\-][A-Za-z0-9._\-]*)+/?$";

/// A Docker image reference or id ([`crate::validate::image_ref`]), without
/// IPv6 registry hosts.
pub const IMAGE_REF: &str = concat!(
    // The name (before the tag and digest) is at most 255 characters.
    r"^(?!-)(?=[^@]{1,255}(?::[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127})?(?:@|$))(?:",
    // registry host[:port]/path
    label!(),
    r"(?:\.",
    label!(),
    ")*(?::",
    port!(),
    ")?/",
    component!(),
    "(?:/",
    component!(),
    ")*",
    // or a path whose first component is no host
    r"|(?![^/]*\.[^/]*/)",
    component!(),
    "(?:/",
    component!(),
    ")*",
    ")",
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127})?",
    r"(?:@(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}))?$"
);
