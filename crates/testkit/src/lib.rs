//! Test infrastructure shared by every crate's tests: throwaway databases on both backends
//! ([`db`]) and a signer for Wix dashboard instances ([`wix`]).

pub mod db;
pub mod wix;

pub use db::{postgres_test_url, TestDatabase};
