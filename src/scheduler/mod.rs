//! When is each source due? Pure timing rules plus the loop that feeds due sources to ingest.

mod run;
mod timing;

pub use run::{Job, rejitter_due_times, run, settle_due_times};
pub use timing::{
    Timing, backoff_delay, due_under_jitter, failure_due, failure_earliest, jitter_offset,
    next_due, rejittered_due, saturating_add, saturating_add_std, settled_due_times,
};
