//! The clean-close stamp: lets start-up skip the whole-file integrity check when nothing can
//! have damaged the database since the last writer closed it.
//!
//! `PRAGMA quick_check` reads every page (and runs FTS5's own check of the search index); on
//! a 45 MB database that is about 35 ms, more than half of a whole warm polling pass. It guards
//! against a file damaged while no tradefeed had it open: a crash mid-write of some other tool,
//! a bad restore, a copy cut short. All of those change the file's size or modification time.
//!
//! So the writer, after its final checkpoint has folded the WAL into the database, records the
//! size and modification time of the database file and of its WAL in the lock file it holds.
//! The WAL is recorded too because a clean close leaves it in place, its frames all copied
//! into the database already (see `wal::fold_at_close`); anything written to it since changes
//! its size or time. The next opener compares: when both match, the files are exactly as a
//! clean close left them and the check is skipped; in every other case (a killed process, an
//! edited, copied or restored file, a WAL written by another program, a missing or unreadable
//! stamp) it runs. The opener wipes the stamp before anything can write, so a process killed
//! later never leaves a stale one behind.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Versioned so that a future change of the recorded facts can never match an old stamp
/// (version 1 recorded the database file alone and required an empty WAL).
const TAG: &str = "tradefeed-clean-close 2";

/// What the stamp records: the size and modification time of the database file and of its
/// WAL (`wal=none` when there is none).
fn describe(db: &Path) -> Option<String> {
    let (len, mtime) = size_and_time(db)?;
    let wal = match std::fs::metadata(super::wal_path(db)) {
        Ok(_) => {
            let (len, mtime) = size_and_time(&super::wal_path(db))?;
            format!("wal_len={len} wal_mtime_ns={mtime}")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "wal=none".to_owned(),
        Err(_) => return None,
    };
    Some(format!("{TAG} len={len} mtime_ns={mtime} {wal}"))
}

fn size_and_time(path: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((meta.len(), modified.as_nanos()))
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
    // the WAL first (changing its time) before any checkpoint changes the database file.
    lock.set_len(0)?;
    let current = describe(db);
    Ok(current.is_some_and(|c| c == recorded.trim_end()))
}

/// Where the writer records the stamp once it has closed cleanly.
#[derive(Debug, Clone)]
pub(super) struct Stamp {
    pub(super) db: PathBuf,
    pub(super) lock: PathBuf,
}

impl Stamp {
    /// Records the current state of the database file and its WAL. Called by the writer after
    /// its final checkpoint folded everything; failures only mean the next start runs the
    /// full check.
    pub(super) fn record(&self) {
        let Some(line) = describe(&self.db) else {
            return;
        };
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
