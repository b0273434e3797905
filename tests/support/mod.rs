//! Helpers shared by the store and server integration tests; each test binary uses a
//! different subset of them.
#![allow(dead_code)]

pub mod app;
pub mod db;
pub mod fixtures;
pub mod process;
