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
//! - when the writer is idle, a WAL file grown past [`WAL_KEPT_BYTES`] is truncated, off the
//!   path of any poll;
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
    /// Pages in the WAL after the last commit on this thread's connection (the writer's).
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
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(bool, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?))
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The idle checkpoint: PASSIVE, so it never waits for a reader. When that copied everything
/// and the file has grown past [`WAL_KEPT_BYTES`], TRUNCATE hands the disk back, without
/// waiting either: if a reader still uses the WAL it is tried at the next quiet spell.
pub(super) fn fold_when_idle(conn: &Connection, wal: &Path) {
    match checkpoint(conn, "PASSIVE") {
        Ok((false, log, copied)) if log == copied && file_len(wal) > WAL_KEPT_BYTES => {
            let _ = conn.busy_timeout(Duration::ZERO);
            if let Err(e) = checkpoint(conn, "TRUNCATE") {
                tracing::debug!(error = %e, "idle WAL truncation skipped");
            }
            let _ = conn.busy_timeout(super::BUSY_TIMEOUT);
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "idle checkpoint skipped"),
    }
}

/// Folds the WAL into the database at shutdown. True when the database file is then complete
/// on its own and nothing in the WAL is left to copy.
///
/// RESTART copies every frame and syncs the database; SQLite then starts the WAL over at the
/// next write, giving it new salts. That next write is one row (the time of this close), so
/// the frames still in the file, all of them already in the database, stop counting: the
/// next open reads the WAL's header and the one new frame, and the next writer reuses the
/// file's blocks. The frame is folded too. Truncating the file instead would wait for the
/// blocks to be freed (see the module docs); it is the fallback when SQLite did not start
/// the WAL over, e.g. because a reader still used it.
pub(super) fn fold_at_close(conn: &Connection) -> bool {
    match checkpoint(conn, "RESTART") {
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
/// page, and room for a page split. More means SQLite appended to the old frames instead.
const FRAMES_OF_ONE_ROW: i64 = 4;
