//! When is each source due? Pure timing rules plus the loop that feeds due sources to ingest.

mod run;
mod timing;

pub use run::{Job, rejitter_due_times, run, settle_due_times};
pub use timing::{
    Timing, backoff_delay, failure_due, jitter_offset, next_due, rejittered_due, rejittered_due_of,
    saturating_add, saturating_add_std, settled_due_times,
};
