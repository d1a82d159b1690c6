//! SQLite storage: one writer thread fed by a bounded channel, reads on their own connections (WAL).
//!
//! The schema lives in the top-level `migrations/` folder and is embedded in the binary. Every
//! poll's writes are atomic (polls queued together share one transaction and are answered after
//! it commits; a failing poll rolls it back and the batch is written again with a savepoint per
//! poll), so a killed process loses no committed entry and never leaves half a poll behind.

mod checkpointer;
mod clean_close;
mod idle;
mod key_filter;
mod read;
mod wal;
mod write;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use include_dir::{Dir, include_dir};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::Migrations;
use tokio::sync::oneshot;

pub use idle::Idle;
pub use read::{
    Candidate, DueTimes, KnownEntries, MAX_SEARCH_WORDS, Outranked, PollBlocker, PollState,
    PollTarget, SourceState, StoryCursor, StoryQuery, StoryToScore, StoryView, search_words,
};
pub(crate) use write::FETCH_LOG_BATCH;
#[cfg(test)]
pub(crate) use write::FETCH_LOG_DELETE;
pub use write::{
    DueJitter, DueMover, EntryWrite, MovedSchedule, NearCopyOf, NearMatch, Placement, PollHook,
    PollOutcome, PollRecord, PollResult, QueuedPoll, RepresentativePick, TOMBSTONE_GRACE_FLOOR,
};

static MIGRATIONS_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/migrations");

/// How many read connections are kept open.
const READERS: usize = 4;
/// Write jobs queued at most before callers wait (back-pressure on ingest).
const WRITE_QUEUE: usize = 64;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not an SQLite database; it was not touched.
    #[error("{0}: not an SQLite database (refusing to touch it)")]
    NotSqlite(String),
    /// SQLite reports the file as damaged; it was not modified.
    #[error("{path}: database is corrupt: {detail}")]
    Corrupt {
        /// The file.
        path: String,
        /// What the integrity check said.
        detail: String,
    },
    /// SQLite could not open the file, or the `-shm` index beside a WAL database that even a
    /// reader needs (a read-only folder, a file not the user's to write).
    #[error(
        "{path}: cannot open the database ({detail}): SQLite needs to open it and to create {shm} beside it, even to read it; is the folder read-only or not yours to write?"
    )]
    CannotOpen {
        /// The file.
        path: String,
        /// What SQLite said.
        detail: String,
        /// The name of the WAL index file.
        shm: String,
    },
    /// Another tradefeed process holds the database.
    #[error("{0}: database is in use by another tradefeed process")]
    InUse(String),
    /// The database's schema is not one this tradefeed can use as it is: written by a newer
    /// release (refused, never changed), older and opened read-only (upgrading is a write), or
    /// a migration failed. The message names the file and both versions.
    #[error("{0}")]
    Migration(String),
    /// A filesystem error around the database.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An SQLite error (disk full, locked, constraint...).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store was shut down.
    #[error("the store is closed")]
    Closed,
    /// A search the full-text index cannot run (too many words, or text FTS5 cannot read):
    /// the asker's fault, not the database's.
    #[error("cannot search for that: {0}")]
    Search(String),
}

/// Work for the writer thread.
enum WriteJob {
    /// A poll to record; queued polls are written together (see [`Store::record_poll_with`]).
    Poll(Box<PollJob>),
    /// Anything else, run on its own.
    Other(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// A poll waiting for the writer, with its hook and where to send the answer.
struct PollJob {
    record: PollRecord,
    hook: Option<Box<dyn PollHook>>,
    reply: oneshot::Sender<Result<PollResult, StoreError>>,
}

/// Handle to the database. Cheap to clone; all clones share the writer thread and readers.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<tokio::sync::mpsc::Sender<WriteJob>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    /// One permit per read connection: reads wait here rather than each occupying a blocking
    /// thread (a burst of polls would otherwise start hundreds of threads). A read's permit
    /// goes with its job onto the blocking thread, so a read whose caller has gone still
    /// counts until it ends.
    read_permits: Arc<tokio::sync::Semaphore>,
    instance: String,
    /// Bumped whenever stories or scores change; output caches key on it. Shared with the
    /// writer thread, which bumps it when the search index catches up.
    version: Arc<AtomicU64>,
    /// Set by the writer after every job: stories may exist that the search index has not
    /// caught up with yet (see [`write::index_search_backlog`]). Cleared when it has.
    search_behind: Arc<AtomicBool>,
    /// Set by [`Store::copy_wal_soon`]; the writer wakes the checkpoint thread after its next
    /// commit that finds enough of the WAL to copy.
    copy_wal_soon: Arc<AtomicBool>,
    /// Run by the writer thread each time it goes idle (see [`Store::when_writer_idle`]).
    idle_tasks: IdleTasks,
    /// How long the writer has been on its current job (see [`Store::writer_busy_for`]).
    pulse: Arc<WriterPulse>,
    /// The `flock` on the database file itself (see [`Store::open`]). Declared after
    /// `readers`, so dropped after them: closing it while a connection is open would drop that
    /// connection's SQLite locks (any connection of this process to the file: in-process
    /// tests' own connections too). The writer thread holds a clone until its own have closed.
    /// Declared before `_lock`, so released first: a process starting in between finds the
    /// lock file free and the database still held, and is refused as "in use" for nothing.
    _db_lock: Option<Arc<File>>,
    /// Held for the store's lifetime: one daemon per database.
    _lock: Option<File>,
    /// Whether opening ran the whole-file integrity check (see [`clean_close`]).
    checked_at_open: bool,
    /// What opening made that was not there before (see [`Store::made_by_open`]).
    made: MadeByOpen,
    /// The database file as opened: its path (resolved) and its device and inode then (see
    /// [`Store::file_in_place`]).
    opened: (PathBuf, Option<(u64, u64)>),
    /// Whether a file no longer in place has been logged (once is enough).
    moved_reported: AtomicBool,
    /// Set by tests to make [`Store::pruned_among`] fail as a read can (an I/O error).
    #[cfg(test)]
    fail_pruned_among: AtomicBool,
}

impl Drop for Inner {
    /// A store dropped without [`Store::close`] (a start-up that failed half-way) still lets
    /// the writer finish its queue and fold the WAL, and waits for it: the writer thread holds
    /// the database's lock until it ends, and a new open of the same file right after the
    /// drop must find it free. After `close` there is nothing left to wait for.
    fn drop(&mut self) {
        let sender = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(sender);
        let handle = self
            .writer_thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Never on the writer thread itself (a task it runs holding the last handle). On a
        // worker of a multi-threaded runtime, the wait is announced to it, so that its other
        // tasks move to another worker meanwhile.
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
        {
            let multi_threaded = tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
            if multi_threaded {
                tokio::task::block_in_place(|| {
                    let _ = handle.join();
                });
            } else {
                let _ = handle.join();
            }
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Whether the opener needs to write (and so the exclusive lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The daemon or `fetch`: migrates, writes, takes the lock.
    ReadWrite,
    /// Inspection commands (`sources`, `story`): no lock, no migration, no writes.
    ReadOnly,
}

impl Store {
    /// Opens (creating if needed) the database, refusing non-SQLite or corrupt files untouched,
    /// takes the single-daemon lock, and applies pending migrations.
    pub fn open(path: &Path, access: Access) -> Result<Store, StoreError> {
        let display = path.display().to_string();
        check_header(path)?;
        let mut made = MadeByOpen::default();
        if access == Access::ReadWrite
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            made.folders = dir
                .ancestors()
                .take_while(|d| !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_err())
                .map(Path::to_path_buf)
                .collect();
        }
        if access == Access::ReadWrite
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // From here on, the file the path leads to: SQLite follows symlinks to it and keeps its
        // WAL beside it, so the lock and the clean-close stamp must sit there too. Named
        // through a symlink, a second process would otherwise take a lock of its own beside
        // the link and write the same database as a running daemon. (`display` keeps the path
        // as the operator wrote it, for messages.)
        let written = path;
        let resolved = resolved(path);
        let path = resolved.as_path();
        if access == Access::ReadWrite {
            made.files = [
                path.to_path_buf(),
                wal_path(path),
                beside(path, "-shm"),
                lock_path(path),
            ]
            .into_iter()
            .filter(|file| std::fs::symlink_metadata(file).is_err())
            .collect();
        }
        let mut lock = match access {
            Access::ReadWrite => {
                let lock_path = lock_path(path);
                Some(lock_exclusively(
                    &lock_path,
                    None,
                    &lock_path.display().to_string(),
                    &display,
                )?)
            }
            Access::ReadOnly => None,
        };
        // The lock file alone can be deleted (by an operator clearing "stale" locks, or a
        // cleanup job) while a daemon holds it; a second process would then make a new one,
        // lock it and write the same database. So the database file itself is locked too: an
        // `flock`, which the kernel keeps apart from the POSIX record locks SQLite takes on it.
        // The one hazard is POSIX's: closing any descriptor of a file drops every record lock
        // the process holds on it, SQLite's included. This descriptor is therefore closed only
        // once no connection is left: the writer thread holds it until its connections have
        // closed, the store until its readers have (see `Inner::_db_lock`).
        let db_lock = match access {
            // Created empty when new, which SQLite reads as an empty database, with SQLite's
            // own mode for the files it creates (before the umask).
            Access::ReadWrite => Some(Arc::new(lock_exclusively(
                path,
                Some(0o644),
                &display,
                &display,
            )?)),
            Access::ReadOnly => None,
        };

        let mut writer_conn = None;
        let mut checked_at_open = false;
        if let Some(lock) = lock.as_mut() {
            // Read before SQLite opens the file, wiped before anything can write to it.
            let clean = clean_close::take(lock, path).map_err(|source| StoreError::Io {
                path: lock_path(path).display().to_string(),
                source,
            })?;
            let mut conn = Connection::open(sqlite_name(path))?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // Before anything that could write (`configure` sets the journal mode).
            refuse_newer_schema(&conn, &display)?;
            configure(&conn)?;
            if clean {
                tracing::debug!(path = %path.display(), "closed cleanly and unchanged since: integrity check skipped");
            } else {
                check_integrity(&conn, &display)?;
                checked_at_open = true;
            }
            let migrations = Migrations::from_directory(&MIGRATIONS_DIR)
                .map_err(|e| StoreError::Migration(format!("{display}: migrating: {e}")))?;
            migrations.to_latest(&mut conn).map_err(|e| match e {
                rusqlite_migration::Error::RusqliteError { err, .. } => StoreError::Sqlite(err),
                other => StoreError::Migration(format!("{display}: migrating: {other}")),
            })?;
            write::rehash_story_keys(&mut conn)?;
            writer_conn = Some(conn);
        } else if !path.exists() {
            return Err(StoreError::Io {
                path: display,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no database yet (run `tradefeed fetch` or `tradefeed run` first)",
                ),
            });
        }

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open_reader(path).map_err(|e| match e {
                StoreError::Sqlite(e) => damaged_or(e, &display),
                other => other,
            })?);
        }
        if access == Access::ReadOnly {
            // Nothing migrates a read-only open: its queries need the schema they were
            // written for, or they fail with raw SQL errors ("no such column").
            refuse_newer_schema(&readers[0], &display)?;
            let (version, known) = (schema_version(&readers[0], &display)?, known_schema());
            if version < known {
                return Err(StoreError::Migration(format!(
                    "{display}: database schema version {version} is older than this \
                     tradefeed's ({known}); start `tradefeed run` or run `tradefeed fetch` \
                     once to upgrade it (read-only commands never change the file)"
                )));
            }
        }
        let instance: String = readers[0]
            .query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| {
                r.get(0)
            })
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::NotADatabase =>
                {
                    StoreError::NotSqlite(display.clone())
                }
                other => StoreError::Sqlite(other),
            })?;

        let version = Arc::new(AtomicU64::new(0));
        let search_behind = Arc::new(AtomicBool::new(writer_conn.is_some()));
        let idle_tasks = IdleTasks::default();
        let copy_wal_soon = Arc::new(AtomicBool::new(false));
        let pulse = Arc::new(WriterPulse::new());
        let (writer, writer_thread) = match writer_conn {
            Some(conn) => {
                let (tx, rx) = tokio::sync::mpsc::channel::<WriteJob>(WRITE_QUEUE);
                let version = Arc::clone(&version);
                let search_behind = Arc::clone(&search_behind);
                let copy_wal_soon = Arc::clone(&copy_wal_soon);
                let idle_tasks = idle_tasks.clone();
                let pulse = Arc::clone(&pulse);
                let db_lock = db_lock.clone();
                let stamp = clean_close::Stamp {
                    db: path.to_path_buf(),
                    lock: lock_path(path),
                };
                let handle = std::thread::Builder::new()
                    .name("store-writer".into())
                    .spawn(move || {
                        let shared = WriterShared {
                            version: &version,
                            search_behind: &search_behind,
                            copy_wal_soon: &copy_wal_soon,
                            idle_tasks: &idle_tasks,
                            pulse: &pulse,
                        };
                        writer_loop(conn, rx, shared, &stamp);
                        // Only now, with the writer's connections closed.
                        drop(db_lock);
                    })
                    .map_err(|source| StoreError::Io {
                        path: "store-writer thread".into(),
                        source,
                    })?;
                (Some(tx), Some(handle))
            }
            None => (None, None),
        };

        Ok(Store {
            inner: Arc::new(Inner {
                // As the operator wrote it: what the log shows, and what a reload compares the
                // config's path with (the resolved one would differ for any relative path or
                // symlinked folder, and each reload would warn of a change that is none).
                path: written.to_path_buf(),
                writer: Mutex::new(writer),
                writer_thread: Mutex::new(writer_thread),
                readers: Mutex::new(readers),
                read_permits: Arc::new(tokio::sync::Semaphore::new(READERS)),
                instance,
                version,
                search_behind,
                copy_wal_soon,
                idle_tasks,
                pulse,
                _db_lock: db_lock,
                _lock: lock,
                checked_at_open,
                made,
                opened: (path.to_path_buf(), file_identity(path)),
                moved_reported: AtomicBool::new(false),
                #[cfg(test)]
                fail_pruned_among: AtomicBool::new(false),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether the file this store opened is still the database at its path. Deleted, or
    /// replaced (a backup copied or moved over it), it is not: what the store writes from then
    /// on goes into a file no later start opens, and is lost at the next. Logged as an error
    /// the first time it is found so; `/readyz` then answers 503.
    pub fn file_in_place(&self) -> bool {
        let (path, Some(opened)) = &self.inner.opened else {
            return true;
        };
        let in_place = file_identity(path) == Some(*opened);
        if !in_place && !self.inner.moved_reported.swap(true, Ordering::Relaxed) {
            tracing::error!(
                path = %path.display(),
                "the database file was deleted or replaced while tradefeed runs: what it \
                 stores from now on is lost at the next start; restart it"
            );
        }
        in_place
    }

    /// What opening made that was not there before: the database file where the path leads
    /// (through symbolic links, which are the operator's and never listed), its `-wal`,
    /// `-shm` and lock file, and the folders made for it. For a start refused after all (the
    /// topic profiles load beside the open), to leave nothing behind; see
    /// [`MadeByOpen::remove`].
    pub fn made_by_open(&self) -> MadeByOpen {
        self.inner.made.clone()
    }

    /// How long the writer thread has been on the job it is running, `None` when it waits for
    /// one (or there is none: a read-only store). Reads go on working while the writer is
    /// stuck (a lock another program holds, a disk that stopped answering), so readiness asks
    /// this too: a daemon that can store no poll is not ready.
    pub fn writer_busy_for(&self) -> Option<std::time::Duration> {
        self.inner.pulse.busy_for()
    }

    /// A random namespace fixed when the database was created; part of every story's feed id.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// A number that changes whenever stories, entries or scores change (for output caches).
    pub fn data_version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    fn bump_version(&self) {
        self.inner.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Runs `job` on the writer thread and waits for its result.
    async fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(WriteJob::Other(Box::new(move |conn| {
            let _ = tx.send(job(conn));
        })))
        .await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Asks (`true`) for the WAL to be copied into the database soon, by the checkpoint thread,
    /// once it holds 1 MiB rather than 16; `false` withdraws the ask. Ingest asks while no
    /// poll is being fetched or prepared: the writer may still have polls queued, alone on one
    /// core, and the other core can copy meanwhile what the store's close would otherwise copy
    /// and sync after the writer is done (34-48 ms of a cold 150-feed `fetch`'s wall time,
    /// strace). The writer clears the ask when it acts on it, and when it goes idle (its idle
    /// fold copies everything anyway).
    pub fn copy_wal_soon(&self, wanted: bool) {
        self.inner.copy_wal_soon.store(wanted, Ordering::Release);
    }

    /// Whether [`Store::copy_wal_soon`] was called and the writer has not acted on it yet.
    #[cfg(test)]
    pub(crate) fn copy_wal_soon_asked(&self) -> bool {
        self.inner.copy_wal_soon.load(Ordering::Acquire)
    }

    /// Occupies the writer thread with a job that says when it has begun (`started`) and ends
    /// when `release` is sent to or dropped: a writer held as a stuck one would be.
    #[cfg(test)]
    pub(crate) async fn hold_writer(
        &self,
        started: oneshot::Sender<()>,
        release: std::sync::mpsc::Receiver<()>,
    ) -> Result<(), StoreError> {
        self.write(move |_| {
            let _ = started.send(());
            let _ = release.recv();
            Ok(())
        })
        .await
    }

    /// Makes [`Store::pruned_among`] fail (`true`) as a read can, or work again.
    #[cfg(test)]
    pub(crate) fn fail_pruned_among(&self, fail: bool) {
        self.inner.fail_pruned_among.store(fail, Ordering::Release);
    }

    /// Queues a job for the writer thread.
    async fn submit(&self, job: WriteJob) -> Result<(), StoreError> {
        let sender = self
            .inner
            .writer
            .lock()
            .expect("writer lock poisoned")
            .clone()
            .ok_or(StoreError::Closed)?;
        // The channel is bounded: when the writer is busy this waits without blocking a thread.
        sender.send(job).await.map_err(|_| StoreError::Closed)
    }

    /// Brings the search index up to date with every committed story, if it is behind (the
    /// writer otherwise indexes new stories only when idle). A read-only store cannot index
    /// and searches what is indexed.
    pub(crate) async fn catch_up_search(&self) -> Result<(), StoreError> {
        if !self.inner.search_behind.load(Ordering::Acquire) || !self.is_writable() {
            return Ok(());
        }
        let behind = Arc::clone(&self.inner.search_behind);
        let indexed = self
            .write(move |conn| {
                let indexed = write::index_search_backlog(conn, usize::MAX)?;
                behind.store(false, Ordering::Release);
                Ok(indexed)
            })
            .await?;
        if indexed > 0 {
            self.bump_version();
        }
        Ok(())
    }

    /// Has the writer thread run `task` each time it goes idle, after it has handed back its
    /// page cache: work that runs on the writer (a poll's hook) can hand back what it keeps
    /// per thread, as a worker thread's caches go when the thread ends. Not run by a
    /// read-only store, which has no writer.
    pub fn when_writer_idle(&self, task: impl Fn() + Send + Sync + 'static) {
        self.inner
            .idle_tasks
            .0
            .lock()
            .expect("idle task lock poisoned")
            .push(Arc::new(task));
    }

    fn is_writable(&self) -> bool {
        self.inner
            .writer
            .lock()
            .expect("writer lock poisoned")
            .is_some()
    }

    /// Runs `job` on a read connection in the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = Arc::clone(&self.inner.read_permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = inner.readers.lock().expect("reader lock poisoned").pop();
            let conn = match conn {
                Some(c) => c,
                None => open_reader(&inner.path)?,
            };
            let result = job(&conn);
            let mut pool = inner.readers.lock().expect("reader lock poisoned");
            if pool.len() < READERS {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// Finishes queued writes, checkpoints the WAL and stops the writer thread, without
    /// blocking the async runtime (dropping the last handle of a store not closed does the
    /// same, blocking the thread that drops it).
    pub async fn close(&self) {
        let sender = self
            .inner
            .writer
            .lock()
            .expect("writer lock poisoned")
            .take();
        drop(sender);
        let handle = self
            .inner
            .writer_thread
            .lock()
            .expect("writer thread lock poisoned")
            .take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// Whether opening ran `PRAGMA quick_check` over the whole file: false only for a writer
    /// that found the database exactly as the previous writer's clean close left it (and for
    /// read-only opens, which never check).
    pub fn integrity_checked_at_open(&self) -> bool {
        self.inner.checked_at_open
    }

    /// `PRAGMA integrity_check` result (`ok` when healthy).
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        self.read(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))
            .await
    }
}

/// Tasks the writer thread runs when it goes idle ([`Store::when_writer_idle`]).
#[derive(Clone, Default)]
struct IdleTasks(Arc<Mutex<Vec<IdleTask>>>);

type IdleTask = Arc<dyn Fn() + Send + Sync>;

impl IdleTasks {
    fn run(&self) {
        // Called outside the lock, so a task may register another.
        let tasks = self.0.lock().expect("idle task lock poisoned").clone();
        for task in tasks {
            task();
        }
    }
}

/// The writer's page cache, KiB (see `configure`).
const WRITER_CACHE_KIB: i64 = 8 * 1024;
/// How long a connection waits for a lock another one holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Polls written in one transaction at most: bounds how long one commit keeps the others
/// waiting for their answer.
const POLL_BATCH: usize = 32;

/// Stories indexed for search per writer transaction when catching up in idle time: small
/// enough (a few milliseconds) that a poll arriving meanwhile is barely delayed.
const SEARCH_CHUNK: usize = 32;
/// Quiet spells in a row in which the writer retries an idle fold that a reader kept from
/// finishing (then it waits for the next job): 20 × 250 ms.
const IDLE_FOLD_ATTEMPTS: u32 = 20;
/// How long the write queue must stay empty before the writer catches up deferred work
/// (search indexing, checkpoints): during a burst of polls it waits, so that work never slows
/// ingest down.
const QUIET: std::time::Duration = std::time::Duration::from_millis(250);

/// The quiet spell before the writer indexes for search after `failures` failed runs in a
/// row: [`QUIET`], doubled per failure, at most a minute.
fn index_retry_wait(failures: u32) -> std::time::Duration {
    QUIET
        .saturating_mul(1 << failures.min(16))
        .min(std::time::Duration::from_secs(60))
}

/// When the writer thread began its current job, in milliseconds since `epoch` plus one; 0
/// while it waits for one.
struct WriterPulse {
    epoch: std::time::Instant,
    busy_since_ms: AtomicU64,
}

impl WriterPulse {
    fn new() -> WriterPulse {
        WriterPulse {
            epoch: std::time::Instant::now(),
            busy_since_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn begin(&self) {
        self.busy_since_ms.store(self.now_ms(), Ordering::Release);
    }

    fn end(&self) {
        self.busy_since_ms.store(0, Ordering::Release);
    }

    fn busy_for(&self) -> Option<std::time::Duration> {
        match self.busy_since_ms.load(Ordering::Acquire) {
            0 => None,
            since => Some(std::time::Duration::from_millis(
                self.now_ms().saturating_sub(since),
            )),
        }
    }
}

/// What the writer thread shares with the [`Store`] (see [`Inner`]'s fields of these names).
struct WriterShared<'a> {
    version: &'a AtomicU64,
    search_behind: &'a AtomicBool,
    copy_wal_soon: &'a AtomicBool,
    idle_tasks: &'a IdleTasks,
    pulse: &'a WriterPulse,
}

/// The writer thread: runs queued jobs in order. Once the queue has been empty for
/// [`QUIET`], it catches up the work kept off the ingest path: it indexes stories for
/// search one chunk at a time (looking at the queue between chunks), then checkpoints the WAL.
fn writer_loop(
    mut conn: Connection,
    mut jobs: tokio::sync::mpsc::Receiver<WriteJob>,
    shared: WriterShared<'_>,
    stamp: &clean_close::Stamp,
) {
    let WriterShared {
        version,
        search_behind,
        copy_wal_soon,
        idle_tasks,
        pulse,
    } = shared;
    // A clock for waiting on the queue with a timeout; this thread runs nothing else on it.
    let clock = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(clock) => clock,
        Err(e) => {
            tracing::error!(error = %e, "store writer could not start");
            return;
        }
    };
    let checkpointer = checkpointer::Checkpointer::start(&stamp.db);
    let mut last_job = std::time::Instant::now();
    // Commits since the last checkpoint: the WAL is folded into the database when idle.
    let mut wal_dirty = false;
    // The stored story keys, as a Bloom filter: most lookups of a new entry's keys find
    // nothing, and the filter says so from memory (see `key_filter`). Loaded at the first
    // write of entries; kept while the writer lives (10 to 20 bits per stored key).
    let mut key_filter = None;
    // Idle folds that found a reader in the way since the last one that got done.
    let mut idle_folds_tried = 0;
    // A job taken off the queue while gathering a batch of polls, to run next.
    let mut held: Option<WriteJob> = None;
    // Search indexing runs that failed in a row (a full disk, another program holding the
    // write lock), and when the next may be tried: each failure doubles the wait, from 250 ms
    // up to a minute, counted from the failure (jobs meanwhile only add their quiet spell),
    // and only the 1st, 2nd, 4th, 8th… is logged. Retried every 250 ms, a full disk logged
    // four warnings a second.
    let mut index_failures: u32 = 0;
    let mut index_retry_at: Option<std::time::Instant> = None;
    loop {
        let behind = search_behind.load(Ordering::Acquire);
        if !behind && index_failures > 0 {
            // A search's catch-up (see `Store::catch_up_search`) got the index up to date.
            tracing::info!(failures = index_failures, "search indexing resumed");
            (index_failures, index_retry_at) = (0, None);
        }
        let next = if let Some(job) = held.take() {
            Ok(Some(job))
        } else if behind || wal_dirty {
            let mut quiet_left = QUIET.saturating_sub(last_job.elapsed());
            // While a failed indexing waits for its retry, a WAL to fold is done first (on a
            // full disk the fold may be what frees space), then the retry is waited for.
            if behind
                && !wal_dirty
                && let Some(at) = index_retry_at
            {
                quiet_left =
                    quiet_left.max(at.saturating_duration_since(std::time::Instant::now()));
            }
            // The timer must be made inside the runtime, hence the async block.
            clock.block_on(async { tokio::time::timeout(quiet_left, jobs.recv()).await })
        } else {
            Ok(clock.block_on(jobs.recv()))
        };
        pulse.begin();
        let job = match next {
            Ok(Some(job)) => job,
            Ok(None) => break,
            Err(_quiet)
                if behind && index_retry_at.is_none_or(|at| std::time::Instant::now() >= at) =>
            {
                match write::index_search_backlog(&mut conn, SEARCH_CHUNK) {
                    Ok(indexed) => {
                        if index_failures > 0 {
                            tracing::info!(failures = index_failures, "search indexing resumed");
                            (index_failures, index_retry_at) = (0, None);
                        }
                        if indexed > 0 {
                            // Searches in cached feeds must see the newly indexed stories.
                            version.fetch_add(1, Ordering::AcqRel);
                        }
                        if indexed < SEARCH_CHUNK {
                            search_behind.store(false, Ordering::Release);
                        }
                    }
                    Err(e) => {
                        // E.g. another program holds the write lock past the busy timeout:
                        // try again after another quiet spell. The index stays marked behind,
                        // so a search still catches up first.
                        index_failures = index_failures.saturating_add(1);
                        let wait = index_retry_wait(index_failures);
                        if index_failures.is_power_of_two() {
                            tracing::warn!(
                                error = %e,
                                failures = index_failures,
                                retry_in_ms = wait.as_millis() as u64,
                                "search indexing deferred"
                            );
                        }
                        index_retry_at = Some(std::time::Instant::now() + wait);
                    }
                }
                wal_dirty = true;
                pulse.end();
                continue;
            }
            Err(_quiet) => {
                // Never waits for readers; what it cannot do now is tried again after another
                // quiet spell, a few times, then at the next job's. Then hand the page cache
                // back: an idle daemon should be small.
                let folded = wal::fold_when_idle(&conn, &wal_path(&stamp.db));
                copy_wal_soon.store(false, Ordering::Release);
                let _ = conn.execute_batch("PRAGMA shrink_memory");
                idle_tasks.run();
                if folded || idle_folds_tried >= IDLE_FOLD_ATTEMPTS {
                    wal_dirty = false;
                    idle_folds_tried = 0;
                } else {
                    idle_folds_tried += 1;
                    last_job = std::time::Instant::now();
                }
                pulse.end();
                continue;
            }
        };
        // Set before the job runs, so a search that starts after the job's commit (whose
        // caller is told inside the job) always sees it and catches up first.
        search_behind.store(true, Ordering::Release);
        match job {
            WriteJob::Other(job) => job(&mut conn),
            WriteJob::Poll(first) => {
                // Group commit: every poll already queued joins this transaction. Each commit
                // rewrites the pages it touched (story keys land all over their b-tree), so
                // one commit for several polls writes a fraction of the WAL that one each did.
                let mut batch = vec![*first];
                while batch.len() < POLL_BATCH {
                    match jobs.try_recv() {
                        Ok(WriteJob::Poll(poll)) => batch.push(*poll),
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                write::record_polls(&mut conn, batch, &mut key_filter, version);
            }
        }
        if let Some(checkpointer) = &checkpointer {
            checkpointer.after_commit(&conn, wal::pages_after_commit(), copy_wal_soon);
        }
        wal_dirty = true;
        idle_folds_tried = 0;
        last_job = std::time::Instant::now();
        pulse.end();
    }
    if let Some(checkpointer) = checkpointer {
        checkpointer.stop();
    }
    // Fold the WAL back so the file is complete on its own after shutdown. Stories not yet
    // indexed for search stay queued by the watermark; the next start indexes them.
    if wal::fold_at_close(&conn) {
        stamp.record();
    }
    // Begun when the closed queue was found.
    pulse.end();
}

/// A read connection. Its page cache is kept small (1 MiB rather than SQLite's 2 MiB): four
/// of them live as long as the daemon, and the OS page cache holds the file anyway.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        sqlite_name(path),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "cache_size", -1024)?;
    Ok(conn)
}

/// `path` as SQLite must be given it to open exactly that file. The bundled SQLite reads a
/// name that starts with `file:` as a URI (`file:data.db?mode=memory` is an in-memory
/// database, and the folder of `file:data.db` is not the folder its lock file goes in): a
/// relative one (`TRADEFEED_DB` is not resolved against the config's folder) gets `./`.
fn sqlite_name(path: &Path) -> std::borrow::Cow<'_, Path> {
    if path.as_os_str().as_encoded_bytes().starts_with(b"file:") {
        std::borrow::Cow::Owned(Path::new(".").join(path))
    } else {
        std::borrow::Cow::Borrowed(path)
    }
}

/// What [`Store::open`] made that was not there before (see [`Store::made_by_open`]).
#[derive(Debug, Clone, Default)]
pub struct MadeByOpen {
    /// Files, at the path the database resolves to.
    files: Vec<PathBuf>,
    /// Folders made for the path as written, innermost first.
    folders: Vec<PathBuf>,
}

impl MadeByOpen {
    /// Whether the open made the database file (it did not exist before), `path` being the
    /// path it was opened at.
    pub fn made_the_database(&self, path: &Path) -> bool {
        let resolved = resolved(path);
        self.files.contains(&resolved)
    }

    /// Removes them, best effort, once the store is closed: a file something else has put in
    /// a folder since keeps that folder.
    pub fn remove(self) {
        for file in self.files {
            let _ = std::fs::remove_file(file);
        }
        for folder in self.folders {
            let _ = std::fs::remove_dir(folder);
        }
    }
}

/// The device and inode of the file at `path`, if there is one.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The file named as the database with `suffix` added, beside it: SQLite's `-wal` and
/// `-shm`, the lock file.
fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    db.with_file_name(name)
}

/// The WAL file SQLite keeps beside the database.
fn wal_path(db: &Path) -> PathBuf {
    beside(db, "-wal")
}

/// The database file `path` leads to: symlinks followed (a dangling one to the file it names,
/// which SQLite would create), `.` and `..` resolved; `path` as it is when its folder cannot be
/// read. Two paths to one database give one result, so one lock file.
fn resolved(path: &Path) -> PathBuf {
    // A chain of symlinks longer than this is a loop; SQLite gives up on it too.
    const MAX_LINKS: usize = 40;
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        if let Ok(real) = std::fs::canonicalize(&current) {
            return real;
        }
        // Not there (yet): a dangling symlink is followed by hand; anything else is a file to
        // be created, named in its folder's real place.
        match std::fs::read_link(&current) {
            Ok(target) => {
                let dir = current.parent().unwrap_or(Path::new(""));
                current = dir.join(target);
            }
            Err(_) => {
                let dir = match current.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir,
                    _ => Path::new("."),
                };
                return match (std::fs::canonicalize(dir), current.file_name()) {
                    (Ok(dir), Some(name)) => dir.join(name),
                    _ => path.to_path_buf(),
                };
            }
        }
    }
    path.to_path_buf()
}

fn lock_path(db: &Path) -> PathBuf {
    beside(db, ".lock")
}

/// Whether another process (a running daemon, or `fetch`) has the database at `path` open
/// for writing: the writer's `flock` on the file says so. False when there is no such file.
/// For messages only (a second `run` whose port the first holds): it opens and closes the
/// file, which must not happen while this process has SQLite connections to it.
pub fn held_by_another_process(path: &Path) -> bool {
    File::open(resolved(path))
        .is_ok_and(|file| matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

/// Opens `path` (created when missing, with `mode` if given) and takes an exclusive `flock`
/// on it, or says the database (`display`) is in use; I/O errors name `shown`. For the lock
/// file and for the database file itself (see [`Store::open`] for why both, and why the
/// latter's descriptor must outlive every connection).
fn lock_exclusively(
    path: &Path,
    mode: Option<u32>,
    shown: &str,
    display: &str,
) -> Result<File, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io_error = |source| StoreError::Io {
        path: shown.to_owned(),
        source,
    };
    let mut options = File::options();
    options.create(true).truncate(false).read(true).write(true);
    if let Some(mode) = mode {
        options.mode(mode);
    }
    let file = options.open(path).map_err(io_error)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse(display.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(io_error(source)),
    }
}

/// Refuses a file that exists, is not empty and does not start with SQLite's magic header,
/// before SQLite could touch it.
fn check_header(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.display().to_string(),
                source,
            });
        }
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
    }
    if read == 0 || &header[..read] == b"SQLite format 3\0" {
        Ok(())
    } else {
        Err(StoreError::NotSqlite(path.display().to_string()))
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    // A poll runs about twenty distinct statements; the default cache (16) would evict and
    // re-prepare some of them for every entry.
    conn.set_prepared_statement_cache_capacity(64);
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // The writer folds the WAL itself before it closes (`wal::fold_at_close`). Without this,
    // whichever connection closes last checkpoints again and deletes the WAL, which frees
    // its blocks: the wait the fold avoids.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    // NORMAL is durable across process crashes in WAL mode (only an OS crash can lose the last
    // transactions); FULL would fsync every poll for little gain.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // The schema's foreign keys are kept by the writer's own code, not checked row by row:
    // each check is one more B-tree lookup per inserted entry, key and score (2.1% of a cold
    // pass's instructions), and every row's parent is one the same transaction just wrote or
    // read (re-scoring, which chose its stories on a reader connection, checks in its own
    // transaction that each still exists). The one delete of parents, `prune`, deletes their
    // dependents itself (the schema's ON DELETE CASCADE needs the checks on), and tests run
    // `PRAGMA foreign_key_check` after ingesting, pruning and re-scoring.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Checkpoints copy the WAL into the database file: a thread of their own does it during a
    // burst, the writer when idle (see `writer_loop`). The hook sees every commit's WAL length
    // and keeps SQLite's automatic checkpoint only as a backstop at a larger size; the WAL
    // file is never truncated by a commit (see `wal`).
    wal::watch(conn);
    // Polls queued together commit as one transaction; after a failing poll, the batch is
    // written again with a savepoint per poll. A savepoint keeps the original of every page
    // it changes in a sub-journal, a temporary file by default: in memory that is a third
    // fewer writes. And a batch dirties more pages than
    // SQLite's default 2 MiB cache holds; spilling them mid-transaction wrote many pages to the
    // WAL twice. The cache is handed back when the writer goes idle (`shrink_memory`).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    Ok(())
}

/// The schema version this tradefeed migrates to: one per folder in `migrations/`.
fn known_schema() -> i64 {
    i64::try_from(MIGRATIONS_DIR.dirs().count()).unwrap_or(i64::MAX)
}

/// The schema version recorded in the file (`user_version`, as rusqlite_migration keeps it).
fn schema_version(conn: &Connection, path: &str) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| damaged_or(e, path))
}

/// What an error reading a file SQLite cannot make sense of says: not a database, corrupt, or
/// another SQLite error.
fn damaged_or(e: rusqlite::Error, path: &str) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
            StoreError::NotSqlite(path.to_string())
        }
        rusqlite::Error::SqliteFailure(f, msg)
            if f.code == rusqlite::ErrorCode::DatabaseCorrupt =>
        {
            StoreError::Corrupt {
                path: path.to_string(),
                detail: msg.unwrap_or_else(|| f.to_string()),
            }
        }
        rusqlite::Error::SqliteFailure(f, msg) if f.code == rusqlite::ErrorCode::CannotOpen => {
            let shm = Path::new(path).file_name().map_or_else(
                || "its -shm file".to_string(),
                |n| format!("{}-shm", n.to_string_lossy()),
            );
            StoreError::CannotOpen {
                path: path.to_string(),
                detail: msg.unwrap_or_else(|| f.to_string()),
                shm,
            }
        }
        other => StoreError::Sqlite(other),
    }
}

/// Refuses a database written by a newer release, which this one cannot read correctly nor
/// migrate back; it is left as it is.
fn refuse_newer_schema(conn: &Connection, path: &str) -> Result<(), StoreError> {
    let (version, known) = (schema_version(conn, path)?, known_schema());
    if version > known {
        return Err(StoreError::Migration(format!(
            "{path}: database schema version {version} is newer than this tradefeed knows \
             ({known}): it was written by a newer release; run that release (the file was \
             left as it is)"
        )));
    }
    Ok(())
}

fn check_integrity(conn: &Connection, path: &str) -> Result<(), StoreError> {
    let detail: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| damaged_or(e, path))?;
    if detail == "ok" {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.to_string(),
            detail,
        })
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn secs(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp()
}

/// The UTC time of Unix seconds (clamped to the epoch when out of range).
pub(crate) fn time(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

#[cfg(test)]
mod writer_pulse_tests {
    use super::*;

    /// The writer says how long it has been on a job, so readiness can tell a stuck writer
    /// from one that is working; once the job ends it is no longer busy with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_says_how_long_it_has_been_on_its_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), Access::ReadWrite).unwrap();
        let (started_tx, started_rx) = oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let job = tokio::spawn({
            let store = store.clone();
            async move { store.hold_writer(started_tx, release_rx).await }
        });
        started_rx.await.unwrap();
        let held = std::time::Duration::from_millis(300);
        tokio::time::sleep(held).await;
        let busy = store.writer_busy_for().expect("busy with the held job");
        assert!(busy >= held, "busy for {busy:?}");

        release_tx.send(()).unwrap();
        job.await.unwrap().unwrap();
        // The answer is sent from inside the job: the writer is done with it a moment later,
        // and then idle (its idle fold, a quarter of a second on, is short).
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Some(still) = store.writer_busy_for() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "still busy for {still:?} after the job ended"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        store.close().await;
        assert_eq!(
            Store::open(&dir.path().join("t.db"), Access::ReadOnly)
                .unwrap()
                .writer_busy_for(),
            None,
            "a store without a writer is never busy"
        );
    }
}

#[cfg(test)]
mod read_permit_tests {
    use super::*;

    /// A read whose caller went away (an HTTP client that hung up) keeps its read permit
    /// until its job on the blocking thread ends, so reads never outnumber the connections.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_whose_caller_is_gone_holds_its_permit_until_its_job_ends() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), Access::ReadWrite).unwrap();
        let (started_tx, started_rx) = oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (ended_tx, ended_rx) = oneshot::channel();
        let read = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .read(move |_| {
                        let _ = started_tx.send(());
                        let _ = release_rx.recv();
                        let _ = ended_tx.send(());
                        Ok(())
                    })
                    .await
            }
        });
        started_rx.await.unwrap();
        read.abort();
        assert!(read.await.unwrap_err().is_cancelled());
        let permits = || store.inner.read_permits.available_permits();
        assert_eq!(permits(), READERS - 1, "the running job keeps its permit");

        release_tx.send(()).unwrap();
        ended_rx.await.unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while permits() < READERS {
            assert!(tokio::time::Instant::now() < deadline, "never given back");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        store.close().await;
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    /// Every way of naming one database file leads to one path, so one lock file: through a
    /// symlink to the file, to its folder, with `.` and `..`, and through a dangling symlink
    /// to the file SQLite would create there.
    #[test]
    fn every_name_of_one_database_resolves_to_one_path() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(real_dir.join("data")).unwrap();
        let db = real_dir.join("data/t.db");

        // Not there yet: the folder resolved, the name kept.
        std::os::unix::fs::symlink(real_dir.join("data"), real_dir.join("via")).unwrap();
        assert_eq!(resolved(&real_dir.join("via/t.db")), db);
        // A dangling symlink, relative to its own folder, names the file SQLite would create.
        std::os::unix::fs::symlink("data/t.db", real_dir.join("link.db")).unwrap();
        assert_eq!(resolved(&real_dir.join("link.db")), db);

        std::fs::write(&db, b"").unwrap();
        for name in ["data/t.db", "via/t.db", "link.db", "data/../via/./t.db"] {
            assert_eq!(resolved(&real_dir.join(name)), db, "{name}");
        }
        // A loop of symlinks is left as it was named (SQLite then refuses to open it).
        std::os::unix::fs::symlink("loop-b", real_dir.join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", real_dir.join("loop-b")).unwrap();
        assert_eq!(resolved(&real_dir.join("loop-a")), real_dir.join("loop-a"));
    }
}

#[cfg(test)]
mod index_retry_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn failed_indexing_is_tried_again_after_a_doubling_wait_of_at_most_a_minute() {
        let waits: Vec<Duration> = [0, 1, 2, 7, 8, 16, u32::MAX]
            .into_iter()
            .map(index_retry_wait)
            .collect();
        assert_eq!(
            waits,
            [250, 500, 1_000, 32_000, 60_000, 60_000, 60_000].map(Duration::from_millis)
        );
    }
}
