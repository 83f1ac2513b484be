//! Runs the fake WooCommerce store on a random loopback port for tests written outside Rust
//! (the dashboard's browser tests). Prints one JSON line with its address and API keys, then
//! serves until it is stopped.

use chrono::Utc;
use domain::{Availability, Money, ProductImage, SourceProduct};
use testkit::woocommerce::FakeWooCommerce;

fn product(id: u32, title: &str, price: i64) -> SourceProduct {
    SourceProduct {
        external_id: id.to_string(),
        title: title.to_owned(),
        description_html: format!("<p>{title} from the fake WooCommerce store.</p>"),
        short_description: String::new(),
        seo_title: None,
        seo_description: None,
        info_sections: Vec::new(),
        sku: Some(format!("FW-{id}")),
        gtin: None,
        mpn: None,
        brand: Some("Fakewoo".into()),
        price: Some(Money { minor: price }),
        sale_price: None,
        currency: "USD".into(),
        availability: Availability::InStock,
        stock: Some(5),
        categories: vec!["Garden > Tools".into()],
        tags: Vec::new(),
        images: vec![ProductImage {
            url: "https://shop.example/wp-content/uploads/tool.jpg".into(),
            alt: None,
        }],
        link: None,
        attributes: Vec::new(),
        variants: Vec::new(),
        published: true,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(
        &[
            product(301, "Garden Trowel", 1450),
            product(302, "Pruning Shears", 2900),
            product(303, "Watering Can 5L", 2200),
        ],
        Utc::now(),
    );
    // The browser tests run on loopback, which is plain HTTP: the store accepts our
    // callback there, and approves key requests as a merchant clicking "Approve" would.
    fake.set_allow_insecure_callback(true);
    fake.set_auth_decision(testkit::woocommerce::AuthDecision::Approve);
    println!(
        "{}",
        serde_json::json!({
            "baseUrl": fake.base_url,
            "consumerKey": fake.consumer_key,
            "consumerSecret": fake.consumer_secret,
        })
    );
    let _ = tokio::signal::ctrl_c().await;
}
