//! How the writer's WAL is watched, folded back into the database and kept in size.
//!
//! Freeing the WAL file's blocks is what costs here, not writing them: truncating a WAL that
//! a burst of polls has just written makes the file system wait for the journal commit that
//! allocated those blocks. On the development box that was 80–120 ms per truncation, about
//! 1.7 ms per MiB: a ninth of a cold 150-feed pass when the final checkpoint truncated a
//! 46 MiB WAL, and 0.36 s of the writer's time in a 600-feed pass when SQLite's
//! `journal_size_limit` cut the WAL back after each automatic checkpoint. So:
//!
//! - during a burst the WAL file is never truncated: after a complete checkpoint SQLite
//!   writes it again from its start, reusing the blocks;
//! - when the writer is idle, a WAL file grown past [`WAL_KEPT_BYTES`] is truncated (a poll
//!   arriving meanwhile waits for that one truncation, not every burst for several);
//! - at shutdown the WAL is folded without truncating it (see [`fold_at_close`]).
//!
//! SQLite calls [`on_commit`] after every commit with the number of pages in the WAL. It
//! replaces the automatic checkpoint (the same PASSIVE checkpoint at the same size), and it
//! tells the background checkpointer how long the WAL really is: the file's size says how
//! far it ever grew, not how much of it is in use.

use std::cell::Cell;
use std::ffi::c_int;
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::hooks::{CheckpointMode, Wal};

/// WAL pages after which a commit checkpoints itself (64 MiB at 4 KiB pages): the backstop
/// when the background checkpointer falls behind. SQLite's default is 1,000 pages, which
/// put a checkpoint inside every 400th stored entry's commit, a fifth of a cold pass.
const AUTOCHECKPOINT_PAGES: c_int = 16_384;

/// A WAL file larger than this is truncated once the writer is idle and everything in it
/// has been copied into the database.
const WAL_KEPT_BYTES: u64 = 16 << 20;

thread_local! {
    /// Pages in the WAL after the last commit made on this thread (the writer thread's are the
    /// ones read; a job that commits nothing leaves the previous value).
    static PAGES: Cell<c_int> = const { Cell::new(0) };
}

/// Installs [`on_commit`] on the writer's connection. It replaces `wal_autocheckpoint`, which
/// must not be set after this (it would replace the hook).
pub(super) fn watch(conn: &Connection) {
    conn.wal_hook(Some(on_commit));
}

/// SQLite's WAL hook: records the WAL's length for [`pages_after_commit`] and checkpoints at
/// [`AUTOCHECKPOINT_PAGES`], as the automatic checkpoint it replaces did.
fn on_commit(wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    PAGES.set(pages);
    if pages >= AUTOCHECKPOINT_PAGES {
        // Like SQLite's own: a checkpoint that cannot finish now is not an error of the
        // commit that triggered it.
        if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
            tracing::debug!(error = %e, "automatic checkpoint skipped");
        }
    }
    Ok(())
}

/// Pages in the WAL after this thread's last commit (0 before any).
pub(super) fn pages_after_commit() -> c_int {
    PAGES.get()
}

/// `PRAGMA wal_checkpoint(MODE)`: (SQLite reported busy, frames in the WAL, frames copied).
pub(super) fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(bool, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?))
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The idle checkpoint: PASSIVE, so it never waits for a reader. When that copied everything
/// and the file has grown past [`WAL_KEPT_BYTES`], TRUNCATE hands the disk back, without
/// waiting either. Returns whether both got done; when a reader (or the checkpoint thread)
/// was in the way, the writer tries again after another quiet spell.
pub(super) fn fold_when_idle(conn: &Connection, wal: &Path) -> bool {
    match checkpoint(conn, "PASSIVE") {
        Ok((false, log, copied)) if log == copied => {
            if file_len(wal) <= WAL_KEPT_BYTES {
                return true;
            }
            let _ = conn.busy_timeout(Duration::ZERO);
            let truncated = checkpoint(conn, "TRUNCATE");
            let _ = conn.busy_timeout(super::BUSY_TIMEOUT);
            match truncated {
                Ok((busy, ..)) => !busy,
                Err(e) => {
                    tracing::debug!(error = %e, "idle WAL truncation skipped");
                    false
                }
            }
        }
        Ok(_) => false,
        Err(e) => {
            tracing::debug!(error = %e, "idle checkpoint skipped");
            false
        }
    }
}

/// Folds the WAL into the database at shutdown. True when the database file is then complete
/// on its own and nothing in the WAL is left to copy.
///
/// RESTART copies every frame and syncs the database; SQLite then starts the WAL over at the
/// next write, giving it new salts. That next write is one row (the time of this close), so
/// the frames still in the file, all of them already in the database, stop counting: the
/// next open reads the WAL's header, the new frames and the first old one, and the next
/// writer reuses the file's blocks. The new frames are folded too. Truncating the file
/// instead would wait for the blocks to be freed (see the module docs); it is the fallback
/// when the write or its checkpoint fails. A WAL with no frames (new, or truncated when
/// idle) has nothing to fold, and the close writes nothing.
pub(super) fn fold_at_close(conn: &Connection) -> bool {
    match checkpoint(conn, "RESTART") {
        Ok((false, 0, _)) => return true,
        Ok((false, log, copied)) if log == copied => {}
        Ok(_) => return false,
        Err(e) => {
            tracing::debug!(error = %e, "final checkpoint failed");
            return false;
        }
    }
    let started_over = conn
        .execute(
            "INSERT INTO meta (key, value) VALUES ('closed_at', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [chrono::Utc::now().to_rfc3339()],
        )
        .is_ok()
        && matches!(
            checkpoint(conn, "PASSIVE"),
            Ok((false, log, copied)) if log == copied && log <= FRAMES_OF_ONE_ROW
        );
    started_over || checkpoint(conn, "TRUNCATE").is_ok_and(|(busy, ..)| !busy)
}

/// Frames the one-row write of [`fold_at_close`] leaves in a WAL that started over: the table's
/// page, and room for a page split. This bounds what the next open's recovery reads; that
/// every live frame is copied (`log == copied`) is what makes the database file complete.
const FRAMES_OF_ONE_ROW: i64 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL-mode database with the writer's hook and `mib` MiB of rows in its WAL.
    fn wal_db(dir: &Path, mib: usize) -> (Connection, std::path::PathBuf) {
        let db = dir.join("t.db");
        let conn = Connection::open(&db).unwrap();
        conn.busy_timeout(super::super::BUSY_TIMEOUT).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        watch(&conn);
        conn.execute_batch("CREATE TABLE blobs (b BLOB NOT NULL)")
            .unwrap();
        for _ in 0..mib {
            conn.execute("INSERT INTO blobs (b) VALUES (randomblob(1048576))", [])
                .unwrap();
        }
        let wal = super::super::wal_path(&db);
        assert!(file_len(&wal) > (mib as u64) << 20);
        (conn, wal)
    }

    fn busy_timeout_ms(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_close_that_cannot_write_its_row_truncates_the_wal_instead() {
        let dir = tempfile::tempdir().unwrap();
        // No `meta` table here: the row that would start the WAL over cannot be written.
        let (conn, wal) = wal_db(dir.path(), 2);
        assert!(fold_at_close(&conn), "folded all the same");
        assert_eq!(file_len(&wal), 0, "by truncating the WAL");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2);
    }

    #[test]
    fn an_idle_fold_that_a_reader_holds_up_says_so_and_keeps_the_busy_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, wal) = wal_db(dir.path(), 20);
        let reader = Connection::open(dir.path().join("t.db")).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let rows: i64 = reader
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 20);

        // The reader's snapshot is in the WAL: copying may go on, truncating may not.
        assert!(!fold_when_idle(&conn, &wal));
        assert!(file_len(&wal) > WAL_KEPT_BYTES);
        assert_eq!(busy_timeout_ms(&conn), 5_000, "the writer waits as before");

        reader.execute_batch("COMMIT").unwrap();
        assert!(fold_when_idle(&conn, &wal));
        assert_eq!(file_len(&wal), 0);
        assert_eq!(busy_timeout_ms(&conn), 5_000);
    }

    #[test]
    fn the_hook_reports_the_wal_length_of_each_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _wal) = wal_db(dir.path(), 1);
        let before = pages_after_commit();
        assert!(before > 256, "1 MiB of rows: {before} pages");
        conn.execute("INSERT INTO blobs (b) VALUES (randomblob(1048576))", [])
            .unwrap();
        assert!(pages_after_commit() > before + 250);
    }
}
