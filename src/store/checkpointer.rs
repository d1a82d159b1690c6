//! Copies the WAL back into the database on a connection and thread of its own, so that a long
//! burst of writes (a first pass over thousands of feeds) does not stop the writer for it.
//!
//! SQLite lets a PASSIVE checkpoint run beside a writer: it copies the frames committed so far
//! while new commits keep appending to the WAL. Profiling a 2,400-feed first pass showed the
//! checkpoints inside the writer's commits at a tenth of the writer's time, on the one thread
//! every poll waits for. The writer's own automatic checkpoint stays as a backstop at a larger size.
//!
//! The WAL starts over only at the start of a write transaction that finds every frame copied,
//! and in a burst the writer's next transaction starts as soon as its last one commits: before
//! the thread, which copies only what was committed when it started, can have caught up. So the
//! WAL never started over during a first pass, and grew to 47.9 MB for a 23.5 MB database (the
//! 150-feed farm). Once the thread has copied everything up to where its pass began, the writer
//! copies what was committed since itself, between two transactions, when that is at most
//! [`CATCH_UP_MAX_PAGES`] (else it wakes the thread again); the next transaction then starts
//! the WAL over, and the file's pages are written again instead of new ones added. The final
//! WAL of a cold 150-feed pass is 25-33 MB since (see the README's Store section for time).
//!
//! When no CPU work is left but the writer still has polls queued (the end of a cold pass),
//! ingest asks for the copy to start early ([`super::Store::copy_wal_soon`]), at 1 MiB of WAL.

use std::cell::Cell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::wal;

/// WAL length, in pages, past which the writer asks for a checkpoint (16 MiB at 4 KiB pages).
const CHECKPOINT_AT_PAGES: c_int = 4_096;

/// WAL length past which the writer asks for a checkpoint once [`super::Store::copy_wal_soon`]
/// was called (1 MiB): less is not worth a pass and its two syncs. Ingest asks when no poll is
/// left fetching or being prepared: a core would idle while the writer works through the
/// polls queued for it, and the copy the store's close would do after them runs beside them.
const SOON_AT_PAGES: c_int = 256;

/// Most pages the writer copies itself after the thread's pass (4 MiB: a few milliseconds on
/// the thread every poll waits for). When more came in during the pass, the thread goes again.
const CATCH_UP_MAX_PAGES: i64 = 1_024;

/// [`Checkpointer::pass`] while the thread's pass is running, or none was asked for.
const PASS_RUNNING: i64 = i64::MIN;
/// [`Checkpointer::pass`] after a pass that could not copy everything it was to (a reader held
/// frames back, or the checkpoint failed).
const PASS_INCOMPLETE: i64 = -1;

/// The checkpoint thread, woken by the writer.
pub(super) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// How the thread's last pass ended: the WAL's length in frames when it began, all of
    /// them copied; [`PASS_INCOMPLETE`]; or [`PASS_RUNNING`].
    pass: Arc<AtomicI64>,
    /// The writer woke the thread and has not yet caught up after its pass.
    woken: Cell<bool>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to `db`. `None` when that fails; the writer's
    /// automatic checkpoint then bounds the WAL alone.
    pub(super) fn start(db: &Path) -> Option<Checkpointer> {
        let conn = Connection::open(super::sqlite_name(db))
            .and_then(|c| c.busy_timeout(super::BUSY_TIMEOUT).map(|()| c))
            .map_err(|e| tracing::warn!(error = %e, "checkpoint thread not started"))
            .ok()?;
        // One pending wake-up is enough: a checkpoint copies everything committed until then.
        let (wake, wakes) = sync_channel::<()>(1);
        let pass = Arc::new(AtomicI64::new(PASS_RUNNING));
        let thread_pass = Arc::clone(&pass);
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while wakes.recv().is_ok() {
                    let ended = match wal::checkpoint(&conn, "PASSIVE") {
                        Ok((false, log, copied)) if log == copied => log,
                        Ok(_) => PASS_INCOMPLETE,
                        Err(e) => {
                            tracing::debug!(error = %e, "background checkpoint skipped");
                            PASS_INCOMPLETE
                        }
                    };
                    thread_pass.store(ended, Ordering::Release);
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "checkpoint thread not started"))
            .ok()?;
        Some(Checkpointer {
            wake: Some(wake),
            thread: Some(thread),
            pass,
            woken: Cell::new(false),
        })
    }

    /// Called by the writer on its connection `writer` after a commit, with the WAL's length
    /// in pages: wakes the thread when the WAL has grown large, and once the thread has
    /// finished that pass, copies what was committed since (see the module docs).
    /// `copy_soon`: [`super::Store::copy_wal_soon`]'s flag, which lowers the size that wakes
    /// the thread to [`SOON_AT_PAGES`]; cleared once acted on.
    pub(super) fn after_commit(
        &self,
        writer: &Connection,
        wal_pages: c_int,
        copy_soon: &AtomicBool,
    ) {
        // The thread's pass left more than the writer copies itself.
        let mut go_again = false;
        if self.woken.get() {
            let ended = self.pass.swap(PASS_RUNNING, Ordering::AcqRel);
            if ended == PASS_RUNNING {
                return;
            }
            self.woken.set(false);
            // After a pass that could not copy everything, the thread goes again only at the
            // usual size: a reader holding frames back would otherwise have it go after every
            // commit.
            if ended != PASS_INCOMPLETE {
                let since = i64::from(wal_pages) - ended;
                if since < 0 {
                    // The WAL started over after the pass: nothing of it is left to copy.
                    return;
                }
                if since <= CATCH_UP_MAX_PAGES {
                    match wal::checkpoint(writer, "PASSIVE") {
                        Ok((false, log, copied)) if log == copied => {}
                        // A reader holds frames back: the WAL starts over after a later pass.
                        Ok((_, log, copied)) => {
                            tracing::debug!(log, copied, "checkpoint not caught up");
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "catching up the checkpoint skipped");
                        }
                    }
                    return;
                }
                // Too much for the writer to copy itself: the thread goes again, whatever the
                // WAL's length (a pass woken early began below the usual size).
                go_again = true;
            }
        }
        let threshold = if copy_soon.load(Ordering::Acquire) {
            SOON_AT_PAGES
        } else {
            CHECKPOINT_AT_PAGES
        };
        if (go_again || wal_pages > threshold)
            && let Some(wake) = &self.wake
        {
            // Disconnected: the thread is gone, and the writer's automatic checkpoint takes
            // over. (Full cannot happen: the writer wakes it again only after its pass.)
            if wake.try_send(()).is_ok() {
                self.woken.set(true);
                // An ask made since the load above is cleared too: this pass serves it.
                copy_soon.store(false, Ordering::Release);
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
    use super::*;

    #[test]
    fn a_large_wal_is_copied_into_the_database_by_the_thread_while_the_writer_stays_open() {
        let dir = tempfile::tempdir().unwrap();
        // The writer's hook checkpoints only past 64 MiB, so until someone else checkpoints,
        // everything below stays in the WAL.
        let (writer, db, checkpointer) = started_on(dir.path());
        let small = std::fs::metadata(&db).unwrap().len();
        assert!(wal::pages_after_commit() < CHECKPOINT_AT_PAGES);
        checkpointer.after_commit(&writer, wal::pages_after_commit(), &AtomicBool::new(false));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(
            std::fs::metadata(&db).unwrap().len(),
            small,
            "a small WAL is left alone"
        );

        write_mib(&writer, 20);
        let pages = wal::pages_after_commit();
        assert!(pages > CHECKPOINT_AT_PAGES, "{pages} pages in the WAL");
        assert!(
            std::fs::metadata(&db).unwrap().len() < 1 << 20,
            "all in the WAL so far"
        );
        checkpointer.after_commit(&writer, pages, &AtomicBool::new(false));
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

    #[test]
    fn once_asked_to_copy_soon_the_thread_is_woken_at_a_smaller_wal_and_the_ask_is_used_up() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, db, checkpointer) = started_on(dir.path());
        let soon = AtomicBool::new(false);
        write_mib(&writer, 2);
        let pages = wal::pages_after_commit();
        assert!(
            SOON_AT_PAGES < pages && pages < CHECKPOINT_AT_PAGES,
            "{pages} pages"
        );
        checkpointer.after_commit(&writer, pages, &soon);
        assert!(!checkpointer.woken.get(), "2 MiB waits for the usual size");

        soon.store(true, Ordering::Release);
        checkpointer.after_commit(&writer, pages, &soon);
        assert!(checkpointer.woken.get(), "woken once asked");
        assert!(!soon.load(Ordering::Acquire), "the ask is used up");
        wait_for_the_pass(&checkpointer);
        assert!(
            std::fs::metadata(&db).unwrap().len() >= 2 << 20,
            "the thread copied the WAL into the database"
        );
        checkpointer.stop();
    }

    #[test]
    fn an_ask_to_copy_soon_waits_for_a_wal_worth_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, _db, checkpointer) = started_on(dir.path());
        let soon = AtomicBool::new(true);
        writer
            .execute("INSERT INTO blobs (b) VALUES (zeroblob(4096))", [])
            .unwrap();
        let pages = wal::pages_after_commit();
        assert!(pages <= SOON_AT_PAGES, "{pages} pages");
        checkpointer.after_commit(&writer, pages, &soon);
        assert!(
            !checkpointer.woken.get(),
            "a few pages are not worth two syncs"
        );
        assert!(
            soon.load(Ordering::Acquire),
            "the ask stands for a later commit"
        );
        write_mib(&writer, 2);
        checkpointer.after_commit(&writer, wal::pages_after_commit(), &soon);
        assert!(checkpointer.woken.get());
        checkpointer.stop();
    }

    #[test]
    fn after_a_pass_woken_early_more_than_the_writer_copies_sends_the_thread_again() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, db, checkpointer) = started_on(dir.path());
        write_mib(&writer, 2);
        // A reader inside the WAL keeps it from starting over after the pass.
        let reader = reader_inside_the_wal(&db, 2);
        let copy_soon = AtomicBool::new(true);
        checkpointer.after_commit(&writer, wal::pages_after_commit(), &copy_soon);
        assert!(checkpointer.woken.get(), "woken early");
        wait_for_the_pass(&checkpointer);
        // 5 MiB since the pass began: more than the writer copies, yet far below 16 MiB.
        write_mib(&writer, 5);
        let pages = wal::pages_after_commit();
        assert!(pages < CHECKPOINT_AT_PAGES, "{pages} pages");
        checkpointer.after_commit(&writer, pages, &copy_soon);
        assert!(checkpointer.woken.get(), "the thread goes again");
        reader.execute_batch("COMMIT").unwrap();
        checkpointer.stop();
    }

    /// [`writer_on`] with a checkpoint thread started.
    fn started_on(dir: &Path) -> (Connection, std::path::PathBuf, Checkpointer) {
        let (writer, db) = writer_on(dir);
        let checkpointer = Checkpointer::start(&db).expect("started");
        (writer, db, checkpointer)
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

    /// A connection to `db` inside a read transaction that has seen its `rows` rows: until it
    /// commits, the WAL cannot start over.
    fn reader_inside_the_wal(db: &Path, rows: i64) -> Connection {
        let reader = Connection::open(db).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let seen: i64 = reader
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, rows);
        reader
    }

    /// Commits `n` rows of 1 MiB, one transaction each.
    fn write_mib(writer: &Connection, n: usize) {
        for _ in 0..n {
            writer
                .execute("INSERT INTO blobs (b) VALUES (zeroblob(1048576))", [])
                .unwrap();
        }
    }

    #[test]
    fn after_the_threads_pass_the_writer_catches_up_and_the_wal_starts_over_mid_burst() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, db) = writer_on(dir.path());
        let wal_file = super::super::wal_path(&db);
        let checkpointer = Checkpointer::start(&db).expect("started");
        // Commits as the store's writer does: each followed by `after_commit`.
        let commit_mib = |n: usize| {
            for _ in 0..n {
                write_mib(&writer, 1);
                checkpointer.after_commit(
                    &writer,
                    wal::pages_after_commit(),
                    &AtomicBool::new(false),
                );
            }
        };
        // Just past the size that wakes the thread, then nothing until its pass is over.
        let mut written = 0;
        while !checkpointer.woken.get() {
            commit_mib(1);
            written += 1;
        }
        wait_for_the_pass(&checkpointer);
        // The commit after the pass catches up; the one after that starts the WAL over, so
        // a burst of 10 MiB more adds no length to the file and leaves few frames in it.
        commit_mib(1);
        assert!(!checkpointer.woken.get(), "caught up");
        let wal_len = std::fs::metadata(&wal_file).unwrap().len();
        commit_mib(10);
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
        assert_eq!(n, written + 11, "the writer's data is intact");
    }

    #[test]
    fn more_than_the_writer_should_copy_after_a_pass_goes_back_to_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, db, checkpointer) = started_on(dir.path());
        write_mib(&writer, 17);
        // A reader inside the WAL: the pass can copy everything up to it, but the WAL cannot
        // start over while it reads, so what the writer commits next goes after the pass's
        // frames.
        let reader = reader_inside_the_wal(&db, 17);
        checkpointer.after_commit(&writer, wal::pages_after_commit(), &AtomicBool::new(false));
        assert!(checkpointer.woken.get());
        wait_for_the_pass(&checkpointer);
        // 8 MiB committed after the pass began: twice what the writer copies itself.
        write_mib(&writer, 8);
        checkpointer.after_commit(&writer, wal::pages_after_commit(), &AtomicBool::new(false));
        assert!(
            checkpointer.woken.get(),
            "the thread was woken again, the writer copied nothing itself"
        );
        reader.execute_batch("COMMIT").unwrap();
        // Had that pass begun before the reader let go, it could not copy everything and
        // the thread goes once more: within a few passes the writer catches up.
        for attempt in 0.. {
            wait_for_the_pass(&checkpointer);
            checkpointer.after_commit(&writer, wal::pages_after_commit(), &AtomicBool::new(false));
            if !checkpointer.woken.get() {
                break;
            }
            assert!(attempt < 5, "the writer caught up");
        }
        write_mib(&writer, 1);
        let pages = wal::pages_after_commit();
        assert!(
            pages < CHECKPOINT_AT_PAGES,
            "{pages} pages: the WAL started over"
        );
        checkpointer.stop();
    }

    /// Waits until the thread has finished the pass it was woken for (without taking the
    /// result, which the writer's next `after_commit` reads).
    fn wait_for_the_pass(checkpointer: &Checkpointer) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while checkpointer.pass.load(Ordering::Acquire) == PASS_RUNNING {
            assert!(std::time::Instant::now() < deadline, "the pass finished");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
