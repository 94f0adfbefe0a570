//! Image builds through the Engine API's classic builder: the context tar
//! (honouring `.dockerignore`), the build call, and its progress stream
//! turned into log lines.
//!
//! Cancellation: dropping the [`build_image`] future drops the HTTP request;
//! the daemon sees the connection close, cancels the build, and kills and
//! removes the running step's container (tested in
//! `server/tests/it/build_pipeline.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion, TagImageOptionsBuilder};
use bollard::Docker;
use futures::StreamExt;

use crate::logs::{LogError, LogStream, LogWriter};
use crate::validate;

/// Longest a whole build may take at the HTTP client level; the job's own
/// timeout (default 30 min) is shorter and cancels the build first.
pub const BUILD_CLIENT_TIMEOUT: Duration = Duration::from_secs(3600);
/// Longest Docker image tag.
const MAX_TAG: usize = 128;
const LATEST_SUFFIX: &str = "-latest";

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The build context directory (inside the checkout).
    pub context_dir: PathBuf,
    /// The Dockerfile, relative to `context_dir`.
    pub dockerfile: String,
    /// Full image references to tag the result with; at least one.
    pub tags: Vec<String>,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    /// Receives `(step, steps)` as each Dockerfile step starts.
    pub steps: Option<tokio::sync::mpsc::UnboundedSender<(u32, u32)>>,
}

/// A finished build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// `sha256:…`, what deployments refer to.
    pub image_id: String,
    pub tags: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The request itself is unusable (a bad tag, Dockerfile path, build arg).
    #[error("invalid build request: {0}")]
    Invalid(String),
    /// The context could not be read or packed.
    #[error("build context: {0}")]
    Context(String),
    /// A Dockerfile step failed; `step` is its `Step N/M : …` line.
    #[error("{step} failed: {message}")]
    StepFailed { step: String, message: String },
    /// The build failed before any step ran (e.g. a Dockerfile syntax error).
    #[error("build failed: {0}")]
    Failed(String),
    /// The engine was unreachable or answered with an error outside a step.
    #[error("Docker engine error: {0}")]
    Engine(String),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The tags of build `build_number` of `service` in `project`:
/// `slipway/<project>-<service>:build-<n>`, `:sha-<short>` and
/// `:<branch>-latest`, the branch made into a valid tag (characters outside
/// `[A-Za-z0-9_.-]` become `-`, no leading `.` or `-`, length capped).
/// `project` and `service` are validated slugs.
pub fn image_tags(
    project: &str,
    service: &str,
    build_number: u64,
    short_sha: &str,
    branch: &str,
) -> Vec<String> {
    let repo = format!("slipway/{project}-{service}");
    vec![
        format!("{repo}:build-{build_number}"),
        format!("{repo}:sha-{short_sha}"),
        format!("{repo}:{}{LATEST_SUFFIX}", branch_tag(branch)),
    ]
}

/// `branch` as the first part of a tag (`[A-Za-z0-9_][A-Za-z0-9_.-]*`).
fn branch_tag(branch: &str) -> String {
    let mapped: String = branch
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' })
        .collect();
    let trimmed = mapped.trim_start_matches(['.', '-']);
    let mut tag: String = trimmed.chars().take(MAX_TAG - LATEST_SUFFIX.len()).collect();
    while tag.ends_with(['.', '-']) {
        tag.pop();
    }
    if tag.is_empty() {
        tag.push_str("branch");
    }
    tag
}

/// Builds the image: packs the context, runs the classic builder, streams
/// its output into `log` (Dockerfile steps verbatim), tags the image with
/// every requested tag and returns its id. Never pulls newer base images.
/// Dropping the future cancels the build in the daemon.
pub async fn build_image(
    docker: &Docker,
    req: BuildRequest,
    log: &mut LogWriter,
) -> Result<BuiltImage, BuildError> {
    let invalid = |e: validate::ValidationError| BuildError::Invalid(e.to_string());
    let dockerfile = validate::rel_path("dockerfile", &req.dockerfile).map_err(invalid)?;
    let Some(first_tag) = req.tags.first() else {
        return Err(BuildError::Invalid("at least one tag is needed".into()));
    };
    for tag in &req.tags {
        validate::image_ref(tag).map_err(invalid)?;
    }
    for name in req.build_args.keys() {
        validate::build_arg_name(name).map_err(invalid)?;
    }

    let context_dir = req.context_dir.clone();
    let packed_dockerfile = dockerfile.clone();
    let context = tokio::task::spawn_blocking(move || context_tar(&context_dir, &packed_dockerfile))
        .await
        .map_err(|e| BuildError::Context(format!("packing the context stopped: {e}")))?
        .map_err(|e| BuildError::Context(format!("{e:#}")))?;
    log.line(LogStream::System, &format!("Sending build context to the engine ({} bytes)", context.len()))
        .await?;

    let options = BuildImageOptionsBuilder::new()
        .dockerfile(&dockerfile)
        .t(first_tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&req.build_args)
        .labels(&req.labels)
        .version(BuilderVersion::BuilderV1)
        .build();
    // bollard's client timeout (120 s by default) covers the whole request,
    // i.e. the whole build.
    let client = docker.clone().with_timeout(BUILD_CLIENT_TIMEOUT);
    let mut stream = client.build_image(options, None, Some(bollard::body_full(context.into())));

    let mut progress = Progress { steps: req.steps.clone(), ..Progress::default() };
    let mut image_id = None;
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(progress.failure(log, error).await);
            }
            Err(e) => return Err(BuildError::Engine(e.to_string())),
        };
        if let Some(text) = info.stream.as_deref() {
            progress.push(log, text).await?;
        }
        if let Some(status) = info.status.as_deref() {
            // Base image pull progress: only the state changes, not the bars.
            if info.progress_detail.as_ref().is_none_or(|d| d.total.is_none()) {
                let line = match info.id.as_deref() {
                    Some(id) => format!("{id}: {status}"),
                    None => status.to_string(),
                };
                log.line(LogStream::Stdout, &line).await?;
            }
        }
        if let Some(id) = info.aux.and_then(|aux| aux.id) {
            image_id = Some(id);
        }
        if let Some(message) = info.error_detail.and_then(|d| d.message) {
            return Err(progress.failure(log, message).await);
        }
    }
    progress.flush(log).await?;
    drop(stream);

    let image_id = match image_id {
        Some(id) => id,
        None => client
            .inspect_image(first_tag)
            .await
            .map_err(|e| BuildError::Engine(format!("the built image cannot be inspected: {e}")))?
            .id
            .ok_or_else(|| BuildError::Engine("the built image has no id".into()))?,
    };
    for tag in &req.tags[1..] {
        let (repo, tag_part) = split_tag(tag);
        let options = TagImageOptionsBuilder::new().repo(repo).tag(tag_part).build();
        client.tag_image(&image_id, Some(options)).await.map_err(|e| BuildError::Engine(e.to_string()))?;
    }
    log.line(LogStream::System, &format!("Built image {image_id}")).await?;
    tracing::info!(image_id = %image_id, tags = ?req.tags, "image built");
    Ok(BuiltImage { image_id, tags: req.tags })
}

/// `repo[:tag]` split at the tag's ':' (not a registry port's).
fn split_tag(reference: &str) -> (&str, &str) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (&reference[..name_start + i], &reference[name_start + i + 1..]),
        None => (reference, "latest"),
    }
}

/// Turns the builder's `stream` text into whole log lines and remembers the
/// step being run.
#[derive(Default)]
struct Progress {
    partial: String,
    step: Option<String>,
    steps: Option<tokio::sync::mpsc::UnboundedSender<(u32, u32)>>,
}

impl Progress {
    async fn push(&mut self, log: &mut LogWriter, text: &str) -> Result<(), LogError> {
        self.partial.push_str(text);
        let Some(end) = self.partial.rfind('\n') else {
            return Ok(());
        };
        let complete: String = self.partial.drain(..=end).collect();
        for line in complete.lines() {
            if line.starts_with("Step ") {
                self.step = Some(line.trim_end().to_string());
                if let (Some(tx), Some(n)) = (&self.steps, step_numbers(line)) {
                    // The receiver may be gone; progress is best effort.
                    let _ = tx.send(n);
                }
            }
        }
        log.line(LogStream::Stdout, &complete).await
    }

    async fn flush(&mut self, log: &mut LogWriter) -> Result<(), LogError> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let rest = std::mem::take(&mut self.partial);
        log.line(LogStream::Stdout, &rest).await
    }

    /// Logs the failure and names the step it happened in.
    async fn failure(&mut self, log: &mut LogWriter, message: String) -> BuildError {
        let message = message.trim_end().to_string();
        let logged = async {
            self.flush(log).await?;
            log.line(LogStream::System, &format!("Build failed: {message}")).await
        }
        .await;
        if let Err(e) = logged {
            tracing::warn!(error = %e, "cannot log a build failure");
        }
        match self.step.take() {
            Some(step) => BuildError::StepFailed { step, message },
            None => BuildError::Failed(message),
        }
    }
}

/// `(n, m)` from a classic builder `Step n/m : …` line.
fn step_numbers(line: &str) -> Option<(u32, u32)> {
    let rest = line.strip_prefix("Step ")?;
    let (counts, _) = rest.split_once(' ')?;
    let (n, m) = counts.split_once('/')?;
    Some((n.parse().ok()?, m.parse().ok()?))
}

// ------------------------------------------------------------- context --

/// Packs `context_dir` into a tar as `docker build` would send it: paths
/// excluded by `.dockerignore` left out (the Dockerfile and `.dockerignore`
/// are always sent), symlinks stored as symlinks (never followed), sockets
/// and other special files skipped. `dockerfile` is relative to the context
/// and must stay inside it.
pub fn context_tar(context_dir: &Path, dockerfile: &str) -> anyhow::Result<Vec<u8>> {
    let dockerfile = validate::rel_path("dockerfile", dockerfile)?;
    let meta = std::fs::symlink_metadata(context_dir)
        .with_context(|| format!("cannot read the context dir {}", context_dir.display()))?;
    if !meta.is_dir() {
        bail!("the context {} is not a directory", context_dir.display());
    }
    match std::fs::symlink_metadata(context_dir.join(&dockerfile)) {
        Ok(m) if m.is_file() || m.is_symlink() => {}
        Ok(_) => bail!("the Dockerfile {dockerfile} is not a file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("there is no Dockerfile at {dockerfile} in the context")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read the Dockerfile {dockerfile}")),
    }

    let mut ignore = match std::fs::read(context_dir.join(".dockerignore")) {
        Ok(bytes) => DockerIgnore::parse(&String::from_utf8_lossy(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(e).context("cannot read .dockerignore"),
    };
    // Docker sends these whatever .dockerignore says.
    ignore.add_exception(&dockerfile);
    ignore.add_exception(".dockerignore");

    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    add_dir(&mut tar, context_dir, "", &ignore)?;
    Ok(tar.into_inner()?)
}

/// Adds the entries of `dir` (at `rel` inside the context) and below.
fn add_dir(
    tar: &mut tar::Builder<Vec<u8>>,
    dir: &Path,
    rel: &str,
    ignore: &DockerIgnore,
) -> anyhow::Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path_in_context = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        let full = entry.path();
        let meta =
            std::fs::symlink_metadata(&full).with_context(|| format!("cannot read {path_in_context}"))?;
        let excluded = ignore.excludes(&path_in_context);
        if meta.is_dir() {
            if !excluded {
                let mut header = header_for(&meta, tar::EntryType::Directory);
                tar.append_data(&mut header, format!("{path_in_context}/"), std::io::empty())?;
            }
            // An exception may bring back something below an excluded dir.
            if !excluded || ignore.may_include_below(&path_in_context) {
                add_dir(tar, &full, &path_in_context, ignore)?;
            }
            continue;
        }
        if excluded {
            continue;
        }
        if meta.is_symlink() {
            let target =
                std::fs::read_link(&full).with_context(|| format!("cannot read link {path_in_context}"))?;
            let mut header = header_for(&meta, tar::EntryType::Symlink);
            tar.append_link(&mut header, &path_in_context, &target)?;
        } else if meta.is_file() {
            let mut header = header_for(&meta, tar::EntryType::Regular);
            header.set_size(meta.len());
            let file =
                std::fs::File::open(&full).with_context(|| format!("cannot open {path_in_context}"))?;
            tar.append_data(&mut header, &path_in_context, file)?;
        } else {
            tracing::debug!(path = %path_in_context, "skipping a special file in the build context");
        }
    }
    Ok(())
}

fn header_for(meta: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
    use std::os::unix::fs::MetadataExt;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(meta.mode() & 0o7777);
    header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header
}

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

    fn add_exception(&mut self, path: &str) {
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
    fn may_include_below(&self, dir: &str) -> bool {
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

    #[test]
    fn branch_names_become_valid_tags() {
        let tags = image_tags("shop", "api", 12, "abc1234", "feature/Login_v2");
        assert_eq!(
            tags,
            vec![
                "slipway/shop-api:build-12",
                "slipway/shop-api:sha-abc1234",
                "slipway/shop-api:feature-Login_v2-latest",
            ]
        );
        assert_eq!(branch_tag("--x"), "x");
        assert_eq!(branch_tag("..."), "branch");
        assert_eq!(branch_tag(&"b".repeat(300)).len(), MAX_TAG - LATEST_SUFFIX.len());
        for branch in ["main", "release/1.2", "dependabot/npm_and_yarn/x-1.0", "-", "é/ü"] {
            for tag in image_tags("p", "s", 1, "abc1234", branch) {
                assert!(validate::image_ref(&tag).is_ok(), "{tag}");
            }
        }
    }

    #[test]
    fn tags_split_at_the_tag_colon_not_a_port() {
        assert_eq!(split_tag("slipway/a-b:build-1"), ("slipway/a-b", "build-1"));
        assert_eq!(split_tag("localhost:5000/app:v1"), ("localhost:5000/app", "v1"));
        assert_eq!(split_tag("localhost:5000/app"), ("localhost:5000/app", "latest"));
    }
}
