//! Copies the WAL back into the database on a connection and thread of its own, so that a long
//! burst of writes (a first pass over thousands of feeds) does not stop the writer for it.
//!
//! SQLite lets a PASSIVE checkpoint run beside a writer: it copies the frames committed so far
//! while new commits keep appending to the WAL, which starts over from its beginning once a
//! checkpoint has copied everything. Profiling a 2,400-feed first pass showed the checkpoints
//! inside the writer's commits at a tenth of the writer's time, on the one thread every poll
//! waits for. The writer's own automatic checkpoint stays as a backstop at a larger size.
//!
//! The WAL starts over only at the start of a write transaction that finds every frame copied,
//! and in a burst the writer's next transaction starts as soon as its last one commits: before
//! the thread, which copies only what was committed when it started, can have caught up. So the
//! WAL never started over during a first pass, and grew to 47 MB for a 23.5 MB database (the
//! 150-feed farm). Once the thread has finished a pass, the writer copies the few frames
//! committed since itself, between two transactions; the next one then starts the WAL over, and
//! the file's pages are written again instead of new ones added (measured: see the README).

use std::cell::Cell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use rusqlite::Connection;

/// WAL length, in pages, past which the writer asks for a checkpoint (16 MiB at 4 KiB pages).
const CHECKPOINT_AT_PAGES: c_int = 4_096;

/// The checkpoint thread, woken by the writer.
pub(super) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Set by the thread when it has finished the pass it was woken for.
    finished: Arc<AtomicBool>,
    /// The writer woke the thread and has not yet caught up after its pass.
    woken: Cell<bool>,
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
        let finished = Arc::new(AtomicBool::new(false));
        let thread_finished = Arc::clone(&finished);
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(error = %e, "background checkpoint skipped");
                    }
                    thread_finished.store(true, Ordering::Release);
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "checkpoint thread not started"))
            .ok()?;
        Some(Checkpointer {
            wake: Some(wake),
            thread: Some(thread),
            finished,
            woken: Cell::new(false),
        })
    }

    /// Called by the writer on its connection `writer` after a commit, with the WAL's length
    /// in pages: wakes the thread when the WAL has grown large, and once the thread has
    /// finished that pass, copies what was committed since (see the module docs).
    pub(super) fn after_commit(&self, writer: &Connection, wal_pages: c_int) {
        if self.woken.get() {
            if self.finished.swap(false, Ordering::AcqRel) {
                self.woken.set(false);
                // Busy only if another connection is checkpointing: then the WAL starts over
                // after a later pass.
                if let Err(e) = writer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, "catching up the checkpoint skipped");
                }
            }
            return;
        }
        if wal_pages > CHECKPOINT_AT_PAGES
            && let Some(wake) = &self.wake
        {
            // Disconnected: the thread is gone, and the writer's automatic checkpoint takes
            // over. (Full cannot happen: the writer wakes it again only after its pass.)
            if wake.try_send(()).is_ok() {
                self.woken.set(true);
            }
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
        checkpointer.after_commit(&writer, wal::pages_after_commit());
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
        checkpointer.after_commit(&writer, pages);
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

    /// A writer whose hook reports the WAL's length, on a new database in `dir`.
    fn writer_on(dir: &Path) -> (Connection, std::path::PathBuf) {
        let db = dir.join("t.db");
        let writer = Connection::open(&db).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        wal::watch(&writer);
        writer
            .execute_batch("CREATE TABLE blobs (b BLOB NOT NULL)")
            .unwrap();
        (writer, db)
    }

    #[test]
    fn after_the_threads_pass_the_writer_catches_up_and_the_wal_starts_over_mid_burst() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, db) = writer_on(dir.path());
        let wal_file = super::super::wal_path(&db);
        let checkpointer = Checkpointer::start(&db).expect("started");
        let write_mib = |n: usize| {
            for _ in 0..n {
                writer
                    .execute("INSERT INTO blobs (b) VALUES (zeroblob(1048576))", [])
                    .unwrap();
                checkpointer.after_commit(&writer, wal::pages_after_commit());
            }
        };
        write_mib(20);
        assert!(checkpointer.woken.get(), "a 20 MiB WAL wakes the thread");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !checkpointer.finished.load(Ordering::Acquire) {
            assert!(std::time::Instant::now() < deadline, "the pass finished");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // The commit after the pass catches up; the one after that starts the WAL over, so
        // a burst of 10 MiB more adds no length to the file and leaves few frames in it.
        write_mib(1);
        let wal_len = std::fs::metadata(&wal_file).unwrap().len();
        write_mib(10);
        assert!(!checkpointer.woken.get(), "caught up");
        let pages = wal::pages_after_commit();
        assert!(
            pages < CHECKPOINT_AT_PAGES,
            "{pages} pages in the WAL: it started over"
        );
        assert_eq!(std::fs::metadata(&wal_file).unwrap().len(), wal_len);
        checkpointer.stop();
        let n: i64 = writer
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 31, "the writer's data is intact");
    }
}
