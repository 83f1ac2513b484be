//! Runs the fake Stripe API for tests written outside Rust (the dashboard's browser
//! tests). Prints one JSON line with its base URL and secret key, then takes one JSON
//! command per line on standard input, answering each with one JSON line:
//! - `{"op": "endpoint", "url": "…", "secret": "whsec_…"}` registers the webhook endpoint;
//! - `{"op": "complete", "sessionId": "cs_…"}` completes a Checkout Session as the
//!   customer paying would, delivering its webhooks; answers the deliveries' statuses.

use serde::Deserialize;
use testkit::stripe::FakeStripe;
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
enum Command {
    Endpoint {
        url: String,
        secret: String,
    },
    #[serde(rename_all = "camelCase")]
    Complete {
        session_id: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let fake = FakeStripe::start().await;
    println!(
        "{}",
        serde_json::json!({"baseUrl": fake.base_url(), "secretKey": fake.secret_key()})
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match serde_json::from_str::<Command>(&line) {
            Ok(Command::Endpoint { url, secret }) => {
                fake.set_webhook_endpoint(&url, &secret);
                serde_json::json!({"ok": true})
            }
            Ok(Command::Complete { session_id }) => {
                if fake.checkout_session(&session_id).is_none() {
                    serde_json::json!({"ok": false, "error": format!("no session {session_id}")})
                } else {
                    let statuses: Vec<Option<u16>> = fake
                        .complete_checkout(&session_id)
                        .await
                        .iter()
                        .map(|delivery| delivery.status)
                        .collect();
                    serde_json::json!({"ok": true, "statuses": statuses})
                }
            }
            Err(err) => serde_json::json!({"ok": false, "error": err.to_string()}),
        };
        println!("{answer}");
    }
}
