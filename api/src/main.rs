//! The `rollcall` binary: all of it lives in the `api` library.

fn main() -> std::process::ExitCode {
    api::cli::main()
}
