//! The benchmark harness: seeds data, starts the service under test (a release build), runs
//! each scenario alternately with its pgbench baseline, and reports throughput and latency.

pub mod client;
pub mod creations;
pub mod delivery;
pub mod histograms;
pub mod keys;
pub mod load;
pub mod org;
pub mod pgbench;
pub mod scenarios;
pub mod search;
pub mod search_query;
pub mod stats;
