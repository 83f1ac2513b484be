//! Test infrastructure shared by every crate's tests: throwaway databases on both backends
//! ([`db`]), a signer for Wix dashboard instances ([`wix`]) and faithful fakes of the Wix
//! REST API ([`wix_api`]), the WooCommerce REST API ([`woocommerce`]), OpenAI's Chat
//! Completions API ([`openai`]) and Stripe's subscription billing with signed webhooks
//! ([`stripe`]); catalog files of our own and the optional third-party samples
//! ([`fixtures`]).

pub mod db;
pub mod fixtures;
pub mod openai;
pub mod stripe;
pub mod wix;
pub mod wix_api;
pub mod woocommerce;

pub use db::{postgres_test_url, TestDatabase};

/// A plain published product for storage and engine tests: a title, a one-paragraph
/// description and one category.
pub fn sample_product(external_id: &str, title: &str, category: &str) -> domain::SourceProduct {
    domain::SourceProduct {
        external_id: external_id.to_owned(),
        title: title.to_owned(),
        description_html: format!("<p>{title}</p>"),
        short_description: String::new(),
        seo_title: None,
        seo_description: None,
        info_sections: Vec::new(),
        sku: None,
        gtin: None,
        mpn: None,
        brand: None,
        price: None,
        sale_price: None,
        currency: "USD".into(),
        availability: domain::Availability::InStock,
        stock: None,
        categories: vec![category.to_owned()],
        tags: Vec::new(),
        images: Vec::new(),
        link: None,
        attributes: Vec::new(),
        variants: Vec::new(),
        published: true,
    }
}
