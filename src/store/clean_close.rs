//! The clean-close stamp: lets start-up skip the whole-file integrity check when nothing can
//! have damaged the database since the last writer closed it.
//!
//! `PRAGMA quick_check` reads every page (and runs FTS5's own check of the search index); on
//! a 45 MB database that is about 35 ms, more than half of a whole warm polling pass. It guards
//! against a file damaged while no tradefeed had it open: a crash mid-write of some other tool,
//! a bad restore, a copy cut short. All of those change the file's size or modification time.
//!
//! So the writer, after its final checkpoint has folded the WAL into the database, records the
//! file's size and modification time in the lock file it holds. The next opener compares: when
//! they match and no WAL is pending, the file is exactly as a clean close left it and the check
//! is skipped; in every other case (a killed process, an edited, copied or restored file, a
//! missing or unreadable stamp) it runs. The opener wipes the stamp before anything can write,
//! so a process killed later never leaves a stale one behind.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Versioned so that a future change of the recorded facts can never match an old stamp.
const TAG: &str = "tradefeed-clean-close 1";

/// What the stamp records about the database file: its size and modification time.
fn describe(db: &Path) -> Option<String> {
    let meta = std::fs::metadata(db).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(format!(
        "{TAG} len={} mtime_ns={}",
        meta.len(),
        modified.as_nanos()
    ))
}

/// True when the WAL beside `db` holds frames (absent or empty means none).
fn wal_pending(db: &Path) -> bool {
    std::fs::metadata(super::wal_path(db)).is_ok_and(|m| m.len() > 0)
}

/// Reads the stamp from the (held) lock file and wipes it. Returns whether the database is
/// exactly as the last clean close left it, so the integrity check may be skipped.
pub(super) fn take(lock: &mut File, db: &Path) -> std::io::Result<bool> {
    let mut recorded = String::new();
    lock.seek(SeekFrom::Start(0))?;
    // A stamp is one short line; anything longer is not ours.
    Read::by_ref(lock)
        .take(256)
        .read_to_string(&mut recorded)
        .ok();
    // Not synced: after an OS crash a stale stamp cannot match anyway, because writes reach
    // the WAL first (and a pending WAL always means a check) before any checkpoint changes
    // the database file's size or time.
    lock.set_len(0)?;
    let current = describe(db);
    Ok(current.is_some_and(|c| c == recorded.trim_end()) && !wal_pending(db))
}

/// Where the writer records the stamp once it has closed cleanly.
#[derive(Debug, Clone)]
pub(super) struct Stamp {
    pub(super) db: PathBuf,
    pub(super) lock: PathBuf,
}

impl Stamp {
    /// Records the database file's current state. Called by the writer after its final
    /// checkpoint succeeded; failures only mean the next start runs the full check.
    pub(super) fn record(&self) {
        let Some(line) = describe(&self.db) else {
            return;
        };
        if wal_pending(&self.db) {
            return;
        }
        let written = File::options()
            .write(true)
            .truncate(true)
            .open(&self.lock)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            tracing::debug!(error = %e, path = %self.lock.display(), "clean-close stamp not written");
        }
    }
}
