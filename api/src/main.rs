//! The `rollcall` binary: all of it lives in the `api` library.

/// mimalloc rather than glibc's malloc: the service allocates small strings
/// by the thousand (a watchlist page, a projector batch), and glibc spent
/// about 200 instructions on each (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    api::cli::main()
}
