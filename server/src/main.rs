use std::process::ExitCode;

// mimalloc instead of glibc malloc: server-side rendering allocates heavily
// from both worker threads, and glibc's arenas spent about a third of the
// service page's CPU time in malloc/free (perf, ssr_service_page bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    no_transparent_huge_pages();
    server::cli::main()
}

/// mimalloc's arenas are 2 MiB-aligned: with transparent huge pages every
/// arena chunk touched became a whole resident 2 MiB page (14 of the 41 MB
/// of an idle server). The `no_thp` feature stops mimalloc asking for them;
/// this also refuses them where the system gives them unasked (`always`).
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments only; it sets a flag of this
    // process's memory map, and failing (old kernel) changes nothing.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
