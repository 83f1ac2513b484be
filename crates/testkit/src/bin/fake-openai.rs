//! Runs the fake OpenAI Chat Completions API for tests written outside Rust (the
//! dashboard's browser tests run the server against it). The port is the first argument
//! (absent or 0: any free port). Prints one JSON line with its base URL and the API key it
//! accepts, then serves until it is stopped.

use testkit::openai::FakeOpenAi;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port = match std::env::args().nth(1) {
        None => 0,
        Some(arg) => match arg.parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                eprintln!("usage: fake-openai [PORT]");
                std::process::exit(2);
            }
        },
    };
    let fake = FakeOpenAi::start_on(port).await;
    println!(
        "{}",
        serde_json::json!({
            "baseUrl": fake.base_url(),
            "apiKey": fake.api_key(),
        })
    );
    let _ = tokio::signal::ctrl_c().await;
}
