//! When is each source due? Pure timing rules plus the loop that feeds due sources to ingest.

mod timing;

pub use timing::{backoff_delay, jitter_offset, next_due};
