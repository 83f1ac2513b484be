//! Runs the fake Wix APIs (OAuth, app instance, Stores) for tests written outside Rust (the
//! dashboard's browser tests). Prints one JSON line with its base URL and the app's id and
//! secret, then takes one JSON command per line on standard input, answering each with one
//! JSON line:
//! - `{"op": "add", "instanceId": "…"}` installs the app on a site (free plan);
//! - `{"op": "plan", "instanceId": "…", "packageName": "scale-monthly" | null,
//!   "autoRenewing": true, "cycle": "MONTHLY"}` sets the site's paid plan (null: free), as
//!   the app instance API will report it (with an `expirationDate` only for yearly plans,
//!   as Wix does: `wix-incubator/wix-rest-docs` `all/all-apis/apps.service.json`;
//!   docs/protocols.md, Wix §5.1);
//! - `{"op": "seed", "instanceId": "…", "titles": ["…"]}` adds one simple product per title
//!   to the site's catalog and answers their ids (`{"ok": true, "ids": […]}`).

use chrono::{Duration, Utc};
use serde::Deserialize;
use testkit::wix_api::{CatalogVersion, FakeWix, PaidPlan};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
enum Command {
    #[serde(rename_all = "camelCase")]
    Add { instance_id: String },
    #[serde(rename_all = "camelCase")]
    Seed {
        instance_id: String,
        titles: Vec<String>,
    },
    #[serde(rename_all = "camelCase")]
    Plan {
        instance_id: String,
        package_name: Option<String>,
        #[serde(default = "renews")]
        auto_renewing: bool,
        #[serde(default = "monthly")]
        cycle: String,
    },
}

fn renews() -> bool {
    true
}

fn monthly() -> String {
    "MONTHLY".into()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let fake = FakeWix::start().await;
    println!(
        "{}",
        serde_json::json!({
            "baseUrl": fake.base_url,
            "appId": fake.app_id,
            "appSecret": fake.app_secret,
        })
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match serde_json::from_str::<Command>(&line) {
            Ok(Command::Add { instance_id }) => {
                fake.add_instance(&instance_id, CatalogVersion::V3Catalog);
                serde_json::json!({"ok": true})
            }
            Ok(Command::Seed {
                instance_id,
                titles,
            }) => {
                let products: Vec<_> = titles
                    .iter()
                    .map(|title| testkit::sample_product("", title, "Garden > Tools"))
                    .collect();
                let ids = fake.seed(&instance_id, &products, Utc::now());
                if ids.len() == products.len() {
                    serde_json::json!({"ok": true, "ids": ids})
                } else {
                    serde_json::json!({"ok": false, "error": format!("no instance {instance_id}")})
                }
            }
            Ok(Command::Plan {
                instance_id,
                package_name,
                auto_renewing,
                cycle,
            }) => {
                let expiration_date = (cycle == "YEARLY").then(|| Utc::now() + Duration::days(365));
                fake.set_plan(
                    &instance_id,
                    package_name.map(|package_name| PaidPlan {
                        package_name,
                        billing_cycle: cycle,
                        auto_renewing,
                        time_stamp: Utc::now(),
                        expiration_date,
                        invoice_id: "inv-e2e".into(),
                    }),
                );
                serde_json::json!({"ok": true})
            }
            Err(err) => serde_json::json!({"ok": false, "error": err.to_string()}),
        };
        println!("{answer}");
    }
}
