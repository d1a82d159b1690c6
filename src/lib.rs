//! tradefeed: polls trade-policy news feeds, folds syndicated copies into one story, scores
//! topics and serves one consolidated feed.
//!
//! # Layout
//!
//! | module       | pipeline stage                                                        |
//! |--------------|-----------------------------------------------------------------------|
//! | [`config`]   | TOML config → validated [`config::Config`]                            |
//! | [`scheduler`]| which source is due when (cron, jitter, backoff)                      |
//! | [`fetch`]    | HTTP with limits and conditional GET → [`fetch::FetchOutcome`]        |
//! | [`parse`]    | bytes → [`domain::ParsedFeed`] (the only feed-rs user)                |
//! | [`discover`] | HTML page → the feeds it advertises (`<link rel="alternate">`)       |
//! | [`normalize`]| raw item → clean [`domain::Entry`] with identity and fingerprints     |
//! | [`cluster`]  | near-duplicate story assignment                                       |
//! | [`classify`] | topic scores with explanations                                        |
//! | [`store`]    | SQLite: sources, entries, stories, scores, fetch log                  |
//! | [`ingest`]   | the orchestrator that runs one source through the stages              |
//! | [`http`]     | output feeds, status page, health                                     |
//! | [`app`]      | wiring, lifecycle and shutdown                                        |
//! | [`cli`]      | subcommands and their output                                          |
//! | [`reload`]   | when to reload the config (SIGHUP, file changes)                      |
//! | [`opml`]     | OPML import into the config and export of the sources                 |
//! | [`telemetry`]| Prometheus metrics                                                    |
//! | [`domain`]   | plain data shared by all of the above                                 |

pub mod app;
pub mod classify;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod discover;
pub mod domain;
pub mod fetch;
pub mod http;
pub mod ingest;
pub mod normalize;
pub mod opml;
pub mod parse;
pub mod reload;
pub mod scheduler;
pub mod store;
pub mod telemetry;
