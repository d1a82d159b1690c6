//! `import-opml` and `export-opml`: move subscription lists between feed readers and the config.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::{Cli, EXIT_SOME_FAILED};
use crate::config::Config;
use crate::opml::{self, OpmlFeed};

/// `import-opml FILE`: adds the file's feeds to the `--config` file and prints what it did.
/// Exit status 2 when some feeds were refused for a bad URL (the others are still added).
pub(super) fn import(cli: &Cli, file: &Path) -> anyhow::Result<ExitCode> {
    let report = opml::import_file(&cli.config, file)?;
    println!("{report}");
    if !report.added.is_empty() {
        println!(
            "{} updated; a running daemon reloads it within seconds (or: systemctl reload tradefeed)",
            cli.config.display()
        );
    }
    Ok(if report.invalid.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_SOME_FAILED)
    })
}

/// `export-opml`: prints every configured source as an OPML 2.0 document on stdout.
pub(super) fn export(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(&cli.config)?;
    let sources: Vec<OpmlFeed> = config.sources.iter().map(OpmlFeed::from).collect();
    let xml = opml::render(&config.server.title, chrono::Utc::now(), &sources);
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(xml.as_bytes())
        .context("writing the OPML to stdout")?;
    Ok(ExitCode::SUCCESS)
}
