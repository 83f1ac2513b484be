//! The SQL both backends share, written once. `impl_storage!` expands to the complete
//! [`crate::Storage`] implementation for a backend type; the backend supplies three
//! inherent methods where the engines differ:
//! - `begin_write()`: a transaction that will write (SQLite needs `BEGIN IMMEDIATE` so two
//!   writers queue on the busy timeout instead of failing on a lock upgrade),
//! - `run_migrations()`: its own migration folder,
//! - `pool()`: its connection pool.
//!
//! Every statement below is valid on both engines: `$n` placeholders, `ON CONFLICT`,
//! `RETURNING`-free writes, text ids and integer instants.

use chrono::{DateTime, Utc};

/// Whether an error is a unique-constraint violation (e.g. a duplicate email).
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db_err| db_err.is_unique_violation())
}

/// The ledger reference of a monthly grant: one grant per account and period start.
pub(crate) fn grant_reference(period_start: DateTime<Utc>) -> String {
    format!("period:{}", period_start.format("%Y-%m-%d"))
}

/// Email of the demo account's password-less user (`.invalid` can never be a real address).
pub(crate) const DEMO_USER_EMAIL: &str = "demo@demo.invalid";

/// SHA-256 of a product's source record as stored (its JSON).
pub(crate) fn checksum(source_json: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(source_json.as_bytes()))
}

/// A category path and each of its ancestors: "A > B > C" gives "A", "A > B", "A > B > C",
/// so filtering by a parent category finds the products of its children too.
pub(crate) fn category_paths(categories: &[String]) -> Vec<String> {
    let mut paths = Vec::new();
    for category in categories {
        let parts: Vec<&str> = category
            .split('>')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        for end in 1..=parts.len() {
            let path = parts[..end].join(" > ");
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    paths
}

/// What product search matches: lower-cased title, SKU, brand and categories.
pub(crate) fn search_text(product: &domain::SourceProduct) -> String {
    let mut text = product.title.to_lowercase();
    for extra in [&product.sku, &product.brand].into_iter().flatten() {
        text.push('\n');
        text.push_str(&extra.to_lowercase());
    }
    for category in &product.categories {
        text.push('\n');
        text.push_str(&category.to_lowercase());
    }
    text
}

/// The price product lists show: a variable product at its lowest variant price ("from").
pub(crate) fn list_price(product: &domain::SourceProduct) -> Option<i64> {
    product
        .price
        .or_else(|| {
            product
                .variants
                .iter()
                .filter_map(|v| v.price)
                .min_by_key(|m| m.minor)
        })
        .map(|money| money.minor)
}

/// A LIKE pattern matching `needle` anywhere, with LIKE's wildcards escaped (`\`).
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::from("%");
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Refuses text with a NUL character before it reaches a query. PostgreSQL cannot store
/// U+0000 in text and SQLite can; refusing it on both keeps them alike, and turns what
/// would be a database error into [`crate::StorageError::InvalidText`] naming the field.
pub(crate) fn storable(field: &str, value: &str) -> crate::Result<()> {
    if value.contains('\0') {
        return Err(crate::StorageError::InvalidText {
            field: field.to_owned(),
            problem: domain::TextProblem::Nul,
        });
    }
    Ok(())
}

/// [`storable`] for an optional value.
pub(crate) fn storable_opt(field: &str, value: Option<&str>) -> crate::Result<()> {
    value.map_or(Ok(()), |value| storable(field, value))
}

/// [`storable`] for every text field of a product (named as the API names it).
pub(crate) fn storable_product(product: &domain::SourceProduct) -> crate::Result<()> {
    product
        .find_nul()
        .map_err(|err| crate::StorageError::InvalidText {
            field: err.field,
            problem: err.problem,
        })
}

/// A diagnostic (a sync's or an item's error message) as it can be stored: these quote
/// what stores and providers answered, and are kept whatever they hold, so a NUL is
/// replaced with U+FFFD instead of costing the record.
pub(crate) fn diagnostic(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{fffd}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

macro_rules! impl_storage {
    ($storage:ty, $db:ty, $backend:expr) => {
        impl $storage {
            /// Inserts an account on `plan` with its first monthly grant, inside `tx`.
            async fn insert_account(
                tx: &mut sqlx::Transaction<'_, $db>,
                name: &str,
                plan: &domain::Plan,
                billing_source: domain::BillingSource,
                is_demo: bool,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<domain::Account> {
                let account = domain::Account {
                    id: uuid::Uuid::now_v7(),
                    name: name.to_owned(),
                    plan_id: plan.id.clone(),
                    billing_source,
                    status: domain::AccountStatus::Active,
                    credits_total: plan.credits_for(billing_source),
                    credits_used: 0,
                    credits_reset_on: domain::next_reset_date(now.date_naive()),
                    period_end: None,
                    cancel_at_period_end: false,
                    deactivated_at: None,
                    created_at: chrono::DateTime::from_timestamp_millis(now.timestamp_millis())
                        .unwrap_or(now),
                };
                let now_ms = $crate::rows::millis(now);
                sqlx::query(
                    "INSERT INTO accounts (id, name, plan_id, billing_source, status, is_demo, \
                     credits_total, credits_used, credits_reset_on, cancel_at_period_end, \
                     created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'active', $5, $6, 0, $7, FALSE, $8, $8)",
                )
                .bind(account.id.to_string())
                .bind(&account.name)
                .bind(&account.plan_id)
                .bind(billing_source.as_str())
                .bind(is_demo)
                .bind(account.credits_total)
                .bind($crate::rows::date_text(account.credits_reset_on))
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "INSERT INTO credit_ledger (id, account_id, delta, reason, reference, created_at) \
                     VALUES ($1, $2, $3, 'monthly_grant', $4, $5)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(account.id.to_string())
                .bind(account.credits_total)
                .bind($crate::shared::grant_reference(now))
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
                Ok(account)
            }

            /// [`crate::StorageError::NotFound`] unless the store belongs to the account, checked
            /// inside the writing transaction so the write cannot land in another tenant's store.
            async fn ensure_store_in_account(
                tx: &mut sqlx::Transaction<'_, $db>,
                account_id: &str,
                store_id: &str,
            ) -> $crate::Result<()> {
                let owned: Option<String> =
                    sqlx::query_scalar("SELECT id FROM stores WHERE id = $1 AND account_id = $2")
                        .bind(store_id)
                        .bind(account_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                match owned {
                    Some(_) => Ok(()),
                    None => Err($crate::StorageError::not_found("store")),
                }
            }

            /// Inserts new and updates changed products in one transaction; with
            /// `max_products`, refuses (writing nothing) when the store would hold more.
            async fn write_products(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
                products: &[domain::SourceProduct],
                max_products: Option<u64>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::UpsertSummary> {
                for product in products {
                    $crate::shared::storable_product(product)?;
                }
                let account = account_id.to_string();
                let store = store_id.to_string();
                let now_ms = $crate::rows::millis(now);
                let mut tx = self.begin_write().await?;
                Self::ensure_store_in_account(&mut tx, &account, &store).await?;
                // Only the rows this batch names: a sync writes page by page, and reading
                // the whole store for every page would make a sync quadratic.
                let mut existing: std::collections::HashMap<String, (String, String)> =
                    std::collections::HashMap::with_capacity(products.len());
                for chunk in products.chunks(500) {
                    let mut lookup = sqlx::QueryBuilder::<$db>::new(
                        "SELECT external_id, id, checksum FROM products WHERE store_id = ",
                    );
                    lookup.push_bind(&store).push(" AND external_id IN (");
                    let mut ids = lookup.separated(", ");
                    for product in chunk {
                        ids.push_bind(&product.external_id);
                    }
                    ids.push_unseparated(")");
                    for (external_id, id, checksum) in lookup
                        .build_query_as::<(String, String, String)>()
                        .fetch_all(&mut *tx)
                        .await?
                    {
                        existing.insert(external_id, (id, checksum));
                    }
                }
                if let Some(max) = max_products {
                    // Writing to the store row first makes concurrent imports of one store
                    // take turns (a row lock on PostgreSQL; SQLite writers queue anyway).
                    sqlx::query("UPDATE stores SET id = id WHERE id = $1")
                        .bind(&store)
                        .execute(&mut *tx)
                        .await?;
                    let held: i64 =
                        sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE store_id = $1")
                            .bind(&store)
                            .fetch_one(&mut *tx)
                            .await?;
                    let added: std::collections::HashSet<&str> = products
                        .iter()
                        .map(|product| product.external_id.as_str())
                        .filter(|external_id| !existing.contains_key(*external_id))
                        .collect();
                    let total = held.max(0) as u64 + added.len() as u64;
                    if total > max {
                        return Err($crate::StorageError::TooManyProducts { total, max });
                    }
                }
                let mut summary = $crate::UpsertSummary::default();
                let mut collections = std::collections::HashMap::new();
                for product in products {
                    let source = serde_json::to_string(product)
                        .map_err(|err| $crate::StorageError::Corrupt(err.to_string()))?;
                    let checksum = $crate::shared::checksum(&source);
                    let image = product.images.first().map(|image| image.url.clone());
                    let price = $crate::shared::list_price(product);
                    let product_id = match existing.get(&product.external_id) {
                        Some((_, stored)) if *stored == checksum => {
                            summary.unchanged += 1;
                            continue;
                        }
                        Some((id, _)) => {
                            Self::rewrite_product(&mut tx, id, product, &source, &checksum, now_ms).await?;
                            summary.updated += 1;
                            id.clone()
                        }
                        None => {
                            let id = uuid::Uuid::now_v7().to_string();
                            sqlx::query(
                                "INSERT INTO products (id, account_id, store_id, external_id, title, sku, \
                                 price_minor, currency, availability, published, image_url, variant_count, \
                                 search_text, source, checksum, revision, created_at, updated_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1, $16, $16)",
                            )
                            .bind(&id)
                            .bind(&account)
                            .bind(&store)
                            .bind(&product.external_id)
                            .bind(&product.title)
                            .bind(&product.sku)
                            .bind(price)
                            .bind(&product.currency)
                            .bind(product.availability.as_str())
                            .bind(product.published)
                            .bind(image)
                            .bind(product.variants.len() as i64)
                            .bind($crate::shared::search_text(product))
                            .bind(&source)
                            .bind(&checksum)
                            .bind(now_ms)
                            .execute(&mut *tx)
                            .await?;
                            summary.created += 1;
                            id
                        }
                    };
                    Self::link_collections(&mut tx, &account, &store, &product_id, product, &mut collections)
                        .await?;
                }
                tx.commit().await?;
                Ok(summary)
            }

            /// Writes a changed source record over a product row (revision + 1).
            async fn rewrite_product(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: &str,
                product: &domain::SourceProduct,
                source: &str,
                checksum: &str,
                now_ms: i64,
            ) -> $crate::Result<()> {
                sqlx::query(
                    "UPDATE products SET title = $2, sku = $3, price_minor = $4, currency = $5, \
                     availability = $6, published = $7, image_url = $8, variant_count = $9, \
                     search_text = $10, source = $11, checksum = $12, revision = revision + 1, \
                     updated_at = $13 WHERE id = $1",
                )
                .bind(id)
                .bind(&product.title)
                .bind(&product.sku)
                .bind($crate::shared::list_price(product))
                .bind(&product.currency)
                .bind(product.availability.as_str())
                .bind(product.published)
                .bind(product.images.first().map(|image| image.url.clone()))
                .bind(product.variants.len() as i64)
                .bind($crate::shared::search_text(product))
                .bind(source)
                .bind(checksum)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Makes the product's collection links match its category paths.
            async fn link_collections(
                tx: &mut sqlx::Transaction<'_, $db>,
                account: &str,
                store: &str,
                product_id: &str,
                product: &domain::SourceProduct,
                cache: &mut std::collections::HashMap<String, String>,
            ) -> $crate::Result<()> {
                let paths = $crate::shared::category_paths(&product.categories);
                let collection_ids = Self::collection_ids(tx, account, store, &paths, cache).await?;
                sqlx::query("DELETE FROM product_collections WHERE product_id = $1")
                    .bind(product_id)
                    .execute(&mut **tx)
                    .await?;
                for collection_id in collection_ids {
                    sqlx::query(
                        "INSERT INTO product_collections (product_id, collection_id) VALUES ($1, $2) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(product_id)
                    .bind(collection_id)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }

            async fn fetch_plan<'e, E>(executor: E, plan_id: &str) -> $crate::Result<domain::Plan>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query_as::<_, $crate::rows::PlanRow>(
                    "SELECT id, name, price_monthly_cents, monthly_credits, standalone_monthly_credits FROM plans WHERE id = $1",
                )
                .bind(plan_id)
                .fetch_optional(executor)
                .await?
                .map(domain::Plan::from)
                .ok_or_else(|| $crate::StorageError::not_found("plan"))
            }

            async fn fetch_account<'e, E>(
                executor: E,
                account_id: &str,
            ) -> $crate::Result<domain::Account>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let sql = format!(
                    "SELECT {} FROM accounts WHERE id = $1",
                    $crate::rows::ACCOUNT_COLUMNS
                );
                sqlx::query_as::<_, $crate::rows::AccountRow>(&sql)
                    .bind(account_id)
                    .fetch_optional(executor)
                    .await?
                    .ok_or_else(|| $crate::StorageError::not_found("account"))?
                    .try_into()
            }

            async fn fetch_user<'e, E>(
                executor: E,
                column: &str,
                value: &str,
            ) -> $crate::Result<Option<domain::User>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let sql = format!(
                    "SELECT {} FROM users WHERE {column} = $1",
                    $crate::rows::USER_COLUMNS
                );
                sqlx::query_as::<_, $crate::rows::UserRow>(&sql)
                    .bind(value)
                    .fetch_optional(executor)
                    .await?
                    .map(domain::User::try_from)
                    .transpose()
            }

            async fn fetch_store_by_external_id<'e, E>(
                executor: E,
                platform: domain::Platform,
                external_id: &str,
            ) -> $crate::Result<Option<domain::Store>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let sql = format!(
                    "SELECT {} FROM stores WHERE platform = $1 AND external_id = $2",
                    $crate::rows::STORE_COLUMNS
                );
                sqlx::query_as::<_, $crate::rows::StoreRow>(&sql)
                    .bind(platform.as_str())
                    .bind(external_id)
                    .fetch_optional(executor)
                    .await?
                    .map(domain::Store::try_from)
                    .transpose()
            }

            /// Ensures the collection of each category path exists; returns their ids.
            async fn collection_ids(
                tx: &mut sqlx::Transaction<'_, $db>,
                account_id: &str,
                store_id: &str,
                paths: &[String],
                cache: &mut std::collections::HashMap<String, String>,
            ) -> $crate::Result<Vec<String>> {
                let mut ids = Vec::with_capacity(paths.len());
                for path in paths {
                    if let Some(id) = cache.get(path) {
                        ids.push(id.clone());
                        continue;
                    }
                    let name = path.rsplit('>').next().unwrap_or(path).trim().to_owned();
                    sqlx::query(
                        "INSERT INTO collections (id, account_id, store_id, external_id, name, path) \
                         VALUES ($1, $2, $3, $4, $5, $4) ON CONFLICT (store_id, external_id) DO NOTHING",
                    )
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(account_id)
                    .bind(store_id)
                    .bind(path)
                    .bind(&name)
                    .execute(&mut **tx)
                    .await?;
                    let id: String = sqlx::query_scalar(
                        "SELECT id FROM collections WHERE store_id = $1 AND external_id = $2",
                    )
                    .bind(store_id)
                    .bind(path)
                    .fetch_one(&mut **tx)
                    .await?;
                    cache.insert(path.clone(), id.clone());
                    ids.push(id);
                }
                Ok(ids)
            }

            fn push_product_filters<'q>(
                builder: &mut sqlx::QueryBuilder<'q, $db>,
                account_id: uuid::Uuid,
                query: &'q $crate::ProductQuery,
            ) {
                builder.push(" WHERE account_id = ").push_bind(account_id.to_string());
                if let Some(store_id) = query.store_id {
                    builder.push(" AND store_id = ").push_bind(store_id.to_string());
                }
                if let Some(search) = query.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    builder
                        .push(" AND search_text LIKE ")
                        .push_bind($crate::shared::contains_pattern(search))
                        .push(" ESCAPE '\\'");
                }
                if let Some(collection_id) = query.collection_id {
                    builder
                        .push(" AND id IN (SELECT product_id FROM product_collections WHERE collection_id = ")
                        .push_bind(collection_id.to_string())
                        .push(")");
                }
            }

            async fn user_with_account(
                &self,
                user_id: &str,
            ) -> $crate::Result<(domain::User, domain::Account)> {
                let user = Self::fetch_user(self.pool(), "id", user_id)
                    .await?
                    .ok_or_else(|| $crate::StorageError::not_found("user"))?;
                let account = Self::fetch_account(self.pool(), &user.account_id.to_string()).await?;
                Ok((user, account))
            }
        }

        #[async_trait::async_trait]
        impl $crate::Storage for $storage {
            fn backend(&self) -> $crate::Backend {
                $backend
            }

            async fn migrate(&self) -> $crate::Result<()> {
                self.run_migrations().await
            }

            async fn ping(&self) -> $crate::Result<()> {
                sqlx::query("SELECT 1").execute(self.pool()).await?;
                Ok(())
            }

            async fn sync_plans(&self, plans: &[domain::Plan]) -> $crate::Result<()> {
                let now = $crate::rows::millis(chrono::Utc::now());
                let mut tx = self.begin_write().await?;
                for plan in plans {
                    sqlx::query(
                        "INSERT INTO plans (id, name, price_monthly_cents, monthly_credits, \
                         standalone_monthly_credits, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                         price_monthly_cents = excluded.price_monthly_cents, \
                         monthly_credits = excluded.monthly_credits, \
                         standalone_monthly_credits = excluded.standalone_monthly_credits, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(&plan.id)
                    .bind(&plan.name)
                    .bind(plan.price_monthly_cents)
                    .bind(plan.monthly_credits)
                    .bind(plan.standalone_monthly_credits)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_plans(&self) -> $crate::Result<Vec<domain::Plan>> {
                let rows = sqlx::query_as::<_, $crate::rows::PlanRow>(
                    "SELECT id, name, price_monthly_cents, monthly_credits, standalone_monthly_credits FROM plans \
                     ORDER BY price_monthly_cents, id",
                )
                .fetch_all(self.pool())
                .await?;
                Ok(rows.into_iter().map(domain::Plan::from).collect())
            }

            async fn get_plan(&self, plan_id: &str) -> $crate::Result<domain::Plan> {
                Self::fetch_plan(self.pool(), plan_id).await
            }

            async fn register_user(
                &self,
                new_user: $crate::NewUser,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<(domain::User, domain::Account)> {
                $crate::shared::storable("email", &new_user.email)?;
                $crate::shared::storable("accountName", &new_user.account_name)?;
                let mut tx = self.begin_write().await?;
                let plan = Self::fetch_plan(&mut *tx, domain::plan::FREE_PLAN_ID).await?;
                let account = Self::insert_account(
                    &mut tx,
                    &new_user.account_name,
                    &plan,
                    domain::BillingSource::None,
                    false,
                    now,
                )
                .await?;
                let user = domain::User {
                    id: uuid::Uuid::now_v7(),
                    account_id: account.id,
                    email: new_user.email,
                    password_hash: Some(new_user.password_hash),
                    created_at: account.created_at,
                };
                let inserted = sqlx::query(
                    "INSERT INTO users (id, account_id, email, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(user.id.to_string())
                .bind(account.id.to_string())
                .bind(&user.email)
                .bind(&user.password_hash)
                .bind($crate::rows::millis(now))
                .execute(&mut *tx)
                .await;
                match inserted {
                    Err(err) if $crate::shared::is_unique_violation(&err) => {
                        return Err($crate::StorageError::EmailTaken)
                    }
                    other => other?,
                };
                tx.commit().await?;
                Ok((user, account))
            }

            async fn find_user_by_email(&self, email: &str) -> $crate::Result<Option<domain::User>> {
                $crate::shared::storable("email", email)?;
                Self::fetch_user(self.pool(), "email", email).await
            }

            async fn get_user(
                &self,
                account_id: uuid::Uuid,
                user_id: uuid::Uuid,
            ) -> $crate::Result<domain::User> {
                Self::fetch_user(self.pool(), "id", &user_id.to_string())
                    .await?
                    .filter(|user| user.account_id == account_id)
                    .ok_or_else(|| $crate::StorageError::not_found("user"))
            }

            async fn get_account(&self, account_id: uuid::Uuid) -> $crate::Result<domain::Account> {
                Self::fetch_account(self.pool(), &account_id.to_string()).await
            }

            async fn rename_account(
                &self,
                account_id: uuid::Uuid,
                name: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<domain::Account> {
                $crate::shared::storable("name", name)?;
                let updated = sqlx::query("UPDATE accounts SET name = $2, updated_at = $3 WHERE id = $1")
                    .bind(account_id.to_string())
                    .bind(name)
                    .bind($crate::rows::millis(now))
                    .execute(self.pool())
                    .await?;
                if updated.rows_affected() == 0 {
                    return Err($crate::StorageError::not_found("account"));
                }
                Self::fetch_account(self.pool(), &account_id.to_string()).await
            }

            async fn ensure_demo_account(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<(domain::User, domain::Account)> {
                if let Some(user) =
                    Self::fetch_user(self.pool(), "email", $crate::shared::DEMO_USER_EMAIL).await?
                {
                    let account = Self::fetch_account(self.pool(), &user.account_id.to_string()).await?;
                    return Ok((user, account));
                }
                let mut tx = self.begin_write().await?;
                let plan = Self::fetch_plan(&mut *tx, domain::plan::FREE_PLAN_ID).await?;
                let account = Self::insert_account(
                    &mut tx,
                    "Demo store",
                    &plan,
                    domain::BillingSource::None,
                    true,
                    now,
                )
                .await;
                let account = match account {
                    Err($crate::StorageError::Database(err))
                        if $crate::shared::is_unique_violation(&err) =>
                    {
                        drop(tx);
                        let user = Self::fetch_user(self.pool(), "email", $crate::shared::DEMO_USER_EMAIL)
                            .await?
                            .ok_or_else(|| $crate::StorageError::not_found("demo user"))?;
                        let account =
                            Self::fetch_account(self.pool(), &user.account_id.to_string()).await?;
                        return Ok((user, account));
                    }
                    other => other?,
                };
                let user = domain::User {
                    id: uuid::Uuid::now_v7(),
                    account_id: account.id,
                    email: $crate::shared::DEMO_USER_EMAIL.to_owned(),
                    password_hash: None,
                    created_at: account.created_at,
                };
                sqlx::query(
                    "INSERT INTO users (id, account_id, email, password_hash, created_at) \
                     VALUES ($1, $2, $3, NULL, $4)",
                )
                .bind(user.id.to_string())
                .bind(account.id.to_string())
                .bind(&user.email)
                .bind($crate::rows::millis(now))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok((user, account))
            }

            async fn provision_wix_instance(
                &self,
                instance_id: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::Provisioned> {
                $crate::shared::storable("instanceId", instance_id)?;
                if let Some(store) =
                    Self::fetch_store_by_external_id(self.pool(), domain::Platform::Wix, instance_id)
                        .await?
                {
                    let account =
                        Self::fetch_account(self.pool(), &store.account_id.to_string()).await?;
                    return Ok($crate::Provisioned { account, store, created: false });
                }
                let mut tx = self.begin_write().await?;
                let plan = Self::fetch_plan(&mut *tx, domain::plan::FREE_PLAN_ID).await?;
                let account = Self::insert_account(
                    &mut tx,
                    "Wix store",
                    &plan,
                    domain::BillingSource::Wix,
                    false,
                    now,
                )
                .await?;
                let store = domain::Store {
                    id: uuid::Uuid::now_v7(),
                    account_id: account.id,
                    platform: domain::Platform::Wix,
                    external_id: instance_id.to_owned(),
                    name: "Wix store".to_owned(),
                    currency: "USD".to_owned(),
                    created_at: account.created_at,
                };
                let inserted = sqlx::query(
                    "INSERT INTO stores (id, account_id, platform, external_id, name, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) \
                     ON CONFLICT (platform, external_id) DO NOTHING",
                )
                .bind(store.id.to_string())
                .bind(account.id.to_string())
                .bind(store.platform.as_str())
                .bind(&store.external_id)
                .bind(&store.name)
                .bind($crate::rows::millis(now))
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    // Another request provisioned this instance first: keep theirs.
                    tx.rollback().await?;
                    let store = Self::fetch_store_by_external_id(
                        self.pool(),
                        domain::Platform::Wix,
                        instance_id,
                    )
                    .await?
                    .ok_or_else(|| $crate::StorageError::not_found("store"))?;
                    let account =
                        Self::fetch_account(self.pool(), &store.account_id.to_string()).await?;
                    return Ok($crate::Provisioned { account, store, created: false });
                }
                tx.commit().await?;
                Ok($crate::Provisioned { account, store, created: true })
            }

            async fn insert_refresh_token(
                &self,
                token: $crate::NewRefreshToken,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (id, family_id, user_id, account_id, token_hash, \
                     expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(token.id.to_string())
                .bind(token.family_id.to_string())
                .bind(token.user_id.to_string())
                .bind(token.account_id.to_string())
                .bind(&token.token_hash)
                .bind($crate::rows::millis(token.expires_at))
                .bind($crate::rows::millis(now))
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn rotate_refresh_token(
                &self,
                presented_hash: &str,
                replacement: $crate::TokenReplacement,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::RefreshOutcome> {
                let now_ms = $crate::rows::millis(now);
                let mut tx = self.begin_write().await?;
                // Spending is a conditional update, so two concurrent uses of one token
                // cannot both succeed: the loser sees zero rows and is treated as reuse.
                let spent = sqlx::query(
                    "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 \
                     AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
                )
                .bind(presented_hash)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                let row = sqlx::query_as::<_, $crate::rows::RefreshTokenRow>(
                    "SELECT user_id, account_id, family_id, expires_at, rotated_at, revoked_at, \
                     revoked_reason FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(presented_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Ok($crate::RefreshOutcome::Unknown);
                };
                if !spent {
                    if row.revoked_reason.as_deref() == Some("logout") {
                        return Ok($crate::RefreshOutcome::SessionEnded);
                    }
                    let already_used = row.revoked_at.is_some() || row.rotated_at.is_some();
                    if !already_used && row.expires_at <= now_ms {
                        return Ok($crate::RefreshOutcome::Expired);
                    }
                    sqlx::query(
                        "UPDATE refresh_tokens SET revoked_at = $2, revoked_reason = 'reuse' \
                         WHERE family_id = $1 AND revoked_at IS NULL",
                    )
                    .bind(&row.family_id)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    tracing::warn!(
                        token.family_id = %row.family_id,
                        "refresh token reused; token family revoked"
                    );
                    return Ok($crate::RefreshOutcome::Reused);
                }
                sqlx::query(
                    "INSERT INTO refresh_tokens (id, family_id, user_id, account_id, token_hash, \
                     expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(replacement.id.to_string())
                .bind(&row.family_id)
                .bind(&row.user_id)
                .bind(&row.account_id)
                .bind(&replacement.token_hash)
                .bind($crate::rows::millis(replacement.expires_at))
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                let (user, account) = self.user_with_account(&row.user_id).await?;
                Ok($crate::RefreshOutcome::Rotated {
                    user: Box::new(user),
                    account: Box::new(account),
                    family_id: $crate::rows::uuid(&row.family_id)?,
                })
            }

            async fn revoke_refresh_family(
                &self,
                user_id: uuid::Uuid,
                presented_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let revoked = sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $3, revoked_reason = 'logout' \
                     WHERE revoked_at IS NULL AND family_id = \
                     (SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2)",
                )
                .bind(presented_hash)
                .bind(user_id.to_string())
                .bind($crate::rows::millis(now))
                .execute(self.pool())
                .await?;
                Ok(revoked.rows_affected() > 0)
            }

            async fn session_is_active(
                &self,
                account_id: uuid::Uuid,
                user_id: uuid::Uuid,
                family_id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                // The family's current token (not yet rotated) is the session: it exists
                // while nobody signed out, no reuse revoked it, it has not expired, and its
                // user and account were not deleted (the rows cascade).
                let found = sqlx::query(
                    "SELECT 1 FROM refresh_tokens WHERE family_id = $1 AND user_id = $2 \
                     AND account_id = $3 AND revoked_at IS NULL AND rotated_at IS NULL \
                     AND expires_at > $4 LIMIT 1",
                )
                .bind(family_id.to_string())
                .bind(user_id.to_string())
                .bind(account_id.to_string())
                .bind($crate::rows::millis(now))
                .fetch_optional(self.pool())
                .await?;
                Ok(found.is_some())
            }

            async fn create_login_link(
                &self,
                link: $crate::NewLoginLink,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO login_links (token_hash, user_id, account_id, expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&link.token_hash)
                .bind(link.user_id.to_string())
                .bind(link.account_id.to_string())
                .bind($crate::rows::millis(link.expires_at))
                .bind($crate::rows::millis(now))
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn consume_login_link(
                &self,
                token_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Option<(domain::User, domain::Account)>> {
                let mut tx = self.begin_write().await?;
                let consumed = sqlx::query(
                    "UPDATE login_links SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(token_hash)
                .bind($crate::rows::millis(now))
                .execute(&mut *tx)
                .await?;
                if consumed.rows_affected() == 0 {
                    return Ok(None);
                }
                let user_id: String =
                    sqlx::query_scalar("SELECT user_id FROM login_links WHERE token_hash = $1")
                        .bind(token_hash)
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await?;
                self.user_with_account(&user_id).await.map(Some)
            }

            async fn purge_expired_sessions(
                &self,
                expired_before: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<u64> {
                let cutoff = $crate::rows::millis(expired_before);
                let mut tx = self.begin_write().await?;
                let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let links = sqlx::query("DELETE FROM login_links WHERE expires_at < $1")
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(tokens + links)
            }

            async fn list_stores(&self, account_id: uuid::Uuid) -> $crate::Result<Vec<domain::Store>> {
                let sql = format!(
                    "SELECT {} FROM stores WHERE account_id = $1 ORDER BY created_at, id",
                    $crate::rows::STORE_COLUMNS
                );
                sqlx::query_as::<_, $crate::rows::StoreRow>(&sql)
                    .bind(account_id.to_string())
                    .fetch_all(self.pool())
                    .await?
                    .into_iter()
                    .map(domain::Store::try_from)
                    .collect()
            }

            async fn get_store(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
            ) -> $crate::Result<domain::Store> {
                let sql = format!(
                    "SELECT {} FROM stores WHERE account_id = $1 AND id = $2",
                    $crate::rows::STORE_COLUMNS
                );
                sqlx::query_as::<_, $crate::rows::StoreRow>(&sql)
                    .bind(account_id.to_string())
                    .bind(store_id.to_string())
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or_else(|| $crate::StorageError::not_found("store"))?
                    .try_into()
            }

            async fn find_store_for_operator(
                &self,
                store_id: uuid::Uuid,
            ) -> $crate::Result<domain::Store> {
                let sql = format!("SELECT {} FROM stores WHERE id = $1", $crate::rows::STORE_COLUMNS);
                sqlx::query_as::<_, $crate::rows::StoreRow>(&sql)
                    .bind(store_id.to_string())
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or_else(|| $crate::StorageError::not_found("store"))?
                    .try_into()
            }

            async fn create_store(
                &self,
                account_id: uuid::Uuid,
                new_store: $crate::NewStore,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<domain::Store> {
                $crate::shared::storable("externalId", &new_store.external_id)?;
                $crate::shared::storable("name", &new_store.name)?;
                $crate::shared::storable("currency", &new_store.currency)?;
                let store = domain::Store {
                    id: uuid::Uuid::now_v7(),
                    account_id,
                    platform: new_store.platform,
                    external_id: new_store.external_id.clone(),
                    name: new_store.name.clone(),
                    currency: new_store.currency.clone(),
                    created_at: $crate::rows::instant($crate::rows::millis(now))?,
                };
                let inserted = sqlx::query(
                    "INSERT INTO stores (id, account_id, platform, external_id, name, currency, \
                     credentials_encrypted, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(store.id.to_string())
                .bind(account_id.to_string())
                .bind(store.platform.as_str())
                .bind(&store.external_id)
                .bind(&store.name)
                .bind(&store.currency)
                .bind(&new_store.credentials_encrypted)
                .bind($crate::rows::millis(now))
                .execute(self.pool())
                .await;
                match inserted {
                    Err(err) if $crate::shared::is_unique_violation(&err) => {
                        Err($crate::StorageError::StoreExists)
                    }
                    Err(err) => Err(err.into()),
                    Ok(_) => Ok(store),
                }
            }

            async fn store_credentials(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
            ) -> $crate::Result<Option<String>> {
                let row: Option<(Option<String>,)> = sqlx::query_as(
                    "SELECT credentials_encrypted FROM stores WHERE id = $1 AND account_id = $2",
                )
                .bind(store_id.to_string())
                .bind(account_id.to_string())
                .fetch_optional(self.pool())
                .await?;
                row.map(|(credentials,)| credentials)
                    .ok_or_else(|| $crate::StorageError::not_found("store"))
            }

            async fn remove_products_except(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
                keep: &[String],
            ) -> $crate::Result<u64> {
                for external_id in keep {
                    $crate::shared::storable("externalId", external_id)?;
                }
                let keep: std::collections::HashSet<&str> = keep.iter().map(String::as_str).collect();
                let mut tx = self.begin_write().await?;
                let existing: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, external_id FROM products WHERE store_id = $1 AND account_id = $2",
                )
                .bind(store_id.to_string())
                .bind(account_id.to_string())
                .fetch_all(&mut *tx)
                .await?;
                let mut removed = 0;
                for (id, external_id) in existing {
                    if keep.contains(external_id.as_str()) {
                        continue;
                    }
                    removed += sqlx::query("DELETE FROM products WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(removed)
            }

            async fn record_sync_batch(
                &self,
                account_id: uuid::Uuid,
                batch: &$crate::SyncBatch,
            ) -> $crate::Result<()> {
                $crate::shared::storable("trigger", &batch.trigger)?;
                $crate::shared::storable("kind", &batch.kind)?;
                sqlx::query(
                    "INSERT INTO sync_batches (id, account_id, store_id, trigger, kind, status, fetched, \
                     created, updated, unchanged, deleted, error, started_at, duration_ms) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
                     WHERE EXISTS (SELECT 1 FROM stores WHERE id = $3 AND account_id = $2)",
                )
                .bind(batch.id.to_string())
                .bind(account_id.to_string())
                .bind(batch.store_id.to_string())
                .bind(&batch.trigger)
                .bind(&batch.kind)
                .bind(if batch.succeeded { "succeeded" } else { "failed" })
                .bind(batch.fetched)
                .bind(batch.created)
                .bind(batch.updated)
                .bind(batch.unchanged)
                .bind(batch.deleted)
                .bind(batch.error.as_deref().map(|error| $crate::shared::diagnostic(error).into_owned()))
                .bind($crate::rows::millis(batch.started_at))
                .bind(batch.duration_ms)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn list_sync_batches(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::SyncBatch>> {
                let sql = format!(
                    "SELECT {} FROM sync_batches WHERE account_id = $1 AND store_id = $2 \
                     ORDER BY started_at DESC, id DESC LIMIT $3",
                    $crate::rows::SYNC_BATCH_COLUMNS
                );
                sqlx::query_as::<_, $crate::rows::SyncBatchRow>(&sql)
                    .bind(account_id.to_string())
                    .bind(store_id.to_string())
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
                    .into_iter()
                    .map($crate::SyncBatch::try_from)
                    .collect()
            }

            async fn delete_store(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
            ) -> $crate::Result<()> {
                let deleted = sqlx::query("DELETE FROM stores WHERE id = $1 AND account_id = $2")
                    .bind(store_id.to_string())
                    .bind(account_id.to_string())
                    .execute(self.pool())
                    .await?;
                if deleted.rows_affected() == 0 {
                    return Err($crate::StorageError::not_found("store"));
                }
                Ok(())
            }

            async fn upsert_products(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
                products: &[domain::SourceProduct],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::UpsertSummary> {
                self.write_products(account_id, store_id, products, None, now).await
            }

            async fn import_products(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
                products: &[domain::SourceProduct],
                max_products: u64,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::UpsertSummary> {
                self.write_products(account_id, store_id, products, Some(max_products), now)
                    .await
            }

            async fn list_products(
                &self,
                account_id: uuid::Uuid,
                query: &$crate::ProductQuery,
            ) -> $crate::Result<$crate::ProductPage> {
                $crate::shared::storable_opt("q", query.search.as_deref())?;
                let limit = query.limit.clamp(0, 200);
                let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM products");
                Self::push_product_filters(&mut count, account_id, query);
                let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await?;

                let mut page = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM products",
                    $crate::rows::PRODUCT_SUMMARY_COLUMNS
                ));
                Self::push_product_filters(&mut page, account_id, query);
                if let Some(after) = query.after {
                    page.push(" AND id > ").push_bind(after.to_string());
                }
                page.push(" ORDER BY id LIMIT ").push_bind(limit + 1);
                let mut items = page
                    .build_query_as::<$crate::rows::ProductSummaryRow>()
                    .fetch_all(self.pool())
                    .await?
                    .into_iter()
                    .map($crate::ProductSummary::try_from)
                    .collect::<$crate::Result<Vec<_>>>()?;
                let next_cursor = $crate::rows::cut_page(&mut items, limit, |item| item.id);
                Ok($crate::ProductPage { items, next_cursor, total })
            }

            async fn get_product(
                &self,
                account_id: uuid::Uuid,
                product_id: uuid::Uuid,
            ) -> $crate::Result<$crate::StoredProduct> {
                let row = sqlx::query_as::<_, $crate::rows::ProductRow>(
                    "SELECT id, account_id, store_id, source, checksum, revision, created_at, updated_at \
                     FROM products WHERE id = $1 AND account_id = $2",
                )
                .bind(product_id.to_string())
                .bind(account_id.to_string())
                .fetch_optional(self.pool())
                .await?
                .ok_or_else(|| $crate::StorageError::not_found("product"))?;
                let collection_ids: Vec<String> = sqlx::query_scalar(
                    "SELECT collection_id FROM product_collections WHERE product_id = $1 ORDER BY collection_id",
                )
                .bind(&row.id)
                .fetch_all(self.pool())
                .await?;
                row.into_product(collection_ids)
            }

            async fn store_products(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
            ) -> $crate::Result<Vec<domain::SourceProduct>> {
                let sources: Vec<String> = sqlx::query_scalar(
                    "SELECT source FROM products WHERE account_id = $1 AND store_id = $2 ORDER BY id",
                )
                .bind(account_id.to_string())
                .bind(store_id.to_string())
                .fetch_all(self.pool())
                .await?;
                sources
                    .iter()
                    .map(|source| {
                        serde_json::from_str(source)
                            .map_err(|err| $crate::StorageError::Corrupt(format!("product source: {err}")))
                    })
                    .collect()
            }

            async fn list_collections(
                &self,
                account_id: uuid::Uuid,
                store_id: Option<uuid::Uuid>,
            ) -> $crate::Result<Vec<$crate::Collection>> {
                let mut builder = sqlx::QueryBuilder::<$db>::new(
                    "SELECT c.id, c.store_id, c.name, c.path, COUNT(pc.product_id) AS product_count \
                     FROM collections c LEFT JOIN product_collections pc ON pc.collection_id = c.id \
                     WHERE c.account_id = ",
                );
                builder.push_bind(account_id.to_string());
                if let Some(store_id) = store_id {
                    builder.push(" AND c.store_id = ").push_bind(store_id.to_string());
                }
                builder.push(" GROUP BY c.id, c.store_id, c.name, c.path ORDER BY c.path, c.id");
                builder
                    .build_query_as::<$crate::rows::CollectionRow>()
                    .fetch_all(self.pool())
                    .await?
                    .into_iter()
                    .map($crate::Collection::try_from)
                    .collect()
            }

            async fn find_product_by_external_id(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
                external_id: &str,
            ) -> $crate::Result<Option<$crate::StoredProduct>> {
                $crate::shared::storable("externalId", external_id)?;
                let id: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM products WHERE account_id = $1 AND store_id = $2 AND external_id = $3",
                )
                .bind(account_id.to_string())
                .bind(store_id.to_string())
                .bind(external_id)
                .fetch_optional(self.pool())
                .await?;
                match id {
                    Some(id) => {
                        let id = uuid::Uuid::parse_str(&id)
                            .map_err(|_| $crate::StorageError::Corrupt(format!("bad id {id:?}")))?;
                        Ok(Some(self.get_product(account_id, id).await?))
                    }
                    None => Ok(None),
                }
            }

            async fn replace_product_source(
                &self,
                account_id: uuid::Uuid,
                product_id: uuid::Uuid,
                expected_revision: Option<i64>,
                source: &domain::SourceProduct,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::StoredProduct> {
                $crate::shared::storable_product(source)?;
                let mut tx = self.begin_write().await?;
                let current: Option<(String, String, i64, String)> = sqlx::query_as(
                    "SELECT store_id, external_id, revision, checksum FROM products \
                     WHERE id = $1 AND account_id = $2",
                )
                .bind(product_id.to_string())
                .bind(account_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let Some((store, external_id, revision, stored_checksum)) = current else {
                    return Err($crate::StorageError::not_found("product"));
                };
                if let Some(expected) = expected_revision {
                    if expected != revision {
                        return Err($crate::StorageError::RevisionMismatch {
                            expected,
                            current: revision,
                        });
                    }
                }
                let mut source = source.clone();
                // The platform id is the row's identity; a caller cannot move a product.
                source.external_id = external_id;
                let json = serde_json::to_string(&source)
                    .map_err(|err| $crate::StorageError::Corrupt(err.to_string()))?;
                let checksum = $crate::shared::checksum(&json);
                if checksum != stored_checksum {
                    let id = product_id.to_string();
                    Self::rewrite_product(&mut tx, &id, &source, &json, &checksum, $crate::rows::millis(now))
                        .await?;
                    let mut cache = std::collections::HashMap::new();
                    Self::link_collections(
                        &mut tx,
                        &account_id.to_string(),
                        &store,
                        &id,
                        &source,
                        &mut cache,
                    )
                    .await?;
                }
                tx.commit().await?;
                self.get_product(account_id, product_id).await
            }

            async fn remove_product(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
                external_id: &str,
            ) -> $crate::Result<bool> {
                $crate::shared::storable("externalId", external_id)?;
                let removed = sqlx::query(
                    "DELETE FROM products WHERE account_id = $1 AND store_id = $2 AND external_id = $3",
                )
                .bind(account_id.to_string())
                .bind(store_id.to_string())
                .bind(external_id)
                .execute(self.pool())
                .await?
                .rows_affected();
                Ok(removed > 0)
            }

            async fn store_sync_state(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
            ) -> $crate::Result<$crate::StoreSyncState> {
                let row: Option<(bool, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT auto_sync, synced_through, sync_scheduled_at FROM stores \
                     WHERE id = $1 AND account_id = $2",
                )
                .bind(store_id.to_string())
                .bind(account_id.to_string())
                .fetch_optional(self.pool())
                .await?;
                let (auto_sync, synced_through, scheduled) =
                    row.ok_or_else(|| $crate::StorageError::not_found("store"))?;
                Ok($crate::StoreSyncState {
                    auto_sync,
                    synced_through: synced_through.map($crate::rows::instant).transpose()?,
                    sync_scheduled_at: scheduled.map($crate::rows::instant).transpose()?,
                })
            }

            async fn set_auto_sync(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
                enabled: bool,
            ) -> $crate::Result<()> {
                let changed = sqlx::query("UPDATE stores SET auto_sync = $3 WHERE id = $1 AND account_id = $2")
                    .bind(store_id.to_string())
                    .bind(account_id.to_string())
                    .bind(enabled)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                if changed == 0 {
                    return Err($crate::StorageError::not_found("store"));
                }
                Ok(())
            }

            async fn mark_synced_through(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
                through: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                sqlx::query(
                    "UPDATE stores SET synced_through = $3 WHERE id = $1 AND account_id = $2 \
                     AND (synced_through IS NULL OR synced_through < $3)",
                )
                .bind(store_id.to_string())
                .bind(account_id.to_string())
                .bind($crate::rows::millis(through))
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn set_webhook_secret(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
                sealed_secret: Option<&str>,
            ) -> $crate::Result<()> {
                let changed = sqlx::query(
                    "UPDATE stores SET webhook_secret_encrypted = $3 WHERE id = $1 AND account_id = $2",
                )
                .bind(store_id.to_string())
                .bind(account_id.to_string())
                .bind(sealed_secret)
                .execute(self.pool())
                .await?
                .rows_affected();
                if changed == 0 {
                    return Err($crate::StorageError::not_found("store"));
                }
                Ok(())
            }

            async fn webhook_store(
                &self,
                store_id: uuid::Uuid,
            ) -> $crate::Result<Option<(domain::Store, Option<String>)>> {
                let store = match self.find_store_for_operator(store_id).await {
                    Ok(store) => store,
                    Err($crate::StorageError::NotFound { .. }) => return Ok(None),
                    Err(err) => return Err(err),
                };
                let secret: Option<String> =
                    sqlx::query_scalar("SELECT webhook_secret_encrypted FROM stores WHERE id = $1")
                        .bind(store_id.to_string())
                        .fetch_optional(self.pool())
                        .await?
                        .flatten();
                Ok(Some((store, secret)))
            }

            async fn record_webhook_event(
                &self,
                event: $crate::NewWebhookEvent,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                for (field, value) in [
                    ("provider", &event.provider),
                    ("dedupeKey", &event.dedupe_key),
                    ("eventType", &event.event_type),
                    ("payload", &event.payload),
                ] {
                    $crate::shared::storable(field, value)?;
                }
                let inserted = sqlx::query(
                    "INSERT INTO webhook_events (id, provider, dedupe_key, event_type, account_id, \
                     payload, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (provider, dedupe_key) DO NOTHING",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&event.provider)
                .bind(&event.dedupe_key)
                .bind(&event.event_type)
                .bind(event.account_id.map(|id| id.to_string()))
                .bind(&event.payload)
                .bind($crate::rows::millis(now))
                .execute(self.pool())
                .await?
                .rows_affected();
                Ok(inserted > 0)
            }

            async fn enqueue_sync(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
                request: $crate::NewSyncRequest,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::SyncRequest> {
                $crate::shared::storable("trigger", &request.trigger)?;
                $crate::shared::storable_opt("productExternalId", request.product_external_id.as_deref())?;
                let product = request.product_external_id.clone().unwrap_or_default();
                let mut tx = self.begin_write().await?;
                Self::ensure_store_in_account(&mut tx, &account_id.to_string(), &store_id.to_string())
                    .await?;
                let now_ms = $crate::rows::millis(now);
                sqlx::query(
                    "INSERT INTO sync_requests (id, account_id, store_id, kind, trigger, \
                     product_external_id, status, attempts, not_before, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) \
                     ON CONFLICT (store_id, kind, product_external_id) WHERE status = 'pending' DO NOTHING",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(account_id.to_string())
                .bind(store_id.to_string())
                .bind(request.kind.as_str())
                .bind(&request.trigger)
                .bind(&product)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                let sql = format!(
                    "SELECT {} FROM sync_requests WHERE store_id = $1 AND kind = $2 \
                     AND product_external_id = $3 AND status = 'pending'",
                    $crate::rows::SYNC_REQUEST_COLUMNS
                );
                let row = sqlx::query_as::<_, $crate::rows::SyncRequestRow>(&sql)
                    .bind(store_id.to_string())
                    .bind(request.kind.as_str())
                    .bind(&product)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                row.try_into()
            }

            async fn claim_sync_request(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease: chrono::Duration,
            ) -> $crate::Result<Option<$crate::SyncRequest>> {
                let now_ms = $crate::rows::millis(now);
                let due = "((r.status = 'pending' AND r.not_before <= $1) \
                           OR (r.status = 'running' AND r.lease_expires_at < $1))";
                // A store's syncs run one at a time: its products are written in one order.
                let sql = format!(
                    "SELECT r.id FROM sync_requests r WHERE {due} AND NOT EXISTS ( \
                     SELECT 1 FROM sync_requests o WHERE o.store_id = r.store_id AND o.id <> r.id \
                     AND o.status = 'running' AND o.lease_expires_at >= $1) \
                     ORDER BY r.not_before, r.id LIMIT 8"
                );
                let candidates: Vec<String> = sqlx::query_scalar(&sql)
                    .bind(now_ms)
                    .fetch_all(self.pool())
                    .await?;
                for id in candidates {
                    // The claim re-checks due-ness itself, so of two workers that picked the
                    // same candidate exactly one wins (a row lock on PostgreSQL, the write
                    // lock on SQLite).
                    let claimed = sqlx::query(&format!(
                        "UPDATE sync_requests SET status = 'running', attempts = attempts + 1, \
                         lease_expires_at = $2 WHERE id = $3 AND {}",
                        due.replace("r.", "")
                    ))
                    .bind(now_ms)
                    .bind($crate::rows::millis(now + lease))
                    .bind(&id)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                    if claimed == 1 {
                        let sql = format!(
                            "SELECT {} FROM sync_requests WHERE id = $1",
                            $crate::rows::SYNC_REQUEST_COLUMNS
                        );
                        let row = sqlx::query_as::<_, $crate::rows::SyncRequestRow>(&sql)
                            .bind(&id)
                            .fetch_one(self.pool())
                            .await?;
                        return Ok(Some(row.try_into()?));
                    }
                }
                Ok(None)
            }

            async fn extend_sync_lease(
                &self,
                request_id: uuid::Uuid,
                attempt: i64,
                until: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let changed = sqlx::query(
                    "UPDATE sync_requests SET lease_expires_at = $3 \
                     WHERE id = $1 AND attempts = $2 AND status = 'running'",
                )
                .bind(request_id.to_string())
                .bind(attempt)
                .bind($crate::rows::millis(until))
                .execute(self.pool())
                .await?
                .rows_affected();
                Ok(changed == 1)
            }

            async fn finish_sync_request(
                &self,
                request_id: uuid::Uuid,
                attempt: i64,
                outcome: $crate::SyncOutcome,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let now_ms = $crate::rows::millis(now);
                let query = match &outcome {
                    $crate::SyncOutcome::Done { batch_id } => sqlx::query(
                        "UPDATE sync_requests SET status = 'done', lease_expires_at = NULL, \
                         finished_at = $3, batch_id = $4, error = NULL \
                         WHERE id = $1 AND attempts = $2 AND status = 'running'",
                    )
                    .bind(request_id.to_string())
                    .bind(attempt)
                    .bind(now_ms)
                    .bind(batch_id.to_string()),
                    $crate::SyncOutcome::Failed { batch_id, error, retry_at: Some(retry_at) } => {
                        sqlx::query(
                            "UPDATE sync_requests SET status = 'pending', lease_expires_at = NULL, \
                             not_before = $3, batch_id = $4, error = $5 \
                             WHERE id = $1 AND attempts = $2 AND status = 'running'",
                        )
                        .bind(request_id.to_string())
                        .bind(attempt)
                        .bind($crate::rows::millis(*retry_at))
                        .bind(batch_id.map(|id| id.to_string()))
                        .bind($crate::shared::diagnostic(&error).into_owned())
                    }
                    $crate::SyncOutcome::Failed { batch_id, error, retry_at: None } => sqlx::query(
                        "UPDATE sync_requests SET status = 'failed', lease_expires_at = NULL, \
                         finished_at = $3, batch_id = $4, error = $5 \
                         WHERE id = $1 AND attempts = $2 AND status = 'running'",
                    )
                    .bind(request_id.to_string())
                    .bind(attempt)
                    .bind(now_ms)
                    .bind(batch_id.map(|id| id.to_string()))
                    .bind($crate::shared::diagnostic(&error).into_owned()),
                };
                match query.execute(self.pool()).await {
                    Ok(done) => Ok(done.rows_affected() == 1),
                    // Re-queueing while another request for the same sync waits: that one
                    // will do the work, so this one ends as failed.
                    Err(err) if $crate::shared::is_unique_violation(&err) => {
                        let error = match outcome {
                            $crate::SyncOutcome::Failed { error, .. } => error,
                            $crate::SyncOutcome::Done { .. } => String::new(),
                        };
                        let done = sqlx::query(
                            "UPDATE sync_requests SET status = 'failed', lease_expires_at = NULL, \
                             finished_at = $3, error = $4 \
                             WHERE id = $1 AND attempts = $2 AND status = 'running'",
                        )
                        .bind(request_id.to_string())
                        .bind(attempt)
                        .bind(now_ms)
                        .bind($crate::shared::diagnostic(&error).into_owned())
                        .execute(self.pool())
                        .await?;
                        Ok(done.rows_affected() == 1)
                    }
                    Err(err) => Err(err.into()),
                }
            }

            async fn get_sync_request(
                &self,
                account_id: uuid::Uuid,
                request_id: uuid::Uuid,
            ) -> $crate::Result<$crate::SyncRequest> {
                let sql = format!(
                    "SELECT {} FROM sync_requests WHERE id = $1 AND account_id = $2",
                    $crate::rows::SYNC_REQUEST_COLUMNS
                );
                sqlx::query_as::<_, $crate::rows::SyncRequestRow>(&sql)
                    .bind(request_id.to_string())
                    .bind(account_id.to_string())
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or_else(|| $crate::StorageError::not_found("sync request"))?
                    .try_into()
            }

            async fn active_sync_requests(
                &self,
                account_id: uuid::Uuid,
                store_id: uuid::Uuid,
            ) -> $crate::Result<Vec<$crate::SyncRequest>> {
                let sql = format!(
                    "SELECT {} FROM sync_requests WHERE account_id = $1 AND store_id = $2 \
                     AND status IN ('pending', 'running') ORDER BY created_at, id LIMIT 100",
                    $crate::rows::SYNC_REQUEST_COLUMNS
                );
                sqlx::query_as::<_, $crate::rows::SyncRequestRow>(&sql)
                    .bind(account_id.to_string())
                    .bind(store_id.to_string())
                    .fetch_all(self.pool())
                    .await?
                    .into_iter()
                    .map($crate::SyncRequest::try_from)
                    .collect()
            }

            async fn enqueue_scheduled_syncs(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                interval: chrono::Duration,
            ) -> $crate::Result<u64> {
                let now_ms = $crate::rows::millis(now);
                let due_before = $crate::rows::millis(now - interval);
                let due: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, account_id FROM stores WHERE auto_sync = TRUE \
                     AND platform <> 'local' \
                     AND (sync_scheduled_at IS NULL OR sync_scheduled_at <= $1) ORDER BY id",
                )
                .bind(due_before)
                .fetch_all(self.pool())
                .await?;
                let mut queued = 0;
                for (store_id, account_id) in due {
                    let mut tx = self.begin_write().await?;
                    // Conditional: of two schedulers racing, one marks and queues.
                    let marked = sqlx::query(
                        "UPDATE stores SET sync_scheduled_at = $2 WHERE id = $1 \
                         AND (sync_scheduled_at IS NULL OR sync_scheduled_at <= $3)",
                    )
                    .bind(&store_id)
                    .bind(now_ms)
                    .bind(due_before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if marked == 1 {
                        queued += sqlx::query(
                            "INSERT INTO sync_requests (id, account_id, store_id, kind, trigger, \
                             product_external_id, status, attempts, not_before, created_at) \
                             VALUES ($1, $2, $3, 'incremental', 'schedule', '', 'pending', 0, $4, $4) \
                             ON CONFLICT (store_id, kind, product_external_id) WHERE status = 'pending' \
                             DO NOTHING",
                        )
                        .bind(uuid::Uuid::now_v7().to_string())
                        .bind(&account_id)
                        .bind(&store_id)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    }
                    tx.commit().await?;
                }
                Ok(queued)
            }

            async fn try_lead(
                &self,
                name: &str,
                holder: &str,
                ttl: chrono::Duration,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                self.try_lead_impl(name, holder, ttl, now).await
            }

            async fn resign_lead(&self, name: &str, holder: &str) -> $crate::Result<()> {
                self.resign_lead_impl(name, holder).await
            }

            async fn create_woo_authorization(
                &self,
                authorization: $crate::WooAuthorization,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                $crate::shared::storable("url", &authorization.store_url)?;
                $crate::shared::storable("name", &authorization.name)?;
                $crate::shared::storable("currency", &authorization.currency)?;
                sqlx::query(
                    "INSERT INTO woocommerce_authorizations (token_hash, account_id, store_url, name, \
                     currency, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&authorization.token_hash)
                .bind(authorization.account_id.to_string())
                .bind(&authorization.store_url)
                .bind(&authorization.name)
                .bind(&authorization.currency)
                .bind($crate::rows::millis(now))
                .bind($crate::rows::millis(authorization.expires_at))
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn find_woo_authorization(
                &self,
                token_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Option<$crate::WooAuthorization>> {
                sqlx::query_as::<_, $crate::rows::WooAuthorizationRow>(
                    "SELECT token_hash, account_id, store_url, name, currency, expires_at, store_id \
                     FROM woocommerce_authorizations WHERE token_hash = $1 AND expires_at > $2",
                )
                .bind(token_hash)
                .bind($crate::rows::millis(now))
                .fetch_optional(self.pool())
                .await?
                .map($crate::WooAuthorization::try_from)
                .transpose()
            }

            async fn complete_woo_authorization(
                &self,
                token_hash: &str,
                store_id: uuid::Uuid,
            ) -> $crate::Result<()> {
                sqlx::query("UPDATE woocommerce_authorizations SET store_id = $2 WHERE token_hash = $1")
                    .bind(token_hash)
                    .bind(store_id.to_string())
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn list_ledger(
                &self,
                account_id: uuid::Uuid,
                limit: i64,
            ) -> $crate::Result<Vec<domain::LedgerEntry>> {
                sqlx::query_as::<_, $crate::rows::LedgerRow>(
                    "SELECT id, account_id, delta, reason, reference, created_at FROM credit_ledger \
                     WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(account_id.to_string())
                .bind(limit)
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(domain::LedgerEntry::try_from)
                .collect()
            }
        }
    };
}

pub(crate) use impl_storage;
