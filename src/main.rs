//! The `warden` binary: everything lives in the library; this only runs the CLI.

/// mimalloc instead of glibc's malloc: per-request allocations in the HTTP stack were ~10 % of
/// the gateway's CPU under load with glibc (bench/README.md, "allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    warden::cli::main()
}
