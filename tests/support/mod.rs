//! Helpers shared by the integration tests (and `benches/index.rs`), one module per
//! subject; each test binary declares `mod support;` and uses the part it needs.
#![allow(dead_code)]

pub mod app;
pub mod db;
pub mod fixtures;
pub mod index;
pub mod process;
pub mod torch;
pub mod train;
pub mod web;
pub mod webdriver;
