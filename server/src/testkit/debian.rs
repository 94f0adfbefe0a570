//! Real Debian images for tests and benches that need real software, made
//! once per machine with `debootstrap` (there is no registry to pull from)
//! and imported into the engine: [`DEBIAN_IMAGE`] (PostgreSQL 15, Redis 7
//! and Debian's busybox, for `busybox httpd`) and [`NGINX_IMAGE`] (nginx,
//! for the edge bench).
//!
//! Made at most once: a process-wide `OnceCell` serialises the tests of one
//! process, an exclusive `flock` on a file in the cache dir serialises test
//! processes, and the engine is asked for the tag before and after taking
//! the lock. The rootfs is built under the cache dir and removed after the
//! import. Every process is spawned with an argument vector, no shell.

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bollard::{query_parameters::CreateImageOptionsBuilder, Docker};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;

/// Debian bookworm (minbase) with `postgresql-15`, `redis-server` and
/// `busybox`; `PATH` starts with PostgreSQL's bin dir (`initdb`,
/// `postgres`, `pg_isready`, `psql`).
pub const DEBIAN_IMAGE: &str = "slipway-test/debian-pg-redis:1";
/// Where PostgreSQL 15's programs are (`su` resets `PATH`: use full paths).
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Debian bookworm (minbase) with Debian's `nginx` (1.22).
pub const NGINX_IMAGE: &str = "slipway-test/debian-nginx:1";

/// What goes into one image: its tag, `debootstrap --include` list and `PATH`.
struct Spec {
    tag: &'static str,
    packages: &'static str,
    path: &'static str,
}

const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const PG_REDIS: Spec = Spec {
    tag: DEBIAN_IMAGE,
    packages: "postgresql-15,redis-server,busybox",
    path: "/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
};
const NGINX: Spec = Spec { tag: NGINX_IMAGE, packages: "nginx", path: SYSTEM_PATH };

const SUITE: &str = "bookworm";
const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";
const SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
const SOURCES_LIST: &str = "/etc/apt/sources.list";
/// Measured 48 s on our machine kind; generous for a slow mirror.
const DEBOOTSTRAP_LIMIT: Duration = Duration::from_secs(600);
/// Another test process making the image: its debootstrap and import.
const LOCK_LIMIT: Duration = Duration::from_secs(900);
const CHUNK: usize = 256 * 1024;

static PG_REDIS_READY: OnceCell<()> = OnceCell::const_new();
static NGINX_READY: OnceCell<()> = OnceCell::const_new();

/// Makes sure [`DEBIAN_IMAGE`] is on the engine (making it if missing) and
/// returns its tag. Cheap once made: one inspect per process.
pub async fn ensure_debian_image(docker: &Docker) -> anyhow::Result<&'static str> {
    PG_REDIS_READY.get_or_try_init(|| make_if_missing(docker, &PG_REDIS)).await?;
    Ok(DEBIAN_IMAGE)
}

/// [`ensure_debian_image`] for [`NGINX_IMAGE`].
pub async fn ensure_nginx_image(docker: &Docker) -> anyhow::Result<&'static str> {
    NGINX_READY.get_or_try_init(|| make_if_missing(docker, &NGINX)).await?;
    Ok(NGINX_IMAGE)
}

async fn present(docker: &Docker, tag: &str) -> anyhow::Result<bool> {
    match docker.inspect_image(tag).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot inspect the test image {tag}")),
    }
}

async fn make_if_missing(docker: &Docker, spec: &Spec) -> anyhow::Result<()> {
    if present(docker, spec.tag).await? {
        return Ok(());
    }
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let _lock = lock(&cache.join("debian-image.lock"), LOCK_LIMIT).await?;
    if present(docker, spec.tag).await? {
        return Ok(()); // another test process made it while we waited
    }
    let started = Instant::now();
    let rootfs = cache.join("debian-rootfs");
    remove_dir(&rootfs).await?; // a leftover of a killed run
    let made = async {
        debootstrap(&rootfs, spec.packages).await?;
        let bootstrapped = started.elapsed();
        import(docker, &rootfs, spec).await?;
        eprintln!(
            "testkit: made {} in {:.1} s (debootstrap {:.1} s)",
            spec.tag,
            started.elapsed().as_secs_f64(),
            bootstrapped.as_secs_f64()
        );
        anyhow::Ok(())
    }
    .await;
    let removed = remove_dir(&rootfs).await;
    made?;
    removed
}

/// `SLIPWAY_CACHE`, else `~/.cache/slipway` (as `scripts/setup.sh`).
fn cache_dir() -> PathBuf {
    match std::env::var_os("SLIPWAY_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/slipway")
        }
    }
}

async fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    let owned = dir.to_path_buf();
    match tokio::task::spawn_blocking(move || std::fs::remove_dir_all(owned)).await? {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", dir.display())),
    }
}

/// An exclusive `flock` on `path`, polled until `limit`; held until the
/// file is dropped (and released by the kernel if the process dies).
async fn lock(path: &Path, limit: Duration) -> anyhow::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let deadline = Instant::now() + limit;
    loop {
        // SAFETY: flock(2) on a descriptor `file` owns; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(file);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != ErrorKind::WouldBlock {
            return Err(err).with_context(|| format!("cannot lock {}", path.display()));
        }
        if Instant::now() > deadline {
            bail!(
                "{} was still locked after {limit:?} (another test process making the image)",
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The mirror apt already uses: the first `URIs:` of the deb822 stanza for
/// [`SUITE`] (not `-security`/`-updates` alone), else a `deb` line of
/// `sources.list` for it.
pub fn mirror_of(deb822: &str, sources_list: &str) -> Option<String> {
    for stanza in deb822.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.split_whitespace().collect::<Vec<_>>()))
        };
        let (Some(suites), Some(uris)) = (field("Suites:"), field("URIs:")) else { continue };
        if suites.contains(&SUITE) {
            if let Some(uri) = uris.first() {
                return Some(uri.to_string());
            }
        }
    }
    sources_list.lines().find_map(|line| {
        let mut words = line.split_whitespace().filter(|w| !w.starts_with('['));
        let (kind, uri, suite) = (words.next()?, words.next()?, words.next()?);
        (kind == "deb" && suite == SUITE).then(|| uri.to_string())
    })
}

async fn debootstrap(rootfs: &Path, packages: &str) -> anyhow::Result<()> {
    let program = ["/usr/sbin/debootstrap", "/sbin/debootstrap"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("debootstrap is missing: install Debian's debootstrap (scripts/setup.sh does)")?;
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mirror = mirror_of(&read(SOURCES), &read(SOURCES_LIST)).unwrap_or_else(|| FALLBACK_MIRROR.into());
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("--variant=minbase")
        .arg(format!("--include={packages}"))
        .arg(SUITE)
        .arg(rootfs)
        .arg(&mirror)
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(DEBOOTSTRAP_LIMIT, cmd.output()).await {
        Ok(out) => out.context("cannot run debootstrap")?,
        Err(_) => bail!("debootstrap took longer than {DEBOOTSTRAP_LIMIT:?}"),
    };
    if !out.status.success() {
        let log = std::fs::read_to_string(rootfs.join("debootstrap/debootstrap.log")).unwrap_or_default();
        let tail = |text: &str| {
            text.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        bail!(
            "debootstrap {SUITE} from {mirror} failed ({}):\n{}\n{}\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout)),
            tail(&String::from_utf8_lossy(&out.stderr)),
            tail(&log)
        );
    }
    Ok(())
}

/// `tar -C rootfs -c .` (without the downloaded packages) streamed into the engine's import
/// (`POST /images/create?fromSrc=-`), tagged `spec.tag`.
async fn import(docker: &Docker, rootfs: &Path, spec: &Spec) -> anyhow::Result<()> {
    let mut tar = tokio::process::Command::new("tar")
        .arg("--numeric-owner")
        // debootstrap's downloaded packages (about 100 MB) are not needed.
        .arg("--exclude=./var/cache/apt/archives/*.deb")
        .arg("-C")
        .arg(rootfs)
        .arg("-c")
        .arg(".")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run tar")?;
    let stdout = tar.stdout.take().context("tar has no stdout")?;
    // A read error fails the upload (the body's last item), and ends it.
    let body = futures::stream::unfold(Some(stdout), |out| async move {
        let mut out = out?;
        let mut buf = vec![0u8; CHUNK];
        match out.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(out)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let (repo, tag) = spec.tag.rsplit_once(':').context("the image name has no tag")?;
    let changes = vec![format!("ENV PATH={}", spec.path), "LABEL dev.slipway.testkit=debian".to_string()];
    let options = CreateImageOptionsBuilder::new().from_src("-").repo(repo).tag(tag).changes(changes).build();
    let mut stream = docker.create_image(Some(options), Some(bollard::body_try_stream(body)), None);
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(message) = info.error_detail.and_then(|d| d.message) {
                    failure = failure.or(Some(message));
                }
            }
            Err(e) => failure = failure.or(Some(e.to_string())),
        }
    }
    let status = tar.wait().await.context("cannot wait for tar")?;
    if !status.success() || failure.is_some() {
        // A truncated tar must not stay behind under the tag.
        let _ =
            docker.remove_image(spec.tag, None::<bollard::query_parameters::RemoveImageOptions>, None).await;
        bail!("importing {} failed (tar: {status}): {}", spec.tag, failure.unwrap_or_default());
    }
    if !present(docker, spec.tag).await? {
        bail!("the engine imported the rootfs but has no {}", spec.tag);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::mirror_of;

    #[test]
    fn the_mirror_is_read_from_the_bookworm_stanza_or_sources_list() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\
                      Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n\
                      Suites: bookworm-security\nComponents: main\n";
        assert_eq!(mirror_of(deb822, "").as_deref(), Some("http://mirror.example/debian"));
        let security_only = "Types: deb\nURIs: http://sec.example\nSuites: bookworm-security\n";
        assert_eq!(mirror_of(security_only, ""), None);
        let list = "# comment\ndeb [arch=amd64] http://old.example/debian bookworm main\n";
        assert_eq!(mirror_of(security_only, list).as_deref(), Some("http://old.example/debian"));
    }
}
