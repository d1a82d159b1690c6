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

/// The WAL's fact when there is no WAL file.
const NO_WAL: &str = "wal=none";

/// What the stamp records: the size and modification time of the database file and of its
/// WAL, as two separate facts (the WAL's is [`NO_WAL`] when there is none).
#[derive(Debug, PartialEq)]
struct Facts {
    db: String,
    wal: String,
}

impl Facts {
    fn of(db: &Path) -> Option<Facts> {
        let (len, mtime) = size_and_time(db).ok()?;
        let wal = match size_and_time(&super::wal_path(db)) {
            Ok((len, mtime)) => format!("wal_len={len} wal_mtime_ns={mtime}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => NO_WAL.to_owned(),
            Err(_) => return None,
        };
        Some(Facts {
            db: format!("len={len} mtime_ns={mtime}"),
            wal,
        })
    }

    fn line(&self) -> String {
        format!("{TAG} {} {}", self.db, self.wal)
    }

    fn parse(line: &str) -> Option<Facts> {
        let rest = line.strip_prefix(TAG)?.strip_prefix(' ')?;
        let at = rest.find(" wal")?;
        Some(Facts {
            db: rest[..at].to_owned(),
            wal: rest[at + 1..].to_owned(),
        })
    }
}

fn size_and_time(path: &Path) -> std::io::Result<(u64, u128)> {
    let meta = std::fs::metadata(path)?;
    let modified = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map_err(std::io::Error::other)?;
    Ok((meta.len(), modified.as_nanos()))
}

/// Reads the stamp from the (held) lock file and wipes it. Returns whether the database is
/// exactly as the last clean close left it, so the integrity check may be skipped.
///
/// Called before SQLite opens the file. When the database is no longer the file the stamp
/// describes (restored from a backup, replaced) but its WAL still is, that WAL is removed:
/// everything in it is already in the file that was closed, and its one live frame, the
/// close's own row, records that file's size and pages, which SQLite would otherwise apply to
/// the file that replaced it.
pub(super) fn take(lock: &mut File, db: &Path) -> std::io::Result<bool> {
    let mut recorded = String::new();
    lock.seek(SeekFrom::Start(0))?;
    // A stamp is one short line; anything longer is not ours.
    Read::by_ref(lock)
        .take(256)
        .read_to_string(&mut recorded)
        .ok();
    // Not synced. After an OS crash a stale stamp could in principle match: the WAL is
    // written in place, so new frames need not change its size, and a page can reach the
    // disk while its new modification time does not. SQLite's own recovery keeps the
    // database consistent in that case; only the extra check is skipped. An fsync of the
    // lock file at every start is not worth that.
    lock.set_len(0)?;
    let (Some(recorded), Some(current)) = (Facts::parse(recorded.trim_end()), Facts::of(db)) else {
        return Ok(false);
    };
    if current == recorded {
        return Ok(true);
    }
    if current.wal == recorded.wal && current.wal != NO_WAL {
        tracing::info!(path = %db.display(), "database replaced since its clean close: its old WAL is removed");
        let wal = super::wal_path(db);
        match std::fs::remove_file(&wal) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                let detail = format!("removing the old WAL {}: {e}", wal.display());
                return Err(std::io::Error::new(e.kind(), detail));
            }
            _ => {}
        }
    }
    Ok(false)
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
        let Some(line) = Facts::of(&self.db).map(|f| f.line()) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_line_reads_back_as_its_two_facts_and_older_versions_do_not() {
        for wal in ["wal_len=123 wal_mtime_ns=456", NO_WAL] {
            let facts = Facts {
                db: "len=4096 mtime_ns=1795876092704580577".into(),
                wal: wal.into(),
            };
            assert_eq!(Facts::parse(&facts.line()), Some(facts));
        }
        assert_eq!(
            Facts::parse("tradefeed-clean-close 1 len=4096 mtime_ns=1795876092704580577"),
            None
        );
        assert_eq!(Facts::parse(""), None);
    }
}
