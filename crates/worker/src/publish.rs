//! Publishing approved job items to their store, and reverting them.
//!
//! Every write goes through the store's connector with the revision just read, after a
//! check that the store still holds the value the job started from: a merchant who edited
//! the product in the meantime gets a `409` for that item (unless they force it) instead
//! of losing their edit. Each write is a publish log row with the value before and the
//! value applied, which is what revert restores. Items of one product are written in one
//! update. Publishing an item twice, or reverting an item that is not published, is a
//! no-op.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Utc;
use connectors::http::ConnectorError;
use connectors::{Catalog, ContentUpdate, ProductUpdate};
use domain::{Attribute, ContentValue, ItemStatus};
use secrets::Keyring;
use storage::{JobItem, NewPublishLog, PublishLog, Storage, StorageError};
use uuid::Uuid;

use crate::sync::{catalog_for_store, ConnectorSettings};

/// How one item's publish or revert ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    Published,
    Reverted,
    /// Nothing to do: already published (publish) or not published (revert).
    Unchanged,
    /// The store's value is not the one expected; `force` overrides.
    Conflict,
    Error,
}

impl PublishOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PublishOutcome::Published => "published",
            PublishOutcome::Reverted => "reverted",
            PublishOutcome::Unchanged => "unchanged",
            PublishOutcome::Conflict => "conflict",
            PublishOutcome::Error => "error",
        }
    }
}

/// One item's result, with the HTTP status it amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPublishResult {
    pub item_id: Uuid,
    pub outcome: PublishOutcome,
    pub status: u16,
    pub error: Option<(String, String)>,
    /// What the store holds now, on a conflict.
    pub current: Option<ContentValue>,
}

impl ItemPublishResult {
    fn ok(item_id: Uuid, outcome: PublishOutcome) -> Self {
        ItemPublishResult {
            item_id,
            outcome,
            status: 200,
            error: None,
            current: None,
        }
    }

    fn error(item_id: Uuid, status: u16, code: &str, message: impl Into<String>) -> Self {
        ItemPublishResult {
            item_id,
            outcome: if status == 409 {
                PublishOutcome::Conflict
            } else {
                PublishOutcome::Error
            },
            status,
            error: Some((code.to_owned(), message.into())),
            current: None,
        }
    }
}

/// Writes job results to stores.
#[derive(Clone)]
pub struct Publisher {
    pub storage: Arc<dyn Storage>,
    pub keyring: Keyring,
    pub settings: ConnectorSettings,
}

/// What to write for one item: the value the store must hold now (unless forced) and the
/// value to write.
struct Planned {
    item: JobItem,
    expected: ContentValue,
    write: ContentValue,
    publish: Option<PublishLog>,
}

fn set_field(update: &mut ContentUpdate, attribute: Attribute, value: &ContentValue) {
    match (attribute, value) {
        (Attribute::Title, ContentValue::Text(text)) => update.title = Some(text.clone()),
        (Attribute::Description, ContentValue::Text(text)) => {
            update.description_html = Some(text.clone())
        }
        (Attribute::SeoTitle, ContentValue::Text(text)) => update.seo_title = Some(text.clone()),
        (Attribute::SeoDescription, ContentValue::Text(text)) => {
            update.seo_description = Some(text.clone())
        }
        (Attribute::InfoSections, ContentValue::Sections(sections)) => {
            update.info_sections = Some(sections.clone())
        }
        _ => {}
    }
}

/// The HTTP status and code a store's refusal amounts to for one item.
fn store_failure(err: &ConnectorError) -> (u16, &'static str) {
    match err {
        ConnectorError::Conflict { .. } => (409, "store_changed"),
        ConnectorError::NotFound(_) => (404, "product_gone"),
        ConnectorError::Platform { status, .. } if (400..500).contains(status) => {
            (422, "store_refused")
        }
        _ => (502, "store_error"),
    }
}

impl Publisher {
    /// Publishes the items' proposed values.
    pub async fn publish(
        &self,
        account_id: Uuid,
        item_ids: &[Uuid],
        force: bool,
    ) -> Result<Vec<ItemPublishResult>, StorageError> {
        let mut results: HashMap<Uuid, ItemPublishResult> = HashMap::new();
        let mut planned = Vec::new();
        for item in self.storage.get_job_items(account_id, item_ids).await? {
            let (ItemStatus::Done, Some(before), Some(after)) =
                (item.status, item.before.clone(), item.after.clone())
            else {
                let message = format!(
                    "only finished items can be published; this one is {}",
                    item.status.as_str()
                );
                results.insert(
                    item.id,
                    ItemPublishResult::error(item.id, 422, "not_publishable", message),
                );
                continue;
            };
            if item.published_at.is_some() {
                results.insert(
                    item.id,
                    ItemPublishResult::ok(item.id, PublishOutcome::Unchanged),
                );
                continue;
            }
            planned.push(Planned {
                item,
                expected: before,
                write: after,
                publish: None,
            });
        }
        self.write(account_id, planned, force, false, &mut results)
            .await?;
        Ok(Self::in_order(item_ids, results))
    }

    /// Restores the values the items' last publish replaced.
    pub async fn revert(
        &self,
        account_id: Uuid,
        item_ids: &[Uuid],
        force: bool,
    ) -> Result<Vec<ItemPublishResult>, StorageError> {
        let mut results: HashMap<Uuid, ItemPublishResult> = HashMap::new();
        let mut planned = Vec::new();
        for item in self.storage.get_job_items(account_id, item_ids).await? {
            let latest = self.storage.latest_publish(account_id, item.id).await?;
            match latest {
                Some(log) if log.reverted_at.is_none() => planned.push(Planned {
                    item,
                    expected: log.value_applied.clone(),
                    write: log.value_before.clone(),
                    publish: Some(log),
                }),
                _ => {
                    results.insert(
                        item.id,
                        ItemPublishResult::ok(item.id, PublishOutcome::Unchanged),
                    );
                }
            }
        }
        self.write(account_id, planned, force, true, &mut results)
            .await?;
        Ok(Self::in_order(item_ids, results))
    }

    fn in_order(
        item_ids: &[Uuid],
        mut results: HashMap<Uuid, ItemPublishResult>,
    ) -> Vec<ItemPublishResult> {
        item_ids
            .iter()
            .map(|id| {
                results.remove(id).unwrap_or_else(|| {
                    ItemPublishResult::error(*id, 404, "not_found", "no such item in this account")
                })
            })
            .collect()
    }

    /// Writes the planned values, one update per product.
    async fn write(
        &self,
        account_id: Uuid,
        planned: Vec<Planned>,
        force: bool,
        reverting: bool,
        results: &mut HashMap<Uuid, ItemPublishResult>,
    ) -> Result<(), StorageError> {
        let mut by_product: BTreeMap<(Uuid, Uuid), Vec<Planned>> = BTreeMap::new();
        for plan in planned {
            by_product
                .entry((plan.item.store_id, plan.item.product_id))
                .or_default()
                .push(plan);
        }
        let mut catalogs: HashMap<Uuid, Box<dyn Catalog>> = HashMap::new();
        for ((store_id, product_id), plans) in by_product {
            let fail_all =
                |results: &mut HashMap<Uuid, ItemPublishResult>, status, code, message: &str| {
                    for plan in &plans {
                        results.insert(
                            plan.item.id,
                            ItemPublishResult::error(plan.item.id, status, code, message),
                        );
                    }
                };
            let product = match self.storage.get_product(account_id, product_id).await {
                Ok(product) => product,
                Err(StorageError::NotFound { .. }) => {
                    fail_all(
                        results,
                        404,
                        "product_gone",
                        "the product is no longer in the store's catalog",
                    );
                    continue;
                }
                Err(err) => return Err(err),
            };
            let catalog = match catalogs.entry(store_id) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let store = self.storage.get_store(account_id, store_id).await?;
                    match catalog_for_store(&self.storage, &self.keyring, &self.settings, &store)
                        .await
                    {
                        Ok(catalog) => entry.insert(catalog),
                        Err(err) => {
                            fail_all(results, 502, "store_unavailable", &err.to_string());
                            continue;
                        }
                    }
                }
            };
            let external_id = product.source.external_id.clone();
            let live = match catalog.get(&external_id).await {
                Ok(Some(live)) => live,
                Ok(None) => {
                    fail_all(
                        results,
                        404,
                        "product_gone",
                        "the store no longer has this product",
                    );
                    continue;
                }
                Err(err) => {
                    let (status, code) = store_failure(&err);
                    fail_all(results, status, code, &err.to_string());
                    continue;
                }
            };
            let mut update = ContentUpdate::default();
            let mut accepted = Vec::new();
            for plan in plans {
                let current = plan.item.attribute.read(&live.product);
                if !force && current != plan.expected {
                    let message = if reverting {
                        "the store's value changed after it was published; revert with force to overwrite it"
                    } else {
                        "the store's value changed since the job read it; publish with force to overwrite it"
                    };
                    let mut result =
                        ItemPublishResult::error(plan.item.id, 409, "store_changed", message);
                    result.current = Some(current);
                    results.insert(plan.item.id, result);
                    continue;
                }
                set_field(&mut update, plan.item.attribute, &plan.write);
                accepted.push((plan, current));
            }
            if accepted.is_empty() {
                continue;
            }
            let request = ProductUpdate {
                external_id: external_id.clone(),
                expected_revision: live.revision.clone(),
                update,
            };
            match catalog.update(&request).await {
                Ok(written) => {
                    // Keep the catalog cache in step with what the store now holds.
                    if let Err(err) = self
                        .storage
                        .upsert_products(account_id, store_id, &[written.product], Utc::now())
                        .await
                    {
                        tracing::warn!(error.cause = %err, "catalog cache not refreshed after a publish");
                    }
                    for (plan, current) in accepted {
                        if let Some(log) = &plan.publish {
                            self.storage
                                .record_revert(account_id, log.id, Utc::now())
                                .await?;
                            results.insert(
                                plan.item.id,
                                ItemPublishResult::ok(plan.item.id, PublishOutcome::Reverted),
                            );
                        } else {
                            let forced = current != plan.expected;
                            self.storage
                                .record_publish(
                                    account_id,
                                    NewPublishLog {
                                        store_id,
                                        product_id,
                                        item_id: plan.item.id,
                                        attribute: plan.item.attribute,
                                        value_before: current,
                                        value_applied: plan.write.clone(),
                                        forced,
                                    },
                                    Utc::now(),
                                )
                                .await?;
                            results.insert(
                                plan.item.id,
                                ItemPublishResult::ok(plan.item.id, PublishOutcome::Published),
                            );
                        }
                    }
                }
                Err(err) => {
                    let (status, code) = store_failure(&err);
                    for (plan, _) in accepted {
                        results.insert(
                            plan.item.id,
                            ItemPublishResult::error(plan.item.id, status, code, err.to_string()),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
