//! Catalog sync: reads a connected store through its connector and brings the `products`
//! cache up to date. A full sync also removes products the store no longer has. Every run,
//! successful or not, is recorded as a sync batch.

use std::time::Instant;

use chrono::Utc;
use connectors::http::ConnectorError;
use connectors::woocommerce::{credentials_context, ClientOptions, Credentials, WooCommerceClient};
use domain::{Platform, Store};
use secrets::Keyring;
use storage::{Storage, StorageError, SyncBatch};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] ConnectorError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the store's saved credentials cannot be read: {0}")]
    Credentials(String),
    #[error("{0} stores do not sync from here")]
    NotSyncable(&'static str),
}

/// Builds the WooCommerce client for a connected store from its encrypted credentials.
pub async fn woocommerce_client(
    storage: &dyn Storage,
    keyring: &Keyring,
    store: &Store,
    options: ClientOptions,
) -> Result<WooCommerceClient, SyncError> {
    let sealed = storage
        .store_credentials(store.account_id, store.id)
        .await?
        .ok_or_else(|| SyncError::Credentials("none saved".into()))?;
    let plain = keyring
        .decrypt(&sealed, &credentials_context(&store.external_id))
        .map_err(|err| SyncError::Credentials(err.to_string()))?;
    let credentials: Credentials =
        serde_json::from_slice(&plain).map_err(|err| SyncError::Credentials(err.to_string()))?;
    Ok(WooCommerceClient::new(
        &store.external_id,
        &credentials.consumer_key,
        &credentials.consumer_secret,
        options,
    )?)
}

/// Reads every product of the store, upserts them and removes the ones that are gone.
pub async fn full_sync(
    storage: &dyn Storage,
    keyring: &Keyring,
    store: &Store,
    trigger: &str,
    options: ClientOptions,
) -> Result<SyncBatch, SyncError> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let outcome = async {
        let client = match store.platform {
            Platform::Woocommerce => woocommerce_client(storage, keyring, store, options).await?,
            Platform::Local => return Err(SyncError::NotSyncable("local")),
            Platform::Wix => return Err(SyncError::NotSyncable("Wix")),
        };
        let products = client.fetch_products(&store.currency, None).await?;
        let summary = storage
            .upsert_products(store.account_id, store.id, &products, Utc::now())
            .await?;
        let keep: Vec<String> = products.iter().map(|p| p.external_id.clone()).collect();
        let deleted = storage
            .remove_products_except(store.account_id, store.id, &keep)
            .await?;
        Ok((products.len(), summary, deleted))
    }
    .await;
    let mut batch = SyncBatch {
        id: Uuid::now_v7(),
        store_id: store.id,
        trigger: trigger.to_owned(),
        kind: "full".into(),
        succeeded: outcome.is_ok(),
        fetched: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        deleted: 0,
        error: None,
        started_at,
        duration_ms: clock.elapsed().as_millis() as i64,
    };
    match &outcome {
        Ok((fetched, summary, deleted)) => {
            batch.fetched = *fetched as i64;
            batch.created = summary.created as i64;
            batch.updated = summary.updated as i64;
            batch.unchanged = summary.unchanged as i64;
            batch.deleted = *deleted as i64;
        }
        Err(err) => batch.error = Some(err.to_string()),
    }
    if !matches!(outcome, Err(SyncError::NotSyncable(_))) {
        storage.record_sync_batch(store.account_id, &batch).await?;
    }
    tracing::info!(
        store.id = %store.id,
        sync.succeeded = batch.succeeded,
        sync.fetched = batch.fetched,
        sync.deleted = batch.deleted,
        duration_ms = batch.duration_ms,
        "catalog sync finished"
    );
    outcome.map(|_| batch)
}
