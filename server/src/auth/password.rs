//! Password rules and argon2id hashing with DESIGN.md's parameters
//! (m = 19456 KiB, t = 2, p = 1). Hashing is CPU-bound: async callers use
//! [`hash_blocking`] and [`verify_blocking`], which run on the blocking pool,
//! at most [`MAX_CONCURRENT_HASHES`] at once.
//!
//! Each hash needs a 19 MiB memory block. Unbounded, a burst of sign-ins grew
//! the process by 19 MiB per sign-in at once (119 MB for four), and the
//! allocator kept the freed blocks: the gate makes a burst wait its turn, and
//! each hash hands its block back to the OS when it is done.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, LazyLock, OnceLock,
};

use tokio::sync::Semaphore;

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};

/// Memory cost in KiB.
pub const ARGON2_M_KIB: u32 = 19_456;
/// Iterations.
pub const ARGON2_T: u32 = 2;
/// Parallelism.
pub const ARGON2_P: u32 = 1;
/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in bytes (bounds the hashing work per request).
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes long")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Checks a new password against the rules (length only: no composition
/// rules, following NIST SP 800-63B).
pub fn check_rules(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The argon2id PHC string of `password` with a fresh 16-byte salt. Does not
/// check the rules (see [`check_rules`]).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    let phc = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string. A malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::error!("stored password hash is malformed");
        return false;
    };
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

/// A hash of a random password, verified against when the user does not
/// exist so that the answer takes as long as for a real user.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = format!("{:032x}", rand::random::<u128>());
        hash(&random).unwrap_or_default()
    })
}

/// Password hashes (and verifications) that run at once, process-wide.
/// Sign-ins beyond it queue (each waiting one holds only its request).
pub const MAX_CONCURRENT_HASHES: usize = 1;

/// The gate of [`hash_blocking`] and [`verify_blocking`].
static GATE: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(MAX_CONCURRENT_HASHES)));
/// Gated hashes running now, and the most ever seen at once.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The most gated hashes ever seen running at once in this process (never
/// above [`MAX_CONCURRENT_HASHES`]).
pub fn peak_concurrent_hashes() -> usize {
    PEAK.load(Ordering::SeqCst)
}

/// Runs `work` on the blocking pool once `gate` gives a permit. The permit
/// moves into the blocking task, so it is held until `work` has returned,
/// even when the caller stops waiting (a dropped request cannot let a
/// further hash start beside a running one).
pub async fn run_gated<T: Send + 'static>(
    gate: &Arc<Semaphore>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PasswordError> {
    let permit = gate.clone().acquire_owned().await.map_err(|e| PasswordError::Hash(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let result = work();
        drop(permit);
        result
    })
    .await
    .map_err(|e| PasswordError::Hash(format!("hashing task failed: {e}")))
}

/// `work` (one argon2 hash), counted in [`peak_concurrent_hashes`]; then the
/// freed memory block goes back to the OS.
fn counted<T>(work: impl FnOnce() -> T) -> T {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    PEAK.fetch_max(now, Ordering::SeqCst);
    let result = work();
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    release_memory();
    result
}

/// Asks mimalloc (the binary's allocator) to return the memory it freed on
/// this thread to the OS now: argon2's 19 MiB block would otherwise stay
/// committed to the process. Nothing else uses it in tests (system
/// allocator); the call is then a cheap no-op.
fn release_memory() {
    // SAFETY: mi_collect takes no pointers; it only walks the calling
    // thread's heap and mimalloc's arenas.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// [`hash`] on the blocking pool, behind the gate.
pub async fn hash_blocking(password: String) -> Result<String, PasswordError> {
    run_gated(&GATE, move || counted(|| hash(&password))).await?
}

/// [`verify`] on the blocking pool, behind the gate; `None` as the hash
/// verifies against [`dummy_hash`] and is always false.
pub async fn verify_blocking(password: String, phc: Option<String>) -> bool {
    run_gated(&GATE, move || {
        counted(|| match phc {
            Some(phc) => verify(&password, &phc),
            None => {
                let _ = verify(&password, dummy_hash());
                false
            }
        })
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_count_characters_and_bound_bytes() {
        assert_eq!(check_rules("short"), Err(PasswordError::TooShort));
        assert_eq!(check_rules("ééééééééééé"), Err(PasswordError::TooShort)); // 11 chars, 22 bytes
        assert!(check_rules("éééééééééééé").is_ok());
        assert!(check_rules(&"x".repeat(MAX_PASSWORD_BYTES)).is_ok());
        assert_eq!(check_rules(&"x".repeat(MAX_PASSWORD_BYTES + 1)), Err(PasswordError::TooLong));
    }

    #[test]
    fn hash_verifies_and_salts() {
        let a = hash("correct horse battery").expect("hash");
        let b = hash("correct horse battery").expect("hash");
        assert_ne!(a, b, "fresh salt each time");
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batterx", &a));
        assert!(!verify("correct horse battery", "not a phc string"));
        assert!(dummy_hash().starts_with("$argon2id$"));
    }

    /// The most closures seen at once, and a closure that counts itself.
    fn probe() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)))
    }

    fn tracked(running: &Arc<AtomicUsize>, peak: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
        let (running, peak) = (running.clone(), peak.clone());
        move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(30));
            running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_gate_bounds_work_running_at_once() {
        for permits in [1, 2] {
            let gate = Arc::new(Semaphore::new(permits));
            let (running, peak) = probe();
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (gate, work) = (gate.clone(), tracked(&running, &peak));
                    tokio::spawn(async move { run_gated(&gate, work).await })
                })
                .collect();
            for task in tasks {
                task.await.expect("task").expect("work");
            }
            // Eight tasks on four threads and the blocking pool: without the
            // gate they overlap; with it, exactly `permits` run together.
            assert_eq!(peak.load(Ordering::SeqCst), permits);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_stops_waiting_keeps_the_permit_until_the_work_ends() {
        let gate = Arc::new(Semaphore::new(1));
        let (running, peak) = probe();
        let abandoned = tokio::time::timeout(
            std::time::Duration::from_millis(5),
            run_gated(&gate, tracked(&running, &peak)),
        )
        .await;
        assert!(abandoned.is_err(), "the caller gave up while the work ran");
        run_gated(&gate, tracked(&running, &peak)).await.expect("work");
        assert_eq!(peak.load(Ordering::SeqCst), 1, "the second run waited for the first");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_sign_ins_never_hash_more_than_the_limit_at_once() {
        let phc = hash("correct horse battery").expect("hash");
        let logins: Vec<_> = (0..8)
            .map(|i| {
                let phc = (i % 2 == 0).then(|| phc.clone());
                tokio::spawn(verify_blocking("correct horse battery".into(), phc))
            })
            .collect();
        let new_password = tokio::spawn(hash_blocking("another good password".into()));
        for (i, login) in logins.into_iter().enumerate() {
            assert_eq!(login.await.expect("login"), i % 2 == 0, "login {i}");
        }
        assert!(new_password.await.expect("task").expect("hash").starts_with("$argon2id$"));
        // Process-wide: other tests hashing meanwhile go through the same gate.
        let peak = peak_concurrent_hashes();
        assert!((1..=MAX_CONCURRENT_HASHES).contains(&peak), "peak {peak}");
    }
}
