//! A small pool of threads for the CPU-bound stages (parse, normalize, sign, classify).
//!
//! Tokio's shared blocking pool would run them too, but on whichever of its many threads is free
//! (store reads use it as well), and the stages keep per-thread caches of stems and tokens: spread
//! over a dozen threads those caches stayed cold, and each held its own copy. Here the work
//! always lands on one of at most `threads` threads (one per core), whose caches stay warm.
//!
//! The pool is the blocking pool of a runtime of its own, so it comes with a queue and idle
//! exit: a thread idle for [`KEEP_ALIVE`] ends, and its caches with it, which keeps an idle
//! daemon small.

use std::time::Duration;

/// How long an idle worker waits for more work before it exits.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The CPU-work pool. Dropping it lets running jobs finish in the background.
pub(crate) struct CpuPool {
    runtime: Option<tokio::runtime::Runtime>,
}

impl CpuPool {
    /// A pool of at most `threads` threads (at least one).
    pub(crate) fn new(threads: usize) -> std::io::Result<CpuPool> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .thread_name("tradefeed-cpu")
            .max_blocking_threads(threads.max(1))
            .thread_keep_alive(KEEP_ALIVE)
            .build()?;
        Ok(CpuPool {
            runtime: Some(runtime),
        })
    }

    /// Runs `job` on a pool thread and waits for its result without blocking the caller's
    /// thread. Jobs queue when every thread is busy. A panic in `job` is returned as its
    /// message.
    pub(crate) async fn run<T, F>(&self, job: F) -> Result<T, String>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let runtime = self.runtime.as_ref().expect("the pool lives until dropped");
        runtime.spawn_blocking(job).await.map_err(|e| {
            if e.is_panic() {
                let panic = e.into_panic();
                panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a CPU job panicked".to_string())
            } else {
                "the CPU pool was shut down".to_string()
            }
        })
    }
}

impl Drop for CpuPool {
    fn drop(&mut self) {
        // A runtime may not be dropped inside async code (where the ingestor lives); this lets
        // its threads finish their current job and exit on their own.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_run_on_at_most_the_configured_threads_and_return_their_results() {
        let pool = Arc::new(CpuPool::new(2).unwrap());
        let mut handles = Vec::new();
        for i in 0..40u64 {
            let pool = Arc::clone(&pool);
            handles.push(tokio::spawn(async move {
                pool.run(move || {
                    std::thread::sleep(Duration::from_millis(2));
                    (i * i, std::thread::current().id())
                })
                .await
            }));
        }
        let mut threads = HashSet::new();
        for (i, h) in handles.into_iter().enumerate() {
            let (square, thread) = h.await.unwrap().unwrap();
            assert_eq!(square, (i * i) as u64);
            threads.insert(thread);
        }
        assert!(
            (1..=2).contains(&threads.len()),
            "ran on {} threads",
            threads.len()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_returns_its_message_and_the_pool_keeps_working() {
        let pool = CpuPool::new(1).unwrap();
        let err = pool
            .run(|| -> u32 { panic!("feed-rs fell over") })
            .await
            .unwrap_err();
        assert!(err.contains("feed-rs fell over"), "{err}");
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_pool_inside_async_code_does_not_panic() {
        let pool = CpuPool::new(2).unwrap();
        assert_eq!(pool.run(|| 1 + 1).await, Ok(2));
        drop(pool);
    }
}
