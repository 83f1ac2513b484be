//! `optimizer account delete` as an operator runs it, against a SQLite file and against
//! PostgreSQL: it refuses without confirmation, answers "not found" for an unknown id, and
//! deletes exactly one account's data, printing what went.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use chrono::Utc;
use domain::{Attribute, ContentValue, JobKind, Platform, SourceScope};
use storage::{ItemOutcome, ItemResult, NewJob, NewRefreshToken, NewStore, NewUser, Storage};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_optimizer");

/// Runs `optimizer account delete …` on the database at `url`, with `input` on standard
/// input (closed when `None`).
fn run(url: &str, data_dir: &Path, args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(["account", "delete"])
        .args(args)
        .env_clear()
        .env("OPTIMIZER_DATA_DIR", data_dir)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start optimizer");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An account with a user, a session, a store with two products and a finished job.
async fn seeded_account(storage: &Arc<dyn Storage>, email: &str) -> Uuid {
    let now = Utc::now();
    let (user, account) = storage
        .register_user(
            NewUser {
                email: email.into(),
                password_hash: "$argon2id$placeholder".into(),
                account_name: "CLI shop".into(),
            },
            now,
        )
        .await
        .unwrap();
    storage
        .insert_refresh_token(
            NewRefreshToken {
                id: Uuid::now_v7(),
                family_id: Uuid::now_v7(),
                user_id: user.id,
                account_id: account.id,
                token_hash: format!("refresh-{email}"),
                expires_at: now + chrono::Duration::days(7),
            },
            now,
        )
        .await
        .unwrap();
    let store = storage
        .create_store(
            account.id,
            NewStore {
                platform: Platform::Local,
                external_id: email.into(),
                name: "Catalog".into(),
                currency: "USD".into(),
                credentials_encrypted: Some("v1:sealed".into()),
            },
            now,
        )
        .await
        .unwrap();
    let import =
        connectors::csv::parse_catalog(&testkit::fixtures::woocommerce_export(), "USD").unwrap();
    storage
        .upsert_products(account.id, store.id, &import.products[..2], now)
        .await
        .unwrap();
    let products = storage
        .list_products(
            account.id,
            &storage::ProductQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    storage
        .create_job(
            account.id,
            NewJob {
                store_id: store.id,
                kind: JobKind::Text,
                source_scope: SourceScope::Products,
                source_ids: products.items.iter().map(|p| p.id).collect(),
                attributes: vec![Attribute::Title],
                target_lang: None,
                user_prompt: None,
                brand_voice: None,
                provider: "rules".into(),
                credits_per_item: 1,
                max_products: 10,
            },
            now,
        )
        .await
        .unwrap();
    let claim = storage
        .claim_items(10, chrono::Duration::minutes(1), now)
        .await
        .unwrap();
    let outcomes: Vec<ItemOutcome> = claim
        .items
        .iter()
        .map(|item| ItemOutcome {
            item_id: item.id,
            result: ItemResult::Done {
                before: ContentValue::Text("old".into()),
                after: ContentValue::Text("new".into()),
                product_revision: 1,
            },
        })
        .collect();
    storage
        .finish_items(claim.token, &outcomes, now)
        .await
        .unwrap();
    account.id
}

async fn account_delete_scenario(url: &str) {
    let data = tempfile::tempdir().unwrap();
    let storage = storage::connect(url, 2).await.unwrap();
    storage.sync_plans(&domain::default_plans()).await.unwrap();
    let asked = seeded_account(&storage, "asked@example.com").await;
    let forced = seeded_account(&storage, "forced@example.com").await;
    let bystander = seeded_account(&storage, "bystander@example.com").await;
    let asked_id = asked.to_string();

    for input in [Some("no\n"), None] {
        let refused = run(url, data.path(), &[&asked_id], input);
        assert!(!refused.status.success(), "{input:?} is no confirmation");
        let stderr = text(&refused.stderr);
        assert!(stderr.contains("Type `yes` to confirm"), "{stderr}");
        assert!(stderr.contains("was not deleted"), "{stderr}");
        assert!(storage.get_account(asked).await.is_ok());
    }

    let unknown = run(
        url,
        data.path(),
        &[&Uuid::now_v7().to_string(), "--yes"],
        None,
    );
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("account not found"),
        "{}",
        text(&unknown.stderr)
    );

    let confirmed = run(url, data.path(), &[&asked_id], Some("yes\n"));
    let stdout = text(&confirmed.stdout);
    assert!(confirmed.status.success(), "{}", text(&confirmed.stderr));
    assert!(
        stdout.starts_with(&format!("deleted account {asked_id} (\"CLI shop\")")),
        "{stdout}"
    );
    for line in [
        "  users: 1",
        "  refresh_tokens: 1",
        "  stores: 1",
        "  products: 2",
        "  jobs: 1",
        "  job_items: 2",
        "  credit_ledger: 2",
        "  accounts: 1",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in {stdout}");
    }

    let with_flag = run(url, data.path(), &[&forced.to_string(), "--yes"], None);
    assert!(with_flag.status.success(), "{}", text(&with_flag.stderr));
    assert!(
        !text(&with_flag.stderr).contains("Type `yes`"),
        "--yes does not ask"
    );

    for gone in [asked, forced] {
        assert!(matches!(
            storage.get_account(gone).await,
            Err(storage::StorageError::NotFound { .. })
        ));
    }
    assert!(storage
        .find_user_by_email("asked@example.com")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        storage
            .list_products(
                bystander,
                &storage::ProductQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .total,
        2,
        "the other account keeps its catalog"
    );
    assert_eq!(storage.list_ledger(bystander, 10).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_delete_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("optimizer.db").display());
    account_delete_scenario(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_delete_on_postgresql() {
    let Some(db) = testkit::TestDatabase::postgres().await else {
        return;
    };
    account_delete_scenario(db.url()).await;
}
