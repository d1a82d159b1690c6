//! Copies the WAL back into the database on a connection and thread of its own, so that a long
//! burst of writes (a first pass over thousands of feeds) does not stop the writer for it.
//!
//! SQLite lets a PASSIVE checkpoint run beside a writer: it copies the frames committed so far
//! while new commits keep appending to the WAL, which starts over from its beginning once a
//! checkpoint has copied everything. Profiling a 2,400-feed first pass showed the checkpoints
//! inside the writer's commits at a tenth of the writer's time, on the one thread every poll
//! waits for. The writer's own automatic checkpoint stays as a backstop at a larger size.

use std::ffi::c_int;
use std::path::Path;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use rusqlite::Connection;

/// WAL length, in pages, past which the writer asks for a checkpoint (16 MiB at 4 KiB pages).
const CHECKPOINT_AT_PAGES: c_int = 4_096;

/// The checkpoint thread, woken by the writer.
pub(super) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to `db`. `None` when that fails; the writer's
    /// automatic checkpoint then bounds the WAL alone.
    pub(super) fn start(db: &Path) -> Option<Checkpointer> {
        let conn = Connection::open(db)
            .and_then(|c| c.busy_timeout(super::BUSY_TIMEOUT).map(|()| c))
            .map_err(|e| tracing::warn!(error = %e, "checkpoint thread not started"))
            .ok()?;
        // One pending wake-up is enough: a checkpoint copies everything committed until then.
        let (wake, woken) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(error = %e, "background checkpoint skipped");
                    }
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "checkpoint thread not started"))
            .ok()?;
        Some(Checkpointer {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Called by the writer after a commit with the WAL's length in pages: wakes the thread
    /// when the WAL has grown large.
    pub(super) fn after_commit(&self, wal_pages: c_int) {
        if wal_pages > CHECKPOINT_AT_PAGES
            && let Some(wake) = &self.wake
        {
            // Full: a wake-up is already pending. Disconnected: the thread is gone, and the
            // writer's automatic checkpoint takes over.
            let _ = wake.try_send(());
        }
    }

    /// Stops the thread after any checkpoint it is running (before the writer's final one).
    pub(super) fn stop(mut self) {
        self.wake = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::wal;
    use super::*;

    #[test]
    fn a_large_wal_is_copied_into_the_database_by_the_thread_while_the_writer_stays_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let writer = Connection::open(&db).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        // The writer's hook: it reports the WAL's length and checkpoints only past 64 MiB,
        // so until someone else checkpoints, everything below stays in the WAL.
        wal::watch(&writer);
        writer
            .execute_batch("CREATE TABLE blobs (b BLOB NOT NULL)")
            .unwrap();
        let checkpointer = Checkpointer::start(&db).expect("started");
        let small = std::fs::metadata(&db).unwrap().len();
        assert!(wal::pages_after_commit() < CHECKPOINT_AT_PAGES);
        checkpointer.after_commit(wal::pages_after_commit());
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(
            std::fs::metadata(&db).unwrap().len(),
            small,
            "a small WAL is left alone"
        );

        for _ in 0..20 {
            writer
                .execute("INSERT INTO blobs (b) VALUES (zeroblob(1048576))", [])
                .unwrap();
        }
        let pages = wal::pages_after_commit();
        assert!(pages > CHECKPOINT_AT_PAGES, "{pages} pages in the WAL");
        assert!(
            std::fs::metadata(&db).unwrap().len() < 1 << 20,
            "all in the WAL so far"
        );
        checkpointer.after_commit(pages);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::fs::metadata(&db).unwrap().len() < 20 << 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "the checkpoint thread copied the WAL into the database"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        checkpointer.stop();
        let n: i64 = writer
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 20, "the writer's data is intact");
    }
}
