//! The demo store: `serve --demo` fills the demo account's local catalog from the catalog
//! that ships with the product (`demo/`), and serves its product images from the binary, so
//! a first run shows a real-looking store without any setup.

use chrono::Utc;
use connectors::csv::parse_catalog;
use domain::Platform;
use include_dir::{include_dir, Dir};
use storage::{NewStore, StorageError, UpsertSummary};

use crate::error::ApiError;
use crate::AppState;

static CATALOG: &str = include_str!("../../../demo/catalog.csv");
static IMAGES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../demo/images");

/// Where the demo images are served; catalog paths `images/x.svg` become `/demo/images/x.svg`.
pub const IMAGE_PREFIX: &str = "/demo/images/";
const STORE_EXTERNAL_ID: &str = "demo-catalog";

/// Creates (once) the demo account's store and brings its products up to date with the
/// shipped catalog. Running it again changes nothing unless the catalog changed.
pub async fn seed_catalog(state: &AppState) -> Result<UpsertSummary, ApiError> {
    let now = Utc::now();
    let (_, account) = state.storage.ensure_demo_account(now).await?;
    let existing = state
        .storage
        .list_stores(account.id)
        .await?
        .into_iter()
        .find(|store| store.platform == Platform::Local && store.external_id == STORE_EXTERNAL_ID);
    let store = match existing {
        Some(store) => store,
        None => {
            let created = state
                .storage
                .create_store(
                    account.id,
                    NewStore {
                        platform: Platform::Local,
                        external_id: STORE_EXTERNAL_ID.into(),
                        name: "Northwind Trail Co. (demo)".into(),
                        currency: "USD".into(),
                        credentials_encrypted: None,
                    },
                    now,
                )
                .await;
            match created {
                Ok(store) => store,
                // Another process created it at the same moment: use theirs.
                Err(StorageError::StoreExists) => state
                    .storage
                    .list_stores(account.id)
                    .await?
                    .into_iter()
                    .find(|store| store.external_id == STORE_EXTERNAL_ID)
                    .ok_or(ApiError::NotFound("demo store"))?,
                Err(err) => return Err(err.into()),
            }
        }
    };
    let mut import = parse_catalog(CATALOG.as_bytes(), &store.currency)
        .map_err(|err| ApiError::internal(format!("demo catalog: {err}")))?;
    let served = |path: &str| match path.strip_prefix("images/") {
        Some(file) => format!("{IMAGE_PREFIX}{file}"),
        None => path.to_owned(),
    };
    for product in &mut import.products {
        for image in &mut product.images {
            image.url = served(&image.url);
        }
        for variant in &mut product.variants {
            variant.image = variant.image.as_deref().map(served);
        }
    }
    Ok(state
        .storage
        .upsert_products(account.id, store.id, &import.products, now)
        .await?)
}

/// A demo image by file name.
pub fn image(file: &str) -> Option<&'static [u8]> {
    IMAGES.get_file(file).map(|file| file.contents())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_catalog_image_is_embedded() {
        let import = connectors::csv::parse_catalog(super::CATALOG.as_bytes(), "USD").unwrap();
        for product in &import.products {
            for image in &product.images {
                let file = image
                    .url
                    .strip_prefix("images/")
                    .expect("relative demo path");
                assert!(super::image(file).is_some(), "{file} is not embedded");
            }
        }
        assert!(super::image("../catalog.csv").is_none());
    }
}
