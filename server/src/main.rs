use std::process::ExitCode;

// mimalloc instead of glibc malloc: server-side rendering allocates heavily
// from both worker threads, and glibc's arenas spent about a third of the
// service page's CPU time in malloc/free (perf, ssr_service_page bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    server::cli::main()
}
