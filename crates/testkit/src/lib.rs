//! Test infrastructure shared by every crate's tests: throwaway databases on both backends
//! ([`db`]), a signer for Wix dashboard instances ([`wix`]) and faithful fakes of the Wix
//! REST API ([`wix_api`]), the WooCommerce REST API ([`woocommerce`]), OpenAI's Chat
//! Completions API ([`openai`]) and Stripe's subscription billing with signed webhooks
//! ([`stripe`]).

pub mod db;
pub mod openai;
pub mod stripe;
pub mod wix;
pub mod wix_api;
pub mod woocommerce;

pub use db::{postgres_test_url, TestDatabase};
