//! The `tradefeed` binary: parse the command line, set up logging, hand over to the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use tradefeed::cli::{LogFormat, execute, parse_args};

/// jemalloc with a background thread that hands freed pages back to the OS within about a
/// second (settings in `.cargo/config.toml`). With glibc's allocator a daemon that had polled
/// 1,000 sources kept 67 MiB resident while idle, most of it freed but never returned.
///
/// It also serves the bundled SQLite's `malloc` (the crate's `unprefixed_malloc` feature
/// exports `malloc`/`free`, which take precedence over libc's): left on glibc, the writer
/// thread's arena kept 9 MiB of freed page-cache chunks resident at idle, pinned by a few live
/// ones between them, where jemalloc's decay purges them. One allocator: 38 → 28 MiB idle.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    execute(cli)
}
