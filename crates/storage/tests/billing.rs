//! Plans, monthly resets, canceled periods and webhook bookkeeping on both backends: every
//! change keeps the ledger equal to the remaining credits, older billing events never roll
//! a plan back, and repeated work has no second effect.

use std::sync::Arc;

use chrono::{Duration, Utc};
use domain::{default_plans, AccountStatus, BillingSource, LedgerReason, Platform};
use storage::{NewStore, NewUser, NewWebhookEvent, PlanChange, Storage, StripeLink};
use uuid::Uuid;

async fn open(db: &testkit::TestDatabase) -> Arc<dyn Storage> {
    let storage = storage::connect(db.url(), 8)
        .await
        .expect("connect and migrate");
    storage.sync_plans(&default_plans()).await.unwrap();
    storage
}

testkit::on_both_backends!(
    a_plan_change_keeps_used_credits_and_writes_one_ledger_row,
    an_older_plan_event_does_not_roll_the_plan_back,
    concurrent_deliveries_of_one_change_apply_once,
    monthly_reset_grants_the_plan_once_per_period,
    a_canceled_period_ends_on_the_free_plan,
    removed_accounts_are_marked_inactive_and_reactivated,
    unfinished_webhook_deliveries_are_listed_until_finished,
    the_ledger_is_read_in_pages_newest_first,
    stripe_customers_lead_to_their_account,
);

async fn account(storage: &Arc<dyn Storage>) -> Uuid {
    let (_, account) = storage
        .register_user(
            NewUser {
                email: format!("{}@example.com", Uuid::new_v4()),
                password_hash: "$argon2id$placeholder".into(),
                account_name: "Shop".into(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    account.id
}

/// Spends `amount` credits through a job, the only way credits are used.
async fn spend(storage: &Arc<dyn Storage>, account_id: Uuid, amount: usize) {
    try_spend(storage, account_id, amount).await.unwrap();
}

async fn try_spend(
    storage: &Arc<dyn Storage>,
    account_id: Uuid,
    amount: usize,
) -> Result<(), storage::StorageError> {
    let store = storage
        .create_store(
            account_id,
            NewStore {
                platform: Platform::Local,
                external_id: Uuid::new_v4().to_string(),
                name: "Catalog".into(),
                currency: "USD".into(),
                credentials_encrypted: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let products: Vec<domain::SourceProduct> = (0..amount)
        .map(|n| testkit::sample_product(&format!("p{n}"), &format!("Product {n}"), "All"))
        .collect();
    storage
        .upsert_products(account_id, store.id, &products, Utc::now())
        .await
        .unwrap();
    let page = storage
        .list_products(
            account_id,
            &storage::ProductQuery {
                store_id: Some(store.id),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    storage
        .create_job(
            account_id,
            storage::NewJob {
                store_id: store.id,
                kind: domain::JobKind::Text,
                source_scope: domain::SourceScope::Products,
                source_ids: page.items.iter().map(|p| p.id).collect(),
                attributes: vec![domain::Attribute::Title],
                target_lang: None,
                user_prompt: None,
                brand_voice: None,
                provider: "rules".into(),
                credits_per_item: 1,
                max_products: 1000,
            },
            Utc::now(),
        )
        .await
        .map(|_| ())
}

/// The ledger's sum is what remains; returns the remaining credits.
async fn assert_ledger_matches(storage: &Arc<dyn Storage>, account_id: Uuid) -> i64 {
    let account = storage.get_account(account_id).await.unwrap();
    let ledger = storage.list_ledger(account_id, 100_000).await.unwrap();
    let sum: i64 = ledger.iter().map(|entry| entry.delta).sum();
    assert_eq!(
        sum,
        account.credits_total - account.credits_used,
        "ledger {ledger:?} vs total {} used {}",
        account.credits_total,
        account.credits_used
    );
    sum
}

fn change(plan: &str, at: Option<chrono::DateTime<Utc>>, reference: &str) -> PlanChange {
    PlanChange {
        plan_id: plan.into(),
        billing_source: BillingSource::Wix,
        effective_at: at,
        period_end: None,
        cancel_at_period_end: false,
        reference: reference.into(),
    }
}

async fn a_plan_change_keeps_used_credits_and_writes_one_ledger_row(storage: Arc<dyn Storage>) {
    let id = account(&storage).await;
    spend(&storage, id, 30).await;
    let outcome = storage
        .apply_plan_change(
            id,
            change("pro", Some(Utc::now()), "wix:purchase:1"),
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(outcome.applied);
    assert_eq!(outcome.account.plan_id, "pro");
    assert_eq!(outcome.account.billing_source, BillingSource::Wix);
    assert_eq!(
        (outcome.account.credits_total, outcome.account.credits_used),
        (5_000, 30)
    );
    assert_eq!(assert_ledger_matches(&storage, id).await, 4_970);
    let ledger = storage.list_ledger(id, 10).await.unwrap();
    assert_eq!(ledger[0].reason, LedgerReason::PlanChange);
    assert_eq!(ledger[0].delta, 4_800);
    // The same change again (a redelivery) writes nothing.
    let again = storage
        .apply_plan_change(
            id,
            change("pro", Some(Utc::now()), "wix:purchase:1"),
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(!again.applied);
    assert_eq!(
        storage.list_ledger(id, 100).await.unwrap().len(),
        ledger.len()
    );
    // A downgrade below what was used leaves nothing to spend, and the ledger agrees.
    spend(&storage, id, 200).await;
    let down = storage
        .apply_plan_change(
            id,
            change("free", Some(Utc::now()), "wix:change:2"),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        (down.account.credits_total, down.account.credits_used),
        (200, 230)
    );
    assert_eq!(assert_ledger_matches(&storage, id).await, -30);
    let unknown = storage
        .apply_plan_change(id, change("platinum", None, "wix:change:3"), Utc::now())
        .await;
    assert!(matches!(
        unknown,
        Err(storage::StorageError::NotFound { .. })
    ));
}

async fn an_older_plan_event_does_not_roll_the_plan_back(storage: Arc<dyn Storage>) {
    let id = account(&storage).await;
    let t0 = Utc::now() - Duration::hours(2);
    storage
        .apply_plan_change(
            id,
            change("scale", Some(t0 + Duration::hours(1)), "b"),
            Utc::now(),
        )
        .await
        .unwrap();
    // The purchase of an hour before arrives late (a retried delivery).
    let late = storage
        .apply_plan_change(id, change("starter", Some(t0), "a"), Utc::now())
        .await
        .unwrap();
    assert!(!late.applied);
    assert_eq!(late.account.plan_id, "scale");
    assert_eq!(late.account.credits_total, 25_000);
    // A reconciliation (no event time) always applies and a newer event still applies.
    let synced = storage
        .apply_plan_change(id, change("pro", None, "sync:1"), Utc::now())
        .await
        .unwrap();
    assert!(synced.applied);
    let older_than_mark = storage
        .apply_plan_change(
            id,
            change("starter", Some(t0 + Duration::minutes(30)), "c"),
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(
        !older_than_mark.applied,
        "the reconciliation did not reset the mark"
    );
    let newer = storage
        .apply_plan_change(
            id,
            change("starter", Some(t0 + Duration::hours(2)), "d"),
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(newer.applied);
    assert_eq!(newer.account.plan_id, "starter");
    assert_ledger_matches(&storage, id).await;
}

async fn concurrent_deliveries_of_one_change_apply_once(storage: Arc<dyn Storage>) {
    let id = account(&storage).await;
    let at = Utc::now();
    let attempts = (0..3).map(|_| {
        let storage = storage.clone();
        tokio::spawn(async move {
            storage
                .apply_plan_change(
                    id,
                    change("pro", Some(at), "wix:PaidPlanPurchased:x"),
                    Utc::now(),
                )
                .await
                .unwrap()
                .applied
        })
    });
    let mut applied = 0;
    for attempt in attempts {
        if attempt.await.unwrap() {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    let plan_rows = storage
        .list_ledger(id, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.reason == LedgerReason::PlanChange)
        .count();
    assert_eq!(plan_rows, 1);
    assert_eq!(assert_ledger_matches(&storage, id).await, 5_000);
}

async fn monthly_reset_grants_the_plan_once_per_period(storage: Arc<dyn Storage>) {
    let id = account(&storage).await;
    let other = account(&storage).await;
    spend(&storage, id, 50).await;
    let before = storage.get_account(id).await.unwrap();
    // Nothing is due today.
    assert_eq!(storage.reset_due_credits(Utc::now()).await.unwrap(), 0);
    let reset_day = before
        .credits_reset_on
        .and_hms_opt(1, 0, 0)
        .unwrap()
        .and_utc();
    assert!(storage.reset_due_credits(reset_day).await.unwrap() >= 2);
    let after = storage.get_account(id).await.unwrap();
    assert_eq!((after.credits_total, after.credits_used), (200, 0));
    assert_eq!(
        after.credits_reset_on,
        domain::next_reset_date(before.credits_reset_on)
    );
    assert_eq!(assert_ledger_matches(&storage, id).await, 200);
    let grant = &storage.list_ledger(id, 1).await.unwrap()[0];
    assert_eq!(grant.reason, LedgerReason::MonthlyGrant);
    assert_eq!(grant.delta, 50);
    // Twice on the same day: nothing more.
    let rows = storage.list_ledger(id, 100).await.unwrap().len();
    storage
        .reset_due_credits(reset_day + Duration::hours(5))
        .await
        .unwrap();
    assert_eq!(storage.list_ledger(id, 100).await.unwrap().len(), rows);
    assert_eq!(storage.get_account(id).await.unwrap(), after);
    // An account idle for three months gets one grant and a reset date after today.
    let much_later = reset_day + Duration::days(95);
    storage.reset_due_credits(much_later).await.unwrap();
    let idle = storage.get_account(other).await.unwrap();
    assert!(idle.credits_reset_on > much_later.date_naive());
    assert!(idle.credits_reset_on <= domain::next_reset_date(much_later.date_naive()));
    assert_eq!(assert_ledger_matches(&storage, other).await, 200);
}

async fn a_canceled_period_ends_on_the_free_plan(storage: Arc<dyn Storage>) {
    let id = account(&storage).await;
    let period_end = Utc::now() + Duration::days(10);
    let mut canceled = change("pro", Some(Utc::now()), "cancel");
    canceled.period_end = Some(period_end);
    canceled.cancel_at_period_end = true;
    let outcome = storage
        .apply_plan_change(id, canceled, Utc::now())
        .await
        .unwrap();
    assert!(outcome.account.cancel_at_period_end);
    assert_eq!(
        outcome.account.plan_id, "pro",
        "access is kept until the period ends"
    );
    spend(&storage, id, 40).await;
    assert_eq!(storage.end_canceled_periods(Utc::now()).await.unwrap(), 0);
    assert_eq!(
        storage
            .end_canceled_periods(period_end + Duration::minutes(1))
            .await
            .unwrap(),
        1
    );
    let ended = storage.get_account(id).await.unwrap();
    assert_eq!(ended.plan_id, "free");
    assert!(!ended.cancel_at_period_end);
    assert_eq!(ended.period_end, None);
    assert_eq!((ended.credits_total, ended.credits_used), (200, 40));
    assert_eq!(
        storage
            .end_canceled_periods(period_end + Duration::minutes(2))
            .await
            .unwrap(),
        0
    );
    assert_ledger_matches(&storage, id).await;
}

async fn removed_accounts_are_marked_inactive_and_reactivated(storage: Arc<dyn Storage>) {
    let id = account(&storage).await;
    let removed = storage
        .set_account_status(id, AccountStatus::Inactive, Utc::now())
        .await
        .unwrap();
    assert_eq!(removed.status, AccountStatus::Inactive);
    // An inactive account cannot start jobs, and is told why.
    let refused = try_spend(&storage, id, 1).await;
    assert!(
        matches!(&refused, Err(storage::StorageError::InvalidState(message)) if message.contains("inactive")),
        "{refused:?}"
    );
    assert_eq!(storage.get_account(id).await.unwrap().credits_used, 0);
    let back = storage
        .set_account_status(id, AccountStatus::Active, Utc::now())
        .await
        .unwrap();
    assert_eq!(back.status, AccountStatus::Active);
    let missing = storage
        .set_account_status(Uuid::new_v4(), AccountStatus::Inactive, Utc::now())
        .await;
    assert!(matches!(
        missing,
        Err(storage::StorageError::NotFound { .. })
    ));
}

async fn unfinished_webhook_deliveries_are_listed_until_finished(storage: Arc<dyn Storage>) {
    let received = Utc::now() - Duration::minutes(5);
    for key in ["k1", "k2"] {
        assert!(storage
            .record_webhook_event(
                NewWebhookEvent {
                    provider: "wix".into(),
                    dedupe_key: key.into(),
                    event_type: "PaidPlanPurchased".into(),
                    account_id: None,
                    payload: format!("{{\"key\":\"{key}\"}}"),
                },
                received,
            )
            .await
            .unwrap());
    }
    assert_eq!(
        storage.webhook_event_processed("wix", "k1").await.unwrap(),
        Some(false)
    );
    assert_eq!(
        storage
            .webhook_event_processed("wix", "nope")
            .await
            .unwrap(),
        None
    );
    let pending = storage
        .pending_webhook_events("wix", Utc::now(), 10)
        .await
        .unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|e| e.dedupe_key.as_str())
            .collect::<Vec<_>>(),
        ["k1", "k2"]
    );
    assert_eq!(pending[0].payload, "{\"key\":\"k1\"}");
    // Deliveries younger than the cutoff are left to their own request.
    assert!(storage
        .pending_webhook_events("wix", received - Duration::minutes(1), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(storage
        .pending_webhook_events("stripe", Utc::now(), 10)
        .await
        .unwrap()
        .is_empty());
    let id = account(&storage).await;
    storage
        .finish_webhook_event("wix", "k1", Some(id), "applied", Utc::now())
        .await
        .unwrap();
    assert_eq!(
        storage.webhook_event_processed("wix", "k1").await.unwrap(),
        Some(true)
    );
    let pending = storage
        .pending_webhook_events("wix", Utc::now(), 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].dedupe_key, "k2");
}

async fn the_ledger_is_read_in_pages_newest_first(storage: Arc<dyn Storage>) {
    let id = account(&storage).await;
    let other = account(&storage).await;
    for n in 0..5 {
        storage
            .apply_plan_change(
                id,
                change(
                    if n % 2 == 0 { "pro" } else { "starter" },
                    None,
                    &format!("r{n}"),
                ),
                Utc::now(),
            )
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = storage.ledger_page(id, cursor.as_deref(), 2).await.unwrap();
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.iter().map(|e| e.reference.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let all: Vec<String> = storage
        .list_ledger(id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.reference)
        .collect();
    assert_eq!(seen, all);
    assert_eq!(
        seen.len(),
        6,
        "the grant at registration and five plan changes"
    );
    assert_eq!(seen[0], "r4");
    // Another tenant's ledger is not reachable, and a forged cursor is refused.
    assert!(storage
        .ledger_page(other, None, 50)
        .await
        .unwrap()
        .entries
        .iter()
        .all(|e| e.account_id == other));
    assert!(storage.ledger_page(id, Some("garbage"), 2).await.is_err());
}

async fn stripe_customers_lead_to_their_account(storage: Arc<dyn Storage>) {
    let id = account(&storage).await;
    assert_eq!(
        storage.stripe_link(id).await.unwrap(),
        StripeLink::default()
    );
    assert!(storage
        .find_account_by_stripe_customer("cus_1")
        .await
        .unwrap()
        .is_none());
    storage
        .link_stripe(
            id,
            &StripeLink {
                customer_id: Some("cus_1".into()),
                subscription_id: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    storage
        .link_stripe(
            id,
            &StripeLink {
                customer_id: None,
                subscription_id: Some("sub_1".into()),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        storage.stripe_link(id).await.unwrap(),
        StripeLink {
            customer_id: Some("cus_1".into()),
            subscription_id: Some("sub_1".into())
        }
    );
    let found = storage
        .find_account_by_stripe_customer("cus_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, id);
    // One customer belongs to one account.
    let other = account(&storage).await;
    assert!(storage
        .link_stripe(
            other,
            &StripeLink {
                customer_id: Some("cus_1".into()),
                subscription_id: None,
            },
            Utc::now(),
        )
        .await
        .is_err());
}
